"""StyleGAN2 family: the paper's formulas (equalised learning rate, demodulation, 2nd-moment
normalisation, truncation), resampling against a NumPy upfirdn2d, minibatch stddev against
the reference's algorithm, stateless per-example noise, the training-phase hooks, mixed
precision, serialisation, and a few GAN steps.

Backend-neutral (NumPy inputs, `keras.ops`; marker `backends`, so tests/test_backends.py
runs them again on JAX) except the TensorFlow graph checks, marked `tensorflow_only`."""

import math
import warnings

import keras
import numpy as np
import pytest
from harness import (
    LATENT,
    adam,
    check_family,
    dtype_policy,
    image_batches,
    in_step,
    network_inputs,
    on_backend,
    one_device,
    tiny_gan,
    tiny_networks,
)
from keras import ops

import kgan
from kgan.gan import noise_hash, randomness
from kgan.gan import style as style_training
from kgan.gan.options import cross_sample_layers
from kgan.networks.families import stylegan2
from kgan.networks.families import stylegan2_generator as sg
from kgan.networks.families import stylegan2_layers as sl

pytestmark = pytest.mark.backends
SMALL = dict(cbase=256, cmax=16, mapping_layers=2, w_dim=16)
SLOW = pytest.mark.slow
TF_ONLY = pytest.mark.tensorflow_only


def rng(seed=0):
    return np.random.default_rng(seed)


def normal(shape, seed=0):
    return rng(seed).standard_normal(shape).astype("float32")


def set_noise_strength(model, value=1.0):
    """Noise strengths start at 0 (no effect); tests of the noise path turn them on."""
    found = [w for w in model.weights if w.path.endswith("noise_strength")]
    for weight in found:
        weight.assign(value)
    return found


# ------------------------------------------------------------ NumPy references
def upfirdn2d(x, up=1, down=1, pad=(0, 0), gain=1.0):
    """The reference's upfirdn2d on [H, W, C]: zero insertion, zero padding, the normalised
    [1, 3, 3, 1] outer product times gain, every `down`-th pixel."""
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    kernel = np.outer(taps, taps) / 64 * gain
    h, w, c = x.shape
    upsampled = np.zeros((h * up, w * up, c))
    upsampled[::up, ::up] = x
    padded = np.pad(upsampled, (pad, pad, (0, 0)))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (4, 4), axis=(0, 1))
    return np.einsum("hwcij,ij->hwc", windows, kernel)[::down, ::down]


def conv_valid(x, kernel, stride=1, flip=False):
    """Valid cross-correlation (or true convolution with flip) of [H, W, I] with [k, k, I, O]."""
    if flip:
        kernel = kernel[::-1, ::-1]
    k = kernel.shape[0]
    windows = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))
    return np.einsum("hwcij,ijco->hwo", windows, kernel)[::stride, ::stride]


def minibatch_std_reference(x, group_size, num_channels=1):
    """stylegan2-ada-pytorch's MinibatchStdLayer, in NumPy on NCHW."""
    x = np.transpose(x, (0, 3, 1, 2)).astype("float64")
    n, c, h, w = x.shape
    g, f = min(group_size, n), num_channels
    y = x.reshape(g, -1, f, c // f, h, w)
    y = y - y.mean(axis=0)
    y = np.sqrt(np.square(y).mean(axis=0) + 1e-8)
    y = y.mean(axis=(2, 3, 4)).reshape(-1, f, 1, 1)
    y = np.tile(y, (g, 1, h, w))
    return np.transpose(np.concatenate([x, y], axis=1), (0, 2, 3, 1))


# -------------------------------------------------------------- architecture
@pytest.mark.parametrize("resolution", [
    16, 32, 64, pytest.param(128, marks=SLOW), pytest.param(256, marks=SLOW)])
def test_shapes_at_each_supported_resolution(resolution):
    g, d = stylegan2.stylegan2(resolution, 3, LATENT, **{**SMALL, "cbase": 512})
    assert g.output_shape == (None, resolution, resolution, 3)
    assert d.output_shape == (None, 1)
    assert g.num_ws == 2 * int(math.log2(resolution)) - 2
    images = g(normal((2, LATENT)))
    assert images.shape == (2, resolution, resolution, 3) and images.dtype == "float32"
    logits = d(images)
    assert logits.shape == (2, 1) and np.isfinite(np.asarray(logits)).all()


@pytest.mark.parametrize("resolution", [8, 12, 512, 32.0])
def test_unsupported_resolutions_are_refused(resolution):
    with pytest.raises(ValueError, match="power of two from 16 to 256"):
        stylegan2.stylegan2(resolution, 1, LATENT, **SMALL)


def test_widths_follow_the_reference_rule():
    # min(cbase // res, cmax) at each resolution: 512 // 32 = 16 < cmax 32.
    g, d = stylegan2.stylegan2(32, 3, LATENT, cbase=512, cmax=32, mapping_layers=1, w_dim=8)
    widths = {b.resolution: b.out_channels for b in g.synthesis.blocks}
    assert widths == {4: 32, 8: 32, 16: 32, 32: 16}
    blocks = {layer.name: (layer.tmp_channels, layer.out_channels) for layer in d.layers
              if isinstance(layer, stylegan2.DiscriminatorBlock)}
    assert blocks == {"b32": (16, 32), "b16": (32, 32), "b8": (32, 32)}
    assert d.get_layer("b4_fc").units == 32


def test_generator_is_skip_and_discriminator_residual():
    g, d = tiny_networks("stylegan2")
    first, *rest = g.synthesis.blocks
    assert first.num_conv == 1 and all(b.num_conv == 2 for b in rest)
    assert all(b.torgb.kernel_size == 1 and not b.torgb.demodulate for b in g.synthesis.blocks)
    assert [c.up for c in rest[0].convs] == [2, 1]
    assert first.const.shape == (4, 4, 16)
    block = d.get_layer("b16")
    assert block.fromrgb is not None and d.get_layer("b8").fromrgb is None
    assert block.skip.down == 2 and not block.skip.use_bias and block.conv1.down == 2
    assert block.skip.gain == block.conv1.gain == pytest.approx(math.sqrt(0.5))
    assert isinstance(d.get_layer("mbstd"), sl.MinibatchStdDev)
    assert d.get_layer("mbstd").group_size == 4 and d.get_layer("mbstd").num_channels == 1
    # Every layer is built at construction (fit() under a strategy builds otherwise, by
    # calling the GAN on a data batch).
    for model in (g, d):
        assert all(layer.built for layer in model._flatten_layers())


def reference_sizes(resolution, img, z_dim, w_dim, c_dim, mapping_layers, cbase, cmax):
    """Parameter and buffer counts of the reference's Generator and Discriminator (their
    constructors' shapes, followed by hand): ((G params, G buffers), D params)."""
    def ch(r):
        return min(cbase // r, cmax)

    def fc(fan_in, units):
        return fan_in * units + units

    embed = w_dim if c_dim else 0
    features = [z_dim + embed] + [w_dim] * mapping_layers
    g = (fc(c_dim, embed) if c_dim else 0) + sum(map(fc, features, features[1:]))
    buffers = w_dim  # w_avg
    for r in [2**i for i in range(2, int(math.log2(resolution)) + 1)]:
        convs = [(ch(r), ch(r))] if r == 4 else [(ch(r // 2), ch(r)), (ch(r), ch(r))]
        g += ch(r) * 16 if r == 4 else 0  # const
        for cin, cout in convs:  # affine, weight, bias, noise strength; noise_const buffer
            g += fc(w_dim, cin) + cout * cin * 9 + cout + 1
            buffers += r * r
        g += fc(w_dim, ch(r)) + img * ch(r) + img  # toRGB
    d, r = 0, resolution
    while r > 4:
        tmp, out = ch(r), ch(r // 2)
        d += fc(img, tmp) if r == resolution else 0
        d += fc(tmp * 9, tmp) + fc(tmp * 9, out) + tmp * out
        r //= 2
    c, cmap = ch(4), ch(4) if c_dim else 0
    d += fc((c + 1) * 9, c) + fc(c * 16, c) + fc(c, cmap or 1)
    if c_dim:
        d += fc(c_dim, cmap) + stylegan2.D_MAPPING_LAYERS * fc(cmap, cmap)
    return (g, buffers), d


def sizes(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("num_classes", [None, 5])
def test_parameter_counts_equal_the_reference_networks(num_classes):
    options = dict(cbase=512, cmax=32, mapping_layers=2, w_dim=8)
    g, d = stylegan2.stylegan2(32, 3, LATENT, num_classes, **options)
    (g_params, g_buffers), d_params = reference_sizes(
        32, 3, LATENT, 8, num_classes or 0, 2, 512, 32)
    assert sizes(g.trainable_weights) == g_params
    assert sizes(g.non_trainable_weights) == g_buffers
    assert sizes(d.trainable_weights) == d_params and not d.non_trainable_weights


# ------------------------------------------------------------ paper formulas
def test_equalized_dense_scales_weights_at_runtime_by_lr_mul_over_sqrt_fan_in():
    layer = sl.EqualizedDense(32, activation="lrelu", lr_multiplier=0.01)
    layer.build((None, 256))
    # Stored N(0, 1) / lr_mul: the mapping network's weights are stored 100x larger.
    assert float(np.std(layer.kernel.numpy())) == pytest.approx(100.0, rel=0.05)
    layer.bias.assign(normal((32,), seed=1))
    x = normal((4, 256), seed=2)
    pre = x @ (layer.kernel.numpy() * 0.01 / 16.0) + layer.bias.numpy() * 0.01
    expected = np.where(pre > 0, pre, 0.2 * pre) * math.sqrt(2)
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-4, atol=1e-5)


def test_equalized_conv_scales_weights_at_runtime_by_one_over_sqrt_fan_in():
    layer = sl.EqualizedConv2D(4, 3, use_bias=False)
    layer.build((None, 6, 6, 5))
    assert float(np.std(layer.kernel.numpy())) == pytest.approx(1.0, rel=0.3)
    x = normal((1, 6, 6, 5))
    expected = conv_valid(np.pad(x[0], ((1, 1), (1, 1), (0, 0))),
                          layer.kernel.numpy() / math.sqrt(5 * 9))
    np.testing.assert_allclose(np.asarray(layer(x))[0], expected, rtol=1e-4, atol=1e-5)


def test_downsampling_convs_match_the_reference_conv2d_resample():
    # 3x3: upfirdn2d with padding (2, 2), then the conv at stride 2; 1x1: upfirdn2d down 2
    # with padding (1, 1), then the conv.
    x = normal((1, 8, 8, 3))
    for kernel_size, pad, stride, down in ((3, (2, 2), 2, 1), (1, (1, 1), 1, 2)):
        layer = sl.EqualizedConv2D(4, kernel_size, down=2, use_bias=False)
        layer.build((None, 8, 8, 3))
        filtered = upfirdn2d(x[0], down=down, pad=pad)
        kernel = layer.kernel.numpy() / math.sqrt(3 * kernel_size**2)
        expected = conv_valid(filtered, kernel, stride=stride)
        np.testing.assert_allclose(np.asarray(layer(x))[0], expected, rtol=1e-4, atol=1e-5)


def test_upsampling_modulated_conv_matches_the_reference_conv2d_resample():
    # The reference's generic path: upfirdn2d(up=2, padding (3, 2), gain 4), then a true
    # convolution (flip_weight=False for up layers) with the weight.
    layer = sl.ModulatedConv2D(4, w_dim=8, up=2, demodulate=False, use_noise=False,
                               activation="linear", resolution=8)
    layer.build((None, 4, 4, 3))
    layer.affine.kernel.assign(np.zeros((8, 3), "float32"))  # styles = bias = 1
    x, w = normal((1, 4, 4, 3)), normal((1, 8), seed=1)
    expected = conv_valid(upfirdn2d(x[0], up=2, pad=(3, 2), gain=4.0),
                          layer.kernel.numpy() / math.sqrt(3 * 9), flip=True)
    np.testing.assert_allclose(np.asarray(layer(x, w))[0], expected, rtol=1e-4, atol=1e-5)


def test_image_resampling_matches_upfirdn2d():
    x = normal((1, 8, 8, 3))
    np.testing.assert_allclose(np.asarray(sl.upsample_2x(x))[0],
                               upfirdn2d(x[0], up=2, pad=(2, 1), gain=4.0), atol=1e-5)
    np.testing.assert_allclose(np.asarray(sl.lowpass(x, (1, 1), stride=2))[0],
                               upfirdn2d(x[0], down=2, pad=(1, 1)), atol=1e-5)


def test_demodulation_gives_unit_variance_feature_maps():
    # Paper eq. 3: for i.i.d. unit-variance input, each output map of a demodulated conv
    # has unit variance, whatever the style magnitudes (here affine biases of 5).
    layer = sl.ModulatedConv2D(32, w_dim=16, use_noise=False, activation="linear",
                               resolution=48)
    layer.build((None, 48, 48, 64))
    layer.affine.bias.assign(np.full((64,), 5.0, "float32"))
    x, w = normal((4, 48, 48, 64)), normal((4, 16), seed=1)
    variances = np.var(np.asarray(layer(x, w))[:, 1:-1, 1:-1], axis=(1, 2))  # [N, out]
    assert float(np.mean(variances)) == pytest.approx(1.0, abs=0.03)
    np.testing.assert_allclose(variances, 1.0, atol=0.2)
    # Without demodulation the variance follows the styles (~ 5^2 + 1 here).
    plain = sl.ModulatedConv2D(32, w_dim=16, demodulate=False, use_noise=False,
                               activation="linear", resolution=48)
    plain.build((None, 48, 48, 64))
    plain.affine.bias.assign(np.full((64,), 5.0, "float32"))
    assert float(np.mean(np.var(np.asarray(plain(x, w)), axis=(1, 2)))) > 10


def test_mapping_normalises_z_by_its_second_moment():
    mapping = sg.MappingNetwork(LATENT, 16, num_layers=2, lr_multiplier=0.01)
    mapping.build()
    assert mapping.dense[0].weight_gain == pytest.approx(0.01 / math.sqrt(LATENT))
    z = normal((3, LATENT))
    np.testing.assert_allclose(np.asarray(mapping(7.0 * z)), np.asarray(mapping(z)),
                               rtol=1e-4, atol=1e-5)
    normalised = np.asarray(sl.normalize_2nd_moment(z))
    np.testing.assert_allclose(np.mean(normalised**2, axis=1), 1.0, atol=1e-5)


def reference_order(n, group_size):
    """The batch order under which the reference's strided groups (i mod n/G) are the
    layer's consecutive groups: position g * n/G + k holds example k * G + g."""
    runs = n // group_size
    return [k * group_size + g for g in range(group_size) for k in range(runs)]


def test_minibatch_stddev_matches_the_reference_layer():
    x = normal((8, 4, 4, 6))
    for group_size, channels in ((4, 1), (2, 2), (8, 3)):
        order = reference_order(8, group_size)
        out = np.asarray(sl.MinibatchStdDev(group_size, channels)(x))
        np.testing.assert_allclose(out[order], minibatch_std_reference(
            x[order], group_size, channels), rtol=1e-5, atol=1e-5)


def test_minibatch_stddev_warns_when_the_batch_leaves_groups_of_one():
    with pytest.warns(UserWarning, match=r"a batch of 7 has no divisor in 2..4.*e.g. 4"):
        out = np.asarray(sl.MinibatchStdDev(4)(normal((7, 4, 4, 2))))
    assert np.allclose(out[..., -1], out[0, 0, 0, -1])  # the constant it warns about
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sl.MinibatchStdDev(4)(normal((6, 4, 4, 2)))  # groups of 3: fine


def test_minibatch_stddev_groups_consecutive_examples():
    # A batch of 6 with group size 4: groups of 3, the largest divisor (the reference fails).
    x = normal((6, 4, 4, 2))
    layer = sl.MinibatchStdDev(4)
    out = np.asarray(layer(x))
    order = reference_order(6, 3)
    np.testing.assert_allclose(out[order], minibatch_std_reference(x[order], 3), rtol=1e-5,
                               atol=1e-5)
    changed = x.copy()
    changed[3] += 5.0  # another group
    assert np.allclose(np.asarray(layer(changed))[0], out[0])
    changed[2] += 5.0  # example 0's group
    assert not np.allclose(np.asarray(layer(changed))[0], out[0])
    # Each replica's slice of a global batch holds whole groups: the same answers.
    x = normal((8, 4, 4, 2))
    np.testing.assert_allclose(np.asarray(layer(x[4:])), np.asarray(layer(x))[4:], atol=1e-6)


def test_conv_clamp_clips_activations():
    layer = sl.EqualizedConv2D(4, 3, "lrelu", conv_clamp=0.5, gain=0.5)
    layer.build((None, 6, 6, 3))
    out = np.asarray(layer(100 * normal((2, 6, 6, 3))))
    assert np.abs(out).max() == pytest.approx(0.25)


# ------------------------------------------------------ truncation and w_avg
def test_update_w_avg_lerps_toward_the_batch_mean():
    g, _ = tiny_networks("stylegan2")
    assert not np.any(g.w_avg.numpy()) and not g.w_avg.trainable
    w = normal((4, 16))
    g.update_w_avg(w, beta=0.9)
    np.testing.assert_allclose(g.w_avg.numpy(), 0.1 * w.mean(axis=0), rtol=1e-5, atol=1e-6)
    g.update_w_avg(w[0], beta=0.0)  # an already reduced mean [w_dim] is used as is
    np.testing.assert_allclose(g.w_avg.numpy(), w[0], rtol=1e-6)


def test_truncation_psi_zero_gives_the_w_avg_image_and_one_the_untruncated_image():
    g, _ = tiny_networks("stylegan2")
    g.update_w_avg(np.asarray(g.mapping(normal((64, LATENT), seed=3))), beta=0.0)
    z = normal((4, LATENT))
    average = g.synthesis(g.broadcast(g.w_avg.numpy()[None]), noise_mode="const")
    for psi in (0.0, np.zeros(4, "float32")):
        images = np.asarray(g(z, truncation_psi=psi, noise_mode="const"))
        np.testing.assert_allclose(images, np.repeat(np.asarray(average), 4, 0), atol=1e-5)
    untruncated = np.asarray(g(z, noise_mode="const"))
    assert np.std(untruncated, axis=0).mean() > 1e-3  # different z, different images
    for psi in (1.0, np.ones(4, "float32")):
        np.testing.assert_allclose(g(z, truncation_psi=psi, noise_mode="const"), untruncated,
                                   atol=1e-6)
    # Per-example psi: row 0 at w_avg, row 1 untruncated.
    mixed = np.asarray(g(z[:2], truncation_psi=np.array([0.0, 1.0], "float32"),
                         noise_mode="const"))
    np.testing.assert_allclose(mixed[0], average[0], atol=1e-5)
    np.testing.assert_allclose(mixed[1], untruncated[1], atol=1e-6)


def test_truncation_cutoff_and_psi_act_on_the_ws():
    g, _ = tiny_networks("stylegan2")
    g.update_w_avg(normal((16,), seed=4), beta=0.0)
    z = normal((2, LATENT))
    ws = np.asarray(g.map_ws(z))
    avg = g.w_avg.numpy()
    half = np.asarray(g.map_ws(z, truncation_psi=0.5, truncation_cutoff=2))
    np.testing.assert_allclose(half[:, :2], 0.5 * ws[:, :2] + 0.5 * avg, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(half[:, 2:], ws[:, 2:])


# -------------------------------------------------------------------- noise
def test_a_noise_seed_gives_the_same_image_in_any_batch():
    g, _ = tiny_networks("stylegan2")
    assert len(set_noise_strength(g)) == 5  # 4 px: 1 conv; 8 and 16 px: 2 each
    z = normal((3, LATENT))
    first = np.asarray(g(z, noise_seeds=np.array([5, 6, 7], "int64")))
    other = np.asarray(g(z[[2, 0]], noise_seeds=np.array([7, 5], "int64")))
    np.testing.assert_allclose(other[0], first[2], atol=1e-5)
    np.testing.assert_allclose(other[1], first[0], atol=1e-5)
    # Another seed for the same z: another image.
    again = np.asarray(g(z[:1], noise_seeds=np.array([8], "int64")))
    assert np.abs(again[0] - first[0]).max() > 1e-3


def test_without_seeds_the_noise_is_a_function_of_z():
    g, _ = tiny_networks("stylegan2")
    set_noise_strength(g)
    z = normal((3, LATENT))
    first = np.asarray(g(z))
    np.testing.assert_allclose(np.asarray(g(z[::-1]))[::-1], first, atol=1e-5)
    const, none = np.asarray(g(z, noise_mode="const")), np.asarray(g(z, noise_mode="none"))
    assert np.abs(first - const).max() > 1e-3 and np.abs(const - none).max() > 1e-3
    # The const buffers are fixed: the same for every call and every example's position.
    np.testing.assert_allclose(np.asarray(g(z[::-1], noise_mode="const"))[::-1], const,
                               atol=1e-5)


def test_a_batch_seed_draws_stateless_noise():
    g, _ = tiny_networks("stylegan2")
    set_noise_strength(g)
    ws = g.map_ws(normal((2, LATENT)))
    first = np.asarray(g.synthesis(ws, seed=randomness.seed(1, 2)))
    np.testing.assert_allclose(g.synthesis(ws, seed=randomness.seed(1, 2)), first)
    # One global draw: the noise of a batch seed is global_normal's.
    size = sum(r * r for r in g.synthesis.noise_resolutions)
    flat = np.asarray(randomness.global_normal(2, [size], randomness.seed(1, 2)))
    noises = g.synthesis.noises(ws, seed=randomness.seed(1, 2))
    np.testing.assert_allclose(np.asarray(noises[0]).reshape(2, -1), flat[:, :16])
    np.testing.assert_allclose(np.asarray(noises[-1]).reshape(2, -1), flat[:, -256:])
    assert np.abs(np.asarray(g.synthesis(ws, seed=3)) - first).max() > 1e-3
    with pytest.raises(ValueError, match="noise_mode must be one of"):
        g.synthesis(ws, noise_mode="fixed")


def reference_noise_seeds(values):
    """The documented hash in int64 NumPy: sum_j bits_j w_j mod 2^31 - 1, bits_j the
    unsigned float32 bits of value j (bits_j w_j < 2^63: no overflow)."""
    values = np.asarray(values, np.float32)
    bits = values.reshape(len(values), -1).view(np.uint32).astype(np.int64)
    prime = 2**31 - 1
    weights = np.random.default_rng(0x5717).integers(1, prime, bits.shape[1]) | 1
    return np.sum(bits * weights % prime, axis=1) % prime


def test_noise_seeds_from_values_are_per_example_and_stable():
    values = normal((4, 8))
    values[0, :3] = [-0.0, np.inf, -3e38]  # sign bits set, extreme exponents
    seeds = np.asarray(sg.noise_seeds_from(values))
    # int64 on TensorFlow; int32 on JAX (no int64 without x64), with the same values.
    assert seeds.dtype == (np.int64 if on_backend() == "tensorflow" else np.int32)
    np.testing.assert_array_equal(seeds, reference_noise_seeds(values))
    assert len(set(seeds.tolist())) == 4 and np.all((seeds >= 0) & (seeds < 2**31 - 1))
    np.testing.assert_array_equal(np.asarray(sg.noise_seeds_from(values[[3, 1]])), seeds[[3, 1]])
    # The ws of synthesis: [N, num_ws, w_dim] hashes every value.
    ws = normal((2, 3, 16), seed=1)
    np.testing.assert_array_equal(np.asarray(sg.noise_seeds_from(ws)), reference_noise_seeds(ws))


def test_the_uint32_hash_equals_the_int64_hash_on_any_bits():
    # JAX's path: 32-bit unsigned products in 16-bit halves and Mersenne reductions.
    bits = np.random.default_rng(3).integers(0, 2**32, (64, 700), dtype=np.uint64)
    bits[0] = 2**32 - 1  # the largest terms and sums
    bits[1] = 2**31 - 1  # exactly the prime: 0 modulo it
    bits = bits.astype(np.uint32)
    expected = reference_noise_seeds(bits.view(np.float32))
    np.testing.assert_array_equal(noise_hash.hash_bits(np, bits).astype(np.int64), expected)
    assert expected[1] == 0


def test_noise_from_seeds_is_tensorflow_stateless_normal_on_every_backend():
    # Row i: tf.random.stateless_normal([size], [seed_i, NOISE_STREAM]), which the export
    # draws; kgan.gan.philox computes the same numbers (NumPy here, as a reference).
    from kgan.gan import philox

    seeds = np.array([0, 7, -3, 2**31 - 2], np.int64)
    expected = np.stack([philox.normal(np, (50,), philox.words(np, int(s), sg.NOISE_STREAM))
                         for s in seeds])
    np.testing.assert_allclose(np.asarray(sg.noise_from_seeds(seeds, 50)), expected, atol=1e-5)


def test_seed_words_keep_int64_seeds_exact_through_a_layer_call():
    # A layer call makes its arguments backend tensors; on JAX (x64 off) int64 becomes
    # int32, so generate() passes seeds as (low, high) int32 words.
    from kgan.gan import philox
    from kgan.gan.sampling import seed_words

    seeds = np.array([5, 2**32 + 5, -3, 2**31, 2**63 - 1, -(2**63)], np.int64)
    expected = np.stack([philox.normal(np, (20,), philox.words(np, int(s), sg.NOISE_STREAM))
                         for s in seeds])
    words = ops.convert_to_tensor(seed_words(seeds))  # what a layer call hands on
    np.testing.assert_allclose(np.asarray(sg.noise_from_seeds(words, 20)), expected, atol=1e-5)


@TF_ONLY
def test_noise_seeds_in_a_graph_of_unknown_batch():
    import tensorflow as tf

    values = normal((4, 8))
    traced = tf.function(sg.noise_seeds_from, input_signature=[tf.TensorSpec([None, 8])])
    np.testing.assert_array_equal(np.asarray(traced(values)), reference_noise_seeds(values))


def compiled(fn):
    """`fn` compiled as this backend compiles a step: a tf.function graph, or jax.jit
    (where the noise seeds are traced int32 values)."""
    if on_backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(fn)
    import jax

    return jax.jit(fn)


def test_a_compiled_generator_draws_the_eager_noise():
    g, _ = tiny_networks("stylegan2")
    set_noise_strength(g)
    z = normal((3, LATENT))
    eager = np.asarray(g(z))
    np.testing.assert_allclose(np.asarray(compiled(lambda z: g(z, training=False))(z)), eager,
                               atol=1e-5)
    seeds = np.array([4, 5, 6], "int32")
    np.testing.assert_allclose(
        np.asarray(compiled(lambda z, s: g(z, noise_seeds=s))(z, seeds)),
        np.asarray(g(z, noise_seeds=seeds)), atol=1e-5)


@TF_ONLY
def test_a_traced_generator_with_unknown_batch_draws_the_eager_noise():
    import tensorflow as tf

    g, d = tiny_networks("stylegan2")
    set_noise_strength(g)
    z = normal((3, LATENT))
    traced = tf.function(lambda z: g(z, training=False),
                         input_signature=[tf.TensorSpec([None, LATENT])])
    images = np.asarray(traced(z))
    np.testing.assert_allclose(images, np.asarray(g(z)), atol=1e-5)
    # D too (minibatch stddev finds its group size in the graph).
    scores = tf.function(d, input_signature=[tf.TensorSpec([None, 16, 16, 1])])
    for n in (4, 6, 7):
        batch = np.concatenate([images] * 3)[:n]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n = 7 eagerly: groups of one, as in the graph
            np.testing.assert_allclose(np.asarray(scores(batch)), np.asarray(d(batch)),
                                       atol=1e-5)


# ------------------------------------------------------- training-phase hooks
def test_style_mixing_takes_the_first_ws_from_a_and_the_rest_from_b():
    a, b = normal((2, 6, 4)), normal((2, 6, 4), seed=1)
    mixed = np.asarray(stylegan2.mix_styles(a, b, 2))
    np.testing.assert_array_equal(mixed[:, :2], a[:, :2])
    np.testing.assert_array_equal(mixed[:, 2:], b[:, 2:])
    per_example = np.asarray(stylegan2.mix_styles(a, b, np.array([1, 6], "int32")))
    np.testing.assert_array_equal(per_example[0, :1], a[0, :1])
    np.testing.assert_array_equal(per_example[0, 1:], b[0, 1:])
    np.testing.assert_array_equal(per_example[1], a[1])


def test_mapping_and_synthesis_compose_to_the_generator():
    g, _ = tiny_networks("stylegan2", num_classes=3)
    z, labels = normal((2, LATENT)), np.array([0, 2], "int32")
    w = g.mapping([z, labels])
    assert w.shape == (2, 16)
    ws = g.broadcast(w)
    seeds = np.array([1, 2], "int64")
    np.testing.assert_allclose(g.synthesis(ws, noise_seeds=seeds),
                               g([z, labels], noise_seeds=seeds), atol=1e-6)
    ws_b = g.map_ws([normal((2, LATENT), seed=1), labels])
    mixed = g.synthesis(g.mix_styles(ws, ws_b, 3), noise_mode="const")
    assert not np.allclose(mixed, g.synthesis(ws, noise_mode="const"))


def test_path_length_gradients_reach_the_ws_and_the_weights():
    # What path-length regularisation needs: d(sum(G(ws) * r)) / d ws, then its gradient
    # with respect to G's weights (a double backward pass through the synthesis network:
    # modulated convs, the transposed conv and the upfirdn filters).
    gan = tiny_gan("stylegan2")
    gan.compile(adam(), adam())
    g, backend = gan.generator, kgan.gan.backends.current()
    set_noise_strength(g, 0.1)
    z, r = normal((2, LATENT)), normal((2, 16, 16, 1), seed=2) / 16.0

    def penalty():
        ws = g.map_ws(z)
        lengths = style_training.path_lengths(
            lambda ws: g.synthesis(ws, seed=randomness.seed(0, 1)), ws, r)
        return ops.mean(ops.square(lengths - 1.0)), lengths

    _, lengths, weight_grads = in_step(
        gan, lambda: backend.value_and_grad(penalty, g.trainable_variables))
    assert np.all(np.asarray(lengths) > 0)
    names = [v.path for v, grad in zip(g.trainable_variables, weight_grads, strict=True)
             if grad is not None and np.isfinite(np.asarray(grad)).all()
             and np.any(np.asarray(grad))]
    assert any("mapping/fc" in n for n in names) and any("conv1/kernel" in n for n in names)
    assert any("conv0/kernel" in n for n in names)  # through the upsampling conv


# --------------------------------------------------------------- D and labels
def test_discriminator_declares_its_cross_sample_layer():
    _, d = tiny_networks("stylegan2")
    assert d.cross_sample is True
    assert "mbstd" in cross_sample_layers(d)
    gan = tiny_gan("stylegan2")
    gan.compile(adam(), adam())
    assert gan.single_d_pass is False


def test_conditional_networks_use_the_labels():
    g, d = tiny_networks("stylegan2", num_classes=3)
    assert [t.name for t in g.inputs] == ["z", "label"]
    assert [t.name for t in d.inputs] == ["images", "label"]
    z = normal((2, LATENT))
    first, second = np.array([0, 1], "int32"), np.array([2, 2], "int32")
    images = np.asarray(g([z, first]))
    assert not np.allclose(images, g([z, second]))
    logits = d([images, first])
    assert logits.shape == (2, 1) and logits.dtype == "float32"
    assert not np.allclose(logits, d([images, second]))
    assert d.get_layer("mapping").num_layers == stylegan2.D_MAPPING_LAYERS


# ------------------------------------------- precision, serialisation, registry
def test_num_fp16_res_puts_only_the_highest_resolutions_in_the_mixed_policy():
    with dtype_policy("mixed_float16"):
        g, d = stylegan2.stylegan2(32, 3, LATENT, **SMALL, num_fp16_res=1, conv_clamp=256)
        images = g(normal((2, LATENT)))
        logits = d(images)
        everywhere, _ = stylegan2.stylegan2(16, 3, LATENT, **SMALL)
    policies = {b.resolution: b.dtype_policy.name for b in g.synthesis.blocks}
    assert policies == {4: "float32", 8: "float32", 16: "float32", 32: "mixed_float16"}
    assert g.synthesis.blocks[-1].convs[0].compute_dtype == "float16"
    assert all(b.torgb.compute_dtype == "float32" for b in g.synthesis.blocks)
    assert g.mapping.compute_dtype == "float32"
    assert d.get_layer("b32").compute_dtype == "float16"
    assert d.get_layer("b16").compute_dtype == "float32"
    assert d.get_layer("b4_conv").compute_dtype == "float32"
    assert images.dtype == "float32" and logits.dtype == "float32"
    assert np.isfinite(np.asarray(images)).all() and np.isfinite(np.asarray(logits)).all()
    assert {b.compute_dtype for b in everywhere.synthesis.blocks} == {"float16"}


@pytest.mark.parametrize("num_classes", [None, 3])
def test_family_contract(num_classes, tmp_path):
    """Config round trip, .keras reload, EMA clone, float32 heads under mixed policies."""
    check_family("stylegan2", tmp_path, num_classes=num_classes)


def test_clone_and_reload_keep_w_avg_noise_and_truncation(tmp_path):
    g, _ = tiny_networks("stylegan2", num_classes=3)
    set_noise_strength(g, 0.5)
    g.update_w_avg(normal((16,), seed=5), beta=0.0)
    inputs = network_inputs(g, n=3)
    expected = np.asarray(g(inputs, truncation_psi=0.7, noise_seeds=np.arange(3)))
    clone = keras.models.clone_model(g)
    clone.set_weights(g.get_weights())
    g.save(tmp_path / "g.keras")
    loaded = keras.models.load_model(tmp_path / "g.keras")
    for model in (clone, loaded):
        assert isinstance(model, stylegan2.StyleGAN2Generator)
        np.testing.assert_allclose(model.w_avg.numpy(), g.w_avg.numpy())
        np.testing.assert_allclose(model(inputs, truncation_psi=0.7, noise_seeds=np.arange(3)),
                                   expected, atol=1e-6)
        np.testing.assert_allclose(model(inputs, noise_mode="const"),
                                   g(inputs, noise_mode="const"), atol=1e-6)


def test_registry_defaults_match_the_builder():
    family = kgan.networks.get("stylegan2")
    assert dict(family.options) == stylegan2.DEFAULTS
    assert family.resolutions == (16, 256)
    g, d = family(16, 1, latent_dim=LATENT, **SMALL)
    assert g.get_config()["mapping_lr_multiplier"] == 0.01 and g.get_config()["cmax"] == 16
    assert d.get_config()["mbstd_group_size"] == 4
    with pytest.raises(ValueError, match="has no option channel_base"):
        family(16, 1, LATENT, channel_base=4)


@pytest.mark.parametrize("options, message", [
    (dict(cbase=8), "cbase must be an integer >= 16"),
    (dict(cmax=0), "cmax must be an integer >= 1"),
    (dict(mapping_layers=0), "mapping_layers must be an integer >= 1"),
    (dict(w_dim=2.5), "w_dim must be an integer"),
    (dict(mapping_lr_multiplier=0.0), r"mapping_lr_multiplier must be a number in \(0, 1\]"),
    (dict(mbstd_group_size=0), "mbstd_group_size must be an integer >= 1 or None"),
    (dict(conv_clamp=-1), "conv_clamp must be a positive number"),
    (dict(num_fp16_res=-1), "num_fp16_res must be an integer >= 0"),
])
def test_bad_option_values_name_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        stylegan2.stylegan2(16, 1, LATENT, **{**SMALL, **options})


@pytest.mark.parametrize("num_classes, compile_args", [
    (None, dict(loss="non_saturating")),
    (3, dict(loss="non_saturating", r1_gamma=1.0, reg_interval=2)),
])
def test_gan_trains_a_few_steps_with_finite_losses(num_classes, compile_args):
    gan = tiny_gan("stylegan2", num_classes=num_classes, ema_decay=0.9)
    gan.compile(adam(), adam(), **compile_args)
    data = image_batches(16, batch=4, labels=bool(num_classes), resolution=16)
    logs = gan.fit(data, epochs=1, verbose=0).history
    assert logs["d_loss"] and all(np.isfinite(v[-1]) for v in logs.values())
    images = gan.generate(2, seed=0)
    assert images.shape == (2, 16, 16, 1)
    np.testing.assert_allclose(gan.generate(2, seed=0), images, atol=1e-6)


def _train_one_epoch(strategy):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        g, d = tiny_networks("stylegan2", num_classes=3)
        set_noise_strength(g, 0.1)  # the noise path takes part
        gan = kgan.GAN(g, d, latent_dim=LATENT, num_classes=3, ema_decay=0.9)
        gan.compile(keras.optimizers.SGD(1e-2), keras.optimizers.SGD(1e-2),
                    loss="non_saturating", r1_gamma=1.0)
    data = image_batches(16, batch=8, labels=True, resolution=16)
    return gan, gan.fit(data, epochs=1, verbose=0).history


@SLOW
def test_two_replicas_compute_the_same_update_as_one_device(two_replicas):
    # Noise seeded by each example's (global, sliced) z and minibatch-stddev groups of
    # consecutive examples keep design.md rule 2 with a cross-sample D.
    single, single_logs = _train_one_epoch(one_device())
    mirrored, mirrored_logs = _train_one_epoch(two_replicas)
    for a, b in zip(single.get_weights(), mirrored.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    for name, values in single_logs.items():
        np.testing.assert_allclose(mirrored_logs[name], values, rtol=1e-4, atol=1e-5)
