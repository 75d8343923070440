"""TensorBoard callbacks on a real tiny GAN, read back with TensorBoard's own reader."""

import io
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import tiny_networks
from PIL import Image
from tensorboard.backend.event_processing import event_accumulator
from tensorboard.plugins.hparams import metadata as hparams_metadata

import kgan
from kgan.evaluation import quality
from kgan.evaluation.features import ClassifierFeatures
from kgan.training import callbacks

RES, STEPS, EPOCHS, BATCH = 8, 4, 2, 8


def _gan(lr=2e-4) -> kgan.GAN:
    generator, discriminator = tiny_networks("dcgan", resolution=RES)
    gan = kgan.GAN(generator, discriminator, latent_dim=8)
    gan.compile(keras.optimizers.Adam(lr, beta_1=0.5), keras.optimizers.Adam(1e-4, beta_1=0.5))
    return gan


def _data():
    images = np.random.default_rng(0).uniform(-1, 1, (STEPS * BATCH, RES, RES, 1))
    return tf.data.Dataset.from_tensor_slices(images.astype(np.float32)).batch(BATCH)


def _reader(folder):
    acc = event_accumulator.EventAccumulator(
        folder, size_guidance={event_accumulator.IMAGES: 0, event_accumulator.SCALARS: 0,
                               event_accumulator.TENSORS: 0},
    )
    return acc.Reload()


def _scalars(acc, tag):
    """(step, value) pairs of a scalar tag; TF2 summaries are stored as tensors."""
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One 2-epoch fit with all callbacks; tests inspect what it wrote."""
    run = tmp_path_factory.mktemp("run")
    logs, samples = str(run / "logs"), str(run / "samples")
    extractor = ClassifierFeatures(
        keras.Sequential([keras.Input((RES, RES, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(6, name="feat"), keras.layers.Dense(2)])
    )
    real = np.random.default_rng(1).uniform(-1, 1, (40, RES, RES, 1)).astype(np.float32)
    gan = _gan()
    gan.fit(_data(), epochs=EPOCHS, verbose=0, callbacks=[
        callbacks.QualityMetrics(real, extractor, metrics=("fid", "dc"), num_samples=20,
                                 batch_size=8, k=3),
        callbacks.ScalarLogger(logs, update_freq=2),
        callbacks.ImageGrid(logs, samples_dir=samples, num_images=6, columns=3),
        callbacks.HParams(logs, {"lr": 2e-4, "loss": "non_saturating", "shape": (8, 8)}),
    ])
    return logs, samples, gan


def test_epoch_scalars_have_contract_tags_and_epoch_steps(trained):
    logs, _, _ = trained
    acc = _reader(os.path.join(logs, callbacks.EPOCH_RUN))
    tags = set(acc.Tags()["tensors"])
    expected = {"d_loss", "g_loss", "d_real", "d_fake", "d_learning_rate", "g_learning_rate",
                "fid", "density", "coverage"}
    assert expected <= tags
    # Epoch scalars sit at the global step that ended each epoch (one x axis with `batch`).
    assert [s for s, _ in _scalars(acc, "d_loss")] == [STEPS, 2 * STEPS]
    assert _scalars(acc, "d_learning_rate")[0][1] == pytest.approx(2e-4)
    assert _scalars(acc, "g_learning_rate")[0][1] == pytest.approx(1e-4)
    fids = [v for _, v in _scalars(acc, "fid")]
    assert len(fids) == 2 and all(np.isfinite(v) and v >= 0 for v in fids)  # one per epoch


def test_batch_scalars_every_n_global_steps(trained):
    logs, _, _ = trained
    acc = _reader(os.path.join(logs, callbacks.BATCH_RUN))
    assert [s for s, _ in _scalars(acc, "g_loss")] == [2, 4, 6, 8]


def test_samples_image_is_a_grid_of_the_right_size(trained):
    logs, samples, gan = trained
    acc = _reader(os.path.join(logs, callbacks.EPOCH_RUN))
    events = acc.Tensors("samples")
    assert [e.step for e in events] == [STEPS, 2 * STEPS]  # the epoch scalars' steps
    # image summaries hold [width, height, png...] as strings
    width, height, png = tf.make_ndarray(events[-1].tensor_proto)[:3]
    image = np.array(Image.open(io.BytesIO(png)))
    # 2 rows x 3 columns of 8x8 with 1-px padding
    assert image.shape == (2 * 9 + 1, 3 * 9 + 1) and (int(width), int(height)) == (28, 19)
    assert sorted(os.listdir(samples)) == ["epoch_0001.png", "epoch_0002.png"]
    on_disk = np.array(Image.open(os.path.join(samples, "epoch_0002.png")))
    np.testing.assert_array_equal(on_disk, image)
    expected = callbacks.image_grid(gan.generate(6, seed=0), columns=3)[..., 0]
    np.testing.assert_array_equal(image, expected)


def test_hparams_session_recorded(trained):
    logs, _, _ = trained
    acc = _reader(os.path.join(logs, callbacks.EPOCH_RUN))  # the session shares the epoch run
    assert hparams_metadata.SESSION_START_INFO_TAG in acc.summary_metadata
    content = acc.summary_metadata[hparams_metadata.SESSION_START_INFO_TAG].plugin_data.content
    info = hparams_metadata.parse_session_start_info_plugin_data(content)
    assert info.hparams["loss"].string_value == "non_saturating"
    assert info.hparams["shape"].string_value == "(8, 8)"
    assert info.hparams["lr"].number_value == pytest.approx(2e-4)


def test_quality_metrics_enter_epoch_logs():
    gan = _gan()
    real = np.random.default_rng(2).uniform(-1, 1, (16, RES, RES, 1)).astype(np.float32)
    extractor = ClassifierFeatures(
        keras.Sequential([keras.Input((RES, RES, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(4), keras.layers.Dense(2)])
    )
    history = gan.fit(_data().take(1), epochs=2, verbose=0, callbacks=[
        callbacks.QualityMetrics(real, extractor, metrics=("fid",), every=2, num_samples=16)
    ])
    assert "fid" in history.history and len(history.history["fid"]) == 1


def _tiny_extractor():
    return ClassifierFeatures(keras.Sequential([
        keras.Input((RES, RES, 1)), keras.layers.Flatten(), keras.layers.Dense(5),
        keras.layers.Dense(2)]))


def test_quality_metrics_is_the_quality_routine_with_real_stats_computed_once(tmp_path):
    """The callback logs what evaluate_quality (kgan-evaluate's routine) returns for the same
    generator and seeds, at the global step; the real side is read once per run."""
    real = np.random.default_rng(3).uniform(-1, 1, (24, RES, RES, 1)).astype(np.float32)
    extractor, seen = _tiny_extractor(), []
    once = (seen.append(start) or real[start : start + 8] for start in range(0, 24, 8))
    metric = callbacks.QualityMetrics(once, extractor, metrics=("fid", "kid"), num_samples=24,
                                      seed=5, log_dir=str(tmp_path), batch_size=8,
                                      num_subsets=3, subset_size=10)
    gan = _gan()
    history = gan.fit(_data(), epochs=2, verbose=0, callbacks=[metric]).history
    assert seen == [0, 8, 16]  # a one-pass generator: a second read would find no images
    expected = quality.evaluate_quality(lambda n, seed: gan.generate(n, seed=seed), real,
                                        extractor, ("fid", "kid"), 24, seed=5, batch_size=8,
                                        num_subsets=3, subset_size=10)
    assert set(expected) == {"fid", "kid", "kid_std"}
    for name, value in expected.items():
        assert history[name][-1] == pytest.approx(value, rel=1e-5, abs=1e-9)
    acc = _reader(str(tmp_path / callbacks.EPOCH_RUN))
    logged = _scalars(acc, "fid")
    assert [step for step, _ in logged] == [STEPS, 2 * STEPS]  # global train steps
    assert logged[-1][1] == pytest.approx(history["fid"][-1], rel=1e-6)


def test_quality_metrics_accepts_precomputed_real_statistics():
    real = np.random.default_rng(4).uniform(-1, 1, (16, RES, RES, 1)).astype(np.float32)
    extractor = _tiny_extractor()
    stats = quality.real_statistics(real, extractor, ("fid", "pr"), 16)
    gan = _gan()
    from_stats = callbacks.QualityMetrics(stats, extractor, metrics=("fid", "pr"),
                                          num_samples=16, k=3).evaluate(gan)
    from_images = callbacks.QualityMetrics(real, extractor, metrics=("fid", "pr"),
                                           num_samples=16, k=3).evaluate(gan)
    assert from_stats == pytest.approx(from_images)
    fid_only = quality.real_statistics(real, extractor, ("fid",), 16)
    with pytest.raises(ValueError, match="keep no samples"):
        callbacks.QualityMetrics(fid_only, extractor, metrics=("pr",), num_samples=16).evaluate(gan)


def test_learning_rate_schedule_and_loss_scale_wrapping():
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=1, decay_rate=0.5)
    gan = _gan()
    gan.d_optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam(schedule))
    values = callbacks.optimizer_scalars(gan)
    assert values["d_learning_rate"] == pytest.approx(1e-3)
    assert values["d_loss_scale"] == pytest.approx(2.0**15)
    assert "g_loss_scale" not in values
    gan.d_optimizer.inner_optimizer.iterations.assign(2)
    assert callbacks.optimizer_scalars(gan)["d_learning_rate"] == pytest.approx(2.5e-4)


# What names the compiled step in a trace: the tf.function, or the jitted XLA module.
TRAIN_STEP = {"tensorflow": b"multi_step_on_iterator", "jax": b"jit_train_step"}


@pytest.mark.backends  # tests/test_backends.py runs it on JAX too (jax.profiler)
def test_profiler_traces_the_train_steps_for_tensorboard(tmp_path):
    gan = _gan()
    gan.fit(_data(), epochs=1, verbose=0,
            callbacks=[callbacks.Profiler(str(tmp_path), start=1, stop=3)])
    (trace,) = (tmp_path / "plugins" / "profile").glob("*/*.xplane.pb")
    # The window holds the GAN's compiled step (XLA's module on JAX, the tf.function's
    # graph on TensorFlow), not only the host's Python.
    assert TRAIN_STEP[keras.backend.backend()] in trace.read_bytes()


def test_image_grid_layout_and_bad_input():
    images = np.stack([np.full((2, 3, 1), v, np.float32) for v in (-1.0, 0.0, 1.0)])
    grid = callbacks.image_grid(images, columns=2, padding=1)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    assert grid[1, 5, 0] == 128 and grid[4, 1, 0] == 255 and grid[4, 5, 0] == 0
    with pytest.raises(ValueError, match="non-empty"):
        callbacks.image_grid(np.zeros((0, 2, 2, 1)))


def test_bad_arguments_fail_early(tmp_path):
    with pytest.raises(ValueError, match="valid names: dc, fid, kid, pr"):
        callbacks.QualityMetrics(np.zeros((4, 8, 8, 1)), None, metrics=("fidd",))
    with pytest.raises(ValueError, match="num_samples >= 2"):
        callbacks.QualityMetrics(np.zeros((4, 8, 8, 1)), None, num_samples=1)
    with pytest.raises(ValueError, match="no metric named"):
        callbacks.QualityMetrics(np.zeros((4, 8, 8, 1)), None, metrics=())
    with pytest.raises(ValueError, match="start < stop"):
        callbacks.Profiler(str(tmp_path), start=3, stop=3)
    with pytest.raises(ValueError, match="update_freq"):
        callbacks.ScalarLogger(str(tmp_path), update_freq=-1)


def test_loss_scale_logged_under_mixed_float16(tmp_path):
    keras.mixed_precision.set_global_policy("mixed_float16")  # the conftest fixture resets it
    gan = _gan()
    gan.fit(_data().take(2), epochs=1, verbose=0,
            callbacks=[callbacks.ScalarLogger(str(tmp_path), update_freq=0)])
    acc = _reader(str(tmp_path / callbacks.EPOCH_RUN))
    step, scale = _scalars(acc, "d_loss_scale")[0]
    assert step == 2 and 1 <= scale <= 2.0**15 and np.log2(scale) % 1 == 0  # dynamic scale
    assert {"g_loss_scale", "d_learning_rate", "g_learning_rate"} <= set(acc.Tags()["tensors"])
    assert not (tmp_path / callbacks.BATCH_RUN).exists()


def test_batch_steps_continue_across_fit_calls(tmp_path):
    """Steps come from the GAN's saved step_counter, so a resumed run does not restart at 0."""
    gan = _gan()
    for _ in range(2):
        gan.fit(_data(), epochs=1, verbose=0,
                callbacks=[callbacks.ScalarLogger(str(tmp_path), update_freq=3)])
    acc = _reader(str(tmp_path / callbacks.BATCH_RUN))
    assert [s for s, _ in _scalars(acc, "d_loss")] == [3, 6]
