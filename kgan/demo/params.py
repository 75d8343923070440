"""The page's query string -> a validated request, with messages a visitor can act on.

The address is the state: `?seed=42` (and `n`, `label`, `truncation`, or `a`, `b`,
`frames` for an interpolation) names exactly what is shown, so any page is a permalink;
a model with a truncation input gets its default psi written into the view when the
address has none, so the permalink names the psi used.
Parsing is pure (no Starlette, no TensorFlow) and raises `BadRequest`, whose text the
page shows in place of the image.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, replace
from urllib.parse import urlencode

from kgan.demo.media import MAX_FRAMES
from kgan.demo.model import MAX_BATCH, MAX_SEED, MIN_SEED, ModelInfo

#: Grid sizes the picker offers (any 1..MAX_BATCH works in the address).
GRID_SIZES = (1, 4, 9, 16, 25, 36, 49, 64)
DEFAULT_FRAMES = 24
_RANDOM_SEEDS = 2**31  # fresh seeds stay short enough to read and type


class BadRequest(ValueError):
    """A query parameter is malformed or out of range; the message says which and why."""


@dataclass(frozen=True)
class View:
    """One page: a grid of `n` images from `seed` on, or an interpolation from `a` to `b`."""

    seed: int
    n: int = 1
    label: int | None = None
    truncation: float | None = None
    a: int | None = None
    b: int | None = None
    frames: int = DEFAULT_FRAMES
    random: bool = False  # the seed was drawn for this visit

    @property
    def interpolation(self) -> bool:
        return self.a is not None

    @property
    def seeds(self) -> list[int]:
        return list(range(self.seed, self.seed + self.n))

    def query(self, **changes) -> str:
        """The permalink's query string ("?seed=42&n=4"), with `changes` applied."""
        view = replace(self, **changes)
        pairs = ({"a": view.a, "b": view.b, "frames": view.frames} if view.interpolation
                 else {"seed": view.seed, "n": view.n if view.n != 1 else None})
        pairs.update(label=view.label, truncation=view.truncation)
        return "?" + urlencode({k: v for k, v in pairs.items() if v is not None})


def parse_view(query: Mapping[str, str], info: ModelInfo) -> View:
    """Reads a page's parameters; a missing seed draws a fresh one (a new image per visit).

    Raises:
        BadRequest: with the parameter, the allowed range and what was given.
    """
    unknown = sorted(set(query) - {"seed", "n", "label", "truncation", "a", "b", "frames"})
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r}; this page takes seed, n, label, "
                         "truncation, or a, b and frames for an interpolation")
    label = _label(query.get("label"), info)
    interpolation = "a" in query or "b" in query
    truncation = _truncation(query.get("truncation"), info, interpolation)
    if interpolation:
        a, b = _seed(query.get("a"), "a"), _seed(query.get("b"), "b")
        frames = _whole(query.get("frames", str(DEFAULT_FRAMES)), "frames", 2, MAX_FRAMES)
        return View(seed=a, label=label, truncation=truncation, a=a, b=b, frames=frames)
    n = _whole(query.get("n", "1"), "n (images in the grid)", 1, MAX_BATCH)
    random = not query.get("seed", "").strip()  # "/?seed=" or "?seed=%20": no seed
    seed = secrets.randbelow(_RANDOM_SEEDS) if random else _seed(query["seed"], "seed")
    if seed + n - 1 > MAX_SEED:
        raise BadRequest(f"seed {seed} leaves no room for {n} images: the last seed would "
                         f"pass {MAX_SEED}")
    return View(seed=seed, n=n, label=label, truncation=truncation, random=random)


def _whole(text: str | None, name: str, low: int, high: int) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise BadRequest(f"{name} must be a whole number from {low} to {high}, got {text!r}")
    return value


def _seed(text: str | None, name: str) -> int:
    if text is None or not text.strip():
        raise BadRequest(f"{name} is missing: an interpolation needs both a and b seeds")
    return _whole(text, name, MIN_SEED, MAX_SEED)


def _label(text: str | None, info: ModelInfo) -> int | None:
    if text is None or text == "":
        return None
    if not info.conditional:
        raise BadRequest("this model is unconditional: it takes no label (remove label= "
                         "from the address)")
    top = info.num_classes - 1
    return _whole(text, f"label (this model has {info.num_classes} classes)", 0, top)


def _truncation(text: str | None, info: ModelInfo, interpolation: bool) -> float | None:
    """The psi asked for, else the model's default (so the permalink names the psi the
    page used, and stays the same image if an export's default changes)."""
    spec = info.truncation
    if text is None or text == "":
        if spec is None or (interpolation and spec.latents_signature is None):
            return None  # no truncation, or only for seeds: the frames take none
        return spec.default
    if spec is None:
        raise BadRequest("this model has no truncation input (remove truncation= from the "
                         "address)")
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not spec.minimum <= value <= spec.maximum:
        raise BadRequest(f"truncation must be a number from {spec.minimum:g} to "
                         f"{spec.maximum:g}, got {text!r}")
    return value
