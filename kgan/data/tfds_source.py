"""TensorFlow Datasets by name, offline-first.

`tensorflow_datasets` is imported lazily: it is slow to import and only this source
needs it. Offline, `tfds.load(..., download=True)` retries for about 200 s before a
`ConnectionError` (tfds 4.9.10), so we check for prepared data first and fail at once
with a message that says where the data should be and how to put it there; the
download path runs only when the caller passes `download=True`.
"""

from __future__ import annotations

import dataclasses
import os

import tensorflow as tf

from kgan.data import pipeline

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
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"{name!r} is neither an existing folder nor a TFDS dataset name "
            f"({str(error).splitlines()[0]}). Pass a path to an image folder, 'digits', "
            "or a name from `tfds.list_builders()`."
        ) from None


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
    root = os.fspath(builder.data_dir_root)
    raise DatasetNotPreparedError(
        f"TFDS dataset {builder.name!r} (version {builder.version}) is not prepared: "
        f"nothing usable at {builder.data_dir}. This call does not download "
        "(download=False). To prepare it, on a machine with internet run\n"
        f"    tfds build {builder.name} --data_dir=/some/dir\n"
        f"then copy the folder /some/dir/{builder.name} to {root}/{builder.name}"
        + ("" if data_dir else " (the default data dir; or pass data_dir=...)")
        + ". Or pass download=True where the machine can reach the internet."
    )


def load_tfds(
    name: str,
    *,
    resolution: int,
    channels: int,
    batch_size: int,
    conditional: bool,
    split: str,
    data_dir: str | None,
    download: bool,
    shuffle: bool,
    seed: int,
    cache: bool | str,
    shuffle_buffer: int,
) -> tf.data.Dataset:
    """Pipeline over a TFDS image dataset; images decode in parallel after the shuffle."""
    import tensorflow_datasets as tfds

    builder = get_builder(name, data_dir)
    features = find_features(builder)
    if conditional and features.label_key is None:
        raise ValueError(
            f"conditional=True but TFDS dataset {name!r} has no ClassLabel feature "
            f"(features: {', '.join(builder.info.features.keys())})."
        )
    ensure_prepared(builder, data_dir, download)
    dataset = builder.as_dataset(
        split=split,
        shuffle_files=shuffle,
        # Images stay encoded until after the shuffle, then decode in parallel.
        decoders={features.image_key: tfds.decode.SkipDecoding()},
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )
    preprocess = _preprocessor(builder, features, resolution, channels, conditional)
    return pipeline.finish(
        dataset,
        preprocess,
        batch_size=batch_size,
        num_examples=num_examples(builder, split),
        shuffle=shuffle,
        seed=seed,
        cache=cache,
        shuffle_buffer=shuffle_buffer,
    )


def _preprocessor(builder, features: TfdsFeatures, resolution: int, channels: int, labels: bool):
    image_feature = builder.info.features[features.image_key]
    face_crop = FACE_CROPS.get(builder.name)

    def preprocess(example: dict) -> tf.Tensor | tuple:
        image = image_feature.decode_example(example[features.image_key])
        if face_crop:
            image = tf.image.crop_to_bounding_box(image, *face_crop)
        if image.shape[-1] is None:
            image = pipeline.to_rgba(tf.cast(image, tf.float32) / 255.0)
        image = pipeline.preprocess_image(image, resolution, channels)
        if not labels:
            return image
        return image, tf.cast(example[features.label_key], tf.int32)

    return preprocess
