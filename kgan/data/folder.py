"""Image folders: recursive scan, up-front validation, and the decode pipeline.

Every file is decoded once by TensorFlow's own decoder before training starts, so a
corrupt, truncated, empty or mislabelled file is reported by name and skipped, instead
of stopping an epoch halfway with "jpeg::Uncompress failed" and no file name.
TensorFlow loads on the first scan, not on import.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from typing import TYPE_CHECKING

from kgan.data.registry import Source, SourceInfo

if TYPE_CHECKING:
    import tensorflow as tf

    from kgan.data.options import DataOptions

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")


class SkippedImagesWarning(UserWarning):
    """Some files of an image folder could not be decoded and were left out."""


@dataclasses.dataclass(frozen=True)
class FolderReport:
    """What a scan of an image folder found.

    Attributes:
        root: the folder scanned.
        files: usable image paths, sorted.
        skipped: (path, reason) for each image-named file that failed to decode.
        class_names: sorted first-level subfolder names when every usable image lies in
            one (used as labels for conditional training), else None.
        labels: class index per entry of `files` when `class_names` is set, else None.
    """

    root: str
    files: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    class_names: tuple[str, ...] | None
    labels: tuple[int, ...] | None

    def summary(self, limit: int = 20) -> str:
        """One readable paragraph: counts, then up to `limit` skipped names and reasons."""
        text = f"{len(self.files)} usable images in {self.root}; {len(self.skipped)} skipped"
        if not self.skipped:
            return text + "."
        lines = [f"  {os.path.relpath(p, self.root)}: {why}" for p, why in self.skipped[:limit]]
        more = len(self.skipped) - limit
        if more > 0:
            lines.append(f"  ... and {more} more")
        return text + ":\n" + "\n".join(lines)


def scan_image_folder(root: str | os.PathLike) -> FolderReport:
    """Finds and validates every image under `root` (recursively).

    Files with an image extension (jpg, jpeg, png, bmp, gif, webp; any case) are fully
    decoded with the same decoder the pipeline uses; other files are ignored. Results
    are memoised on (path, size, mtime) so `describe` followed by `load` scans once.

    Args:
        root: folder of images, possibly nested (one subfolder per class is allowed).

    Returns:
        A `FolderReport`.

    Raises:
        FileNotFoundError: `root` is not a folder.
        ValueError: no file under `root` decodes as an image.

    Example:
        >>> report = scan_image_folder("faces/")
        >>> print(report.summary())
    """
    root = os.path.abspath(os.path.expanduser(os.fspath(root)))
    if not os.path.isdir(root):
        what = "is a file, not a folder" if os.path.exists(root) else "does not exist"
        raise FileNotFoundError(
            f"Image folder not found: {root} {what}. Pass the folder that holds the images."
        )
    paths, others = _image_paths(root)
    if not paths:
        raise ValueError(
            f"No image files under {root} (searched recursively): kgan reads files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}; found {_describe_others(others)}. Convert the "
            "images to PNG or JPEG."
        )
    entries = tuple((path, os.path.getsize(path), os.stat(path).st_mtime_ns) for path in paths)
    report = _validate(root, entries)
    if not report.files:
        raise ValueError(
            f"None of the {len(report.skipped)} image files under {root} could be decoded, "
            f"so there is nothing to train on.\n{report.summary()}"
        )
    return report


def _image_paths(root: str) -> tuple[list[str], list[str]]:
    """Image files and other files under `root`, each list sorted."""
    images, others = [], []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        for name in sorted(names):
            is_image = name.lower().endswith(IMAGE_EXTENSIONS)
            (images if is_image else others).append(os.path.join(folder, name))
    return images, others


def _describe_others(others: list[str]) -> str:
    """'no files at all' or '3 other files (.tif, .txt)'."""
    if not others:
        return "no files at all"
    kinds = sorted({os.path.splitext(p)[1].lower() or os.path.basename(p) for p in others})
    shown = ", ".join(kinds[:5]) + (", ..." if len(kinds) > 5 else "")
    return f"{len(others)} other file(s) ({shown})"


@functools.lru_cache(maxsize=8)
def _validate(root: str, entries: tuple[tuple[str, int, int], ...]) -> FolderReport:
    from kgan.data import pipeline

    empty = {path for path, size, _ in entries if size == 0}
    candidates = [path for path, _, _ in entries if path not in empty]
    decodable = pipeline.decodable_files(candidates)
    files = tuple(p for i, p in enumerate(candidates) if i in decodable)
    bad = [p for i, p in enumerate(candidates) if i not in decodable]
    skipped = [(p, "empty file (0 bytes)") for p in sorted(empty)]
    skipped += [(p, pipeline.decode_error(p)) for p in bad]
    class_names, labels = _classes(root, files)
    return FolderReport(root, files, tuple(sorted(skipped)), class_names, labels)


def _classes(
    root: str, files: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, tuple[int, ...] | None]:
    firsts = [os.path.relpath(p, root).split(os.sep) for p in files]
    if not firsts or any(len(parts) < 2 for parts in firsts):
        return None, None
    names = tuple(sorted({parts[0] for parts in firsts}))
    index = {name: i for i, name in enumerate(names)}
    return names, tuple(index[parts[0]] for parts in firsts)


class FolderSource(Source):
    """A folder of images, searched recursively; first-level subfolders are the classes."""

    kind = "folder"
    usage = "a folder of images (a path; start a relative one with ./)"

    def matches(self, name: str | os.PathLike) -> bool:
        """Paths and existing folders; plain words like "mnist" or "name/config" stay TFDS
        names unless a folder of that name exists."""
        if isinstance(name, os.PathLike) or os.path.isdir(name):
            return True
        return name.startswith(("/", "./", "../", "~"))

    def describe(self, name: str | os.PathLike, *, split: str, data_dir: str | None) -> SourceInfo:
        del data_dir  # the path says where the images are
        _check_split(split)
        report = scan_image_folder(name)
        classes = len(report.class_names) if report.class_names else None
        return SourceInfo(
            report.root, self.kind, len(report.files), classes, (None, None, None), report
        )

    def load(self, name: str | os.PathLike, options: DataOptions) -> tf.data.Dataset:
        """Pipeline over the usable images; warns with the report if any were skipped.

        Labels (when `options.conditional`) index the sorted first-level subfolder names.
        """
        _check_split(options.split)
        report = scan_image_folder(name)
        if report.skipped:
            warnings.warn(report.summary(), SkippedImagesWarning, stacklevel=3)
        if options.conditional:
            _check_classes(report)
        return _dataset(report, options)


def _check_split(split: str) -> None:
    if split != "train":
        raise ValueError(
            f"an image folder has a single split, 'train'; got split={split!r}. "
            "Keep each split in its own folder and pass that folder."
        )


def _check_classes(report: FolderReport) -> None:
    """Conditional training needs labels, which a folder gets from class subfolders."""
    layout = (f"one subfolder per class holding that class's images, e.g. "
              f"{report.root}/cat/*.jpg and {report.root}/dog/*.jpg")
    if report.class_names is None:
        loose = [os.path.basename(p) for p in report.files if os.path.dirname(p) == report.root]
        raise ValueError(
            f"conditional=True (kgan-train: --conditional) needs class labels, and an image "
            f"folder gets them from its class subfolders: {layout}. {len(loose)} image(s) "
            f"lie directly in {report.root} ({', '.join(loose[:3])}"
            f"{', ...' if len(loose) > 3 else ''}): move each into its class's subfolder, "
            "or train without conditional=True."
        )
    if len(report.class_names) < 2:
        raise ValueError(
            f"conditional=True (kgan-train: --conditional) needs two or more classes, but "
            f"{report.root} has a single class subfolder, {report.class_names[0]!r}. Use "
            f"{layout}; or train without conditional=True."
        )


def _dataset(report: FolderReport, options: DataOptions) -> tf.data.Dataset:
    import tensorflow as tf

    from kgan.data import pipeline

    def preprocess(path: tf.Tensor, *label: tf.Tensor) -> tf.Tensor | tuple:
        image = tf.cast(pipeline.decode_file(path), tf.float32) / 255.0
        image = pipeline.to_rgba(image)
        image = pipeline.preprocess_image(image, options.resolution, options.channels)
        return (image, *label) if label else image

    elements = tf.constant(report.files)
    if options.conditional:
        elements = (elements, tf.constant(report.labels, tf.int32))
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    return pipeline.finish(dataset, preprocess, options, num_examples=len(report.files))
