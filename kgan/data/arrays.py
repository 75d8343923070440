"""NumPy arrays: in memory (`from_arrays`), in a .npz file (the "arrays" source), and the
scikit-learn `digits` demo set. TensorFlow loads only when a pipeline is built.
"""

from __future__ import annotations

import os
import zipfile
import zlib
from typing import TYPE_CHECKING

import numpy as np

from kgan.data.options import DataOptions
from kgan.data.registry import Source, SourceInfo

if TYPE_CHECKING:
    import tensorflow as tf

# Accepted value ranges for float arrays, tried in this order when not given.
FLOAT_RANGES = ((0.0, 1.0), (-1.0, 1.0))


def as_nhwc(images: np.ndarray) -> np.ndarray:
    """Adds a channel axis to NHW arrays and checks NHWC with 1, 2, 3 or 4 channels."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., np.newaxis]
    if images.ndim != 4 or images.shape[-1] not in (1, 2, 3, 4) or 0 in images.shape[:3]:
        raise ValueError(
            f"images must be [N, H, W] or [N, H, W, C] with C in 1..4 and N, H, W > 0; "
            f"got shape {images.shape}."
        )
    return images


def check_range(images: np.ndarray, given: tuple[float, float] | None) -> tuple[float, float]:
    """Checks the array's values against its range; infers the range when not given.

    Integer arrays must hold [0, 255]. Float arrays must lie in [0, 1] or [-1, 1]
    (inferred in that order, so pass value_range=(-1, 1) for [-1, 1] data that happens
    to be non-negative). Anything else is a clear error, not a silent rescale.
    """
    if images.dtype == bool or not np.issubdtype(images.dtype, np.number):
        raise ValueError(f"images must be a numeric array, got dtype {images.dtype}.")
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError("images contain NaN or infinite values.")
    if given is None:
        if np.issubdtype(images.dtype, np.integer):
            given = (0.0, 255.0)
        else:
            given = next((r for r in FLOAT_RANGES if r[0] <= low and high <= r[1]), None)
    if given is None or low < given[0] or high > given[1]:
        raise ValueError(
            f"images of dtype {images.dtype} hold values in [{low:g}, {high:g}], outside "
            f"{'the expected range ' + str(given) if given else '[0, 1] and [-1, 1]'}. "
            "Pass uint8 in [0, 255] or floats in [0, 1] or [-1, 1] (e.g. divide by 255)."
        )
    return given


def check_labels(labels: np.ndarray | None, count: int) -> np.ndarray | None:
    """Labels must be non-negative integers, one per image."""
    if labels is None:
        return None
    labels = np.asarray(labels)
    if labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be integers of shape ({count},), got {labels.dtype} {labels.shape}."
        )
    if labels.min() < 0:
        raise ValueError(f"labels must be >= 0, got a minimum of {labels.min()}.")
    return labels.astype(np.int32)


def from_arrays(
    images: np.ndarray,
    labels: np.ndarray | None = None,
    options: DataOptions | None = None,
    *,
    value_range: tuple[float, float] | None = None,
    **fields,
) -> tf.data.Dataset:
    """Pipeline over NumPy images (+ labels), same output contract as `load`.

    Arrays are embedded in the graph, which suits data sets up to a few hundred MB;
    write larger ones to an image folder or TFDS instead.

    Args:
        images: [N, H, W] or [N, H, W, C]; uint8 [0, 255] or float [0, 1] / [-1, 1].
        labels: optional int [N], yielded as (images, labels) when conditional.
        options: a `DataOptions`; or give its fields as keywords, where `resolution`
            defaults to the input height (non-square inputs are centre-cropped either
            way), `channels` to 1 for single-channel inputs and 3 otherwise, and
            `conditional` to whether `labels` were given.
        value_range: (low, high) of the input values; inferred when None.
        **fields: `DataOptions` fields (batch_size=, shuffle=, seed=, ...); they
            override those of `options`.

    Returns:
        tf.data.Dataset of float32 [B, resolution, resolution, channels] in [-1, 1]
        (and int32 [B] labels).

    Example:
        >>> ds = from_arrays(np.zeros([64, 28, 28], np.uint8), batch_size=32)
    """
    import tensorflow as tf

    from kgan.data import pipeline

    images = as_nhwc(images)
    options = _arrays_options(images, labels, options, fields)
    low, high = check_range(images, value_range)
    labels = check_labels(labels, len(images)) if options.conditional else None
    if options.conditional and labels is None:
        raise ValueError("conditional=True needs labels: one integer class per image.")

    def preprocess(image: tf.Tensor, *label: tf.Tensor) -> tf.Tensor | tuple:
        unit = (tf.cast(image, tf.float32) - low) / (high - low)
        image = pipeline.preprocess_image(unit, options.resolution, options.channels)
        return (image, *label) if label else image

    elements = images if labels is None else (images, labels)
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    return pipeline.finish(dataset, preprocess, options, num_examples=len(images))


def _arrays_options(
    images: np.ndarray, labels: np.ndarray | None, options: DataOptions | None, fields: dict
) -> DataOptions:
    """`options` with `fields` applied; without options, defaults taken from the data."""
    if options is not None:
        return options.replace(**fields) if fields else options
    defaults = dict(
        resolution=images.shape[1],
        channels=1 if images.shape[-1] == 1 else 3,
        conditional=labels is not None,
    )
    given = {key: value for key, value in fields.items() if value is not None}
    return DataOptions(**{**defaults, **given})


class ArraysSource(Source):
    """A NumPy `.npz` file with an `images` array and, for conditional training, `labels`.

    Values follow `from_arrays`: uint8 in [0, 255], or floats in [0, 1] or [-1, 1].
    """

    kind = "arrays"
    usage = "a .npz file holding 'images' [N, H, W(, C)] and optional int 'labels' [N]"

    def matches(self, name: str | os.PathLike) -> bool:
        return os.fspath(name).lower().endswith(".npz")

    def describe(self, name: str | os.PathLike, *, split: str, data_dir: str | None) -> SourceInfo:
        del data_dir  # a file path says where the data is
        images, labels = read_npz(name, split, labelled=False)
        classes = None if labels is None else int(labels.max()) + 1
        path = _abspath(name)
        return SourceInfo(path, self.kind, len(images), classes, tuple(images.shape[1:]))

    def load(self, name: str | os.PathLike, options: DataOptions) -> tf.data.Dataset:
        images, labels = read_npz(name, options.split, labelled=options.conditional)
        return from_arrays(images, labels, options)


def read_npz(
    path: str | os.PathLike, split: str, labelled: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """The checked `images` (NHWC) and `labels` (or None) of a .npz file."""
    path = _abspath(path)
    if split != "train":
        raise ValueError(f"a .npz file has a single split, 'train'; got split={split!r}. "
                         "Keep each split in its own file.")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Array file not found: {path}.")
    save = "save with np.savez(path, images=images, labels=labels)"
    try:
        arrays = np.load(path, allow_pickle=False)
        if not isinstance(arrays, np.lib.npyio.NpzFile):  # a bare .npy array
            raise ValueError("one array, not named arrays")
        with arrays:
            found = f"it has {', '.join(arrays.files) or 'no arrays'}"
            if "images" not in arrays:
                raise _NpzError(f"{path} has no 'images' array ({found}); {save}.")
            if labelled and "labels" not in arrays:
                raise _NpzError(
                    f"conditional=True (kgan-train: --conditional) needs a 'labels' array in "
                    f"{path} ({found}); {save}, or train unconditionally.")
            images, labels = arrays["images"], arrays.get("labels")
    except _NpzError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as error:
        # truncated, damaged, pickled or not an .npz at all
        raise ValueError(f"{path} is not a readable .npz file ({error}); {save}.") from None
    images = as_nhwc(images)
    return images, check_labels(labels, len(images))


class _NpzError(ValueError):
    """A readable .npz file without the arrays kgan needs."""


def _abspath(path: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(path)))


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits: float [0, 1] images and labels.

    1797 images of 10 classes, read from scikit-learn's package data (no download),
    which makes it the offline demo set and the test fixture.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int32)
