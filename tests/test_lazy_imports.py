"""Command lines and configs answer without loading TensorFlow (design.md, layout)."""

import subprocess
import sys

import numpy as np
import pytest

PROBE = """
import runpy, sys
sys.argv = ["train.py", *{argv!r}]
try:
    runpy.run_path("train.py", run_name="__main__")
except SystemExit as done:
    code = done.code
print("EXIT", code, "TF", "tensorflow" in sys.modules, "KERAS", "keras" in sys.modules)
"""


def run_train_py(*argv):
    done = subprocess.run([sys.executable, "-c", PROBE.format(argv=list(argv))],
                          capture_output=True, text=True, timeout=120)
    return done.stdout.strip().splitlines()[-1], done.stderr


@pytest.mark.parametrize(
    ("argv", "code"),
    [(["--help"], 0), (["--dry-run"], 0), (["--resolution", "33"], 2),
     (["--network", "nope"], 2), (["--network-args", "bad"], 2)],
    ids=["help", "dry_run", "bad_resolution", "unknown_network", "bad_network_args"])
def test_train_py_answers_without_tensorflow(argv, code):
    last, stderr = run_train_py(*argv)
    assert last == f"EXIT {code} TF False KERAS False", stderr
    if code == 2:
        assert len(stderr.strip().splitlines()) <= 3, stderr  # usage + one error line


def test_import_kgan_and_its_registries_load_no_tensorflow():
    script = ("import sys, kgan, kgan.networks, kgan.training.config as c\n"
              "c.TrainConfig.from_preset('digits', network='dcgan')\n"
              "print(kgan.networks.NAMES, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.strip().endswith("False"), done.stderr


def test_config_loss_names_match_the_tensorflow_side_registry():
    from kgan import losses
    from kgan.training import validation

    assert set(validation.LOSSES) == set(losses.NAMES)


@pytest.mark.parametrize("first", [
    "kgan.gan", "tensorflow", "keras",  # inside kgan, TensorFlow itself, Keras
    # more kgan modules that import TensorFlow (a fresh process each): -m slow
    *(pytest.param(name, marks=pytest.mark.slow) for name in (
        "kgan.gan.sampling", "kgan.gan.losses", "kgan.networks.families.r3gan"))])
def test_kgan_serializables_register_whichever_module_loads_tensorflow_first(first):
    """Importing TensorFlow from inside a kgan module defers the registration until that
    import is done (registering mid-import would need the half-loaded module)."""
    script = (f"import kgan, {first}, keras\n"
              "names = keras.saving.get_custom_objects()\n"
              "print(all(n in names for n in ('kgan>GAN', 'kgan>Augment', 'kgan>Cosine',\n"
              "    'kgan>InvertedBottleneck', 'kgan>ModulatedConv2D',  # families, by registry\n"
              "    'kgan>ConditionalBatchNormalization')))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"


def test_kgan_0_1_public_paths_keep_working():
    import kgan
    import kgan.callbacks
    import kgan.distribute
    import kgan.metrics
    from kgan.training import callbacks, distribute

    assert kgan.callbacks.ImageGrid is callbacks.ImageGrid
    assert kgan.distribute.setup is distribute.setup
    assert kgan.metrics.fid(np.eye(3) * 2, np.eye(3) * 2) == pytest.approx(0.0, abs=1e-6)
    assert kgan.export_generator is kgan.serving.export_generator
    g, d = kgan.networks.dcgan(8, 1, latent_dim=4, base_filters=4)
    assert g.output_shape == (None, 8, 8, 1) and d.output_shape == (None, 1)
    g, _ = kgan.networks.mlp(data_dim=2, latent_dim=4)
    assert g.output_shape == (None, 2)


def test_an_ema_decay_flag_replaces_the_presets_ema_half_life():
    from kgan.cli.train import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(["--ema-decay", "0.9"]))
    assert (config.ema_decay, config.ema_kimg, config.ema_rampup) == (0.9, None, None)
    config = config_from_args(build_parser().parse_args(["--ema-kimg", "5"]))
    assert (config.ema_decay, config.ema_kimg, config.ema_rampup) == (None, 5.0, 0.05)


def test_installed_version_is_the_package_version():
    # pyproject.toml reads the version from kgan.__version__, so pip and kgan agree.
    import importlib.metadata

    import kgan

    assert importlib.metadata.version("kgan") == kgan.__version__

