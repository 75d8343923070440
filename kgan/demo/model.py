"""What a served generator is and what a request to it may hold, in NumPy.

`ModelInfo` describes a generator (image shape, latent size, classes, and its optional
truncation input); the `check_*` functions validate a request the way the export's
signatures do, with messages that say what to change. Shared by every backend, the page
and `kgan-generate`; no TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from kgan.serving.limits import (  # noqa: F401  (INFO_FILE: re-exported)
    INFO_FILE,
    INT64_MAX,
    INT64_MIN,
    MAX_BATCH_SIZE,
    is_version,
    latest_version,
    read_info_file,
)

#: Seeds the `generate` signature takes: every int64, negative ones too.
MIN_SEED, MAX_SEED = INT64_MIN, INT64_MAX
#: Images per call: the export's MAX_BATCH_SIZE.
MAX_BATCH = MAX_BATCH_SIZE
#: The signature input name of a generator's truncation (psi), when it has one.
TRUNCATION_INPUT = "truncation"


@dataclass(frozen=True)
class Truncation:
    """A generator's truncation input (psi: 1 = the full distribution, 0 = the mean image).

    `rank` is the signature input's rank: 1 for a batched [N] value, 0 for a scalar.
    The range and default come from kgan.json's "truncation" entry when it has one.
    `signature` takes seeds and the truncation (kgan's exports: `generate_truncated`);
    `latents_signature` takes latents and the truncation, or is None when none does.
    """

    default: float = 1.0
    minimum: float = 0.0
    maximum: float = 1.0
    rank: int = 1
    signature: str = "generate"
    latents_signature: str | None = "serving_default"


@dataclass(frozen=True)
class ModelInfo:
    """What the page and the CLI need to know about a generator."""

    name: str
    image_shape: tuple[int, int, int]
    latent_dim: int
    num_classes: int | None = None
    truncation: Truncation | None = None
    source: str = ""

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None


@dataclass
class Images:
    """uint8 images [N, H, W, C], their PNG files' bytes and the latents [N, latent_dim]."""

    images: np.ndarray
    png: list[bytes] = field(default_factory=list)
    z: np.ndarray | None = None


def check_seeds(seeds) -> np.ndarray:
    """Seeds as int64 [N]: whole numbers in [-2**63, 2**63); N >= 1."""
    values = list(np.atleast_1d(np.asarray(seeds, dtype=object)))
    if not values:
        raise ValueError("empty request: ask for at least one seed")
    for value in values:
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
                or not MIN_SEED <= int(value) <= MAX_SEED:
            raise ValueError(f"seed must be a whole number from {MIN_SEED} to {MAX_SEED}, "
                             f"got {value!r}")
    return np.asarray([int(v) for v in values], np.int64)


def check_labels(labels, seeds: np.ndarray, num_classes: int | None) -> np.ndarray | None:
    """Labels as int32 [N] in [0, num_classes); None gives seed % num_classes."""
    if num_classes is None:
        if labels is not None:
            raise ValueError("this model is unconditional: it takes no label")
        return None
    if labels is None:
        return (np.asarray(seeds, np.int64) % num_classes).astype(np.int32)
    array = np.atleast_1d(np.asarray(labels))
    if array.shape != (len(seeds),) or not np.issubdtype(array.dtype, np.integer) \
            or array.min() < 0 or array.max() >= num_classes:
        # One label per image: name the distinct values, not the whole list.
        shown = ", ".join(sorted({str(v) if isinstance(v, int) else repr(v)
                                  for v in array.ravel().tolist()})[:8])
        raise ValueError(f"label must be a class number from 0 to {num_classes - 1} "
                         f"(this model has {num_classes} classes), got {shown}")
    return array.astype(np.int32)


def check_truncation(value, spec: Truncation | None) -> float:
    """A truncation value inside the model's range; models without the input refuse one."""
    if spec is None:
        raise ValueError("this model has no truncation input")
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not spec.minimum <= number <= spec.maximum:
        raise ValueError(f"truncation must be a number from {spec.minimum:g} to "
                         f"{spec.maximum:g}, got {value!r}")
    return number


# ------------------------------------------------------------------ model description
def truncation_from(signatures: dict[str, dict[str, int]], extra: dict | None
                    ) -> Truncation | None:
    """The truncation capability: present when a signature takes `seed` and `truncation`
    (kgan's `generate_truncated`, or a `generate` that has the input itself).

    Args:
        signatures: signature name -> its input names -> rank.
        extra: kgan.json's optional "truncation" object ({"default", "min", "max",
            "signature"}); its "signature" is preferred when it qualifies.
    """
    extra = extra if isinstance(extra, dict) else {}
    seeded = _taking(signatures, "seed", (extra.get("signature"), "generate"))
    if seeded is None:
        return None
    latents = _taking(signatures, "z", (extra.get("latents_signature"), "serving_default",
                                        "latents_truncated"))
    return Truncation(default=float(extra.get("default", 1.0)),
                      minimum=float(extra.get("min", 0.0)),
                      maximum=float(extra.get("max", 1.0)),
                      rank=int(signatures[seeded][TRUNCATION_INPUT]),
                      signature=seeded, latents_signature=latents)


def _taking(signatures: dict[str, dict[str, int]], first: str, preferred) -> str | None:
    """The signature with inputs `first` and `truncation`: a preferred name, else the first
    such name in sorted order (None when no signature qualifies)."""
    names = sorted(name for name, inputs in signatures.items()
                   if {first, TRUNCATION_INPUT} <= set(inputs))
    return next((name for name in preferred if name in names), names[0] if names else None)


def version_dir(path: str) -> str:
    """A version folder as given, or a model folder's highest numbered version."""
    path = os.fspath(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"export not found: {path} (expected EXPORT_DIR/<model> or "
                                "EXPORT_DIR/<model>/<version>)")
    found = latest_version(path)
    if found is None:
        raise FileNotFoundError(f"{path} holds no export: expected saved_model.pb or numbered "
                                "version folders (EXPORT_DIR/<model>/<version>/)")
    return found


def model_name(path: str) -> str:
    """The served name of an export folder: the model folder's name."""
    path = os.path.abspath(path)
    if is_version(os.path.basename(path)):
        path = os.path.dirname(path)
    return os.path.basename(path)
