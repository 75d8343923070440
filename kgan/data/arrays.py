"""In-memory NumPy arrays and the scikit-learn `digits` demo set."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from kgan.data import pipeline

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
    *,
    batch_size: int,
    resolution: int | None = None,
    channels: int | None = None,
    value_range: tuple[float, float] | None = None,
    shuffle: bool = True,
    seed: int = 0,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Pipeline over NumPy images (+ labels), same output contract as `load`.

    Arrays are embedded in the graph, which suits data sets up to a few hundred MB;
    write larger ones to an image folder or TFDS instead.

    Args:
        images: [N, H, W] or [N, H, W, C]; uint8 [0, 255] or float [0, 1] / [-1, 1].
        labels: optional int [N]; when given, elements are (images, labels).
        batch_size: global batch size (drop_remainder=True).
        resolution: output side; default the input height (non-square inputs are
            centre-cropped to a square either way).
        channels: 1 or 3; default 1 for single-channel inputs, else 3.
        value_range: (low, high) of the input values; inferred when None.
        shuffle: shuffle with `seed`, a new reproducible order each epoch.
        seed: shuffle seed.
        shuffle_buffer: cap on the shuffle buffer (default covers small arrays fully).

    Returns:
        tf.data.Dataset of float32 [B, resolution, resolution, channels] in [-1, 1]
        (and int32 [B] labels).

    Example:
        >>> ds = from_arrays(np.zeros([64, 28, 28], np.uint8), batch_size=32)
    """
    images = as_nhwc(images)
    low, high = check_range(images, value_range)
    labels = check_labels(labels, len(images))
    resolution = resolution or images.shape[1]
    channels = channels or (1 if images.shape[-1] == 1 else 3)
    pipeline.check_geometry(resolution, channels)

    def preprocess(image: tf.Tensor, *label: tf.Tensor) -> tf.Tensor | tuple:
        unit = (tf.cast(image, tf.float32) - low) / (high - low)
        image = pipeline.preprocess_image(unit, resolution, channels)
        return (image, *label) if label else image

    elements = images if labels is None else (images, labels)
    return pipeline.finish(
        tf.data.Dataset.from_tensor_slices(elements),
        preprocess,
        batch_size=batch_size,
        num_examples=len(images),
        shuffle=shuffle,
        seed=seed,
        cache=False,
        shuffle_buffer=shuffle_buffer,
    )


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 handwritten digits: float [0, 1] images and labels.

    1797 images of 10 classes, read from scikit-learn's package data (no download),
    which makes it the offline demo set and the test fixture.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images / 16.0).astype(np.float32), bunch.target.astype(np.int32)
