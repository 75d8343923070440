"""One GAN core on every Keras backend.

The backend-neutral tests (marker `backends`: hand-checked losses, the analytic penalty
gradients, the EMA formula, R1 through the augmentation, 1-vs-2-device equivalence, ...)
run in this TensorFlow session and again in one JAX process here; Keras fixes its backend
per process. The other checks compare the two backends: the same seed gives the same
latents and augmentation, and a `.keras` file saved on one loads on the other and
generates the same images.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import kgan

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="compares the JAX backend with this TensorFlow session")


def jax_env() -> dict:
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3",
               XLA_FLAGS="--xla_force_host_platform_device_count=2", JAX_PLATFORMS="cpu")
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def run_on_jax(script: str, *args: str, timeout: int = 300) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args],
                          capture_output=True, text=True, env=jax_env(), cwd=ROOT,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_backend_neutral_tests_pass_on_jax():
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m",
         "backends and not slow", "tests/test_gan.py", "tests/test_losses.py",
         "tests/test_distribute.py", "tests/test_augment.py"],
        capture_output=True, text=True, env=jax_env(), cwd=ROOT, timeout=900)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary


def test_same_seed_gives_the_same_latents_and_augmentation_on_both_backends():
    seeds = [0, 1, 12345, 2**31 + 5, -7]
    images = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    script = """
        import json, sys, numpy as np, kgan
        from kgan.gan import randomness
        seeds = json.loads(sys.argv[1])
        z = np.asarray(kgan.gan.sampling.latents_from_seeds(np.array(seeds), 16))
        images = np.asarray(json.loads(sys.argv[2]), np.float32)
        augment = kgan.augment.Augment(initial_probability=0.7, adaptive=False)
        out = np.asarray(augment(images, seed=randomness.seed(3, 11)))
        print(json.dumps({"z": z.tolist(), "augmented": out.tolist()}))
    """
    on_jax = json.loads(run_on_jax(script, json.dumps(seeds), json.dumps(images.tolist())))
    z = np.asarray(kgan.gan.sampling.latents_from_seeds(np.array(seeds), 16))
    np.testing.assert_allclose(on_jax["z"], z, atol=1e-5)
    augment = kgan.augment.Augment(initial_probability=0.7, adaptive=False)
    augmented = np.asarray(augment(images, seed=kgan.gan.randomness.seed(3, 11)))
    np.testing.assert_allclose(on_jax["augmented"], augmented, atol=1e-5)
    assert not np.allclose(augmented, images)


TRAIN_AND_SAVE = """
    import sys, keras, numpy as np, kgan
    path, family, resolution, options = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    g, d = kgan.networks.get(family)(resolution=resolution, channels=1, latent_dim=8,
                                     num_classes=3, **eval(options))
    gan = kgan.GAN(g, d, latent_dim=8, num_classes=3, ema_decay=0.9,
                   augment=kgan.augment.Augment())
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3),
                loss="relativistic", r1_gamma=0.1, r2_gamma=0.1)
    x = np.random.default_rng(0).uniform(-1, 1, (16, resolution, resolution, 1))
    gan.fit(x.astype("float32"), np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
    gan.save(path)
    np.save(path + ".npy", gan.generate(6, seed=4))
"""

FAMILIES = {"dcgan": (8, "dict(base_filters=4)"),
            "resnet": (16, "dict(g_width=8, d_width=8)"),
            "r3gan": (8, "dict(widths=[16, 8], blocks_per_stage=1, expansion=2, group_size=4)")}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_a_gan_trained_on_jax_loads_on_tensorflow_and_generates_the_same_images(
        tmp_path, family):
    resolution, options = FAMILIES[family]
    path = str(tmp_path / "jax.keras")
    run_on_jax(TRAIN_AND_SAVE, path, family, str(resolution), options)
    loaded = keras.models.load_model(path)
    assert int(loaded.step_counter.numpy()) == 2
    assert int(loaded.d_optimizer.iterations.numpy()) == 2
    np.testing.assert_allclose(loaded.generate(6, seed=4), np.load(path + ".npy"), atol=1e-4)


def test_a_gan_saved_on_tensorflow_loads_and_trains_on_jax(tmp_path):
    g, d = kgan.networks.get("dcgan")(resolution=8, channels=1, latent_dim=8, num_classes=3,
                                      base_filters=4)
    gan = kgan.GAN(g, d, latent_dim=8, num_classes=3, ema_decay=0.9)
    gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3), r1_gamma=0.1)
    x = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
    gan.fit(x, np.arange(16) % 3, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "tf.keras")
    gan.save(path)
    script = """
        import sys, json, keras, numpy as np, kgan
        gan = keras.models.load_model(sys.argv[1])
        loaded = gan.generate(6, seed=4).tolist()
        x = np.random.default_rng(1).uniform(-1, 1, (8, 8, 8, 1)).astype("float32")
        gan.fit(x, np.arange(8) % 3, batch_size=8, epochs=1, verbose=0)
        print(json.dumps({"loaded": loaded, "steps": int(gan.step_counter.numpy()),
                          "d_steps": int(gan.d_optimizer.iterations.numpy())}))
    """
    on_jax = json.loads(run_on_jax(script, path))
    np.testing.assert_allclose(on_jax["loaded"], gan.generate(6, seed=4), atol=1e-4)
    assert on_jax["steps"] == on_jax["d_steps"] == 3  # resumed from step 2, one more
