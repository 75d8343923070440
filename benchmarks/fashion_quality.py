"""Sample quality on Fashion-MNIST, per recipe and per CPU minute.

A GAN trains on Fashion-MNIST's 60,000 training images, read from Debian's IDX files
(`apt-get install dataset-fashion-mnist`; `kgan.data.idx`), built by the same code as
`train.py` (`TrainConfig` -> `runner.build_gan`, the runner's per-epoch seeded data
order, through `digits_quality.Trainer`), so any recipe `train.py` takes can be measured:
`--preset` (default: fashion_mnist), `--network`, `--network-args`, `--config FILE`,
`--set k=v` for any TrainConfig field, or any train.py flag as is (`--loss hinge`). It
trains against the wall clock (`--minutes 1,3,10`: the same run is scored as it passes
each budget, the clock paused while scoring) or, without `--minutes`, for the config's
epochs. `--samples` generated images (10,000) are scored against the 10,000 test images:

- Frechet distance (FD) and KID (Binkowski et al. 2018: mean and spread over random
  subsets of 1,000) in the penultimate layer of a small CNN (`kgan.features
  .train_classifier`) trained on the 60,000 training images and their labels, the
  "domain FID" of MNIST-like data (its test accuracy is reported);
- improved precision / recall (Kynkaanniemi et al. 2019, k=5);
- the classes that CNN sees in the samples (covered: >= `--min-share` of the uniform
  share), and for a conditional GAN the share of samples classified as the class asked
  for (label agreement);
- the floor: the same figures for 10,000 training images, what a perfect generator
  would score.

The machine's load average is recorded: quality per minute only compares between runs
on an equally quiet machine.

Run:
    python benchmarks/fashion_quality.py --minutes 10                # the fashion_mnist preset
    python benchmarks/fashion_quality.py --minutes 1,3,10 --out results/fashion.json --grids DIR
    python benchmarks/fashion_quality.py --network r3gan --network-args \\
        widths=[64,64,32,32],blocks_per_stage=1 --minutes 10
    python benchmarks/fashion_quality.py --set epochs=2               # the config's epochs
    python benchmarks/fashion_quality.py --quick                     # seconds: a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import digits_quality  # noqa: E402

import kgan  # noqa: E402
from kgan.data import idx  # noqa: E402
from kgan.training import runner  # noqa: E402
from kgan.training.config import ConfigError, TrainConfig  # noqa: E402

NUM_CLASSES = 10
GENERATED_SEED = digits_quality.GENERATED_SEED  # a multiple of 10: sample i is class i % 10
FASHION = idx.DEBIAN_SETS["fashion_mnist"]
# --quick: sizes for a smoke run of seconds (a tiny network, 2 steps, small subsets).
QUICK = dict(train_images=512, test_images=256, samples=256, classifier_epochs=1,
             kid_subsets=10)


# ------------------------------------------------------------------ data
def fashion_mnist(split: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 images [N, 28, 28] and int32 labels of a split, from Debian's files."""
    if not idx.is_idx_folder(FASHION.folder):
        raise ValueError(f"this benchmark reads Fashion-MNIST's IDX files from "
                         f"{FASHION.folder}; install them: {FASHION.install}")
    return idx.read_split(FASHION.folder, split, labelled=True)


def pick(total: int, count: int | None, seed: int) -> np.ndarray:
    """Indices of `count` of `total` rows drawn without replacement, sorted (all when None
    or more)."""
    if count is None or count >= total:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, count, replace=False))


def prepared(images: np.ndarray, resolution: int, channels: int) -> np.ndarray:
    """All images through the training pipeline's preprocessing, in order: [-1, 1] NHWC."""
    data = kgan.data.from_arrays(images, batch_size=len(images), resolution=resolution,
                                 channels=channels, shuffle=False)
    return next(iter(data)).numpy()


# ------------------------------------------------------------ the recipe
def train_config(flags: list[str], quick: bool = False) -> TrainConfig:
    """A TrainConfig from train.py flags as `train.py` resolves them, starting from the
    fashion_mnist preset unless the flags name another or a config file."""
    if not any(f == "--preset" or f.startswith("--preset=") or f == "--config"
               or f.startswith("--config=") for f in flags):
        flags = ["--preset", "fashion_mnist", *flags]
    config = digits_quality.cli.config_from_args(_train_parser().parse_args(flags))
    if quick:
        small = {"base_filters": 4} if config.network == "dcgan" else {}
        config = dataclasses.replace(config, resolution=8, latent_dim=8, epochs=1,
                                     steps_per_epoch=2,
                                     network_args={**config.network_args, **small})
    if config.dataset not in ("fashion_mnist", FASHION.folder):
        raise ConfigError(f"this benchmark measures Fashion-MNIST, got dataset="
                          f"{config.dataset!r}; drop --dataset / the preset that sets it")
    return dataclasses.replace(config, export=False)


def _train_parser() -> argparse.ArgumentParser:
    parser = digits_quality.cli.build_parser()
    parser.prog = "fashion_quality.py (train.py flags)"
    return parser


class Trainer(digits_quality.Trainer):
    """digits_quality's trainer (the runner's seeded order per epoch, a wall-clock
    budget) over uint8 Fashion-MNIST images."""

    def _epoch_data(self, epoch: int, skip: int):
        c = self.config
        data = kgan.data.from_arrays(
            self.images, self.labels if c.conditional else None, batch_size=c.batch_size,
            resolution=c.resolution, channels=c.channels,
            seed=runner.epoch_seed(c.seed, epoch))
        return data.repeat().skip(skip).take(self.steps_per_epoch - skip)


# --------------------------------------------------------------- scoring
class Judge:
    """Everything fixed across recipes: the data, the feature CNN, the floor."""

    def __init__(self, args: argparse.Namespace, resolution: int, channels: int):
        train_x, train_y = fashion_mnist("train")
        test_x, test_y = fashion_mnist("test")
        rows = pick(len(train_x), args.train_images, args.seed)
        self.train_x, self.train_y = train_x[rows], train_y[rows]
        rows = pick(len(test_x), args.test_images, args.seed)
        test_x, test_y = test_x[rows], test_y[rows]
        self.args = args
        self.samples = args.samples or len(test_x)
        train_real = prepared(self.train_x, resolution, channels)
        self.cnn = kgan.features.train_classifier(train_real, self.train_y, NUM_CLASSES,
                                                  epochs=args.classifier_epochs,
                                                  batch_size=128, seed=args.seed)
        self.features = kgan.features.ClassifierFeatures(self.cnn)
        test_real = prepared(test_x, resolution, channels)
        self.test_features = self.features(test_real)
        accuracy = np.mean(self._classes(test_real) == test_y)
        self.classifier = {
            "classifier": "kgan.features.train_classifier (2 stride-2 convs, 64-D features)",
            "trained_on": len(self.train_x), "epochs": args.classifier_epochs,
            "test_accuracy": round(float(accuracy), 4)}
        # The floor: as many training images as samples, scored like samples.
        rows = pick(len(train_real), self.samples, args.seed + 1)
        self.floor = {"samples": f"{len(rows)} training images (floor)",
                      **self.score(train_real[rows], self.train_y[rows])}

    def _classes(self, images: np.ndarray) -> np.ndarray:
        return np.argmax(self.cnn.predict(images, batch_size=256, verbose=0), axis=-1)

    def score(self, images: np.ndarray, asked: np.ndarray | None = None) -> dict:
        """FD, KID, precision/recall, class shares (and label agreement) of `images`."""
        real, fake = self.test_features, self.features(images)
        kid, kid_std = kgan.metrics.kernel_inception_distance(
            real, fake, num_subsets=self.args.kid_subsets, seed=self.args.seed)
        precision, recall = kgan.metrics.precision_recall(real, fake, k=self.args.k)
        predicted = self._classes(images)
        shares = np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)
        row = {
            "frechet_distance": round(kgan.metrics.fid(real, fake), 3),
            "kid": round(kid, 5), "kid_std": round(kid_std, 5),
            "precision": round(precision, 4), "recall": round(recall, 4),
            "count": len(images),
            "classes_covered": int((shares >= self.args.min_share / NUM_CLASSES).sum()),
            "class_shares": [round(float(s), 4) for s in shares],
        }
        if asked is not None:
            row["label_agreement"] = round(float(np.mean(predicted == asked)), 4)
        return row

    def score_gan(self, gan: kgan.GAN) -> dict:
        """Scores of the sampling generator (the EMA one if any), relative to the floor;
        with EMA, the raw generator's headline figures too (same latents and labels)."""
        n = self.samples
        asked = np.arange(n) % NUM_CLASSES if gan.num_classes else None
        generated = self.score(gan.generate(n, seed=GENERATED_SEED, labels=asked), asked)
        if gan.ema_generator is not None:
            raw = self.score(digits_quality.sample_images(
                gan.generator, gan.latent_dim, gan.num_classes, n, seed=GENERATED_SEED), asked)
            generated["without_ema"] = {k: raw[k] for k in (
                "frechet_distance", "kid", "precision", "recall", "classes_covered")}
        generated["frechet_vs_floor"] = round(
            generated["frechet_distance"] / max(self.floor["frechet_distance"], 1e-9), 2)
        return generated


def measure(judge: Judge, name: str, config: TrainConfig, budgets: list[float] | None,
            grids: str | None = None) -> list[dict]:
    """Trains one recipe; scores it after `config.epochs` epochs or at each budget
    (minutes of training wall clock, the clock paused while scoring); with `grids`, saves
    a 10 x 10 sample grid there per score (column j: class j when conditional)."""
    trainer = Trainer(config, judge.train_x, judge.train_y)
    recipe = {"recipe": name, "config": config.to_dict()}
    rows = []
    for minutes in budgets or [None]:
        if minutes is None:
            trainer.train(config.epochs * trainer.steps_per_epoch)
        else:
            trainer.train(sys.maxsize, minutes * 60.0)
        row = {**recipe, "budget_minutes": minutes, **trainer.progress(),
               **judge.score_gan(trainer.gan)}
        if grids:
            budget = f"{minutes:g}min" if minutes else f"{config.epochs}ep"
            slug = "".join(c if c.isalnum() or c in "-." else "_" for c in name)
            row["grid"] = digits_quality.save_samples(
                trainer.gan, os.path.join(grids, f"fashion_{slug}_{budget}.png"))
        rows.append(row)
        print(f"  {name}: {row['steps']} steps in {row['train_seconds']:.0f} s, FD "
              f"{row['frechet_distance']:.3g} ({row['frechet_vs_floor']:.3g} x floor), KID "
              f"{row['kid']:.3g}, precision {row['precision']:.3f}, recall "
              f"{row['recall']:.3f}, load {row['load_average']}", flush=True)
    return rows


def markdown(result: dict) -> str:
    """The result as one Markdown table: a row per budget and the floor."""
    floor = result["floor"]
    columns = ["recipe", "budget", "steps", "FD (gen / floor)", "KID", "precision", "recall",
               "classes", "label agreement"]
    lines = []
    for row in result["rows"]:
        budget = (f"{row['budget_minutes']:g} min" if row["budget_minutes"]
                  else f"{row['config']['epochs']} ep ({row['train_seconds']:.0f} s)")
        lines.append({
            "recipe": row["recipe"] + ("" if row["finite"] else " (diverged)"),
            "budget": budget, "steps": row["steps"],
            columns[3]: f"{row['frechet_distance']:.3g} / {floor['frechet_distance']:.3g}",
            "KID": f"{row['kid']:.3g}", "precision": row["precision"],
            "recall": row["recall"], "classes": row["classes_covered"],
            "label agreement": row.get("label_agreement")})
    lines.append({"recipe": floor["samples"], "budget": "-", "steps": "-",
                  columns[3]: f"{floor['frechet_distance']:.3g}", "KID": f"{floor['kid']:.3g}",
                  "precision": floor["precision"], "recall": floor["recall"],
                  "classes": floor["classes_covered"],
                  "label agreement": floor.get("label_agreement")})
    machine = result["machine"]
    return common.print_table(
        lines, columns, f"Fashion-MNIST quality ({machine['cpu']}, {machine['cpu_cores']} "
        f"cores, load average at start {machine['load_average_at_start']}); features: a CNN "
        f"trained on {result['classifier']['trained_on']} labelled images (test accuracy "
        f"{result['classifier']['test_accuracy']:.3f})")


def run(args: argparse.Namespace) -> dict:
    """Builds the judge and measures the recipe; JSON-ready result."""
    machine = common.machine()  # load average before the work
    flags = [*args.train_flags, *digits_quality.set_flags(args.set)]
    config = train_config(flags, args.quick)
    judge = Judge(args, config.resolution, config.channels)
    settings = {k: getattr(args, k) for k in (
        "minutes", "train_images", "test_images", "samples", "classifier_epochs",
        "kid_subsets", "min_share", "k", "seed", "quick")}
    result = {"benchmark": "fashion_quality", "machine": machine, "settings": settings,
              "train_images": len(judge.train_x), "test_images": len(judge.test_features),
              "classifier": judge.classifier, "floor": judge.floor, "rows": []}
    result["rows"] = measure(judge, args.name, config, args.minutes, args.grids)
    result["load_average_at_end"] = common.load_average()
    return result


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Any other flag is a train.py flag (--preset, --network, --network-args, "
               "--config, --epochs, --loss, ...) and resolves as train.py resolves it.")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a TrainConfig field, e.g. --set loss=hinge (repeatable)")
    p.add_argument("--minutes", type=digits_quality._budgets, metavar="M[,M...]",
                   help="train against the wall clock, scoring at each budget (minutes); "
                        "default: the config's epochs")
    p.add_argument("--name", default="cli", help="recipe name in the output")
    p.add_argument("--train-images", type=int, help="train (GAN and CNN) on this many of "
                   "the 60,000 (default: all)")
    p.add_argument("--test-images", type=int, help="score against this many of the 10,000 "
                   "test images (default: all)")
    p.add_argument("--samples", type=int, help="generated images (and floor images) scored "
                   "(default: as many as test images)")
    p.add_argument("--classifier-epochs", type=int, default=5)
    p.add_argument("--kid-subsets", type=int, default=100, help="KID's random subsets")
    p.add_argument("--min-share", type=float, default=0.2,
                   help="a class is covered with >= this fraction of the uniform share")
    p.add_argument("--k", type=int, default=5, help="neighbourhood of precision/recall")
    p.add_argument("--seed", type=int, default=0, help="seed of subsets and the classifier")
    p.add_argument("--quick", action="store_true",
                   help=f"a smoke run of seconds: tiny network, 2 steps, {QUICK}")
    p.add_argument("--out", help="write the JSON result here")
    p.add_argument("--grids", metavar="DIR",
                   help="save a 10 x 10 sample grid (PNG) per budget here")
    args, args.train_flags = p.parse_known_args(argv)
    if args.quick:
        for key, value in QUICK.items():
            if key not in ("classifier_epochs", "kid_subsets") and getattr(args, key):
                continue  # sizes given on the command line win
            setattr(args, key, value)
    return args


def main(argv=None) -> dict:
    """Runs the benchmark from command-line arguments; returns the result dict."""
    args = parse_args(argv)
    result = run(args)
    result["markdown"] = markdown(result)
    common.write_json(result, args.out)
    return result


if __name__ == "__main__":
    try:
        main()
    except (ConfigError, ValueError) as error:
        print(f"fashion_quality.py: error: {error}", file=sys.stderr)
        sys.exit(2)
