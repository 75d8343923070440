"""TensorFlow Datasets by name, offline-first.

`tensorflow_datasets` is imported lazily: it is slow to import and only this source
needs it. Offline, `tfds.load(..., download=True)` retries for about 200 s before a
`ConnectionError` (tfds 4.9.10), so we check for prepared data first and fail at once
with a message that says where the data should be and how to put it there; the
download path runs only when the caller passes `download=True`.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from typing import TYPE_CHECKING

from kgan.data import registry
from kgan.data.registry import Source, SourceInfo

if TYPE_CHECKING:
    import tensorflow as tf

    from kgan.data.options import DataOptions

KIND = "tfds"
CATALOG = "https://www.tensorflow.org/datasets/catalog/overview"

# Face crops (top, left, height, width) applied before the resize. celeb_a: the 128x128
# window centred on (row 121, col 89) of the aligned 218x178 images, as in ProGAN's and
# StyleGAN's `dataset_tool.py create_celeba`; it keeps the face and drops the background.
FACE_CROPS = {"celeb_a": (57, 25, 128, 128)}


class DatasetNotPreparedError(FileNotFoundError):
    """A TFDS dataset is not on disk and downloading was not allowed."""


@dataclasses.dataclass(frozen=True)
class TfdsFeatures:
    """The keys of a TFDS builder that the pipeline reads."""

    image_key: str
    label_key: str | None
    num_classes: int | None
    image_shape: tuple[int | None, ...]


def get_builder(name: str, data_dir: str | None):
    """Returns the TFDS builder for `name`, or a ValueError for unknown names."""
    import tensorflow_datasets as tfds

    try:
        return tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise ValueError(_unknown_name(name, tfds.list_builders())) from None
    except ValueError as error:  # not even TFDS's name grammar ("name:1.0.0", "a/b")
        if "builder name" not in str(error).lower():
            raise
        raise ValueError(_unknown_name(name, tfds.list_builders())) from None


def _unknown_name(name: str, known: list[str]) -> str:
    """Says what was tried, suggests close TFDS names, and how the other sources are named."""
    close = difflib.get_close_matches(name.split("/")[0].split(":")[0], known, n=3)
    guess = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    folder = os.path.abspath(os.path.expanduser(name))
    others = [registry.get_source(kind).usage for kind in registry.names() if kind != KIND]
    return (
        f"{name!r} is neither an existing folder nor a TFDS dataset name ({folder} does "
        f"not exist).{guess} Pass a TFDS name from {CATALOG}, or one of: "
        f"{'; '.join(others)} (a source registered in your own module: --import MODULE)."
    )


def find_features(builder) -> TfdsFeatures:
    """Finds the image and class-label keys from the builder's top-level features.

    Keys named "image" / "label" win when several features qualify; otherwise the first
    Image / ClassLabel feature in declaration order.
    """
    import tensorflow_datasets as tfds

    features = builder.info.features
    images = [k for k, f in features.items() if type(f) is tfds.features.Image]
    labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
    if not images:
        raise ValueError(
            f"TFDS dataset {builder.name!r} has no top-level Image feature "
            f"(features: {', '.join(features.keys())}); kgan trains on image datasets."
        )
    image_key = "image" if "image" in images else images[0]
    label_key = ("label" if "label" in labels else labels[0]) if labels else None
    num_classes = features[label_key].num_classes if label_key else None
    shape = tuple(features[image_key].shape)
    return TfdsFeatures(image_key, label_key, num_classes, shape)


def num_examples(builder, split: str) -> int | None:
    """Examples in `split` when the data is prepared (TFDS slicing syntax allowed)."""
    if not builder.is_prepared():
        return None
    return int(builder.info.splits[split].num_examples)


def ensure_prepared(builder, data_dir: str | None, download: bool) -> None:
    """Fails fast when the data is missing, or downloads it when allowed."""
    if builder.is_prepared():
        return
    if download:
        builder.download_and_prepare()
        return
    raise DatasetNotPreparedError(_not_prepared(builder, data_dir))


def _not_prepared(builder, data_dir: str | None) -> str:
    """The three ways out, each in its Python and its command-line spelling."""
    name, root = builder.name, os.fspath(builder.data_dir_root)
    where = "the data dir you gave" if data_dir else "TFDS's default data dir"
    return (
        f"TFDS dataset {name!r} (version {builder.version}) is not prepared: nothing usable "
        f"at {builder.data_dir} ({where}), and downloading is off. Either\n"
        f"  - let TFDS download it (needs internet): pass download=True "
        f"(kgan-train: --download);\n"
        f"  - or point at a data dir that already holds {name}: pass data_dir=PATH "
        f"(kgan-train, kgan-evaluate: --data-dir PATH);\n"
        f"  - or prepare it on a machine with internet: tfds build {name} "
        f"--data_dir=/some/dir, then copy /some/dir/{name} to {root}/{name} on this machine"
        + ("" if data_dir else " (or anywhere, then pass that folder as data_dir / --data-dir)")
        + "."
    )


class TfdsSource(Source):
    """Any TFDS image dataset by name; tried last, so it takes every name nobody else does.

    celeb_a gets the ProGAN/StyleGAN 128x128 face crop before the resize.
    """

    kind = KIND
    usage = f"a TensorFlow Datasets name such as mnist, cifar10, celeb_a ({CATALOG})"

    def matches(self, name: str | os.PathLike) -> bool:
        return isinstance(name, str)

    def describe(self, name: str | os.PathLike, *, split: str, data_dir: str | None) -> SourceInfo:
        builder = get_builder(name, data_dir)
        features = find_features(builder)
        count = num_examples(builder, split)
        return SourceInfo(name, self.kind, count, features.num_classes, features.image_shape)

    def load(self, name: str | os.PathLike, options: DataOptions) -> tf.data.Dataset:
        """Pipeline over the split; images stay encoded until after the shuffle."""
        import tensorflow_datasets as tfds

        from kgan.data import pipeline

        builder = get_builder(name, options.data_dir)
        features = find_features(builder)
        if options.conditional and features.label_key is None:
            raise ValueError(
                f"conditional=True (kgan-train: --conditional) needs class labels, but TFDS "
                f"dataset {name!r} has no ClassLabel feature (features: "
                f"{', '.join(builder.info.features.keys())}). Train it without "
                "conditional=True, or pick a labelled dataset."
            )
        ensure_prepared(builder, options.data_dir, options.download)
        dataset = builder.as_dataset(
            split=options.split,
            shuffle_files=options.shuffle,
            decoders={features.image_key: tfds.decode.SkipDecoding()},
            read_config=tfds.ReadConfig(shuffle_seed=options.seed,
                                        shuffle_reshuffle_each_iteration=options.reshuffle),
        )
        preprocess = _preprocessor(builder, features, options)
        count = num_examples(builder, options.split)
        return pipeline.finish(dataset, preprocess, options, num_examples=count)


def _preprocessor(builder, features: TfdsFeatures, options: DataOptions):
    import tensorflow as tf

    from kgan.data import pipeline

    image_feature = builder.info.features[features.image_key]
    face_crop = FACE_CROPS.get(builder.name)

    def preprocess(example: dict) -> tf.Tensor | tuple:
        image = image_feature.decode_example(example[features.image_key])
        if face_crop:
            image = tf.image.crop_to_bounding_box(image, *face_crop)
        if image.shape[-1] is None:
            image = pipeline.to_rgba(tf.cast(image, tf.float32) / 255.0)
        image = pipeline.preprocess_image(image, options.resolution, options.channels)
        if not options.conditional:
            return image
        return image, tf.cast(example[features.label_key], tf.int32)

    return preprocess
