"""kgan-evaluate: score a saved GAN, a run directory or a TF Serving export against data.

Generates `--num-samples` images from fixed seeds, takes as many real images, maps
both through a float32 feature extractor and prints the chosen metrics, with the
routine the training callback uses (`kgan.evaluation.quality.evaluate_quality`).

Usage:
    kgan-evaluate runs/digits --data digits --features classifier    # RUN_DIR/final.keras
    kgan-evaluate runs/digits/final.keras --data digits.npz --classifier clf.keras
    kgan-evaluate exports/cifar10 --data cifar10 --inception-weights ~/weights/ --json

Expect a few seconds for digits with the domain classifier (a run's own, which
kgan-train --metrics saved as RUN_DIR/metrics_classifier.keras; --classifier a saved
one; else it trains one on the data's labels) and minutes for 10k Inception
samples on a CPU. `--help` and flag errors answer without loading TensorFlow.

Exit codes: 0 done, 1 the work stopped (the generator produced NaN images, a runtime
or I/O failure), 2 bad input (paths, data, flags), 130 interrupted (Ctrl-C), 143
stopped by SIGTERM; errors are one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator

import numpy as np

from kgan.cli import exits, plugins, quiet
from kgan.training import backend

PROG = "kgan-evaluate"
Sampler = Callable[[int, int], np.ndarray]  # (count, first_seed) -> images in [-1, 1]
_BAD_INPUT = (FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError,
              ValueError, KeyError)
_STOPPED = (RuntimeError, OSError, MemoryError)


def build_parser() -> argparse.ArgumentParser:
    """The command line (exposed so the README and tests can list the options)."""
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0],
                                usage=f"{PROG} MODEL --data DATA [--FLAG VALUE ...] (all: --help)")
    p.add_argument("model", help="a saved GAN (.keras), a run directory (its final.keras, or "
                                 "its newest checkpoint while it trains) or an export dir "
                                 "(model or version dir)")
    p.add_argument("--data", required=True,
                   help="kgan.data source (TFDS name, 'digits', image folder) or an .npz "
                        "with 'images' (and 'labels')")
    p.add_argument("--metrics", default="fid,kid,pr,dc", help="comma-separated metric names")
    p.add_argument("--num-samples", type=int, default=5000, help="generated and real images")
    p.add_argument("--features", choices=("inception", "classifier"), default="inception")
    p.add_argument("--inception-weights", default=None, help="InceptionV3 notop .h5 (or dir)")
    p.add_argument("--classifier", default=None,
                   help="saved .keras classifier; default: the run's own (RUN_DIR/"
                        "metrics_classifier.keras, from kgan-train --metrics), else train "
                        "one on the data's labels")
    p.add_argument("--layer", default=None, help="classifier feature layer (default penultimate)")
    p.add_argument("--classifier-epochs", type=int, default=10)
    p.add_argument("--save-classifier", default=None, help="where to save a trained classifier")
    p.add_argument("--split", default="train")
    p.add_argument("--data-dir", default=None, help="TFDS data dir")
    p.add_argument("--seed", type=int, default=0, help="first latent seed")
    p.add_argument("--batch-size", type=int, default=250)
    p.add_argument("--k", type=int, default=None,
                   help="neighbourhood size for pr/dc (default: each metric's own: pr 3, as "
                        "the paper and StyleGAN's pr50k3; dc 5, as Naeem et al.)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    plugins.add_flag(p)
    quiet.add_debug_flag(p)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the command; returns the exit status (`kgan.cli.exits`)."""
    args = build_parser().parse_args(argv)  # flag syntax errors exit 2 here
    return exits.run(PROG, lambda: _evaluate(args), debug=args.debug, bad_input=_BAD_INPUT,
                     stopped=_stopped, stopped_prefix="the evaluation stopped: {type}: ")


def _evaluate(args: argparse.Namespace) -> None:
    names = check_args(args)  # before TensorFlow loads
    quiet.quiet_tensorflow(args.debug)
    backend.check_environment("kgan-evaluate")
    plugins.load(args.imports)
    report = evaluate(args, names)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        for name, value in report["metrics"].items():
            print(f"{name:<10} {value:.6g}")


def _stopped(error: Exception) -> bool:
    """Runtime failures (not bad input): ours, the OS's, and TensorFlow's op errors."""
    tf = sys.modules.get("tensorflow")
    return isinstance(error, _STOPPED) or (tf is not None and isinstance(error, tf.errors.OpError))


def check_args(args: argparse.Namespace) -> tuple[str, ...]:
    """Checks flag values without TensorFlow; returns the metric names."""
    from kgan.evaluation import metrics as metrics_lib  # NumPy only

    names = tuple(n.strip() for n in args.metrics.split(",") if n.strip())
    if not names:
        raise ValueError(f"--metrics names no metric; choose from "
                         f"{', '.join(metrics_lib.metric_names())}")
    for name in names:
        metrics_lib.get_metric(name)
    for flag, value, least in (("--num-samples", args.num_samples,
                                metrics_lib.min_samples(names, **_k(args))),
                               ("--batch-size", args.batch_size, 1),
                               ("--k", 1 if args.k is None else args.k, 1),
                               ("--classifier-epochs", args.classifier_epochs, 1)):
        if value < least:
            raise ValueError(f"{flag} must be >= {least}, got {value}")
    from kgan.serving.limits import INT64_MAX, INT64_MIN  # NumPy only

    if not INT64_MIN <= args.seed <= INT64_MAX + 1 - args.num_samples:  # seeds seed.. int64
        raise ValueError(f"--seed must leave its {args.num_samples} seeds in int64's range "
                         f"[-2**63, 2**63 - 1], got {args.seed}")
    if args.save_classifier:
        _check_classifier_path(args.save_classifier)
    return names


def _check_classifier_path(path: str) -> None:
    """--save-classifier writes a .keras file, and never over a trained GAN."""
    if not path.endswith(".keras"):
        raise ValueError(f"--save-classifier writes a Keras model: name it *.keras, got {path}")
    if os.path.isdir(path):
        raise ValueError(f"--save-classifier {path} is a folder: name a .keras file")
    if os.path.exists(path) and _holds_gan(path):
        raise ValueError(f"--save-classifier {path} holds a trained kgan.GAN, which saving "
                         "would replace: name another file")


def _holds_gan(path: str) -> bool:
    """Whether the .keras file at `path` is a saved kgan.GAN (its config names the class)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return False
    return isinstance(config, dict) and config.get("class_name") == "GAN"


def _k(args: argparse.Namespace) -> dict:
    """`--k` as a metric option, when given (else each metric keeps its own k)."""
    return {} if args.k is None else {"k": args.k}


def evaluate(args: argparse.Namespace, names: tuple[str, ...]) -> dict:
    """Loads everything named in `args`, computes the metrics, returns the report dict."""
    from kgan.evaluation import quality

    sampler, image_shape = load_sampler(args.model)
    extractor = _extractor(args, image_shape)
    real = quality.real_statistics(_real_batches(args, image_shape, conditional=False),
                                   extractor, names, args.num_samples, args.batch_size)
    if real.count < args.num_samples:  # the scores stand, on a smaller real set: say so
        print(f"{PROG}: note: {args.data} has {real.count} real images, fewer than "
              f"--num-samples {args.num_samples}: the scores compare {real.count} real with "
              f"{args.num_samples} generated images (small sets bias FID and KID upwards)",
              file=sys.stderr)
    results = quality.evaluate_quality(sampler, real, extractor, names, args.num_samples,
                                       seed=args.seed, batch_size=args.batch_size, **_k(args))
    # evaluate_quality scores exactly num_samples generated images (or raises).
    return {"model": args.model, "data": args.data, "features": args.features,
            "num_real": real.count, "num_fake": args.num_samples, "metrics": results}


def load_sampler(path: str) -> tuple[Sampler, tuple[int, int, int]]:
    """A `(count, seed) -> images in [-1, 1]` function and the image shape for a model path.

    `.keras` files load as a kgan.GAN, and so does a run directory's `final.keras`
    (what kgan-train writes) or, before the run ends, its newest checkpoint
    (`kgan.training.sources.find_model_file`); other folders are SavedModel exports (a
    version folder, or a model folder whose highest numbered version is used).
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"model not found: {path}")
    from kgan.training.sources import find_model_file, is_keras_source

    if is_keras_source(path):
        return _keras_sampler(find_model_file(path))
    return _export_sampler(_version_dir(path))


def _keras_sampler(path: str) -> tuple[Sampler, tuple[int, int, int]]:
    from kgan.training.sources import load_keras_file

    if not path.endswith(".keras"):
        raise ValueError(f"expected a .keras file or an export folder, got {path}")
    gan = load_keras_file(path)
    if not hasattr(gan, "generate"):
        raise ValueError(f"{path} holds a {type(gan).__name__}, not a kgan.GAN")
    return (lambda count, seed: gan.generate(count, seed=seed)), tuple(gan.image_shape)


def _version_dir(path: str) -> str:
    from kgan.serving.limits import latest_version

    found = latest_version(path)
    if found is None:
        raise FileNotFoundError(f"no SavedModel (saved_model.pb) in {path} or its versions, "
                                "and no final.keras (a run directory)")
    return found


def _export_sampler(version_dir: str) -> tuple[Sampler, tuple[int, int, int]]:
    from kgan.gan.sampling import labels_from_seeds
    from kgan.serving.export import ExportedGenerator
    from kgan.serving.limits import MAX_BATCH_SIZE

    served = ExportedGenerator(version_dir)

    def sample(count: int, seed: int) -> np.ndarray:
        seeds = np.arange(seed, seed + count, dtype=np.int64)
        # Same default labels as GAN.generate, so a .keras file and its export agree.
        labels = (np.asarray(labels_from_seeds(seeds, served.num_classes))
                  if served.num_classes else None)
        images = [served.generate(seeds[i:i + MAX_BATCH_SIZE], None if labels is None
                                  else labels[i:i + MAX_BATCH_SIZE])["images"]
                  for i in range(0, count, MAX_BATCH_SIZE)]  # the export's request limit
        return np.concatenate(images).astype(np.float32) / 127.5 - 1.0

    return sample, tuple(sample(1, 0).shape[1:])


def _real_batches(args, image_shape, conditional: bool) -> Iterator:
    """Real batches ((images, labels) when `conditional`) at the model's geometry."""
    height, _, channels = image_shape
    import kgan.data  # .npz files too: the same range checks and scaling as kgan-train's

    dataset = kgan.data.load(
        args.data, resolution=height, channels=channels, batch_size=args.batch_size,
        conditional=conditional, split=args.split, data_dir=args.data_dir, shuffle=False,
        drop_remainder=False,
    )
    for batch in dataset.as_numpy_iterator():
        yield batch if conditional else (batch[0] if isinstance(batch, tuple) else batch)


def _extractor(args, image_shape):
    from kgan.evaluation import features as features_lib

    if args.features == "inception":
        return features_lib.InceptionFeatures(args.inception_weights, args.batch_size)
    if args.classifier:
        return features_lib.ClassifierFeatures.from_file(args.classifier, args.layer)
    run_classifier = _run_classifier(args)
    if run_classifier:
        print(f"{PROG}: features from the run's classifier, {run_classifier} (the one its "
              "TensorBoard metrics used); --classifier names another", file=sys.stderr)
        return features_lib.ClassifierFeatures.from_file(run_classifier, args.layer)
    import kgan.data

    if not kgan.data.describe(args.data, split=args.split, data_dir=args.data_dir).num_classes:
        raise ValueError(f"--features classifier trains a classifier on the class labels of "
                         f"{args.data}, which has none: pass a trained one with --classifier "
                         "MODEL.keras, or use --features inception")
    images, labels = _labelled_arrays(args, image_shape)
    model = features_lib.train_classifier(
        images, labels, int(labels.max()) + 1, epochs=args.classifier_epochs
    )
    if args.save_classifier:
        model.save(args.save_classifier)
    return features_lib.ClassifierFeatures(model, args.layer)


def _run_classifier(args) -> str | None:
    """The domain classifier kgan-train saved beside the model (RUN_DIR or its
    final.keras), so the scores are on its TensorBoard metrics' scale; None when there
    is none or --save-classifier asks for a newly trained one."""
    if args.save_classifier:
        return None
    folder = args.model if os.path.isdir(args.model) else os.path.dirname(args.model)
    path = os.path.join(folder, "metrics_classifier.keras")
    return path if os.path.isfile(path) else None


def _labelled_arrays(args, image_shape, limit: int = 50_000):
    """Up to `limit` labelled real images to train the domain classifier on."""
    images, labels, count = [], [], 0
    for batch_images, batch_labels in _real_batches(args, image_shape, conditional=True):
        images.append(batch_images)
        labels.append(np.asarray(batch_labels))
        count += len(batch_images)
        if count >= limit:
            break
    if not images:
        raise ValueError(f"no labelled images in {args.data} to train a classifier on")
    return np.concatenate(images)[:limit], np.concatenate(labels)[:limit]


if __name__ == "__main__":
    sys.exit(main())
