"""Mode coverage on the 2-D Gaussian mixtures of the mode-collapse literature.

Two targets: the 25-Gaussian grid (means on {-4,-2,0,2,4}^2, std 0.05) and the
8-Gaussian ring (radius 1, std 0.01). For each of `--seeds` seeds a fresh
`kgan.networks.mlp` + `kgan.GAN` pair trains on fresh mixture samples, then draws
2,500 samples. A sample is *high quality* when it lies within 3 standard deviations
of its nearest mode; a mode is *covered* when at least one high-quality sample lands
on it (PacGAN's definition; Lin et al., 2018, Table 1). Reported: modes covered and
% high-quality samples, mean +- standard error over the seeds, beside the published
grid baselines (PacGAN Table 1: GAN 17.3 modes / 94.8 %, PacGAN4 24.8 / 93.6 %).

Run:
    python benchmarks/mixture_quality.py --out benchmarks/results/mixture_quality.json
    python benchmarks/mixture_quality.py --recipe old      # the earlier recipe, to compare
    python benchmarks/mixture_quality.py --quick          # seconds, a smoke run

The default recipe ("new": RpGAN + R1 + R2, 4-D latent, 25k steps) should give all 25
grid modes with about 95-97 % high-quality samples per seed (the rest sits on the
bridges between modes, which a continuous generator cannot empty) and about 70 s per
seed and mixture on 2 otherwise idle CPU cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import kgan  # noqa: E402

# Published grid results (PacGAN, Lin et al., 2018, Table 1): modes, % high quality.
BASELINES = {
    "grid": [
        {"method": "GAN (PacGAN Table 1)", "modes": 17.3, "high_quality_pct": 94.8},
        {"method": "PacGAN4 (PacGAN Table 1)", "modes": 24.8, "high_quality_pct": 93.6},
    ],
    "ring": [],
}


@dataclasses.dataclass(frozen=True)
class Mixture:
    """An equal-weight isotropic Gaussian mixture in 2-D."""

    name: str
    means: np.ndarray  # [modes, 2]
    std: float

    def sample(self, n: int, seed) -> tf.Tensor:
        """n points, float32 [n, 2], a stateless function of `seed` (int32 [2])."""
        modes = tf.random.stateless_uniform(
            [n], seed=seed, maxval=len(self.means), dtype=tf.int32
        )
        noise = tf.random.stateless_normal([n, 2], seed=seed + 1, stddev=self.std)
        return tf.gather(tf.constant(self.means, tf.float32), modes) + noise


def grid() -> Mixture:
    values = np.arange(-4.0, 5.0, 2.0)
    means = np.array([(x, y) for x in values for y in values], np.float32)
    return Mixture("grid", means, 0.05)


def ring() -> Mixture:
    angles = 2 * np.pi * np.arange(8) / 8
    return Mixture("ring", np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32), 0.01)


MIXTURES = {"grid": grid, "ring": ring}


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe; `RECIPES` holds the named ones (see benchmarks/RESULTS.md)."""

    steps: int = 15000
    batch_size: int = 256
    latent_dim: int = 2
    hidden: tuple[int, ...] = (128, 128, 128)
    loss: str = "non_saturating"
    lr: float = 1e-3
    cosine_decay: bool = True
    lr_end: float = 0.0
    beta_1: float = 0.5
    d_steps: int = 1
    r1_gamma: float = 0.1
    r2_gamma: float = 0.0
    gamma_end: float | None = None
    ema_decay: float | None = 0.999
    steps_per_execution: int = 50


RECIPES = {
    # Non-saturating loss with R1: all 25 grid modes, but 84-96 % high quality by seed.
    "old": Recipe(),
    # RpGAN + R1 + R2 with gamma cosine-ramped 0.1 -> 0.01 (R3GAN, Huang et al. 2024),
    # a 4-D latent and 25k steps: fewer samples left on the bridges between modes.
    "new": Recipe(steps=25000, latent_dim=4, loss="relativistic", r2_gamma=0.1,
                  gamma_end=0.01),
}

def score(samples: np.ndarray, mixture: Mixture) -> dict:
    """Modes covered and % high-quality samples (within 3 std of the nearest mode)."""
    dist = np.linalg.norm(samples[:, None, :] - mixture.means[None], axis=-1)
    nearest, gap = dist.argmin(1), dist.min(1)
    good = gap <= 3 * mixture.std
    return {
        "modes": int(np.unique(nearest[good]).size),
        "high_quality_pct": float(100 * good.mean()),
    }


def dataset(mixture: Mixture, recipe: Recipe, seed: int) -> tf.data.Dataset:
    """Fresh mixture samples every step, reproducible from `seed`."""
    def batch(step):
        pair = tf.stack([tf.cast(seed, tf.int64), step]) * 2
        return mixture.sample(recipe.batch_size, tf.cast(pair, tf.int32))

    return tf.data.Dataset.range(recipe.steps).map(batch).prefetch(4)


def learning_rate(recipe: Recipe, updates_per_step: int):
    """Constant, or cosine-decayed to `lr_end` over the run (sharpens the modes at the end)."""
    if not recipe.cosine_decay:
        return recipe.lr
    return kgan.schedules.Cosine(recipe.lr, recipe.lr_end, recipe.steps * updates_per_step)


def penalty_weight(recipe: Recipe, gamma: float):
    """R1/R2 weight: constant, or cosine-ramped to `gamma_end` over the run (R3GAN)."""
    if recipe.gamma_end is None or gamma == 0:
        return gamma
    return kgan.schedules.Cosine(gamma, recipe.gamma_end, recipe.steps)


def build_gan(recipe: Recipe, seed: int) -> kgan.GAN:
    """A compiled `kgan.networks.mlp` GAN for 2-D data, set up as `recipe` says."""
    keras.utils.set_random_seed(seed)
    generator, discriminator = kgan.networks.mlp(2, recipe.latent_dim, recipe.hidden)
    gan = kgan.GAN(generator, discriminator, latent_dim=recipe.latent_dim,
                   d_steps=recipe.d_steps, ema_decay=recipe.ema_decay, seed=seed)
    gan.compile(
        keras.optimizers.Adam(learning_rate(recipe, recipe.d_steps), beta_1=recipe.beta_1),
        keras.optimizers.Adam(learning_rate(recipe, 1), beta_1=recipe.beta_1),
        loss=recipe.loss, r1_gamma=penalty_weight(recipe, recipe.r1_gamma),
        r2_gamma=penalty_weight(recipe, recipe.r2_gamma),
        steps_per_execution=recipe.steps_per_execution,
    )
    return gan


def train_one(mixture: Mixture, recipe: Recipe, seed: int, samples: int) -> dict:
    """Trains one GAN on the mixture and scores `samples` generated points."""
    gan = build_gan(recipe, seed)
    start = time.perf_counter()
    gan.fit(dataset(mixture, recipe, seed), epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    result = score(gan.generate(samples, seed=10_000 * (seed + 1)), mixture)
    return {"seed": seed, **result, "train_seconds": round(seconds, 1)}


def summarize(name: str, runs: list[dict], num_modes: int) -> dict:
    modes, modes_sem = common.mean_sem([r["modes"] for r in runs])
    quality, quality_sem = common.mean_sem([r["high_quality_pct"] for r in runs])
    return {
        "mixture": name, "total_modes": num_modes,
        "modes": round(modes, 2), "modes_sem": round(modes_sem, 2),
        "high_quality_pct": round(quality, 2), "high_quality_pct_sem": round(quality_sem, 2),
        "all_modes_runs": sum(r["modes"] == num_modes for r in runs), "runs": runs,
    }


def run(mixtures: list[str], recipe: Recipe, seeds: int, samples: int = 2500) -> dict:
    """Trains `seeds` GANs per mixture; returns the JSON-ready result."""
    machine = common.machine()  # load average before the work
    result = {"benchmark": "mixture_quality", "machine": machine,
              "recipe": dataclasses.asdict(recipe), "samples": samples, "mixtures": {}}
    for name in mixtures:
        mixture = MIXTURES[name]()
        runs = [train_one(mixture, recipe, seed, samples) for seed in range(seeds)]
        for r in runs:
            print(f"{name} seed {r['seed']}: {r['modes']} modes, {r['high_quality_pct']:.1f} % "
                  f"high quality ({r['train_seconds']} s)", flush=True)
        result["mixtures"][name] = summarize(name, runs, len(mixture.means))
    result["load_average_at_end"] = common.load_average()
    return result


def table_rows(result: dict) -> list[dict]:
    rows = []
    for name, summary in result["mixtures"].items():
        rows.append({
            "mixture": name, "method": f"kgan ({len(summary['runs'])} seeds)",
            "modes": f"{summary['modes']:.1f} ± {summary['modes_sem']:.1f} / "
                     f"{summary['total_modes']}",
            "high quality": f"{summary['high_quality_pct']:.1f} ± "
                            f"{summary['high_quality_pct_sem']:.1f} %",
        })
        for base in BASELINES[name]:
            rows.append({"mixture": name, "method": base["method"],
                         "modes": f"{base['modes']} / {summary['total_modes']}",
                         "high quality": f"{base['high_quality_pct']} %"})
    return rows


def optional_float(text: str) -> float | None:
    """A float, or None for "none" (e.g. `--gamma-end none`: a constant R1/R2 weight)."""
    return None if text.lower() == "none" else float(text)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                argument_default=argparse.SUPPRESS)
    p.add_argument("--mixtures", default="grid,ring", help="comma-separated: grid, ring")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--samples", type=int, default=2500)
    p.add_argument("--recipe", choices=sorted(RECIPES), default="new",
                   help="the base recipe (old: the earlier non-saturating one); flags override it")
    p.add_argument("--steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--hidden", help="comma-separated widths, e.g. 128,128,128")
    p.add_argument("--latent-dim", type=int)
    p.add_argument("--loss", help="non_saturating, relativistic, hinge, ...")
    p.add_argument("--lr", type=float)
    p.add_argument("--lr-end", type=float, help="where the cosine learning-rate decay ends")
    p.add_argument("--constant-lr", action="store_true", default=False,
                   help="no cosine learning-rate decay")
    p.add_argument("--d-steps", type=int)
    p.add_argument("--r1-gamma", type=float)
    p.add_argument("--r2-gamma", type=float)
    p.add_argument("--gamma-end", type=optional_float,
                   help="cosine-ramp R1/R2 gamma to this value; none keeps them constant")
    p.add_argument("--ema-decay", type=float, help="0 disables the EMA generator")
    p.add_argument("--quick", action="store_true", default=False,
                   help="tiny sizes: a smoke run of seconds")
    p.add_argument("--out", default=None, help="write the JSON result here")
    return p.parse_args(argv)


def recipe_from(args: argparse.Namespace) -> Recipe:
    """The named base recipe with the fields given as flags replaced."""
    fields = {f.name for f in dataclasses.fields(Recipe)}
    changes = {k: v for k, v in vars(args).items() if k in fields}
    if "hidden" in changes:
        changes["hidden"] = tuple(int(h) for h in changes["hidden"].split(","))
    if "ema_decay" in changes:
        changes["ema_decay"] = changes["ema_decay"] or None
    if args.constant_lr:
        changes["cosine_decay"] = False
    recipe = dataclasses.replace(RECIPES[args.recipe], **changes)
    if args.quick:
        recipe = dataclasses.replace(recipe, steps=20, batch_size=32, hidden=(16,),
                                     steps_per_execution=10)
    return recipe


def main(argv=None) -> dict:
    """Runs the benchmark from command-line arguments; returns the result dict."""
    args = parse_args(argv)
    seeds, samples = (2, 200) if args.quick else (args.seeds, args.samples)
    result = {"recipe_name": args.recipe,
              **run(args.mixtures.split(","), recipe_from(args), seeds, samples)}
    common.print_table(table_rows(result), ["mixture", "method", "modes", "high quality"],
                       "Mode coverage, 2-D mixtures")
    common.write_json(result, args.out)
    return result


if __name__ == "__main__":
    main()
