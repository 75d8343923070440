"""The GAN a `TrainConfig` describes: its networks, EMA, augmentation, losses, penalties
and (ramped) Adam, built and compiled. TensorFlow-free, so the JAX-only machines build a
preset's GAN as `train.py` does (benchmarks/network_throughput_jax.py)."""

from __future__ import annotations

import keras

from kgan.gan import GAN, schedules
from kgan.training.config import NO_AUGMENT, ConfigError, TrainConfig

__all__ = ["build_gan"]


def build_gan(config: TrainConfig, num_classes: int | None, jit_compile: bool = False,
              steps_per_epoch: int = 1) -> GAN:
    """Builds and compiles the GAN a config describes (call inside the strategy scope)."""
    num_classes = num_classes if config.conditional else None
    try:
        generator, discriminator = config.family(
            config.resolution, config.channels, config.latent_dim, num_classes=num_classes,
            **config.network_args)
    except ValueError as error:
        raise ConfigError(f"network {config.network!r}: {error}") from None
    ramp = _Ramp(config, steps_per_epoch)
    augment = _augment(config)
    # Style options (style_mixing, pl_weight) on a generator without a mapping network,
    # like steps_per_execution under MirroredStrategy, are refused as config errors.
    gan = _refusing_config_errors(GAN)(
        generator, discriminator, config.latent_dim, num_classes=num_classes,
        d_steps=config.d_steps, ema_decay=config.ema_decay,
        ema_half_life=ramp.ema_half_life(),
        ema_rampup=config.ema_rampup, augment=augment, seed=config.seed,
        style_mixing=config.style_mixing)
    _refusing_config_errors(gan.compile)(
        steps_per_execution=config.steps_per_execution,
        d_optimizer=ramp.adam(config.lr_d, config.d_steps),
        g_optimizer=ramp.adam(config.lr_g, 1),
        loss=config.loss, gradient_penalty=config.gradient_penalty,
        r1_gamma=ramp.gamma(config.r1_gamma), r2_gamma=ramp.gamma(config.r2_gamma),
        augment_probability=ramp.augment_probability(augment),
        reg_interval=config.reg_interval, pl_weight=config.pl_weight,
        pl_interval=config.pl_interval, jit_compile=jit_compile,
    )
    return gan


def _refusing_config_errors(call):
    """`call`, with its ValueError (e.g. steps_per_execution under MirroredStrategy) as a
    one-line ConfigError."""

    def wrapped(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except ValueError as error:
            raise ConfigError(str(error)) from None

    return wrapped


class _Ramp:
    """The config's cosine ramps as `kgan.schedules` objects (constants without them)."""

    def __init__(self, config: TrainConfig, steps_per_epoch: int):
        self.config = config
        self.steps = config.ramp_epochs * steps_per_epoch if config.ramp_epochs else None

    def adam(self, lr: float, updates_per_step: int) -> keras.optimizers.Optimizer:
        c = self.config
        if not self.steps:
            return keras.optimizers.Adam(lr, beta_1=c.beta1, beta_2=c.beta2,
                                         epsilon=c.adam_epsilon)
        duration = self.steps * updates_per_step  # in the optimizer's own iterations
        beta_2 = (c.beta2 if c.beta2_start is None
                  else schedules.Cosine(c.beta2_start, c.beta2, duration))
        return schedules.ScheduledAdam(
            schedules.Cosine(lr, lr * c.lr_final_ratio, duration), beta_1=c.beta1, beta_2=beta_2,
            epsilon=c.adam_epsilon)

    def ema_half_life(self):
        """In images; with the ramp and no ema_rampup cap, a cosine from 0 (R3GAN)."""
        c = self.config
        if not c.ema_kimg:
            return None
        if not self.steps or c.ema_rampup is not None:
            return c.ema_kimg * 1000
        return schedules.Cosine(0.0, c.ema_kimg * 1000, self.steps)

    def gamma(self, gamma: float):
        if not self.steps or gamma == 0:
            return gamma
        return schedules.Cosine(gamma, gamma * self.config.gamma_final_ratio, self.steps)

    def augment_probability(self, augment):
        if augment is None or self.config.ada_target is not None or not self.steps:
            return None
        return schedules.Cosine(0.0, self.config.augment_p, self.steps)


def _augment(config: TrainConfig):
    if config.augment == NO_AUGMENT:
        return None
    from kgan.gan.augment import Augment

    adaptive = config.ada_target is not None
    return Augment(config.augment, initial_probability=0.0 if adaptive else config.augment_p,
                   adaptive=adaptive, target=config.ada_target or 0.6, kimg=config.ada_kimg)
