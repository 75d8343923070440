"""The rules a `TrainConfig` must satisfy: each field's type and range, the names it may
take, and the bounds that keep a mistyped value from failing only after an epoch. A
field that breaks a rule raises `ConfigError` naming the field, its value and what it
accepts, before anything is built or written."""

from __future__ import annotations

import dataclasses
import math
import re
import sys
from typing import TYPE_CHECKING

from kgan import networks
from kgan.evaluation.metrics import metric_names, min_samples
from kgan.gan import augment_policy
from kgan.networks import MAX_RESOLUTION, MIN_RESOLUTION
from kgan.serving import limits
from kgan.training.errors import ConfigError

if TYPE_CHECKING:
    from kgan.training.config import TrainConfig

AUTO = "auto"
NO_AUGMENT = "none"
FEATURE_EXTRACTORS = ("classifier", "inception")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
# Keras backends kgan trains on; "auto" is KERAS_BACKEND's, else tensorflow.
BACKENDS = ("auto", "tensorflow", "jax")
POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# Registered names of TensorFlow-side registries, listed here so that validating a config
# loads no TensorFlow; tests/test_lazy_imports.py checks them against `kgan.losses.NAMES`.
LOSSES = ("non_saturating", "minimax", "wasserstein", "hinge", "least_squares", "relativistic")
# Far above any use (StyleGAN2: z of 512, grids of 64) and below what runs out of memory
# only after a whole epoch of training.
MAX_LATENT_DIM, MAX_SAMPLE_GRID = 16_384, 1_024


def _loss_names() -> tuple[str, ...]:
    """The built-in losses, and those `kgan.gan.losses.register_loss` added, which a module
    that registers one has imported (this module loads no TensorFlow itself)."""
    losses = sys.modules.get("kgan.gan.losses")
    return tuple(losses.NAMES) if losses is not None else LOSSES


def validate(config: TrainConfig) -> None:
    """Raises `ConfigError` naming the first field that is out of range or of the wrong type."""
    _check_types(config)
    _check_data(config)
    _check_model(config)
    _check_outputs(config)


def _check_types(config: TrainConfig) -> None:
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        kind = str(field.type)
        if value is None and "None" in kind:
            continue
        ok = {
            "int": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool),
            "bool": isinstance(value, bool),
            "str": isinstance(value, str),
            "tuple": isinstance(value, tuple) and all(isinstance(v, str) for v in value),
            "dict": isinstance(value, dict) and all(isinstance(k, str) for k in value),
        }[kind.split(" ")[0].split("[")[0]]
        if not ok:
            raise ConfigError(f"{field.name} must be of type {kind}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{field.name} must be finite, got {value!r}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_data(c: TrainConfig) -> None:
    _require(bool(c.dataset.strip()), "dataset must not be empty")
    power = c.resolution > 0 and c.resolution & (c.resolution - 1) == 0
    _require(power and MIN_RESOLUTION <= c.resolution <= MAX_RESOLUTION,
             f"resolution must be a power of two in [{MIN_RESOLUTION}, {MAX_RESOLUTION}], "
             f"got {c.resolution}")
    _require(c.channels in (1, 3), f"channels must be 1 or 3, got {c.channels}")
    _require(c.batch_size >= 1, f"batch_size must be >= 1, got {c.batch_size}")
    _require(c.epochs >= 1, f"epochs must be >= 1, got {c.epochs}")
    _require(c.steps_per_epoch is None or c.steps_per_epoch >= 1,
             f"steps_per_epoch must be >= 1, got {c.steps_per_epoch}")
    _require(0 <= c.seed < 2**32, f"seed must be in [0, 2**32 - 1], got {c.seed}")


def _check_model(c: TrainConfig) -> None:
    _require(c.latent_dim <= MAX_LATENT_DIM, f"latent_dim must be at most {MAX_LATENT_DIM}, "
             f"got {c.latent_dim}")
    for name in ("latent_dim", "d_steps"):
        _require(getattr(c, name) >= 1, f"{name} must be >= 1, got {getattr(c, name)}")
    _require(0 < c.adam_epsilon < 1, f"adam_epsilon must be in (0, 1), got {c.adam_epsilon}")
    _check_network(c)
    known = _loss_names()
    _require(c.loss in known, f"unknown loss {c.loss!r}; choose from {', '.join(known)}")
    for name in ("gradient_penalty", "r1_gamma", "r2_gamma"):
        _require(getattr(c, name) >= 0, f"{name} must be >= 0, got {getattr(c, name)}")
    for name in ("lr_d", "lr_g"):
        _require(getattr(c, name) > 0, f"{name} must be > 0, got {getattr(c, name)}")
    for name in ("beta1", "beta2"):
        _require(0 <= getattr(c, name) < 1, f"{name} must be in [0, 1), got {getattr(c, name)}")
    _require(c.ema_decay is None or 0 < c.ema_decay < 1,
             f"ema_decay must be in (0, 1) or none, got {c.ema_decay}")
    _check_schedules(c)
    _check_style(c)
    _require(c.ada_target is None or 0 < c.ada_target < 1,
             f"ada_target must be in (0, 1) or none, got {c.ada_target}")
    _require(c.ada_kimg > 0, f"ada_kimg must be > 0, got {c.ada_kimg}")
    bad = [name for name in c.imports if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", name)]
    _require(not bad, f"imports must be module names (a.b.c), got {', '.join(map(repr, bad))}")
    if c.augment != NO_AUGMENT:
        try:
            groups = dict(augment_policy.parse(c.augment))
        except ValueError as error:
            raise ConfigError(f"augment: {error}; or none") from None
        _require("filter" not in groups or c.resolution >= 32,
                 f"augment {c.augment!r}: ADA's filter group needs --resolution 32 or more "
                 f"(its 43-tap filters pad 21 pixels by reflection), got {c.resolution}")
    for name, valid in (("backend", BACKENDS), ("strategy", STRATEGIES),
                        ("mixed_precision", POLICIES),
                        ("jit_compile", (AUTO, "on", "off"))):
        _require(getattr(c, name) in valid,
                 f"unknown {name} {getattr(c, name)!r}; choose from {', '.join(valid)}")


def _check_schedules(c: TrainConfig) -> None:
    _require(c.ramp_epochs is None or c.ramp_epochs >= 1,
             f"ramp_epochs must be >= 1 or none, got {c.ramp_epochs}")
    for name in ("lr_final_ratio", "gamma_final_ratio"):
        _require(0 < getattr(c, name) <= 1, f"{name} must be in (0, 1], got "
                 f"{getattr(c, name)}")
    _require(c.beta2_start is None or 0 <= c.beta2_start < 1,
             f"beta2_start must be in [0, 1) or none, got {c.beta2_start}")
    _require(c.ema_kimg is None or c.ema_kimg > 0, f"ema_kimg must be > 0, got {c.ema_kimg}")
    _require(not (c.ema_kimg and c.ema_decay), "use ema_kimg or ema_decay, not both")
    _require(c.ema_rampup is None or (c.ema_kimg and 0 < c.ema_rampup <= 1),
             f"ema_rampup must be in (0, 1] and needs ema_kimg, got {c.ema_rampup}")
    _require(0 <= c.augment_p <= 1, f"augment_p must be in [0, 1], got {c.augment_p}")


def _check_style(c: TrainConfig) -> None:
    for name in ("reg_interval", "pl_interval"):
        _require(getattr(c, name) >= 1, f"{name} must be >= 1, got {getattr(c, name)}")
    _require(0 <= c.style_mixing <= 1, f"style_mixing must be in [0, 1], got {c.style_mixing}")
    _require(c.pl_weight >= 0, f"pl_weight must be >= 0, got {c.pl_weight}")


def _check_network(c: TrainConfig) -> None:
    try:
        family = networks.get(c.network)
        family.check_options(c.network_args)
        family.check_resolution(c.resolution)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    _require(family.image_data, f"network {c.network!r} models flat vectors, not images; "
             "use it from Python (kgan.networks.get), or pick an image family")


def profile_window(text: str) -> tuple[int, int]:
    """`profile_steps` "START,STOP" (1-based, both traced) as (START, STOP).

    Raises:
        ConfigError: not two integers with 1 <= START <= STOP.
    """
    parts = str(text).split(",")
    try:
        start, stop = (int(part) for part in parts)
    except ValueError:
        start = stop = 0
    _require(1 <= start <= stop, f"profile_steps must be START,STOP with 1 <= START <= STOP, "
             f"e.g. 10,15 (the 10th to the 15th step), got {text!r}")
    return start, stop


def _check_outputs(c: TrainConfig) -> None:
    try:  # the export's rule, checked before training rather than after it
        limits.check_model_name(c.model_name, "model_name")
    except ValueError as error:
        raise ConfigError(str(error)) from None
    _require(bool(c.run_dir.strip()), "run_dir must not be empty")
    _require(c.log_every_n_steps >= 0, f"log_every_n_steps must be >= 0, got "
             f"{c.log_every_n_steps}")
    if c.profile_steps is not None:
        profile_window(c.profile_steps)
    _require(c.num_samples <= MAX_SAMPLE_GRID, f"num_samples (the sample grid's images) "
             f"must be at most {MAX_SAMPLE_GRID}, got {c.num_samples}")
    for name in ("sample_every", "num_samples", "checkpoint_every", "keep_checkpoints",
                 "metrics_every", "steps_per_execution"):
        _require(getattr(c, name) >= 1, f"{name} must be >= 1, got {getattr(c, name)}")
    unknown = [m for m in c.metrics if m not in metric_names()]
    _require(not unknown, f"unknown metric {', '.join(unknown)}; choose from "
             f"{', '.join(metric_names())}")
    least = min_samples(c.metrics) if not unknown else 2
    _require(c.metrics_samples >= least, f"metrics_samples must be >= {least}"
             + (f" for metrics {', '.join(c.metrics)}" if c.metrics else "")
             + f", got {c.metrics_samples}")
    _require(c.metrics_features in FEATURE_EXTRACTORS or c.metrics_features.endswith(".keras"),
             f"metrics_features must be classifier, inception or a .keras path, got "
             f"{c.metrics_features!r}")
