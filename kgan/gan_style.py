"""The GAN's hooks for style-based generators (StyleGAN2): training forwards with
stateless noise and style mixing, path-length regularisation, and style-mixed sampling.

A generator is style-based when it has `mapping` and `synthesis` networks; the maths is
in `kgan.style_training`. `GAN` mixes these methods in, so gan.py shows the generic step.
"""

from __future__ import annotations

import tensorflow as tf

from kgan import replicas, style_training
from kgan.sampling import style_mix_images

# A style-based generator's forward passes draw more (noise, mixing gate, cutoff, second
# z), 4 per pass: one pass per D step, the G step, the path-length pass, and 4 more for
# the latter's z, labels and y. They count below zero, so `GAN._seed`'s streams keep their
# numbers and runs of other generators stay bit-identical.
STYLE_STREAMS_PER_PASS = 4


class StyleHooks:
    """Mixed into `kgan.GAN`; every method reads the GAN's own attributes."""

    def _fakes(self, z, labels, step, pass_index):
        """Training G(z) and its w (None unless style-based; then with this pass's
        stateless noise and style mixing, `kgan.style_training`)."""
        if not self.style_based:
            return self.generator(self._generator_inputs(z, labels), training=True), None
        w, ws, synthesize = self._styles(z, labels, step, pass_index)
        return synthesize(ws), w

    def _styles(self, z, labels, step, pass_index):
        """w, the (mixed) ws and the synthesis with this pass's noise: one forward pass."""
        first = pass_index * STYLE_STREAMS_PER_PASS
        noise, gate, cutoff, second = (self._style_seed(step, first + k) for k in range(4))
        mixing = None
        if self.style_mixing:
            z_b = replicas.global_normal(tf.shape(z)[0], [self.latent_dim], second)
            mixing = (self._generator_inputs(z_b, labels), style_training.mixing_cutoff(
                self.generator.num_ws, self.style_mixing, gate, cutoff))
        w, ws = style_training.mapped_ws(self.generator, self._generator_inputs(z, labels),
                                         mixing)
        return w, ws, lambda ws: self.generator.synthesis(ws, seed=noise)

    def _add_path_length(self, grads, batch, step):
        """Adds the path-length penalty's gradient every `pl_interval` G steps (lazy, as
        R1), then moves pl_mean toward the global mean length: after the cond, because
        the all-reduce must not run inside it (`kgan.style_training`, difference 2)."""
        due = tf.equal(step % self.pl_interval, 0)
        variables = self.generator.trainable_variables

        def skipped():
            return [tf.zeros_like(v) for v in variables], tf.constant(0.0), tf.constant(0.0)

        pl_grads, length, penalty = tf.cond(
            due, lambda: self._path_length_gradients(batch, step), skipped)
        # A float16 overflow (the step is then skipped) must not poison pl_mean for good.
        length = style_training.global_mean(length)
        moved = style_training.lerp(self.pl_mean, length, self.pl_decay)
        self.pl_mean.assign(tf.where(due & tf.math.is_finite(length), moved, self.pl_mean))
        counted = due & tf.math.is_finite(penalty)
        self._trackers["pl"].update_state(tf.where(counted, penalty, 0.0),
                                          sample_weight=tf.cast(counted, tf.float32))
        return [p if g is None else g + p for g, p in zip(grads, pl_grads, strict=True)]

    def _path_length_gradients(self, batch, step):
        """The scaled gradient of pl_weight x pl_interval x E[(a - pl_mean)^2] on a
        fresh global batch / pl_batch_shrink, this replica's mean length, the penalty."""
        size = tf.maximum(batch // self.pl_batch_shrink, 1)
        first = (self.d_steps + 2) * STYLE_STREAMS_PER_PASS
        z_seed, label_seed, noise_seed = (self._style_seed(step, first + k) for k in range(3))
        z = replicas.global_normal(size, [self.latent_dim], z_seed)
        labels = (replicas.global_labels(size, self.num_classes, label_seed)
                  if self.num_classes else None)
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            _, ws, synthesize = self._styles(z, labels, step, self.d_steps + 1)
            noise = style_training.path_length_noise(size, self.image_shape, noise_seed)
            lengths = style_training.path_lengths(synthesize, ws, noise)
            penalty = style_training.path_length_penalty(lengths, self.pl_mean)
            weight = self.pl_weight * self.pl_interval / replicas.count()
            scaled = self.g_optimizer.scale_loss(penalty * weight)
        grads = [tf.zeros_like(v) if g is None else g
                 for g, v in zip(tape.gradient(scaled, variables), variables, strict=True)]
        return grads, tf.reduce_mean(lengths), penalty

    def _style_seed(self, step, stream):
        """A stateless seed for a style-based generator's extra draws, with a counter
        below zero (disjoint from `_seed`'s)."""
        streams = (self.d_steps + 3) * STYLE_STREAMS_PER_PASS
        counter = -1 - (tf.cast(step, tf.int64) * streams + stream)
        return tf.stack([tf.constant(self.seed, tf.int64), counter])

    def style_mix(self, seeds_a, seeds_b, cutoff: int, labels=None, truncation=None,
                  batch_size: int = 256):
        """Style mixing of a style-based generator (`kgan.sampling.style_mix_images`):
        image i takes ws[:cutoff] (coarse styles) from seed seeds_a[i] and the rest from
        seeds_b[i], with seeds_a[i]'s noise; float32 NumPy images in [-1, 1]."""
        return style_mix_images(
            self.sampling_generator, self.latent_dim, self.num_classes, seeds_a, seeds_b,
            cutoff, labels=labels, truncation=truncation, batch_size=batch_size)
