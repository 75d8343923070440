"""Sample quality on the shipped digits: classes covered, Frechet distance, precision/recall.

The 1,797 scikit-learn digits (`kgan.data`'s offline `digits` source) are split per
class into a training part (80 %) and a held-out part (20 %). A DCGAN (kgan's digits
preset: 32 px, latent 64, base_filters 32, batch 64, Adam 2e-4 / 0.5) trains on the
training part only. A small CNN (`kgan.features.train_classifier`) trained on the
training part's labels then

- labels as many generated samples as there are training images: a class is
  *covered* when it gets at least `--min-share` of the uniform share (default 0.2,
  i.e. >= 2 % of the samples for 10 classes);
- gives the feature space (its penultimate layer) for the Frechet distance and the
  improved precision/recall (k=5, `kgan.metrics`) against the held-out digits.

The floor is the same figures for the real training part against the held-out part:
same sizes, so it is what a perfect generator would score.

Run:
    python benchmarks/digits_quality.py --epochs 50 --out benchmarks/results/digits_quality.json
    python benchmarks/digits_quality.py --quick          # seconds, a smoke run

Expect all 10 classes and a Frechet distance a few times the real-vs-real floor
after 50 epochs (about a minute of training on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import keras
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import kgan  # noqa: E402
from kgan.data.arrays import digits_arrays  # noqa: E402

NUM_CLASSES = 10


def split(held_out: float, seed: int) -> tuple[tuple, tuple]:
    """Per-class split of the digits: ((train images, labels), (held-out images, labels))."""
    images, labels = digits_arrays()
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for c in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: round(held_out * members.size)]] = True
    return (images[~test], labels[~test]), (images[test], labels[test])


def prepared(images: np.ndarray, labels: np.ndarray, resolution: int) -> np.ndarray:
    """All images through the training pipeline's preprocessing, in order: [-1, 1] NHWC."""
    data = kgan.data.from_arrays(images, labels, batch_size=len(images), resolution=resolution,
                                 channels=1, shuffle=False)
    return next(iter(data))[0].numpy()


def train_gan(train_images: np.ndarray, args) -> tuple[kgan.GAN, float]:
    keras.utils.set_random_seed(args.seed)
    g, d = kgan.networks.dcgan(args.resolution, 1, args.latent_dim, base_filters=args.base_filters)
    gan = kgan.GAN(g, d, latent_dim=args.latent_dim, ema_decay=args.ema_decay or None,
                   seed=args.seed)
    gan.compile(keras.optimizers.Adam(args.lr, beta_1=0.5),
                keras.optimizers.Adam(args.lr, beta_1=0.5), loss=args.loss)
    data = kgan.data.from_arrays(train_images, batch_size=args.batch_size,
                                 resolution=args.resolution, channels=1, seed=args.seed)
    start = time.perf_counter()
    gan.fit(data, epochs=args.epochs, verbose=0)
    return gan, time.perf_counter() - start


def class_coverage(classifier: keras.Model, images: np.ndarray, min_share: float) -> dict:
    """Predicted class shares and the classes holding >= min_share of the uniform share."""
    predicted = np.argmax(classifier.predict(images, batch_size=256, verbose=0), axis=-1)
    shares = np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)
    return {
        "classes_covered": int((shares >= min_share / NUM_CLASSES).sum()),
        "class_shares": [round(float(s), 4) for s in shares],
    }


def scores(features, real: np.ndarray, other: np.ndarray, k: int) -> dict:
    """Frechet distance and precision/recall of `other` against the held-out `real`."""
    real_f, other_f = features(real), features(other)
    precision, recall = kgan.metrics.precision_recall(real_f, other_f, k=k)
    return {"frechet_distance": round(kgan.metrics.fid(real_f, other_f), 3),
            "precision": round(precision, 4), "recall": round(recall, 4), "count": len(other)}


def run(args) -> dict:
    """Splits, trains the classifier and the GAN, scores both rows; JSON-ready result."""
    machine = common.machine()  # load average before the work
    (train_x, train_y), (test_x, test_y) = split(args.held_out, args.seed)
    train_real, test_real = (prepared(train_x, train_y, args.resolution),
                             prepared(test_x, test_y, args.resolution))
    classifier = kgan.features.train_classifier(train_real, train_y, NUM_CLASSES,
                                                epochs=args.classifier_epochs, seed=args.seed)
    accuracy = float(np.mean(np.argmax(classifier.predict(test_real, verbose=0), -1) == test_y))
    features = kgan.features.ClassifierFeatures(classifier)
    gan, seconds = train_gan(train_x, args)
    fake = gan.generate(len(train_real), seed=1_000_000)
    rows = [
        {"samples": "kgan generated", **scores(features, test_real, fake, args.k),
         **class_coverage(classifier, fake, args.min_share)},
        {"samples": "real training split (floor)", **scores(features, test_real, train_real,
                                                            args.k),
         **class_coverage(classifier, train_real, args.min_share)},
    ]
    settings = {k: getattr(args, k) for k in
                ("epochs", "resolution", "latent_dim", "base_filters", "batch_size", "lr", "loss",
                 "ema_decay", "classifier_epochs", "held_out", "min_share", "k", "seed")}
    return {"benchmark": "digits_quality", "machine": machine, "settings": settings,
            "train_images": len(train_real), "held_out_images": len(test_real),
            "classifier_held_out_accuracy": round(accuracy, 4),
            "train_seconds": round(seconds, 1), "rows": rows,
            "load_average_at_end": common.load_average()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--resolution", type=int, default=32)
    p.add_argument("--latent-dim", type=int, default=64)
    p.add_argument("--base-filters", type=int, default=32)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-4)
    p.add_argument("--loss", default="non_saturating")
    p.add_argument("--ema-decay", type=float, default=0.0, help="0: no EMA generator")
    p.add_argument("--classifier-epochs", type=int, default=10)
    p.add_argument("--held-out", type=float, default=0.2, help="held-out share per class")
    p.add_argument("--min-share", type=float, default=0.2,
                   help="a class is covered with >= this fraction of the uniform share")
    p.add_argument("--k", type=int, default=5, help="neighbourhood of precision/recall")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.resolution, args.base_filters, args.latent_dim = 1, 8, 4, 8
        args.classifier_epochs = 1
    return args


def main(argv=None) -> dict:
    """Runs the benchmark from command-line arguments; returns the result dict."""
    args = parse_args(argv)
    result = run(args)
    common.print_table(result["rows"], ["samples", "count", "classes_covered",
                                        "frechet_distance", "precision", "recall"],
                       f"Digits quality after {args.epochs} epochs ({result['train_seconds']} s "
                       f"of training); held-out real images: {result['held_out_images']}")
    common.write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
