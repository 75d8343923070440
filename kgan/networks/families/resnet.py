"""The ResNet family: SNGAN (Miyato et al., ICLR 2018) / BigGAN (Brock et al., ICLR 2019).

G: z -> linear -> 4x4 map -> up-blocks -> BN, ReLU, 3x3 conv, tanh. An up-block is
`BN, ReLU, nearest 2x, conv3x3, BN, ReLU, conv3x3` plus a shortcut `nearest 2x, conv1x1`.
Batch norm is synchronized, so N replicas use the global batch's statistics (design.md,
rule 2). With classes, G's block norms are conditional (per-class gain and bias, Miyato &
Koyama 2018; de Vries et al. 2017).

D: every layer spectrally normalised; down-blocks `ReLU, conv3x3, ReLU, conv3x3, avgpool`
plus a shortcut `conv1x1, avgpool`; the first block is SNGAN's "optimized" one (no leading
ReLU, shortcut pools first), D downsamples to 4x4 then adds one block without pooling, then
ReLU, sum over space, linear. With classes, a projection term `<embed(y), h>` is added
(Miyato & Koyama 2018). D has no batch norm.

Widths: the block at resolution r has `width * min(resolution / r, max_multiplier)`
channels, so widths double with each halving. `g_width=64, d_width=64, max_multiplier=16`
at 128 px is the SNGAN ImageNet architecture (G 1024 ... 64, D 64 ... 1024);
`max_multiplier=1` keeps widths constant like SNGAN's CIFAR-10 nets (SNGAN's CIFAR D keeps
its last two blocks at 8x8, this one goes down to 4x4).

Usual recipe: `loss="hinge"`, Adam(2e-4, beta_1=0, beta_2=0.999) for both networks,
`d_steps` (n_dis) 5 for SNGAN, 2 for BigGAN-like setups; latent_dim 128.

Example:
    >>> g, d = kgan.networks.get("resnet")(32, 3, latent_dim=128, **SIZES["cifar32"])
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from kgan.networks.families.common import ConditionalBatchNormalization, SyncBatchNormalization

# Recommended sizes: tiny for a 32 px digits demo on CPU, cifar32 = SNGAN's CIFAR-10 widths
# (G 256, D 128), imagenet128 = SNGAN's 128 px projection-discriminator widths.
SIZES = {
    "tiny": dict(g_width=32, d_width=32, max_multiplier=2),
    "cifar32": dict(g_width=256, d_width=128, max_multiplier=1),
    "imagenet128": dict(g_width=64, d_width=64, max_multiplier=16),
}
MIN_RESOLUTION = 16
MAX_RESOLUTION = 128
# SNGAN initialises residual convs with Glorot-uniform gain sqrt(2), shortcuts with gain 1.
RESIDUAL_INIT = dict(class_name="VarianceScaling",
                     config=dict(scale=2.0, mode="fan_avg", distribution="uniform"))


@keras.saving.register_keras_serializable(package="kgan")
class GlobalSumPooling2D(layers.Layer):
    """Sum over height and width (SNGAN's D pools by summing, not averaging)."""

    def call(self, inputs):
        return ops.sum(inputs, axis=(1, 2))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1])


def resnet(resolution: int, channels: int, latent_dim: int, num_classes: int | None = None,
           g_width: int = 64, d_width: int = 64,
           max_multiplier: int = 16) -> tuple[keras.Model, keras.Model]:
    """Builds an SNGAN/BigGAN-style residual generator and spectrally normalised D.

    Args:
        resolution: image side, a power of two in [16, 128].
        channels: image channels.
        latent_dim: length of z.
        num_classes: classes of a conditional pair (conditional BN in G, projection in
            D), or None.
        g_width: channels of G's last (full-resolution) block.
        d_width: channels of D's first (full-resolution) block.
        max_multiplier: widths double per halving of resolution up to this multiple of
            `g_width` / `d_width` (1: constant widths).

    Returns:
        `(generator, discriminator)`; G's output is tanh, D's logits are linear.
    """
    _check(resolution, channels, latent_dim, num_classes, g_width, d_width, max_multiplier)
    g_widths = _widths(resolution, g_width, max_multiplier)
    d_widths = _widths(resolution, d_width, max_multiplier)[::-1]
    generator = _generator(channels, latent_dim, num_classes, g_widths)
    discriminator = _discriminator(resolution, channels, num_classes, d_widths)
    return generator, discriminator


build = resnet


def _check(resolution, channels, latent_dim, num_classes, g_width, d_width,
           max_multiplier) -> None:
    if (not isinstance(resolution, int) or isinstance(resolution, bool)
            or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1)):
        raise ValueError(f"resnet needs a resolution that is a power of two from "
                         f"{MIN_RESOLUTION} to {MAX_RESOLUTION}, got {resolution!r}.")
    for name, value in (("channels", channels), ("latent_dim", latent_dim),
                        ("g_width", g_width), ("d_width", d_width),
                        ("max_multiplier", max_multiplier)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"resnet option {name} must be a positive integer, got {value!r}.")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
        raise ValueError(f"num_classes must be an integer >= 2 or None, got {num_classes!r}.")


def _widths(resolution: int, width: int, max_multiplier: int) -> list[int]:
    """Channels at 4x4, 8x8, ..., resolution: `width * min(resolution / r, max_multiplier)`."""
    sides = [4 * 2**i for i in range(int(math.log2(resolution)) - 1)]
    return [width * min(resolution // side, max_multiplier) for side in sides]


def _conv(width: int, kernel: int, name: str, residual: bool = True, **kwargs) -> layers.Conv2D:
    init = RESIDUAL_INIT if residual else "glorot_uniform"
    return layers.Conv2D(width, kernel, padding="same", kernel_initializer=init, name=name,
                         **kwargs)


def _generator(channels, latent_dim, num_classes, widths) -> keras.Model:
    z = keras.Input((latent_dim,), name="z")
    label = keras.Input((), dtype="int32", name="label") if num_classes else None

    def norm(x, name):
        if label is None:
            return SyncBatchNormalization(name=name)(x)
        return ConditionalBatchNormalization(num_classes, name=name)([x, label])

    x = layers.Dense(4 * 4 * widths[0], name="dense")(z)
    x = layers.Reshape((4, 4, widths[0]), name="basis")(x)
    for width in widths[1:]:
        name = f"g{2 * x.shape[1]}"
        shortcut = layers.UpSampling2D(2, name=f"{name}_shortcut_up")(x)
        shortcut = _conv(width, 1, f"{name}_shortcut", residual=False)(shortcut)
        y = layers.ReLU(name=f"{name}_relu1")(norm(x, f"{name}_norm1"))
        y = layers.UpSampling2D(2, name=f"{name}_up")(y)
        y = _conv(width, 3, f"{name}_conv1")(y)
        y = layers.ReLU(name=f"{name}_relu2")(norm(y, f"{name}_norm2"))
        y = _conv(width, 3, f"{name}_conv2")(y)
        x = layers.Add(name=f"{name}_add")([shortcut, y])
    x = SyncBatchNormalization(name="output_norm")(x)
    x = layers.ReLU(name="output_relu")(x)
    images = layers.Conv2D(channels, 3, padding="same", activation="tanh", dtype="float32",
                           name="images")(x)
    inputs = [z, label] if num_classes else z
    return keras.Model(inputs, images, name="generator")


def _sn(layer: layers.Layer) -> layers.SpectralNormalization:
    # The wrapper computes the output, so it carries the wrapped layer's dtype policy.
    return layers.SpectralNormalization(layer, dtype=layer.dtype_policy,
                                        name=f"{layer.name}_sn")


def _discriminator(resolution, channels, num_classes, widths) -> keras.Model:
    """`widths` lists channels from the full resolution down to 4x4."""
    images = keras.Input((resolution, resolution, channels), name="images")
    x = images
    for index, width in enumerate(widths):
        name = f"d{x.shape[1]}"
        first, pool = index == 0, index < len(widths) - 1
        y = x if first else layers.ReLU(name=f"{name}_relu1")(x)
        y = _sn(_conv(width, 3, f"{name}_conv1"))(y)
        y = _sn(_conv(width, 3, f"{name}_conv2"))(layers.ReLU(name=f"{name}_relu2")(y))
        shortcut = x
        if first:  # SNGAN's optimized block: pool, then the 1x1 conv
            shortcut = layers.AveragePooling2D(2, name=f"{name}_shortcut_pool")(shortcut)
        if first or x.shape[-1] != width or pool:
            shortcut = _sn(_conv(width, 1, f"{name}_shortcut", residual=False))(shortcut)
        if pool:
            y = layers.AveragePooling2D(2, name=f"{name}_pool")(y)
            if not first:
                shortcut = layers.AveragePooling2D(2, name=f"{name}_shortcut_pool")(shortcut)
        x = layers.Add(name=f"{name}_add")([shortcut, y])
    features = GlobalSumPooling2D(name="sum_pool")(layers.ReLU(name="features_relu")(x))
    logits = _sn(layers.Dense(1, dtype="float32", name="linear"))(features)
    if not num_classes:
        return keras.Model(images, logits, name="discriminator")
    label = keras.Input((), dtype="int32", name="label")
    # The class embedding as a spectrally normalised linear map of the one-hot label: Keras's
    # SpectralNormalization casts its output to its input's dtype, int32 for an Embedding.
    one_hot = layers.CategoryEncoding(num_classes, output_mode="one_hot", dtype="float32",
                                      name="label_one_hot")(label)
    embedded = _sn(layers.Dense(widths[-1], use_bias=False, dtype="float32",
                                name="label_embedding"))(one_hot)
    projection = layers.Dot(axes=1, dtype="float32", name="projection")([embedded, features])
    logits = layers.Add(dtype="float32", name="logits")([logits, projection])
    return keras.Model([images, label], logits, name="discriminator")
