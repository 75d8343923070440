"""Network families behind one registry: `get(name)(resolution, channels, latent_dim)`.

Each family lives in `kgan/networks/families/<name>.py` and exposes
`build(resolution, channels, latent_dim, num_classes=None, **options)` returning
`(generator, discriminator)`: the generator maps z [N, latent_dim] (plus int32 labels
[N] when conditional) to float32 images [N, H, W, C], the discriminator maps images
(plus labels) to float32 logits [N, 1], whatever the dtype policy (design.md, rule 3).

This module is the registration: one `Family` entry per family, with its options and
their defaults. It imports no TensorFlow, so configs and command lines are validated
in milliseconds; a family's module loads on first `build`.

Example:
    >>> generator, discriminator = kgan.networks.get("r3gan")(32, 3, latent_dim=64)
    >>> kgan.networks.NAMES
    ('dcgan', 'mlp', 'resnet', 'r3gan', 'stylegan2')
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Mapping
from typing import Any

MIN_RESOLUTION = 8
MAX_RESOLUTION = 256


@dataclasses.dataclass(frozen=True)
class Family:
    """A registered network family: where it lives and which options it takes.

    Attributes:
        name: registry name (`--network NAME`).
        module: the module whose `build()` makes the pair.
        summary: one line for `--help` and the README.
        options: every family option with its default; values are JSON types.
        resolutions: smallest and largest supported image side (powers of two).
        image_data: False for families that model flat vectors (toy data), not images.
    """

    name: str
    module: str
    summary: str
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    resolutions: tuple[int, int] = (MIN_RESOLUTION, MAX_RESOLUTION)
    image_data: bool = True

    def __call__(self, resolution: int, channels: int, latent_dim: int,
                 num_classes: int | None = None, **options):
        """Builds `(generator, discriminator)`; options not given take their defaults."""
        self.check_options(options)
        module = importlib.import_module(self.module)
        return module.build(resolution, channels, latent_dim, num_classes=num_classes,
                            **{**self.options, **options})

    build = __call__

    def check_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """Checks option names and JSON types against the defaults; returns the full set.

        Value ranges are the family's to check when it builds (it raises ValueError).
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            known = ", ".join(f"{k}={v!r}" for k, v in self.options.items()) or "none"
            raise ValueError(f"network {self.name!r} has no option {', '.join(unknown)}; "
                             f"its options (defaults): {known}")
        for key, value in options.items():
            default = self.options[key]
            if default is not None and value is not None and not _same_kind(value, default):
                raise ValueError(f"network option {key} must be a {type(default).__name__} "
                                 f"like its default {default!r}, got {value!r}")
        return {**self.options, **options}

    def check_resolution(self, resolution: int) -> None:
        low, high = self.resolutions
        power = isinstance(resolution, int) and resolution > 0 and not resolution & (
            resolution - 1)
        if not (power and low <= resolution <= high):
            raise ValueError(f"network {self.name!r} needs a resolution that is a power of "
                             f"two in [{low}, {high}], got {resolution!r}")


def _same_kind(value, default) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


_REGISTRY: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Adds a family to the registry (a new family is its module plus this call). The
    same family again is a no-op, so re-running a notebook cell or reloading a module
    works; another family under a registered name is an error."""
    if _REGISTRY.get(family.name, family) != family:
        raise ValueError(f"network family {family.name!r} is already registered")
    _REGISTRY[family.name] = family
    return family


def get(name: str) -> Family:
    """The family registered as `name`; the error lists the valid names."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown network {name!r}; choose from {', '.join(_REGISTRY)}") from None


register(Family(
    "dcgan", "kgan.networks.families.dcgan",
    "DCGAN (Radford et al. 2016): transposed convolutions + batch norm; fast, blurry",
    options=dict(base_filters=64, max_filters=512, spectral_norm=False, conditioning="multiply",
                 mbstd_group_size=0),
))
register(Family(
    "mlp", "kgan.networks.families.mlp",
    "small MLPs for low-dimensional toy data (2-D mixtures)",
    options=dict(hidden=[64, 64]), resolutions=(1, 1 << 20), image_data=False,
))
register(Family(
    "resnet", "kgan.networks.families.resnet",
    "SNGAN/BigGAN ResNets: synchronized (conditional) batch norm in G, spectral norm and "
    "projection in D; hinge loss, Adam(2e-4, 0, 0.999), d_steps 2-5",
    # Widths double per halving of resolution, up to max_multiplier x the full-res width.
    options=dict(g_width=64, d_width=64, max_multiplier=16), resolutions=(16, 128),
))
register(Family(
    "r3gan", "kgan.networks.families.r3gan",
    "R3GAN (Huang et al. 2024): normalisation-free inverted-bottleneck ResNets with fix-up "
    "init and low-pass resampling; relativistic loss with R1+R2",
    # widths[i] is the width at 4 * 2^i px (4x4 first); longer lists serve every resolution.
    options=dict(widths=[256, 256, 256, 256, 128, 64, 32], blocks_per_stage=2, expansion=2,
                 group_size=16, conditioning="concat"),
    resolutions=(8, 256),
))
register(Family(
    "stylegan2", "kgan.networks.families.stylegan2",
    "StyleGAN2 (Karras et al. 2020): mapping network, modulated/demodulated convs with noise, "
    "skip G, residual D with minibatch stddev; non-saturating loss, lazy R1, EMA",
    # Widths are min(cbase // res, cmax); conv_clamp 256 and num_fp16_res 4 for float16.
    options=dict(cbase=16384, cmax=512, mapping_layers=8, w_dim=512, mapping_lr_multiplier=0.01,
                 mbstd_group_size=4, conv_clamp=None, num_fp16_res=0),
    resolutions=(16, 256),
))


def __getattr__(name: str):
    """`NAMES` (the registry's names, read when asked, so it lists families registered
    after import), and `kgan.networks.dcgan(...)` and friends, loaded on use: a family
    module's function of the family's name where it has one (the 0.1 signatures), else
    `Family.build`."""
    if name == "NAMES":
        return tuple(_REGISTRY)
    if name in _REGISTRY:
        family = _REGISTRY[name]
        return getattr(importlib.import_module(family.module), name, family.build)
    raise AttributeError(f"module 'kgan.networks' has no attribute {name!r}")
