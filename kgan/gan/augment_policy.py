"""Augmentation policy strings, parsed without Keras (config validation loads no TensorFlow).

A policy is a comma list of groups, each optionally with a probability multiplier:
"color,translation,cutout" (DiffAugment's), "bgc" (ADA's blit, geom and colour groups),
or "blit,geom,ada_color:0.5,cutout" (R3GAN's: colour at half the probability); ADA's
"filter" and "noise" groups complete its pipelines "bgcf", "bgcfn" and "bgcfnc". An op of
a group with multiplier m hits each image with probability p x m, as stylegan2-ada's
`AugmentPipe(xflip=1, ..., brightness=0.5)` multipliers do.
"""

from __future__ import annotations

# group -> ops, in the order they run
GROUPS: dict[str, tuple[str, ...]] = {
    # DiffAugment (Zhao et al. 2020): applied in the order the policy names them
    "color": ("brightness", "saturation", "contrast"),
    "translation": ("translation",),
    "cutout": ("cutout",),
    # ADA (Karras et al. 2020): always first, in ADA's order (geometry, then colour)
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "ada_color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "filter": ("imgfilter",),
    "noise": ("noise",),
}
ADA_GROUPS = ("blit", "geom", "ada_color", "filter", "noise")
# stylegan2-ada-pytorch's `--augpipe` names: bgc is its default with `--aug ada`; its
# bgcfnc's cutout is kgan's (DiffAugment's square, which runs after ADA's groups)
ALIASES = {"bgc": ADA_GROUPS[:3], "bgcf": ADA_GROUPS[:4], "bgcfn": ADA_GROUPS,
           "bgcfnc": (*ADA_GROUPS, "cutout")}

Policy = tuple[tuple[str, float], ...]  # ((group, multiplier), ...)


def parse(policy: str | tuple | list) -> Policy:
    """("blit", 1.0), ... from "blit,geom:0.5" or a sequence of such names.

    Raises:
        ValueError: an unknown group, a bad multiplier or a group named twice.
    """
    items = policy.split(",") if isinstance(policy, str) else list(policy)
    parsed: list[tuple[str, float]] = []
    for item in (str(i).strip() for i in items):
        if not item:
            raise ValueError(f"an empty name in {policy!r}")
        name, _, multiplier = item.partition(":")
        name = name.strip()
        if name not in GROUPS and name not in ALIASES:
            raise ValueError(f"unknown augmentation {name!r}; choose from "
                             f"{', '.join([*GROUPS, *ALIASES])}")
        value = _multiplier(name, multiplier.strip()) if multiplier else 1.0
        parsed.extend((group, value) for group in ALIASES.get(name, (name,)))
    names = [name for name, _ in parsed]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(f"augmentation {', '.join(twice)} named twice in {policy!r}")
    return tuple(parsed)


def _multiplier(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 < value <= 1.0:
        raise ValueError(f"augmentation {name}:{text}: the multiplier after ':' must be a "
                         f"number in (0, 1], e.g. {name}:0.5")
    return value


def format_policy(policy: Policy) -> list[str]:
    """The names `parse` reads back: "blit", "ada_color:0.5" (a layer's config)."""
    return [name if multiplier == 1.0 else f"{name}:{multiplier!r}"
            for name, multiplier in policy]
