"""Input pipelines: TFDS by name, image folders, NumPy arrays, and the `digits` demo.

Every source ends in the same contract: a `tf.data.Dataset` of float32 images in
[-1, 1], [B, resolution, resolution, channels] (plus int32 [B] labels when
`conditional`), batched with the *global* batch size and `drop_remainder=True`, so a
distribution strategy can split each batch evenly over replicas.

Example:
    >>> import kgan
    >>> info = kgan.data.describe("digits")           # num_examples=1797, num_classes=10
    >>> ds = kgan.data.load("digits", resolution=32, channels=1, batch_size=64)
    >>> steps_per_epoch = info.steps_per_epoch(64)
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from kgan.data import pipeline, tfds_source
from kgan.data.arrays import digits_arrays, from_arrays
from kgan.data.folder import FolderReport, SkippedImagesWarning, load_folder, scan_image_folder
from kgan.data.tfds_source import DatasetNotPreparedError

__all__ = [
    "DIGITS",
    "DatasetNotPreparedError",
    "FolderReport",
    "SkippedImagesWarning",
    "SourceInfo",
    "describe",
    "from_arrays",
    "load",
    "scan_image_folder",
]

DIGITS = "digits"


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What training needs to know about a source before building models.

    Attributes:
        name: the source as given (TFDS name, "digits", or the folder's absolute path).
        kind: "tfds", "folder" or "digits".
        num_examples: examples in the split, or None when unknown (TFDS not prepared).
        num_classes: number of classes, or None for unlabelled sources.
        image_shape: native (H, W, C) when fixed, entries None where it varies.
        report: the folder scan (usable files, skipped files) for folders, else None.
    """

    name: str
    kind: str
    num_examples: int | None
    num_classes: int | None
    image_shape: tuple[int | None, ...]
    report: FolderReport | None = None

    def steps_per_epoch(self, batch_size: int) -> int | None:
        """Full global batches per epoch (drop_remainder), or None when unknown."""
        return None if self.num_examples is None else self.num_examples // batch_size


def describe(
    source: str | os.PathLike, *, split: str = "train", data_dir: str | None = None
) -> SourceInfo:
    """Describes a source without building a pipeline (and without downloading).

    Args:
        source: TFDS name, "digits", or path to an image folder.
        split: TFDS split (slicing syntax allowed), ignored for other sources.
        data_dir: TFDS data dir (default: TFDS's own, usually ~/tensorflow_datasets).

    Returns:
        `SourceInfo`. For folders this scans (and validates) every image once.
    """
    if _is_folder(source):
        report = scan_image_folder(source)
        classes = len(report.class_names) if report.class_names else None
        return SourceInfo(
            report.root, "folder", len(report.files), classes, (None, None, None), report
        )
    if source == DIGITS:
        return SourceInfo(DIGITS, "digits", 1797, 10, (8, 8, 1))
    builder = tfds_source.get_builder(str(source), data_dir)
    features = tfds_source.find_features(builder)
    count = tfds_source.num_examples(builder, split)
    return SourceInfo(str(source), "tfds", count, features.num_classes, features.image_shape)


def load(
    source: str | os.PathLike,
    *,
    resolution: int,
    channels: int,
    batch_size: int,
    conditional: bool = False,
    split: str = "train",
    data_dir: str | None = None,
    download: bool = False,
    shuffle: bool = True,
    seed: int = 0,
    cache: bool | str = False,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """Builds the training pipeline for a TFDS name, "digits", or an image folder.

    Args:
        source: a path to an existing folder (recursive; jpg/png/bmp/gif/webp; bad files
            are reported and skipped before training), "digits" (scikit-learn's 8x8
            digits, offline), or any TFDS image dataset name ("mnist", "cifar10",
            "celeb_a", ...; celeb_a gets the ProGAN/StyleGAN 128x128 face crop).
        resolution: output side in pixels (centre square crop, then resize).
        channels: 1 or 3; sources are converted (gray->RGB, RGB->luma, alpha over white).
        batch_size: the global batch size; batches use drop_remainder=True.
        conditional: yield (images, int32 labels); needs a labelled source.
        split: TFDS split, slicing syntax allowed ("train[:90%]"); "train" for others.
        data_dir: TFDS data dir; default is TFDS's own (~/tensorflow_datasets).
        download: allow TFDS to download and prepare missing data. Off by default, so an
            offline machine gets an immediate `DatasetNotPreparedError` with the fix.
        shuffle: shuffle with `seed`; a new, reproducible order each epoch.
        seed: seed for the file and example shuffles.
        cache: True caches preprocessed images in memory, a path caches to that file.
        shuffle_buffer: upper bound on the example shuffle buffer.

    Returns:
        tf.data.Dataset of float32 [batch, resolution, resolution, channels] in [-1, 1],
        or (images, int32 [batch] labels) when `conditional`.

    Raises:
        DatasetNotPreparedError: TFDS data missing and download=False.
        ValueError: bad arguments, unlabelled source with conditional=True, unknown
            name, or a folder with no usable image.
    """
    pipeline.check_geometry(resolution, channels)
    common = dict(
        resolution=resolution,
        channels=channels,
        batch_size=batch_size,
        conditional=conditional,
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        shuffle_buffer=shuffle_buffer,
    )
    if _is_folder(source):
        return load_folder(source, **common)
    if source == DIGITS:
        return _load_digits(split, **common)
    return tfds_source.load_tfds(
        str(source), split=split, data_dir=data_dir, download=download, **common
    )


def _is_folder(source: str | os.PathLike) -> bool:
    """Paths and existing folders are folders; "name/config" strings stay TFDS names."""
    if isinstance(source, os.PathLike) or os.path.isdir(source):
        return True
    return str(source).startswith(("/", "./", "../", "~"))


def _load_digits(split: str, *, conditional: bool, cache: bool | str, **kwargs) -> tf.data.Dataset:
    if split != "train":
        raise ValueError(f"'digits' has a single split, 'train'; got split={split!r}.")
    del cache  # already in memory
    images, labels = digits_arrays()
    return from_arrays(images, labels if conditional else None, value_range=(0.0, 1.0), **kwargs)
