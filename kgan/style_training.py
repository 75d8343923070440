"""StyleGAN2's training maths for style-based generators (those with `mapping` and
`synthesis`), as pure functions that `kgan.GAN` calls; after Karras et al. 2020
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

import numpy as np
import tensorflow as tf

from kgan import replicas
from kgan.sampling import is_style_based

__all__ = ["check_path_length", "check_style_mixing", "global_mean", "is_style_based", "lerp",
           "mapped_ws", "mixing_cutoff", "path_length_noise", "path_length_penalty",
           "path_lengths"]


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


def mixing_cutoff(num_ws: int, probability: float, gate_seed, cutoff_seed) -> tf.Tensor:
    """The batch's mixing cutoff, int32 scalar: U{1, ..., num_ws - 1} with probability
    `probability`, else num_ws (no mixing). Both draws are scalars from seeds every
    replica shares, so all replicas mix the same layers."""
    cutoff = tf.random.stateless_uniform([], cutoff_seed, minval=1, maxval=num_ws,
                                         dtype=tf.int32)
    gate = tf.random.stateless_uniform([], gate_seed)
    return tf.where(gate < probability, cutoff, num_ws)


def mapped_ws(generator, inputs, mixing=None) -> tuple[tf.Tensor, tf.Tensor]:
    """(w [N, w_dim], ws [N, num_ws, w_dim]) of `inputs`; with `mixing` = (second inputs,
    cutoff) the ws from `cutoff` on come from the second inputs' w (reference `run_G`)."""
    w = generator.mapping(inputs)
    ws = generator.broadcast(w)
    if mixing is not None:
        second, cutoff = mixing
        ws = generator.mix_styles(ws, generator.broadcast(generator.mapping(second)), cutoff)
    return w, ws


def path_length_noise(batch, image_shape: tuple, seed) -> tf.Tensor:
    """y ~ N(0, I) / sqrt(H W) [batch, H, W, C]: this replica's rows of one global draw."""
    height, width = image_shape[0], image_shape[1]
    return replicas.global_normal(batch, list(image_shape), seed) / math.sqrt(height * width)


def path_lengths(synthesize, ws, noise) -> tf.Tensor:
    """a_i = sqrt(mean_k sum_d g_ikd^2), g = d sum(synthesize(ws) * noise) / d ws, [N].

    Called under an outer tape, the lengths stay differentiable w.r.t. the generator's
    weights. Under mixed_float16 this inner gradient is NOT multiplied by the loss scale
    (as R1's is): its values are sums over pixels and channels of order 1, which a scale
    of 2^15 overflows in float16 layers; unscaled they are well inside float16's range
    (the reference computes them unscaled in float16 too). The outer gradient is scaled.
    """
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        tape.watch(ws)
        product = tf.reduce_sum(synthesize(ws) * noise)
    grads = tape.gradient(product, ws)
    return tf.sqrt(tf.reduce_mean(tf.reduce_sum(tf.square(grads), axis=2), axis=1))


def path_length_penalty(lengths, pl_mean) -> tf.Tensor:
    """mean_i (a_i - pl_mean)^2, pl_mean held constant."""
    return tf.reduce_mean(tf.square(lengths - tf.stop_gradient(pl_mean)))


def lerp(value, target, rate) -> tf.Tensor:
    """value + rate (target - value): an exponential moving average step."""
    return value + rate * (target - value)


def global_mean(value) -> tf.Tensor:
    """The mean of `value` over all replicas (each replica passes its local mean of an
    equal share of the global batch); the value itself on one device. Call it in replica
    context, never inside a `tf.cond`."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    return context.all_reduce(tf.distribute.ReduceOp.MEAN, value)
