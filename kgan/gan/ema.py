"""The EMA generator (Karras et al., 2018; StyleGAN2-ADA's half-life in images with
ramp-up): ema <- w + beta (ema - w) after every train step."""

from __future__ import annotations

from keras import models, ops

from kgan.gan import backends, randomness, schedules


def beta(step, local_batch, decay=None, half_life=None, rampup=None):
    """This step's EMA decay: constant, or 0.5 ** (global batch / half-life), the
    half-life capped at `rampup` x images seen so far."""
    if decay is not None:
        return ops.convert_to_tensor(decay, "float32")
    batch = ops.cast(local_batch, "float32") * randomness.count()
    life = schedules.value_at(half_life, step)
    if rampup is not None:
        seen = (ops.cast(step, "float32") + 1.0) * batch
        life = ops.minimum(life, seen * rampup)
    return ops.power(0.5, batch / ops.maximum(life, 1e-8))


def update(ema_generator, generator, beta_) -> None:
    """ema <- w + beta (ema - w) for trainable weights; batch-norm statistics follow G.
    In replica context: G's weights, and so the update, are identical on every replica,
    and the EMA variables keep the first replica's value."""
    for ema, weight in zip(ema_generator.weights, generator.weights, strict=True):
        if weight.trainable:
            ema.assign(weight + ops.cast(beta_, weight.dtype) * (ema - weight))
        else:
            ema.assign(weight)


def clone(generator):
    """A frozen copy of G with its weights."""
    with backends.current().first_replica_variables():
        copy = models.clone_model(generator)
    copy.set_weights(generator.get_weights())
    copy.trainable = False
    return copy
