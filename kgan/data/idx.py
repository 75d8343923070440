"""IDX files, the MNIST format: a folder of train / t10k files or one images file, and
`fashion_mnist` from Debian's `dataset-fashion-mnist` package when it is installed.

The format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header, the
magic number 0x00000803 for unsigned bytes in 3 dimensions (images) or 0x00000801 for
1 dimension (labels), one int32 size per dimension, then the bytes in C order. Files may
be gzipped (told by their first bytes, not their name). They are read with NumPy, checked
whole (a wrong magic number, a truncated file or a label count that differs from the
image count is one ValueError line naming the file and the fix) and kept in memory, so a
run's epochs read them once. TensorFlow loads only when a pipeline is built.

A folder holds the splits as `train-images-idx3-ubyte[.gz]` + `train-labels-idx1-ubyte[.gz]`
and `t10k-images-idx3-ubyte[.gz]` + `t10k-labels-idx1-ubyte[.gz]` ("test-" and
".idx3-ubyte" spellings too); the split is "train" or "test", with TFDS's slicing
syntax ("train[:10000]", "test[50%:]"). A single images file is one split, "train";
its labels file is the one named alike next to it.

Example:
    >>> ds = kgan.data.load("/usr/share/datasets/fashion-mnist", resolution=32, channels=1,
    ...                     batch_size=64, conditional=True, split="test")
    >>> kgan.data.describe("fashion_mnist").num_examples       # Debian's files, else TFDS
    60000
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os
import re
import zlib
from typing import TYPE_CHECKING

import numpy as np

from kgan.data import registry
from kgan.data.registry import Source, SourceInfo

if TYPE_CHECKING:
    import tensorflow as tf

    from kgan.data.options import DataOptions

KIND = "idx"
MAGIC_IMAGES = 0x00000803  # unsigned bytes, 3 dimensions: count, height, width
MAGIC_LABELS = 0x00000801  # unsigned bytes, 1 dimension: count
GZIP_MAGIC = b"\x1f\x8b"


@dataclasses.dataclass(frozen=True)
class DebianSet:
    """A data set name served by the IDX files of a Debian package when it is installed."""

    folder: str
    package: str
    title: str

    @property
    def install(self) -> str:
        return f"apt-get install {self.package}"


# Names read from Debian's files when installed (and from TFDS otherwise).
DEBIAN_SETS = {
    "fashion_mnist": DebianSet("/usr/share/datasets/fashion-mnist", "dataset-fashion-mnist",
                               "Fashion-MNIST"),
}

# File name prefixes of each split in a folder, in the order they are looked for.
SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}
# IDX file names: images (idx3) claimed to read them, labels (idx1) to say what to pass.
_IDX_FILE = re.compile(r"idx[13][-.]ubyte(\.gz)?$", re.IGNORECASE)
_SPLIT = re.compile(r"^(\w+)(?:\[\s*(-?\d+%?)?\s*:\s*(-?\d+%?)?\s*\])?$")


# ------------------------------------------------------------------ reading files
def _open(path: str):
    with open(path, "rb") as file:
        head = file.read(2)
    return gzip.open(path, "rb") if head == GZIP_MAGIC else open(path, "rb")


def _fix(path: str) -> str:
    """How to get a good copy of `path`."""
    for known in DEBIAN_SETS.values():
        if os.path.dirname(path) == known.folder:
            return f"reinstall it: apt-get install --reinstall {known.package}"
    return "download it again"


def read_header(path: str | os.PathLike, magic: int) -> tuple[int, ...]:
    """The sizes in the header of an IDX file with the expected `magic` number, reading
    only the header.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another magic number, or a file too short for its header.
    """
    path = os.fspath(path)
    dims = magic & 0xFF
    head = _read(path, 0, 4 + 4 * dims)
    found = int.from_bytes(head[:4].rjust(4, b"\xff"), "big")
    if found != magic:
        raise ValueError(_wrong_magic(path, found, magic) if len(head) >= 4 else
                         f"{path} is not an IDX file: it has {len(head)} bytes, fewer than "
                         f"the 4 of a magic number; {_fix(path)}.")
    if len(head) < 4 + 4 * dims:
        raise ValueError(f"{path} is truncated: it ends inside its header ({len(head)} of "
                         f"{4 + 4 * dims} bytes); {_fix(path)}.")
    return tuple(int(s) for s in np.frombuffer(head[4:], ">u4"))


def read_idx(path: str | os.PathLike, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file, checked against the expected `magic` number.

    Raises:
        FileNotFoundError: no such file.
        ValueError: another magic number, a truncated or overlong file, a damaged gzip
            stream; one line naming the file and the fix.
    """
    path = os.fspath(path)
    sizes = read_header(path, magic)
    expected = int(np.prod(sizes, dtype=np.int64))
    body = _read(path, 4 + 4 * len(sizes), expected + 1)
    if len(body) != expected:
        shape = " x ".join(map(str, sizes))
        if len(body) < expected:
            raise ValueError(f"{path} is truncated: its header promises {shape} = {expected} "
                             f"bytes of data but {len(body)} follow; {_fix(path)}.")
        raise ValueError(f"{path} is longer than its header says ({shape} = {expected} bytes "
                         f"of data, then more); it is not a valid IDX file, {_fix(path)}.")
    return np.frombuffer(body, np.uint8).reshape(sizes)


def _read(path: str, offset: int, count: int) -> bytes:
    """Up to `count` bytes from `offset` of the (possibly gzipped) file's content."""
    try:
        with _open(path) as file:
            file.seek(offset)
            return file.read(count)
    except FileNotFoundError:
        raise FileNotFoundError(f"IDX file not found: {path} does not exist.") from None
    except EOFError:  # gzip: the compressed stream stops before its end marker
        raise ValueError(f"{path} is truncated: its gzip stream ends early; "
                         f"{_fix(path)}.") from None
    except (OSError, zlib.error) as error:
        text = " ".join(str(error).split()) or type(error).__name__
        raise ValueError(f"{path} cannot be read as a (gzipped) IDX file ({text}); "
                         f"{_fix(path)}.") from None


def _wrong_magic(path: str, found: int, expected: int) -> str:
    what = {MAGIC_IMAGES: "an IDX images file", MAGIC_LABELS: "an IDX labels file"}
    want = ("uint8 images in 3 dimensions" if expected == MAGIC_IMAGES
            else "uint8 labels in 1 dimension")
    text = f"{path} is not {what[expected]}: magic number 0x{found:08x}, expected " \
           f"0x{expected:08x} ({want})"
    if found == MAGIC_LABELS:
        return text + "; it is a labels file: pass the *-images-idx3-ubyte file or its folder."
    if found == MAGIC_IMAGES:
        return text + "; it is an images file: name it *-images-idx3-ubyte[.gz]."
    return text + f"; kgan reads unsigned-byte IDX files as MNIST ships them, {_fix(path)}."


# --------------------------------------------------------------- finding the files
@dataclasses.dataclass(frozen=True)
class IdxFiles:
    """The images file of one split, and its labels file (or None) with where it was sought."""

    images: str
    labels: str | None
    sought: tuple[str, ...]


def _split(split: str) -> tuple[str, str | None, str | None]:
    """'train[:10%]' -> ('train', None, '10%')."""
    match = _SPLIT.match(split.strip()) if isinstance(split, str) else None
    if not match:
        raise ValueError(f"an IDX split is 'train' or 'test', optionally sliced as TFDS does "
                         f"('train[:10000]', 'test[50%:]'); got split={split!r}.")
    return match.group(1), match.group(2), match.group(3)


def _slice(count: int, start: str | None, stop: str | None) -> slice:
    def index(text: str | None) -> int | None:
        if text is None:
            return None
        if text.endswith("%"):
            return round(int(text[:-1]) * count / 100)
        return int(text)

    return slice(index(start), index(stop))


def _variants(folder: str, prefix: str, kind: str, idx: str) -> list[str]:
    names = [f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"]
    return [os.path.join(folder, n + gz) for n in names for gz in (".gz", "")]


def _first(paths: list[str]) -> str | None:
    return next((p for p in paths if os.path.isfile(p)), None)


def _abspath(name: str | os.PathLike) -> str:
    return os.path.abspath(os.path.expanduser(os.fspath(name)))


def is_idx_folder(path: str) -> bool:
    """Whether `path` is a folder holding a train or test IDX images file (a few stats)."""
    return os.path.isdir(path) and any(
        _first(_variants(path, prefix, "images", "idx3"))
        for prefixes in SPLIT_PREFIXES.values() for prefix in prefixes)


def find_files(path: str | os.PathLike, split: str) -> IdxFiles:
    """The files of `split` ('train' or 'test', slices allowed) under a folder, or a file.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: the folder lacks that split, or a single file was asked for 'test'.
    """
    path, (base, _, _) = _abspath(path), _split(split)
    if os.path.isdir(path):
        if base not in SPLIT_PREFIXES:
            raise ValueError(f"an IDX folder has the splits 'train' and 'test'; got "
                             f"split={split!r}.")
        candidates = [p for prefix in SPLIT_PREFIXES[base]
                      for p in _variants(path, prefix, "images", "idx3")]
        images = _first(candidates)
        if images is None:
            names = " or ".join(f"{p}-images-idx3-ubyte[.gz]" for p in SPLIT_PREFIXES[base])
            raise ValueError(f"{path} has no {base} images: looked for {names}; put the "
                             "split's IDX files there, or choose the other split.")
        prefix = os.path.basename(images).split("-", 1)[0]
        labels = _variants(path, prefix, "labels", "idx1")
        return IdxFiles(images, _first(labels), tuple(labels))
    if not os.path.exists(path):
        known = next((k for k in DEBIAN_SETS.values() if k.folder == path), None)
        if known is not None:
            raise FileNotFoundError(f"{known.title}'s IDX files are not installed in {path}: "
                                    f"{known.install}.")
        raise FileNotFoundError(f"IDX file not found: {path} does not exist.")
    if base != "train":
        raise ValueError(f"a single IDX file is one split, 'train'; got split={split!r}. Pass "
                         "the folder holding train-* and t10k-* files to choose a split.")
    labels = _labels_beside(path)
    return IdxFiles(path, _first(labels), tuple(labels))


def _labels_beside(images: str) -> list[str]:
    """train-images-idx3-ubyte.gz -> train-labels-idx1-ubyte(.gz) in the same folder."""
    folder, name = os.path.split(images)
    stem = re.sub(r"\.gz$", "", name, flags=re.IGNORECASE)
    labels = stem.replace("images", "labels").replace("idx3", "idx1")
    if labels == stem:
        return []
    return [os.path.join(folder, labels + gz) for gz in (".gz", "")]


# -------------------------------------------------------------------- the arrays
def _stamp(path: str) -> tuple[str, int, int]:
    stat = os.stat(path)
    return path, stat.st_size, stat.st_mtime_ns


@functools.lru_cache(maxsize=6)
def _read_cached(path: str, size: int, mtime_ns: int, magic: int) -> np.ndarray:
    del size, mtime_ns  # part of the key: a rewritten file is read again
    array = read_idx(path, magic)
    array.flags.writeable = False
    return array


def read_split(
    path: str | os.PathLike, split: str = "train", labelled: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """The uint8 images [N, H, W] and int32 labels [N] (None when unlabelled) of a split.

    Args:
        path: an IDX folder or images file.
        split: 'train' or 'test' (a folder), with TFDS slicing ('train[:1000]').
        labelled: the labels are required: their absence is an error.

    Raises:
        ValueError: bad files (one line naming the file and the fix), or no labels file
            when `labelled`.
    """
    files = find_files(path, split)
    images = _read_cached(*_stamp(files.images), MAGIC_IMAGES)
    labels = None
    if files.labels is not None:
        labels = _read_cached(*_stamp(files.labels), MAGIC_LABELS)
        if len(labels) != len(images):
            raise ValueError(
                f"{files.labels} holds {len(labels)} labels but {files.images} holds "
                f"{len(images)} images: each image needs one label. Use the labels file that "
                "came with the images, or train without conditional=True.")
    elif labelled:
        sought = ", ".join(os.path.basename(p) for p in files.sought)
        raise ValueError(
            f"conditional=True (kgan-train: --conditional) needs class labels, and no labels "
            f"file lies beside {files.images} (looked for {sought or 'its labels file'}): put "
            "the matching *-labels-idx1-ubyte[.gz] file there, or train without "
            "conditional=True.")
    part = _slice(len(images), *_split(split)[1:])
    images = images[part]
    labels = None if labels is None else labels[part].astype(np.int32)
    return images, labels


# ------------------------------------------------------------------- the source
def debian_folder(name: str | os.PathLike, data_dir: str | None) -> str | None:
    """The installed Debian folder that serves the name `name`, or None (not such a name,
    not installed, or a TFDS `data_dir` was given, which asks for TFDS's copy)."""
    known = DEBIAN_SETS.get(name) if isinstance(name, str) else None
    if known is None or data_dir is not None or not is_idx_folder(known.folder):
        return None
    return known.folder


class IdxSource(Source):
    """IDX files (MNIST's format): a folder of train-/t10k- files, gzipped or not, or one
    images file; and the names in `DEBIAN_SETS` ("fashion_mnist"), read from their Debian
    package's files when installed and from TFDS otherwise."""

    kind = KIND
    usage = ("a folder of IDX files (train-images-idx3-ubyte[.gz], ...) or one such file; "
             "'fashion_mnist' reads /usr/share/datasets/fashion-mnist (apt-get install "
             "dataset-fashion-mnist) when installed")

    def matches(self, name: str | os.PathLike) -> bool:
        if isinstance(name, str) and name in DEBIAN_SETS:
            return True
        path = os.fspath(name)
        if _IDX_FILE.search(path):
            return True
        path = _abspath(path)
        return is_idx_folder(path) or any(k.folder == path for k in DEBIAN_SETS.values())

    def describe(self, name: str | os.PathLike, *, split: str, data_dir: str | None) -> SourceInfo:
        path = self._path(name, data_dir)
        if path is None:
            return registry.get_source("tfds").describe(name, split=split, data_dir=data_dir)
        files = find_files(path, split)
        sizes = read_header(files.images, MAGIC_IMAGES)
        count = len(range(sizes[0])[_slice(sizes[0], *_split(split)[1:])])
        classes = None
        if files.labels is not None:
            _, labels = read_split(path, split)
            classes = int(labels.max()) + 1 if len(labels) else None
        return SourceInfo(path, self.kind, count, classes, (sizes[1], sizes[2], 1))

    def load(self, name: str | os.PathLike, options: DataOptions) -> tf.data.Dataset:
        from kgan.data.arrays import from_arrays

        path = self._path(name, options.data_dir)
        if path is None:
            return self._tfds(name, options)
        images, labels = read_split(path, options.split, labelled=options.conditional)
        return from_arrays(images, labels if options.conditional else None, options,
                           value_range=(0.0, 255.0))

    def _path(self, name: str | os.PathLike, data_dir: str | None) -> str | None:
        """The IDX folder or file to read, or None when TFDS serves the name."""
        if isinstance(name, str) and name in DEBIAN_SETS:
            return debian_folder(name, data_dir)
        return _abspath(name)

    def _tfds(self, name: str, options: DataOptions) -> tf.data.Dataset:
        from kgan.data.tfds_source import DatasetNotPreparedError, get_builder

        try:
            return registry.get_source("tfds").load(name, options)
        except DatasetNotPreparedError:
            known = DEBIAN_SETS[name]
            where = get_builder(name, options.data_dir).data_dir
            raise DatasetNotPreparedError(
                f"{known.title} is not on this machine: no IDX files in {known.folder} and "
                f"no prepared TFDS {name!r} at {where}. Either install Debian's files: "
                f"{known.install} (kgan then reads them offline, without --data-dir); or use "
                f"prepared TFDS data: data_dir=PATH (kgan-train, kgan-evaluate: --data-dir "
                f"PATH), or download=True (kgan-train: --download) where there is internet."
            ) from None
