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
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import checkpoint_state, run_train_py

import kgan
from kgan.images import to_uint8_numpy

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                                reason="compares the JAX backend with this TensorFlow session")


def jax_env() -> dict:
    # Two host devices; XLA's quick compile (the steps are tiny: compiling is the cost).
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu",
               XLA_FLAGS="--xla_force_host_platform_device_count=2 "
                         "--xla_backend_optimization_level=0 "
                         "--xla_llvm_disable_expensive_passes=true")
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def run_on_jax(script: str, *args: str, timeout: int = 300) -> str:
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(script), *args],
                          capture_output=True, text=True, env=jax_env(), cwd=ROOT,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def run_neutral_tests_on_jax(*files: str, skip: tuple[str, ...] = (),
                             markers: str = "backends and not slow") -> None:
    """The tests of `files` that `markers` selects, in one JAX process (one pytest worker:
    the suite's own two workers share the cores), less those whose names contain a `skip`."""
    select = ["-k", " and ".join(f"not {name}" for name in skip)] if skip else []
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-m",
         markers, *select, *files],
        capture_output=True, text=True, env=jax_env(), cwd=ROOT, timeout=1800)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary


NEUTRAL_FILES = ("tests/test_gan.py", "tests/test_losses.py", "tests/test_distribute.py",
                 "tests/test_augment.py", "tests/test_ada.py", "tests/test_features.py",
                 "tests/test_library_checks.py", "tests/test_callbacks.py")
# The default suite's JAX run leaves out the cases that cost the most XLA:CPU compile time
# and check no JAX-specific code the others miss (a second network family through the
# same step, learning a mixture, a fresh-process load); `-m slow` runs them all.
HEAVY_ON_JAX = ("resnet", "r3gan", "wgan_gp", "hinge", "gaussian_mixture", "plain_import",
                "non_saturating", "mixed_float16", "streams_count", "one_discriminator_pass",
                "trains_under_mixed_precision", "trains_and_round_trips", "steps_per_execution",
                "unknown_length", "trails_the_generator",
                # the step's wiring through T and ADA: the same keras.ops on both; JAX's
                # vjp and all_reduce run in the penalty and replica tests above
                "augmentation_at_real", "sign_of_d",
                # Keras's own fit of a small classifier, kgan's metric features (~15 s)
                "domain_classifier")


def test_backend_neutral_tests_pass_on_jax():
    # StyleGAN2's run on JAX: tests/test_backends_stylegan2.py.
    run_neutral_tests_on_jax(*NEUTRAL_FILES, skip=HEAVY_ON_JAX)


@pytest.mark.slow  # 4 minutes of JAX compiles on 2 cores
def test_every_backend_neutral_test_passes_on_jax():
    # The slow ones too (the ResNet row of test_distribute's equivalence).
    run_neutral_tests_on_jax(*NEUTRAL_FILES, markers="backends")


def test_same_seed_gives_the_same_latents_and_augmentation_on_both_backends():
    seeds = [0, 1, 12345, 2**31 + 5, -7]
    images = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 3)).astype("float32")
    script = """
        import json, sys, numpy as np, kgan
        from kgan.gan import randomness
        seeds = json.loads(sys.argv[1])
        z = np.asarray(kgan.gan.sampling.latents_from_seeds(np.array(seeds), 16))
        images = np.asarray(json.loads(sys.argv[2]), np.float32)
        out = {}
        for policy in ("color,translation,cutout", "bgc"):
            augment = kgan.augment.Augment(policy, initial_probability=0.7, adaptive=False)
            out[policy] = np.asarray(augment(images, seed=randomness.seed(3, 11))).tolist()
        print(json.dumps({"z": z.tolist(), "augmented": out}))
    """
    on_jax = json.loads(run_on_jax(script, json.dumps(seeds), json.dumps(images.tolist())))
    z = np.asarray(kgan.gan.sampling.latents_from_seeds(np.array(seeds), 16))
    np.testing.assert_allclose(on_jax["z"], z, atol=1e-5)
    for policy in ("color,translation,cutout", "bgc"):  # DiffAugment's ops and ADA's
        augment = kgan.augment.Augment(policy, initial_probability=0.7, adaptive=False)
        augmented = np.asarray(augment(images, seed=kgan.gan.randomness.seed(3, 11)))
        np.testing.assert_allclose(on_jax["augmented"][policy], augmented, atol=1e-5)
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
    np.save(path + ".npy", gan.generate(6, seed=2**32 + 4))  # past int32: StyleGAN2's noise
"""

FAMILIES = {"dcgan": (8, "dict(base_filters=4)"),
            "resnet": (16, "dict(g_width=8, d_width=8)"),
            # Per-class gains in G's blocks (the concat path runs on JAX in test_distribute).
            "r3gan": (8, "dict(widths=[16, 8], blocks_per_stage=1, expansion=2, group_size=4, "
                         "conditioning='gain')"),
            "stylegan2": (16, "dict(cbase=256, cmax=16, mapping_layers=2, w_dim=16)")}


# StyleGAN2 (the most backend-specific layers) in the default suite; DCGAN's JAX->TF
# path is train.py's export test below; the others' 15-30 s each behind -m slow.
@pytest.mark.parametrize("family", [
    pytest.param(family, marks=[] if family == "stylegan2" else [pytest.mark.slow])
    for family in sorted(FAMILIES)])
def test_a_gan_trained_on_jax_loads_on_tensorflow_and_generates_the_same_images(
        tmp_path, family):
    resolution, options = FAMILIES[family]
    path = str(tmp_path / "jax.keras")
    run_on_jax(TRAIN_AND_SAVE, path, family, str(resolution), options)
    loaded = keras.models.load_model(path)
    assert int(loaded.step_counter.numpy()) == 2
    assert int(loaded.d_optimizer.iterations.numpy()) == 2
    np.testing.assert_allclose(loaded.generate(6, seed=2**32 + 4), np.load(path + ".npy"),
                               atol=1e-4)


EXPORT_ON_JAX = """
    import sys, keras, numpy as np, kgan
    keras.utils.set_random_seed(0)
    g, d = kgan.networks.get("dcgan")(resolution=8, channels=1, latent_dim=8, num_classes=3,
                                      base_filters=4)
    gan = kgan.GAN(g, d, latent_dim=8, num_classes=3)
    np.save(sys.argv[1] + "/images.npy", gan.generate(4, seed=7))
    print(kgan.export_generator(gan, sys.argv[1], model_name="jax"))
"""


def test_the_library_export_works_in_a_jax_process(tmp_path):
    # The README's library snippet calls kgan.export_generator; on JAX it exports through
    # kgan-export in a TensorFlow process.
    path = run_on_jax(EXPORT_ON_JAX, str(tmp_path)).strip().splitlines()[-1]
    assert path == str(tmp_path / "jax" / "1")
    from kgan.serving.export import ExportedGenerator

    served = ExportedGenerator(path).generate(np.arange(7, 11), labels=[1, 2, 0, 1])["images"]
    expected = to_uint8_numpy(np.load(tmp_path / "images.npy"))
    assert np.abs(served.astype(int) - expected.astype(int)).max() <= 1


def test_kgan_generate_reads_a_keras_file_on_jax(tmp_path):
    keras.utils.set_random_seed(1)
    g, d = kgan.networks.get("dcgan")(resolution=8, channels=1, latent_dim=8, base_filters=4)
    gan = kgan.GAN(g, d, latent_dim=8)
    gan.save(tmp_path / "gan.keras")
    done = subprocess.run([sys.executable, "-m", "kgan.cli.generate", str(tmp_path / "gan.keras"),
                           "--seeds", "3-6", "--grid", str(tmp_path / "grid.png"), "--padding",
                           "0", "--columns", "4"], capture_output=True, text=True, env=jax_env(),
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from PIL import Image

    grid = np.asarray(Image.open(tmp_path / "grid.png"))
    expected = np.concatenate(list(to_uint8_numpy(gan.generate(4, seed=3))[..., 0]), axis=1)
    assert np.abs(grid.astype(int) - expected.astype(int)).max() <= 1


def test_a_gan_saved_on_tensorflow_loads_and_trains_on_jax(tmp_path):
    # Class-conditional batch norm, as the fashion_mnist and mnist presets build G.
    g, d = kgan.networks.get("dcgan")(resolution=8, channels=1, latent_dim=8, num_classes=3,
                                      base_filters=4, conditioning="batchnorm")
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


# ------------------------------------------------------------ train.py --backend jax
def _train_on_jax(cwd, compile_cache, *flags, signal_at=None):
    from test_training import TINY

    # The runs of one test share JAX's persistent compilation cache: the runs after the
    # first load the same step's executables instead of compiling them (half their time).
    cache = {"JAX_COMPILATION_CACHE_DIR": str(compile_cache),
             "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    return run_train_py(cwd, [*TINY, "--backend", "jax", *flags], signal_at, timeout=300,
                        backend="jax", env=cache)


@pytest.fixture(scope="module")
def jax_compile_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("jax_compile_cache")


@pytest.fixture(scope="module")
def jax_reference(tmp_path_factory, jax_compile_cache):
    cwd = tmp_path_factory.mktemp("jax_reference")
    process = _train_on_jax(cwd, jax_compile_cache, "--run-dir", "run", "--export-dir", "exp")
    assert process.returncode == 0, process.stderr[-3000:]
    return cwd, process


def test_train_py_on_jax_writes_the_run_dir_and_a_tensorflow_export(jax_reference):
    cwd, process = jax_reference
    run = cwd / "run"
    for name in ("config.json", "final.keras", "result.json", "backup/checkpoint",
                 "samples/epoch_0002.png"):
        assert (run / name).is_file(), name
    assert json.loads((run / "config.json").read_text())["backend"] == "jax"
    assert (cwd / "exp/digits/1/saved_model.pb").is_file()
    assert "export:      exp/digits/1" in process.stdout
    exported = tf.saved_model.load(str(cwd / "exp/digits/1"))
    images = exported.signatures["generate"](seed=tf.constant([3, 4], tf.int64),
                                             label=tf.constant([3, 4], tf.int32))["images"]
    trained = keras.models.load_model(run / "final.keras").generate(2, seed=3, labels=[3, 4])
    expected = np.round((trained + 1.0) * 127.5)
    assert np.abs(images.numpy().astype(float) - expected).max() <= 1  # one grey level


def test_train_py_on_jax_resumes_exactly_after_sigkill(jax_reference, jax_compile_cache,
                                                       tmp_path):
    from test_tensorboard import _raw_steps

    # Batch scalars every step: step 7 is logged, then killed, past the checkpoint at 6.
    flags = ("--run-dir", "run", "--no-export", "--log-every-n-steps", "1")
    killed = _train_on_jax(tmp_path, jax_compile_cache, *flags, signal_at=("SIGKILL", 7))
    assert killed.returncode == -signal.SIGKILL
    resumed = _train_on_jax(tmp_path, jax_compile_cache, *flags)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming at epoch 2, batch 1 (step 6)" in resumed.stdout
    assert "TensorBoard events the stopped run logged after step 6" in resumed.stdout
    assert _raw_steps(tmp_path / "run/logs/batch", "d_loss") == list(range(1, 11))
    expected = checkpoint_state(jax_reference[0] / "run")
    actual = checkpoint_state(tmp_path / "run")
    assert sorted(actual) == sorted(expected)
    different = [k for k in expected if not np.array_equal(expected[k], actual[k])]
    assert not different  # XLA on the CPU is deterministic: bit for bit


def test_a_jax_run_directory_is_not_resumed_on_tensorflow(jax_reference):
    cwd, _ = jax_reference
    from test_training import TINY

    # Without --backend a resume takes the run's own (test_train_cli); asked for another:
    process = run_train_py(cwd, [*TINY, "--run-dir", "run", "--epochs", "3", "--no-export",
                                 "--backend", "tensorflow"])
    assert process.returncode == 1
    lines = process.stderr.strip().splitlines()
    assert lines[-1] == ("kgan-train: error: run was trained on the jax backend; resume it "
                         "with --backend jax (its checkpoints load on that backend only; its "
                         "final.keras loads on either), or pass --restart to start over")


@pytest.mark.slow  # the default suite's case: tests/test_gpu_benchmark.py's dry run
def test_kgan_trains_on_jax_where_tensorflow_is_not_installed():
    """A JAX-only machine (the lent GPU machines): GAN.fit on NumPy data, no TensorFlow."""
    script = """
        import sys
        sys.modules["tensorflow"] = None  # import tensorflow now fails, as without it
        import json, keras, numpy as np, kgan
        g, d = kgan.networks.get("dcgan")(8, 1, 8, base_filters=4)
        gan = kgan.GAN(g, d, latent_dim=8, ema_decay=0.9, augment=kgan.augment.Augment())
        gan.compile(keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3),
                    loss="relativistic", r1_gamma=0.1)
        x = np.random.default_rng(0).uniform(-1, 1, (16, 8, 8, 1)).astype("float32")
        history = gan.fit(x, batch_size=8, epochs=1, verbose=0).history
        print(json.dumps({"logs": sorted(history), "shape": gan.generate(2, seed=1).shape}))
    """
    out = json.loads(run_on_jax(script))
    assert out["logs"] == ["aug_p", "d_fake", "d_loss", "d_real", "g_loss", "r1"]
    assert out["shape"] == [2, 8, 8, 1]
