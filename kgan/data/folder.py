"""Image folders: recursive scan, up-front validation, and the decode pipeline.

Every file is decoded once by TensorFlow's own decoder before training starts, so a
corrupt, truncated, empty or mislabelled file is reported by name and skipped, instead
of stopping an epoch halfway with "jpeg::Uncompress failed" and no file name.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import warnings

import tensorflow as tf

from kgan.data import pipeline

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
        raise FileNotFoundError(f"Image folder not found: {root} (not a directory).")
    entries = tuple(
        (path, os.path.getsize(path), os.stat(path).st_mtime_ns) for path in _image_paths(root)
    )
    if not entries:
        raise ValueError(
            f"No image files under {root}: expected files ending in "
            f"{', '.join(IMAGE_EXTENSIONS)} (searched recursively)."
        )
    report = _validate(root, entries)
    if not report.files:
        raise ValueError(
            f"None of the {len(report.skipped)} image files under {root} could be decoded, "
            f"so there is nothing to train on.\n{report.summary()}"
        )
    return report


def _image_paths(root: str) -> list[str]:
    paths = []
    for folder, subfolders, names in os.walk(root):
        subfolders.sort()
        paths += [
            os.path.join(folder, n) for n in sorted(names) if n.lower().endswith(IMAGE_EXTENSIONS)
        ]
    return paths


@functools.lru_cache(maxsize=8)
def _validate(root: str, entries: tuple[tuple[str, int, int], ...]) -> FolderReport:
    empty = {path for path, size, _ in entries if size == 0}
    candidates = [path for path, _, _ in entries if path not in empty]
    decodable = _decodable_indices(candidates)
    files = tuple(p for i, p in enumerate(candidates) if i in decodable)
    bad = [p for i, p in enumerate(candidates) if i not in decodable]
    skipped = [(p, "empty file (0 bytes)") for p in sorted(empty)]
    skipped += [(p, _decode_error(p)) for p in bad]
    class_names, labels = _classes(root, files)
    return FolderReport(root, files, tuple(sorted(skipped)), class_names, labels)


def _decodable_indices(paths: list[str]) -> set[int]:
    """Decodes all files in parallel inside tf.data; returns the indices that worked.

    `ignore_errors` drops failing elements without naming them, so each element carries
    its own index and the missing ones are the bad files.
    """
    if not paths:
        return set()
    dataset = tf.data.Dataset.from_tensor_slices((tf.range(len(paths)), paths))
    dataset = dataset.map(
        lambda i, p: (i, tf.shape(decode_file(p))[0]),
        num_parallel_calls=pipeline.AUTOTUNE,
        deterministic=False,
    ).ignore_errors()
    return {int(i) for i, _ in dataset.as_numpy_iterator()}


def _decode_error(path: str) -> str:
    """TensorFlow's own message for a file that failed in `_decodable_indices`."""
    try:
        decode_file(tf.constant(path))
    except (tf.errors.OpError, ValueError) as error:
        message = getattr(error, "message", str(error)).strip().splitlines()
        return message[0] if message else type(error).__name__
    return "failed to decode inside tf.data"


def _classes(
    root: str, files: tuple[str, ...]
) -> tuple[tuple[str, ...] | None, tuple[int, ...] | None]:
    firsts = [os.path.relpath(p, root).split(os.sep) for p in files]
    if not firsts or any(len(parts) < 2 for parts in firsts):
        return None, None
    names = tuple(sorted({parts[0] for parts in firsts}))
    index = {name: i for i, name in enumerate(names)}
    return names, tuple(index[parts[0]] for parts in firsts)


def decode_file(path: tf.Tensor) -> tf.Tensor:
    """Reads and decodes one image file to uint8 [H, W, C], C in 1..4 (first GIF frame)."""
    image = tf.io.decode_image(tf.io.read_file(path), channels=0, expand_animations=False)
    return tf.ensure_shape(image, [None, None, None])


def load_folder(
    root: str | os.PathLike,
    *,
    resolution: int,
    channels: int,
    batch_size: int,
    conditional: bool,
    shuffle: bool,
    seed: int,
    cache: bool | str,
    shuffle_buffer: int,
) -> tf.data.Dataset:
    """Pipeline over the usable images of a folder; warns with the report if any skipped.

    Labels (when `conditional`) are the first-level subfolder names, sorted.
    """
    report = scan_image_folder(root)
    if report.skipped:
        warnings.warn(report.summary(), SkippedImagesWarning, stacklevel=3)
    if conditional and report.labels is None:
        raise ValueError(
            f"conditional=True needs one subfolder per class under {report.root}, with "
            "every image inside one; some images lie directly in the root folder."
        )

    def preprocess(path: tf.Tensor, *label: tf.Tensor) -> tf.Tensor | tuple:
        image = tf.cast(decode_file(path), tf.float32) / 255.0
        image = pipeline.preprocess_image(pipeline.to_rgba(image), resolution, channels)
        return (image, *label) if label else image

    files = tf.constant(report.files)
    elements = (files, tf.constant(report.labels, tf.int32)) if conditional else files
    return pipeline.finish(
        tf.data.Dataset.from_tensor_slices(elements),
        preprocess,
        batch_size=batch_size,
        num_examples=len(report.files),
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        shuffle_buffer=shuffle_buffer,
    )
