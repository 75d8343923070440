"""The GAN's regularisers and weight averaging: R1/R2 from the loss's own D pass, WGAN-GP
through the augmentation, and the EMA generator (decay or half-life with ramp-up).

`GAN` mixes these methods in, so gan.py shows the train step itself.
"""

from __future__ import annotations

import tensorflow as tf
from keras import Model, models, optimizers

from kgan import gan_options, losses, replicas, schedules


class Regularisers:
    """Mixed into `kgan.GAN`; every method reads the GAN's own attributes."""

    def _penalty_names(self) -> list[str]:
        return [name for name, gamma in (("r1", self.r1_gamma), ("r2", self.r2_gamma))
                if schedules.is_active(gamma)]

    def _penalty_scale(self):
        """The loss scale under mixed_float16 (1 otherwise): the logit sum is multiplied by
        it so the float16 backward pass through D does not underflow, and the input
        gradients divided back after."""
        if isinstance(self.d_optimizer, optimizers.LossScaleOptimizer):
            return tf.cast(self.d_optimizer.dynamic_scale, tf.float32)
        return tf.constant(1.0)

    def _zero_centered_penalties(self, input_tape, summed, real, fake) -> dict:
        """R1 and R2 values from the input gradients of the loss's own forward pass
        (`summed`: the scaled sum of its real and fake logits)."""
        real_grads, fake_grads = input_tape.gradient(summed, [real, fake])
        scale = self._penalty_scale()
        values = {}
        for name, grads in (("r1", real_grads), ("r2", fake_grads)):
            if name in self._penalty_names():
                values[name] = losses.squared_gradient_norm(grads / tf.cast(scale, grads.dtype))
        return values

    def _wgan_gp(self, real, fake, labels, alpha_seed, augment_seed):
        """WGAN-GP at x_hat = a x + (1 - a) G(z), augmented as the real batch was."""
        alpha = replicas.global_uniform(tf.shape(real)[0], alpha_seed)

        def critic(images):
            return self._critic(self._augmented(images, augment_seed), labels)

        return losses.gradient_penalty(critic, real, fake, alpha)

    def ema_beta(self, step, local_batch) -> tf.Tensor:
        """This step's EMA decay: constant, or 0.5 ** (global batch / half-life)."""
        if self.ema_decay is not None:
            return tf.constant(self.ema_decay, tf.float32)
        batch = tf.cast(local_batch, tf.float32) * replicas.count()
        half_life = schedules.value_at(self.ema_half_life, step)
        if self.ema_rampup is not None:
            seen = (tf.cast(step, tf.float32) + 1.0) * batch
            half_life = tf.minimum(half_life, seen * self.ema_rampup)
        return tf.pow(0.5, batch / tf.maximum(half_life, 1e-8))

    def _update_ema(self, step, local_batch):
        """ema <- w + beta (ema - w), in replica context: G's weights, and so the update,
        are identical on every replica, and the EMA variables keep the first replica's."""
        beta = self.ema_beta(step, local_batch)
        for ema, weight in zip(self.ema_generator.weights, self.generator.weights, strict=True):
            if weight.trainable:
                ema.assign(weight + tf.cast(beta, weight.dtype) * (ema - weight))
            else:  # batch-norm statistics: follow G directly
                ema.assign(weight)

    def _clone_generator(self) -> Model:
        # ONLY_FIRST_REPLICA lets `_update_ema` assign in replica context under a strategy.
        with tf.variable_creator_scope(gan_options.first_replica_aggregation):
            clone = models.clone_model(self.generator)
        clone.set_weights(self.generator.get_weights())
        clone.trainable = False
        return clone
