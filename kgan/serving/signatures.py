"""The serving graph of an exported generator: float32 rebuild, signatures, request checks.

TF Serving runs whatever graph we hand it, so everything it relies on is decided here:
the generator is rebuilt in float32 (rule 6), signatures are traced with XLA off, latents
come from `kgan.gan.sampling` (stateless), and bad requests fail inside the graph with a
message that names the problem instead of returning garbage images.

`generate_png` takes `generate`'s inputs and answers its `png_bytes` only: TF Serving's
REST API sends every output of a signature, and JSON pixel arrays are many times the
PNGs' size (kgan-demo and `client.py generate` ask it).

Style-based generators (a mapping network and `w_avg`, e.g. stylegan2) get three more
signatures, the same as `generate` / `serving_default` / `generate_png` plus a batched
`truncation` float32 [N] (psi per row): `generate_truncated`, `latents_truncated` and
`generate_truncated_png`. The contract signatures
stay psi = 1, so a client picks a truncation per request without a re-export. Their noise
inputs are stateless: seeded by each row's seed (`noise_seeds`, as `GAN.generate` does)
where there is one, else by a hash of its z (the generator's default); so the same
(seed, psi) gives the same image in any batch, and psi = 1 gives `generate`'s image.

The same checks exist in NumPy (`kgan.serving.limits`: `check_latents`, `check_seeds`,
`check_labels`) so Python callers and the serving client fail before a round trip, with
the same words.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import keras
import tensorflow as tf

from kgan.gan.sampling import is_style_based, latents_from_seeds
from kgan.serving.limits import (
    MAX_BATCH_SIZE,
    NUM_CLASSES_SIGNATURE,
    PNG_SIGNATURES,
    TRUNCATED_SIGNATURES,
    TRUNCATION_INFO,
    TRUNCATION_RANGE,
    check_labels,
    check_latents,
    check_seeds,
)

__all__ = ["MAX_BATCH_SIZE", "TRUNCATION_INFO", "GeneratorSpec", "build_module", "check_labels",
           "check_latents", "check_seeds", "float32_generator", "is_style_based", "to_uint8"]

_HALF_DTYPES = ("float16", "bfloat16", "mixed_float16", "mixed_bfloat16")


@dataclass(frozen=True)
class GeneratorSpec:
    """What a generator consumes: latent size, classes, and where z / label go in its inputs."""

    latent_dim: int
    num_classes: int | None
    label_first: bool = False
    style_based: bool = False  # noise seeded per image; the truncated signatures

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
    """Maps generator output in [-1, 1] to uint8 pixels, rounding and clipping; NaN is
    black (a float-to-integer cast leaves NaN to the CPU).

    `kgan.images.to_uint8_numpy` is its NumPy twin.
    """
    pixels = tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5)
    pixels = tf.where(tf.math.is_nan(pixels), tf.zeros_like(pixels), pixels)
    return tf.cast(tf.clip_by_value(pixels, 0.0, 255.0), tf.uint8)


def _rank_check(tensor: tf.Tensor, rank: int, message: str) -> tf.Operation:
    """Asserts `tensor`'s rank at run time, whatever its signature's static shape says.

    TF Serving (and a loaded signature) feed whatever a request holds: columnar REST
    with one latent vector gives z a rank of 1. The rank is counted from the runtime
    shape through a data-dependent op, because grappler folds `tf.rank` of an input whose
    static rank is known and would drop the check.
    """
    actual = tf.shape(tf.where(tf.shape(tensor) >= 0), out_type=tf.int32)[0]
    return tf.debugging.assert_equal(actual, rank, message=f"kgan: {message}")


def _batch_checks(batch: tf.Tensor, what: str) -> list:
    return [
        tf.debugging.assert_positive(
            batch, message=f"kgan: empty batch: send at least one {what}"),
        tf.debugging.assert_less_equal(
            batch, tf.constant(MAX_BATCH_SIZE, batch.dtype),
            message=f"kgan: batch too large: at most {MAX_BATCH_SIZE} {what}s per request "
                    "(MAX_BATCH_SIZE = max_batch_size in batching_parameters.txt); split it"),
    ]


def _truncation_checks(psi: tf.Tensor, batch: tf.Tensor) -> list:
    low, high = TRUNCATION_RANGE
    with tf.control_dependencies([_rank_check(
            psi, 1, "truncation must be a list [N] of numbers, one per row")]):
        psi = tf.identity(psi)
    # The range checks wait for the finite check: NaN would fail them with a vaguer text.
    with tf.control_dependencies([tf.debugging.assert_all_finite(
            psi, "kgan: truncation contains NaN or Inf")]):
        psi = tf.identity(psi)
    outside = (f"kgan: truncation must lie in [{low:g}, {high:g}] (1 = no truncation, "
               "0 = the average image)")
    return [
        tf.debugging.assert_equal(tf.shape(psi)[0], batch,
                                  message="kgan: truncation needs one value per row"),
        tf.debugging.assert_greater_equal(psi, low, message=outside),
        tf.debugging.assert_less_equal(psi, high, message=outside),
    ]


def _label_checks(label: tf.Tensor, batch: tf.Tensor, num_classes: int) -> list:
    with tf.control_dependencies([_rank_check(
            label, 1, "label must be a list [N] of class indices, one per row")]):
        label = tf.identity(label)
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

    def images(self, z: tf.Tensor, label: tf.Tensor | None,
               truncation: tf.Tensor | None = None, seed: tf.Tensor | None = None
               ) -> tf.Tensor:
        dim = self.spec.latent_dim
        # The shape checks below slice z's shape, so they wait for its rank check.
        with tf.control_dependencies([_rank_check(
                z, 2, f"z must be a matrix [N, {dim}]: one row of {dim} floats per image "
                      "(columnar REST: a list of lists)")]):
            z = tf.identity(z)
        batch = tf.shape(z)[0]
        checks = _batch_checks(batch, "latent") + [
            tf.debugging.assert_equal(
                tf.shape(z)[1], dim, message=f"kgan: z must have shape [N, {dim}]"),
            tf.debugging.assert_all_finite(z, "kgan: z contains NaN or Inf"),
        ]
        if label is not None:
            checks += _label_checks(label, batch, self.spec.num_classes)
        if truncation is not None:
            checks += _truncation_checks(truncation, batch)
        # Every input waits for every check: otherwise e.g. the label embedding's gather
        # can fail first with an opaque "indices[0] = 7 is not in [0, 3)".
        with tf.control_dependencies(checks):
            z = tf.identity(z)
            label = None if label is None else tf.identity(label)
            options = {} if truncation is None else {"truncation_psi": tf.identity(truncation)}
            if seed is not None and self.spec.style_based:
                options["noise_seeds"] = tf.identity(seed)
        inputs = self.spec.model_inputs(z, label)
        return to_uint8(self.generator(inputs, training=False, **options))

    def generate(self, seed: tf.Tensor, label: tf.Tensor | None,
                 truncation: tf.Tensor | None = None) -> dict:
        with tf.control_dependencies([_rank_check(
                seed, 1, "seed must be a list [N] of integers, one per image")]):
            seed = tf.identity(seed)
        with tf.control_dependencies(_batch_checks(tf.shape(seed)[0], "seed")):
            z = latents_from_seeds(tf.identity(seed), self.spec.latent_dim)
        images = self.images(z, label, truncation, seed)
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
        functions = {"serving_default": serve, "generate": generate,
                     PNG_SIGNATURES["generate"]: _png_only(generate)}
        if self.spec.conditional:  # any seeds: a request that never fails its batch
            count = self.spec.num_classes
            functions[NUM_CLASSES_SIGNATURE] = function(
                lambda seed: {"num_classes": tf.fill(tf.shape(seed), count)}, [seed_spec])
        if self.spec.style_based:
            functions.update(self._truncated(z_spec, seed_spec, label_spec))
        return functions

    def _truncated(self, z_spec, seed_spec, label_spec) -> dict:
        """`generate_truncated` / `latents_truncated`: the contract's two plus `truncation`."""
        psi_spec = tf.TensorSpec([None], tf.float32, name="truncation")
        function = _untraced_function
        if self.spec.conditional:
            latents = function(lambda z, label, truncation: {
                "images": self.images(z, label, truncation)}, [z_spec, label_spec, psi_spec])
            generate = function(self.generate, [seed_spec, label_spec, psi_spec])
        else:
            latents = function(lambda z, truncation: {
                "images": self.images(z, None, truncation)}, [z_spec, psi_spec])
            generate = function(lambda seed, truncation: self.generate(seed, None, truncation),
                                [seed_spec, psi_spec])
        name = TRUNCATED_SIGNATURES["generate"]
        return {name: generate, PNG_SIGNATURES[name]: _png_only(generate),
                TRUNCATED_SIGNATURES["serving_default"]: latents}


def _png_only(generate):
    """A tf.function with `generate`'s inputs (names included) answering its `png_bytes`."""
    python_function = generate.python_function

    @functools.wraps(python_function)
    def png_only(*args, **kwargs):
        return {"png_bytes": python_function(*args, **kwargs)["png_bytes"]}

    return _untraced_function(png_only, generate.input_signature)


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
    module.generate_png = signatures[PNG_SIGNATURES["generate"]]
    if spec.conditional:
        module.num_classes = signatures[NUM_CLASSES_SIGNATURE]
    if spec.style_based:
        module.generate_truncated = signatures[TRUNCATED_SIGNATURES["generate"]]
        module.latents_truncated = signatures[TRUNCATED_SIGNATURES["serving_default"]]
        module.generate_truncated_png = signatures[PNG_SIGNATURES[
            TRUNCATED_SIGNATURES["generate"]]]
    return module, signatures
