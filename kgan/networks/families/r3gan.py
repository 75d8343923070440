"""R3GAN (Huang et al., NeurIPS 2024, "The GAN is dead; long live the GAN! A modern GAN
baseline"), after the reference code (github.com/brownvc/R3GAN, `R3GAN/Networks.py`).

A ConvNeXt-like pair with no normalisation layers at all:

- residual blocks are inverted bottlenecks, `x + conv1x1(act(gconv3x3(act(conv1x1(x)))))`,
  widening by `expansion` and grouping the 3x3 conv in groups of `group_size` channels;
- fix-up initialisation: every conv is MSR-initialised (std = gain / sqrt(fan_in)), the inner
  gains shrink as L^(-1/4) for L blocks in the network, and each block's last conv starts at
  zero, so every block starts as the identity and the network's variance does not grow with L;
- convs have no bias; the bias lives in the activation (bias + leaky ReLU 0.2);
- resampling is low-pass: bilinear upsampling ([1, 2, 1] after nearest) and [1, 3, 3, 1]
  strided downsampling, both zero-padded at the border, with a 1x1 conv where widths change;
- G starts from a learned 4x4 basis modulated per channel by a linear map of z; D ends in a
  depthwise 4x4 conv and a linear layer. Both outputs are linear (no tanh): exports clip.
- Classes: G concatenates an embedding of the label to z (the reference's; `conditioning=
  "concat"`) or, with `conditioning="gain"`, leaves z alone and gives each of its blocks a
  per-class gain and bias on the block's hidden activations (de Vries et al. 2017's
  conditional affine, without the normalisation R3GAN does not have); D takes the inner
  product of a class embedding with its final features (projection).

D has no cross-sample layers, so a GAN can score real and fake in one call.

Recipe (the paper's): relativistic pairing loss with R1 + R2 (`loss="relativistic"`, equal
gammas, e.g. 0.05 -> 0.005 on CIFAR-10), Adam(2e-4 -> 5e-5, beta_1=0, beta_2 0.9 -> 0.99),
EMA of G, latent_dim 64; `SIZES` holds the reference's network sizes.

Example:
    >>> g, d = kgan.networks.get("r3gan")(32, 1, latent_dim=64, **SIZES["tiny"])
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import layers, ops

from kgan.networks import MAX_RESOLUTION
from kgan.networks.families.common import class_affine

# Recommended sizes. cifar32 and ffhq64 are the reference's CIFAR-10 and FFHQ-64 presets
# (widths 3/4 of [1024, ..., 512], 2 blocks per stage, 16 channels per group, expansion 2);
# tiny trains a 32 px digits demo in minutes on 2 CPU cores.
SIZES = {
    "tiny": dict(widths=[64, 64, 32, 32], blocks_per_stage=1, expansion=2, group_size=16),
    "cifar32": dict(widths=[768, 768, 768, 768], blocks_per_stage=2, expansion=2,
                    group_size=16),
    "ffhq64": dict(widths=[768, 768, 768, 768, 384], blocks_per_stage=2, expansion=2,
                   group_size=16),
}
MIN_RESOLUTION = 8
# How a conditional G takes its class: "concat" the reference's embedding concatenated to z
# (the default, so that saved configs keep their networks); "gain" per-class gains and
# biases inside G's blocks. On Fashion-MNIST at the tiny size, 30 CPU minutes, concat made
# one image per class (recall 0.000, FD 48.6) where gain made varied ones (recall 0.12, FD
# 2.84): benchmarks/RESULTS.md, "R3GAN's conditioning". Full width is unmeasured.
CONDITIONINGS = ("concat", "gain")
LEAK = 0.2
# Gain of leaky ReLU(0.2) for MSR initialisation: sqrt(2 / (1 + 0.2^2)).
ACTIVATION_GAIN = math.sqrt(2 / (1 + LEAK**2))


def msr(gain: float = 1.0) -> keras.initializers.Initializer:
    """MSR (He) initialisation, std = gain / sqrt(fan_in), untruncated as in the reference."""
    return keras.initializers.VarianceScaling(gain**2, "fan_in", "untruncated_normal")


@keras.saving.register_keras_serializable(package="kgan")
class BiasedLeakyReLU(layers.Layer):
    """`leaky_relu(x + bias, 0.2)`: R3GAN's convs have no bias; it lives here (zero-init)."""

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, inputs):
        return ops.leaky_relu(inputs + self.bias, LEAK)


def _lowpass(taps) -> np.ndarray:
    """Separable 2-D low-pass kernel, normalised to sum 1."""
    kernel = np.outer(taps, taps).astype("float64")
    return kernel / kernel.sum()


def _depthwise(inputs, kernel: np.ndarray, strides: int, padding: str, dtype):
    channels = inputs.shape[-1]
    kernel = np.tile(kernel[:, :, None, None], (1, 1, channels, 1))
    kernel = ops.convert_to_tensor(kernel, dtype=dtype)
    return ops.depthwise_conv(inputs, kernel, strides=strides, padding=padding)


@keras.saving.register_keras_serializable(package="kgan")
class LowpassUpsample2D(layers.Layer):
    """2x bilinear upsampling with zeros beyond the border: nearest-neighbour repeat, then the
    [1, 2, 1] filter. Equals the reference's `upfirdn2d.upsample2d` with its [1, 3, 3, 1]
    kernel (y[2i] = (x[i-1] + 3 x[i]) / 4, y[2i+1] = (3 x[i] + x[i+1]) / 4)."""

    def call(self, inputs):
        x = ops.repeat(ops.repeat(inputs, 2, axis=1), 2, axis=2)
        return _depthwise(x, _lowpass([1, 2, 1]), 1, "same", self.compute_dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else 2 * h, None if w is None else 2 * w, c)


@keras.saving.register_keras_serializable(package="kgan")
class LowpassDownsample2D(layers.Layer):
    """2x downsampling by the [1, 3, 3, 1] filter at stride 2, zero-padded by one pixel (the
    [1, 2, 1] filter followed by 2x2 averaging), as the reference's `downsample2d`."""

    def call(self, inputs):
        x = ops.pad(inputs, [[0, 0], [1, 1], [1, 1], [0, 0]])
        return _depthwise(x, _lowpass([1, 3, 3, 1]), 2, "valid", self.compute_dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        return (n, None if h is None else h // 2, None if w is None else w // 2, c)


@keras.saving.register_keras_serializable(package="kgan")
class GroupedConv2D(layers.Conv2D):
    """`Conv2D` whose grouped convolution runs as TensorFlow's own op on TensorFlow.

    Keras 3.15's TensorFlow backend wraps every grouped conv in an XLA-compiled function (a
    CPU workaround for older TensorFlow); TensorFlow 2.21 runs grouped convs natively on CPU
    and GPU, and exported graphs must not be XLA-compiled (design.md, rule 6). Other
    backends use Keras's own convolution.
    """

    def convolution_op(self, inputs, kernel):
        if keras.backend.backend() != "tensorflow":
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        # TensorFlow's CPU kernels have no float16 grouped-conv gradient ("filter_size
        # does not have enough elements"): under mixed_float16 without a GPU, convolve
        # in float32.
        half_on_cpu = inputs.dtype == tf.float16 and not tf.config.list_logical_devices("GPU")
        if half_on_cpu:
            inputs, kernel = tf.cast(inputs, tf.float32), tf.cast(kernel, tf.float32)
        outputs = tf.nn.convolution(inputs, kernel, strides=self.strides,
                                    padding=self.padding.upper(), dilations=self.dilation_rate)
        return tf.cast(outputs, tf.float16) if half_on_cpu else outputs


@keras.saving.register_keras_serializable(package="kgan")
class InvertedBottleneck(layers.Layer):
    """R3GAN's residual block: `x + conv1x1(act(gconv(act(conv1x1(x)))))`, no normalisation.

    Fix-up initialisation (reference `ResidualBlock`): the two inner convs have MSR gain
    `ACTIVATION_GAIN * total_blocks^(-1/4)` (the L^(-1/(2m-2)) rule for m = 3 linear
    layers), the last conv is zero, so the block is the identity at initialisation.

    With `num_classes`, the block is called on `[x, label]` and scales and shifts its hidden
    activations (after the first conv) by the class's gain (init 1) and bias (init 0), so
    the block stays the identity at initialisation and every class starts alike.

    Args:
        expansion: the hidden width is `expansion` times the input width.
        group_size: channels per group of the grouped conv (the hidden width must divide).
        total_blocks: residual blocks in the whole network (L above).
        kernel_size: side of the grouped conv.
        num_classes: classes of a per-class gain and bias, or None for none.
    """

    def __init__(self, expansion: int = 2, group_size: int = 16, total_blocks: int = 1,
                 kernel_size: int = 3, num_classes: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.expansion = expansion
        self.group_size = group_size
        self.total_blocks = total_blocks
        self.kernel_size = kernel_size
        self.num_classes = num_classes

    def build(self, input_shape):
        if self.num_classes:
            input_shape = input_shape[0]
        width = input_shape[-1]
        hidden = width * self.expansion
        if hidden % self.group_size:
            raise ValueError(f"group_size {self.group_size} must divide the hidden width "
                             f"{hidden} (= {width} x expansion {self.expansion}).")
        inner = msr(ACTIVATION_GAIN * self.total_blocks ** -0.25)
        conv = dict(use_bias=False, padding="same", dtype=self.dtype_policy)
        self.expand = layers.Conv2D(hidden, 1, kernel_initializer=inner, name="expand", **conv)
        self.act1 = BiasedLeakyReLU(dtype=self.dtype_policy, name="act1")
        self.grouped = GroupedConv2D(hidden, self.kernel_size, groups=hidden // self.group_size,
                                     kernel_initializer=inner, name="grouped", **conv)
        self.act2 = BiasedLeakyReLU(dtype=self.dtype_policy, name="act2")
        self.project = layers.Conv2D(width, 1, kernel_initializer="zeros", name="project",
                                     **conv)
        if self.num_classes:
            self.class_gain = self.add_weight(shape=(self.num_classes, hidden), name="class_gain",
                                              initializer="ones")
            self.class_bias = self.add_weight(shape=(self.num_classes, hidden), name="class_bias",
                                              initializer="zeros")
        shape = tuple(input_shape)
        self.expand.build(shape)
        self.act1.build((*shape[:-1], hidden))
        self.grouped.build((*shape[:-1], hidden))
        self.act2.build((*shape[:-1], hidden))
        self.project.build((*shape[:-1], hidden))

    def call(self, inputs):
        label = None
        if self.num_classes:
            inputs, label = inputs
        y = self.expand(inputs)
        if label is not None:
            y = class_affine(y, label, self.class_gain, self.class_bias)
        y = self.act2(self.grouped(self.act1(y)))
        return inputs + self.project(y)

    def compute_output_shape(self, input_shape):
        return input_shape[0] if self.num_classes else input_shape

    def get_config(self):
        return {**super().get_config(), "expansion": self.expansion,
                "group_size": self.group_size, "total_blocks": self.total_blocks,
                "kernel_size": self.kernel_size, "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="kgan")
class GenerativeBasis(layers.Layer):
    """G's input layer: a learned 4x4xC basis (N(0, 1) init) scaled per channel by a linear,
    bias-free map of the input vector: `basis[None] * (v @ W)[:, None, None, :]`."""

    def __init__(self, width: int, **kwargs):
        super().__init__(**kwargs)
        self.width = width

    def build(self, input_shape):
        self.basis = self.add_weight(shape=(4, 4, self.width), name="basis",
                                     initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.linear = layers.Dense(self.width, use_bias=False, kernel_initializer=msr(),
                                   dtype=self.dtype_policy, name="linear")
        self.linear.build(input_shape)

    def call(self, inputs):
        return self.basis[None] * self.linear(inputs)[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 4, 4, self.width)

    def get_config(self):
        return {**super().get_config(), "width": self.width}


def r3gan(resolution: int, channels: int, latent_dim: int, num_classes: int | None = None,
          widths=(256, 256, 256, 256, 128, 64, 32), blocks_per_stage: int = 2,
          expansion: int = 2, group_size: int = 16,
          conditioning: str = "concat") -> tuple[keras.Model, keras.Model]:
    """Builds an R3GAN generator and discriminator.

    Args:
        resolution: image side, a power of two in [8, 256].
        channels: image channels.
        latent_dim: length of z (the reference uses 64).
        num_classes: classes of a conditional pair, or None.
        widths: channels per stage, `widths[i]` at 4 * 2^i px (4x4 first, as the
            reference's `WidthPerStage` for G; D uses the same widths in reverse). Entries
            beyond `resolution` are unused, so one list serves every resolution.
        blocks_per_stage: residual blocks in each stage of G and D.
        expansion: hidden width of a block as a multiple of its width.
        group_size: channels per group in a block's 3x3 conv (the reference's
            cardinality is hidden width / group_size).
        conditioning: how a conditional G takes its class: "concat" (the reference's)
            concatenates a class embedding to z; "gain" gives each G block a per-class gain
            and bias. D's projection is the same for both.

    Returns:
        `(generator, discriminator)`; G's output is linear (no tanh).
    """
    widths = _check(resolution, channels, latent_dim, num_classes, widths, blocks_per_stage,
                    expansion, group_size)
    if conditioning not in CONDITIONINGS:
        raise ValueError(f"r3gan option conditioning must be one of {', '.join(CONDITIONINGS)}, "
                         f"got {conditioning!r}.")
    block = dict(expansion=expansion, group_size=group_size,
                 total_blocks=blocks_per_stage * len(widths))
    generator = _generator(channels, latent_dim, num_classes, widths, blocks_per_stage, block,
                           conditioning)
    discriminator = _discriminator(resolution, channels, num_classes, widths, blocks_per_stage,
                                   block)
    return generator, discriminator


build = r3gan


def _check(resolution, channels, latent_dim, num_classes, widths, blocks_per_stage,
           expansion, group_size) -> list[int]:
    """Validates the arguments; returns the widths of the stages used (4x4 first)."""
    if (not isinstance(resolution, int) or isinstance(resolution, bool)
            or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION or resolution & (resolution - 1)):
        raise ValueError(f"r3gan needs a resolution that is a power of two from "
                         f"{MIN_RESOLUTION} to {MAX_RESOLUTION}, got {resolution!r}.")
    for name, value, low in (("channels", channels, 1), ("latent_dim", latent_dim, 1),
                             ("blocks_per_stage", blocks_per_stage, 1),
                             ("expansion", expansion, 1), ("group_size", group_size, 1)):
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"r3gan option {name} must be an integer >= {low}, got {value!r}.")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 2):
        raise ValueError(f"num_classes must be an integer >= 2 or None, got {num_classes!r}.")
    stages = int(math.log2(resolution)) - 1
    if (not isinstance(widths, (list, tuple)) or len(widths) < stages
            or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)):
        raise ValueError(f"r3gan option widths must list at least {stages} positive integers "
                         f"for {resolution} px (one per stage, 4x4 first), got {widths!r}.")
    widths = list(widths[:stages])
    bad = [w for w in widths if w * expansion % group_size]
    if bad:
        raise ValueError(f"r3gan option group_size={group_size} must divide every hidden width "
                         f"(width x expansion {expansion}); it does not divide "
                         f"{', '.join(str(w * expansion) for w in bad)}. Choose a divisor.")
    return widths


def _blocks(x, count: int, block: dict, stage: str, label=None):
    for index in range(count):
        layer = InvertedBottleneck(**block, name=f"{stage}_block{index}")
        x = layer(x) if label is None else layer([x, label])
    return x


def _conv1x1(width: int, name: str, **kwargs) -> layers.Conv2D:
    return layers.Conv2D(width, 1, use_bias=False, kernel_initializer=msr(), name=name, **kwargs)


def _generator(channels, latent_dim, num_classes, widths, blocks_per_stage, block,
               conditioning) -> keras.Model:
    z = keras.Input((latent_dim,), name="z")
    inputs, x, block_label = [z], z, None
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        if conditioning == "gain":
            block, block_label = {**block, "num_classes": num_classes}, label
        else:
            # Reference: a bias-free linear map of the one-hot label (MSR gain 1), width
            # latent_dim.
            embedded = layers.Embedding(num_classes, latent_dim, name="label_embedding",
                                        embeddings_initializer=keras.initializers.RandomNormal(
                                            stddev=num_classes**-0.5))(label)
            x = layers.Concatenate(name="z_and_label")([z, embedded])
    x = GenerativeBasis(widths[0], name="generative_basis")(x)
    x = _blocks(x, blocks_per_stage, block, "g4", block_label)
    for previous, width in zip(widths, widths[1:], strict=False):
        side = x.shape[1] * 2
        if width != previous:
            x = _conv1x1(width, f"g{side}_transition")(x)
        x = LowpassUpsample2D(name=f"g{side}_upsample")(x)
        x = _blocks(x, blocks_per_stage, block, f"g{side}", block_label)
    images = _conv1x1(channels, "images", dtype="float32")(x)
    return keras.Model(inputs if num_classes else z, images, name="generator")


def _discriminator(resolution, channels, num_classes, widths, blocks_per_stage,
                   block) -> keras.Model:
    images = keras.Input((resolution, resolution, channels), name="images")
    reverse = widths[::-1]
    x = _conv1x1(reverse[0], "extraction")(images)
    for width, following in zip(reverse, reverse[1:], strict=False):
        side = x.shape[1]
        x = _blocks(x, blocks_per_stage, block, f"d{side}")
        x = LowpassDownsample2D(name=f"d{side}_downsample")(x)
        if following != width:
            x = _conv1x1(following, f"d{side}_transition")(x)
    x = _blocks(x, blocks_per_stage, block, "d4")
    # Discriminative basis: a depthwise 4x4 conv (MSR: fan_in 16) and a bias-free linear map.
    x = layers.DepthwiseConv2D(4, use_bias=False, name="discriminative_basis",
                               depthwise_initializer=keras.initializers.RandomNormal(
                                   stddev=0.25))(x)
    features = layers.Flatten(name="features")(x)
    if not num_classes:
        logits = layers.Dense(1, use_bias=False, kernel_initializer=msr(), dtype="float32",
                              name="logits")(features)
        return keras.Model(images, logits, name="discriminator")
    label = keras.Input((), dtype="int32", name="label")
    width = widths[0]
    features = layers.Dense(width, use_bias=False, kernel_initializer=msr(), dtype="float32",
                            name="projected_features")(features)
    # Reference: MSR gain 1/sqrt(width) on the one-hot map, i.e. std 1/sqrt(width * classes).
    embedded = layers.Embedding(num_classes, width, dtype="float32", name="label_embedding",
                                embeddings_initializer=keras.initializers.RandomNormal(
                                    stddev=(width * num_classes) ** -0.5))(label)
    logits = layers.Dot(axes=1, dtype="float32", name="logits")([features, embedded])
    return keras.Model([images, label], logits, name="discriminator")
