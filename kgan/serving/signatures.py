"""The serving graph of an exported generator: float32 rebuild, signatures, request checks.

TF Serving runs whatever graph we hand it, so everything it relies on is decided here:
the generator is rebuilt in float32 (rule 6), signatures are traced with XLA off, latents
come from `kgan.sampling` (stateless), and bad requests fail inside the graph with a
message that names the problem instead of returning garbage images.

The same checks exist in NumPy (`check_latents`, `check_seeds`, `check_labels`) so Python
callers and the serving client fail before a round trip, with the same words.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from kgan.sampling import latents_from_seeds

#: Largest batch one request may carry. Equals `max_batch_size` in
#: serving/batching_parameters.txt, so server-side batching never builds a batch the graph
#: refuses; clients split bigger requests.
MAX_BATCH_SIZE = 64

_HALF_DTYPES = ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class GeneratorSpec:
    """What a generator consumes: latent size, classes, and where z / label go in its inputs."""

    latent_dim: int
    num_classes: int | None
    label_first: bool = False

    @property
    def conditional(self) -> bool:
        return self.num_classes is not None

    def model_inputs(self, z, label=None):
        """Arranges z (and label) the way the generator's call expects them."""
        if label is None:
            return z
        return [label, z] if self.label_first else [z, label]


def float32_generator(generator: keras.Model) -> keras.Model:
    """Rebuilds `generator` under the float32 policy and copies its weights (rule 6).

    A model trained under `mixed_float16` stores float16 policies in its layer configs,
    so switching the global policy alone is not enough: the config is rewritten too.
    """
    try:
        serialized = keras.saving.serialize_keras_object(generator)
    except NotImplementedError as error:
        raise ValueError(
            "export needs a generator that Keras can rebuild from its config (functional, "
            f"Sequential, or a registered class with get_config): {error}"
        ) from error
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        clone = keras.saving.deserialize_keras_object(_float32_config(serialized))
    finally:
        keras.config.set_dtype_policy(previous)
    clone.set_weights(generator.get_weights())
    return clone


def _float32_config(node):
    """Returns a copy of a serialized config with every half-precision dtype made float32."""
    if isinstance(node, dict):
        if node.get("class_name") == "DTypePolicy" and _is_half(node["config"].get("name")):
            return "float32"
        return {
            key: "float32" if key == "dtype" and _is_half(value) else _float32_config(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_float32_config(item) for item in node]
    return node


def _is_half(value) -> bool:
    return isinstance(value, str) and value in _HALF_DTYPES


def to_uint8(images: tf.Tensor) -> tf.Tensor:
    """Maps generator output in [-1, 1] to uint8 pixels, rounding and clipping.

    `kgan.images.to_uint8_numpy` is its NumPy twin.
    """
    pixels = tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5)
    return tf.cast(tf.clip_by_value(pixels, 0.0, 255.0), tf.uint8)


def _batch_checks(batch: tf.Tensor, what: str) -> list:
    return [
        tf.debugging.assert_positive(
            batch, message=f"kgan: empty batch: send at least one {what}"),
        tf.debugging.assert_less_equal(
            batch, tf.constant(MAX_BATCH_SIZE, batch.dtype),
            message=f"kgan: batch too large: at most {MAX_BATCH_SIZE} {what}s per request "
                    "(MAX_BATCH_SIZE = max_batch_size in batching_parameters.txt); split it"),
    ]


def _label_checks(label: tf.Tensor, batch: tf.Tensor, num_classes: int) -> list:
    return [
        tf.debugging.assert_equal(
            tf.shape(label)[0], batch, message="kgan: label needs one entry per row"),
        tf.debugging.assert_non_negative(label, message="kgan: label must be >= 0"),
        tf.debugging.assert_less(
            label, tf.constant(num_classes, tf.int32),
            message=f"kgan: label must be < num_classes = {num_classes}"),
    ]


class _Graph:
    """Builds the tf.functions behind the signatures around one float32 generator."""

    def __init__(self, generator: keras.Model, spec: GeneratorSpec):
        self.generator = generator
        self.spec = spec

    def images(self, z: tf.Tensor, label: tf.Tensor | None) -> tf.Tensor:
        batch = tf.shape(z)[0]
        checks = _batch_checks(batch, "latent") + [
            tf.debugging.assert_equal(
                tf.shape(z)[1], self.spec.latent_dim,
                message=f"kgan: z must have shape [N, {self.spec.latent_dim}]"),
            tf.debugging.assert_all_finite(z, "kgan: z contains NaN or Inf"),
        ]
        if label is not None:
            checks += _label_checks(label, batch, self.spec.num_classes)
        # Both inputs wait for every check: otherwise e.g. the label embedding's gather
        # can fail first with an opaque "indices[0] = 7 is not in [0, 3)".
        with tf.control_dependencies(checks):
            z = tf.identity(z)
            label = None if label is None else tf.identity(label)
        return to_uint8(self.generator(self.spec.model_inputs(z, label), training=False))

    def generate(self, seed: tf.Tensor, label: tf.Tensor | None) -> dict:
        with tf.control_dependencies(_batch_checks(tf.shape(seed)[0], "seed")):
            z = latents_from_seeds(tf.identity(seed), self.spec.latent_dim)
        images = self.images(z, label)
        png = tf.map_fn(tf.io.encode_png, images,
                        fn_output_signature=tf.TensorSpec([], tf.string))
        return {"images": images, "png_bytes": png, "z": z}

    def functions(self) -> dict:
        """Returns {signature name: tf.function}; argument names become the input keys."""
        z_spec = tf.TensorSpec([None, self.spec.latent_dim], tf.float32, name="z")
        seed_spec = tf.TensorSpec([None], tf.int64, name="seed")
        label_spec = tf.TensorSpec([None], tf.int32, name="label")
        function = _untraced_function
        if self.spec.conditional:
            serve = function(lambda z, label: {"images": self.images(z, label)},
                             [z_spec, label_spec])
            generate = function(self.generate, [seed_spec, label_spec])
        else:
            serve = function(lambda z: {"images": self.images(z, None)}, [z_spec])
            generate = function(lambda seed: self.generate(seed, None), [seed_spec])
        return {"serving_default": serve, "generate": generate}


def _untraced_function(fn, input_signature):
    # XLA off: TF Serving does not compile with XLA, and a jit_compile=True graph would
    # carry _XlaMustCompile attributes that the server cannot honour on CPU builds.
    return tf.function(fn, input_signature=input_signature, jit_compile=False,
                       autograph=False)


def build_module(generator: keras.Model, spec: GeneratorSpec) -> tuple[tf.Module, dict]:
    """Returns (module to save, signatures) for a float32 generator.

    The module tracks the tf.Variables under the Keras variables rather than the model,
    so the SavedModel holds only variables and the signature functions. Tracking the Keras
    wrappers instead saves a second, never-restored copy of each variable: TF2 loading
    still works, but a TF1 Session (TF Serving's path) fails with "Could not find
    variable".
    """
    module = tf.Module(name="kgan_generator")
    module.generator_variables = [variable.value for variable in generator.variables]
    signatures = _Graph(generator, spec).functions()
    module.serve = signatures["serving_default"]
    module.generate = signatures["generate"]
    return module, signatures


def check_latents(z, latent_dim: int) -> np.ndarray:
    """Validates a latent batch the way the `serving_default` signature does, in NumPy.

    Raises:
        ValueError: wrong dtype (the signature takes float32 only), shape, empty or
            oversized batch, or non-finite values.
    """
    z = np.asarray(z)
    if z.dtype != np.float32:
        raise ValueError(f"z must be float32, got {z.dtype}; the signature takes float32 "
                         "only, convert with z.astype(np.float32)")
    if z.ndim != 2 or z.shape[1] != latent_dim:
        raise ValueError(f"z must have shape [N, {latent_dim}] (latent_dim = {latent_dim}), "
                         f"got {list(z.shape)}")
    _check_batch_size(len(z), "latent")
    bad = np.flatnonzero(~np.isfinite(z).all(axis=1))
    if bad.size:
        raise ValueError(f"z contains NaN or Inf in rows {bad[:10].tolist()}")
    return z


def check_seeds(seeds: Sequence[int] | np.ndarray) -> np.ndarray:
    """Validates seeds for the `generate` signature; returns them as int64 [N]."""
    seeds = np.asarray(seeds)
    if seeds.ndim != 1 or not np.issubdtype(seeds.dtype, np.integer):
        raise ValueError(f"seeds must be a 1-D list of integers, got dtype {seeds.dtype} "
                         f"and shape {list(seeds.shape)}")
    _check_batch_size(len(seeds), "seed")
    return seeds.astype(np.int64)


def check_labels(labels, batch: int, num_classes: int | None) -> np.ndarray | None:
    """Validates class labels (int32 [N] in [0, num_classes)), or their absence."""
    if num_classes is None:
        if labels is not None:
            raise ValueError("this generator is unconditional; do not pass labels")
        return None
    if labels is None:
        raise ValueError(f"this generator is conditional: pass labels in [0, {num_classes})")
    labels = np.asarray(labels)
    if labels.shape != (batch,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {batch} integers, got shape {list(labels.shape)}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got {labels.tolist()}")
    return labels.astype(np.int32)


def _check_batch_size(n: int, what: str) -> None:
    if n == 0:
        raise ValueError(f"empty batch: send at least one {what}")
    if n > MAX_BATCH_SIZE:
        raise ValueError(f"batch of {n} {what}s is above MAX_BATCH_SIZE = {MAX_BATCH_SIZE} "
                         "(max_batch_size in serving/batching_parameters.txt); split it")
