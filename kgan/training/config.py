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
import os
from collections.abc import Callable
from typing import Any

from kgan import networks
from kgan.evaluation.metrics import metric_names
from kgan.networks import MAX_RESOLUTION, MIN_RESOLUTION
from kgan.serving import limits
from kgan.training import validation
from kgan.training.errors import ConfigError
from kgan.training.presets import DEFAULT_PRESET, PRESETS, preset_for
from kgan.training.validation import (
    AUTO,
    BACKENDS,
    LOSSES,
    NO_AUGMENT,
    POLICIES,
    STRATEGIES,
)

__all__ = ["DEFAULT_PRESET", "PRESETS", "RESUMABLE_FIELDS", "ConfigError", "TrainConfig",
           "preset_for"]

# 0.1 configs named DCGAN's options at the top level; they now live in `network_args`.
_V01_DCGAN_KEYS = ("base_filters", "max_filters", "spectral_norm")


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
    mirror: bool = _field(False, "flip each image left-right with probability 1/2, anew each "
                          "epoch (StyleGAN's and R3GAN's --mirror; for faces and objects, "
                          "not digits or text)")
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
                                     "augment_p, EMA half-life 0 -> ema_kimg (unless "
                                     "ema_rampup caps it instead); none: constant values")
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
    augment: str = _field(NO_AUGMENT, "augmentation of all D sees: none, or a comma list "
                          "of DiffAugment's color, translation, cutout and ADA's blit, geom, "
                          "ada_color, filter, noise (bgc: ADA's first three; bgcf, bgcfn, "
                          "bgcfnc as ADA names them), each optionally name:m to apply it "
                          "with probability p x m (R3GAN: blit,geom,ada_color:0.5,cutout)")
    ada_target: float | None = _field(0.6, "ADA target for E[sign D(real)]; none applies "
                                      "the augmentation with probability augment_p")
    ada_kimg: float = _field(500.0, "thousands of real images over which ADA can move the "
                             "probability by 1 (stylegan2-ada-pytorch: 500); smaller adapts "
                             "faster, for short runs")
    augment_p: float = _field(1.0, "augmentation probability without ADA (ramped up from 0 "
                              "with ramp_epochs, as R3GAN does)")
    seed: int = _field(0, "seed of weights, data order and training noise")
    imports: tuple[str, ...] = _field((), "modules imported first (--import MODULE, "
                                      "repeatable): your own registered network family, loss, "
                                      "metric or data source; recorded, so a resume and a "
                                      "--config replay import them too")
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
    profile_steps: str | None = _field(None, "trace steps START,STOP (e.g. 10,15: the 10th to "
                                       "the 15th step of this process's training, as Keras's "
                                       "profile_batch) with the backend's profiler, for "
                                       "TensorBoard's Profile tab")
    sample_every: int = _field(1, "sample grid every N epochs")
    num_samples: int = _field(64, "images in the sample grid (a conditional run with at "
                              "most 16 classes: one column per class, whole rows)")
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
        for name in ("metrics", "imports"):  # a config file may spell them "fid,kid"
            names = getattr(self, name)
            if isinstance(names, str):
                names = [part.strip() for part in names.split(",") if part.strip()]
            if isinstance(names, list):
                names = tuple(names)
            object.__setattr__(self, name, names)

        for name in ("model_name", "run_dir"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, self._default(name))
        validation.validate(self)
        # Every family option is recorded, so config.json says exactly what was built.
        object.__setattr__(self, "network_args", self.family.check_options(self.network_args))

    def _default(self, name: str) -> str:
        if name == "model_name":
            # "." or "../faces/" name the folder's own name, not "model".
            path = os.path.expanduser(str(self.dataset))
            base = os.path.basename(os.path.abspath(path) if os.path.isdir(path)
                                    else os.path.normpath(path)) or "model"
            return limits.model_name_from(base)
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
        """Reads a config file's text; a file written before `ada_kimg` existed (every
        file kgan writes has it) keeps the ADA speed its run trained with."""
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise ConfigError(f"config is not valid JSON: {error}") from None
        if isinstance(values, dict) and "ada_kimg" not in values and _adaptive(values):
            # kgan up to 0.3 moved p by 5e-3 every 4 steps of batch_size images.
            batch = values.get("batch_size", cls.__dataclass_fields__["batch_size"].default)
            if isinstance(batch, int) and batch > 0:
                values["ada_kimg"] = 4 * batch / 0.005 / 1000
        return cls.from_dict(values)

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


# Fields a resumed run may change: they decide how long, where and how it is logged or
# executed, never what a train step computes.
RESUMABLE_FIELDS = frozenset({
    # backend: a run resumes on its own, which kgan.training.rundir checks with its own
    # message (checkpoints load on one backend only).
    "backend",
    "preset", "data_dir", "download", "epochs", "strategy", "jit_compile", "deterministic",
    "steps_per_execution",
    "run_dir", "export_dir", "model_name", "export", "log_every_n_steps", "profile_steps",
    "sample_every",
    "num_samples", "checkpoint_every", "keep_checkpoints", "metrics", "metrics_every",
    "metrics_samples", "metrics_features", "inception_weights",
    # What to import is not what is computed: the names the config uses decide that.
    "imports",
})


def read_json_object(path: str | os.PathLike) -> dict:
    """A JSON object from `path`; {} where it is missing or malformed, for commands that
    only peek at a run's settings (`TrainConfig.load` says what is wrong with a file a run
    needs)."""
    try:
        with open(path, encoding="utf-8") as file:
            value = json.load(file)
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _same_file(a: str, b: str) -> bool:
    """Two spellings of one existing path (./data/faces, data/faces, /abs/data/faces)."""
    try:
        return os.path.samefile(os.path.expanduser(a), os.path.expanduser(b))
    except (OSError, ValueError):
        return False


def _adaptive(values: dict[str, Any]) -> bool:
    """Whether a config's values train with ADA (else its speed is never used)."""
    fields = TrainConfig.__dataclass_fields__
    return (values.get("augment", fields["augment"].default) != NO_AUGMENT
            and values.get("ada_target", fields["ada_target"].default) is not None)


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
