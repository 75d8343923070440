"""StyleGAN2's training maths for style-based generators (`kgan.gan.sampling.is_style_based`):
pure functions, and the `StyleHooks` that `kgan.GAN` mixes in to hold w_avg and the
path-length mean; after Karras et al. 2020
("Analyzing and Improving the Image Quality of StyleGAN") and stylegan2-ada-pytorch
(`training/loss.py`, `StyleGAN2Loss`).

- Style mixing regularisation (StyleGAN, Karras et al. 2019, section 3.1): with
  probability p per batch, ws[cutoff:] come from a second z, cutoff ~ U{1, ..., num_ws - 1}.
- Mean-w tracking: w_avg <- lerp(w_avg, mean w, 1 - 0.995), for the truncation trick.
- Path-length regularisation (StyleGAN2, section 3.2): with y ~ N(0, I) / sqrt(H W),
  a = ||J_w^T y|| per image (J the Jacobian of the image w.r.t. its ws, the norm the mean
  over the ws of each w's squared norm, square-rooted); penalty E[(a - pl_mean)^2], with
  pl_mean a running mean of a. It makes a fixed step in W change the image by a fixed
  amount, whatever the direction.

Where kgan differs from the reference, and why:
1. One optimizer step per train step: path-length regularisation's gradient (every
   `pl_interval` G steps, weighted by the interval) is added to the main G gradient, as
   lazy R1 is to D's, instead of a separate "Greg" phase with its own Adam step. The
   reference's Adam correction for the extra steps (lr x mb_ratio, betas ** mb_ratio,
   mb_ratio = k / (k + 1)) is therefore not applied: there are no extra steps.
2. The penalty uses pl_mean from before this step's update; the reference first moves
   pl_mean toward this batch's mean length (by pl_decay = 0.01) and then penalises. The
   update needs the global mean of the lengths, an all-reduce, which must not run inside
   the `tf.cond` that skips the regularisation pass (it deadlocks MirroredStrategy), so
   the update is applied after it. The two differ by pl_decay x (mean a - pl_mean).
3. pl_mean and w_avg follow global means over all replicas (rule 2: N replicas = one
   device); the reference keeps one pl_mean and one w_avg per GPU.
4. w_avg moves once per train step, with the G step's w (before mixing); the reference
   moves it in every training mapping call (D's fakes, G, the regulariser's pass), so
   about 2-3 times per iteration with the same beta.
5. Noise inputs are one stateless draw per pass from the step's seed (each replica keeps
   its rows), not torch's stateful generator; style-mixing draws likewise. As in the
   reference's `run_G`, D's fakes, G's batch and the path-length pass all mix styles.
6. Mixed precision: the reference has no loss scaling (it zeroes non-finite gradients);
   here G's gradient, path length's included, is loss-scaled and a non-finite step is
   skipped, the inner gradient d(img . y)/d ws is taken unscaled (`path_lengths`), and
   pl_mean and the `pl` log ignore non-finite lengths.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from keras import ops

from kgan.gan import backends, randomness
from kgan.gan.sampling import is_style_based, style_mix_images

Tensor = Any  # a backend tensor

__all__ = ["StyleHooks", "check_path_length", "check_style_mixing", "global_mean",
           "is_style_based", "lerp", "mapped_ws", "mixing_cutoff", "path_length_noise",
           "path_length_penalty", "path_lengths"]


def _number(name: str, value, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not (
            math.isfinite(value) and low <= value <= high):
        raise ValueError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}.")
    return float(value)


def _needs_style(name: str, generator) -> None:
    if not is_style_based(generator):
        raise ValueError(
            f"{name} needs a style-based generator (one with a mapping and a synthesis "
            f"network, e.g. kgan.networks.get('stylegan2')); {generator.name!r} has none. "
            f"Leave {name} at 0.")


def check_style_mixing(probability, generator) -> float:
    """Validates the style-mixing probability (0 disables it)."""
    probability = _number("style_mixing", probability, 0.0, 1.0)
    if probability > 0:
        _needs_style("style_mixing", generator)
    return probability


def check_path_length(weight, interval, batch_shrink, decay, generator) -> tuple:
    """Validates path-length options; returns (weight, interval, batch_shrink, decay)."""
    weight = _number("pl_weight", weight, 0.0, math.inf)
    for name, value in (("pl_interval", interval), ("pl_batch_shrink", batch_shrink)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    decay = _number("pl_decay", decay, 0.0, 1.0)
    if weight > 0:
        _needs_style("pl_weight", generator)
        if decay == 0:
            raise ValueError("pl_decay must be > 0 with pl_weight > 0 (0 never moves pl_mean).")
    return weight, int(interval), int(batch_shrink), decay


def mixing_cutoff(num_ws: int, probability: float, gate_seed, cutoff_seed) -> Tensor:
    """The batch's mixing cutoff, int32 scalar: U{1, ..., num_ws - 1} with probability
    `probability`, else num_ws (no mixing). Both draws are scalars from seeds every
    replica shares, so all replicas mix the same layers."""
    cutoff = randomness.scalar_integer(cutoff_seed, 1, num_ws)
    gate = randomness.scalar_uniform(gate_seed)
    return ops.where(gate < probability, cutoff, num_ws)


def mapped_ws(generator, inputs, mixing=None) -> tuple[Tensor, Tensor]:
    """(w [N, w_dim], ws [N, num_ws, w_dim]) of `inputs`; with `mixing` = (second inputs,
    cutoff) the ws from `cutoff` on come from the second inputs' w (reference `run_G`)."""
    w = generator.mapping(inputs)
    ws = generator.broadcast(w)
    if mixing is not None:
        second, cutoff = mixing
        ws = generator.mix_styles(ws, generator.broadcast(generator.mapping(second)), cutoff)
    return w, ws


def path_length_noise(batch, image_shape: tuple, seed) -> Tensor:
    """y ~ N(0, I) / sqrt(H W) [batch, H, W, C]: this replica's rows of one global draw."""
    height, width = image_shape[0], image_shape[1]
    return randomness.global_normal(batch, list(image_shape), seed) / math.sqrt(height * width)


def path_lengths(synthesize, ws, noise) -> Tensor:
    """a_i = sqrt(mean_k sum_d g_ikd^2), g = d sum(synthesize(ws) * noise) / d ws, [N].

    Called inside an outer gradient, the lengths stay differentiable w.r.t. the generator's
    weights. Under mixed_float16 this inner gradient is NOT multiplied by the loss scale
    (as R1's is): its values are sums over pixels and channels of order 1, which a scale
    of 2^15 overflows in float16 layers; unscaled they are well inside float16's range
    (the reference computes them unscaled in float16 too). The outer gradient is scaled.
    """
    product, pullback = backends.current().vjp(
        lambda x: ops.sum(ops.cast(synthesize(x), "float32") * noise), ws)
    grads = ops.cast(pullback(ops.ones_like(product))[0], "float32")
    return ops.sqrt(ops.mean(ops.sum(ops.square(grads), axis=2), axis=1))


def path_length_penalty(lengths, pl_mean) -> Tensor:
    """mean_i (a_i - pl_mean)^2, pl_mean held constant."""
    return ops.mean(ops.square(lengths - ops.stop_gradient(pl_mean)))


def lerp(value, target, rate) -> Tensor:
    """value + rate (target - value): an exponential moving average step."""
    return value + rate * (target - value)


def global_mean(value) -> Tensor:
    """The mean of `value` over all replicas (each replica passes its local mean of an
    equal share of the global batch); the value itself on one device. Call it in replica
    context, never inside a conditional."""
    return backends.current().all_reduce(value, "mean")




class StyleHooks:
    """StyleGAN2's training passes, mixed into `kgan.GAN`.

    Contract: the GAN provides `generator`, `latent_dim`, `num_classes`, `seed`,
    `d_steps`, `style_based`, `style_mixing`, `image_shape`, `pl_mean` (a variable),
    `pl_weight`, `pl_interval`, `pl_batch_shrink`, `pl_decay`, `g_optimizer`,
    `_trackers` and `_generator_inputs(z, labels)`; `_backend` is `kgan.gan.backends`'
    module for this process.
    """

    def _fakes(self, z, labels, step, pass_index):
        """Training G(z) and its w (None unless style-based; then with this pass's
        stateless noise and style mixing)."""
        if not self.style_based:
            return self.generator(self._generator_inputs(z, labels), training=True), None
        w, ws, synthesize = self._styles(z, labels, step, pass_index)
        return synthesize(ws), w

    def _styles(self, z, labels, step, pass_index):
        """w, the (mixed) ws and the synthesis with this pass's noise: one forward pass."""
        noise, gate, cutoff, second = (
            self._style_seed(step, self._streams.style_pass(pass_index, draw))
            for draw in ("noise", "gate", "cutoff", "second"))
        mixing = None
        if self.style_mixing:
            z_b = randomness.global_normal(randomness.static_batch(z), [self.latent_dim], second)
            mixing = (self._generator_inputs(z_b, labels), mixing_cutoff(
                self.generator.num_ws, self.style_mixing, gate, cutoff))
        w, ws = mapped_ws(self.generator, self._generator_inputs(z, labels), mixing)
        return w, ws, lambda ws: self.generator.synthesis(ws, seed=noise)

    def _add_path_length(self, grads, batch, step):
        """Adds the path-length penalty's gradient every `pl_interval` G steps (lazy, as
        R1), then moves pl_mean toward the global mean length: after the conditional,
        because the all-reduce must not run inside it (difference 2 above)."""
        due = ops.equal(step % self.pl_interval, 0)
        variables = self.generator.trainable_variables

        def skipped():
            zero = ops.zeros((), "float32")
            return [ops.zeros(v.shape, v.dtype) for v in variables], zero, zero

        pl_grads, length, penalty = self._backend.cond(
            due, lambda: self._path_length_gradients(batch, step), skipped)
        # A float16 overflow (the step is then skipped) must not poison pl_mean for good.
        length = global_mean(length)
        pl_mean = self.pl_mean.value
        moved = lerp(pl_mean, length, self.pl_decay)
        self.pl_mean.assign(ops.where(due & ops.isfinite(length), moved, pl_mean))
        counted = due & ops.isfinite(penalty)
        self._trackers["pl"].update_state(ops.where(counted, penalty, 0.0),
                                          sample_weight=ops.cast(counted, "float32"))
        return [p if g is None else g + p for g, p in zip(grads, pl_grads, strict=True)]

    def _path_length_gradients(self, batch, step):
        """The scaled gradient of pl_weight x pl_interval x E[(a - pl_mean)^2] on a
        fresh global batch / pl_batch_shrink, this replica's mean length, the penalty."""
        size = max(batch // self.pl_batch_shrink, 1) if isinstance(batch, int) else (
            ops.maximum(batch // self.pl_batch_shrink, 1))
        z_seed, label_seed, noise_seed = (self._style_seed(step, self._streams.path_length(draw))
                                          for draw in ("z", "labels", "y"))
        z = randomness.global_normal(size, [self.latent_dim], z_seed)
        labels = (randomness.global_labels(size, self.num_classes, label_seed)
                  if self.num_classes else None)

        def loss():
            _, ws, synthesize = self._styles(z, labels, step, self.d_steps + 1)
            noise = path_length_noise(size, self.image_shape, noise_seed)
            lengths = path_lengths(synthesize, ws, noise)
            penalty = path_length_penalty(lengths, self.pl_mean.value)
            weight = self.pl_weight * self.pl_interval / randomness.count()
            return self.g_optimizer.scale_loss(penalty * weight), (ops.mean(lengths), penalty)

        _, (length, penalty), grads = self._backend.value_and_grad(
            loss, self.generator.trainable_variables)
        return grads, length, penalty

    def _style_seed(self, step, stream):
        """A stateless seed for a style-based generator's extra draws, with a counter
        below zero (disjoint from `_seed`'s; `StreamLayout`)."""
        return randomness.seed(self.seed, self._streams.style_counter(step, stream))

    def style_mix(self, seeds_a, seeds_b, cutoff: int, labels=None, truncation=None,
                  batch_size: int = 256):
        """Style mixing of a style-based generator (`kgan.gan.sampling.style_mix_images`):
        image i takes ws[:cutoff] (coarse styles) from seed seeds_a[i] and the rest from
        seeds_b[i], with seeds_a[i]'s noise; float32 NumPy images in [-1, 1]."""
        return style_mix_images(
            self.sampling_generator, self.latent_dim, self.num_classes, seeds_a, seeds_b,
            cutoff, labels=labels, truncation=truncation, batch_size=batch_size)
