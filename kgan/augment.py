"""Differentiable discriminator augmentation with an adaptive probability.

Small data sets let D memorise the real images; augmenting *everything* D sees, real
and fake alike, with ops that pass gradients to G removes that shortcut without
leaking the augmentation into G's samples (DiffAugment, Zhao et al., 2020). Each op
is applied per image with probability `p`; with `adaptive=True`, `p` follows ADA
(Karras et al., 2020): every `interval` calls of `update(real_logits)`,
r_t = E[sign(D(real))] is compared with `target` (0.6) and `p` moves by `speed` towards
less overfitting (up when r_t > target, down otherwise), clipped to [0, 1].

Ops (images in [-1, 1]): brightness (+U(-0.5, 0.5)), saturation (x 2U(0, 1) around the
per-pixel channel mean), contrast (x U(0.5, 1.5) around the image mean), translation
(integer shifts up to 1/8 of each side, zero fill) and cutout (one zero square of half
the side) -- DiffAugment's "color,translation,cutout" policy.

keras-cv 0.9 findings (checked on Keras 3.15 / TF 2.21 with a gradient tape):
    * `RandomTranslation`, `RandomCutout`: gradients reach the input (cutout's hole gets
      zero, as it should). Used here through their `augment_images(images,
      transformations)` method, with transformations drawn by our own stateless ops.
    * `RandomSaturation`: no gradient (it goes through `tf.image.rgb_to_hsv`, which has
      no registered gradient), so saturation is our own op.
    * `RandomBrightness`, `RandomContrast`: gradients flow, but both clip to the value
      range, zeroing G's gradient wherever a shifted pixel saturates (common with tanh
      outputs near +-1), and RandomContrast uses per-channel means, so both are ours.
    * No keras-cv layer takes a per-call seed: their randomness comes from a stateful
      seed generator held in the layer, which is mirrored across replicas (all replicas
      would draw the same augmentation) and cannot be replayed from (seed, step). Every
      random draw here is therefore `tf.random.stateless_*` from the caller's seed.
"""

from __future__ import annotations

import keras
import keras_cv
import tensorflow as tf

POLICIES = {
    "color": ("brightness", "saturation", "contrast"),
    "translation": ("translation",),
    "cutout": ("cutout",),
}


@keras.saving.register_keras_serializable(package="kgan")
class Augment(keras.layers.Layer):
    """DiffAugment ops gated per image by an (optionally ADA-adaptive) probability.

    Args:
        policy: names from "color", "translation", "cutout" (tuple or comma string).
        initial_probability: starting `p`; 0 for ADA, 1 for plain DiffAugment.
        adaptive: adjust `p` from `update(real_logits)`.
        target: ADA target for r_t = E[sign(D(real))].
        interval: `update` calls between adjustments.
        speed: change of `p` per adjustment (ADA's is batch * interval / 500k, about
            5e-4 at batch 64; kgan's runs are shorter, so the default is 5e-3).
        translation_ratio: largest shift as a fraction of the image side.
        cutout_ratio: cutout square side as a fraction of the image side.
        seed: seed for calls without `seed=` (standalone use; the GAN always passes one).

    Example:
        >>> augment = Augment()                          # ADA: p starts at 0
        >>> images = augment(images, seed=tf.constant([0, 7], tf.int64))
        >>> augment.update(real_logits)                  # once per D step
    """

    def __init__(
        self,
        policy: str | tuple[str, ...] = ("color", "translation", "cutout"),
        initial_probability: float = 0.0,
        adaptive: bool = True,
        target: float = 0.6,
        interval: int = 4,
        speed: float = 0.005,
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # geometry and colour maths stay float32
        super().__init__(**kwargs)
        self.policy = _parse_policy(policy)
        _check(initial_probability, target, interval, speed, translation_ratio, cutout_ratio)
        self.initial_probability = float(initial_probability)
        self.adaptive = bool(adaptive)
        self.target = float(target)
        self.interval = int(interval)
        self.speed = float(speed)
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)
        self.seed = seed
        self._ops = [op for name in self.policy for op in POLICIES[name]]
        self._seed_generator = keras.random.SeedGenerator(seed)
        # float32 like this layer: under a mixed global policy they would compute in float16
        # and clash with the float32 images.
        self._keras_cv_translation = keras_cv.layers.RandomTranslation(
            translation_ratio, translation_ratio, fill_mode="constant", interpolation="nearest",
            dtype="float32",
        )
        self._keras_cv_cutout = keras_cv.layers.RandomCutout(
            cutout_ratio, cutout_ratio, dtype="float32"
        )
        # Weightless, so built at once: under a strategy, Keras traces any model that
        # holds an unbuilt layer through `call()` before fit, which a GAN cannot serve.
        for layer in (self._keras_cv_translation, self._keras_cv_cutout):
            layer.build(None)
        self._create_state()

    def _create_state(self) -> None:
        # ONLY_FIRST_REPLICA: every replica computes the same all-reduced update, and
        # the first replica's value is the one kept, so the copies never drift apart.
        common = dict(trainable=False, aggregation="only_first_replica", dtype="float32")
        self.probability = self.add_weight(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_probability),
            name="probability",
            **common,
        )
        self.real_sign = self.add_weight(shape=(), initializer="zeros", name="real_sign", **common)
        # [sum of sign(D(real)), number of logits, update calls] since the last adjustment
        self.accumulator = self.add_weight(
            shape=(3,), initializer="zeros", name="accumulator", **common
        )
        self.built = True

    def build(self, input_shape) -> None:
        """State is created in the constructor, so checkpoints restore before any call."""

    def compute_output_shape(self, input_shape):
        return input_shape

    def call(self, images: tf.Tensor, seed: tf.Tensor | None = None, training: bool = True):
        """Augments a batch; each op hits each image with probability `p`.

        Args:
            images: float [N, H, W, C] in [-1, 1].
            seed: int [2] seed for the stateless draws; different per replica/step/call.
            training: False returns the images unchanged.

        Returns:
            Augmented images, same shape, float32.
        """
        if not training or not self._ops:
            return images
        if seed is None:
            seed = self._seed_generator.next()
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2 * len(self._ops))
        batch = tf.shape(images)[0]
        probability = tf.convert_to_tensor(self.probability)
        for index, name in enumerate(self._ops):
            if name == "saturation" and images.shape[-1] == 1:
                continue  # no colour to saturate in grayscale
            gate = tf.random.stateless_uniform([batch], seeds[2 * index]) < probability
            augmented = getattr(self, f"_apply_{name}")(images, seeds[2 * index + 1])
            images = tf.where(gate[:, None, None, None], augmented, images)
        return images

    def _apply_brightness(self, images, seed):
        shift = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) - 0.5
        return images + shift

    def _apply_saturation(self, images, seed):
        factor = 2.0 * tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed)
        mean = tf.reduce_mean(images, axis=-1, keepdims=True)
        return (images - mean) * factor + mean

    def _apply_contrast(self, images, seed):
        factor = tf.random.stateless_uniform([tf.shape(images)[0], 1, 1, 1], seed) + 0.5
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        return (images - mean) * factor + mean

    def _apply_translation(self, images, seed):
        """Whole-pixel shifts, so nearest sampling copies pixels and gradients exactly."""
        shape = tf.shape(images)
        sizes = tf.cast(shape[1:3], tf.float32)
        limit = tf.cast(sizes * self.translation_ratio + 0.5, tf.int32)
        shifts = [
            tf.random.stateless_uniform([shape[0], 1], s, -limit[i], limit[i] + 1, tf.int32)
            for i, s in enumerate(tf.unstack(tf.random.experimental.stateless_split(seed, 2)))
        ]
        transformations = {
            "height_translations": tf.cast(shifts[0], tf.float32) / sizes[0],
            "width_translations": tf.cast(shifts[1], tf.float32) / sizes[1],
        }
        return self._keras_cv_translation.augment_images(images, transformations)

    def _apply_cutout(self, images, seed):
        shape = tf.shape(images)
        batch, height, width = shape[0], shape[1], shape[2]
        size_h = tf.cast(tf.cast(height, tf.float32) * self.cutout_ratio + 0.5, tf.int32)
        size_w = tf.cast(tf.cast(width, tf.float32) * self.cutout_ratio + 0.5, tf.int32)
        seed_y, seed_x = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
        transformations = {
            "centers_y": tf.random.stateless_uniform([batch], seed_y, 0, height, tf.int32),
            "centers_x": tf.random.stateless_uniform([batch], seed_x, 0, width, tf.int32),
            "rectangles_height": tf.fill([batch], size_h),
            "rectangles_width": tf.fill([batch], size_w),
        }
        return self._keras_cv_cutout.augment_images(images, transformations)

    @property
    def xla_compatible(self) -> bool:
        """False when the policy translates: ImageProjectiveTransformV3, which keras-cv's
        translation runs on, has no XLA kernel, so such a train step cannot be jit-compiled."""
        return "translation" not in self.policy

    def update(self, real_logits: tf.Tensor) -> tf.Tensor:
        """Accumulates sign(D(real)) and adjusts `p` every `interval` calls (ADA).

        Call once per D step, inside the replica context of `strategy.run` (the GAN's
        train_step): the statistics are summed over replicas before use, so every
        replica computes the same new `p`.

        Returns:
            The (possibly updated) probability.
        """
        if not self.adaptive:
            return tf.convert_to_tensor(self.probability)
        signs = tf.sign(tf.cast(real_logits, tf.float32))
        local = tf.stack([tf.reduce_sum(signs), tf.cast(tf.size(signs), tf.float32), 0.0])
        totals = self.accumulator + _sum_over_replicas(local) + tf.constant([0.0, 0.0, 1.0])
        due = totals[2] >= self.interval
        r_t = totals[0] / tf.maximum(totals[1], 1.0)
        step = tf.sign(r_t - self.target) * self.speed
        adjusted = tf.clip_by_value(self.probability + step, 0.0, 1.0)
        self.probability.assign(tf.where(due, adjusted, self.probability))
        self.real_sign.assign(tf.where(due, r_t, self.real_sign))
        self.accumulator.assign(tf.where(due, tf.zeros([3]), totals))
        return tf.convert_to_tensor(self.probability)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            policy=list(self.policy),
            initial_probability=self.initial_probability,
            adaptive=self.adaptive,
            target=self.target,
            interval=self.interval,
            speed=self.speed,
            translation_ratio=self.translation_ratio,
            cutout_ratio=self.cutout_ratio,
            seed=self.seed,
        )
        return config


def _sum_over_replicas(value: tf.Tensor) -> tf.Tensor:
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _parse_policy(policy: str | tuple[str, ...] | list[str]) -> tuple[str, ...]:
    names = (
        tuple(p.strip() for p in policy.split(",") if p.strip())
        if isinstance(policy, str)
        else tuple(policy)
    )
    unknown = [n for n in names if n not in POLICIES]
    if unknown:
        raise ValueError(f"Unknown augmentation {unknown}; choose from {sorted(POLICIES)}.")
    return names


def _check(probability, target, interval, speed, translation_ratio, cutout_ratio) -> None:
    checks = [
        (0.0 <= probability <= 1.0, f"initial_probability must be in [0, 1], got {probability}"),
        (0.0 <= target <= 1.0, f"target must be in [0, 1], got {target}"),
        (int(interval) >= 1, f"interval must be >= 1, got {interval}"),
        (0.0 < speed <= 1.0, f"speed must be in (0, 1], got {speed}"),
        (
            0.0 <= translation_ratio < 0.5,
            f"translation_ratio must be in [0, 0.5), got {translation_ratio}",
        ),
        (0.0 < cutout_ratio < 1.0, f"cutout_ratio must be in (0, 1), got {cutout_ratio}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message + ".")
