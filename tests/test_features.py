"""Feature extractors: Inception weights handling, domain classifier, streaming stats."""

import h5py
import keras
import numpy as np
import pytest
from harness import tiny_gan

from kgan.evaluation import features, metrics

RES = 16


def _digits(resolution=RES):
    """Digits in [-1, 1] at `resolution` with labels, through kgan.data when it exists."""
    try:
        import kgan.data as data
    except ImportError:
        data = None
    if data is not None and hasattr(data, "load"):
        ds = data.load("digits", resolution=resolution, channels=1, batch_size=1797,
                       conditional=True, shuffle=False)
        images, labels = next(iter(ds))
        return images.numpy(), labels.numpy()
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = keras.ops.image.resize(bunch.images[..., None] / 8.0 - 1.0, (resolution,) * 2)
    return np.asarray(images, np.float32), bunch.target


@pytest.fixture(scope="module")
def classifier():
    images, labels = _digits()
    model = features.train_classifier(images[:1500], labels[:1500], 10, epochs=5, width=16)
    return model, images, labels


def test_missing_inception_weights_name_the_file(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match=features.INCEPTION_WEIGHTS_FILE):
        features.InceptionFeatures(str(tmp_path / "nowhere.h5"))
    with pytest.raises(FileNotFoundError, match=features.INCEPTION_WEIGHTS_FILE):
        features.InceptionFeatures(str(tmp_path))  # a folder without the file
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(FileNotFoundError, match="keras_home/models/" +
                       features.INCEPTION_WEIGHTS_FILE):
        features.InceptionFeatures()  # default: Keras's cache, never a download


def _float32_only(model):
    return {layer.compute_dtype for layer in features._all_layers(model)} == {"float32"}


def test_inception_loads_local_weights_and_gives_pool3_features(tmp_path):
    """Built under mixed_float16 (a training run's policy), it still computes in float32."""
    from keras.src.legacy.saving import legacy_h5_format

    # Random weights saved in the legacy .h5 layout of the real keras-applications file.
    reference = keras.applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
    with h5py.File(tmp_path / features.INCEPTION_WEIGHTS_FILE, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    keras.mixed_precision.set_global_policy("mixed_float16")  # the conftest fixture resets it
    extractor = features.InceptionFeatures(str(tmp_path), batch_size=2)
    assert _float32_only(extractor.model)
    gray = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
    out = extractor(gray)
    assert out.shape == (2, 2048) and out.dtype == np.float32 and extractor.dim == 2048
    rgb = np.repeat(np.asarray(keras.ops.image.resize(gray, (299, 299))), 3, axis=-1)
    expected = np.asarray(reference(rgb))  # float32; float16 is ~1e-3 off relative
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
    assert keras.config.dtype_policy().name == "mixed_float16"  # the global policy is kept


@pytest.mark.backends
def test_domain_classifier_learns_digits_and_separates_noise(classifier):
    model, images, labels = classifier
    logits = model.predict(images[1500:], verbose=0)
    assert np.mean(logits.argmax(1) == labels[1500:]) > 0.8
    extractor = features.ClassifierFeatures(model)  # penultimate: the `features` layer
    assert extractor.dim == 32
    first, second = extractor(images[:800]), extractor(images[800:1600])
    noise = np.random.default_rng(0).uniform(-1, 1, (800, RES, RES, 1)).astype(np.float32)
    same = metrics.fid(first, second)
    assert same < metrics.fid(first, extractor(noise)) / 10


@pytest.mark.backends
def test_classifier_features_resize_and_convert_channels(classifier):
    model = classifier[0]
    extractor = features.ClassifierFeatures(model, layer="features", batch_size=7)
    rgb_small = np.random.default_rng(1).uniform(-1, 1, (10, 8, 8, 3)).astype(np.float32)
    out = extractor(rgb_small)
    gray_big = np.asarray(keras.ops.image.resize(rgb_small.mean(-1, keepdims=True), (RES, RES)))
    np.testing.assert_allclose(out, extractor(gray_big), atol=1e-5)


def test_classifier_round_trips_through_a_keras_file(classifier, tmp_path):
    model, images, _ = classifier
    model.save(tmp_path / "clf.keras")
    loaded = features.ClassifierFeatures.from_file(str(tmp_path / "clf.keras"))
    np.testing.assert_allclose(loaded(images[:5]), features.ClassifierFeatures(model)(images[:5]),
                               atol=1e-6)
    with pytest.raises(FileNotFoundError, match="classifier model not found"):
        features.ClassifierFeatures.from_file(str(tmp_path / "missing.keras"))


def test_what_is_not_an_image_classifier_is_named(tmp_path):
    with pytest.raises(ValueError, match="this is a kgan.GAN, not an image classifier"):
        features.ClassifierFeatures(tiny_gan())
    flat = keras.Sequential([keras.Input((64,)), keras.layers.Dense(4), keras.layers.Dense(2)])
    flat.save(tmp_path / "flat.keras")
    with pytest.raises(ValueError, match=r"flat.keras: the classifier must take one batch of "
                                         r"images \[H, W, C\]; its input is \(64,\)"):
        features.ClassifierFeatures.from_file(str(tmp_path / "flat.keras"))


def test_classifier_features_are_float32_under_mixed_float16(classifier, tmp_path):
    """A classifier built, trained or saved under mixed_float16 gives the float32 features."""
    model, images, labels = classifier
    batch = images[:64]
    expected = features.ClassifierFeatures(model)(batch)  # float32 policy (conftest)
    keras.mixed_precision.set_global_policy("mixed_float16")  # the conftest fixture resets it
    mixed = features._classifier(images.shape[1:], 10, width=16)
    mixed.set_weights(model.get_weights())
    mixed.save(tmp_path / "mixed.keras")
    half = keras.Model(mixed.inputs, mixed.get_layer("features").output)(batch)
    assert half.dtype == "float16"  # what features would be without the float32 build
    assert np.max(np.abs(np.asarray(half, np.float32) - expected)) > 1e-3
    for extractor in (features.ClassifierFeatures(model), features.ClassifierFeatures(mixed),
                      features.ClassifierFeatures.from_file(str(tmp_path / "mixed.keras"))):
        assert _float32_only(extractor.model)
        out = extractor(batch)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    trained = features.train_classifier(images[:64], labels[:64], 10, epochs=1, width=4)
    assert _float32_only(trained) and keras.config.dtype_policy().name == "mixed_float16"


def test_as_float32_clones_nested_models_with_their_weights():
    keras.mixed_precision.set_global_policy("mixed_float16")  # the conftest fixture resets it
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4),
                              keras.layers.BatchNormalization()], name="inner")
    inputs = keras.Input((3,))
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(inner(inputs)))
    clone = features.as_float32(model)
    assert _float32_only(clone) and not _float32_only(model)
    for a, b in zip(model.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    x = np.random.default_rng(0).uniform(-1, 1, (5, 3)).astype(np.float32)
    keras.mixed_precision.set_global_policy("float32")
    reference = keras.models.clone_model(clone)
    reference.set_weights(model.get_weights())
    np.testing.assert_allclose(np.asarray(clone(x)), np.asarray(reference(x)), rtol=1e-6)
    assert features.as_float32(clone) is clone  # already float32: no copy


def test_collect_stats_streams_up_to_the_limit(classifier):
    model, images, _ = classifier
    extractor = features.ClassifierFeatures(model)
    stats = features.collect_stats(features.image_batches(images, 64), extractor, limit=300)
    assert stats.count == 300 and stats.samples().shape == (300, 32)
    direct = extractor(images[:300])
    np.testing.assert_allclose(stats.moments.mean(), direct.mean(0), rtol=1e-5, atol=1e-5)


def test_bad_inputs_give_clear_errors(classifier):
    model = classifier[0]
    with pytest.raises(ValueError, match="no layer 'pool3'"):
        features.ClassifierFeatures(model, layer="pool3")
    extractor = features.ClassifierFeatures(model)
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        extractor(np.full((2, RES, RES, 1), 255.0))
    with pytest.raises(ValueError, match=r"\[N, H, W, C\]"):
        extractor(np.zeros((RES, RES)))
    with pytest.raises(ValueError, match="no images"):
        features.collect_stats(iter([]), extractor, limit=10)
