"""The DCGAN family (Radford et al., 2016): the 0.1 baseline, fast and simple.

Functional `keras.Model`s whose last layer computes in float32 (`dtype="float32"`), so
logits and images stay float32 under any mixed-precision policy (design.md, rule 3).
"""

from __future__ import annotations

import math

import keras
from keras import layers

from kgan.networks import MAX_RESOLUTION, MIN_RESOLUTION
from kgan.networks.families.common import ConditionalBatchNormalization, SyncBatchNormalization
from kgan.networks.families.stylegan2_layers import MinibatchStdDev

CONDITIONINGS = ("multiply", "batchnorm")  # how a conditional G takes its class


def dcgan(
    resolution: int,
    channels: int,
    latent_dim: int,
    num_classes: int | None = None,
    base_filters: int = 64,
    max_filters: int = 512,
    spectral_norm: bool = False,
    conditioning: str = "multiply",
    mbstd_group_size: int = 0,
) -> tuple[keras.Model, keras.Model]:
    """Builds a DCGAN generator and discriminator (Radford et al., 2016).

    The generator upsamples a 4x4 map with stride-2 transposed convolutions and batch
    norm; the discriminator mirrors it with stride-2 convolutions and leaky ReLU, and no
    batch norm, so gradient penalties stay per-example. With `num_classes`, D adds a
    projection term (Miyato & Koyama, 2018) and G takes the class as `conditioning` says.

    Args:
        resolution: image side in pixels, a power of two in [8, 256].
        channels: 1 (grayscale) or 3 (RGB) image channels.
        latent_dim: length of the noise vector z.
        num_classes: number of classes for a conditional pair, or None.
        base_filters: filters of the widest-resolution layer; width doubles per halving.
        max_filters: cap on filters in any layer.
        spectral_norm: wrap D's convolutions and dense layers in spectral normalization.
        conditioning: how a conditional G takes its class: "multiply" multiplies z by a
            learned class embedding (kgan 0.1's); "batchnorm" gives every batch norm a
            per-class gain and bias (de Vries et al. 2017, as SNGAN and BigGAN do).
        mbstd_group_size: append D's minibatch standard deviation over groups of this
            many examples at 4x4 (Karras et al. 2018), a diversity signal; 0: none.

    Returns:
        `(generator, discriminator)`.

    Example:
        >>> g, d = dcgan(resolution=32, channels=1, latent_dim=64)
        >>> g.output_shape, d.output_shape
        ((None, 32, 32, 1), (None, 1))
    """
    _check_dcgan_args(resolution, channels, latent_dim, num_classes, base_filters,
                      conditioning, mbstd_group_size)
    widths = _widths(resolution, base_filters, max_filters)
    generator = _dcgan_generator(resolution, channels, latent_dim, num_classes, widths,
                                 conditioning)
    discriminator = _dcgan_discriminator(resolution, channels, num_classes, widths, spectral_norm,
                                         mbstd_group_size)
    return generator, discriminator


build = dcgan

def _check_dcgan_args(resolution, channels, latent_dim, num_classes, base_filters,
                      conditioning, mbstd_group_size) -> None:
    if (
        not isinstance(resolution, int)
        or resolution < MIN_RESOLUTION
        or resolution > MAX_RESOLUTION
        or resolution & (resolution - 1)
    ):
        raise ValueError(
            f"resolution must be a power of two from {MIN_RESOLUTION} to {MAX_RESOLUTION}, "
            f"got {resolution!r}. Resize your data to e.g. 32 or 64."
        )
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels!r}.")
    if latent_dim < 1:
        raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}.")
    if num_classes is not None and num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 or None, got {num_classes!r}.")
    if base_filters < 1:
        raise ValueError(f"base_filters must be a positive integer, got {base_filters!r}.")
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got "
                         f"{conditioning!r}.")
    if isinstance(mbstd_group_size, bool) or not isinstance(mbstd_group_size, int) or (
            mbstd_group_size < 0 or mbstd_group_size == 1):
        raise ValueError(f"mbstd_group_size must be 0 (off) or an integer >= 2, got "
                         f"{mbstd_group_size!r}.")


def _widths(resolution: int, base_filters: int, max_filters: int) -> list[int]:
    """Filters per resolution stage, from 4x4 up to `resolution` (widest at 4x4)."""
    stages = int(math.log2(resolution)) - 2
    return [min(base_filters * 2 ** (stages - i), max_filters) for i in range(stages + 1)]


def _dcgan_generator(resolution, channels, latent_dim, num_classes, widths,
                     conditioning) -> keras.Model:
    z = keras.Input((latent_dim,), name="z")
    inputs = [z]
    x = z
    norm_label = None  # the labels that pick each batch norm's gain and bias
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        if conditioning == "batchnorm":
            norm_label = label
        else:
            x = layers.Multiply()([z, layers.Embedding(num_classes, latent_dim)(label)])

    def norm(x):
        if norm_label is None:
            return _batch_norm()(x)
        return ConditionalBatchNormalization(num_classes)([x, norm_label])

    x = layers.Dense(4 * 4 * widths[0], use_bias=False)(x)
    x = layers.Reshape((4, 4, widths[0]))(x)
    x = layers.ReLU()(norm(x))
    for width in widths[1:]:
        x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(x)
        x = layers.ReLU()(norm(x))
    images = layers.Conv2D(
        channels, 3, padding="same", activation="tanh", dtype="float32", name="images"
    )(x)
    return keras.Model(inputs if num_classes else z, images, name="generator")


def _dcgan_discriminator(resolution, channels, num_classes, widths, spectral_norm,
                         mbstd_group_size) -> keras.Model:
    def maybe_sn(layer):
        # The wrapper computes the output, so it must carry the layer's dtype policy too.
        if not spectral_norm:
            return layer
        return layers.SpectralNormalization(layer, dtype=layer.dtype_policy)

    images = keras.Input((resolution, resolution, channels), name="images")
    x = images
    for width in reversed(widths[:-1]):
        x = maybe_sn(layers.Conv2D(width, 4, strides=2, padding="same"))(x)
        x = layers.LeakyReLU(0.2)(x)
    if mbstd_group_size:
        x = MinibatchStdDev(mbstd_group_size, name="mbstd")(x)
    features = layers.Flatten()(x)
    logits = maybe_sn(layers.Dense(1, dtype="float32", name="logits"))(features)
    if not num_classes:
        return keras.Model(images, logits, name="discriminator")
    label = keras.Input((), dtype="int32", name="label")
    embedded = layers.Embedding(num_classes, features.shape[-1])(label)
    projection = layers.Dot(axes=1, dtype="float32")([embedded, features])
    logits = layers.Add(dtype="float32")([logits, projection])
    return keras.Model([images, label], logits, name="discriminator")


def _batch_norm() -> layers.BatchNormalization:
    # Synchronized: statistics over the global batch, so N replicas train like one device.
    return SyncBatchNormalization()
