"""Sample quality on the shipped digits, per recipe and per CPU minute.

The 1,797 scikit-learn digits (`kgan`'s offline `digits` source) are split per class
into a training part (80 %) and a held-out part (20 %). A GAN trains on the training
part only, built by the same code as `train.py` (`TrainConfig` -> `recipe.build_gan`,
the runner's per-epoch seeded data order; an epoch is 22 steps here, 28 in
`train.py` on all 1,797 digits), so any recipe `train.py` takes can be
measured: `--preset`, `--network`, `--network-args`, `--config FILE`, `--set k=v` for
any TrainConfig field, or any train.py flag as is (`--loss relativistic`). Scores of
`len(training part)` generated samples:

- recognition: an independent scikit-learn SVC on the 8x8 originals
  (`digit_recognition.py`) recognises a sample when its top class probability is
  >= `--threshold` (0.9); shown beside the real training split sent through the same
  8x8 -> pipeline -> 8x8 round trip, and their ratio (the target is >= 0.8);
- Frechet distance and improved precision/recall (k=5) in the penultimate layer of a
  small CNN (`kgan.features.train_classifier`, trained on the training part) against
  the held-out digits; classes *covered* get >= `--min-share` of the uniform share
  (0.2, i.e. >= 2 % of the samples) of that CNN's predictions;
- the floor: the same figures for the real training part, what a perfect generator
  would score.

`--minutes 1,3,10` trains against the wall clock (time spent scoring excluded) and
scores the same run as it passes each budget; `--table` does that for several recipes
(built in: dcgan (the default demo), resnet, r3gan, stylegan2; families not
registered are skipped) and prints a Markdown table. The machine's load average is recorded:
quality per minute only compares between runs on an equally quiet machine.
`--shadow-ema 6,10` keeps EMA generators of other half-lives (kimg) beside the run's own
and scores each as a row of the same run (`ShadowEMA`).

Run:
    python benchmarks/digits_quality.py                       # the default demo recipe
    python benchmarks/digits_quality.py --epochs 50 --set loss=relativistic --set r1_gamma=0.1
    python benchmarks/digits_quality.py --network r3gan --minutes 3
    python benchmarks/digits_quality.py --table               # 1, 3, 10 min per recipe,
        # ~50 min in all; writes benchmarks/results/digits_quality_table.json
    python benchmarks/digits_quality.py --table --recipes my_recipes.json
    python benchmarks/digits_quality.py --recipes my_recipes.json --epochs 20  # equal steps
    python benchmarks/digits_quality.py --recipe r3gan --minutes 3   # one built-in recipe
    python benchmarks/digits_quality.py --quick               # seconds, a smoke run

A recipes file is a JSON list of {"name": ..., "flags": [train.py flags]}.
`fashion_quality.py` is this benchmark on Fashion-MNIST: it reuses the trainer, the
recipe lists, the measuring loop and the command line from here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from digit_recognition import Recogniser  # noqa: E402

import kgan  # noqa: E402
from kgan import networks  # noqa: E402
from kgan.cli import train as cli  # noqa: E402
from kgan.data.arrays import digits_arrays  # noqa: E402
from kgan.gan import ema as gan_ema  # noqa: E402
from kgan.gan.sampling import sample_images  # noqa: E402
from kgan.images import to_uint8_numpy  # noqa: E402
from kgan.serving.client import save_grid  # noqa: E402
from kgan.training import distribute, runner  # noqa: E402
from kgan.training.config import ConfigError, TrainConfig  # noqa: E402

NUM_CLASSES = 10
GENERATED_SEED = 1_000_000
TABLE_BUDGETS = (1.0, 3.0, 10.0)
TABLE_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                         "digits_quality_table.json")
# Starting points; the families' tuned recipes belong in a --recipes file.
BUILTIN_RECIPES = (
    {"name": "dcgan", "flags": []},  # `python train.py`: the digits preset
    {"name": "resnet", "flags": ["--network", "resnet"]},
    # R3GAN's "tiny" size (kgan.networks.families.r3gan.SIZES): the default widths
    # (256 per stage, 2 blocks) run ~1 step/s on 2 cores, 30x fewer steps than dcgan.
    {"name": "r3gan", "flags": ["--network", "r3gan",
                                "--network-args", "widths=[64,64,32,32],blocks_per_stage=1",
                                "--loss", "relativistic",
                                "--r1-gamma", "0.1", "--r2-gamma", "0.1",
                                "--ema-kimg", "5", "--ema-rampup", "0.05"]},
    # StyleGAN2's own recipe (the stylegan2_digits preset), conditional like the others.
    {"name": "stylegan2", "flags": ["--preset", "stylegan2_digits", "--conditional"]},
)
# --quick: a tiny network per family (others keep their options).
QUICK_NETWORK_ARGS = {"dcgan": {"base_filters": 4}}


# ------------------------------------------------------------------ data
def split(held_out: float, seed: int) -> tuple[tuple, tuple]:
    """Per-class split of the digits: ((train images, labels), (held-out images, labels))."""
    images, labels = digits_arrays()
    rng = np.random.default_rng(seed)
    test = np.zeros(len(labels), bool)
    for c in range(NUM_CLASSES):
        members = rng.permutation(np.flatnonzero(labels == c))
        test[members[: round(held_out * members.size)]] = True
    return (images[~test], labels[~test]), (images[test], labels[test])


def prepared(images: np.ndarray, resolution: int, channels: int,
             value_range: tuple[float, float] | None = (0.0, 1.0)) -> np.ndarray:
    """All images through the training pipeline's preprocessing, in order: [-1, 1] NHWC.
    `value_range`: the images' (low, high), the digits' (0, 1); None infers it (uint8)."""
    data = kgan.data.from_arrays(images, batch_size=len(images), resolution=resolution,
                                 channels=channels, value_range=value_range, shuffle=False)
    return next(iter(data)).numpy()


# ------------------------------------------------------------ the recipe
def train_config(flags: list[str], quick: bool = False, *,
                 datasets: tuple[str, ...] = ("digits",), data_name: str = "the digits data set",
                 quick_network_args: dict = QUICK_NETWORK_ARGS,
                 prog: str = "digits_quality.py") -> TrainConfig:
    """A TrainConfig from train.py flags, exactly as `train.py` resolves them, for a
    benchmark of grayscale `datasets` (`--quick`: 8 px, 2 steps, `quick_network_args`)."""
    config = cli.config_from_args(_train_parser(prog).parse_args(flags))
    if quick:
        small = quick_network_args.get(config.network, {})
        config = dataclasses.replace(config, resolution=8, latent_dim=8, epochs=1,
                                     steps_per_epoch=2,
                                     network_args={**config.network_args, **small})
    if config.dataset not in datasets:
        raise ConfigError(f"this benchmark measures {data_name}, got dataset="
                          f"{config.dataset!r}; drop --dataset / the preset that sets it")
    if config.channels != 1:
        raise ConfigError(f"{data_name} is grayscale: use channels=1, got {config.channels}")
    return dataclasses.replace(config, export=False)


def _train_parser(prog: str = "digits_quality.py") -> argparse.ArgumentParser:
    parser = cli.build_parser()
    parser.prog = f"{prog} (train.py flags)"
    return parser


def set_flags(items: list[str]) -> list[str]:
    """`--set field=value` -> train.py flags (`--field value`, `--[no-]field` for bools)."""
    kinds = {f.name: str(f.type) for f in dataclasses.fields(TrainConfig)}
    flags = []
    for item in items:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or name not in kinds:
            raise ValueError(f"--set takes FIELD=VALUE with a TrainConfig field, got {item!r}; "
                             f"fields: {', '.join(kinds)}")
        flag = "--" + name.replace("_", "-")
        if kinds[name] == "bool":
            if value.lower() not in ("true", "false"):
                raise ValueError(f"--set {name} takes true or false, got {value!r}")
            flags.append(flag if value.lower() == "true" else "--no-" + flag[2:])
        else:
            flags += [flag, value]
    return flags


class Deadline(keras.callbacks.Callback):
    """Counts steps and stops `fit` once `time.perf_counter()` passes `deadline`."""

    def __init__(self, deadline: float):
        super().__init__()
        self.deadline, self.steps, self.logs = deadline, 0, {}

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.steps = batch + 1  # Keras passes the last step of the call (steps_per_execution)
        self.logs = logs or {}
        if time.perf_counter() >= self.deadline:
            self.model.stop_training = True


class ShadowEMA(keras.callbacks.Callback):
    """EMA generators of other half-lives (kimg) kept beside the run's own, in NumPy
    after every step with `kgan.gan.ema.beta` (its rule and ramp-up). The EMA never feeds
    back into training, so one run compares half-lives on one G trajectory: a paired
    comparison that separate runs (each its own steps per minute) cannot give."""

    def __init__(self, generator: keras.Model, half_lives_kimg: list[float],
                 batch_size: int, rampup: float | None):
        super().__init__()
        self.generator, self.batch, self.rampup = generator, batch_size, rampup
        self.trainable = [w.trainable for w in generator.weights]
        start = generator.get_weights()  # as `gan_ema.clone` starts
        self.weights = {kimg: [w.copy() for w in start] for kimg in half_lives_kimg}
        self.step = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.step = int(keras.ops.convert_to_numpy(self.model.step_counter))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        current = self.generator.get_weights()
        for kimg, shadow in self.weights.items():
            beta = keras.ops.convert_to_numpy(gan_ema.beta(
                self.step, self.batch, half_life=kimg * 1000.0, rampup=self.rampup))
            for i, (weight, trainable) in enumerate(zip(current, self.trainable, strict=True)):
                shadow[i] = weight + beta * (shadow[i] - weight) if trainable else weight
        self.step += 1

    def models(self) -> list[tuple[float, keras.Model | None, float | None]]:
        """(half-life, a generator holding its weights, None) per half-life, or (half-life,
        None, an earlier half-life) when its weights equal that one's: under the ramp-up,
        half-lives above the cap so far have not parted yet, and are scored once."""
        out, distinct = [], []
        for kimg, weights in self.weights.items():
            twin = next((k for k, other in distinct if all(
                np.array_equal(a, b) for a, b in zip(other, weights, strict=True))), None)
            model = None
            if twin is None:
                distinct.append((kimg, weights))
                model = gan_ema.clone(self.generator)
                model.set_weights(weights)
            out.append((kimg, model, twin))
        return out


class Trainer:
    """Trains a config's GAN on the training split as `kgan.training.runner` does: each
    epoch's order is fixed by (seed, epoch), so stopping and going on changes nothing.
    `shadow_ema`: half-lives (kimg) of extra EMA generators to keep (`ShadowEMA`)."""

    def __init__(self, config: TrainConfig, images: np.ndarray, labels: np.ndarray,
                 value_range: tuple[float, float] | None = (0.0, 1.0),
                 shadow_ema: list[float] | None = None):
        keras.utils.set_random_seed(config.seed)
        tf.random.set_global_generator(tf.random.Generator.from_seed(config.seed))
        self.env = distribute.setup(config.strategy, config.mixed_precision,
                                    {"auto": "auto", "on": True, "off": False}
                                    [config.jit_compile])
        self.config, self.images, self.labels = config, images, labels
        self.value_range = value_range  # of the images: see `prepared`
        self.steps_per_epoch = config.steps_per_epoch or len(images) // config.batch_size
        with self.env.strategy.scope():
            self.gan = runner.build_gan(config, NUM_CLASSES, self.env.jit_compile,
                                        self.steps_per_epoch)
        self.shadow = None
        if shadow_ema:
            if config.steps_per_execution != 1:
                raise ValueError("--shadow-ema updates after every step: it needs "
                                 "steps_per_execution 1")
            self.shadow = ShadowEMA(self.gan.generator, shadow_ema, config.batch_size,
                                    config.ema_rampup)
        self.step, self.seconds, self.finite = 0, 0.0, True

    def _epoch_data(self, epoch: int, skip: int) -> tf.data.Dataset:
        c = self.config
        data = kgan.data.from_arrays(
            self.images, self.labels if c.conditional else None, batch_size=c.batch_size,
            resolution=c.resolution, channels=c.channels, value_range=self.value_range,
            seed=runner.epoch_seed(c.seed, epoch))
        return data.repeat().skip(skip).take(self.steps_per_epoch - skip)

    def train(self, max_steps: int, budget_seconds: float = float("inf")) -> None:
        """Trains until `max_steps` steps or `budget_seconds` of training in total."""
        while self.finite and self.step < max_steps and self.seconds < budget_seconds:
            start = time.perf_counter()
            epoch, batch = divmod(self.step, self.steps_per_epoch)
            steps = min(self.steps_per_epoch, max_steps - epoch * self.steps_per_epoch) - batch
            deadline = Deadline(start + budget_seconds - self.seconds)
            callbacks = [deadline] if self.shadow is None else [self.shadow, deadline]
            self.gan.fit(self._epoch_data(epoch, batch), epochs=1, steps_per_epoch=steps,
                         shuffle=False, verbose=0, callbacks=callbacks)
            self.seconds += time.perf_counter() - start
            self.step += deadline.steps
            self.finite = all(np.isfinite(float(v)) for v in deadline.logs.values())

    def progress(self) -> dict:
        return {"steps": self.step, "epochs": round(self.step / self.steps_per_epoch, 2),
                "train_seconds": round(self.seconds, 1), "finite": self.finite,
                "policy": self.env.policy, "policy_reason": self.env.policy_reason,
                "load_average": common.load_average()}


# --------------------------------------------------------------- scoring
class Judge:
    """Everything fixed across recipes: the split, both classifiers, the floor.

    What `measure` needs of a judge: train_x / train_y (the GAN's training images and
    labels, in `value_range`), score_gan(gan) -> dict, summary(row) -> str (one line of
    headline figures), grid_prefix (of the sample grids' file names)."""

    value_range = (0.0, 1.0)
    grid_prefix = ""

    def __init__(self, args: argparse.Namespace, resolution: int, channels: int):
        (self.train_x, self.train_y), (test_x, test_y) = split(args.held_out, args.seed)
        self.k, self.min_share = args.k, args.min_share
        self.train_real = prepared(self.train_x, resolution, channels)
        self.test_real = prepared(test_x, resolution, channels)
        self.cnn = kgan.features.train_classifier(self.train_real, self.train_y, NUM_CLASSES,
                                                  epochs=args.classifier_epochs, seed=args.seed)
        self.features = kgan.features.ClassifierFeatures(self.cnn)
        self.svc = Recogniser(self.train_x, self.train_y, args.threshold, args.seed)
        cnn_predicted = np.argmax(self.cnn.predict(self.test_real, verbose=0), -1)
        self.classifiers = {
            "recogniser": Recogniser.description, "threshold": args.threshold,
            "recogniser_held_out_accuracy": round(self.svc.accuracy(test_x, test_y), 4),
            "recogniser_held_out_round_trip": self.svc.rate(self.test_real, test_y),
            "feature_cnn_held_out_accuracy": round(float(np.mean(cnn_predicted == test_y)), 4),
        }
        self.floor = {"samples": "real training split (floor)",
                      **self.score(self.train_real, self.train_y)}

    def score(self, images: np.ndarray, labels: np.ndarray | None = None) -> dict:
        """Recognition, FD, precision/recall and class coverage of `images`."""
        real_f, other_f = self.features(self.test_real), self.features(images)
        precision, recall = kgan.metrics.precision_recall(real_f, other_f, k=self.k)
        predicted = np.argmax(self.cnn.predict(images, batch_size=256, verbose=0), axis=-1)
        shares = np.bincount(predicted, minlength=NUM_CLASSES) / len(predicted)
        return {
            **self.svc.rate(images, labels),
            "frechet_distance": round(kgan.metrics.fid(real_f, other_f), 3),
            "precision": round(precision, 4), "recall": round(recall, 4), "count": len(images),
            "classes_covered": int((shares >= self.min_share / NUM_CLASSES).sum()),
            "class_shares": [round(float(s), 4) for s in shares],
        }

    def score_gan(self, gan: kgan.GAN, generator: keras.Model | None = None) -> dict:
        """Scores of the sampling generator (the EMA one if any, or `generator`) relative
        to the floor; with EMA, the raw generator's headline figures too (same latents)."""
        generated = score_samples(self, gan, len(self.train_real), (
            "recognised", "frechet_distance", "precision", "recall", "classes_covered"),
            generator=generator)
        generated["recognised_ratio"] = round(
            generated["recognised"] / max(self.floor["recognised"], 1e-9), 4)
        return generated

    @staticmethod
    def summary(row: dict) -> str:
        return (f"recognised {row['recognised']:.3f} (ratio {row['recognised_ratio']:.2f}), FD "
                f"{row['frechet_distance']:.3g} ({row['frechet_vs_floor']:.3g} x floor)")


def score_samples(judge, gan: kgan.GAN, count: int, headline: tuple[str, ...],
                  labels: np.ndarray | None = None, generator: keras.Model | None = None
                  ) -> dict:
    """`judge.score(images, labels)` of `count` samples of the sampling generator (the EMA
    one if any; latent seeds GENERATED_SEED + i), its FD relative to `judge.floor`, and with
    EMA the raw generator's `headline` figures (same latents and labels). `generator`:
    score that one (e.g. a `ShadowEMA` generator) on the same latents instead, alone."""
    if generator is None:
        images = gan.generate(count, seed=GENERATED_SEED, labels=labels)
    else:
        images = sample_images(generator, gan.latent_dim, gan.num_classes, count,
                               seed=GENERATED_SEED, labels=labels)
    generated = judge.score(images, labels)
    if gan.ema_generator is not None and generator is None:
        raw = judge.score(sample_images(gan.generator, gan.latent_dim, gan.num_classes, count,
                                        seed=GENERATED_SEED, labels=labels), labels)
        generated["without_ema"] = {k: raw[k] for k in headline}
    generated["frechet_vs_floor"] = round(
        generated["frechet_distance"] / max(judge.floor["frechet_distance"], 1e-9), 2)
    return generated


def save_samples(gan: kgan.GAN, path: str, zoom: int = 4,
                 generator: keras.Model | None = None) -> str:
    """A 10 x 10 PNG grid of the sampling generator (or `generator`), seeds 0-99: with a
    conditional GAN, column j shows digit j (the default label of seed i is i % 10)."""
    images = (gan.generate(100, seed=0) if generator is None else
              sample_images(generator, gan.latent_dim, gan.num_classes, 100, seed=0))
    pixels = to_uint8_numpy(images).repeat(zoom, 1).repeat(zoom, 2)
    return save_grid(pixels, path, columns=10, padding=zoom)


def measure(judge: Judge, name: str, config: TrainConfig, budgets: list[float] | None,
            grids: str | None = None, shadow_ema: list[float] | None = None) -> list[dict]:
    """Trains one recipe; scores it after `config.epochs` epochs or at each budget
    (minutes of training wall clock, the clock paused while scoring); with `grids`, saves
    a 10 x 10 sample grid there per score (column j: class j when conditional). With
    `shadow_ema`, each score adds a row per extra EMA half-life of the same run."""
    trainer = Trainer(config, judge.train_x, judge.train_y, judge.value_range, shadow_ema)
    recipe = {"recipe": name, "config": config.to_dict()}
    rows = []
    for minutes in budgets or [None]:
        if minutes is None:
            trainer.train(config.epochs * trainer.steps_per_epoch)
        else:
            trainer.train(sys.maxsize, minutes * 60.0)
        budget = f"{minutes:g}min" if minutes else f"{config.epochs}ep"
        scored = [(name, {}, None)]
        if trainer.shadow is not None:
            scored += [(f"{name}, EMA {kimg:g} kimg (same run)",
                        {"shadow_ema_kimg": kimg, "shadow_of": name}, (model, twin))
                       for kimg, model, twin in trainer.shadow.models()]
        by_kimg = {}
        for label, extra, shadow in scored:
            model, twin = shadow or (None, None)
            if twin is not None:  # the same weights as an earlier half-life: its scores
                scores = {**by_kimg[twin], "same_weights_as_kimg": twin}
            else:
                scores = judge.score_gan(trainer.gan, generator=model)
                if extra:
                    by_kimg[extra["shadow_ema_kimg"]] = scores
            row = {**recipe, "recipe": label, **extra, "budget_minutes": minutes,
                   **trainer.progress(), **scores}
            if grids and twin is None:  # a twin's row has its twin's grid (from `scores`)
                slug = "".join(c if c.isalnum() or c in "-." else "_" for c in label)
                row["grid"] = scores["grid"] = save_samples(
                    trainer.gan, os.path.join(grids, f"{judge.grid_prefix}{slug}_{budget}.png"),
                    generator=model)
            rows.append(row)
            print(f"  {label}: {row['steps']} steps in {row['train_seconds']:.0f} s, "
                  f"{judge.summary(row)}, load {row['load_average']}", flush=True)
    return rows


def measure_all(judge: Judge, chosen: list[tuple[str, TrainConfig]], args,
                result: dict) -> dict:
    """Measures every (name, config) into `result["rows"]`, writing `args.out` after each
    recipe (a long table keeps what it has measured)."""
    for name, config in chosen:
        result["rows"] += measure(judge, name, config, args.minutes, args.grids,
                                  args.shadow_ema)
        result["load_average_at_end"] = common.load_average()
        common.write_json(result, args.out)
    return result


# ------------------------------------------------------------- command line
def recipes(args, builtin=BUILTIN_RECIPES) -> list[tuple[str, list[str]]]:
    """(name, train.py flags) to measure: the command line's, or the table's list (the
    `builtin` recipes or a --recipes file), or those of it named by --recipe; the command
    line's flags go after each recipe's."""
    own = [*args.train_flags, *set_flags(args.set)]
    if not (args.table or args.recipes or args.recipe):
        return [(args.name, own)]
    listed = builtin
    if args.recipes:
        with open(args.recipes, encoding="utf-8") as file:
            listed = json.load(file)
        if not isinstance(listed, list) or not all(
                isinstance(r, dict) and {"name", "flags"} <= set(r) for r in listed):
            raise ValueError(f"{args.recipes} must hold a JSON list of "
                             '{"name": ..., "flags": [train.py flags]}')
    if args.recipe:
        by_name = {r["name"]: r for r in listed}
        unknown = [n for n in args.recipe if n not in by_name]
        if unknown:
            raise ValueError(f"no recipe {', '.join(map(repr, unknown))}; recipes: "
                             f"{', '.join(by_name)}")
        listed = [by_name[n] for n in args.recipe]
    chosen = []
    for recipe in listed:
        flags = [str(f) for f in recipe["flags"]] + own
        network = getattr(_train_parser().parse_args(flags), "network", None)
        if network is not None and network not in networks.NAMES:
            print(f"skipping recipe {recipe['name']}: network {network!r} is not registered "
                  f"(registered: {', '.join(networks.NAMES)})")
            continue
        chosen.append((recipe["name"], flags))
    return chosen


def configs(args, train_config=train_config, builtin=BUILTIN_RECIPES
            ) -> list[tuple[str, TrainConfig]]:
    """(name, TrainConfig) of every recipe to measure (`recipes`), all of one image size."""
    chosen = [(name, train_config(flags, args.quick)) for name, flags in recipes(args, builtin)]
    if not chosen:
        raise ValueError("no recipe to measure: none of the listed networks is registered")
    first = chosen[0][1]
    if any((c.resolution, c.channels) != (first.resolution, first.channels) for _, c in chosen):
        raise ValueError("all recipes of one table must share resolution and channels")
    return chosen


def cells(row: dict) -> dict:
    """The recipe, budget and steps cells of a result row in a Markdown table."""
    budget = (f"{row['budget_minutes']:g} min" if row["budget_minutes"]
              else f"{row['config']['epochs']} ep ({row['train_seconds']:.0f} s)")
    return {"recipe": row["recipe"] + ("" if row["finite"] else " (diverged)"),
            "budget": budget, "steps": row["steps"]}


def markdown(result: dict) -> str:
    """The result as one Markdown table: a row per (recipe, budget) and the floor."""
    floor = result["floor"]
    columns = ["recipe", "budget", "steps", "recognised (gen / real / ratio)",
               "FD (gen / floor)", "precision", "recall", "classes"]
    lines = []
    for row in result["rows"]:
        lines.append({
            **cells(row),
            columns[3]: f"{row['recognised']:.3f} / {floor['recognised']:.3f} / "
                        f"{row['recognised_ratio']:.2f}",
            columns[4]: f"{row['frechet_distance']:.3g} / {floor['frechet_distance']:.3g}",
            "precision": row["precision"], "recall": row["recall"],
            "classes": row["classes_covered"]})
    lines.append({"recipe": "real training split (floor)", "budget": "-", "steps": "-",
                  columns[3]: f"{floor['recognised']:.3f}",
                  columns[4]: f"{floor['frechet_distance']:.3g}",
                  "precision": floor["precision"], "recall": floor["recall"],
                  "classes": floor["classes_covered"]})
    load = result["machine"]["load_average_at_start"]
    return common.print_table(lines, columns, f"Digits quality ({result['machine']['cpu']}, "
                              f"{result['machine']['cpu_cores']} cores, load average at start "
                              f"{load}); {result['classifiers']['recogniser']}, threshold "
                              f"{result['classifiers']['threshold']}")


def run(args) -> dict:
    """Builds the judge, measures every recipe; JSON-ready result."""
    machine = common.machine()  # load average before the work
    chosen = configs(args)
    first = chosen[0][1]
    judge = Judge(args, first.resolution, first.channels)
    settings = {k: getattr(args, k) for k in ("minutes", "threshold", "classifier_epochs",
                                              "held_out", "min_share", "k", "seed", "quick")}
    result = {"benchmark": "digits_quality", "machine": machine, "settings": settings,
              "train_images": len(judge.train_real), "held_out_images": len(judge.test_real),
              "classifiers": judge.classifiers, "floor": judge.floor, "rows": []}
    return measure_all(judge, chosen, args, result)


def parser(description: str, builtin=BUILTIN_RECIPES, table_budgets=TABLE_BUDGETS,
           table_out: str = TABLE_OUT, recipe_aliases: tuple[str, ...] = (),
           ) -> argparse.ArgumentParser:
    """The command line both quality benchmarks share; each adds its own options and
    calls `parse`."""
    p = argparse.ArgumentParser(
        description=description,
        epilog="Any other flag is a train.py flag (--preset, --network, --network-args, "
               "--config, --epochs, --loss, ...) and resolves as train.py resolves it.")
    p.set_defaults(table_budgets=list(table_budgets), table_out=table_out)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="a TrainConfig field, e.g. --set loss=relativistic (repeatable)")
    p.add_argument("--minutes", type=_budgets, metavar="M[,M...]",
                   help="train against the wall clock, scoring at each budget (minutes); "
                        "default: the config's epochs")
    p.add_argument("--table", action="store_true",
                   help=f"measure the built-in recipes at budgets {list(table_budgets)} min "
                        f"(or --minutes); --out defaults to {os.path.relpath(table_out)}")
    p.add_argument("--recipes", metavar="FILE",
                   help="measure these recipes (a JSON list) instead of the command line's; "
                        "with --table, instead of the built-in ones")
    p.add_argument("--recipe", *recipe_aliases, action="append", default=[], metavar="NAME",
                   help="measure this built-in recipe (repeatable; the command line's flags "
                        f"go on top): {', '.join(r['name'] for r in builtin)}")
    p.add_argument("--name", default="cli", help="recipe name in the output")
    p.add_argument("--min-share", type=float, default=0.2,
                   help="a class is covered with >= this fraction of the uniform share")
    p.add_argument("--threshold", type=float, default=0.9,
                   help="smallest top class probability that counts as recognised")
    p.add_argument("--k", type=int, default=5, help="neighbourhood of precision/recall")
    p.add_argument("--seed", type=int, default=0, help="seed of the split and classifiers")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--out", help="write the JSON result here")
    p.add_argument("--shadow-ema", type=_kimgs, metavar="KIMG[,KIMG...]",
                   help="also keep EMA generators of these half-lives (kimg, the run's "
                        "ramp-up) beside the run's own, and score each at every budget: "
                        "half-lives compared on one training run")
    p.add_argument("--grids", metavar="DIR",
                   help="save a 10 x 10 sample grid (PNG) per recipe and budget here")
    return p


def parse(p: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Parses `parser`'s options; unknown flags are train.py's (`args.train_flags`)."""
    args, args.train_flags = p.parse_known_args(argv)
    if args.table:
        args.minutes = args.minutes or args.table_budgets
        args.out = args.out or args.table_out
    if args.quick:
        args.classifier_epochs = 1
    return args


def parse_args(argv=None) -> argparse.Namespace:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--classifier-epochs", type=int, default=10)
    p.add_argument("--held-out", type=float, default=0.2, help="held-out share per class")
    return parse(p, argv)


def _positive_floats(text: str, condition, expected: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(not v > 0 for v in values) or not condition(values):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return values


def _budgets(text: str) -> list[float]:
    return _positive_floats(text, lambda v: v == sorted(v),
                            "increasing positive minutes like 1,3,10")


def _kimgs(text: str) -> list[float]:
    return _positive_floats(text, lambda v: len(set(v)) == len(v),
                            "distinct positive half-lives in kimg like 10,20")


def main(argv=None, benchmark=None) -> dict:
    """Runs the benchmark from command-line arguments; returns the result dict.
    `benchmark`: another module with parse_args, run and markdown (fashion_quality)."""
    benchmark = benchmark or sys.modules[__name__]
    args = benchmark.parse_args(argv)
    result = benchmark.run(args)
    result["markdown"] = benchmark.markdown(result)
    common.write_json(result, args.out)
    return result


def command(main, prog: str) -> None:
    """Runs `main()`; a bad config or input is one line on stderr and exit status 2."""
    try:
        main()
    except (ConfigError, ValueError) as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    command(main, "digits_quality.py")
