"""Seed-addressed sampling shared by training, `GAN.generate` and the export.

Each latent vector is a pure function of one integer seed (stateless random ops),
so a seed gives the same image alone, in any batch, in Python and in TF Serving.
"""

from __future__ import annotations

import tensorflow as tf

# Second seed word for latents; labels use another so the two streams never collide.
_LATENT_STREAM = 0x5EED
_LABEL_STREAM = 0x1ABE


def latents_from_seeds(seeds: tf.Tensor, latent_dim: int) -> tf.Tensor:
    """Maps int seeds [N] to standard-normal latents [N, latent_dim], one per seed.

    Example:
        >>> z = latents_from_seeds(tf.constant([0, 1], tf.int64), 8)   # [2, 8] float32
    """
    seeds = tf.cast(tf.convert_to_tensor(seeds), tf.int64)

    def one(seed: tf.Tensor) -> tf.Tensor:
        pair = tf.stack([seed, tf.constant(_LATENT_STREAM, tf.int64)])
        return tf.random.stateless_normal([latent_dim], seed=pair, dtype=tf.float32)

    return tf.map_fn(one, seeds, fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))


def labels_from_seeds(seeds: tf.Tensor, num_classes: int) -> tf.Tensor:
    """Cycles seeds through the classes (seed % num_classes), int32 [N].

    Consecutive seeds then cover every class, which makes sample grids readable.
    """
    seeds = tf.cast(tf.convert_to_tensor(seeds), tf.int64)
    return tf.cast(tf.math.floormod(seeds, num_classes), tf.int32)
