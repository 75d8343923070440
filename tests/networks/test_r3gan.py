"""R3GAN family: shapes, fix-up identity blocks, reference resampling, conditioning,
float32 heads, serialisation, and a few GAN steps."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import (
    LATENT,
    adam,
    check_family,
    dtype_policy,
    image_batches,
    network_inputs,
    tiny_gan,
    tiny_networks,
)

import kgan
from kgan.gan.options import cross_sample_layers
from kgan.networks.families import r3gan

SMALL = dict(widths=[8] * 7, blocks_per_stage=1, expansion=2, group_size=4)


def blocks(model):
    return [layer for layer in model.layers if isinstance(layer, r3gan.InvertedBottleneck)]


SLOW = pytest.mark.slow


@pytest.mark.parametrize("resolution", [
    8, 16, 32, 64, pytest.param(128, marks=SLOW), pytest.param(256, marks=SLOW)])
def test_shapes_at_each_supported_resolution(resolution):
    g, d = r3gan.r3gan(resolution, 3, LATENT, **SMALL)
    assert g.output_shape == (None, resolution, resolution, 3)
    assert d.output_shape == (None, 1)
    # One stage per resolution from 4x4 up, each with its blocks, in both networks.
    stages = int(math.log2(resolution)) - 1
    assert len(blocks(g)) == len(blocks(d)) == stages


@pytest.mark.parametrize("resolution", [4, 12, 512, 32.0])
def test_unsupported_resolutions_are_refused(resolution):
    with pytest.raises(ValueError, match="power of two from 8 to 256"):
        r3gan.r3gan(resolution, 1, LATENT, **SMALL)


def test_every_residual_block_is_the_identity_at_initialisation():
    g, d = tiny_networks("r3gan", num_classes=3)
    rng = np.random.default_rng(0)
    for block in blocks(g) + blocks(d):
        x = rng.standard_normal((2, *block.input.shape[1:])).astype("float32")
        np.testing.assert_allclose(np.asarray(block(x)), x, atol=1e-6)


def test_fixup_initialisation_follows_the_reference():
    # Inner convs: MSR std = gain / sqrt(fan_in) with gain = sqrt(2 / 1.04) * L^(-1/4),
    # L the network's block count; the last conv and the activation biases start at zero.
    total = 16
    block = r3gan.InvertedBottleneck(expansion=2, group_size=16, total_blocks=total)
    block.build((None, 8, 8, 128))
    gain = math.sqrt(2 / 1.04) * total**-0.25
    for conv, fan_in in ((block.expand, 128), (block.grouped, 16 * 9)):
        std = float(np.std(conv.kernel.numpy()))
        assert std == pytest.approx(gain / math.sqrt(fan_in), rel=0.05)
    assert not np.any(block.project.kernel.numpy())
    assert not np.any(block.act1.bias.numpy()) and not np.any(block.act2.bias.numpy())
    assert block.grouped.groups == 256 // 16
    assert not any(conv.use_bias for conv in (block.expand, block.grouped, block.project))


def _upfirdn(x, up, down, pad0, pad1, gain):
    """NumPy upfirdn2d on one channel: zero-insert, pad, correlate with the 4-tap
    [1, 3, 3, 1] kernel (sum 1 in 2-D, times gain), stride `down`."""
    taps = np.array([1.0, 3.0, 3.0, 1.0])
    kernel = np.outer(taps, taps) / 64 * gain
    n = x.shape[0]
    upsampled = np.zeros((n * up, n * up))
    upsampled[::up, ::up] = x
    padded = np.pad(upsampled, ((pad0, pad1), (pad0, pad1)))
    size = padded.shape[0] - 3
    out = np.array([[np.sum(padded[i:i + 4, j:j + 4] * kernel) for j in range(size)]
                    for i in range(size)])
    return out[::down, ::down]


def test_resampling_matches_the_reference_upfirdn2d():
    # upfirdn2d.upsample2d / downsample2d with the reference's [1, 2, 1] filter (its
    # 4-tap kernel [1, 3, 3, 1]): up pads (2, 1) with gain 4, down pads (1, 1).
    x = np.random.default_rng(0).standard_normal((1, 8, 8, 1)).astype("float32")
    up = np.asarray(r3gan.LowpassUpsample2D()(x))[0, :, :, 0]
    np.testing.assert_allclose(up, _upfirdn(x[0, :, :, 0], 2, 1, 2, 1, 4.0), atol=1e-5)
    down = np.asarray(r3gan.LowpassDownsample2D()(x))[0, :, :, 0]
    np.testing.assert_allclose(down, _upfirdn(x[0, :, :, 0], 1, 2, 1, 1, 1.0), atol=1e-5)


def test_resampling_filters_each_channel_separately():
    x = np.zeros((1, 4, 4, 3), "float32")
    x[0, :, :, 1] = 1.0
    for layer in (r3gan.LowpassUpsample2D(), r3gan.LowpassDownsample2D()):
        y = np.asarray(layer(x))
        assert not np.any(y[..., 0]) and not np.any(y[..., 2]) and np.all(y[..., 1] > 0)


def test_generator_starts_from_a_generative_basis_and_d_ends_in_a_discriminative_one():
    g, d = tiny_networks("r3gan")
    assert isinstance(g.layers[1], r3gan.GenerativeBasis)
    depthwise = d.get_layer("discriminative_basis")
    assert isinstance(depthwise, keras.layers.DepthwiseConv2D)
    assert depthwise.kernel_size == (4, 4) and depthwise.output.shape[1:3] == (1, 1)
    assert d.layers[-1].name == "logits" and not d.layers[-1].use_bias


def test_discriminator_has_no_cross_sample_layers():
    _, d = tiny_networks("r3gan", num_classes=3)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in d.layers)
    assert cross_sample_layers(d) == []
    # Hence the GAN scores real and fake in one D call.
    gan = tiny_gan("r3gan")
    gan.compile(adam(), adam())
    assert gan.single_d_pass is True


def test_conditional_networks_use_the_labels():
    g, d = tiny_networks("r3gan", num_classes=3)
    assert [t.name for t in g.inputs] == ["z", "label"]
    assert [t.name for t in d.inputs] == ["images", "label"]
    z = np.random.default_rng(0).standard_normal((2, LATENT)).astype("float32")
    first, second = np.array([0, 1], "int32"), np.array([2, 2], "int32")
    images = np.asarray(g([z, first]))
    assert not np.allclose(images, g([z, second]))
    logits = d([images, first])
    assert logits.shape == (2, 1) and logits.dtype == "float32"
    assert not np.allclose(logits, d([images, second]))


def test_gain_conditioning_gives_each_generator_block_its_own_class_gains():
    """conditioning="gain": z goes to the basis alone, and every G block scales and shifts
    its hidden activations by the class (D keeps its projection)."""
    g, d = tiny_networks("r3gan", num_classes=3, conditioning="gain")
    assert [t.name for t in g.inputs] == ["z", "label"]
    assert not any(isinstance(layer, keras.layers.Embedding) for layer in g.layers)
    assert g.get_layer("generative_basis").input.shape[-1] == LATENT
    assert all(block.num_classes == 3 for block in blocks(g))
    assert not any(block.num_classes for block in blocks(d))
    rng = np.random.default_rng(0)
    z = rng.standard_normal((2, LATENT)).astype("float32")
    same, other = np.array([0, 0], "int32"), np.array([0, 2], "int32")
    # At initialisation every class is the same image (gains 1, biases 0) ...
    np.testing.assert_allclose(np.asarray(g([z, same])), np.asarray(g([z, other])), atol=1e-6)
    # ... and a class's own gain changes only that class's images.
    for block in blocks(g):
        block.project.kernel.assign(rng.standard_normal(block.project.kernel.shape) * 0.1)
        gain = np.ones(block.class_gain.shape, "float32")
        gain[2] = 3.0
        block.class_gain.assign(gain)
    first, second = np.asarray(g([z, same])), np.asarray(g([z, other]))
    np.testing.assert_allclose(first[0], second[0], atol=1e-6)
    assert not np.allclose(first[1], second[1], atol=1e-3)


def test_gain_conditioning_is_a_scaled_and_shifted_hidden_activation():
    block = r3gan.InvertedBottleneck(expansion=2, group_size=4, num_classes=2)
    block.build([(None, 4, 4, 4), (None,)])
    rng = np.random.default_rng(1)
    for weight in (block.class_gain, block.class_bias, block.project.kernel):
        weight.assign(rng.standard_normal(weight.shape))
    x = rng.standard_normal((2, 4, 4, 4)).astype("float32")
    label = np.array([1, 0], "int32")
    hidden = np.asarray(block.expand(x))
    hidden = hidden * block.class_gain.numpy()[label][:, None, None] \
        + block.class_bias.numpy()[label][:, None, None]
    expected = x + np.asarray(block.project(block.act2(block.grouped(block.act1(hidden)))))
    np.testing.assert_allclose(np.asarray(block([x, label])), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("num_classes, conditioning", [
    (None, "concat"), (3, "concat"), (3, "gain")])
def test_family_contract(num_classes, conditioning, tmp_path):
    """Config round trip, .keras reload, EMA clone, float32 heads under mixed policies."""
    check_family("r3gan", tmp_path, num_classes=num_classes, conditioning=conditioning)


def test_registry_builds_and_checks_options():
    g, d = kgan.networks.get("r3gan")(16, 3, latent_dim=LATENT, widths=[8, 8, 8],
                                      blocks_per_stage=1, group_size=4)
    assert g.output_shape == (None, 16, 16, 3) and d.output_shape == (None, 1)
    with pytest.raises(ValueError, match="has no option cardinality"):
        kgan.networks.get("r3gan")(16, 3, LATENT, cardinality=4)


@pytest.mark.parametrize("options, message", [
    (dict(widths=[8, 8]), "widths must list at least 3 positive integers"),
    (dict(widths=[8, 0, 8]), "widths must list at least 3"),
    (dict(group_size=5), "group_size=5 must divide every hidden width"),
    (dict(blocks_per_stage=0), "blocks_per_stage must be an integer >= 1"),
    (dict(expansion=0), "expansion must be an integer >= 1"),
    (dict(conditioning="batchnorm"), "conditioning must be one of concat, gain"),
])
def test_bad_option_values_name_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        r3gan.r3gan(16, 1, LATENT, **{**SMALL, **options})


def test_longer_width_lists_use_the_first_stages():
    g, _ = r3gan.r3gan(8, 1, LATENT, widths=[16, 8, 4, 4], blocks_per_stage=1, group_size=4)
    assert g.get_layer("generative_basis").output.shape[-1] == 16
    assert g.get_layer("g8_transition").output.shape[-1] == 8


@pytest.mark.parametrize("size, resolution", [
    ("tiny", 32), pytest.param("cifar32", 32, marks=pytest.mark.slow),
    pytest.param("ffhq64", 64, marks=pytest.mark.slow)])
def test_recommended_sizes_build(size, resolution):
    g, d = kgan.networks.get("r3gan")(resolution, 3, 64, **r3gan.SIZES[size])
    assert g.output_shape == (None, resolution, resolution, 3)
    assert np.isfinite(np.asarray(d(g(network_inputs(g))))).all()


@pytest.mark.parametrize("num_classes, compile_args", [
    (None, dict(loss="hinge")),
    (3, dict(loss="relativistic", r1_gamma=1.0, r2_gamma=1.0)),
])
def test_gan_trains_a_few_steps_with_finite_losses(num_classes, compile_args):
    gan = tiny_gan("r3gan", num_classes=num_classes, ema_decay=0.9)
    gan.compile(adam(), adam(), **compile_args)
    data = image_batches(16, batch=4, labels=bool(num_classes))
    logs = gan.fit(data, epochs=1, verbose=0).history
    assert logs["d_loss"] and all(np.isfinite(v[-1]) for v in logs.values())
    assert gan.generate(2, seed=0).shape == (2, 8, 8, 1)


def test_gan_trains_under_mixed_float16_on_a_cpu():
    """TensorFlow's CPU kernels have no float16 grouped-conv gradient; GroupedConv2D
    convolves in float32 there."""
    with dtype_policy("mixed_float16"):
        gan = tiny_gan("r3gan")
        gan.compile(adam(), adam(), loss="relativistic", r1_gamma=1.0)
        logs = gan.fit(image_batches(8, batch=4), epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert gan.generator.layers[-1].compute_dtype == "float32"  # G's output layer


def _xla_compiled_functions(model) -> list[str]:
    spec = [tf.TensorSpec((None, *t.shape[1:]), t.dtype) for t in model.inputs]
    graph = tf.function(model).get_concrete_function(spec).graph.as_graph_def()
    return [f.signature.name for f in graph.library.function
            if "_XlaMustCompile" in f.attr and f.attr["_XlaMustCompile"].b]


def test_grouped_convolutions_run_without_xla():
    # Keras wraps grouped convs in jit_compile=True functions; exports must not contain them.
    g, d = tiny_networks("r3gan")
    assert _xla_compiled_functions(g) == [] and _xla_compiled_functions(d) == []
    plain = keras.Sequential([keras.Input((4, 4, 4)), keras.layers.Conv2D(4, 3, groups=2)])
    assert _xla_compiled_functions(plain)  # what the check would catch
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 4)).astype("float32")
    grouped = r3gan.GroupedConv2D(4, 3, groups=2)
    grouped.build(x.shape)
    plain.layers[0].set_weights(grouped.get_weights())
    np.testing.assert_allclose(np.asarray(grouped(x)), np.asarray(plain(x)), atol=1e-5)
