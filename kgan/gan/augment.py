"""Differentiable discriminator augmentation with an adaptive probability.

Small data sets let D memorise the real images; augmenting *everything* D sees, real
and fake alike, with ops that pass gradients to G removes that shortcut without
leaking the augmentation into G's samples (DiffAugment, Zhao et al., 2020). Each op
is applied per image with probability `p`; with `adaptive=True`, `p` follows ADA
(Karras et al., 2020): every `interval` calls of `update(real_logits)`,
r_t = E[sign(D(real))] is compared with `target` (0.6) and `p` moves towards less
overfitting (up when r_t > target, down otherwise), clipped to [0, 1], by the number of
real images D saw since the last adjustment / (`kimg` x 1000): as stylegan2-ada-pytorch,
p can move by 1 in `kimg` thousand images (500) whatever the batch size.

Ops (images in [-1, 1]): brightness (+U(-0.5, 0.5)), saturation (x 2U(0, 1) around the
per-pixel channel mean), contrast (x U(0.5, 1.5) around the image mean), translation
(integer shifts up to 1/8 of each side, zero fill) and cutout (one zero square of half
the side) -- DiffAugment's "color,translation,cutout" policy. ADA's own groups, "blit",
"geom", "ada_color", "filter" and "noise" ("bgc" for the first three, as ADA's default;
`kgan.gan.ada`), run before them: one resampling, one colour matrix and one filter per
image. A group written "name:m" hits each image with probability p x m
(`kgan.gan.augment_policy`).

Replica exactness (design.md, rule 2): the caller passes the same seed on every replica
(a function of the GAN's seed, step and stream only); every gate and parameter is one
stateless draw for the *global* batch of which each replica keeps its own rows
(`kgan.gan.randomness`), so N replicas augment
each image exactly as one device does with the same global batch. The draws are
`tf.random.stateless_*`'s numbers bit for bit (those of earlier runs) on both backends and
under XLA, so a jit-compiled step augments as a plain one, and JAX as TensorFlow.

keras-cv 0.9 findings (checked on Keras 3.15 / TF 2.21 with a gradient tape):
    * `RandomTranslation` runs on ImageProjectiveTransformV3, which has no XLA kernel, so
      a train step using it cannot be jit-compiled. Translation here is our own
      `translate` (two batched gathers of whole-pixel shifts plus a zero mask), which
      matches its `augment_images` (nearest, constant 0 fill) to the bit and compiles.
    * `RandomCutout` fills through a boolean mask (gradients reach the input, the hole
      gets zero), built via keras-cv's bounding-box format conversion. Our `cutout` builds
      the same mask directly from iota coordinates and the drawn centres, with keras-cv's
      rectangle convention: pixels i with c - s/2 <= i < c + s/2 on each axis, clipped at
      the border. With both ops our own, the layer no longer imports keras-cv (nor holds
      its sublayers, whose seed-generator state old checkpoints carry and may leave
      unrestored); both keras-cv layers stay in the tests as the reference.
    * `RandomSaturation`: no gradient (it goes through `tf.image.rgb_to_hsv`, which has
      no registered gradient), so saturation is our own op.
    * `RandomBrightness`, `RandomContrast`: gradients flow, but both clip to the value
      range, zeroing G's gradient wherever a shifted pixel saturates (common with tanh
      outputs near +-1), and RandomContrast uses per-channel means, so both are ours.
    * No keras-cv layer takes a per-call seed: their randomness comes from a stateful
      seed generator held in the layer, which is mirrored across replicas and cannot be
      replayed from (seed, step). Every random draw here is therefore
      `tf.random.stateless_*` from the caller's seed, so every op is XLA-compilable.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from kgan.gan import ada, augment_policy, backends, randomness

Tensor = Any  # a backend tensor

POLICIES = augment_policy.GROUPS


@keras.saving.register_keras_serializable(package="kgan")
class Augment(keras.layers.Layer):
    """DiffAugment ops gated per image by an (optionally ADA-adaptive) probability.

    Args:
        policy: groups (tuple or comma string), each optionally with a probability
            multiplier as "name:m": DiffAugment's "color", "translation", "cutout"
            (run in the order given), ADA's "blit", "geom", "ada_color", "filter",
            "noise" (run first, in ADA's order); "bgc", "bgcf", "bgcfn", "bgcfnc" name
            ADA's pipelines (`kgan.gan.augment_policy`).
        initial_probability: starting `p`; 0 for ADA, 1 for plain DiffAugment.
        adaptive: adjust `p` from `update(real_logits)`.
        target: ADA target for r_t = E[sign(D(real))].
        interval: `update` calls between adjustments.
        kimg: thousands of real images over which ADA can move `p` by 1 (ADA's
            `ada_kimg`, 500); smaller adapts faster, for runs far shorter than ADA's.
        speed: a fixed change of `p` per adjustment instead of `kimg`'s rate (kgan up to
            0.3 moved it by 5e-3 every 4 updates; layers saved by it keep that).
        translation_ratio: largest shift as a fraction of the image side.
        cutout_ratio: cutout square side as a fraction of the image side.
        seed: seed for calls without `seed=` (standalone use; the GAN always passes one).

    Example:
        >>> augment = Augment()                          # ADA: p starts at 0
        >>> images = augment(images, seed=kgan.gan.randomness.seed(0, 7))
        >>> augment.update(real_logits)                  # once per D step

    Under a strategy, call it inside `strategy.run` with the SAME seed on every replica:
    it draws for the global batch (local batch x replicas) and keeps this replica's rows.
    """

    def __init__(
        self,
        policy: str | tuple[str, ...] = ("color", "translation", "cutout"),
        initial_probability: float = 0.0,
        adaptive: bool = True,
        target: float = 0.6,
        interval: int = 4,
        kimg: float = 500.0,
        speed: float | None = None,
        translation_ratio: float = 0.125,
        cutout_ratio: float = 0.5,
        seed: int | None = None,
        **kwargs,
    ):
        kwargs.setdefault("dtype", "float32")  # geometry and colour maths stay float32
        super().__init__(**kwargs)
        parsed = augment_policy.parse(policy)
        self.policy = tuple(augment_policy.format_policy(parsed))
        _check(initial_probability, target, interval, kimg, speed, translation_ratio,
               cutout_ratio)
        self.initial_probability = float(initial_probability)
        self.adaptive = bool(adaptive)
        self.target = float(target)
        self.interval = int(interval)
        self.kimg = float(kimg)
        self.speed = None if speed is None else float(speed)
        self.translation_ratio = float(translation_ratio)
        self.cutout_ratio = float(cutout_ratio)
        self.seed = seed
        # ADA's groups: one resampling and one colour matrix; DiffAugment's: op by op
        self._ada = {name: m for name, m in parsed if name in augment_policy.ADA_GROUPS}
        self._ops = [(op, m) for name, m in parsed if name not in self._ada
                     for op in POLICIES[name]]
        self._seed_generator = keras.random.SeedGenerator(seed)
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

    def call(self, images: Tensor, seed: Tensor | None = None, training: bool = True):
        """Augments a batch; each op hits each image with probability `p`.

        Args:
            images: float [N, H, W, C] in [-1, 1].
            seed: a `kgan.gan.randomness.seed` (the backend's stateless seed: int [2] on
                TensorFlow, Philox words on JAX): different per step and call, but
                the same on every replica (the draws are global; each replica keeps its
                rows [replica * N, (replica + 1) * N)).
            training: False returns the images unchanged.

        Returns:
            Augmented images, same shape, float32.
        """
        if not training or not (self._ops or self._ada):
            return images
        if seed is None:
            draw = keras.random.randint((), 0, 2**31 - 1, seed=self._seed_generator)
            seed = randomness.seed(self.seed or 0, draw)
        batch = randomness.static_batch(images)
        probability = ops.convert_to_tensor(self.probability)
        if self._ada:  # (a policy without ADA's groups keeps its draws of kgan 0.4)
            ada_seed, seed = randomness.split(seed, 2)
            params = ada.draw(batch, ada_seed, probability, self._ada, images.shape[1:])
            images = ada.apply(images, params)
        seeds = randomness.split(seed, 2 * len(self._ops)) if self._ops else []
        for index, (name, multiplier) in enumerate(self._ops):
            if name == "saturation" and images.shape[-1] == 1:
                continue  # no colour to saturate in grayscale
            p = probability if multiplier == 1.0 else probability * multiplier
            gate = randomness.global_uniform(batch, [], seeds[2 * index]) < p
            augmented = getattr(self, f"_apply_{name}")(images, batch, seeds[2 * index + 1])
            images = ops.where(gate[:, None, None, None], augmented, images)
        return images

    def _apply_brightness(self, images, batch, seed):
        return images + (randomness.global_uniform(batch, [1, 1, 1], seed) - 0.5)

    def _apply_saturation(self, images, batch, seed):
        factor = 2.0 * randomness.global_uniform(batch, [1, 1, 1], seed)
        mean = ops.mean(images, axis=-1, keepdims=True)
        return (images - mean) * factor + mean

    def _apply_contrast(self, images, batch, seed):
        factor = randomness.global_uniform(batch, [1, 1, 1], seed) + 0.5
        mean = ops.mean(images, axis=[1, 2, 3], keepdims=True)
        return (images - mean) * factor + mean

    def _apply_translation(self, images, batch, seed):
        """Whole-pixel shifts up to `translation_ratio` of each side, zero fill."""
        sides = images.shape[1:3]
        limits = [int(float(np.float32(side) * np.float32(self.translation_ratio) + 0.5))
                  for side in sides]
        shift_y, shift_x = (
            randomness.global_integers(batch, [1], s, -limit, limit + 1)
            for s, limit in zip(randomness.split(seed, 2), limits, strict=True)
        )
        return translate(images, shift_y[:, 0], shift_x[:, 0])

    def _apply_cutout(self, images, batch, seed):
        """One zero rectangle of `cutout_ratio` of each side, centred on a random pixel."""
        sides = images.shape[1:3]
        sizes = [int(float(np.float32(side) * np.float32(self.cutout_ratio) + 0.5))
                 for side in sides]
        centre_y, centre_x = (
            randomness.global_integers(batch, [], s, 0, side)
            for s, side in zip(randomness.split(seed, 2), sides, strict=True)
        )
        return cutout(images, centre_y, centre_x, sizes[0], sizes[1])

    def update(self, real_logits: Tensor) -> Tensor:
        """Accumulates sign(D(real)) and adjusts `p` every `interval` calls (ADA).

        Call once per D step, inside the replica context of `strategy.run` (the GAN's
        train_step): the statistics are summed over replicas before use, so every
        replica computes the same new `p`.

        Returns:
            The (possibly updated) probability.
        """
        if not self.adaptive:
            return ops.convert_to_tensor(self.probability)
        signs = ops.sign(ops.cast(real_logits, "float32"))
        size = ops.cast(ops.size(signs), "float32")
        local = ops.stack([ops.sum(signs), size, ops.zeros((), "float32")])
        reduced = backends.current().all_reduce(local, "sum")
        totals = self.accumulator.value + reduced + ops.convert_to_tensor([0.0, 0.0, 1.0])
        due = totals[2] >= self.interval
        r_t = totals[0] / ops.maximum(totals[1], 1.0)
        if self.speed is None:  # the images seen since the last adjustment, in kimg units
            rate = totals[1] / ops.convert_to_tensor(self.kimg * 1000.0, "float32")
        else:
            rate = ops.convert_to_tensor(self.speed, "float32")
        step = ops.sign(r_t - self.target) * rate
        probability = self.probability.value
        adjusted = ops.clip(probability + step, 0.0, 1.0)
        self.probability.assign(ops.where(due, adjusted, probability))
        self.real_sign.assign(ops.where(due, r_t, self.real_sign.value))
        self.accumulator.assign(ops.where(due, ops.zeros([3]), totals))
        return ops.copy(self.probability.value)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            policy=list(self.policy),
            initial_probability=self.initial_probability,
            adaptive=self.adaptive,
            target=self.target,
            interval=self.interval,
            kimg=self.kimg,
            speed=self.speed,
            translation_ratio=self.translation_ratio,
            cutout_ratio=self.cutout_ratio,
            seed=self.seed,
        )
        return config


def translate(images: Tensor, shift_y: Tensor, shift_x: Tensor) -> Tensor:
    """out[b, y, x] = images[b, y - shift_y[b], x - shift_x[b]], zero where that is outside.

    Integer shifts, one per image (positive moves the content down / right), as keras-cv's
    `RandomTranslation(fill_mode="constant", interpolation="nearest")` with translations
    shift / size does it, but with gathers XLA can compile. Pixels are copied, so the
    gradient reaches each source pixel unchanged and the filled border gets none.
    """
    return _shift_axis(_shift_axis(images, shift_y, axis=1), shift_x, axis=2)


def _shift_axis(images: Tensor, shift: Tensor, axis: int) -> Tensor:
    length = images.shape[axis]
    source = ops.arange(length)[None, :] - ops.cast(shift, "int32")[:, None]  # [B, length]
    index = ops.clip(source, 0, length - 1)
    inside = (source >= 0) & (source < length)
    expand = (lambda x: x[:, :, None, None]) if axis == 1 else (lambda x: x[:, None, :, None])
    index = ops.broadcast_to(expand(index), ops.shape(images))
    moved = ops.take_along_axis(images, index, axis=axis)
    return ops.where(expand(inside), moved, ops.zeros_like(moved))


def cutout(images: Tensor, centre_y: Tensor, centre_x: Tensor, height, width):
    """Zeroes one rectangle per image: rows y with c_y - h/2 <= y < c_y + h/2, likewise x.

    keras-cv's `RandomCutout` convention (`fill_utils.fill_rectangle`: float corners from
    centre and size, a half-open pixel range, clipped at the border, so a hole near an
    edge is smaller), built from iota comparisons as DiffAugment does, so XLA compiles it.
    `height` / `width` are scalars or one per image; the hole's pixels get zero gradient.
    """
    rows = _in_span(centre_y, height, images.shape[1])
    cols = _in_span(centre_x, width, images.shape[2])
    hole = rows[:, :, None, None] & cols[:, None, :, None]
    return ops.where(hole, ops.zeros_like(images), images)


def _in_span(centres: Tensor, size, length) -> Tensor:
    """[B, length] mask of c - size/2 <= i < c + size/2, in float32 as keras-cv computes it."""
    centres = ops.cast(centres, "float32")[:, None]
    half = ops.reshape(ops.cast(size, "float32"), [-1, 1]) / 2.0
    coordinates = ops.cast(ops.arange(length), "float32")[None, :]
    return (coordinates >= centres - half) & (coordinates < centres + half)


def _check(probability, target, interval, kimg, speed, translation_ratio,
           cutout_ratio) -> None:
    checks = [
        (0.0 <= probability <= 1.0, f"initial_probability must be in [0, 1], got {probability}"),
        (0.0 <= target <= 1.0, f"target must be in [0, 1], got {target}"),
        (int(interval) >= 1, f"interval must be >= 1, got {interval}"),
        (kimg > 0.0, f"kimg must be > 0, got {kimg}"),
        (speed is None or 0.0 < speed <= 1.0, f"speed must be in (0, 1] or None, got {speed}"),
        (
            0.0 <= translation_ratio < 0.5,
            f"translation_ratio must be in [0, 0.5), got {translation_ratio}",
        ),
        (0.0 < cutout_ratio < 1.0, f"cutout_ratio must be in (0, 1), got {cutout_ratio}"),
    ]
    for ok, message in checks:
        if not ok:
            raise ValueError(message + ".")
