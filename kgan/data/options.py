"""`DataOptions`: what a pipeline should produce, validated once, shared by every source.

Plain data without TensorFlow, so a command line can check its flags in milliseconds.
"""

from __future__ import annotations

import dataclasses
import numbers
import os

# kgan-train's flag for each field a user can get wrong, for messages that say what to type.
FLAGS = {
    "resolution": "--resolution",
    "channels": "--channels",
    "batch_size": "--batch-size",
    "conditional": "--conditional",
    "data_dir": "--data-dir",
    "download": "--download",
    "seed": "--seed",
}


def flag(field: str) -> str:
    """'batch_size (kgan-train: --batch-size)': the Python and the command-line spelling."""
    cli = FLAGS.get(field)
    return f"{field} (kgan-train: {cli})" if cli else field


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataOptions:
    """Everything a source needs to build the training pipeline.

    Attributes:
        resolution: output side in pixels (centre square crop, then resize).
        channels: 1 (grayscale) or 3 (RGB); sources are converted (gray->RGB,
            RGB->luma, alpha over white).
        batch_size: the *global* batch size.
        drop_remainder: drop the last, smaller batch (True for training: every replica
            gets equal batches; False to score every image, as kgan-evaluate does).
        conditional: yield (images, int32 labels); needs a labelled source.
        split: TFDS split, slicing syntax allowed ("train[:90%]"); IDX folders have
            "train" and "test" (sliced alike); other sources have only "train".
        data_dir: TFDS data dir; None means TFDS's own (~/tensorflow_datasets).
        download: let TFDS download and prepare missing data. Off by default, so an
            offline machine gets an immediate `DatasetNotPreparedError` with the fix.
        shuffle: shuffle with `seed`; a new, reproducible order each epoch.
        mirror: flip each image left-right with probability 1/2, drawn from `seed` (and
            anew for each iteration when `reshuffle`): StyleGAN's and R3GAN's `--mirror`,
            which add every image's mirror image to the data set, alike in expectation.
            For data without a handedness (faces, objects), not digits or text.
        reshuffle: each new iterator over the dataset (each Keras epoch) gets the next
            order; False: every iterator gets the same, `seed`'s (kgan-train gives each
            epoch its own seed, so an extra iterator, as Keras opens under a
            tf.distribute strategy, cannot move the run to another order).
        seed: seed for the file and example shuffles (>= 0).
        cache: True caches preprocessed images in memory, a path caches to that file.
        shuffle_buffer: upper bound on the example shuffle buffer.

    Example:
        >>> options = DataOptions(resolution=32, channels=1, batch_size=64)
        >>> kgan.data.load("digits", options)
        >>> kgan.data.load("digits", options, seed=1)   # keywords override fields
    """

    resolution: int
    channels: int
    batch_size: int
    drop_remainder: bool = True
    conditional: bool = False
    split: str = "train"
    data_dir: str | None = None
    download: bool = False
    shuffle: bool = True
    reshuffle: bool = True
    mirror: bool = False
    seed: int = 0
    cache: bool | str = False
    shuffle_buffer: int = 10_000

    def __post_init__(self) -> None:
        _check_int(self, "resolution", 1, "the output side in pixels, e.g. 32")
        channels = self.channels
        if isinstance(channels, bool) or not isinstance(channels, numbers.Integral) or (
            channels not in (1, 3)
        ):
            raise ValueError(f"{flag('channels')} must be 1 (grayscale) or 3 (RGB), "
                             f"got {self.channels!r}.")
        object.__setattr__(self, "channels", int(self.channels))
        _check_int(self, "batch_size", 1, "the global batch size, e.g. 64")
        for name in ("drop_remainder", "conditional", "download", "shuffle", "reshuffle",
                     "mirror"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}.")
        if not isinstance(self.split, str) or not self.split.strip():
            raise ValueError(f"split must be a split name such as 'train', got {self.split!r}.")
        if self.data_dir is not None:
            if not isinstance(self.data_dir, (str, os.PathLike)) or not os.fspath(self.data_dir):
                raise ValueError(f"{flag('data_dir')} must be a folder path or None, "
                                 f"got {self.data_dir!r}.")
            object.__setattr__(self, "data_dir", os.fspath(self.data_dir))
        _check_int(self, "seed", 0, "the shuffle seed")
        if not isinstance(self.cache, (bool, str, os.PathLike)) or self.cache == "":
            raise ValueError("cache must be True (memory), False, or a file path, "
                             f"got {self.cache!r}.")
        if not isinstance(self.cache, bool):
            object.__setattr__(self, "cache", os.fspath(self.cache))
        _check_int(self, "shuffle_buffer", 1, "elements held for shuffling, e.g. 10000")

    def replace(self, **changes) -> DataOptions:
        """A copy with `changes` applied (and validated); unknown names are an error."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            fields = ", ".join(f.name for f in dataclasses.fields(self))
            raise TypeError(f"DataOptions has no field {', '.join(unknown)}; "
                            f"its fields: {fields}.")
        return dataclasses.replace(self, **changes)


def _check_int(options: DataOptions, name: str, low: int, meaning: str) -> None:
    value = getattr(options, name)
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{flag(name)} must be an integer >= {low} ({meaning}), "
                         f"got {value!r}.")
    object.__setattr__(options, name, int(value))  # NumPy ints become plain ints
