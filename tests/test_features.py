"""Feature extractors: Inception weights handling, domain classifier, streaming stats."""

import h5py
import keras
import numpy as np
import pytest

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


def test_inception_loads_local_weights_and_gives_pool3_features(tmp_path):
    # Random weights saved in the legacy .h5 layout of the real keras-applications file.
    from keras.src.legacy.saving import legacy_h5_format

    reference = keras.applications.InceptionV3(
        include_top=False, weights=None, pooling="avg", input_shape=(299, 299, 3))
    with h5py.File(tmp_path / features.INCEPTION_WEIGHTS_FILE, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, reference)
    extractor = features.InceptionFeatures(str(tmp_path), batch_size=2)
    gray = np.random.default_rng(0).uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32)
    out = extractor(gray)
    assert out.shape == (2, 2048) and extractor.dim == 2048
    rgb = np.repeat(np.asarray(keras.ops.image.resize(gray, (299, 299))), 3, axis=-1)
    np.testing.assert_allclose(out, np.asarray(reference(rgb)), atol=1e-4)


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
