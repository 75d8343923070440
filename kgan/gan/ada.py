"""ADA's augmentation pipeline, its 'bgc' groups (Karras et al. 2020, "Training
Generative Adversarial Networks with Limited Data"; stylegan2-ada-pytorch's AugmentPipe).

- blit: x-flip, rotation by a multiple of 90 degrees, integer translation (up to 1/8);
- geom: isotropic scaling (log2 std 0.2), arbitrary rotation (before and after the
  anisotropic scaling, each with probability 1 - sqrt(1 - p)), anisotropic scaling (log2
  std 0.2), fractional translation (std 1/8);
- ada_color: brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue rotation,
  saturation (log2 std 1); hue and saturation only on RGB;
- filter ('f'): each of 4 frequency bands (a sym2 filter bank) amplified by a log2-normal
  gain (std 1) at constant expected power, one 43-tap filter per image, reflect-padded;
- noise ('n'): additive Gaussian noise of std |N(0, 0.1)| per image.

The geometric ops compose into one inverse 3x3 matrix per image, executed as ADA does it
so that no aliasing reaches D: reflect padding, 2x upsampling with the sym6 wavelet
low-pass, bilinear sampling, sym6 downsampling. The colour ops compose into one 4x4
matrix on (r, g, b, 1). Both are linear in the pixels, so gradients reach G and R1's
second derivative exists on both backends.

Differences from the reference, both numerically small: the padding is the largest the
reference uses (side - 1), a static shape, where it pads by a margin computed from the
batch's matrices (data-dependent, which XLA cannot compile); and the parameters are
`kgan.gan.randomness`'s global stateless draws (replica-exact), not torch's.
tests/test_ada.py compares every op with outputs of the reference code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from kgan.gan import randomness

Tensor = Any

# ADA's ranges (AugmentPipe's defaults)
XINT_MAX, SCALE_STD, ROTATE_MAX, ANISO_STD, XFRAC_STD = 0.125, 0.2, 1.0, 0.2, 0.125
BRIGHTNESS_STD, CONTRAST_STD, HUE_MAX, SATURATION_STD = 0.2, 0.5, 1.0, 1.0

# The sym6 wavelet's low-pass taps (ADA's `wavelets['sym6']`), normalised to sum 1.
_SYM6 = np.array([
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
])
_TAPS = _SYM6 / _SYM6.sum()
_BORDER = len(_TAPS) // 4  # pixels sampled beyond each side, cropped by the downsampling
_LUMA = np.array([1.0, 1.0, 1.0, 0.0]) / np.sqrt(3.0)  # the grey axis of (r, g, b, 1)
_LUMA_OUTER = np.outer(_LUMA, _LUMA)

GEOMETRY_KEYS = ("xflip", "rotate90", "xint", "scale", "rotate_pre", "aniso", "rotate_post",
                 "xfrac")
COLOR_KEYS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
IMGFILTER_STD, NOISE_STD = 1.0, 0.1
# the bands' expected share of an image's power (a 1/f spectrum)
_BAND_POWER = np.array([10.0, 1.0, 1.0, 1.0]) / 13.0
_SYM2 = np.array([-0.12940952255092145, 0.22414386804185735, 0.836516303737469,
                  0.48296291314469025])


def _filter_bank() -> np.ndarray:
    """[4, 43]: ADA's band-pass filters, from the sym2 wavelet's low and high passes."""
    low, high = _SYM2, _SYM2 * (-1.0) ** np.arange(_SYM2.size)
    low2, high2 = np.convolve(low, low[::-1]) / 2, np.convolve(high, high[::-1]) / 2
    bank = np.eye(4, 1)
    for band in range(1, 4):
        spread = np.zeros((4, 2 * bank.shape[1] - 1))
        spread[:, ::2] = bank  # zeros between the taps: the next octave down
        bank = np.stack([np.convolve(row, low2) for row in spread])
        start = (bank.shape[1] - high2.size) // 2
        bank[band, start:start + high2.size] += high2
    return bank


_FILTER_BANK = _filter_bank()


# --- parameters ------------------------------------------------------------------------


def draw(batch, seed, probability, strengths: dict[str, float], shape) -> dict:
    """Each op's parameter per image, identity where its gate (p x the group's multiplier)
    is closed. `strengths` maps the groups present ("blit", "geom", "ada_color", "filter",
    "noise") to their multipliers; `shape` is an image's (H, W, C). Replica-exact: global
    draws of which this replica keeps its rows."""
    channels = shape[-1]
    blit_seed, geom_seed, color_seed, filter_seed, noise_seed = randomness.split(seed, 5)
    params: dict[str, Tensor] = {}
    if "blit" in strengths:
        p = probability * strengths["blit"]
        s = randomness.split(blit_seed, 6)
        params["xflip"] = _gated(batch, s[0], p, ops.floor(_uniform(batch, s[1]) * 2.0), 0.0)
        params["rotate90"] = _gated(batch, s[2], p, ops.floor(_uniform(batch, s[3]) * 4.0), 0.0)
        shift = (_uniform(batch, s[5], [2]) * 2.0 - 1.0) * XINT_MAX
        params["xint"] = _gated(batch, s[4], p, shift, 0.0, tail=True)
    if "geom" in strengths:
        p = probability * strengths["geom"]
        # two rotations, each with probability p_rot: P(either) = p
        p_rot = 1.0 - ops.sqrt(ops.clip(1.0 - p, 0.0, 1.0))
        s = randomness.split(geom_seed, 10)
        params["scale"] = _gated(batch, s[0], p, _log2_normal(batch, s[1], SCALE_STD), 1.0)
        params["rotate_pre"] = _gated(batch, s[2], p_rot, _angle(batch, s[3], ROTATE_MAX), 0.0)
        params["aniso"] = _gated(batch, s[4], p, _log2_normal(batch, s[5], ANISO_STD), 1.0)
        params["rotate_post"] = _gated(batch, s[6], p_rot, _angle(batch, s[7], ROTATE_MAX), 0.0)
        shift = randomness.global_normal(batch, [2], s[9]) * XFRAC_STD
        params["xfrac"] = _gated(batch, s[8], p, shift, 0.0, tail=True)
    if "ada_color" in strengths:
        p = probability * strengths["ada_color"]
        s = randomness.split(color_seed, 10)
        brightness = randomness.global_normal(batch, [], s[1]) * BRIGHTNESS_STD
        params["brightness"] = _gated(batch, s[0], p, brightness, 0.0)
        params["contrast"] = _gated(batch, s[2], p, _log2_normal(batch, s[3], CONTRAST_STD), 1.0)
        params["lumaflip"] = _gated(batch, s[4], p, ops.floor(_uniform(batch, s[5]) * 2.0), 0.0)
        if channels > 1:  # no hue or saturation in grey
            params["hue"] = _gated(batch, s[6], p, _angle(batch, s[7], HUE_MAX), 0.0)
            saturation = _log2_normal(batch, s[9], SATURATION_STD)
            params["saturation"] = _gated(batch, s[8], p, saturation, 1.0)
    if "filter" in strengths:
        p = probability * strengths["filter"]
        s = randomness.split(filter_seed, 8)
        params["filter"] = ops.stack(
            [_gated(batch, s[2 * band], p, _log2_normal(batch, s[2 * band + 1], IMGFILTER_STD),
                    1.0) for band in range(4)], axis=1)
    if "noise" in strengths:
        p = probability * strengths["noise"]
        s = randomness.split(noise_seed, 3)
        sigma = ops.abs(randomness.global_normal(batch, [], s[1])) * NOISE_STD
        sigma = _gated(batch, s[0], p, sigma, 0.0)
        field = randomness.global_normal(batch, list(shape), s[2])
        params["noise"] = field * sigma[:, None, None, None]
    return params


def _uniform(batch, seed, tail=()):
    return randomness.global_uniform(batch, list(tail), seed)


def _log2_normal(batch, seed, std):
    return ops.power(2.0, randomness.global_normal(batch, [], seed) * std)


def _angle(batch, seed, fraction):
    return (_uniform(batch, seed) * 2.0 - 1.0) * (np.pi * fraction)


def _gated(batch, seed, probability, value, identity, tail=False):
    gate = _uniform(batch, seed) < probability
    if tail:
        gate = gate[:, None]
    return ops.where(gate, value, ops.full_like(value, identity))


# --- execution -------------------------------------------------------------------------


def apply(images: Tensor, params: dict) -> Tensor:
    """The geometric ops, then the colour ops, of `params` (from `draw`) on NHWC images."""
    if any(key in params for key in GEOMETRY_KEYS):
        images = resample(images, geometry_matrix(params, images.shape[1], images.shape[2]))
    if any(key in params for key in COLOR_KEYS):
        images = recolor(images, color_matrix(params))
    if "filter" in params:
        images = band_filter(images, params["filter"])
    if "noise" in params:
        images = images + params["noise"]
    return images


def band_filter(images: Tensor, gains: Tensor) -> Tensor:
    """Amplifies band i of each image by gains[:, i] (ADA's imgfilter): the gains are
    renormalised one band at a time to keep the expected power, summed into one filter
    per image, applied separably after reflect padding."""
    height, width = images.shape[1], images.shape[2]
    pad = _FILTER_BANK.shape[1] // 2
    if min(height, width) <= pad:
        raise ValueError(f"ADA's filter group needs images larger than {pad} px on each side "
                         f"(its {2 * pad + 1}-tap filters pad by reflection), got "
                         f"{height}x{width}")
    total = ops.ones_like(gains)
    for band in range(4):
        gain = ops.where(ops.arange(4) == band, gains[:, band:band + 1], 1.0)
        gain = gain / ops.sqrt(ops.sum(gain * gain * _BAND_POWER.astype(np.float32), axis=1,
                                       keepdims=True))
        total = total * gain
    taps = ops.matmul(total, _constant(_FILTER_BANK))  # [B, 43]
    x = ops.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="reflect")
    return _along_axes(x, _toeplitz(taps, height), _toeplitz(taps, width))


def _toeplitz(taps, length: int):
    """[B, length + taps - 1, length]: each image's valid correlation with its taps, the
    taps' weighted sum of the matrices of the unit taps."""
    size = _FILTER_BANK.shape[1]
    units = np.stack([_correlate_rows(np.eye(length + size - 1), unit) for unit in np.eye(size)])
    return ops.einsum("bk,kio->bio", taps, _constant(units))


def geometry_matrix(params: dict, height: int, width: int) -> Tensor:
    """[B, 3, 3]: output pixel -> input pixel, in pixels from the image centre (ADA's
    G_inv), composed in ADA's order from the parameters present."""
    steps = []
    if "xflip" in params:
        steps.append(_scale(1.0 - 2.0 * params["xflip"], 1.0))
    if "rotate90" in params:
        steps.append(_rotate(np.pi / 2.0 * params["rotate90"]))
    if "xint" in params:
        shift = ops.round(params["xint"] * np.array([width, height], np.float32))
        steps.append(_translate(-shift[:, 0], -shift[:, 1]))
    if "scale" in params:
        steps.append(_scale(1.0 / params["scale"], 1.0 / params["scale"]))
    if "rotate_pre" in params:
        steps.append(_rotate(params["rotate_pre"]))
    if "aniso" in params:
        steps.append(_scale(1.0 / params["aniso"], params["aniso"]))
    if "rotate_post" in params:
        steps.append(_rotate(params["rotate_post"]))
    if "xfrac" in params:
        shift = params["xfrac"] * np.array([width, height], np.float32)
        steps.append(_translate(-shift[:, 0], -shift[:, 1]))
    matrix = steps[0]
    for step in steps[1:]:
        matrix = ops.matmul(matrix, step)
    return matrix


def color_matrix(params: dict) -> Tensor:
    """[B, 4, 4] on (r, g, b, 1), composed in ADA's order from the parameters present."""
    steps = []
    if "brightness" in params:
        b = params["brightness"]
        one, zero = ops.ones_like(b), ops.zeros_like(b)
        steps.append(_matrix([[one, zero, zero, b], [zero, one, zero, b],
                              [zero, zero, one, b], [zero, zero, zero, one]]))
    if "contrast" in params:
        c = params["contrast"]
        one, zero = ops.ones_like(c), ops.zeros_like(c)
        steps.append(_matrix([[c, zero, zero, zero], [zero, c, zero, zero],
                              [zero, zero, c, zero], [zero, zero, zero, one]]))
    if "lumaflip" in params:  # Householder reflection through the grey plane
        flip = params["lumaflip"][:, None, None]
        steps.append(_constant(np.eye(4)) - flip * _constant(2.0 * _LUMA_OUTER))
    if "hue" in params:
        steps.append(_rotate_about_luma(params["hue"]))
    if "saturation" in params:
        s = params["saturation"][:, None, None]
        steps.append(s * _constant(np.eye(4) - _LUMA_OUTER) + _constant(_LUMA_OUTER))
    matrix = steps[0]
    for step in steps[1:]:
        matrix = ops.matmul(step, matrix)  # colour steps apply on the left
    return matrix


def recolor(images: Tensor, matrix: Tensor) -> Tensor:
    """Applies [B, 4, 4] colour matrices to NHWC images of 3 channels, or to 1 channel
    through the mean of the matrix's colour rows (ADA's rule for grey images)."""
    channels = images.shape[-1]
    if channels == 3:
        rotated = ops.einsum("bij,bhwj->bhwi", matrix[:, :3, :3], images)
        return rotated + matrix[:, None, None, :3, 3]
    if channels == 1:
        grey = ops.mean(matrix[:, :3, :], axis=1)  # [B, 4]
        gain = ops.sum(grey[:, :3], axis=1)
        return images * gain[:, None, None, None] + grey[:, None, None, 3:]
    raise ValueError(f"ADA's colour ops (ada_color, bgc) need 1 or 3 channels, got {channels}; "
                     "use DiffAugment's color instead")


def resample(images: Tensor, matrix: Tensor) -> Tensor:
    """Samples NHWC images at `matrix` x (each output pixel), as ADA does: reflect padding,
    2x sym6 upsampling, bilinear sampling (zero outside), sym6 downsampling."""
    height, width = images.shape[1], images.shape[2]
    pad_y, pad_x = height - 1, width - 1  # the largest padding ADA's margin can reach
    padded = ops.pad(images, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]], mode="reflect")
    upsampled = _upsample(padded)
    # ADA's G_inv in the 2x image's pixels: scale by 2, then the filter's half-pixel shift
    to_2x = _constant(_translate_np(-0.5, -0.5) @ _scale_np(2.0, 2.0))
    from_2x = _constant(_scale_np(0.5, 0.5) @ _translate_np(0.5, 0.5))
    matrix = ops.matmul(ops.matmul(to_2x, matrix), from_2x)
    out_h, out_w = 2 * (height + 2 * _BORDER), 2 * (width + 2 * _BORDER)
    in_h, in_w = upsampled.shape[1], upsampled.shape[2]
    # output pixel centres, from the centre of the output; then into input pixel indices
    ys = np.arange(out_h, dtype=np.float32) + 0.5 - out_h / 2.0
    xs = np.arange(out_w, dtype=np.float32) + 0.5 - out_w / 2.0

    def row(i):
        return (matrix[:, i, 0, None, None] * xs[None, None, :]
                + matrix[:, i, 1, None, None] * ys[None, :, None] + matrix[:, i, 2, None, None])

    sampled = _bilinear(upsampled, row(1) + (in_h - 1) / 2.0, row(0) + (in_w - 1) / 2.0)
    return _downsample(sampled)


def _bilinear(images, y, x):
    """images[b] at fractional (y, x) [B, h, w], zero outside (grid_sample's bilinear with
    zero padding, align_corners=False, in pixel indices): four gathers of whole pixels."""
    batch = ops.shape(images)[0]
    height, width, channels = images.shape[1], images.shape[2], images.shape[3]
    out_h, out_w = y.shape[1], y.shape[2]
    pixels = ops.reshape(images, [-1, channels])  # [B * H * W, C]
    offsets = ops.reshape(ops.arange(batch, dtype="int32") * (height * width), [-1, 1, 1])
    y0, x0 = ops.floor(y), ops.floor(x)
    fy, fx = y - y0, x - x0
    total = 0.0
    for dy, wy in ((0.0, 1.0 - fy), (1.0, fy)):
        for dx, wx in ((0.0, 1.0 - fx), (1.0, fx)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy <= height - 1) & (xx >= 0) & (xx <= width - 1)
            index = (ops.cast(ops.clip(yy, 0, height - 1), "int32") * width
                     + ops.cast(ops.clip(xx, 0, width - 1), "int32") + offsets)
            values = ops.take(pixels, ops.reshape(index, [-1]), axis=0)
            weight = ops.reshape(ops.where(inside, wy * wx, 0.0), [-1, 1])
            total = total + values * weight
    return ops.reshape(total, [batch, out_h, out_w, channels])


def _upsample(x):
    """upfirdn2d.upsample2d(x, sym6, up=2): zero insertion, padding (6, 5), convolution
    with the taps x 2 per axis."""
    return _along_axes(x, _upsample_matrix(x.shape[1]), _upsample_matrix(x.shape[2]))


def _downsample(x):
    """upfirdn2d.downsample2d(x, sym6, down=2, padding=-2 x border, flip_filter=True):
    crop 1 per side, correlate with the taps, keep every other pixel: the centre H x W."""
    return _along_axes(x, _downsample_matrix(x.shape[1]), _downsample_matrix(x.shape[2]))


# Each 1-D resampling is a constant [n_in, n_out] matrix (its response to each unit
# impulse), applied to an axis as a matmul: fast on every backend and device, where XLA's
# CPU depthwise convolutions of 3 channels ran 20-40x slower than TensorFlow's.
def _upsample_matrix(length: int) -> np.ndarray:
    zeros = np.zeros((length, 2 * length))
    zeros[:, ::2] = np.eye(length)
    before, after = (len(_TAPS) + 1) // 2, (len(_TAPS) - 2) // 2
    padded = np.pad(zeros, [(0, 0), (before, after)])
    return _correlate_rows(padded, _TAPS[::-1] * 2.0)  # convolution = reversed correlation


def _downsample_matrix(length: int) -> np.ndarray:
    return _correlate_rows(np.eye(length)[:, 1:-1], _TAPS)[:, ::2]


def _correlate_rows(rows: np.ndarray, taps: np.ndarray) -> np.ndarray:
    size = rows.shape[1] - len(taps) + 1
    return sum(rows[:, k:k + size] * tap for k, tap in enumerate(taps)).astype(np.float32)


def _along_axes(x, rows_matrix, cols_matrix):
    """x's rows (axis 1) through rows_matrix, its columns (axis 2) through cols_matrix,
    each [n_in, n_out] (or [B, n_in, n_out]: one per image)."""
    per_image = len(rows_matrix.shape) == 3
    x = ops.einsum("bhwc,bwk->bhkc" if per_image else "bhwc,wk->bhkc", x, cols_matrix)
    return ops.einsum("bhwc,bhk->bkwc" if per_image else "bhwc,hk->bkwc", x, rows_matrix)


# --- matrices --------------------------------------------------------------------------


def _matrix(rows) -> Tensor:
    """[B, R, C] from rows of [B] tensors."""
    entries = [ops.cast(entry, "float32") for row in rows for entry in row]
    stacked = ops.stack(entries, axis=-1)
    return ops.reshape(stacked, [-1, len(rows), len(rows[0])])


def _scale(sx, sy) -> Tensor:
    sx, sy = _same_shape(sx, sy)
    one, zero = ops.ones_like(sx), ops.zeros_like(sx)
    return _matrix([[sx, zero, zero], [zero, sy, zero], [zero, zero, one]])


def _rotate(theta) -> Tensor:
    cos, sin = ops.cos(theta), ops.sin(theta)
    one, zero = ops.ones_like(theta), ops.zeros_like(theta)
    return _matrix([[cos, -sin, zero], [sin, cos, zero], [zero, zero, one]])


def _translate(tx, ty) -> Tensor:
    one, zero = ops.ones_like(tx), ops.zeros_like(tx)
    return _matrix([[one, zero, tx], [zero, one, ty], [zero, zero, one]])


def _rotate_about_luma(theta) -> Tensor:
    """Rotation by theta about the grey axis of (r, g, b, 1) (ADA's rotate3d(v, theta))."""
    v = _LUMA[:3]
    cos, sin = ops.cos(theta)[:, None, None], ops.sin(theta)[:, None, None]
    cross = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    rotation = ((1.0 - cos) * _constant(np.outer(v, v)) + cos * _constant(np.eye(3))
                + sin * _constant(cross))
    top = ops.concatenate([rotation, ops.zeros_like(rotation[:, :, :1])], axis=2)
    bottom = ops.broadcast_to(ops.convert_to_tensor([[[0.0, 0.0, 0.0, 1.0]]], "float32"),
                              [ops.shape(rotation)[0], 1, 4])
    return ops.concatenate([top, bottom], axis=1)


def _same_shape(a, b):
    a = ops.convert_to_tensor(a, "float32")
    b = ops.convert_to_tensor(b, "float32")
    return a + ops.zeros_like(b), b + ops.zeros_like(a)


def _scale_np(sx, sy):
    return np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], np.float32)


def _translate_np(tx, ty):
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1]], np.float32)


def _constant(matrix):
    return ops.convert_to_tensor(matrix, "float32")
