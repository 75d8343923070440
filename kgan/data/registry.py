"""The source registry: which kind of data a name means, and the object that reads it.

A source is one object with a `kind`, `matches(name)`, `describe(name, ...)` and
`load(name, options)`. `find_source(name)` asks the registered sources in turn, newest
registration first, so a source added later can claim names before the built-in ones
(TFDS, which takes every name nobody else claims, was registered first). Nothing here
imports TensorFlow: matching a name never does.

Example, a source of random noise images under the name "noise":
    >>> class Noise(kgan.data.Source):
    ...     kind = "noise"
    ...     preset = "folder64"  # what kgan-train --dataset noise trains by default
    ...     def matches(self, name): return name == "noise"
    ...     def describe(self, name, *, split, data_dir):
    ...         return kgan.data.SourceInfo(name, self.kind, 1024, None, (None, None, None))
    ...     def load(self, name, options):
    ...         images = np.random.default_rng(options.seed).random([1024, 8, 8, 3])
    ...         return kgan.data.from_arrays(images, None, options)
    >>> kgan.data.register_source(Noise())
    >>> kgan.data.load("noise", resolution=8, channels=3, batch_size=64)
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from kgan._definitions import same_definition

if TYPE_CHECKING:
    import tensorflow as tf

    from kgan.data.folder import FolderReport
    from kgan.data.options import DataOptions


@dataclasses.dataclass(frozen=True)
class SourceInfo:
    """What training needs to know about a source before building models.

    Attributes:
        name: the source as given (TFDS name, "digits", or the file's or folder's
            absolute path).
        kind: the registered source kind: "tfds", "folder", "arrays", "digits", ...
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


class Source:
    """One kind of data behind a name. Subclass it, fill in the three methods, register it.

    Attributes:
        kind: the registry key, also `SourceInfo.kind`.
        usage: how a name for this source is written, for error messages and docs.
        preset: the `kgan.training.presets` name a kgan-train run on this source gets when
            it names no --preset (sizes, networks, recipe); empty: such a run is refused
            and asked to pick one.
    """

    kind: str = ""
    usage: str = ""
    preset: str = ""

    def matches(self, name: str | os.PathLike) -> bool:
        """Whether `name` means this source. Cheap: no TensorFlow, no reading of data."""
        raise NotImplementedError

    def describe(
        self, name: str | os.PathLike, *, split: str, data_dir: str | None
    ) -> SourceInfo:
        """Counts, classes and image shape, without building a pipeline or downloading."""
        raise NotImplementedError

    def load(self, name: str | os.PathLike, options: DataOptions) -> tf.data.Dataset:
        """The pipeline, meeting the batch contract of `kgan.data` (see its docstring).
        Its order must be a function of `options` (`seed`, `reshuffle`) alone, as
        `kgan.data.pipeline.finish` makes it: kgan-train's exact resume rebuilds an epoch
        from its seed."""
        raise NotImplementedError


_SOURCES: dict[str, Source] = {}  # in the order `find_source` asks them


def register_source(source: Source) -> Source:
    """Adds `source`; it is asked before every source registered earlier.

    Raises:
        ValueError: the kind is empty or taken, or a method is missing.
    """
    global _SOURCES
    kind = getattr(source, "kind", "")
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"a data source needs a non-empty `kind` string, got {kind!r}.")
    if kind in _SOURCES and not same_definition(type(_SOURCES[kind]), type(source)):
        raise ValueError(f"a data source of kind {kind!r} is already registered.")
    missing = [m for m in ("matches", "describe", "load") if not callable(getattr(source, m, 0))]
    if missing:
        raise ValueError(f"data source {kind!r} lacks the method(s) {', '.join(missing)}.")
    if not isinstance(getattr(source, "preset", ""), str):
        raise ValueError(f"data source {kind!r}: `preset` must be a preset's name (a string), "
                         f"got {source.preset!r}.")
    _SOURCES = {kind: source, **{k: s for k, s in _SOURCES.items() if k != kind}}
    return source


def names() -> tuple[str, ...]:
    """Registered kinds, in the order `find_source` asks them."""
    return tuple(_SOURCES)


def get_source(kind: str) -> Source:
    """The source registered as `kind`; the error lists the registered kinds."""
    try:
        return _SOURCES[kind]
    except (KeyError, TypeError):
        raise ValueError(
            f"no data source of kind {kind!r}; registered: {', '.join(_SOURCES)}."
        ) from None


def find_source(name: str | os.PathLike) -> Source:
    """The first registered source (newest first) that claims `name`.

    Raises:
        ValueError: no source claims it; the message lists what each source takes.
    """
    if not isinstance(name, (str, os.PathLike)) or not os.fspath(name):
        arrays = isinstance(name, (tuple, list)) or hasattr(name, "shape")
        got = (f"a {type(name).__name__}"
               + (f" of shape {tuple(name.shape)}" if hasattr(name, "shape") else "")
               if arrays else repr(name))  # never an array's whole repr
        raise ValueError(f"a data source name must be a non-empty string or path, got {got}"
                         + ("; for arrays in memory use kgan.data.from_arrays(images, "
                            "labels, ...)" if arrays else "") + ".")
    for source in _SOURCES.values():
        if source.matches(name):
            return source
    kinds = "; ".join(f"{s.kind}: {s.usage or 'see its docs'}" for s in _SOURCES.values())
    raise ValueError(f"no data source takes {os.fspath(name)!r}. Sources: {kinds}.")
