"""The discriminator's regularizers: R1/R2 from the loss's own D pass and WGAN-GP, both
through the augmentation (design.md rule 4).

R1 (Mescheder et al., 2018) and R2 (R3GAN, Huang et al., 2024) penalise
E||grad_x D(T(x))||^2 at real and generated x. The input gradients come from the
same forward pass that gives the loss (`backend.vjp`), so D runs once per step with or
without them, and the penalty differentiates through the augmentation T that D saw.
"""

from __future__ import annotations

from keras import ops, optimizers

from kgan.gan import losses, randomness, schedules


def active_penalties(r1_gamma, r2_gamma) -> list[str]:
    """The zero-centred penalties that are on: "r1", "r2" or both."""
    return [name for name, gamma in (("r1", r1_gamma), ("r2", r2_gamma))
            if schedules.is_active(gamma)]


def penalty_scale(optimizer):
    """The loss scale under mixed_float16 (1 otherwise): the logit sums are multiplied by
    it so the float16 backward pass through D does not underflow, and the input
    gradients divided back after."""
    if isinstance(optimizer, optimizers.LossScaleOptimizer):
        return ops.cast(optimizer.dynamic_scale, "float32")
    return ops.ones((), "float32")


def zero_centred_penalties(pullback, logits, names: list[str], scale) -> dict:
    """R1 / R2 values from the pullback of the loss's own D pass: `logits` = (real, fake)
    logits of inputs (real, fake); d/d real of the fake logits is zero."""
    cotangents = tuple(ops.ones_like(x) * ops.cast(scale, x.dtype) for x in logits)
    real_grads, fake_grads = pullback(cotangents)
    values = {}
    for name, grads in (("r1", real_grads), ("r2", fake_grads)):
        if name in names:
            values[name] = losses.squared_gradient_norm(grads / ops.cast(scale, grads.dtype))
    return values


def wgan_gp(critic, real, fake, alpha_seed):
    """WGAN-GP at x_hat = a x + (1 - a) G(z) (Gulrajani et al., 2017); `critic` applies
    the augmentation the real batch had. a ~ U[0, 1) per image, one global draw."""
    alpha = randomness.global_uniform(randomness.static_batch(real), [], alpha_seed)
    return losses.gradient_penalty(critic, real, fake, alpha)
