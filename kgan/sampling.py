"""Seed-addressed sampling shared by training, `GAN.generate` and the export.

Each latent vector is a pure function of one integer seed (stateless random ops),
so a seed gives the same image alone, in any batch, in Python and in TF Serving.
"""

from __future__ import annotations

import numpy as np
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


def sample_images(
    generator, latent_dim: int, num_classes: int | None, n_or_z,
    seed: int | None = None, labels=None, batch_size: int = 256,
) -> np.ndarray:
    """Runs `generator` on seed-addressed (or given) latents; float32 NumPy images.

    With a number n and `seed` s, image i comes from `latents_from_seeds(s + i)`, which is
    what the export's `generate` signature computes; None draws fresh seeds. Labels of a
    conditional generator default to `labels_from_seeds` (or i % num_classes for given
    latents). Runs in chunks of `batch_size` to bound memory.
    """
    seeds = None
    if isinstance(n_or_z, (int, np.integer)):
        if n_or_z < 1:
            raise ValueError(f"Number of images must be >= 1, got {n_or_z}.")
        start = np.random.randint(0, 2**31) if seed is None else int(seed)
        seeds = np.arange(start, start + int(n_or_z), dtype=np.int64)
        z = latents_from_seeds(seeds, latent_dim).numpy()
    else:
        z = np.asarray(n_or_z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != latent_dim:
            raise ValueError(f"Latents must have shape [N, {latent_dim}], got {list(z.shape)}.")
    labels = _sampling_labels(len(z), num_classes, seeds, labels)
    chunks = []
    for start in range(0, len(z), batch_size):
        inputs = z[start : start + batch_size]
        if labels is not None:
            inputs = [inputs, labels[start : start + batch_size]]
        chunks.append(np.asarray(generator(inputs, training=False), np.float32))
    return np.concatenate(chunks)


def _sampling_labels(n: int, num_classes: int | None, seeds, labels):
    if not num_classes:
        return None
    if labels is None:
        return labels_from_seeds(seeds if seeds is not None else np.arange(n), num_classes).numpy()
    labels = np.asarray(labels, dtype=np.int32).reshape(-1)
    if len(labels) != n or labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must be {n} integers in [0, {num_classes}), got {labels.tolist()}."
        )
    return labels
