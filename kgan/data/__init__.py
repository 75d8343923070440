"""Input pipelines: TFDS by name, image folders, IDX files, .npz arrays, and the `digits` demo.

Every source ends in the same contract: a `tf.data.Dataset` of float32 images in
[-1, 1], [B, resolution, resolution, channels] (NHWC; plus int32 [B] labels when
`conditional`), batched with the *global* batch size and `drop_remainder=True`, so a
distribution strategy can split each batch evenly over replicas (`drop_remainder=False`
keeps the last, smaller batch, for scoring every image).

What to build is one `DataOptions`; which source reads a name is the registry's choice
(`find_source`): IDX files or folders and "fashion_mnist" ("idx": Debian's files when
installed, else TFDS), then "digits", then a `.npz` file ("arrays"), then a path or
existing folder ("folder"), then any other name as a TFDS dataset ("tfds"). A new source
is one module with a `Source` subclass plus `register_source(...)`. Importing this
package, building `DataOptions` and finding a source load no TensorFlow; `load` and
`describe` do.

Example:
    >>> import kgan
    >>> options = kgan.data.DataOptions(resolution=32, channels=1, batch_size=64)
    >>> info = kgan.data.describe("digits")           # num_examples=1797, num_classes=10
    >>> ds = kgan.data.load("digits", options)
    >>> ds = kgan.data.load("digits", resolution=32, channels=1, batch_size=64)  # same
    >>> steps_per_epoch = info.steps_per_epoch(64)
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kgan.data.arrays import ArraysSource, from_arrays
from kgan.data.digits import DIGITS, DigitsSource
from kgan.data.folder import (
    FolderReport,
    FolderSource,
    SkippedImagesWarning,
    UpscaledImagesWarning,
    scan_image_folder,
)
from kgan.data.idx import IdxSource
from kgan.data.options import DataOptions
from kgan.data.registry import (
    Source,
    SourceInfo,
    find_source,
    get_source,
    names,
    register_source,
)
from kgan.data.tfds_source import DatasetNotPreparedError, TfdsSource

if TYPE_CHECKING:
    import tensorflow as tf

__all__ = [
    "DIGITS",
    "SOURCES",
    "DataOptions",
    "DatasetNotPreparedError",
    "FolderReport",
    "SkippedImagesWarning",
    "UpscaledImagesWarning",
    "Source",
    "SourceInfo",
    "describe",
    "find_source",
    "from_arrays",
    "get_source",
    "load",
    "register_source",
    "scan_image_folder",
]

# Sources are asked newest first: TFDS, which takes every other name, is registered first.
register_source(TfdsSource())
register_source(FolderSource())
register_source(ArraysSource())
register_source(DigitsSource())
register_source(IdxSource())


def __getattr__(name: str):
    """`SOURCES`: the registered kinds in the order they are asked, always current."""
    if name == "SOURCES":
        return names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def describe(
    source: str | os.PathLike,
    options: DataOptions | None = None,
    *,
    split: str | None = None,
    data_dir: str | None = None,
) -> SourceInfo:
    """Describes a source without building a pipeline (and without downloading).

    Args:
        source: TFDS name, "digits", a .npz file, an IDX folder or file, or a path to
            an image folder.
        options: where to look: its `split` and `data_dir` are used (nothing else).
        split: TFDS split (slicing syntax allowed); IDX folders have "train" and "test"
            (slices too); other sources have only "train".
            Overrides `options.split`; default "train".
        data_dir: TFDS data dir (default: TFDS's own, usually ~/tensorflow_datasets).
            Overrides `options.data_dir`.

    Returns:
        `SourceInfo`. For folders this scans (and validates) every image once.
    """
    split = split or (options.split if options else "train")
    data_dir = data_dir or (options.data_dir if options else None)
    return find_source(source).describe(source, split=split, data_dir=data_dir)


def load(
    source: str | os.PathLike, options: DataOptions | None = None, **fields
) -> tf.data.Dataset:
    """Builds the training pipeline for `source` as `options` say.

    Args:
        source: a path to an existing folder (recursive; jpg/png/bmp/gif/webp; bad files
            are reported and skipped before training), a folder of IDX files
            (train-images-idx3-ubyte[.gz], ... as MNIST ships them) or one IDX images
            file, "fashion_mnist" (Debian's IDX files from `apt-get install
            dataset-fashion-mnist` when installed, else TFDS), a .npz file (`images`,
            optional `labels`), "digits" (scikit-learn's 8x8 digits, offline), or any TFDS image
            dataset name ("mnist", "cifar10", "celeb_a", ...; celeb_a gets the
            ProGAN/StyleGAN 128x128 face crop).
        options: a `DataOptions`; may be omitted when its fields are given as keywords.
        **fields: `DataOptions` fields (resolution=, channels=, batch_size=, ...), which
            override those of `options`.

    Returns:
        tf.data.Dataset of float32 [batch, resolution, resolution, channels] in [-1, 1],
        or (images, int32 [batch] labels) when `conditional`.

    Raises:
        DatasetNotPreparedError: TFDS data missing and download=False.
        FileNotFoundError: a path that does not exist.
        ValueError: bad options, an unlabelled source with conditional=True, an unknown
            name, or a folder with no usable image.
    """
    if options is None:
        options = DataOptions(**fields)
    elif fields:
        options = options.replace(**fields)
    return find_source(source).load(source, options)
