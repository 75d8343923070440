"""StyleGAN2's building blocks (Karras et al. 2020, "Analyzing and Improving the Image Quality
of StyleGAN"), after stylegan2-ada-pytorch (`training/networks.py`, `torch_utils/ops`).

- Equalised learning rate: weights are stored N(0, 1) / lr_mul and scaled at run time by
  lr_mul / sqrt(fan_in), biases by lr_mul, so Adam's per-weight step is the same in every
  layer (Karras et al. 2018, section 4.1).
- `bias_act`: bias, leaky ReLU(0.2) times sqrt(2) (the gain that keeps unit variance), an
  extra gain (sqrt(1/2) on residual branches), then the optional clamp to +-conv_clamp * gain.
- Resampling uses the [1, 3, 3, 1] low-pass filter exactly as `upfirdn2d` pads it.
- Every layer casts explicitly (autocast off): weights are scaled and styles and
  demodulation coefficients computed in float32, activations in the layer's compute dtype.
- Written in `keras.ops` only, so the family runs on TensorFlow and JAX alike; shapes are
  static except the batch, which may be unknown on TensorFlow (the export's graphs).
"""

from __future__ import annotations

import math
import warnings

import keras
import numpy as np
from keras import layers, ops

LEAK = 0.2
LRELU_GAIN = math.sqrt(2.0)
DEMODULATION_EPS = 1e-8
MBSTD_EPS = 1e-8
NORMALIZE_EPS = 1e-8
ACTIVATIONS = ("linear", "lrelu")
_FILTER_TAPS = (1.0, 3.0, 3.0, 1.0)


def normalize_2nd_moment(x, eps: float = NORMALIZE_EPS):
    """x / sqrt(mean(x^2) + eps) over the last axis (the mapping network's input norm)."""
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + eps)


def bias_act(x, bias=None, activation: str = "linear", gain: float = 1.0, clamp=None):
    """The reference's `bias_act`: (x + b), activation with its gain (sqrt 2 for lrelu)
    times `gain`, then clipping to +-clamp * gain."""
    if bias is not None:
        x = x + ops.cast(bias, x.dtype)
    if activation == "lrelu":
        x = ops.leaky_relu(x, LEAK) * ops.cast(LRELU_GAIN * gain, x.dtype)
    elif gain != 1.0:
        x = x * ops.cast(gain, x.dtype)
    if clamp is not None:
        x = ops.clip(x, ops.cast(-clamp * gain, x.dtype), ops.cast(clamp * gain, x.dtype))
    return x


def _lowpass_kernel(channels: int, gain: float, dtype):
    taps = np.asarray(_FILTER_TAPS)
    kernel = np.outer(taps, taps) / taps.sum() ** 2 * gain
    return ops.convert_to_tensor(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)),
                                 dtype=dtype)


def lowpass(x, pad: tuple[int, int], gain: float = 1.0, stride: int = 1):
    """`upfirdn2d` without upsampling: zero-pad (before, after) on H and W, filter each
    channel with the normalised [1, 3, 3, 1] outer product times `gain`, keep every
    `stride`-th pixel."""
    x = ops.pad(x, [[0, 0], list(pad), list(pad), [0, 0]])
    kernel = _lowpass_kernel(x.shape[-1], gain, x.dtype)
    return ops.depthwise_conv(x, kernel, strides=stride, padding="valid",
                              data_format="channels_last")


def upsample_2x(x):
    """`upfirdn2d.upsample2d`: zero insertion, padding (2, 1), the filter with gain 4."""
    _, h, w, c = x.shape
    x = ops.reshape(x, [-1, h, 1, w, 1, c])
    x = ops.pad(x, [[0, 0], [0, 0], [0, 1], [0, 0], [0, 1], [0, 0]])
    x = ops.reshape(x, [-1, 2 * h, 2 * w, c])
    return lowpass(x, (2, 1), gain=4.0)


def conv2d(x, kernel, stride: int = 1, padding: str = "same"):
    """Cross-correlation of NHWC `x` with a [k, k, in, out] kernel."""
    return ops.conv(x, kernel, strides=stride, padding=padding, data_format="channels_last")


def _normal(stddev: float = 1.0) -> keras.initializers.Initializer:
    return keras.initializers.RandomNormal(stddev=stddev)


class _Layer(layers.Layer):
    """Base of the layers here: no autocasting, so `call` sees float32 weights and styles
    and casts activations to its compute dtype itself."""

    def __init__(self, **kwargs):
        kwargs["autocast"] = False
        super().__init__(**kwargs)

    def _cast(self, x):
        return ops.cast(x, self.compute_dtype)


@keras.saving.register_keras_serializable(package="kgan")
class EqualizedDense(_Layer):
    """Fully connected layer with equalised learning rate (the reference's
    `FullyConnectedLayer`): y = act(x @ (W * lr_mul / sqrt(fan_in)) + b * lr_mul),
    W ~ N(0, 1 / lr_mul^2), b = bias_init."""

    def __init__(self, units: int, activation: str = "linear", lr_multiplier: float = 1.0,
                 bias_init: float = 0.0, use_bias: bool = True, **kwargs):
        super().__init__(**kwargs)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}.")
        self.units = units
        self.activation = activation
        self.lr_multiplier = lr_multiplier
        self.bias_init = bias_init
        self.use_bias = use_bias

    def build(self, input_shape):
        fan_in = input_shape[-1]
        self.kernel = self.add_weight(shape=(fan_in, self.units), name="kernel",
                                      initializer=_normal(1.0 / self.lr_multiplier))
        self.bias = self.add_weight(
            shape=(self.units,), name="bias",
            initializer=keras.initializers.Constant(self.bias_init)) if self.use_bias else None
        self.weight_gain = self.lr_multiplier / math.sqrt(fan_in)

    def call(self, inputs):
        kernel = self._cast(ops.convert_to_tensor(self.kernel) * self.weight_gain)
        x = ops.matmul(self._cast(inputs), kernel)
        bias = None if self.bias is None else ops.convert_to_tensor(self.bias) * self.lr_multiplier
        return bias_act(x, bias, self.activation)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "lr_multiplier": self.lr_multiplier, "bias_init": self.bias_init,
                "use_bias": self.use_bias}


@keras.saving.register_keras_serializable(package="kgan")
class EqualizedEmbedding(_Layer):
    """Class embedding: the reference's `FullyConnectedLayer` on one-hot labels, as a
    lookup: row `label` of W / sqrt(num_classes), plus a bias."""

    def __init__(self, num_classes: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.units = units

    def build(self, input_shape):
        self.table = self.add_weight(shape=(self.num_classes, self.units), name="table",
                                     initializer=_normal())
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer="zeros")

    def call(self, labels):
        table = ops.convert_to_tensor(self.table) / math.sqrt(self.num_classes)
        rows = ops.take(table, ops.cast(ops.reshape(labels, [-1]), "int32"), axis=0)
        return self._cast(rows + ops.convert_to_tensor(self.bias))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.units)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "units": self.units}


@keras.saving.register_keras_serializable(package="kgan")
class EqualizedConv2D(_Layer):
    """Conv layer with equalised learning rate (the reference's `Conv2dLayer`), optionally
    downsampling by 2 through the [1, 3, 3, 1] filter as `conv2d_resample` does: a 1x1
    kernel filters with padding (1, 1) at stride 2 and then convolves; a k x k kernel
    filters with padding k // 2 + 1 and convolves at stride 2."""

    def __init__(self, filters: int, kernel_size: int, activation: str = "linear",
                 down: int = 1, use_bias: bool = True, gain: float = 1.0, conv_clamp=None,
                 **kwargs):
        super().__init__(**kwargs)
        if down not in (1, 2):
            raise ValueError(f"down must be 1 or 2, got {down!r}.")
        self.filters = filters
        self.kernel_size = kernel_size
        self.activation = activation
        self.down = down
        self.use_bias = use_bias
        self.gain = gain
        self.conv_clamp = conv_clamp

    def build(self, input_shape):
        k, fan_in = self.kernel_size, input_shape[-1] * self.kernel_size**2
        self.kernel = self.add_weight(shape=(k, k, input_shape[-1], self.filters),
                                      name="kernel", initializer=_normal())
        self.bias = self.add_weight(shape=(self.filters,), name="bias",
                                    initializer="zeros") if self.use_bias else None
        self.weight_gain = 1.0 / math.sqrt(fan_in)

    def call(self, inputs):
        x = self._cast(inputs)
        kernel = self._cast(ops.convert_to_tensor(self.kernel) * self.weight_gain)
        pad = self.kernel_size // 2
        if self.down == 1:
            x = conv2d(x, kernel)
        elif self.kernel_size == 1:
            x = conv2d(lowpass(x, (1, 1), stride=2), kernel, padding="valid")
        else:
            x = conv2d(lowpass(x, (pad + 1, pad + 1)), kernel, 2, padding="valid")
        return bias_act(x, self.bias, self.activation, self.gain, self.conv_clamp)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        h, w = (None if s is None else s // self.down for s in (h, w))
        return (n, h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "activation": self.activation,
                "down": self.down, "use_bias": self.use_bias, "gain": self.gain,
                "conv_clamp": self.conv_clamp}


@keras.saving.register_keras_serializable(package="kgan")
class ModulatedConv2D(_Layer):
    """Modulated (and demodulated) convolution with a per-layer affine style, noise input
    and bias_act: the reference's `SynthesisLayer` (and, without demodulation and noise,
    `ToRGBLayer`).

    With s = affine(w) and the shared weight W (equalised: N(0, 1) / sqrt(fan_in)), the
    per-sample weight is W'_oik = s_i W_oik, demodulated by d_o = 1 / sqrt(sum_ik W'_oik^2
    + 1e-8) (paper eq. 3). Since both factors are per input and per output channel, it runs
    as `conv(x * s, W) * d` with the one shared weight: exact, and a plain convolution.
    Upsampling is the reference's transposed conv at stride 2 followed by the [1, 3, 3, 1]
    filter with padding (1, 1) and gain 4. Noise (`[N, H, W, 1]`, or the layer's fixed
    `noise_const` in "const" mode) is scaled by a learned strength (init 0) and added after
    demodulation.

    Args:
        filters: output channels.
        w_dim: length of w (the affine layer's input).
        kernel_size: 3 for synthesis layers, 1 for toRGB.
        up: 2 doubles the resolution first.
        demodulate: False for toRGB.
        use_noise: adds a noise input with learned strength.
        activation: "lrelu" (synthesis) or "linear" (toRGB).
        conv_clamp: clamp the output to +-conv_clamp, None for no clamp.
        resolution: output side (shape of the const noise buffer).
    """

    def __init__(self, filters: int, w_dim: int, kernel_size: int = 3, up: int = 1,
                 demodulate: bool = True, use_noise: bool = True, activation: str = "lrelu",
                 conv_clamp=None, resolution: int = 4, **kwargs):
        super().__init__(**kwargs)
        if up not in (1, 2) or (up == 2 and kernel_size != 3):
            raise ValueError(f"up must be 1, or 2 with a 3x3 kernel; got up={up!r}, "
                             f"kernel_size={kernel_size!r}.")
        self.filters = filters
        self.w_dim = w_dim
        self.kernel_size = kernel_size
        self.up = up
        self.demodulate = demodulate
        self.use_noise = use_noise
        self.activation = activation
        self.conv_clamp = conv_clamp
        self.resolution = resolution

    def build(self, input_shape):
        channels, k = input_shape[-1], self.kernel_size
        # Styles stay float32 whatever the block's policy (the reference's affine is fp32).
        self.affine = EqualizedDense(channels, bias_init=1.0, dtype="float32", name="affine")
        self.affine.build((None, self.w_dim))
        self.kernel = self.add_weight(shape=(k, k, channels, self.filters), name="kernel",
                                      initializer=_normal())
        self.bias = self.add_weight(shape=(self.filters,), name="bias", initializer="zeros")
        self.weight_gain = 1.0 / math.sqrt(channels * k * k)
        if self.use_noise:
            self.noise_strength = self.add_weight(shape=(), name="noise_strength",
                                                  initializer="zeros")
            self.noise_const = self.add_weight(shape=(self.resolution, self.resolution),
                                               name="noise_const", initializer=_normal(),
                                               trainable=False)

    def call(self, inputs, w, noise=None, noise_mode: str = "random"):
        styles = self.affine(w)
        kernel = ops.convert_to_tensor(self.kernel) * self.weight_gain
        if self.demodulate:
            if self.compute_dtype == "float16":
                # As the reference, keep x * s in float16 range; demodulation cancels it.
                largest = ops.max(ops.abs(styles), axis=1, keepdims=True)
                styles = styles / ops.maximum(largest, DEMODULATION_EPS)
            squared = ops.sum(ops.square(kernel), axis=[0, 1])  # [in, out]
            coefficients = ops.rsqrt(ops.matmul(ops.square(styles), squared)
                                     + DEMODULATION_EPS)
        x = self._cast(inputs) * self._cast(styles)[:, None, None, :]
        x = self._convolve(x, self._cast(kernel))
        if self.demodulate:
            x = x * self._cast(coefficients)[:, None, None, :]
        noise = self._noise(noise, noise_mode)
        if noise is not None:
            x = x + self._cast(noise) * self._cast(self.noise_strength)
        return bias_act(x, ops.convert_to_tensor(self.bias), self.activation, clamp=self.conv_clamp)

    def _convolve(self, x, kernel):
        if self.up == 1:
            return conv2d(x, kernel)
        # conv2d_resample's up path for a 3x3 kernel: the transposed conv gives 2H + 1 pixels,
        # the filter with padding (1, 1) brings them back to 2H.
        x = ops.conv_transpose(x, ops.transpose(kernel, [0, 1, 3, 2]), strides=2,
                               padding="valid", data_format="channels_last")
        return lowpass(x, (1, 1), gain=4.0)

    def _noise(self, noise, noise_mode):
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return ops.convert_to_tensor(self.noise_const)[None, :, :, None]
        if noise is None:
            raise ValueError(f"{self.name}: noise_mode='random' needs a noise tensor "
                             f"[N, {self.resolution}, {self.resolution}, 1].")
        return noise

    def compute_output_shape(self, input_shape, *args, **kwargs):
        n, h, w, _ = input_shape
        h, w = (None if s is None else s * self.up for s in (h, w))
        return (n, h, w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "w_dim": self.w_dim,
                "kernel_size": self.kernel_size, "up": self.up, "demodulate": self.demodulate,
                "use_noise": self.use_noise, "activation": self.activation,
                "conv_clamp": self.conv_clamp, "resolution": self.resolution}


@keras.saving.register_keras_serializable(package="kgan")
class MinibatchStdDev(_Layer):
    """Minibatch standard deviation (Karras et al. 2018, section 3; reference
    `MinibatchStdLayer`): splits the batch into groups of `group_size`, takes each
    feature's standard deviation over its group, averages it over pixels and each of
    `num_channels` channel groups, and appends the result as constant feature maps.

    Groups are runs of consecutive examples (the reference strides them: example i joins
    group i mod N/G); the same statistic of a random batch, and each replica's slice of a
    global batch then holds whole groups, so N replicas compute what one device does.
    The group size is the largest divisor of the batch not above `group_size` (the
    reference's min(group_size, N) where N allows it); None uses the whole batch.
    Its output for one example depends on the others: `cross_sample = True`.
    """

    cross_sample = True

    def __init__(self, group_size: int | None = 4, num_channels: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.group_size = group_size
        self.num_channels = num_channels

    def call(self, inputs):
        x = self._cast(inputs)
        self._warn_on_groups_of_one(x.shape[0])
        _, h, w, c = x.shape
        f = self.num_channels
        g = self._group(x.shape[0], ops.shape(x)[0])
        y = ops.reshape(x, [-1, g, h, w, f, c // f])
        y = y - ops.mean(y, axis=1, keepdims=True)
        y = ops.sqrt(ops.mean(ops.square(y), axis=1) + MBSTD_EPS)  # [N/G, h, w, f, c/f]
        y = ops.repeat(ops.mean(y, axis=[1, 2, 4]), g, axis=0)     # [N, f]
        y = ops.tile(y[:, None, None, :], [1, h, w, 1])
        return ops.concatenate([x, y], axis=-1)

    def _group(self, static, dynamic):
        """The group size: a Python int when the batch is static (always on JAX), else
        (TensorFlow graphs of unknown batch) a scalar tensor."""
        if static is not None:
            if self.group_size is None:
                return static
            return next(g for g in range(min(self.group_size, static), 0, -1)
                        if static % g == 0) if static else 1
        if self.group_size is None:
            return dynamic
        candidates = ops.arange(self.group_size, 0, -1, dtype="int32")
        divides = ops.cast(ops.equal(ops.cast(dynamic, "int32") % candidates, 0), "int32")
        return ops.take(candidates, ops.argmax(divides))

    def _warn_on_groups_of_one(self, batch) -> None:
        """A batch with no divisor in 2..group_size (a prime, say) gives groups of one
        example, whose standard deviation is zero: D loses the feature without a word."""
        if batch is None or batch < 2 or not self.group_size or self.group_size < 2:
            return
        if all(batch % size for size in range(2, min(self.group_size, batch) + 1)):
            good = batch - batch % self.group_size or self.group_size
            warnings.warn(
                f"minibatch standard deviation: a batch of {batch} has no divisor in 2.."
                f"{self.group_size}, so its groups hold one example each and the feature is "
                f"constant (zero). Use a batch divisible by {self.group_size} (e.g. {good}) "
                "per replica.", stacklevel=2)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + self.num_channels)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size,
                "num_channels": self.num_channels}
