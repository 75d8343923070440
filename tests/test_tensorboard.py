"""TensorBoard as a user sees it: one step axis for both runs, and the hparams table's metrics.

The event files are read back with TensorBoard's own reader, and the hparams table with
the hparams plugin's own backend (what the dashboard's HTTP handler calls), for both
ways users start TensorBoard: `--logdir RUN/logs` and `--logdir` a folder of runs.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tensorboard import context
from tensorboard.backend.event_processing import (
    data_provider,
    event_accumulator,
    plugin_event_multiplexer,
)
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import api_pb2, backend_context, list_session_groups

import kgan
from kgan.evaluation.features import ClassifierFeatures
from kgan.training import callbacks

RES, STEPS, BATCH = 8, 4, 8


def _gan(seed: int) -> kgan.GAN:
    keras.utils.set_random_seed(seed)
    generator, discriminator = kgan.networks.get("dcgan")(RES, 1, 8, base_filters=4)
    gan = kgan.GAN(generator, discriminator, latent_dim=8)
    gan.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), keras.optimizers.Adam(2e-4, beta_1=0.5))
    return gan


def _data():
    images = np.random.default_rng(0).uniform(-1, 1, (STEPS * BATCH, RES, RES, 1))
    return tf.data.Dataset.from_tensor_slices(images.astype(np.float32)).batch(BATCH)


def _quality():
    extractor = ClassifierFeatures(keras.Sequential([
        keras.Input((RES, RES, 1)), keras.layers.Flatten(), keras.layers.Dense(4, name="f"),
        keras.layers.Dense(2)]))
    real = np.random.default_rng(1).uniform(-1, 1, (16, RES, RES, 1)).astype(np.float32)
    return callbacks.QualityMetrics(real, extractor, metrics=("fid",), num_samples=16,
                                    batch_size=8)


def _train(logs: str, seed: int, epochs: tuple[int, int], lr: float,
           metrics: tuple[str, ...]) -> kgan.GAN:
    gan = _gan(seed)
    scoring = [_quality()] if metrics else []
    gan.fit(_data(), initial_epoch=epochs[0], epochs=epochs[1], verbose=0, callbacks=[
        *scoring, callbacks.ScalarLogger(logs, update_freq=2, batch_size=BATCH),
        callbacks.HParams(logs, {"lr": lr, "loss": "non_saturating", "metrics": metrics}),
    ])
    return gan


def _scalars(folder: str, tag: str) -> list[tuple[int, float]]:
    acc = event_accumulator.EventAccumulator(
        folder, size_guidance={event_accumulator.TENSORS: 0}).Reload()
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in acc.Tensors(tag)]


def _hparams_table(logdir: str) -> dict[str, dict[str, tuple[float, int]]]:
    """{session name: {metric tag: (value, step)}} as the hparams dashboard lists them."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = data_provider.MultiplexerDataProvider(multiplexer, logdir)
    backend = backend_context.Context(base_plugin.TBContext(
        logdir=logdir, data_provider=provider, multiplexer=multiplexer))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=100, allowed_statuses=[
            api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_RUNNING])
    response = list_session_groups.Handler(
        context.RequestContext(), backend, "", request).run()
    return {session.name: {m.name.tag: (m.value, m.training_step)
                           for m in session.metric_values}
            for group in response.session_groups for session in group.sessions}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs under one folder; the first scored fid and trained 2 epochs, then resumed
    for a third; the second scored no quality metric."""
    root = tmp_path_factory.mktemp("runs")
    first, second = str(root / "a" / "logs"), str(root / "b" / "logs")
    gan = _train(first, seed=0, epochs=(0, 2), lr=2e-4, metrics=("fid",))
    # Resume: a new fit continues the step counter, as the runner's resume does.
    gan.fit(_data(), initial_epoch=2, epochs=3, verbose=0,
            callbacks=[callbacks.ScalarLogger(first, update_freq=2, batch_size=BATCH)])
    _train(second, seed=1, epochs=(0, 1), lr=1e-3, metrics=())
    return str(root), first, second


def test_epoch_and_batch_runs_share_the_global_step_axis(runs):
    _, first, _ = runs
    epoch = _scalars(os.path.join(first, callbacks.EPOCH_RUN), "d_loss")
    batch = _scalars(os.path.join(first, callbacks.BATCH_RUN), "d_loss")
    assert [step for step, _ in epoch] == [4, 8, 12]  # 4 steps per epoch, resume included
    assert [step for step, _ in batch] == [2, 4, 6, 8, 10, 12]
    # Keras' running mean at an epoch's last batch is that epoch's mean.
    for step, value in epoch:
        assert dict(batch)[step] == pytest.approx(value, rel=1e-6)
    # Thousands of images seen, to compare runs of other batch sizes (resume included).
    kimg = _scalars(os.path.join(first, callbacks.BATCH_RUN), "kimg")
    assert kimg == [(step, pytest.approx(step * BATCH / 1000)) for step, _ in batch]


@pytest.mark.parametrize("where", ["runs folder", "one run's logs"])
def test_hparams_table_shows_final_losses_and_quality_metrics(runs, where):
    root, first, second = runs
    table = _hparams_table(root if where == "runs folder" else first)
    expected = {first: 12, second: 4} if where == "runs folder" else {first: 12}
    assert len(table) == len(expected)
    # The dashboard takes its columns from one run's declaration: every run declares
    # every quality metric, so the second run's (no metrics) keeps the first's fid column.
    scored = {first: {"d_loss", "g_loss", "fid"}, second: {"d_loss", "g_loss"}}
    for logs, last_step in expected.items():
        name = os.path.relpath(os.path.join(logs, callbacks.EPOCH_RUN),
                               root if where == "runs folder" else first)
        metrics = table[name]
        assert set(metrics) == scored[logs]
        for tag in ("d_loss", "g_loss"):
            final_step, final_value = _scalars(os.path.join(logs, callbacks.EPOCH_RUN), tag)[-1]
            assert metrics[tag] == (pytest.approx(final_value), final_step)
            assert final_step == last_step
        if "fid" not in scored[logs]:
            continue
        # fid was scored in the first fit only (the resumed fit has no QualityMetrics).
        fid_step, fid_value = _scalars(os.path.join(logs, callbacks.EPOCH_RUN), "fid")[-1]
        assert metrics["fid"] == (pytest.approx(fid_value), fid_step) and fid_value >= 0


def test_hparams_declares_every_quality_metric_output():
    declared = callbacks.HParams("unused", {"lr": 1.0, "metrics": ("kid",)}).metrics
    assert declared[:2] == ("d_loss", "g_loss")
    assert {"fid", "kid", "kid_std", "precision", "recall", "density",
            "coverage"} == set(declared[2:])
    assert callbacks.HParams("unused", {"lr": 1.0}).metrics == declared
    assert callbacks.HParams("unused", {"lr": 1.0}, metrics=["x"]).metrics == ("x",)


def test_a_resume_drops_what_the_stopped_process_logged_after_its_checkpoint(tmp_path):
    """A SIGKILL leaves steps logged past the last checkpoint; the resumed run logs them
    again. drop_events_after(logs, 6) keeps steps <= 6 (and step-0 metadata), even from
    a file the kill cut short, so every step appears once."""
    from kgan.training import monitoring

    logs = str(tmp_path / "logs")
    batch = os.path.join(logs, callbacks.BATCH_RUN)
    with callbacks.summary_writer(batch).as_default():  # the process-wide writer
        for step in range(1, 11):
            tf.summary.scalar("d_loss", float(step), step=step)
    callbacks.summary_writer(batch).flush()
    (path,) = [os.path.join(batch, f) for f in os.listdir(batch)]
    with open(path, "ab") as file:
        file.write(b"\x10\x00\x00")  # a record cut short by the kill
    assert monitoring.drop_events_after(logs, 6) == 4
    with callbacks.summary_writer(batch).as_default():  # the resumed run
        for step in (7, 8):
            tf.summary.scalar("d_loss", 100.0 + step, step=step)
    callbacks.summary_writer(batch).flush()
    # Read raw (TensorBoard's own reader would hide duplicates): each step once. Sorted:
    # two writers of one process in one second may name their files in either order.
    assert sorted(_raw_steps(batch, "d_loss")) == [1, 2, 3, 4, 5, 6, 7, 8]
    assert monitoring.drop_events_after(logs, 8) == 0  # nothing past the checkpoint


def _raw_steps(folder: str, tag: str) -> list[int]:
    """The steps of `tag` in the order the event files hold them, duplicates included."""
    from tensorboard.compat.proto import event_pb2

    steps = []
    for name in sorted(os.listdir(folder)):
        for record in tf.data.TFRecordDataset(os.path.join(folder, name)):
            event = event_pb2.Event.FromString(record.numpy())
            steps += [event.step for value in event.summary.value if value.tag == tag]
    return steps
