"""The shared test harness: tiny GANs and data, and checks every network family passes.

Test modules import what they need:

    from harness import tiny_gan, image_batches, check_family
    gan = tiny_gan("r3gan", num_classes=3, ema_decay=0.9)

Sizes are as small as a check allows (8-16 px, a few filters), so each test takes
seconds on 2 CPU cores; floats are compared with a tolerance (design.md, rule 9).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import kgan

LATENT = 8
# The smallest useful options of each family, for tests.
TINY_OPTIONS = {
    "dcgan": dict(base_filters=4),
    "resnet": dict(g_width=8, d_width=8),
    "r3gan": dict(widths=[16, 8], blocks_per_stage=1, expansion=2, group_size=4),
    "stylegan2": dict(cbase=256, cmax=16, mapping_layers=2, w_dim=16),
}
TINY_RESOLUTION = {"dcgan": 8, "resnet": 16, "r3gan": 8, "stylegan2": 16}


def adam(lr: float = 2e-4) -> keras.optimizers.Optimizer:
    return keras.optimizers.Adam(lr, beta_1=0.5)


def tiny_networks(network: str = "dcgan", channels: int = 1, num_classes=None,
                  resolution: int | None = None, **options):
    """A family's smallest (generator, discriminator) pair."""
    resolution = resolution or TINY_RESOLUTION.get(network, 8)
    options = {**tiny_options(network), **options}
    return kgan.networks.get(network)(resolution, channels, LATENT, num_classes=num_classes,
                                      **options)


def tiny_options(network: str) -> dict:
    """TINY_OPTIONS filtered to the options the family really has."""
    known = kgan.networks.get(network).options
    return {k: v for k, v in TINY_OPTIONS.get(network, {}).items() if k in known}


def tiny_gan(network: str = "dcgan", num_classes=None, channels: int = 1,
             resolution: int | None = None, **gan_options) -> kgan.GAN:
    """A tiny uncompiled GAN of `network`; `gan_options` go to `kgan.GAN`."""
    g, d = tiny_networks(network, channels, num_classes, resolution)
    return kgan.GAN(g, d, latent_dim=LATENT, num_classes=num_classes, **gan_options)


def random_images(n: int = 32, resolution: int = 8, channels: int = 1, seed: int = 0):
    return np.random.default_rng(seed).uniform(-1, 1, (n, resolution, resolution, channels)
                                               ).astype("float32")


def image_batches(n: int = 32, batch: int = 8, labels: bool = False, resolution: int = 8,
                  channels: int = 1, num_classes: int = 3) -> tf.data.Dataset:
    """`n` random images in [-1, 1] (with int labels), batched, drop_remainder."""
    images = random_images(n, resolution, channels)
    if labels:
        classes = np.random.default_rng(1).integers(0, num_classes, n).astype("int32")
        data = tf.data.Dataset.from_tensor_slices((images, classes))
    else:
        data = tf.data.Dataset.from_tensor_slices(images)
    return data.batch(batch, drop_remainder=True)


def in_step(gan, fn):
    """Runs part of a train step (`fn()`, e.g. `gan._discriminator_step(...)`) outside
    `fit`, on any backend, keeping what it assigns."""
    return kgan.gan.backends.current().stateful(gan, fn)


def on_backend() -> str:
    return keras.backend.backend()


def one_device():
    """The single-device counterpart of the `two_replicas` fixture (has `scope()`)."""
    if on_backend() == "tensorflow":
        return tf.distribute.get_strategy()
    return _NoDistribution()


class _NoDistribution:
    def scope(self):
        return contextlib.nullcontext()


def assert_close_images(a, b) -> None:
    """uint8 images of the same seeds computed by other kernels (another batch size, Keras
    eager vs a SavedModel, another process) may differ by one grey level, no more."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, (a.shape, b.shape)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def snapshot(variables) -> list[np.ndarray]:
    return [np.array(keras.ops.convert_to_numpy(v), copy=True) for v in variables]


def changed(before, variables) -> list[bool]:
    return [not np.array_equal(b, keras.ops.convert_to_numpy(v))
            for b, v in zip(before, variables, strict=True)]


def max_difference(a, b) -> float:
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in
               zip(a, b, strict=True))


@contextlib.contextmanager
def dtype_policy(name: str):
    """Sets the Keras global dtype policy inside the block (restores float32 after)."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def network_inputs(model: keras.Model, n: int = 2, seed: int = 0) -> list | np.ndarray:
    """Random inputs matching a generator's or discriminator's input signature."""
    rng = np.random.default_rng(seed)
    values = []
    for spec in model.inputs:
        shape = (n, *spec.shape[1:])
        if "int" in str(spec.dtype):
            values.append(np.zeros(shape, "int32") + rng.integers(0, 2, shape).astype("int32"))
        else:
            values.append(rng.standard_normal(shape).astype("float32"))
    return values if len(values) > 1 else values[0]


# ------------------------------------------------------------------ family checks
def check_config_round_trip(model: keras.Model) -> None:
    """`from_config(get_config())` rebuilds the same architecture (whole configs equal)."""
    clone = model.__class__.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.count_params() == model.count_params()


def check_saved_round_trip(model: keras.Model, path) -> None:
    """`.keras` save and reload gives identical outputs on the same inputs."""
    inputs = network_inputs(model)
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs)), np.asarray(model(inputs)),
                               rtol=1e-6, atol=1e-6)


def check_float32_heads(network: str, policy: str, **build_options) -> None:
    """Under a mixed policy both networks build, and images and logits are float32."""
    with dtype_policy(policy):
        g, d = tiny_networks(network, **build_options)
        images = g(network_inputs(g), training=False)
        logits = d(network_inputs(d), training=False)
    assert images.dtype == "float32", f"{network} images are {images.dtype} under {policy}"
    assert logits.dtype == "float32", f"{network} logits are {logits.dtype} under {policy}"
    assert np.isfinite(np.asarray(images)).all() and np.isfinite(np.asarray(logits)).all()


def check_family(network: str, tmp_path, **build_options) -> None:
    """What every family passes: config round trip, .keras reload, EMA clone, mixed
    precision heads, and a few finite GAN steps."""
    g, d = tiny_networks(network, **build_options)
    for model in (g, d):
        check_config_round_trip(model)
        check_saved_round_trip(model, tmp_path / f"{model.name}.keras")
    clone = keras.models.clone_model(g)
    clone.set_weights(g.get_weights())
    z = network_inputs(g)
    np.testing.assert_allclose(np.asarray(clone(z)), np.asarray(g(z)), atol=1e-6)
    for policy in ("mixed_float16", "mixed_bfloat16"):
        check_float32_heads(network, policy, **build_options)
    check_gan_steps(network, **build_options)


def check_gan_steps(network: str, **build_options) -> None:
    """Two GAN steps of the family train both networks to finite losses."""
    g, d = tiny_networks(network, **build_options)
    gan = kgan.GAN(g, d, latent_dim=LATENT, num_classes=build_options.get("num_classes"))
    gan.compile(adam(1e-3), adam(1e-3), loss="relativistic", r1_gamma=0.1)
    g_before, d_before = snapshot(g.trainable_variables), snapshot(d.trainable_variables)
    resolution = g.output_shape[1]
    images = random_images(8, resolution, g.output_shape[-1])
    labels = (np.arange(8) % build_options["num_classes"]) if build_options.get(
        "num_classes") else None
    history = gan.fit(images, labels, batch_size=4, epochs=1, verbose=0).history
    assert int(gan.step_counter.numpy()) == 2
    assert all(np.isfinite(values).all() for values in history.values()), history
    assert any(changed(g_before, g.trainable_variables))
    assert any(changed(d_before, d.trainable_variables))


# ------------------------------------------------------------------ signals mid-work
def interrupt_with(sig: int) -> None:
    """What a signal does in the middle of the work: Ctrl-C raises KeyboardInterrupt (sent
    as a signal it would be ignored in a background job); SIGTERM is really sent."""
    if sig == signal.SIGINT:
        raise KeyboardInterrupt
    os.kill(os.getpid(), sig)
    time.sleep(5)


# ------------------------------------------------------------ train.py in a subprocess
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# train.py's main with a callback that sends this process a signal after a given step.
_SELF_SIGNAL = """
import os, signal, sys
import keras
from kgan.training import runner
from kgan.cli.train import main

signum, at_step = getattr(signal, sys.argv[1]), int(sys.argv[2])

class SelfSignal(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.step_counter.numpy()) == at_step:
            os.kill(os.getpid(), signum)

run = runner.run
runner.run = lambda config, restart=False: run(config, restart, callbacks=[SelfSignal()])
sys.exit(main(sys.argv[3:]))
"""


def run_train_py(cwd, flags, signal_at: tuple[str, int] | None = None, timeout: int = 120,
                 backend: str | None = None, env: dict | None = None
                 ) -> subprocess.CompletedProcess:
    """Runs train.py with `flags` in `cwd`; with `signal_at=("SIGKILL", 5)` it sends itself
    that signal once step 5 has trained; `backend` sets KERAS_BACKEND, `env` adds variables.
    Returns the finished process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO, **(env or {}))
    if backend:
        env["KERAS_BACKEND"] = backend
    head = [sys.executable, os.path.join(REPO, "train.py")]
    if signal_at:
        head = [sys.executable, "-c", _SELF_SIGNAL, *map(str, signal_at)]
    return subprocess.run([*head, *flags], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def checkpoint_state(run_dir) -> dict[str, np.ndarray]:
    """Every variable of a run's newest resume checkpoint (save_counter aside)."""
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "backup"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if not k.startswith(("save_counter", "_CHECKPOINTABLE"))}


needs_proc_fd = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"),
                                   reason="names file descriptors through /proc")


def record_syncs_and_renames(monkeypatch) -> list:
    """Every fsync (the path it synced) and rename, in order, from here on."""
    events, fsync, rename, replace = [], os.fsync, os.rename, os.replace

    def synced(fd):
        events.append(("sync", os.readlink(f"/proc/self/fd/{fd}")))
        return fsync(fd)

    def renamed(how):
        def call(source, target):
            events.append(("rename", os.fspath(source), os.fspath(target)))
            return how(source, target)
        return call

    monkeypatch.setattr(os, "fsync", synced)
    monkeypatch.setattr(os, "rename", renamed(rename))
    monkeypatch.setattr(os, "replace", renamed(replace))
    return events
