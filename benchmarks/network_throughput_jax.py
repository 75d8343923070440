"""Throughput of kgan's `GAN.fit` on Keras 3's JAX backend (XLA), beside a hand-written step.

Two kinds of configuration, each timed under every dtype policy asked for:
  * `family:resolution:batch` (e.g. `dcgan:128:256`): the family's networks with kgan's
    default recipe (non-saturating loss, Adam 2e-4 / beta_1 0.5); any image family. For
    dcgan and resnet a second trainer runs in the same process on the same networks,
    their repeats taken in turns so machine load hits both alike:
      - `kgan`: `kgan.GAN.fit` (the backend-neutral core on JAX);
      - `reference`: the same GAN step written by hand as one jitted, stateless JAX
        function (`Trainer` below), the floor of what Keras + XLA cost for these
        networks, so `kgan / reference` is kgan's own overhead (target >= 0.9).
  * `preset:NAME[:batch]` (e.g. `preset:cifar10`, `preset:faces128`): `kgan.GAN.fit` with
    the preset's networks, batch and whole recipe, built by `kgan.training.recipe.build_gan`
    as `train.py` builds it (TensorFlow-free): cifar10 is
    R3GAN's CIFAR-10 configuration (32 px, class-conditional, batch 512, relativistic loss
    with R1 + R2 every step, R3GAN's ADA pipeline at a ramped probability, EMA); faces128
    is StyleGAN2 `--cfg auto` at 128 px (batch 32, lazy R1 every 16 D steps, path length
    every 4 G steps, style mixing 0.9, ADA with its bgc pipeline, EMA, the 4 highest
    resolutions in the mixed policy): the augmentation work of the official code.
    kgan only: the hand-written step covers the default recipe alone.
It runs where TensorFlow is absent (the lent GPU machines carry JAX only): kgan's JAX
path imports no TensorFlow when fed NumPy arrays. `benchmarks/gpu/run.sh` runs it there
beside the official PyTorch code.

The default recipe's step: D scores real and fake in one call (D has no batch norm), then
G trains on fresh noise through the updated D; Adam (2e-4, beta_1 0.5) for both; batch
norm in training mode; mixed_float16 through `keras.optimizers.LossScaleOptimizer`
(dynamic loss scaling). `kgan.GAN.fit` is timed over an in-memory batch repeated for the
steps (NumPy, as a data pipeline would hand it; labels too for a conditional preset).
A preset's timed window is a whole number of its lazy-regularisation periods (16 steps
for faces128), so every window holds the same mix of regularised and plain steps.

FLOPs, two counts per row, both by XLA's cost analysis of the unoptimised HLO lowered for
the CPU (before any convolution becomes a cuDNN call). XLA counts the multiply-adds a
convolution really does, leaving out kernel taps that fall on padding or between the input
pixels of a transposed convolution, so its count is 7-12 % below TensorFlow's graph
profiler's (every tap) for the DCGANs, and MFU is the stricter for it.
  * `model_gflops_per_image`: 4 G + 9 D forward passes per image, as in
    `train_throughput.py` (the default recipe's nominal step). The reference's `mfu` and
    a default-recipe row's `kgan_mfu` use it.
  * `step_gflops_per_image`: kgan's whole jitted train step (both updates, R1 / R2 double
    backward passes, path length, augmentation, style mixing, EMA, optimizer), divided by
    the batch. Lazy regularisation is counted as done: the step is lowered three times
    (no regularisation; R1 / R2 every step; path length every step) and the extra FLOPs
    of each divided by its interval (XLA would count a conditional's dearer branch every
    step). A preset row's `kgan_mfu` uses it (`kgan_mfu_convention` says which);
    `kgan_step_mfu` is the same for every row.
MFU divides the achieved FLOP/s by the device's dense peak for the policy
(`common.GPU_PEAK_TFLOPS`; float32 = the TF32 peak). Under a mixed policy StyleGAN2 keeps
its lower resolutions in float32 (as the reference), and they are still divided by the
16-bit peak.

Run (the backend is chosen before Keras loads; KERAS_BACKEND=jax is implied):
    python benchmarks/network_throughput_jax.py --out benchmarks/results/gpu_jax.json
    python benchmarks/network_throughput_jax.py --configs dcgan:128:256 --policies mixed_bfloat16
    python benchmarks/network_throughput_jax.py --configs preset:cifar10,preset:faces128
    python benchmarks/network_throughput_jax.py --quick          # seconds, on a CPU
    python benchmarks/network_throughput_jax.py --quick --configs preset:cifar10,preset:faces128
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time

os.environ["KERAS_BACKEND"] = "jax"

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
import xla_profile  # noqa: E402

import kgan  # noqa: E402
from kgan.training import recipe  # noqa: E402
from kgan.training.config import TrainConfig  # noqa: E402
from kgan.training.presets import PRESETS  # noqa: E402

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
# Image families (mlp models flat vectors); the hand-written reference step covers the
# two whose generator is a plain G(z) with the default recipe.
FAMILIES = tuple(name for name in kgan.networks.NAMES if kgan.networks.get(name).image_data)
REFERENCE_FAMILIES = ("dcgan", "resnet")
CONFIGS = "dcgan:64:64,dcgan:128:64,dcgan:128:256,resnet:64:64"
# What benchmarks/gpu/run.sh times on a lent GPU (issue 22).
GPU_CONFIGS = "dcgan:64:64,dcgan:128:256,preset:cifar10,preset:faces128"
LATENT_DIM = 128
# Network options of the default-recipe configs (full size; --quick shrinks them).
NETWORK_ARGS = {"dcgan": {"base_filters": 64}}
QUICK_NETWORK_ARGS = {
    "dcgan": {"base_filters": 4}, "resnet": {"g_width": 4, "d_width": 4},
    "r3gan": {"widths": [16, 16, 16], "blocks_per_stage": 1, "group_size": 8},
    "stylegan2": {"cbase": 128, "cmax": 8, "mapping_layers": 1, "w_dim": 8},
}
# --quick: each preset's recipe as it is, on tiny networks at a small size.
QUICK_PRESETS = {
    "r3gan": dict(resolution=8, batch_size=4, latent_dim=8,
                  network_args={"widths": [16, 16], "blocks_per_stage": 1, "group_size": 8}),
    "stylegan2": dict(resolution=16, batch_size=4, latent_dim=8,
                      network_args={"cbase": 128, "cmax": 8, "w_dim": 8}),
}
# Training-set sizes behind the presets' epoch-long ramps (durations only: no cost).
DATASET_SIZES = {"cifar10": 50_000, "celeb_a": 162_770}
NUM_CLASSES = 10  # labels of a conditional preset (CIFAR-10's)


@dataclasses.dataclass(frozen=True)
class Config:
    """One timed configuration: a family with the default recipe, or a preset."""

    family: str
    resolution: int
    batch_size: int
    preset: str | None = None
    train_config: TrainConfig | None = None  # the preset's, overrides applied

    @property
    def name(self) -> str:
        return f"preset:{self.preset}" if self.preset else self.family

    @property
    def period(self) -> int:
        """Steps after which the step's mix of lazy branches repeats."""
        c = self.train_config
        if c is None:
            return 1
        return math.lcm(c.reg_interval if c.r1_gamma or c.r2_gamma else 1,
                        c.pl_interval if c.pl_weight else 1)

    @property
    def has_reference(self) -> bool:
        return self.preset is None and self.family in REFERENCE_FAMILIES


def build_networks(family: str, resolution: int, policy: str, network_args: dict,
                   latent_dim: int = LATENT_DIM, num_classes: int | None = None):
    """kgan's (generator, discriminator) for `family` under the dtype `policy`."""
    if family not in FAMILIES:
        raise ValueError(f"Unknown family {family!r}: one of {', '.join(FAMILIES)}.")
    keras.config.set_dtype_policy(policy)
    try:
        return kgan.networks.get(family)(resolution, 3, latent_dim, num_classes=num_classes,
                                         **network_args)
    finally:
        keras.config.set_dtype_policy("float32")


def optimizer(policy: str) -> keras.optimizers.Optimizer:
    adam = keras.optimizers.Adam(2e-4, beta_1=0.5)
    return keras.optimizers.LossScaleOptimizer(adam) if policy == "mixed_float16" else adam


class Trainer:
    """A jitted, stateless GAN train step over (G, D) and its state as JAX arrays."""

    def __init__(self, generator, discriminator, policy: str, seed: int = 0):
        self.g, self.d = generator, discriminator
        self.g_opt, self.d_opt = optimizer(policy), optimizer(policy)
        self.g_opt.build(generator.trainable_variables)
        self.d_opt.build(discriminator.trainable_variables)
        values = lambda variables: [v.value for v in variables]  # noqa: E731
        self.state = (
            values(generator.trainable_variables), values(generator.non_trainable_variables),
            values(discriminator.trainable_variables),
            values(discriminator.non_trainable_variables),
            values(self.g_opt.variables), values(self.d_opt.variables),
            jax.random.key(seed),
        )
        self.step = jax.jit(self._step, donate_argnums=0)

    @staticmethod
    def _scaled(opt, opt_vars, loss):
        """The loss times the current dynamic loss scale (mixed_float16), else the loss."""
        if not isinstance(opt, keras.optimizers.LossScaleOptimizer):
            return loss
        with keras.StatelessScope(state_mapping=list(zip(opt.variables, opt_vars, strict=True))):
            return opt.scale_loss(loss)

    def _step(self, state, real):
        g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov, key = state
        key, d_key, g_key = jax.random.split(key, 3)
        n = real.shape[0]
        fake, g_ntv = self.g.stateless_call(
            g_tv, g_ntv, jax.random.normal(d_key, (n, LATENT_DIM)), training=True)
        fake = jax.lax.stop_gradient(fake)

        def d_loss(d_tv, d_ntv):
            logits, d_ntv = self.d.stateless_call(
                d_tv, d_ntv, jnp.concatenate([real, fake.astype(real.dtype)]), training=True)
            logits = logits.astype("float32")
            loss = jnp.mean(jax.nn.softplus(-logits[:n])) + jnp.mean(jax.nn.softplus(logits[n:]))
            return self._scaled(self.d_opt, d_ov, loss), (loss, d_ntv)

        (_, (d_value, d_ntv)), grads = jax.value_and_grad(d_loss, has_aux=True)(d_tv, d_ntv)
        d_tv, d_ov = self.d_opt.stateless_apply(d_ov, grads, d_tv)

        z = jax.random.normal(g_key, (n, LATENT_DIM))

        def g_loss(g_tv, g_ntv):
            fake, g_ntv = self.g.stateless_call(g_tv, g_ntv, z, training=True)
            logits, _ = self.d.stateless_call(d_tv, d_ntv, fake, training=True)
            loss = jnp.mean(jax.nn.softplus(-logits.astype("float32")))
            return self._scaled(self.g_opt, g_ov, loss), (loss, g_ntv)

        (_, (g_value, g_ntv)), grads = jax.value_and_grad(g_loss, has_aux=True)(g_tv, g_ntv)
        g_tv, g_ov = self.g_opt.stateless_apply(g_ov, grads, g_tv)
        return (g_tv, g_ntv, d_tv, d_ntv, g_ov, d_ov, key), (d_value, g_value)

    def run(self, real, steps: int):
        """`steps` train steps; returns the last (d_loss, g_loss) once they are done."""
        losses = None
        for _ in range(steps):
            self.state, losses = self.step(self.state, real)
        return jax.block_until_ready(losses)


def _with_policy(policy: str, fn):
    keras.mixed_precision.set_global_policy(policy)
    try:
        return fn()
    finally:
        keras.mixed_precision.set_global_policy("float32")


def default_gan(generator, discriminator, policy: str) -> kgan.GAN:
    """kgan's default recipe on (G, D), compiled under `policy` (loss scaling for float16)."""
    def build():
        gan = kgan.GAN(generator, discriminator, latent_dim=LATENT_DIM)
        gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5),
                    keras.optimizers.Adam(2e-4, beta_1=0.5), loss="non_saturating")
        return gan
    return _with_policy(policy, build)


def preset_gan(config: TrainConfig, policy: str) -> kgan.GAN:
    """The GAN `train.py` builds for `config` (`kgan.training.recipe.build_gan`), under
    `policy`. Ramps span the preset's epochs of its data set's size."""
    steps_per_epoch = math.ceil(DATASET_SIZES.get(config.dataset, 1000) / config.batch_size)
    num_classes = NUM_CLASSES if config.conditional else None
    return _with_policy(policy, lambda: recipe.build_gan(
        config, num_classes, jit_compile=True, steps_per_epoch=steps_per_epoch))


class KganFit:
    """`kgan.GAN.fit` on `real` (and `labels`) repeated, one fit call per timed run."""

    def __init__(self, gan: kgan.GAN, policy: str, real, labels=None):
        self.gan, self.policy = gan, policy
        self.batch = np.asarray(real)
        self.labels = None if labels is None else np.asarray(labels)
        self._data: dict = {}

    def data(self, steps: int):
        """The batch repeated `steps` times, made once per length: building it is no part
        of the timed fit (1.6 GB for 32 steps of batch 256 at 128 px)."""
        if steps not in self._data:
            self._data[steps] = (np.concatenate([self.batch] * steps), None if self.labels
                                 is None else np.concatenate([self.labels] * steps))
        return self._data[steps]

    def run(self, steps: int) -> float:
        """`steps` train steps in one fit call; the last logged d_loss."""
        x, y = self.data(steps)
        history = _with_policy(self.policy, lambda: self.gan.fit(
            x, y, batch_size=len(self.batch), epochs=1, shuffle=False, verbose=0))
        return history.history["d_loss"][-1]


def forward_flops(model: keras.Model, batch: int = 8) -> float:
    """FLOPs of one forward pass per example, by XLA's cost analysis of the HLO.

    Lowered for the CPU on any machine: model FLOPs are a property of the network, and
    the unoptimised CPU module still holds every convolution as one HLO op to count.
    """
    cpu = jax.devices("cpu")[0]
    on_cpu = lambda values: [jax.device_put(v, cpu) for v in values]  # noqa: E731
    inputs = on_cpu(jnp.zeros((batch, *spec.shape[1:]), "float32") for spec in model.inputs)
    tv = on_cpu(v.value for v in model.trainable_variables)
    ntv = on_cpu(v.value for v in model.non_trainable_variables)
    call = lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0]  # noqa: E731
    cost = jax.jit(call).lower(tv, ntv, inputs[0] if len(inputs) == 1 else inputs).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) / batch


def step_flops(gan: kgan.GAN, real, labels=None) -> dict:
    """FLOPs of kgan's jitted train step for the whole batch, by XLA's cost analysis of
    the unoptimised CPU HLO (abstract values: nothing runs), lazy branches amortised:
    {"base", "r1" (R1/R2 every step), "pl" (path length every step), "per_step"}.

    Lowered from `gan.train_step` after the GAN has trained (optimizer slots built), with
    the options that decide the regularised branches switched for each lowering."""
    from kgan.gan.backends import jax as jax_backend

    cpu = jax.sharding.SingleDeviceSharding(jax.devices("cpu")[0])
    spec = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=cpu)  # noqa: E731
    state = tuple([spec(v.value) for v in group] for group in jax_backend._groups(gan))
    data = (spec(np.asarray(real)),) if labels is None else (
        spec(np.asarray(real)), spec(np.asarray(labels)))

    def flops(**options) -> float:
        saved = {k: getattr(gan, k) for k in options}
        for k, v in options.items():
            setattr(gan, k, v)
        try:
            # A fresh function each time: jit caches traces per function, and a bound
            # method is the same function for every lowering.
            step = lambda state, data: gan.train_step(state, data)  # noqa: E731
            cost = jax.jit(step).lower(state, data).cost_analysis()
        finally:
            for k, v in saved.items():
                setattr(gan, k, v)
        cost = cost[0] if isinstance(cost, (list, tuple)) else cost
        return float(cost["flops"])

    penalised = bool(gan._penalty_names())
    base = flops(r1_gamma=0.0, r2_gamma=0.0, pl_weight=0.0)
    r1 = flops(reg_interval=1, pl_weight=0.0) if penalised else base
    pl = flops(r1_gamma=0.0, r2_gamma=0.0, pl_interval=1) if gan.pl_weight > 0 else base
    per_step = base + (r1 - base) / gan.reg_interval + (pl - base) / gan.pl_interval
    return {"base": base, "r1": r1, "pl": pl, "per_step": per_step}


def _images(resolution: int, batch_size: int, conditional: bool):
    real = np.asarray(jax.random.uniform(jax.random.key(1), (batch_size, resolution,
                                                             resolution, 3),
                                         minval=-1.0, maxval=1.0))
    labels = (np.arange(batch_size, dtype="int32") % NUM_CLASSES) if conditional else None
    return real, labels


def measure(cfg: Config, policy: str, args) -> tuple[dict, KganFit]:
    """Median ms/step over repeats of one (config, policy): one result row, and the
    trainer for `profile_row`."""
    steps = args.steps if args.quick else cfg.period * math.ceil(args.steps / cfg.period)
    network_args = args.network_args.get(cfg.family, {})
    conditional = bool(cfg.train_config and cfg.train_config.conditional)
    real, labels = _images(cfg.resolution, cfg.batch_size, conditional)
    model_flops = None
    trainer = None
    if cfg.has_reference and args.reference:
        g, d = build_networks(cfg.family, cfg.resolution, policy, network_args)
        model_flops = 4 * forward_flops(g) + 9 * forward_flops(d)
        trainer = Trainer(g, d, policy)
        compile_s = common.timed(lambda: trainer.run(jnp.asarray(real), args.warmup))
    if cfg.preset:
        gan = preset_gan(cfg.train_config, policy)
    else:
        gan = default_gan(*build_networks(cfg.family, cfg.resolution, policy, network_args),
                          policy)
    if model_flops is None:
        try:  # 4G + 9D; a style-based G's forward also counts its mapping network
            model_flops = 4 * forward_flops(gan.generator) + 9 * forward_flops(
                gan.discriminator)
        except Exception as error:  # noqa: BLE001 - a count we can do without
            print(f"  (no 4G+9D count for {cfg.name}: {type(error).__name__}: {error})",
                  flush=True)
    fit = KganFit(gan, policy, real, labels)
    fit_compile_s = common.timed(lambda: fit.run(args.warmup))
    counted = step_flops(gan, real, labels) if args.step_flops else None
    fit.data(steps)  # made before the clock starts
    seconds, fit_seconds = [], []
    for _ in range(args.repeats):
        if trainer is not None:
            seconds.append(common.timed(lambda: trainer.run(jnp.asarray(real), steps)))
        fit_seconds.append(common.timed(lambda: fit.run(steps)))
    kgan_d_loss = float(fit.run(cfg.period if not args.quick else 1))
    if not math.isfinite(kgan_d_loss):
        raise FloatingPointError(f"kgan.GAN {cfg.name} {cfg.resolution}px {policy}: "
                                 "non-finite loss")
    device, peak = common.device_peak_tflops(jax.devices()[0].device_kind, policy)
    kgan_ms = 1e3 * common.median(fit_seconds) / steps
    kgan_images = 1e3 * cfg.batch_size / kgan_ms
    step_per_image = counted["per_step"] / cfg.batch_size if counted else None
    mfu = lambda flops, images: (  # noqa: E731
        round(flops * images / (peak * 1e12), 4) if peak and flops else None)
    convention = "4G+9D" if not cfg.preset else "xla_step"
    kgan_flops = model_flops if convention == "4G+9D" else step_per_image
    row = {
        "network": cfg.name, "family": cfg.family, "resolution": cfg.resolution,
        "batch_size": cfg.batch_size, "policy": policy, "steps": steps,
        "model_gflops_per_image": round(model_flops / 1e9, 4) if model_flops else None,
        "step_gflops_per_image": round(step_per_image / 1e9, 4) if counted else None,
        "step_gflops": ({k: round(v / 1e9, 3) for k, v in counted.items()}
                        if counted else None),
        "peak_tflops": peak, "device": device,
        "kgan_ms_per_step": round(kgan_ms, 3), "kgan_images_per_s": round(kgan_images, 1),
        "kgan_best_ms_per_step": round(1e3 * min(fit_seconds) / steps, 3),
        "kgan_mfu": mfu(kgan_flops, kgan_images), "kgan_mfu_convention": convention,
        "kgan_step_mfu": mfu(step_per_image, kgan_images),
        "kgan_achieved_tflops": (round(kgan_flops * kgan_images / 1e12, 3)
                                 if kgan_flops else None),
        "kgan_warmup_s": round(fit_compile_s, 1), "kgan_d_loss": round(kgan_d_loss, 4),
        "kgan_seconds": fit_seconds,
    }
    if cfg.preset:
        row["preset"] = cfg.preset
        row["recipe"] = {k: v for k, v in cfg.train_config.to_dict().items() if k in (
            "loss", "r1_gamma", "r2_gamma", "reg_interval", "pl_weight", "pl_interval",
            "style_mixing", "augment", "ada_target", "ema_kimg", "conditional",
            "latent_dim", "network_args")}
    if trainer is not None:
        d_loss, g_loss = (float(x) for x in trainer.run(jnp.asarray(real), 1))
        if not (math.isfinite(d_loss) and math.isfinite(g_loss)):
            raise FloatingPointError(f"{cfg.name} {cfg.resolution}px {policy}: non-finite "
                                     f"loss (d {d_loss}, g {g_loss})")
        ms = 1e3 * common.median(seconds) / steps
        images_per_s = 1e3 * cfg.batch_size / ms
        row.update(
            ms_per_step=round(ms, 3), best_ms_per_step=round(1e3 * min(seconds) / steps, 3),
            images_per_s=round(images_per_s, 1), warmup_s=round(compile_s, 1),
            achieved_tflops=round(model_flops * images_per_s / 1e12, 3),
            mfu=mfu(model_flops, images_per_s), d_loss=round(d_loss, 4),
            g_loss=round(g_loss, 4), seconds=seconds,
            kgan_ratio=round(ms / kgan_ms, 3),
            kgan_best_ratio=round(min(seconds) / min(fit_seconds), 3))
    return row, fit


def profile_row(fit: KganFit, cfg: Config, policy: str, args) -> dict:
    """`xla_profile`'s summary of kgan.GAN.fit's steps for one row (whole lazy periods,
    at least 4 steps), its trace kept under `args.profile`; an error is recorded, not
    raised: the row's timing stands without it."""
    steps = 2 if args.quick else cfg.period * math.ceil(4 / cfg.period)
    folder = os.path.join(args.profile, f"{cfg.name.replace(':', '_')}_{cfg.resolution}px_"
                                        f"b{cfg.batch_size}_{policy}")
    try:
        return _with_policy(policy, lambda: xla_profile.profile(
            lambda: fit.run(steps), steps, folder))
    except Exception as error:  # noqa: BLE001 - recorded beside the timing
        return {"error": f"{type(error).__name__}: {error}"}


def parse_configs(text: str, quick: bool = False) -> list[Config]:
    """'dcgan:64:64,preset:faces128' -> [Config('dcgan', 64, 64), Config('stylegan2', ...)].

    `preset:NAME[:batch]` takes the preset's networks, resolution, batch and recipe (with
    --quick: tiny networks at a small size, the same recipe)."""
    configs = []
    for item in filter(None, text.split(",")):
        parts = item.split(":")
        if parts[0] == "preset":
            if len(parts) not in (2, 3) or parts[1] not in PRESETS or not all(
                    p.isdigit() for p in parts[2:]):
                raise ValueError(f"Bad config {item!r}: write preset:NAME or "
                                 f"preset:NAME:batch_size with NAME in {', '.join(PRESETS)}.")
            network = PRESETS[parts[1]]["network"]
            if network not in FAMILIES:
                raise ValueError(f"Preset {parts[1]!r} trains {network!r}, not images.")
            overrides = dict(QUICK_PRESETS.get(network, {})) if quick else {}
            if len(parts) == 3:
                overrides["batch_size"] = int(parts[2])
            config = TrainConfig.from_preset(parts[1], **overrides)
            configs.append(Config(network, config.resolution, config.batch_size, parts[1],
                                  config))
            continue
        if len(parts) != 3 or parts[0] not in FAMILIES or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"Bad config {item!r}: write family:resolution:batch_size, e.g. "
                             f"dcgan:64:64, with a family in {', '.join(FAMILIES)}, or "
                             "preset:NAME[:batch_size].")
        configs.append(Config(parts[0], int(parts[1]), int(parts[2])))
    return configs


def run(args) -> dict:
    machine = common.machine()
    rows, skipped = [], []
    start = time.perf_counter()
    configs = parse_configs(args.configs, args.quick)
    policies = args.policies.split(",")
    for policy in policies:
        if policy not in POLICIES:
            raise ValueError(f"Unknown policy {policy!r}: one of {', '.join(POLICIES)}.")
    common.write_json(result(machine, rows, skipped, args), args.out)  # exists if cut short
    for cfg in configs:
        for policy in policies:
            elapsed = time.perf_counter() - start
            if args.budget_s and elapsed > args.budget_s:
                skipped.append({"network": cfg.name, "resolution": cfg.resolution,
                                "batch_size": cfg.batch_size, "policy": policy,
                                "why": f"time budget {args.budget_s} s spent "
                                       f"({elapsed:.0f} s)"})
                print(f"skipped {cfg.name} {policy}: {skipped[-1]['why']}", flush=True)
                continue
            r, fit = measure(cfg, policy, args)
            rows.append(r)
            print(f"{cfg.name} {cfg.resolution}px b{cfg.batch_size} {policy}: kgan.GAN.fit "
                  f"{r['kgan_images_per_s']} images/s, {r['kgan_ms_per_step']} ms/step, MFU "
                  f"{r['kgan_mfu']} ({r['kgan_mfu_convention']}), step MFU "
                  f"{r['kgan_step_mfu']}; reference {r.get('images_per_s')} images/s (ratio "
                  f"{r.get('kgan_ratio')})", flush=True)
            common.write_json(result(machine, rows, skipped, args), args.out)  # kept if cut
            if args.profile:  # after the row is written: a profile cut short loses nothing
                r["profile"] = profile_row(fit, cfg, policy, args)
                print(f"  profile: {xla_profile.headline(r['profile'])}", flush=True)
                common.write_json(result(machine, rows, skipped, args), args.out)
    return result(machine, rows, skipped, args)


def result(machine: dict, rows: list, skipped: list, args) -> dict:
    settings = {k: getattr(args, k) for k in
                ("configs", "policies", "network_args", "steps", "warmup", "repeats",
                 "reference", "step_flops", "budget_s", "quick", "profile")}
    return {"benchmark": "network_throughput_jax", "machine": machine, "settings": settings,
            "flops_method": "XLA cost analysis of the unoptimised CPU HLO. model: 4G + 9D "
                            "forward passes per image; step: kgan's jitted train step per "
                            "image, lazy regularisation amortised over its intervals",
            "rows": rows, "skipped": skipped, "load_average_at_end": common.load_average()}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=CONFIGS,
                   help=f"comma-separated family:resolution:batch_size or "
                        f"preset:NAME[:batch_size] (default {CONFIGS}; on a lent GPU "
                        f"{GPU_CONFIGS})")
    p.add_argument("--policies", default=",".join(POLICIES))
    p.add_argument("--steps", type=int, default=30,
                   help="timed steps per repeat (a preset's rounded up to whole "
                        "regularisation periods)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps (XLA compile) first")
    p.add_argument("--repeats", type=int, default=5, help="median over this many repeats")
    p.add_argument("--budget-s", type=float, default=0.0,
                   help="start no new measurement after this many seconds (0: no limit); "
                        "those left are listed as skipped")
    p.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of seconds")
    p.add_argument("--no-reference", dest="reference", action="store_false",
                   help="skip the hand-written reference step (kgan.GAN.fit only)")
    p.add_argument("--no-step-flops", dest="step_flops", action="store_false",
                   help="skip XLA's count of kgan's whole step (3 lowerings for a lazy preset)")
    p.add_argument("--profile", metavar="DIR",
                   help="after each row, profile kgan.GAN.fit's steps with jax.profiler: "
                        "the top XLA ops and kernel kinds per step go in the row "
                        "(`profile`), the perfetto trace in DIR")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    args.network_args = dict(NETWORK_ARGS)
    if args.quick:
        args.configs = "dcgan:8:4,resnet:16:2" if args.configs == CONFIGS else args.configs
        args.network_args = dict(QUICK_NETWORK_ARGS)
        args.steps, args.warmup, args.repeats = 2, 1, 1
    return args


COLUMNS = ["network", "resolution", "batch_size", "policy", "kgan_images_per_s",
           "kgan_ms_per_step", "kgan_mfu", "kgan_mfu_convention", "kgan_step_mfu",
           "model_gflops_per_image", "step_gflops_per_image", "images_per_s", "ms_per_step",
           "mfu", "kgan_ratio", "kgan_warmup_s", "warmup_s"]


def main(argv=None) -> dict:
    args = parse_args(argv)
    outcome = run(args)
    device = outcome["rows"][0]["device"] if outcome["rows"] else "no rows"
    common.print_table(outcome["rows"], COLUMNS,
                       f"GAN train step, Keras {keras.__version__} on JAX {jax.__version__} "
                       f"(XLA), {device}; kgan = kgan.GAN.fit, unprefixed = the hand-written "
                       "reference step")
    return outcome  # run() wrote it to --out


if __name__ == "__main__":
    main()
