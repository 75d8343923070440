"""ResNet (SNGAN/BigGAN) family: shapes, widths, conditional batch norm, spectral norm,
projection, float32 heads, serialisation, and a few GAN steps."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import LATENT, check_family, image_batches, network_inputs, tiny_gan, tiny_networks

import kgan
from kgan.networks.families import resnet

SMALL = dict(g_width=4, d_width=4, max_multiplier=4)
LABELS = np.array([0, 1, 2, 0], "int32")


def conv_widths(model, kind="conv1"):
    """Output channels of each residual block's first conv, in network order."""
    found = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer)
        if inner.name.endswith(kind):
            found.append(inner.filters)
    return found


@pytest.mark.parametrize("resolution", [16, 32, 64, pytest.param(128, marks=pytest.mark.slow)])
def test_shapes_at_each_supported_resolution(resolution):
    g, d = resnet.resnet(resolution, 3, LATENT, **SMALL)
    assert g.output_shape == (None, resolution, resolution, 3)
    assert d.output_shape == (None, 1)


@pytest.mark.parametrize("resolution", [8, 24, 256, 32.0])
def test_unsupported_resolutions_are_refused(resolution):
    with pytest.raises(ValueError, match="power of two from 16 to 128"):
        resnet.resnet(resolution, 1, LATENT, **SMALL)


def test_widths_double_per_halving_up_to_the_cap():
    # 64 px, width 4, cap 4x: G blocks at 8..64 px, D blocks at 64..4 px (the last unpooled).
    g, d = resnet.resnet(64, 3, LATENT, g_width=4, d_width=4, max_multiplier=4)
    assert conv_widths(g) == [16, 16, 8, 4]
    assert conv_widths(d) == [4, 8, 16, 16, 16]
    # max_multiplier=1: constant widths, as SNGAN's CIFAR-10 networks.
    g, d = resnet.resnet(32, 3, LATENT, **resnet.SIZES["cifar32"])
    assert set(conv_widths(g)) == {256} and set(conv_widths(d)) == {128}


def test_generator_block_is_bn_relu_upsample_conv_with_upsampled_shortcut():
    g, _ = resnet.resnet(16, 1, LATENT, **SMALL)
    kinds = [type(layer).__name__ for layer in g.layers if layer.name.startswith("g8_")]
    assert kinds.count("SyncBatchNormalization") == 2 and kinds.count("UpSampling2D") == 2
    assert g.get_layer("g8_shortcut").kernel_size == (1, 1)
    assert g.get_layer("g8_conv1").kernel_size == (3, 3)
    assert g.get_layer("images").activation is keras.activations.tanh


def test_batch_norm_is_synchronized_and_only_in_the_generator():
    g, d = tiny_networks("resnet", num_classes=3)
    norms = [layer for layer in g.layers
             if isinstance(layer, (keras.layers.BatchNormalization,
                                   resnet.ConditionalBatchNormalization))]
    assert norms and all(getattr(n, "norm", n).synchronized for n in norms)
    assert kgan.gan.options.cross_sample_layers(d) == []


def test_every_discriminator_weight_layer_is_spectrally_normalised():
    _, d = tiny_networks("resnet", num_classes=3)
    weighted = [layer for layer in d.layers if layer.weights]
    assert weighted and all(isinstance(layer, keras.layers.SpectralNormalization)
                            for layer in weighted)
    # The wrapper computes the output, so it carries the wrapped layer's dtype policy.
    assert all(layer.dtype_policy.name == layer.layer.dtype_policy.name for layer in weighted)


def test_first_discriminator_block_is_optimized():
    _, d = resnet.resnet(16, 1, LATENT, **SMALL)
    first = d.get_layer("d16_conv1_sn")
    assert first.input is d.inputs[0]  # no ReLU before the first conv
    # The shortcut pools first, then applies the 1x1 conv.
    shortcut = d.get_layer("d16_shortcut_sn")
    assert shortcut.input.shape[1] == 8


def test_conditional_batch_norm_applies_each_class_gain_and_bias():
    layer = resnet.ConditionalBatchNormalization(3, epsilon=1e-5)
    x = np.random.default_rng(0).normal(2.0, 3.0, (4, 2, 2, 5)).astype("float32")
    layer.build([x.shape, LABELS.shape])
    gamma = np.arange(15, dtype="float32").reshape(3, 5)
    beta = -np.arange(15, dtype="float32").reshape(3, 5)
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    out = np.asarray(layer([x, LABELS], training=True))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    normalised = (x - mean) / np.sqrt(var + 1e-5)
    expected = normalised * gamma[LABELS][:, None, None] + beta[LABELS][:, None, None]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_conditional_batch_norm_uses_global_statistics_under_two_replicas(two_replicas):
    x = np.random.default_rng(0).normal(0.0, 1.0, (4, 2, 2, 3)).astype("float32")
    x[2:] += 5.0  # the second replica's half has a different mean
    with two_replicas.scope():
        layer = resnet.ConditionalBatchNormalization(3)
        layer.build([x.shape, LABELS.shape])
    one_device = np.asarray(layer([x, LABELS], training=True))

    def halves(context):
        i = context.replica_id_in_sync_group
        return x[2 * i:2 * i + 2], LABELS[2 * i:2 * i + 2]

    values = two_replicas.experimental_distribute_values_from_function(halves)
    step = tf.function(lambda v: two_replicas.run(lambda a, b: layer([a, b], training=True),
                                                  args=v))
    local = two_replicas.experimental_local_results(step(values))
    np.testing.assert_allclose(np.concatenate([np.asarray(t) for t in local]), one_device,
                               atol=1e-4)


def test_conditional_networks_use_the_labels():
    g, d = tiny_networks("resnet", num_classes=3)
    assert [t.name for t in g.inputs] == ["z", "label"]
    assert [t.name for t in d.inputs] == ["images", "label"]
    z = np.random.default_rng(0).standard_normal((4, LATENT)).astype("float32")
    gamma = g.get_layer("g8_norm1").gamma  # per-class gains start equal: make them differ
    gamma.assign(np.random.default_rng(1).normal(1.0, 0.5, gamma.shape))
    images = np.asarray(g([z, LABELS]))
    assert not np.allclose(images, g([z, np.array([2, 2, 1, 1], "int32")]))
    # Projection: the logit gains <embed(y), features>, which depends on the label.
    logits = d([images, LABELS])
    assert logits.shape == (4, 1) and logits.dtype == "float32"
    assert not np.allclose(logits, d([images, np.array([2, 2, 1, 1], "int32")]))


@pytest.mark.parametrize("num_classes", [None, 3])
def test_family_contract(num_classes, tmp_path):
    """Config round trip, .keras reload, EMA clone, float32 heads under mixed policies."""
    check_family("resnet", tmp_path, num_classes=num_classes)


def test_registry_builds_and_checks_options():
    g, d = kgan.networks.get("resnet")(32, 3, latent_dim=LATENT, g_width=4, d_width=4)
    assert g.output_shape == (None, 32, 32, 3) and d.output_shape == (None, 1)
    with pytest.raises(ValueError, match="has no option ch"):
        kgan.networks.get("resnet")(32, 3, LATENT, ch=4)


@pytest.mark.parametrize("options, message", [
    (dict(g_width=0), "g_width must be a positive integer"),
    (dict(d_width=-4), "d_width must be a positive integer"),
    (dict(max_multiplier=0), "max_multiplier must be a positive integer"),
])
def test_bad_option_values_name_the_option(options, message):
    with pytest.raises(ValueError, match=message):
        resnet.resnet(16, 1, LATENT, **{**SMALL, **options})


@pytest.mark.parametrize("size, resolution", [
    ("tiny", 32), pytest.param("cifar32", 32, marks=pytest.mark.slow),
    pytest.param("imagenet128", 128, marks=pytest.mark.slow)])
def test_recommended_sizes_build(size, resolution):
    g, d = kgan.networks.get("resnet")(resolution, 3, 128, **resnet.SIZES[size])
    assert g.output_shape == (None, resolution, resolution, 3)
    assert np.isfinite(np.asarray(d(g(network_inputs(g))))).all()


@pytest.mark.parametrize("num_classes, d_steps", [(None, 1), (3, 2)])
def test_gan_trains_a_few_steps_with_finite_losses(num_classes, d_steps):
    gan = tiny_gan("resnet", num_classes=num_classes, d_steps=d_steps, ema_decay=0.9)
    optimizer = lambda: keras.optimizers.Adam(2e-4, beta_1=0.0, beta_2=0.999)  # noqa: E731
    gan.compile(optimizer(), optimizer(), loss="hinge")
    data = image_batches(16, batch=4, labels=bool(num_classes), resolution=16)
    logs = gan.fit(data, epochs=1, verbose=0).history
    assert logs["d_loss"] and all(np.isfinite(v[-1]) for v in logs.values())
    assert gan.generate(2, seed=0).shape == (2, 16, 16, 1)
