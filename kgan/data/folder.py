"""Image folders: recursive scan, up-front validation, and the decode pipeline.

Every file is decoded once by TensorFlow's own decoder before training starts, so a
corrupt, truncated, empty or mislabelled file is reported by name and skipped, instead
of stopping an epoch halfway with "jpeg::Uncompress failed" and no file name.
TensorFlow loads on the first scan, not on import.

Photos are read as viewers show them: the EXIF orientation (phone cameras store
portraits as rotated landscapes) is applied, and a JPEG much larger than the training
resolution is decoded at 1/2, 1/4 or 1/8 scale by libjpeg's DCT scaling (still at least
twice the resolution before the antialiased resize), which makes a 12-megapixel photo
several times cheaper per step. Hidden files and folders (".thumbnails",
".ipynb_checkpoints") are not data; symbolic links are followed.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings
from typing import TYPE_CHECKING

from kgan.data import scans
from kgan.data.registry import Source, SourceInfo

if TYPE_CHECKING:
    import tensorflow as tf

    from kgan.data.options import DataOptions

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
# Image formats TensorFlow cannot decode: named in the report instead of dropped silently.
UNSUPPORTED_EXTENSIONS = (".tif", ".tiff", ".heic", ".heif", ".avif", ".jxl", ".psd",
                          ".dng", ".cr2", ".nef", ".arw", ".raw", ".ico", ".svg")
# EXIF orientation tag; values 1-8 (1: as stored).
_ORIENTATION_TAG = 0x0112


class SkippedImagesWarning(UserWarning):
    """Some files of an image folder could not be decoded and were left out."""


class UpscaledImagesWarning(UserWarning):
    """Most images of a folder are smaller than the training resolution."""


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
        orientations: EXIF orientation (1-8) per entry of `files`.
        jpeg_sides: the shorter side of each entry of `files` that is a JPEG, else 0
            (for DCT-scaled decoding).
        sides: the shorter side of each entry of `files` (0 where the header did not
            say), to warn when a resolution upscales most of them.
        ignored: files in image formats TensorFlow cannot decode (.tif, .heic, ...).
    """

    root: str
    files: tuple[str, ...]
    skipped: tuple[tuple[str, str], ...]
    class_names: tuple[str, ...] | None
    labels: tuple[int, ...] | None
    orientations: tuple[int, ...] = ()
    jpeg_sides: tuple[int, ...] = ()
    sides: tuple[int, ...] = ()
    ignored: tuple[str, ...] = ()

    def summary(self, limit: int = 20) -> str:
        """One readable paragraph: counts, then up to `limit` skipped names and reasons."""
        text = f"{len(self.files)} usable images in {self.root}; {len(self.skipped)} skipped"
        if self.ignored:
            text += (f"; {len(self.ignored)} ignored in formats kgan cannot read "
                     f"({_describe_others(list(self.ignored))}): convert them to PNG or JPEG")
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
    decoded with the same decoder the pipeline uses; other files are ignored (those in
    image formats TensorFlow cannot read are named in the report), and so are hidden
    files and folders. Symbolic links are followed; a broken one is reported as
    skipped. Results are kept per (path, size, mtime), in the process and on disk
    (`kgan.data.scans`), so later scans decode only new or changed files.

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
        fix = ("Convert the images to PNG or JPEG." if others else
               "Pass the folder that holds the images (or copy them into this one).")
        raise ValueError(
            f"No image files under {root} (searched recursively): kgan reads files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)}; found {_describe_others(others)}. {fix}"
        )
    entries, unreadable = _entries(paths)
    report = _validate(root, entries)
    ignored = tuple(p for p in others if p.lower().endswith(UNSUPPORTED_EXTENSIONS))
    report = dataclasses.replace(report, skipped=tuple(sorted(report.skipped + unreadable)),
                                 ignored=ignored)
    if not report.files:
        raise ValueError(
            f"None of the {len(report.skipped)} image files under {root} could be decoded, "
            f"so there is nothing to train on.\n{report.summary()}"
        )
    return report


def _image_paths(root: str) -> tuple[list[str], list[str]]:
    """Image files and other files under `root`, each list sorted; hidden names are
    left out, and linked folders are followed once (a link loop ends there). A link to
    `root` or a folder above it is not followed: it would pull in everything beside the
    data (other runs' sample grids among it)."""
    images, others, seen = [], [], set()
    top = os.path.realpath(root)
    for folder, subfolders, names in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(name for name in subfolders if not name.startswith(".")
                               and not _holds(os.path.realpath(os.path.join(folder, name)), top))
        for name in sorted(names):
            if name.startswith("."):
                continue
            is_image = name.lower().endswith(IMAGE_EXTENSIONS)
            (images if is_image else others).append(os.path.join(folder, name))
    return images, others


def _holds(folder: str, path: str) -> bool:
    """Whether `path` is `folder` or lies inside it (real paths)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _entries(paths: list[str]) -> tuple[tuple[tuple[str, int, int], ...],
                                        tuple[tuple[str, str], ...]]:
    """(path, size, mtime) of each readable file, and (path, reason) for the others."""
    entries, unreadable = [], []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError as error:
            broken = os.path.islink(path) and not os.path.exists(path)
            why = (f"broken symbolic link to {os.readlink(path)}" if broken
                   else error.strerror or str(error))
            unreadable.append((path, why))
            continue
        entries.append((path, status.st_size, status.st_mtime_ns))
    return tuple(entries), tuple(unreadable)


def _describe_others(others: list[str]) -> str:
    """'no files at all' or '3 other files (.tif, .txt)'."""
    if not others:
        return "no files at all"
    kinds = sorted({os.path.splitext(p)[1].lower() or os.path.basename(p) for p in others})
    shown = ", ".join(kinds[:5]) + (", ..." if len(kinds) > 5 else "")
    return f"{len(others)} other file(s) ({shown})"


@functools.lru_cache(maxsize=8)
def _validate(root: str, entries: tuple[tuple[str, int, int], ...]) -> FolderReport:
    """Checks the files that earlier scans (`kgan.data.scans`) have not seen as they are."""
    known = scans.load(root)
    results = {path: known[path][2:] for path, size, mtime in entries
               if known.get(path, [None, None])[:2] == [size, mtime]}
    fresh = [entry for entry in entries if entry[0] not in results]
    if fresh:
        results.update(_check(fresh))
        scans.save(root, {path: [size, mtime, *results[path]] for path, size, mtime in entries})
    files = tuple(path for path, _, _ in entries if results[path][0] is None)
    skipped = tuple(sorted((path, results[path][0]) for path, _, _ in entries
                           if results[path][0] is not None))
    class_names, labels = _classes(root, files)
    return FolderReport(root, files, skipped, class_names, labels,
                        orientations=tuple(results[p][1] for p in files),
                        jpeg_sides=tuple(results[p][2] for p in files),
                        sides=tuple(results[p][3] for p in files))


def _check(entries: list[tuple[str, int, int]]) -> dict[str, list]:
    """{path: [reason to skip or None, EXIF orientation, JPEG shorter side or 0,
    shorter side]}."""
    from kgan.data import pipeline

    results = {path: ["empty file (0 bytes)", 1, 0, 0] for path, size, _ in entries
               if size == 0}
    headers = {path: _header(path) for path, _, _ in entries if path not in results}
    results.update({path: [why, 1, 0, 0] for path, (*_, why) in headers.items() if why})
    candidates = [path for path in headers if path not in results]
    decodable = pipeline.decodable_files(candidates)
    for index, path in enumerate(candidates):
        orientation, jpeg_side, side, _ = headers[path]
        why = None if index in decodable else pipeline.decode_error(path)
        results[path] = [why, orientation, jpeg_side, side]
    return results


def _header(path: str) -> tuple[int, int, int, str | None]:
    """From the file's header (Pillow reads no pixels): its EXIF orientation, its
    shorter side if it is a JPEG (else 0), its shorter side, and a reason to skip it, if
    any. A header Pillow cannot read is left to TensorFlow's decode check."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "BMP" and image.mode in ("1", "P"):
                return 1, 0, 0, ("palette or 1-bit BMP, which TensorFlow decodes as grey "
                                 "indices: convert it to PNG")
            orientation = image.getexif().get(_ORIENTATION_TAG, 1)
            side = min(image.size)
            jpeg_side = side if image.format == "JPEG" else 0
    except Exception:  # noqa: BLE001 (any unreadable header: TensorFlow names the reason)
        return 1, 0, 0, None
    return (orientation if orientation in range(1, 9) else 1), jpeg_side, side, None


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
    preset = "folder64"  # kgan-train's preset for a folder (kgan.training.presets)

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
        if report.skipped or report.ignored:
            warnings.warn(report.summary(), SkippedImagesWarning, stacklevel=3)
        small = sum(0 < side < options.resolution for side in report.sides)
        if small * 2 > len(report.files):  # most images: the samples will look soft
            warnings.warn(
                f"{small} of the {len(report.files)} images in {report.root} are smaller "
                f"than {options.resolution} px on their shorter side and are upscaled: "
                "train at a lower resolution, or use larger images.",
                UpscaledImagesWarning, stacklevel=3)
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

    def preprocess(path, orientation, scale, *label) -> tf.Tensor | tuple:
        image = pipeline.decode_file(path, scale)
        image = pipeline.center_crop_square(pipeline.orient(image, orientation))
        image = pipeline.to_rgba(tf.cast(image, tf.float32) / 255.0)
        image = pipeline.preprocess_image(image, options.resolution, options.channels)
        return (image, *label) if label else image

    scales = [pipeline.jpeg_scale(side, options.resolution) for side in report.jpeg_sides]
    elements = (tf.constant(report.files), tf.constant(report.orientations, tf.int32),
                tf.constant(scales, tf.int32))
    if options.conditional:
        elements = (*elements, tf.constant(report.labels, tf.int32))
    dataset = tf.data.Dataset.from_tensor_slices(elements)
    return pipeline.finish(dataset, preprocess, options, num_examples=len(report.files))
