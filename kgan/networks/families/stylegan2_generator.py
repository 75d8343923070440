"""StyleGAN2's generator parts: the mapping network, the synthesis network (skip
architecture) and its stateless noise inputs.

Mapping (reference `MappingNetwork`): z -> w by an MLP with a 100x lower learning rate;
D reuses it to map labels (its cmap).

Synthesis (reference `SynthesisNetwork` / `SynthesisBlock`): a learned constant 4x4 input,
then per resolution two modulated 3x3 convs (the first upsamples) and a toRGB layer; the
image is the sum of every toRGB output, each earlier one upsampled with the [1, 3, 3, 1]
filter (paper figure 7, "skip" generator). The block at resolution r reads ws[k: k + 3]
(k = 2 log2(r) - 5; the 4x4 block reads ws[0: 2]), so a toRGB shares its w with the next
block's first conv and there are num_ws = 2 log2(resolution) - 2 ws.

Noise: every noise input is a stateless function of a seed, never of a stateful RNG:
per-example seeds (`noise_seeds` int64 [N]) give each example its own noise whatever the
batch; a batch seed (`seed`, [2] ints) draws the global batch's noise in one op, of which
each replica keeps its rows (design.md, rule 2); with neither, each example's seed is a
hash of its own w (so a synthesis call is a pure function of ws). The numbers are
TensorFlow's stateless draws on both backends (`kgan.gan.philox` on JAX), so a model gives
the same images on TensorFlow, on JAX and in its TensorFlow export. On JAX (no int64
without x64) per-example seeds are int32: seeds from 2^31 on, which only the export's
int64 `generate` signature takes, wrap there (Keras converts int64 inputs to int32).
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from kgan.gan import backends, randomness
from kgan.networks.families.stylegan2_layers import (
    EqualizedDense,
    EqualizedEmbedding,
    ModulatedConv2D,
    _Layer,
    _normal,
    normalize_2nd_moment,
    upsample_2x,
)

NOISE_MODES = ("random", "const", "none")
# Second seed word of noise draws: latents use 0x5EED (kgan.gan.randomness), so the same integer
# seed gives independent latents and noise.
NOISE_STREAM = 0x7015E


def channels_at(resolution: int, cbase: int, cmax: int) -> int:
    """The reference's width rule: min(cbase // resolution, cmax)."""
    return min(cbase // resolution, cmax)


def layer_policy(resolution: int, image_resolution: int, num_fp16_res: int) -> str:
    """Dtype policy of the layers at `resolution`: the global policy for the
    `num_fp16_res` highest resolutions (the reference's fp16 blocks, never below 8 px),
    float32 below them; with 0, the global policy everywhere."""
    policy = keras.mixed_precision.global_policy().name
    if num_fp16_res == 0:
        return policy
    threshold = max(2 ** (int(math.log2(image_resolution)) + 1 - num_fp16_res), 8)
    return policy if resolution >= threshold else "float32"


def noise_seeds_from(values):
    """A per-example seed in [0, 2^31 - 1) from the bits of `values` [N, ...]
    (`kgan.gan.noise_hash`): int64 on TensorFlow, the same numbers as int32 on JAX."""
    values = ops.cast(values, "float32")
    if any(d is None for d in values.shape[1:]):
        raise ValueError(f"noise seeds need values of a static shape [N, ...], got {values.shape}")
    size = int(np.prod(values.shape[1:]))
    return backends.current().random.row_hash(ops.reshape(values, [-1, size]))


def noise_from_seeds(seeds, size: int):
    """Standard-normal noise [N, size], row i a pure function of seeds[i]: TensorFlow's
    `stateless_normal([size], [seeds[i], NOISE_STREAM])` (one `tf.map_fn` in the export's
    graph), the same numbers on JAX. Seeds are int64 [N], or [N, 2] int32 (low, high)
    words (`kgan.gan.sampling.seed_words`, exact on every backend). JAX keeps int64 seeds
    exact where they are concrete values; traced seeds are int32 there (x64 off),
    sign-extended as TensorFlow would."""
    return backends.current().random.noise(seeds, size, NOISE_STREAM)


def noise_from_batch_seed(batch, size: int, seed):
    """This replica's rows of one global noise draw [N, size] from a batch seed (an int,
    or a seed of `kgan.gan.randomness.seed`)."""
    if isinstance(seed, (int, np.integer)):
        seed = randomness.seed(int(seed), NOISE_STREAM)
    return randomness.global_normal(batch, [size], seed)


@keras.saving.register_keras_serializable(package="kgan")
class MappingNetwork(_Layer):
    """z (and label) -> w (reference `MappingNetwork`): z is normalised by its second
    moment; a label is embedded (`EqualizedEmbedding`, width w_dim), normalised the same
    way and concatenated; then `num_layers` equalised dense layers with leaky ReLU and
    learning-rate multiplier `lr_multiplier` (0.01 in the paper). With `latent_dim` 0 it
    maps labels alone (D's conditioning map).

    Input: z [N, latent_dim], [z, label] with int labels [N], or label alone when
    latent_dim is 0. `track_w_avg` adds the non-trainable mean `w_avg` [w_dim] used by
    truncation (updated by the caller; see `StyleGAN2Generator.update_w_avg`).
    """

    def __init__(self, latent_dim: int, w_dim: int, num_classes: int | None = None,
                 num_layers: int = 8, lr_multiplier: float = 0.01, track_w_avg: bool = True,
                 **kwargs):
        super().__init__(**kwargs)
        self.latent_dim = latent_dim
        self.w_dim = w_dim
        self.num_classes = num_classes
        self.num_layers = num_layers
        self.lr_multiplier = lr_multiplier
        self.track_w_avg = track_w_avg

    def build(self, input_shape=None):
        features = self.latent_dim
        self.embed = None
        if self.num_classes:
            self.embed = EqualizedEmbedding(self.num_classes, self.w_dim, name="embed",
                                            dtype=self.dtype_policy)
            self.embed.build((None,))
            features += self.w_dim
        self.dense = []
        for index in range(self.num_layers):
            layer = EqualizedDense(self.w_dim, "lrelu", self.lr_multiplier, name=f"fc{index}",
                                   dtype=self.dtype_policy)
            layer.build((None, features))
            self.dense.append(layer)
            features = self.w_dim
        if self.track_w_avg:
            # ONLY_FIRST_REPLICA: assigned in replica context with an already-global mean.
            self.w_avg = self.add_weight(shape=(self.w_dim,), name="w_avg", initializer="zeros",
                                         trainable=False, aggregation="only_first_replica")

    def call(self, inputs):
        z, label = self._split(inputs)
        parts = [] if z is None else [normalize_2nd_moment(self._cast(z))]
        if self.embed is not None:
            parts.append(normalize_2nd_moment(self.embed(label)))
        x = ops.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
        for layer in self.dense:
            x = layer(x)
        return x

    def _split(self, inputs):
        if self.num_classes and self.latent_dim:
            return inputs[0], inputs[1]
        return (None, inputs) if self.num_classes else (inputs, None)

    def compute_output_shape(self, input_shape):
        first = input_shape[0] if self.num_classes and self.latent_dim else input_shape
        return (first[0], self.w_dim)

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "w_dim": self.w_dim,
                "num_classes": self.num_classes, "num_layers": self.num_layers,
                "lr_multiplier": self.lr_multiplier, "track_w_avg": self.track_w_avg}


@keras.saving.register_keras_serializable(package="kgan")
class SynthesisBlock(_Layer):
    """One resolution of the skip generator: (const or conv0 with upsampling), conv1, toRGB.

    Call: `block(ws, x=..., img=..., noises=[...], noise_mode=...)` -> (x, img), with ws
    [N, num_conv + 1, w_dim]; toRGB computes in float32 and so does the image sum.
    """

    def __init__(self, out_channels: int, w_dim: int, resolution: int, image_channels: int,
                 in_channels: int = 0, conv_clamp=None, **kwargs):
        super().__init__(**kwargs)
        self.out_channels = out_channels
        self.w_dim = w_dim
        self.resolution = resolution
        self.image_channels = image_channels
        self.in_channels = in_channels
        self.conv_clamp = conv_clamp
        self.num_conv = 1 if in_channels == 0 else 2

    def build(self, input_shape=None):
        r, out = self.resolution, self.out_channels
        conv = dict(w_dim=self.w_dim, resolution=r, conv_clamp=self.conv_clamp,
                    dtype=self.dtype_policy)
        self.convs = []
        if self.in_channels == 0:
            self.const = self.add_weight(shape=(r, r, out), name="const", initializer=_normal())
        else:
            conv0 = ModulatedConv2D(out, up=2, name="conv0", **conv)
            conv0.build((None, r // 2, r // 2, self.in_channels))
            self.convs.append(conv0)
        conv1 = ModulatedConv2D(out, name="conv1", **conv)
        conv1.build((None, r, r, out))
        self.convs.append(conv1)
        self.torgb = ModulatedConv2D(self.image_channels, self.w_dim, kernel_size=1,
                                     demodulate=False, use_noise=False, activation="linear",
                                     conv_clamp=self.conv_clamp, resolution=r, dtype="float32",
                                     name="torgb")
        self.torgb.build((None, r, r, out))

    def call(self, ws, x=None, img=None, noises=None, noise_mode: str = "random"):
        if self.in_channels == 0:
            x = ops.tile(self._cast(self.const)[None], [randomness.static_batch(ws), 1, 1, 1])
        noises = noises or [None] * self.num_conv
        for index, conv in enumerate(self.convs):
            x = conv(x, ws[:, index], noise=noises[index], noise_mode=noise_mode)
        y = self.torgb(x, ws[:, self.num_conv])
        img = y if img is None else upsample_2x(img) + y
        return x, img

    def get_config(self):
        return {**super().get_config(), "out_channels": self.out_channels, "w_dim": self.w_dim,
                "resolution": self.resolution, "image_channels": self.image_channels,
                "in_channels": self.in_channels, "conv_clamp": self.conv_clamp}


@keras.saving.register_keras_serializable(package="kgan")
class SynthesisNetwork(_Layer):
    """ws [N, num_ws, w_dim] -> float32 images [N, resolution, resolution, channels].

    Call: `synthesis(ws, noise_mode="random", noise_seeds=None, seed=None)`; noise_mode
    "const" uses each layer's fixed buffer, "none" no noise (see the module docstring for
    the random sources).
    """

    def __init__(self, resolution: int, image_channels: int, w_dim: int, cbase: int,
                 cmax: int, conv_clamp=None, num_fp16_res: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.resolution = resolution
        self.image_channels = image_channels
        self.w_dim = w_dim
        self.cbase = cbase
        self.cmax = cmax
        self.conv_clamp = conv_clamp
        self.num_fp16_res = num_fp16_res
        self.block_resolutions = [2**i for i in range(2, int(math.log2(resolution)) + 1)]
        self.num_ws = 2 * len(self.block_resolutions)
        # The side of each conv layer's noise input, in call order.
        self.noise_resolutions = [r for r in self.block_resolutions for _ in range(1 + (r > 4))]

    def build(self, input_shape=None):
        self.blocks = []
        for r in self.block_resolutions:
            block = SynthesisBlock(
                channels_at(r, self.cbase, self.cmax), self.w_dim, r, self.image_channels,
                in_channels=channels_at(r // 2, self.cbase, self.cmax) if r > 4 else 0,
                conv_clamp=self.conv_clamp, name=f"b{r}",
                dtype=layer_policy(r, self.resolution, self.num_fp16_res))
            block.build()
            self.blocks.append(block)

    def call(self, ws, noise_mode: str = "random", noise_seeds=None, seed=None):
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}.")
        ws = ops.cast(ws, "float32")
        if ws.shape[1] is not None and ws.shape[1] != self.num_ws:
            raise ValueError(f"synthesis takes ws of shape [N, {self.num_ws}, {self.w_dim}], "
                             f"got {ws.shape}.")
        noises = self.noises(ws, noise_mode, noise_seeds, seed)
        x = img = None
        first = 0
        for block in self.blocks:
            count = block.num_conv
            x, img = block(ws[:, first: first + count + 1], x=x, img=img,
                           noises=noises[:count], noise_mode=noise_mode)
            first, noises = first + count, noises[count:]
        return img

    def noises(self, ws, noise_mode: str = "random", noise_seeds=None, seed=None) -> list:
        """The noise inputs of the conv layers, [N, r, r, 1] each (None unless "random")."""
        if noise_mode != "random":
            return [None] * len(self.noise_resolutions)
        sizes = [r * r for r in self.noise_resolutions]
        if noise_seeds is not None:
            flat = noise_from_seeds(noise_seeds, sum(sizes))
        elif seed is not None:
            flat = noise_from_batch_seed(randomness.static_batch(ws), sum(sizes), seed)
        else:
            flat = noise_from_seeds(noise_seeds_from(ws[:, 0]), sum(sizes))
        ends = np.cumsum(sizes).tolist()
        return [ops.reshape(flat[:, end - r * r: end], [-1, r, r, 1])
                for end, r in zip(ends, self.noise_resolutions, strict=True)]

    def compute_output_shape(self, input_shape, *args, **kwargs):
        r = self.resolution
        return (input_shape[0], r, r, self.image_channels)

    def get_config(self):
        return {**super().get_config(), "resolution": self.resolution,
                "image_channels": self.image_channels, "w_dim": self.w_dim,
                "cbase": self.cbase, "cmax": self.cmax, "conv_clamp": self.conv_clamp,
                "num_fp16_res": self.num_fp16_res}
