"""The `digits` source: scikit-learn's bundled 8x8 digits, the offline demo and test set."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from kgan.data.registry import Source, SourceInfo

if TYPE_CHECKING:
    import tensorflow as tf

    from kgan.data.options import DataOptions

DIGITS = "digits"


class DigitsSource(Source):
    """1797 labelled 8x8 grayscale digits (10 classes), read from scikit-learn's package
    data, so it works without a network. "digits" always means this set, even where a
    folder of that name exists; write "./digits" for the folder.
    """

    kind = DIGITS
    usage = "the name 'digits' (scikit-learn's 8x8 digits, offline)"

    def matches(self, name: str | os.PathLike) -> bool:
        return isinstance(name, str) and name == DIGITS

    def describe(self, name: str | os.PathLike, *, split: str, data_dir: str | None) -> SourceInfo:
        _check_split(split)
        return SourceInfo(DIGITS, self.kind, 1797, 10, (8, 8, 1))

    def load(self, name: str | os.PathLike, options: DataOptions) -> tf.data.Dataset:
        from kgan.data.arrays import digits_arrays, from_arrays

        _check_split(options.split)
        images, labels = digits_arrays()
        return from_arrays(images, labels, options, value_range=(0.0, 1.0))


def _check_split(split: str) -> None:
    if split != "train":
        raise ValueError(f"'digits' has a single split, 'train'; got split={split!r}.")
