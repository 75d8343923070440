"""StyleGAN2 (Karras et al., CVPR 2020, "Analyzing and Improving the Image Quality of
StyleGAN"), config F as stylegan2-ada-pytorch builds it (`training/networks.py`).

Generator: a mapping network (z normalised by its 2nd moment, `mapping_layers` equalised
dense layers with learning-rate multiplier 0.01, leaky ReLU) gives w; w is broadcast to
one w per layer (num_ws) and drives the skip synthesis network: modulated and
demodulated 3x3 convs, per-layer noise with learned strength, toRGB at every resolution
summed through [1, 3, 3, 1] upsampling (`stylegan2_generator`). The output is linear.
Discriminator: residual blocks (two 3x3 convs, the second downsampling, plus a 1x1
downsampling skip, both branches times sqrt(1/2)), then minibatch standard deviation
(group 4, one feature), a 3x3 conv, two dense layers. Conditional models embed the label
in G's mapping input and project D's output on a mapped label (the reference's cmap).
Widths are min(cbase // resolution, cmax) at every resolution.

The pair is built for the later training phase: `generator.mapping`, `.synthesis`,
`.num_ws`, `.w_avg` with `.update_w_avg()`, truncation (`truncation_psi`, per example or
not), style mixing (`mix_styles`) and stateless, per-example noise (`noise_seeds`).

Recipe (the paper's): non-saturating loss, lazy R1 (gamma 10 at 1024 px; stylegan2-ada's
rule 0.0002 res^2 / batch), Adam(0.0025, beta_1=0, beta_2=0.99; 0.002 at 1024 px),
EMA of G (10 kimg), path-length regularisation and style mixing 0.9 (training phase).

Example:
    >>> g, d = kgan.networks.get("stylegan2")(32, 3, latent_dim=64, cbase=2048, cmax=64)
    >>> images = g(z, truncation_psi=0.7)                  # float32 [N, 32, 32, 3]
    >>> ws = g.map_ws(z); images = g.synthesis(ws, noise_mode="const")
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from kgan.networks.families.stylegan2_generator import (
    NOISE_MODES,
    MappingNetwork,
    SynthesisNetwork,
    channels_at,
    layer_policy,
    noise_seeds_from,
)
from kgan.networks.families.stylegan2_layers import (
    EqualizedConv2D,
    EqualizedDense,
    MinibatchStdDev,
    _Layer,
)

Tensor = Any  # a backend tensor
MIN_RESOLUTION, MAX_RESOLUTION = 16, 256
W_AVG_BETA = 0.995
D_MAPPING_LAYERS = 8  # the reference's D maps labels with the default 8-layer network
DEFAULTS = dict(cbase=16384, cmax=512, mapping_layers=8, w_dim=512, mapping_lr_multiplier=0.01,
                mbstd_group_size=4, conv_clamp=None, num_fp16_res=0)


def mix_styles(ws_a, ws_b, cutoff):
    """Style mixing (Karras et al. 2019, StyleGAN, section 3.1): ws[:, :cutoff] from `ws_a`,
    the rest from `ws_b`; `cutoff` is an int, a scalar tensor or one per example [N]."""
    ws_a, ws_b = ops.convert_to_tensor(ws_a), ops.convert_to_tensor(ws_b)
    cutoff = ops.cast(cutoff, "int32")
    cutoff = cutoff[:, None] if len(cutoff.shape) == 1 else cutoff
    num_ws = ws_a.shape[1] if ws_a.shape[1] is not None else ops.shape(ws_a)[1]
    first = ops.arange(num_ws, dtype="int32")[None, :] < cutoff  # [N or 1, num_ws]
    return ops.where(first[:, :, None], ws_a, ws_b)


class _Network(keras.Model):
    """A subclassed model (so `clone_model` rebuilds it from its config, as the EMA copy
    needs) that still shows the symbolic `inputs`, `outputs` and `output_shape` kgan reads
    (Keras 3.15 clones a Functional subclass into a plain Functional, losing its methods)."""

    def _set_io(self, inputs: list, output_shape: tuple) -> None:
        self._io_inputs = inputs
        self._io_output = keras.KerasTensor(output_shape, dtype="float32", name=self.name)
        self.built = True

    @property
    def inputs(self) -> list:
        return list(self._io_inputs)

    @property
    def outputs(self) -> list:
        return [self._io_output]

    @property
    def output_shape(self) -> tuple:
        return tuple(self._io_output.shape)

    def get_config(self):
        return {**self._options, "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _inputs(first: keras.KerasTensor, num_classes) -> list:
    return [first, keras.Input((), dtype="int32", name="label")] if num_classes else [first]


@keras.saving.register_keras_serializable(package="kgan")
class StyleGAN2Generator(_Network):
    """z [N, latent_dim] (and int labels [N]) -> float32 images [N, H, W, C].

    Call: `generator(inputs, truncation_psi=1.0, truncation_cutoff=None,
    noise_mode="random", noise_seeds=None, seed=None)`. Without `noise_seeds` or `seed`,
    random noise is seeded per example by a hash of its z, so `generator(z)` is a pure
    function of z (the same image in any batch, in training and export alike).

    Attributes:
        mapping: `MappingNetwork`, z (or [z, label]) -> w [N, w_dim].
        synthesis: `SynthesisNetwork`, ws [N, num_ws, w_dim] -> images.
        num_ws: number of ws synthesis takes.
        w_avg: non-trainable tracked mean of w [w_dim] (starts at zero).
    """

    def __init__(self, resolution: int, channels: int, latent_dim: int,
                 num_classes: int | None = None, w_dim: int = 512, mapping_layers: int = 8,
                 mapping_lr_multiplier: float = 0.01, cbase: int = 16384, cmax: int = 512,
                 conv_clamp=None, num_fp16_res: int = 0, name: str = "generator", **kwargs):
        super().__init__(name=name, dtype="float32", **kwargs)
        self._options = dict(resolution=resolution, channels=channels, latent_dim=latent_dim,
                             num_classes=num_classes, w_dim=w_dim, mapping_layers=mapping_layers,
                             mapping_lr_multiplier=mapping_lr_multiplier, cbase=cbase, cmax=cmax,
                             conv_clamp=conv_clamp, num_fp16_res=num_fp16_res)
        # The mapping is float32 under every policy (reference: it never runs in fp16).
        self.mapping = MappingNetwork(latent_dim, w_dim, num_classes, mapping_layers,
                                      mapping_lr_multiplier, name="mapping", dtype="float32")
        self.synthesis = SynthesisNetwork(resolution, channels, w_dim, cbase, cmax, conv_clamp,
                                          num_fp16_res, name="synthesis", dtype="float32")
        self.mapping.build()
        self.synthesis.build()
        self._set_io(_inputs(keras.Input((latent_dim,), name="z"), num_classes),
                     (None, resolution, resolution, channels))

    @property
    def num_ws(self) -> int:
        return self.synthesis.num_ws

    @property
    def w_avg(self):
        return self.mapping.w_avg

    def call(self, inputs, training=None, truncation_psi=1.0, truncation_cutoff=None,
             noise_mode: str = "random", noise_seeds=None, seed=None):
        ws = self.map_ws(inputs, truncation_psi, truncation_cutoff)
        if noise_mode == "random" and noise_seeds is None and seed is None:
            z = inputs[0] if self._options["num_classes"] else inputs
            noise_seeds = noise_seeds_from(z)
        return self.synthesis(ws, noise_mode=noise_mode, noise_seeds=noise_seeds, seed=seed)

    def map_ws(self, inputs, truncation_psi=1.0, truncation_cutoff=None) -> Tensor:
        """z (or [z, label]) -> ws [N, num_ws, w_dim], truncated toward w_avg."""
        ws = self.broadcast(self.mapping(inputs))
        if isinstance(truncation_psi, (int, float)) and truncation_psi == 1:
            return ws
        return self.truncate(ws, truncation_psi, truncation_cutoff)

    def broadcast(self, w) -> Tensor:
        """w [N, w_dim] -> ws [N, num_ws, w_dim] (the same w for every layer)."""
        return ops.repeat(ops.convert_to_tensor(w)[:, None, :], self.num_ws, axis=1)

    def truncate(self, ws, psi, cutoff=None) -> Tensor:
        """Truncation trick in W (StyleGAN, appendix B): psi * ws + (1 - psi) * w_avg on the
        first `cutoff` ws (all when None); psi is a number or one per example [N]; this form
        gives ws exactly at psi = 1 and w_avg exactly at psi = 0."""
        ws = ops.cast(ws, "float32")
        psi = ops.cast(psi, "float32")
        psi = psi[:, None, None] if len(psi.shape) == 1 else psi
        truncated = psi * ws + (1.0 - psi) * ops.convert_to_tensor(self.w_avg)
        if cutoff is None:
            return truncated
        return mix_styles(truncated, ws, cutoff)

    mix_styles = staticmethod(mix_styles)

    def update_w_avg(self, w, beta: float = W_AVG_BETA) -> None:
        """w_avg <- mean + beta (w_avg - mean), mean = `w` [w_dim] or its batch mean when
        `w` is [N, w_dim]. Under a strategy pass the global mean (it is assigned as is)."""
        w = ops.cast(w, "float32")
        mean = ops.mean(w, axis=0) if len(w.shape) == 2 else w
        self.w_avg.assign(mean + beta * (ops.convert_to_tensor(self.w_avg) - mean))


@keras.saving.register_keras_serializable(package="kgan")
class DiscriminatorBlock(_Layer):
    """Residual D block (reference `DiscriminatorBlock`, architecture "resnet"):
    [fromRGB 1x1 on the first block,] y = skip(x) (1x1, downsampling, no bias, gain
    sqrt(1/2)), x = conv1(conv0(x)) (3x3; conv1 downsamples, gain sqrt(1/2)); y + x."""

    def __init__(self, tmp_channels: int, out_channels: int, from_rgb: bool = False,
                 conv_clamp=None, **kwargs):
        super().__init__(**kwargs)
        self.tmp_channels = tmp_channels
        self.out_channels = out_channels
        self.from_rgb = from_rgb
        self.conv_clamp = conv_clamp

    def build(self, input_shape):
        tmp, out, half = self.tmp_channels, self.out_channels, math.sqrt(0.5)
        conv = dict(conv_clamp=self.conv_clamp, dtype=self.dtype_policy)
        shape = tuple(input_shape)
        self.fromrgb = None
        if self.from_rgb:
            self.fromrgb = EqualizedConv2D(tmp, 1, "lrelu", name="fromrgb", **conv)
            self.fromrgb.build(shape)
            shape = (*shape[:-1], tmp)
        self.skip = EqualizedConv2D(out, 1, down=2, use_bias=False, gain=half, name="skip",
                                    dtype=self.dtype_policy)
        self.conv0 = EqualizedConv2D(tmp, 3, "lrelu", name="conv0", **conv)
        self.conv1 = EqualizedConv2D(out, 3, "lrelu", down=2, gain=half, name="conv1", **conv)
        for layer in (self.skip, self.conv0, self.conv1):
            layer.build(shape)

    def call(self, inputs):
        x = self._cast(inputs)
        if self.fromrgb is not None:
            x = self.fromrgb(x)
        return self.skip(x) + self.conv1(self.conv0(x))

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        return (n, None if h is None else h // 2, None if w is None else w // 2,
                self.out_channels)

    def get_config(self):
        return {**super().get_config(), "tmp_channels": self.tmp_channels,
                "out_channels": self.out_channels, "from_rgb": self.from_rgb,
                "conv_clamp": self.conv_clamp}


@keras.saving.register_keras_serializable(package="kgan")
class StyleGAN2Discriminator(_Network):
    """images [N, H, W, C] (and int labels [N]) -> float32 logits [N, 1].

    The minibatch standard deviation layer mixes examples (`cross_sample = True`), so a GAN
    must score real and fake batches in separate calls. The epilogue (4x4) and the label
    mapping compute in float32 under every policy.
    """

    cross_sample = True

    def __init__(self, resolution: int, channels: int, num_classes: int | None = None,
                 cbase: int = 16384, cmax: int = 512, mbstd_group_size: int | None = 4,
                 conv_clamp=None, num_fp16_res: int = 0, name: str = "discriminator",
                 **kwargs):
        super().__init__(name=name, dtype="float32", **kwargs)
        self._options = dict(resolution=resolution, channels=channels, num_classes=num_classes,
                             cbase=cbase, cmax=cmax, mbstd_group_size=mbstd_group_size,
                             conv_clamp=conv_clamp, num_fp16_res=num_fp16_res)
        self.blocks = []
        shape, r = (None, resolution, resolution, channels), resolution
        while r > 4:
            block = DiscriminatorBlock(
                channels_at(r, cbase, cmax), channels_at(r // 2, cbase, cmax),
                from_rgb=r == resolution, conv_clamp=conv_clamp, name=f"b{r}",
                dtype=layer_policy(r, resolution, num_fp16_res))
            block.build(shape)
            self.blocks.append(block)
            shape, r = block.compute_output_shape(shape), r // 2
        self._build_epilogue(channels_at(4, cbase, cmax), num_classes, mbstd_group_size,
                             conv_clamp)
        self._set_io(_inputs(keras.Input((resolution, resolution, channels), name="images"),
                             num_classes), (None, 1))

    def _build_epilogue(self, width, num_classes, mbstd_group_size, conv_clamp):
        head = dict(dtype="float32")
        self.mbstd = MinibatchStdDev(mbstd_group_size, 1, name="mbstd", **head)
        self.mbstd.build((None, 4, 4, width))  # stateless; built now so fit() sees D built
        self.conv = EqualizedConv2D(width, 3, "lrelu", conv_clamp=conv_clamp, name="b4_conv",
                                    **head)
        self.conv.build((None, 4, 4, width + 1))
        self.fc = EqualizedDense(width, "lrelu", name="b4_fc", **head)
        self.fc.build((None, 16 * width))
        self.out = EqualizedDense(width if num_classes else 1, name="b4_out", **head)
        self.out.build((None, width))
        self.mapping = None
        if num_classes:
            self.mapping = MappingNetwork(0, width, num_classes, D_MAPPING_LAYERS, 0.01,
                                          track_w_avg=False, name="mapping", **head)
            self.mapping.build()

    def call(self, inputs, training=None):
        x, label = (inputs[0], inputs[1:]) if isinstance(inputs, (list, tuple)) else (inputs, [])
        if bool(label) != (self.mapping is not None):
            raise ValueError(f"{self.name} takes {len(self.inputs)} input(s) (images"
                             f"{' and labels' if self.mapping is not None else ''}).")
        for block in self.blocks:
            x = block(x)
        x = self.conv(self.mbstd(x))
        x = self.out(self.fc(ops.reshape(x, [-1, math.prod(x.shape[1:])])))
        if self.mapping is None:
            return x
        # Projection (reference DiscriminatorEpilogue): sum(x * cmap) / sqrt(cmap_dim).
        cmap = self.mapping(label[0])
        return ops.sum(x * cmap, axis=1, keepdims=True) / math.sqrt(x.shape[-1])


def stylegan2(resolution: int, channels: int, latent_dim: int, num_classes: int | None = None,
              cbase: int = 16384, cmax: int = 512, mapping_layers: int = 8, w_dim: int = 512,
              mapping_lr_multiplier: float = 0.01, mbstd_group_size: int | None = 4,
              conv_clamp=None, num_fp16_res: int = 0) -> tuple[keras.Model, keras.Model]:
    """Builds a StyleGAN2 generator and discriminator.

    Args:
        resolution: image side, a power of two in [16, 256].
        channels: image channels.
        latent_dim: length of z (512 in the paper).
        num_classes: classes of a conditional pair, or None.
        cbase, cmax: widths are min(cbase // res, cmax) at each resolution res (the
            reference's channel_base 32768 or 16384 and channel_max 512).
        mapping_layers: dense layers in G's mapping network (8; stylegan2-ada's small
            configs use 2).
        w_dim: length of w, and of the label embedding.
        mapping_lr_multiplier: learning-rate multiplier of the mapping layers (0.01).
        mbstd_group_size: group size of D's minibatch standard deviation (None: batch).
        conv_clamp: clamp conv outputs to +-conv_clamp (256 with float16), None: no clamp.
        num_fp16_res: under a mixed policy, how many of the highest resolutions compute
            in the mixed dtype (the rest in float32); 0: every block follows the policy.

    Returns:
        `(generator, discriminator)`, `StyleGAN2Generator` and `StyleGAN2Discriminator`.
    """
    _check(resolution, channels, latent_dim, num_classes, cbase, cmax, mapping_layers, w_dim,
           mapping_lr_multiplier, mbstd_group_size, conv_clamp, num_fp16_res)
    shared = dict(cbase=cbase, cmax=cmax, conv_clamp=conv_clamp, num_fp16_res=num_fp16_res)
    generator = StyleGAN2Generator(resolution, channels, latent_dim, num_classes, w_dim=w_dim,
                                   mapping_layers=mapping_layers,
                                   mapping_lr_multiplier=mapping_lr_multiplier, **shared)
    discriminator = StyleGAN2Discriminator(resolution, channels, num_classes,
                                           mbstd_group_size=mbstd_group_size, **shared)
    return generator, discriminator


build = stylegan2


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(resolution, channels, latent_dim, num_classes, cbase, cmax, mapping_layers, w_dim,
           mapping_lr_multiplier, mbstd_group_size, conv_clamp, num_fp16_res) -> None:
    """Raises ValueError naming the first bad argument and what it must be."""
    if (not _is_int(resolution) or not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION
            or resolution & (resolution - 1)):
        raise ValueError(f"stylegan2 needs a resolution that is a power of two from "
                         f"{MIN_RESOLUTION} to {MAX_RESOLUTION}, got {resolution!r}.")
    for name, value, low in (("channels", channels, 1), ("latent_dim", latent_dim, 1),
                             ("cbase", cbase, resolution), ("cmax", cmax, 1),
                             ("mapping_layers", mapping_layers, 1), ("w_dim", w_dim, 1),
                             ("num_fp16_res", num_fp16_res, 0)):
        if not _is_int(value) or value < low:
            hint = f" (so that {resolution} px has at least one channel)" if name == "cbase" else ""
            raise ValueError(f"stylegan2 option {name} must be an integer >= {low}{hint}, "
                             f"got {value!r}.")
    if num_classes is not None and (not _is_int(num_classes) or num_classes < 2):
        raise ValueError(f"num_classes must be an integer >= 2 or None, got {num_classes!r}.")
    if isinstance(mapping_lr_multiplier, bool) or not (
            isinstance(mapping_lr_multiplier, (int, float)) and 0 < mapping_lr_multiplier <= 1):
        raise ValueError(f"stylegan2 option mapping_lr_multiplier must be a number in (0, 1], "
                         f"got {mapping_lr_multiplier!r}.")
    if mbstd_group_size is not None and (not _is_int(mbstd_group_size) or mbstd_group_size < 1):
        raise ValueError(f"stylegan2 option mbstd_group_size must be an integer >= 1 or None "
                         f"(the whole batch), got {mbstd_group_size!r}.")
    if conv_clamp is not None and (isinstance(conv_clamp, bool) or not isinstance(
            conv_clamp, (int, float)) or not conv_clamp > 0):
        raise ValueError(f"stylegan2 option conv_clamp must be a positive number (256 with "
                         f"float16) or None, got {conv_clamp!r}.")


__all__ = ["NOISE_MODES", "StyleGAN2Discriminator", "StyleGAN2Generator", "build", "mix_styles",
           "stylegan2"]
