"""Feature extractors that map images in [-1, 1] to activation vectors for `kgan.metrics`.

All extractors share one interface, `FeatureExtractor.__call__(images) -> [N, D]`,
batched so memory stays bounded:

- `InceptionFeatures`: InceptionV3 pool3 (2048-D) at 299 px, the field's standard for
  FID/KID/PR. Its weights come from a local file only; this module never downloads.
- `ClassifierFeatures`: the penultimate layer of a classifier trained on the
  dataset's own labels (`train_classifier`) or of a Keras model the user passes.
  For small domains like 8x8 digits, ImageNet features mean little; a domain
  classifier is what "FID" used on MNIST-like data in the literature.

Every extractor computes in float32 whatever the global dtype policy: under
`mixed_float16` training, features (and so FID) would otherwise be float16 during
training and float32 in `kgan-evaluate`, two scales for one generator.

Example:
    >>> extractor = InceptionFeatures("~/.keras/models/" + INCEPTION_WEIGHTS_FILE)
    >>> extractor(images).shape        # images float32 [N, H, W, 1 or 3] in [-1, 1]
    (N, 2048)
"""

from __future__ import annotations

import contextlib
import functools
import os
import zipfile
from collections.abc import Iterable, Iterator

import keras
import numpy as np
import tensorflow as tf

from kgan.evaluation.stats import FeatureStats

INCEPTION_WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5"
INCEPTION_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/"
    + INCEPTION_WEIGHTS_FILE
)
INCEPTION_SIZE = 299


class FeatureExtractor:
    """Maps images float32 [N, H, W, C] in [-1, 1] to features float32 [N, D], in batches.

    Subclasses set `self.model` (a keras.Model taking the prepared batch) and may
    override `prepare` (resizing, channel conversion, rescaling).

    Args:
        batch_size: images per forward pass.
    """

    def __init__(self, batch_size: int = 64) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.model: keras.Model | None = None

    @property
    def dim(self) -> int:
        """Length D of one feature vector."""
        return int(self.model.output_shape[-1])

    def prepare(self, images: tf.Tensor) -> tf.Tensor:
        """Converts a batch in [-1, 1] into what `self.model` expects (identity here)."""
        return images

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Features of `images` [N, H, W, C] in [-1, 1], float32 [N, D]."""
        images = np.asarray(images, np.float32)
        if images.ndim != 4 or len(images) == 0:
            raise ValueError(f"images must be a non-empty [N, H, W, C] array, got {images.shape}")
        if images.min() < -1.001 or images.max() > 1.001:
            raise ValueError(
                f"images must be in [-1, 1], got range [{images.min():.3g}, {images.max():.3g}]"
            )
        chunks = [
            keras.ops.convert_to_numpy(self._compiled(images[start : start + self.batch_size]))
            for start in range(0, len(images), self.batch_size)
        ]
        return np.concatenate(chunks).astype(np.float32)

    def _forward(self, batch):
        """Features of one batch, float32 [B, D], in keras.ops (any backend)."""
        features = self.model(self.prepare(keras.ops.convert_to_tensor(batch)), training=False)
        return keras.ops.reshape(keras.ops.cast(features, "float32"),
                                 (keras.ops.shape(batch)[0], -1))

    @functools.cached_property
    def _compiled(self):
        """`_forward`, traced once per batch shape on TensorFlow; eager on other backends."""
        if keras.backend.backend() == "tensorflow":
            return tf.function(self._forward, reduce_retracing=True)
        return self._forward


@contextlib.contextmanager
def float32_policy() -> Iterator[None]:
    """Builds layers under the float32 policy inside the block, then restores the global one."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def as_float32(model: keras.Model) -> keras.Model:
    """`model` if no layer computes in (b)float16, else a float32 clone with its weights.

    A model built (or saved) under `mixed_float16` keeps that policy per layer, so
    building it under a float32 scope is not enough: each such layer is re-created from
    its config with dtype float32 (nested models too), then the weights are copied.
    """
    if not any(_low_precision(layer) for layer in _all_layers(model)):
        return model

    def float32_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if _low_precision(layer) and "dtype" in config:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    with float32_policy():
        clone = keras.models.clone_model(model, clone_function=float32_layer, recursive=True)
    clone.set_weights(model.get_weights())
    return clone


def _low_precision(layer: keras.layers.Layer) -> bool:
    return layer.compute_dtype in ("float16", "bfloat16")


def _all_layers(model: keras.layers.Layer) -> Iterator[keras.layers.Layer]:
    yield model
    for layer in getattr(model, "layers", ()):
        yield from _all_layers(layer)


def _to_channels(images: tf.Tensor, channels: int) -> tf.Tensor:
    """Repeats grayscale to `channels` or averages RGB to one channel; else unchanged."""
    have = images.shape[-1]
    if have == channels:
        return images
    if have == 1:
        return keras.ops.repeat(images, channels, axis=-1)
    if channels == 1:
        return keras.ops.mean(images, axis=-1, keepdims=True)
    raise ValueError(f"cannot convert {have}-channel images to {channels} channels")


class InceptionFeatures(FeatureExtractor):
    """InceptionV3 pool3 activations (2048-D) from `keras.applications`.

    Images are resized to 299x299 (bilinear) and grayscale is repeated to RGB; [-1, 1]
    is already InceptionV3's input range. The weights are the Keras ImageNet notop
    weights; values are therefore comparable between kgan runs but not digit-for-digit
    with papers that use the 2015 TF-slim FID graph (TTUR, pytorch-fid).

    Args:
        weights_path: the local `inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5`
            (or a directory holding it); None looks in Keras's cache, `~/.keras/models/`.
        batch_size: images per forward pass.

    Raises:
        FileNotFoundError: when the weights file is absent, naming the file to provide.
    """

    def __init__(self, weights_path: str | None = None, batch_size: int = 64) -> None:
        super().__init__(batch_size)
        path = resolve_inception_weights(weights_path)
        with float32_policy():
            self.model = keras.applications.InceptionV3(
                include_top=False, weights=None, pooling="avg",
                input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3),
            )
        try:
            self.model.load_weights(path)
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            reason = " ".join(str(error).split())[:200]
            raise ValueError(f"cannot read InceptionV3 weights from {path} ({reason}); it "
                             f"should be Keras's {INCEPTION_WEIGHTS_FILE}") from None

    def prepare(self, images: tf.Tensor) -> tf.Tensor:
        images = keras.ops.image.resize(images, (INCEPTION_SIZE, INCEPTION_SIZE), "bilinear")
        return _to_channels(images, 3)


def resolve_inception_weights(weights_path: str | None) -> str:
    """Returns the path of the local InceptionV3 notop weights, or raises naming the file.

    Never downloads: training hosts are often offline, and a silent multi-MB download
    inside an evaluation would hide which weights a number was computed with.
    """
    if weights_path is None:
        cache = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
        weights_path = os.path.join(cache, "models", INCEPTION_WEIGHTS_FILE)
    path = os.path.expanduser(str(weights_path))
    if os.path.isdir(path):
        path = os.path.join(path, INCEPTION_WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"InceptionV3 weights not found at {path}: provide the file "
            f"{INCEPTION_WEIGHTS_FILE} (from {INCEPTION_WEIGHTS_URL}) and pass its path, "
            "or put it in Keras's cache (~/.keras/models/)"
        )
    return path


class ClassifierFeatures(FeatureExtractor):
    """Activations of one layer (default: the penultimate) of a Keras classifier.

    Images are resized to the model's input size and converted to its channel count,
    so a classifier trained at one resolution scores generators at another. A model
    with float16 layers (built under `mixed_float16`) is cloned to float32 (`as_float32`).

    Args:
        model: a built functional or Sequential keras.Model that takes images in [-1, 1].
        layer: name of the layer whose output is the feature; None takes the layer
            before the last (the penultimate representation, not the logits).
        batch_size: images per forward pass.
    """

    def __init__(self, model: keras.Model, layer: str | None = None, batch_size: int = 256):
        super().__init__(batch_size)
        if type(model).__name__ == "GAN":
            raise ValueError("this is a kgan.GAN, not an image classifier: pass a classifier "
                             "(the metrics_classifier.keras a run saves, or a Keras model that "
                             "takes images)")
        try:
            inputs = model.inputs if isinstance(model, keras.Model) else None
        except AttributeError:  # a subclassed model: no symbolic inputs
            inputs = None
        if not inputs:
            raise ValueError("model must be a built functional or Sequential keras.Model")
        if len(inputs) != 1 or len(inputs[0].shape) != 4:
            shapes = ", ".join(str(tuple(i.shape[1:])) for i in inputs)
            raise ValueError(f"the classifier must take one batch of images [H, W, C]; its "
                             f"input is {shapes}")
        model = as_float32(model)
        if layer is None:
            if len(model.layers) < 2:
                raise ValueError("model has no penultimate layer; pass layer=")
            target = model.layers[-2]
        else:
            names = [lyr.name for lyr in model.layers]
            if layer not in names:
                raise ValueError(f"model has no layer {layer!r}; layers: {', '.join(names)}")
            target = model.get_layer(layer)
        with float32_policy():
            self.model = keras.Model(model.inputs, target.output)
        self.image_shape = tuple(model.inputs[0].shape[1:])

    @classmethod
    def from_file(cls, path: str, layer: str | None = None, batch_size: int = 256):
        """Loads a saved `.keras` classifier, with a one-line error for a bad path."""
        if not os.path.isfile(path):
            raise FileNotFoundError(f"classifier model not found: {path}")
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is not a readable .keras classifier: a .keras file is "
                             "a zip archive, and this one is damaged or truncated")
        with float32_policy():
            model = keras.models.load_model(path, compile=False)
        try:
            return cls(model, layer, batch_size)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None

    def prepare(self, images: tf.Tensor) -> tf.Tensor:
        height, width, channels = self.image_shape
        if images.shape[1:3] != (height, width):
            images = keras.ops.image.resize(images, (height, width), "bilinear")
        return _to_channels(images, channels)


# Labelled images kgan-train's domain classifier trains on (all of a smaller data set):
# enough for a stable feature space, about 30 s on 2 CPU cores at 32 px.
CLASSIFIER_IMAGES = 10_000


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int,
    epochs: int = 10,
    batch_size: int = 64,
    width: int = 32,
    seed: int = 0,
) -> keras.Model:
    """Trains a small CNN classifier, the usual "domain FID" feature network.

    Two stride-2 conv blocks, then a `features` dense layer
    (the penultimate layer `ClassifierFeatures` reads) before the logits. Built and
    trained in float32 whatever the global policy, like every extractor.

    Args:
        images: float32 [N, H, W, C] in [-1, 1].
        labels: integer class ids [N] in [0, num_classes).
        num_classes: number of classes.
        epochs: training epochs.
        batch_size: training batch size.
        width: filters of the first conv layer (the second has twice as many).
        seed: seed for initialisation and shuffling.

    Returns:
        The trained keras.Model (save it with `model.save("x.keras")` to reuse).
    """
    images, labels = np.asarray(images, np.float32), np.asarray(labels).astype(np.int64)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(f"need images [N, H, W, C] and labels [N], got {images.shape}, "
                         f"{labels.shape}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must be in [0, {num_classes}), got [{labels.min()}, "
                         f"{labels.max()}]")
    keras.utils.set_random_seed(seed)
    with float32_policy():
        model = _classifier(images.shape[1:], num_classes, width)
        model.compile(
            optimizer=keras.optimizers.Adam(1e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        model.fit(images, labels, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return model


def _classifier(image_shape: tuple[int, ...], num_classes: int, width: int) -> keras.Model:
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input(image_shape),
            layers.Conv2D(width, 3, padding="same", activation="relu"),
            layers.Conv2D(width, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(2 * width, activation="relu", name="features"),
            layers.Dense(num_classes, dtype="float32", name="logits"),
        ],
        name="domain_classifier",
    )


def image_batches(source, batch_size: int = 256) -> Iterator[np.ndarray]:
    """Yields float32 image batches [B, H, W, C] from an array, a tf.data.Dataset or an iterable.

    Datasets may yield `images` or `(images, labels)`; the labels are dropped, so the
    training dataset itself can be the real set of an evaluation.
    """
    if isinstance(source, np.ndarray):
        for start in range(0, len(source), batch_size):
            yield source[start : start + batch_size].astype(np.float32)
        return
    if isinstance(source, tf.data.Dataset):
        source = source.as_numpy_iterator()
    for batch in source:
        images = batch[0] if isinstance(batch, tuple | list) else batch
        yield np.asarray(images, np.float32)


def collect_stats(
    batches: Iterable[np.ndarray],
    extractor: FeatureExtractor,
    limit: int,
    capacity: int | None = 10_000,
    seed: int = 0,
) -> FeatureStats:
    """Streams image batches through `extractor` into `FeatureStats`, up to `limit` images.

    Only the statistics are kept (running moments and a bounded reservoir), never all
    images or all features, so evaluating 50k samples costs the memory of one batch.

    Raises:
        ValueError: when the batches hold no image at all.
    """
    stats = FeatureStats(capacity=capacity, seed=seed)
    for images in batches:
        remaining = limit - stats.count
        if remaining <= 0:
            break
        stats.update(extractor(images[:remaining]))
    if stats.count == 0:
        raise ValueError("no images to compute features from (empty dataset?)")
    return stats
