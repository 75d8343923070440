"""`TrainConfig`: every choice of a training run, as validated data.

A run is described completely by its config: `train.py` turns flags into one, the run
directory keeps it as `config.json`, and a resumed run must present the same one (only
the fields in `RESUMABLE_FIELDS`, which do not change what is computed, may differ).
Named presets give sizes and hyperparameters known to work for common data sets.

Example:
    >>> config = TrainConfig.from_preset("mnist", epochs=5)
    >>> config.to_json() == TrainConfig.from_json(config.to_json()).to_json()
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from collections.abc import Callable
from typing import Any

from kgan import networks
from kgan.evaluation.metrics import metric_names, min_samples
from kgan.networks import MAX_RESOLUTION, MIN_RESOLUTION
from kgan.training.errors import ConfigError
from kgan.training.presets import DEFAULT_PRESET, PRESETS, preset_for

__all__ = ["DEFAULT_PRESET", "PRESETS", "RESUMABLE_FIELDS", "ConfigError", "TrainConfig",
           "preset_for"]

AUTO = "auto"
NO_AUGMENT = "none"
FEATURE_EXTRACTORS = ("classifier", "inception")
STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
# Keras backends kgan trains on; "auto" is KERAS_BACKEND's, else tensorflow.
BACKENDS = ("auto", "tensorflow", "jax")
POLICIES = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
# Registered names of TensorFlow-side registries, listed here so that validating a config
# loads no TensorFlow; tests/test_config.py checks them against `kgan.losses.NAMES` and
# `kgan.augment.POLICIES`.
LOSSES = ("non_saturating", "minimax", "wasserstein", "hinge", "least_squares", "relativistic")
AUGMENT_POLICIES = ("color", "translation", "cutout")
# 0.1 configs named DCGAN's options at the top level; they now live in `network_args`.
_V01_DCGAN_KEYS = ("base_filters", "max_filters", "spectral_norm")
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _field(default, help_text: str | Callable[[], str], **kwargs):
    """A dataclass field whose help text doubles as the command-line help (a str, or a
    callable returning one when the parser is built)."""
    if isinstance(default, (list, tuple)):
        return dataclasses.field(default_factory=lambda: tuple(default),
                                 metadata={"help": help_text, **kwargs})
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default),
                                 metadata={"help": help_text, **kwargs})
    return dataclasses.field(default=default, metadata={"help": help_text, **kwargs})


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """All settings of a run. Defaults are plain settings; presets (`from_preset`, the
    command line's `--preset`; `preset_for` picks one for a data set, `digits` without
    one) hold the tuned recipes.

    Validation runs on construction, so a `TrainConfig` that exists is a valid one.
    """

    preset: str = _field("digits", "preset the defaults came from (informational)")
    # data
    dataset: str = _field("digits", "TFDS name (mnist, cifar10, celeb_a, ...), 'digits' "
                          "(offline demo) or a path to an image folder")
    data_dir: str | None = _field(None, "TFDS data dir (default: TFDS's own)")
    download: bool = _field(False, "let TFDS download and prepare missing data")
    resolution: int = _field(32, f"image side, a power of two in [{MIN_RESOLUTION}, "
                             f"{MAX_RESOLUTION}]")
    channels: int = _field(1, "1 (grayscale) or 3 (RGB)")
    conditional: bool = _field(False, "train a class-conditional GAN (labelled data)")
    batch_size: int = _field(64, "global batch size (split across replicas)")
    epochs: int = _field(20, "epochs to train in total (raise it to extend a run)")
    steps_per_epoch: int | None = _field(None, "train steps per epoch (default: one pass)")
    # model and optimisation
    latent_dim: int = _field(64, "length of the latent vector z")
    # A callable help is read when the parser is built, so it names families registered
    # after this module was imported (a benchmark's or a user's own).
    network: str = _field("dcgan", lambda: f"network family: {', '.join(networks.NAMES)}")
    network_args: dict = _field({}, "the family's options as JSON or k=v,k=v (e.g. "
                                "base_filters=64); see kgan.networks")
    loss: str = _field("non_saturating", f"adversarial loss: {', '.join(LOSSES)}")
    gradient_penalty: float = _field(0.0, "WGAN-GP weight (10 in the paper); 0 disables")
    r1_gamma: float = _field(0.0, "R1 penalty weight gamma (real images); 0 disables")
    r2_gamma: float = _field(0.0, "R2 penalty weight (generated images; R3GAN uses both); 0 "
                             "disables")
    d_steps: int = _field(1, "discriminator updates per generator update")
    reg_interval: int = _field(1, "lazy regularisation: R1/R2 every N discriminator steps, "
                               "weighted by N (StyleGAN2: 16)")
    style_mixing: float = _field(0.0, "style-based networks (stylegan2): probability of "
                                 "mixing two latents' styles per batch (StyleGAN2: 0.9); 0 "
                                 "disables")
    pl_weight: float = _field(0.0, "style-based networks: path-length regularisation weight "
                              "(StyleGAN2: 2); 0 disables")
    pl_interval: int = _field(4, "path-length penalty every N generator steps, weighted by N")
    lr_d: float = _field(2e-4, "discriminator learning rate (Adam)")
    lr_g: float = _field(2e-4, "generator learning rate (Adam)")
    beta1: float = _field(0.5, "Adam beta_1")
    beta2: float = _field(0.999, "Adam beta_2")
    adam_epsilon: float = _field(1e-7, "Adam epsilon (Keras: 1e-7; the StyleGAN2 and R3GAN "
                                 "references, and their presets: 1e-8)")
    ramp_epochs: int | None = _field(None, "cosine ramps over this many epochs, as R3GAN "
                                     "trains: lr -> lr x lr_final_ratio, beta2_start -> beta2, "
                                     "gammas -> gamma x gamma_final_ratio, augment p 0 -> "
                                     "augment_p; none: constant values")
    lr_final_ratio: float = _field(0.25, "final / initial learning rate of the ramp")
    beta2_start: float | None = _field(None, "Adam beta_2 at the start of the ramp (R3GAN: "
                                       "0.9 -> 0.99); none: constant beta2")
    gamma_final_ratio: float = _field(0.1, "final / initial R1 and R2 gamma of the ramp")
    ema_kimg: float | None = _field(None, "keep an EMA generator with this half-life in "
                                    "thousands of images (StyleGAN2-ADA's ema_kimg)")
    ema_rampup: float | None = _field(None, "cap the EMA half-life at this fraction of the "
                                      "images seen so far (StyleGAN2-ADA: 0.05)")
    ema_decay: float | None = _field(None, "keep an EMA generator with this decay "
                                     "(e.g. 0.999); none disables")
    augment: str = _field(NO_AUGMENT, "DiffAugment policy: none, or a comma list of "
                          "color, translation, cutout")
    ada_target: float | None = _field(0.6, "ADA target for E[sign D(real)]; none applies "
                                      "the augmentation with probability augment_p")
    augment_p: float = _field(1.0, "augmentation probability without ADA (ramped up from 0 "
                              "with ramp_epochs, as R3GAN does)")
    seed: int = _field(0, "seed of weights, data order and training noise")
    # hardware
    backend: str = _field(AUTO, "Keras backend: tensorflow or jax (auto: KERAS_BACKEND, else "
                          "tensorflow); a run resumes on the backend it started on",
                          choices=BACKENDS)
    strategy: str = _field(AUTO, f"distribution strategy: {', '.join(STRATEGIES)}")
    mixed_precision: str = _field(AUTO, f"dtype policy: {', '.join(POLICIES)}")
    jit_compile: str = _field(AUTO, "XLA: auto (on GPU), on or off", choices=(AUTO, "on", "off"))
    deterministic: bool = _field(False, "deterministic ops (bit-exact reruns, slower)")
    steps_per_execution: int = _field(1, "train steps per call into TensorFlow on one device "
                                      "(fewer Python round trips); mirrored strategies need 1")
    # outputs
    run_dir: str | None = _field(None, "run directory (default: runs/<model_name>)")
    export_dir: str = _field("exports", "TF Serving model base folder")
    model_name: str | None = _field(None, "served model name (default: from the dataset)")
    export: bool = _field(True, "export the generator for TF Serving at the end")
    log_every_n_steps: int = _field(50, "TensorBoard scalars every N steps; 0: epochs only")
    sample_every: int = _field(1, "sample grid every N epochs")
    num_samples: int = _field(64, "images in the sample grid")
    checkpoint_every: int = _field(200, "resume checkpoint every N steps (and each epoch)")
    keep_checkpoints: int = _field(3, "epoch checkpoints kept in checkpoints/")
    # quality metrics
    metrics: tuple[str, ...] = _field((), f"quality metrics: {', '.join(metric_names())}")
    metrics_every: int = _field(5, "evaluate the quality metrics every N epochs")
    metrics_samples: int = _field(2000, "generated (and real) images per evaluation")
    metrics_features: str = _field("classifier", "features for metrics: classifier (trained "
                                   "on the data's labels), inception, or a .keras model path")
    inception_weights: str | None = _field(None, "local InceptionV3 notop weights file")

    def __post_init__(self):
        metrics = self.metrics  # a config file may spell them "fid,kid", as the flag does
        if isinstance(metrics, str):
            metrics = [name.strip() for name in metrics.split(",") if name.strip()]
        object.__setattr__(self, "metrics", tuple(metrics))

        for name in ("model_name", "run_dir"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, self._default(name))
        _validate(self)
        # Every family option is recorded, so config.json says exactly what was built.
        object.__setattr__(self, "network_args", self.family.check_options(self.network_args))

    def _default(self, name: str) -> str:
        if name == "model_name":
            base = os.path.basename(os.path.normpath(str(self.dataset))) or "model"
            return re.sub(r"[^A-Za-z0-9_.-]", "_", base).lstrip("_.-") or "model"
        return os.path.join("runs", self.model_name)

    # ------------------------------------------------------------ round trip
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Builds a config from a dict; unknown keys are an error, not silently dropped."""
        if not isinstance(values, dict):
            raise ConfigError(f"a config must be a JSON object, got {type(values).__name__}")
        values = _upgrade(values)
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        return cls(**values)

    @classmethod
    def from_json(cls, text: str) -> TrainConfig:
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from None

    @property
    def family(self) -> networks.Family:
        """The registered network family this config trains."""
        return networks.get(self.network)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainConfig:
        """Reads a config file (e.g. a run's `config.json`)."""
        try:
            with open(path, encoding="utf-8") as file:
                text = file.read()
        except OSError as error:
            raise ConfigError(f"cannot read config file {path}: {error.strerror}") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte {error.start}: "
                              f"{error.object[error.start:error.start + 1]!r}); is it a "
                              "kgan config.json?") from None
        try:
            return cls.from_json(text)
        except ConfigError as error:
            raise ConfigError(f"config file {path}: {error}") from None

    @classmethod
    def from_preset(cls, name: str, **overrides) -> TrainConfig:
        """The preset's settings with `overrides` on top."""
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name], "preset": name, **overrides})

    @classmethod
    def for_dataset(cls, dataset: str, **overrides) -> TrainConfig:
        """The settings for `dataset` when no preset is named: the preset `preset_for`
        picks for it, with `dataset` and `overrides` on top (the run is named after the
        data set unless the preset or `overrides` name it).

        Example:
            >>> TrainConfig.for_dataset("./faces", resolution=128).preset
            'folder64'
        """
        name = preset_for(dataset)
        return cls.from_dict({**PRESETS[name], "dataset": dataset, "preset": name, **overrides})

    def differences(self, other: TrainConfig) -> list[str]:
        """Fields that change the computation, as 'name: old -> new' (RESUMABLE_FIELDS
        excluded): what stops a run directory from being resumed with `other`."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {mine[k]!r} -> {theirs[k]!r}" for k in mine
                if k not in RESUMABLE_FIELDS and mine[k] != theirs[k]
                and not (k == "dataset" and _same_file(mine[k], theirs[k]))]

    def field_names(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]


# Fields a resumed run may change: they decide how long, where and how it is logged or
# executed, never what a train step computes.
RESUMABLE_FIELDS = frozenset({
    # backend: a run resumes on its own, which kgan.training.rundir checks with its own
    # message (checkpoints load on one backend only).
    "backend",
    "preset", "data_dir", "download", "epochs", "strategy", "jit_compile", "deterministic",
    "steps_per_execution",
    "run_dir", "export_dir", "model_name", "export", "log_every_n_steps", "sample_every",
    "num_samples", "checkpoint_every", "keep_checkpoints", "metrics", "metrics_every",
    "metrics_samples", "metrics_features", "inception_weights",
})


def _same_file(a: str, b: str) -> bool:
    """Two spellings of one existing path (./data/faces, data/faces, /abs/data/faces)."""
    try:
        return os.path.samefile(os.path.expanduser(a), os.path.expanduser(b))
    except (OSError, ValueError):
        return False


# Far above any use (StyleGAN2: z of 512, grids of 64) and below what runs out of memory
# only after a whole epoch of training.
MAX_LATENT_DIM, MAX_SAMPLE_GRID = 16_384, 1_024


# ----------------------------------------------------------------- validation
def _upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """Reads a kgan 0.1 config: DCGAN's top-level options move into `network_args`."""
    old = {k: values[k] for k in _V01_DCGAN_KEYS if k in values}
    if not old:
        return values
    values = {k: v for k, v in values.items() if k not in _V01_DCGAN_KEYS}
    if values.setdefault("network", "dcgan") != "dcgan":
        raise ConfigError(f"{', '.join(old)} are DCGAN options; for network "
                          f"{values['network']!r} put the family's options in network_args")
    values["network_args"] = {**old, **values.get("network_args", {})}
    return values


def _validate(config: TrainConfig) -> None:
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
    _require(c.loss in LOSSES, f"unknown loss {c.loss!r}; choose from {', '.join(LOSSES)}")
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
    if c.augment != NO_AUGMENT:
        unknown = [repr(p.strip()) for p in c.augment.split(",")
                   if p.strip() not in AUGMENT_POLICIES]
        _require(not unknown, f"unknown augment policy {', '.join(unknown)}; use none or a "
                 f"comma list of {', '.join(AUGMENT_POLICIES)}")
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


def _check_outputs(c: TrainConfig) -> None:
    _require(bool(_NAME_PATTERN.match(c.model_name)),
             f"model_name must be letters, digits, '_', '.', '-', got {c.model_name!r}")
    _require(bool(c.run_dir.strip()), "run_dir must not be empty")
    _require(c.log_every_n_steps >= 0, f"log_every_n_steps must be >= 0, got "
             f"{c.log_every_n_steps}")
    _require(c.num_samples <= MAX_SAMPLE_GRID, f"num_samples (the sample grid's images) "
             f"must be at most {MAX_SAMPLE_GRID}, got {c.num_samples}")
    for name in ("sample_every", "num_samples", "checkpoint_every", "keep_checkpoints",
                 "metrics_every", "steps_per_execution"):
        _require(getattr(c, name) >= 1, f"{name} must be >= 1, got {getattr(c, name)}")
    unknown = [m for m in c.metrics if m not in metric_names()]
    _require(not unknown, f"unknown metric {', '.join(unknown)}; choose from "
             f"{', '.join(metric_names())}")
    least = min_samples(c.metrics) if not unknown else 2
    _require(c.metrics_samples >= least, f"metrics_samples must be >= {least} for metrics "
             f"{', '.join(c.metrics) or 'none'}, got {c.metrics_samples}")
    _require(c.metrics_features in FEATURE_EXTRACTORS or c.metrics_features.endswith(".keras"),
             f"metrics_features must be classifier, inception or a .keras path, got "
             f"{c.metrics_features!r}")
