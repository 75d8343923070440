"""Small MLP pairs for low-dimensional toy data (2-D mixtures in the benchmarks).

Through the registry, `resolution` is the length of the data vectors and `channels`
must be 1: `kgan.networks.get("mlp")(2, 1, latent_dim=8)`.
"""

from __future__ import annotations

import keras
from keras import layers


def mlp(
    data_dim: int, latent_dim: int, hidden: tuple[int, ...] = (64, 64)
) -> tuple[keras.Model, keras.Model]:
    """Builds an MLP generator and discriminator for low-dimensional data (toy mixtures).

    Example:
        >>> g, d = mlp(data_dim=2, latent_dim=8)
    """
    if data_dim < 1 or latent_dim < 1 or not hidden:
        raise ValueError(
            f"mlp() needs data_dim >= 1, latent_dim >= 1 and at least one hidden width; "
            f"got data_dim={data_dim}, latent_dim={latent_dim}, hidden={hidden}."
        )
    z = keras.Input((latent_dim,), name="z")
    x = z
    for width in hidden:
        x = layers.Dense(width, activation="relu")(x)
    generator = keras.Model(z, layers.Dense(data_dim, dtype="float32")(x), name="generator")

    sample = keras.Input((data_dim,), name="images")
    x = sample
    for width in hidden:
        x = layers.Dense(width)(x)
        x = layers.LeakyReLU(0.2)(x)
    logits = layers.Dense(1, dtype="float32", name="logits")(x)
    return generator, keras.Model(sample, logits, name="discriminator")


def build(resolution: int, channels: int, latent_dim: int, num_classes: int | None = None,
          hidden=(64, 64)) -> tuple[keras.Model, keras.Model]:
    """Registry entry point: `resolution` is the data dimension (channels must be 1)."""
    if channels != 1 or num_classes:
        raise ValueError("the mlp family models flat vectors: use channels=1 and no classes "
                         f"(got channels={channels}, num_classes={num_classes})")
    return mlp(resolution, latent_dim, tuple(hidden))
