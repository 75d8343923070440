"""DCGAN and MLP builders: shapes, conditioning, float32 outputs, argument checks."""

import keras
import numpy as np
import pytest
from harness import check_family

from kgan import networks


@pytest.mark.parametrize("resolution, channels", [(8, 1), (32, 3)])
def test_dcgan_shapes(resolution, channels):
    g, d = networks.dcgan(resolution, channels, latent_dim=8, base_filters=4)
    assert g.output_shape == (None, resolution, resolution, channels)
    images = g(np.zeros((2, 8), np.float32))
    assert float(np.abs(images).max()) <= 1.0
    assert d(images).shape == (2, 1)


def test_conditional_dcgan_takes_labels():
    g, d = networks.dcgan(8, 1, latent_dim=8, num_classes=10, base_filters=4)
    labels = keras.ops.convert_to_tensor(np.array([0, 9], np.int32))
    images = g([keras.ops.ones((2, 8)), labels])
    assert d([images, labels]).shape == (2, 1)
    # The label changes the image: conditioning is wired in.
    other = g([keras.ops.ones((2, 8)), keras.ops.convert_to_tensor(np.array([1, 2], np.int32))])
    assert not np.allclose(images, other)


def test_batchnorm_conditioning_gives_each_class_its_own_norm_gains():
    """conditioning="batchnorm": z goes to G unchanged, and each batch norm scales and
    shifts by the class (so a class changes the image for the same z)."""
    g, d = networks.dcgan(8, 1, latent_dim=8, num_classes=3, base_filters=4,
                          conditioning="batchnorm")
    norms = [layer for layer in g.layers if type(layer).__name__ == "ConditionalBatchNormalization"]
    assert len(norms) == 2 and not any(isinstance(layer, keras.layers.Embedding)
                                       for layer in g.layers)
    z = keras.ops.ones((2, 8))
    same = keras.ops.convert_to_tensor(np.array([0, 0], np.int32))
    other = keras.ops.convert_to_tensor(np.array([0, 1], np.int32))
    gains = np.arange(1, 4, dtype=np.float32)[:, None]
    norms[0].gamma.assign(gains * np.ones(norms[0].gamma.shape, np.float32))
    first, second = g([z, same]), g([z, other])
    np.testing.assert_allclose(first[0], second[0], atol=1e-6)
    assert not np.allclose(first[1], second[1], atol=1e-3)
    assert d([first, same]).shape == (2, 1)


def test_minibatch_stddev_makes_d_score_real_and_fake_apart():
    """mbstd_group_size appends the batch's spread to D's 4x4 features, so D mixes
    examples and the GAN scores real and fake in separate calls."""
    from kgan.gan.options import cross_sample_layers
    _, d = networks.dcgan(16, 1, latent_dim=4, base_filters=4, mbstd_group_size=4)
    assert cross_sample_layers(d) == ["mbstd"]
    images = np.random.default_rng(0).normal(size=(4, 16, 16, 1)).astype(np.float32)
    # The same two images score otherwise beside other company: their group's spread differs.
    alone = d(np.concatenate([images[:2], images[:2]]))[:2]
    assert not np.allclose(alone, d(images)[:2], atol=1e-5)
    _, plain = networks.dcgan(16, 1, latent_dim=4, base_filters=4)
    assert cross_sample_layers(plain) == []


@pytest.mark.parametrize("options, message", [
    (dict(conditioning="concat"), "conditioning must be one of multiply, batchnorm"),
    (dict(mbstd_group_size=1), "mbstd_group_size must be 0"),
    (dict(mbstd_group_size=True), "mbstd_group_size must be 0"),
])
def test_bad_dcgan_options_say_what_is_accepted(options, message):
    with pytest.raises(ValueError, match=message):
        networks.dcgan(8, 1, latent_dim=8, num_classes=2, **options)


def test_outputs_are_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    g, d = networks.dcgan(8, 3, latent_dim=8, base_filters=4, spectral_norm=True)
    images = g(np.zeros((2, 8), np.float32))
    assert images.dtype == "float32"
    assert d(images).dtype == "float32"
    assert g.layers[1].compute_dtype == "float16"


def test_spectral_norm_wraps_discriminator_layers():
    _, d = networks.dcgan(16, 1, latent_dim=4, base_filters=4, spectral_norm=True)
    assert any(isinstance(layer, keras.layers.SpectralNormalization) for layer in d.layers)


@pytest.mark.parametrize("resolution", [4, 12, 512, 32.0])
def test_resolution_must_be_a_power_of_two_in_range(resolution):
    with pytest.raises(ValueError, match="power of two from 8 to 256"):
        networks.dcgan(resolution, 1, latent_dim=8)


def test_channels_must_be_one_or_three():
    with pytest.raises(ValueError, match="channels must be 1"):
        networks.dcgan(8, 4, latent_dim=8)


def test_mlp_maps_latents_to_points():
    g, d = networks.mlp(data_dim=2, latent_dim=4, hidden=(8,))
    assert g(np.zeros((3, 4), np.float32)).shape == (3, 2)
    assert d(np.zeros((3, 2), np.float32)).shape == (3, 1)


def test_dcgan_passes_the_family_checks(tmp_path):
    """Config round trip, .keras reload, EMA clone and float32 heads under mixed policies."""
    check_family("dcgan", tmp_path)


def test_dcgan_with_class_norms_and_minibatch_stddev_passes_the_family_checks(tmp_path):
    check_family("dcgan", tmp_path, num_classes=3, conditioning="batchnorm", mbstd_group_size=2)


def test_a_family_registered_later_is_listed_and_offered_by_train_py(monkeypatch):
    """A user's (or a benchmark's) own family is one `register` call: `NAMES` and
    `train.py --help` name it, and `--network` takes it."""
    from kgan.cli import train as train_cli
    monkeypatch.setattr(networks, "_REGISTRY", dict(networks._REGISTRY))
    networks.register(networks.Family("my_dcgan", "kgan.networks.families.dcgan",
                                      "DCGAN under another name", options={}))
    assert networks.NAMES[-1] == "my_dcgan"
    parser = train_cli.build_parser()
    assert "my_dcgan" in " ".join(parser.format_help().split())
    assert train_cli.config_from_args(parser.parse_args(["--network", "my_dcgan"])
                                      ).network == "my_dcgan"
