"""What one request to an exported generator may hold, checked in NumPy.

The export's signatures enforce the same limits inside the graph (`kgan.serving.signatures`),
with the same words; these checks let Python callers and the REST client fail before a
round trip, without TensorFlow (standard library and NumPy only). The served model's name
(a folder of EXPORT_DIR and a segment of the server's URLs) follows one rule here too.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

import numpy as np

__all__ = ["INFO_FILE", "INT64_MAX", "INT64_MIN", "MAX_BATCH_SIZE", "MODEL_NAME_PATTERN",
           "NUM_CLASSES_SIGNATURE", "PNG_SIGNATURES",
           "TRUNCATED_SIGNATURES", "TRUNCATION_INFO", "TRUNCATION_RANGE", "as_seeds",
           "check_batch_size", "check_labels", "check_latents", "check_model_name",
           "check_seeds", "check_truncation", "is_version", "labels_from_seeds", "latest_version",
           "model_name_from", "read_info_file", "version_target"]

#: Largest batch one request may carry. Equals `max_batch_size` in
#: serving/batching_parameters.txt, so server-side batching never builds a batch the graph
#: refuses; clients split bigger requests.
MAX_BATCH_SIZE = 64
#: The export's description for kgan's tools (latent_dim, num_classes, image_shape, ...),
#: inside its version folder.
INFO_FILE = os.path.join("assets.extra", "kgan.json")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
#: Truncation psi a request may carry (generators with a mapping network). [0, 1] trades
#: variety for typicality (1 = none, 0 = the average image); the values outside
#: extrapolate (StyleGAN, Karras et al. 2019, figure 8 shows psi = -1); beyond this range
#: the images are noise, so such a value is taken for a mistake.
TRUNCATION_RANGE = (-1.0, 2.0)
#: A served model's name (kgan-train's --model-name, kgan-export's): one folder inside
#: EXPORT_DIR, never a path out of it, and one segment of TF Serving's REST URLs.
MODEL_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
#: A conditional export's signature that answers its class count (`seed` [N] -> int32
#: `num_classes` [N]), so clients never send an invalid request to learn it (under
#: server-side batching, one invalid row fails every request merged with it).
NUM_CLASSES_SIGNATURE = "num_classes"
#: The export's signature with a per-row `truncation` input, by the signature it extends.
TRUNCATED_SIGNATURES = {"generate": "generate_truncated", "serving_default": "latents_truncated"}
#: The signatures that answer `png_bytes` only, by the signature whose inputs they take.
#: TF Serving's REST API returns every output of a signature, so a client that wants
#: PNG files asks these and receives no JSON pixel arrays (64 RGB images of 128 px: 1-2.4
#: MB of base64 PNGs, by how well they compress, instead of 19 MB with `generate`).
PNG_SIGNATURES = {"generate": "generate_png",
                  TRUNCATED_SIGNATURES["generate"]: "generate_truncated_png"}
#: kgan.json's "truncation" entry: the default (StyleGAN's usual 0.7), the range the graph
#: accepts (TRUNCATION_RANGE, so kgan-demo and kgan-generate accept what the export does)
#: and the signature that takes it.
TRUNCATION_INFO = {"default": 0.7, "min": TRUNCATION_RANGE[0], "max": TRUNCATION_RANGE[1],
                   "signature": TRUNCATED_SIGNATURES["generate"]}


def check_model_name(name: str, what: str = "model name") -> str:
    """Returns `name` if it matches MODEL_NAME_PATTERN (so "", "..", "a/b", "/abs" and
    names with spaces are refused); `what` names it in the message (e.g. a flag)."""
    if not isinstance(name, str) or not MODEL_NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{what} must be letters, digits, '_', '.' and '-', starting with a "
                         f"letter or digit, got {name!r}")
    return name


def model_name_from(text: str) -> str:
    """A model name made from a folder's or file's name: other characters become '_'."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text).lstrip("_.-")
    return name or "model"


def check_latents(z, latent_dim: int) -> np.ndarray:
    """Validates a latent batch the way the `serving_default` signature does.

    Raises:
        ValueError: wrong dtype (the signature takes float32 only), shape, empty or
            oversized batch, or non-finite values.
    """
    z = np.asarray(z)
    if z.dtype != np.float32:
        raise ValueError(f"z must be float32, got {z.dtype}; the signature takes float32 "
                         "only, convert with z.astype(np.float32)")
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape [N, {latent_dim}] (latent_dim = {latent_dim}), "
                         f"got {list(z.shape)}")
    check_batch_size(len(z), "latent")
    bad = np.flatnonzero(~np.isfinite(z).all(axis=1))
    if bad.size:
        raise ValueError(f"z contains NaN or Inf in rows {bad[:10].tolist()}")
    return z


def as_seeds(seeds: Iterable[int] | np.ndarray) -> np.ndarray:
    """Integers as int64 seeds [N], any N. Every integer in int64's range is a seed
    (negative ones too); Python integers beyond it are refused here rather than
    overflowing inside NumPy."""
    if not isinstance(seeds, np.ndarray):
        seeds = list(seeds)
        big = [s for s in seeds if isinstance(s, int) and not INT64_MIN <= s <= INT64_MAX]
        if big:
            raise ValueError(f"seeds must lie in int64's range [-2**63, 2**63 - 1]; "
                             f"{big[0]} does not")
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or not (np.issubdtype(seeds.dtype, np.integer) or seeds.size == 0):
        raise ValueError(f"seeds must be a 1-D list of integers, got dtype {seeds.dtype} "
                         f"and shape {list(seeds.shape)}")
    if seeds.dtype == np.uint64 and seeds.size and seeds.max() > INT64_MAX:
        raise ValueError(f"seeds must lie in int64's range; {seeds.max()} does not")
    return seeds.astype(np.int64)


def check_seeds(seeds: Iterable[int] | np.ndarray) -> np.ndarray:
    """Validates the seeds of one `generate` request; returns them as int64 [N]."""
    seeds = as_seeds(seeds)
    check_batch_size(len(seeds), "seed")
    return seeds


def check_labels(labels, batch: int, num_classes: int | None) -> np.ndarray | None:
    """Validates class labels (int32 [N] in [0, num_classes)), or their absence."""
    if num_classes is None:
        if labels is not None:
            raise ValueError("this generator is unconditional; do not pass labels")
        return None
    if labels is None:
        raise ValueError(f"this generator is conditional: pass labels in [0, {num_classes})")
    labels = np.asarray(labels)
    if labels.shape != (batch,):
        raise ValueError(f"labels must be {batch} integers, got shape {list(labels.shape)}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be integers (class indices), got dtype {labels.dtype}")
    outside = np.unique(labels[(labels < 0) | (labels >= num_classes)])
    if outside.size:
        shown = ", ".join(str(v) for v in outside[:8]) + (", ..." if outside.size > 8 else "")
        raise ValueError(f"labels must lie in [0, {num_classes}), got {shown}")
    return labels.astype(np.int32)


def labels_from_seeds(seeds, num_classes: int) -> np.ndarray:
    """The GAN's default labels: seed % num_classes (floor modulo, so never negative),
    int32 [N], with the seeds checked: `kgan.gan.randomness.labels_from_seeds`'s twin for
    callers without Keras (the client, the demo)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    return np.mod(as_seeds(seeds), num_classes).astype(np.int32)


def check_truncation(truncation, batch: int) -> np.ndarray:
    """Validates truncation psi for a batch of `batch` rows: one number for every row or
    one per row; returns float32 [batch] (what the truncated signatures take).

    Raises:
        ValueError: not numbers, a count other than 1 or `batch`, NaN/Inf, or a value
            outside TRUNCATION_RANGE.
    """
    low, high = TRUNCATION_RANGE
    try:
        values = np.asarray(truncation, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"truncation must be a number or a list of numbers, got "
                         f"{truncation!r}") from None
    if values.ndim == 0:
        values = np.full(batch, values)
    if values.shape != (batch,):
        raise ValueError(f"truncation must be one number or one per row ({batch}), got "
                         f"shape {list(values.shape)}")
    if not np.isfinite(values).all():
        raise ValueError("truncation contains NaN or Inf")
    outside = values[(values < low) | (values > high)]
    if outside.size:
        raise ValueError(f"truncation must lie in [{low:g}, {high:g}] (1 = no truncation, "
                         f"0 = the average image), got {sorted(set(outside.tolist()))[:5]}")
    return values.astype(np.float32)


def check_batch_size(n: int, what: str) -> None:
    """Refuses an empty batch or one above MAX_BATCH_SIZE, naming `what` it counts."""
    if n == 0:
        raise ValueError(f"empty batch: send at least one {what}")
    if n > MAX_BATCH_SIZE:
        raise ValueError(f"batch of {n} {what}s is above MAX_BATCH_SIZE = {MAX_BATCH_SIZE} "
                         "(max_batch_size in serving/batching_parameters.txt); split it")


def is_version(name: str) -> bool:
    """A folder name TF Serving reads as a version: ASCII digits only (not "²" or "٣",
    which str.isdigit accepts)."""
    return re.fullmatch(r"[0-9]+", name) is not None


def version_target(model_dir: str, version: int | None, overwrite: bool) -> str | None:
    """The folder a requested version goes to (None: the next free number), checked before
    any work: an int64 above 0, and an existing one only with `overwrite`."""
    if version is None:
        return None
    if isinstance(version, bool) or int(version) != version or not 1 <= version <= INT64_MAX:
        raise ValueError(f"version must be a positive integer up to 2**63 - 1 (TF Serving's "
                         f"int64 versions), got {version!r}")
    target = os.path.join(model_dir, str(int(version)))
    if os.path.exists(target) and not overwrite:
        raise FileExistsError(f"version {version} already exists at {target}; pass "
                              "overwrite=True (kgan-export --overwrite) to replace it")
    return target


def latest_version(path: str) -> str | None:
    """An export's version folder as given, or a model folder's highest numbered version
    (TF Serving's layout EXPORT_DIR/<model>/<version>/); None when there is neither."""
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    versions = [name for name in os.listdir(path) if is_version(name)
                and os.path.isfile(os.path.join(path, name, "saved_model.pb"))]
    return os.path.join(path, max(versions, key=int)) if versions else None


def read_info_file(version_dir: str) -> dict:
    """The export's assets.extra/kgan.json (latent_dim, num_classes, image_shape, ...)."""
    path = os.path.join(version_dir, INFO_FILE)
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} is missing: {version_dir} is not a kgan export "
                                "(make one with kgan-export)") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is damaged ({' '.join(str(error).split())[:120]}): export "
                         "the model again with kgan-export") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path} is damaged (not a JSON object): export the model again "
                         "with kgan-export")
    return info
