"""train.py / kgan-train: flags -> config, --dry-run, and one-line errors for bad input."""

import gc
import glob
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

from kgan.cli import network
from kgan.cli.train import build_parser, config_from_args, main, writes_run_dir
from kgan.training import runner as training
from kgan.training.config import TrainConfig
from kgan.training.errors import RunError
from kgan.training.rundir import check_run_dir, run_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A run of seconds, for tests that would train if the check they test were missing.
TINY = ["--resolution", "8", "--base-filters", "4", "--latent-dim", "8", "--batch-size", "16",
        "--steps-per-epoch", "2", "--epochs", "1", "--num-samples", "4"]


def _config(*argv):
    return config_from_args(build_parser().parse_args(list(argv)))


def test_no_flags_is_the_digits_demo():
    assert _config() == TrainConfig.from_preset("digits")


def test_flags_override_the_config_file_which_overrides_the_preset(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(TrainConfig.from_preset("mnist", epochs=3, lr_d=1e-3).to_json())
    config = _config("--config", str(path), "--epochs", "7", "--ema-decay", "0.99",
                     "--no-export", "--metrics", "fid,kid", "--jit-compile", "off")
    assert (config.preset, config.dataset, config.lr_d) == ("mnist", "mnist", 1e-3)
    assert (config.epochs, config.ema_decay, config.export) == (7, 0.99, False)
    assert config.metrics == ("fid", "kid") and config.jit_compile == "off"
    assert _config("--preset", "cifar10", "--ema-decay", "none").ema_decay is None


def test_a_new_dataset_gets_its_own_run_dir():
    config = _config("--dataset", "/data/faces", "--resolution", "64")
    assert (config.model_name, config.run_dir) == ("faces", os.path.join("runs", "faces"))


def test_dry_run_prints_the_resolved_config(capsys, tmp_path):
    assert main(["--dry-run", "--preset", "mnist", "--batch-size", "32"]) == 0
    printed = TrainConfig.from_json(capsys.readouterr().out)
    # The backend is resolved (KERAS_BACKEND, else tensorflow) and recorded.
    assert printed == TrainConfig.from_preset("mnist", batch_size=32, backend="tensorflow")
    assert not os.path.exists(printed.run_dir)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--preset", "digits", "--dataset", "no_such_dataset_xyz"],
         "'no_such_dataset_xyz' is neither an existing "
                                               "folder nor a TFDS dataset name"),
        (["--dataset", "./no/such/folder"], "Image folder not found"),
        (["--resolution", "12"], "resolution must be a power of two in [8, 256], got 12"),
        (["--epochs", "-1"], "epochs must be >= 1, got -1"),
        (["--batch-size", "4000"], "Only 1797 examples for a global batch of 4000"),
        (["--config", "/no/such/config.json"], "cannot read config file"),
        (["--seed", str(2**32)], "seed must be in [0, 2**32 - 1], got 4294967296"),
        (["--metrics", "fid", "--metrics-features", "inception", "--inception-weights",
          "/no/weights.h5"], "InceptionV3 weights not found at /no/weights.h5"),
    ],
)
def test_bad_flags_give_one_clear_line(argv, message, capsys, tmp_path):
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("kgan-train: error: ") and message in error
    assert error.count("\n") == 1 and "Traceback" not in error
    assert not (tmp_path / "run").exists()  # nothing written for a run that never started


def test_a_config_file_from_a_kgan_with_other_presets(capsys, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(TrainConfig(preset="faces1024").to_json())  # informational in the file
    assert main(["--config", str(path), "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kgan-train: error: config file {path} names preset 'faces1024', "
                            "which this kgan does not have; presets: digits, mnist")
    assert "--preset NAME" in error and error.count("\n") == 1
    assert main(["--config", str(path), "--preset", "digits", "--dry-run"]) == 0


@pytest.mark.parametrize("dataset, message", [
    ("data/faces_typo", "--dataset 'data/faces_typo': no such folder or file (and no TFDS "
                        "data set has that name); check the path below data/"),
    ("data/one.png", "--dataset 'data/one.png' is a file; --dataset takes a folder of images, "
                     "a folder of IDX files, an .npz file or a TFDS name"),
])
def test_a_mistyped_dataset_path_is_named_as_a_path(dataset, message, capsys, tmp_path,
                                                     monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "one.png").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert main(["--dataset", dataset, "--dry-run"]) == 2
    assert capsys.readouterr().err == f"kgan-train: error: {message}\n"


def _unlabelled_folder(path):
    from PIL import Image

    path.mkdir()
    for i in range(4):
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(path / f"{i}.png")
    return path


def test_what_an_image_folder_cannot_do_is_refused_before_the_run_dir(capsys, tmp_path,
                                                                       monkeypatch):
    photos = _unlabelled_folder(tmp_path / "photos")
    monkeypatch.chdir(photos)
    # `cd photos && kgan-train --dataset .`: the run is named after the folder, and its
    # run dir (runs/photos, inside the folder) would feed its sample grids back in.
    assert _config("--dataset", ".").model_name == "photos"
    assert main(["--dataset", ".", *TINY, "--batch-size", "2"]) == 2
    _one_line_error(capsys, "the run directory runs/photos is inside the image folder "
                    f"{photos}", "--run-dir outside the folder")
    assert not (photos / "runs").exists()
    run_dir = tmp_path / "run"
    assert main(["--dataset", str(photos), *TINY, "--batch-size", "2", "--metrics", "fid",
                 "--run-dir", str(run_dir)]) == 2
    _one_line_error(capsys, "--metrics with the default features (classifier) needs class "
                    "labels", "--metrics-features inception")
    assert not run_dir.exists()


def test_unwritable_run_dir_is_bad_input(capsys, tmp_path):
    (tmp_path / "file").write_text("")
    assert main(["--run-dir", str(tmp_path / "file" / "run")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kgan-train: error: cannot write the run directory {tmp_path}")
    assert "is a file, not a folder" in error and "--run-dir" in error
    assert error.count("\n") == 1


def test_other_settings_on_an_existing_run_dir(capsys, tmp_path):
    run_dir = str(tmp_path / "run")
    training.prepare_run_dir(TrainConfig.from_preset("digits", run_dir=run_dir))
    assert main(["--run-dir", run_dir, "--base-filters", "16"]) == 1
    error = capsys.readouterr().err
    rest = "'max_filters': 512, 'spectral_norm': False, 'conditioning': 'multiply', " \
           "'mbstd_group_size': 0}"
    assert (f"holds a run with other settings (network_args: {{'base_filters': 32, {rest} -> "
            f"{{'base_filters': 16, {rest})") in error


def test_train_py_exit_code_and_stderr_in_a_real_process(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    process = subprocess.run(
        [sys.executable, os.path.join(REPO, "train.py"), "--epochs", "-1"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert process.stderr.strip().splitlines()[-1] == (
        "kgan-train: error: epochs must be >= 1, got -1")
    assert "Traceback" not in process.stderr
    assert os.listdir(tmp_path) == []


# ------------------------------------------------- never a traceback, never a lost run
def _one_line_error(capsys, *fragments):
    error = capsys.readouterr().err
    assert error.startswith("kgan-train: error: ") and error.count("\n") == 1, error
    assert "Traceback" not in error
    for fragment in fragments:
        assert fragment in error, error
    return error


def test_non_utf8_config_file_is_a_config_error(capsys, tmp_path):
    path = tmp_path / "c.json"
    path.write_bytes(b'{"epochs": 3, "dataset": "d\xe9j\xe0"}')  # Latin-1, not UTF-8
    assert main(["--config", str(path), "--run-dir", str(tmp_path / "run")]) == 2
    _one_line_error(capsys, f"config file {path} is not UTF-8 text")
    assert not (tmp_path / "run").exists()


def test_non_utf8_config_json_in_the_run_dir_is_refused_not_overwritten(capsys, tmp_path):
    run_dir = tmp_path / "run"
    training.prepare_run_dir(TrainConfig(run_dir=str(run_dir)))
    damaged = b"\xff\xfe{ not a config"
    (run_dir / "config.json").write_bytes(damaged)
    assert main(["--run-dir", str(run_dir)]) == 1
    _one_line_error(capsys, "is not UTF-8 text", "--restart")
    assert (run_dir / "config.json").read_bytes() == damaged


@pytest.mark.parametrize("inside", [".", "sub"])
def test_restart_refuses_to_move_the_current_directory(capsys, tmp_path, monkeypatch, inside):
    run_dir = tmp_path / "run"
    training.prepare_run_dir(TrainConfig(run_dir=str(run_dir)))
    (run_dir / "sub").mkdir()
    monkeypatch.chdir(run_dir / inside)
    flag = "." if inside == "." else ".."
    assert main(["--restart", "--run-dir", flag]) == 2
    _one_line_error(capsys, f"--restart cannot move {flag} aside: it is the current directory")
    assert sorted(os.listdir(tmp_path)) == ["run"]
    assert (run_dir / "config.json").is_file()


@pytest.mark.parametrize("export_dir", ["file/exports", "file"])
def test_unwritable_export_dir_fails_before_training(capsys, tmp_path, export_dir):
    (tmp_path / "file").write_text("not a folder")
    run_dir = tmp_path / "run"
    code = main([*TINY, "--run-dir", str(run_dir), "--export-dir", str(tmp_path / export_dir)])
    assert code == 2
    _one_line_error(capsys, f"--export-dir {tmp_path / export_dir}: {tmp_path / 'file'} is a "
                            "file, not a folder", "--no-export")
    assert not run_dir.exists()  # nothing trained, nothing written


SIGTERM_EARLY = """
import os, signal, sys
from kgan.training import runner
from kgan.cli.train import main

def describe(config):  # SIGTERM while the data is being read, before any training
    os.kill(os.getpid(), signal.SIGTERM)

runner._data_info = describe
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_before_training_exits_143_in_one_line(tmp_path):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    process = subprocess.run([sys.executable, "-c", SIGTERM_EARLY, "--run-dir", "run"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == 143, process.stderr[-2000:]
    assert process.stderr.strip().splitlines()[-1] == (
        "kgan-train: stopped by SIGTERM before training started; nothing to save.")
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "run").exists()


DROPPED = """
import gc, os, signal, sys
from kgan.training import runner
from kgan.cli.train import main

read_data = runner._data_info

def describe(config):  # SIGTERM inside a GC callback, where Python drops the exception
    def kill(phase, info):
        gc.callbacks.remove(kill)
        os.kill(os.getpid(), signal.SIGTERM)
    gc.callbacks.append(kill)
    gc.collect()
    return read_data(config)

runner._data_info = describe
sys.exit(main(sys.argv[1:]))
"""


def test_a_sigterm_whose_exception_python_dropped_still_stops_the_run(tmp_path):
    # JAX's GC callback is where a real one lands; training must not run on to the end.
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    process = subprocess.run([sys.executable, "-c", DROPPED, *TINY, "--run-dir", "run"],
                             cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert process.returncode == 143, process.stderr[-2000:]
    assert process.stderr.strip().splitlines()[-1] == (
        "kgan-train: stopped by SIGTERM before training step 1; nothing new to save. Run "
        "the same command again to resume.")
    assert "Traceback" not in process.stderr and "Exception ignored" not in process.stderr
    assert not os.listdir(tmp_path / "run" / "backup")  # no step was trained


def test_a_signal_dropped_after_the_run_finished_still_exits_143(capsys, monkeypatch, tmp_path):
    class Finished:
        def summary(self):
            return "Trained 1 epoch."

    def run_then_drop_a_sigterm(config, restart=False):
        def kill(phase, info):
            gc.callbacks.remove(kill)
            os.kill(os.getpid(), signal.SIGTERM)
        gc.callbacks.append(kill)
        gc.collect()
        return Finished()

    monkeypatch.setattr(training, "run", run_then_drop_a_sigterm)
    assert main([*TINY, "--no-export", "--run-dir", str(tmp_path / "run")]) == 143
    out, err = capsys.readouterr()
    assert out.strip() == "Trained 1 epoch."
    assert err.strip() == "kgan-train: stopped by SIGTERM after the run finished; nothing was lost."


# ------------------------------------------------------------- deleted checkpoints
def test_a_run_whose_checkpoint_folders_are_gone_needs_restart(capsys, tmp_path):
    run_dir = tmp_path / "run"
    argv = [*TINY, "--run-dir", str(run_dir), "--no-export"]
    training.prepare_run_dir(_config(*argv))
    (run_dir / "logs" / "events.out.tfevents.1").write_bytes(b"logged")
    (run_dir / "samples" / "epoch_0001.png").write_bytes(b"sample")
    shutil.rmtree(run_dir / "backup")
    shutil.rmtree(run_dir / "checkpoints")
    assert main(argv) == 1
    _one_line_error(capsys, f"{run_dir} holds a run (config.json, logs/, samples/) whose "
                            "backup/ and checkpoints/ folders are gone", "--restart")
    assert (run_dir / "samples" / "epoch_0001.png").read_bytes() == b"sample"
    assert sorted(os.listdir(run_dir)) == [".lock", "config.json", "logs", "samples"]


def test_check_run_dir_refuses_missing_checkpoint_folders_without_restart(tmp_path, capsys):
    config = TrainConfig(run_dir=str(tmp_path / "run"))
    training.prepare_run_dir(config)
    shutil.rmtree(tmp_path / "run" / "backup")
    check_run_dir(config)  # the epoch snapshots are still there
    shutil.rmtree(tmp_path / "run" / "checkpoints")
    with pytest.raises(RunError, match=r"holds a run \(config.json, logs/, samples/\).*--restart"):
        check_run_dir(config)
    (tmp_path / "run" / "final.keras").write_bytes(b"model")
    with pytest.raises(RunError, match=r"holds a trained run \(final.keras\) but no checkpoint"):
        check_run_dir(config)
    check_run_dir(config, restart=True)
    assert "--restart: moved the previous run to" in capsys.readouterr().out
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------ one process per run dir
HOLD_THE_LOCK = """
import sys, time
from kgan.training.rundir import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def _holder(run_dir):
    """A process that holds `run_dir`'s lock until killed."""
    env = dict(os.environ, PYTHONPATH=REPO)
    process = subprocess.Popen([sys.executable, "-c", HOLD_THE_LOCK, str(run_dir)], env=env,
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "locked\n"
    return process


def test_a_second_train_on_a_run_dir_in_use_refuses_naming_the_pid(capsys, tmp_path):
    run_dir = tmp_path / "run"
    holder = _holder(run_dir)
    try:
        assert main([*TINY, "--run-dir", str(run_dir), "--no-export"]) == 1
        _one_line_error(capsys, f"{run_dir} is in use by another kgan-train (pid "
                                f"{holder.pid}); wait for it to finish or stop it")
        assert os.listdir(run_dir) == [".lock"]  # the holder's; nothing trained
    finally:
        holder.kill()
        holder.wait()
    # The kernel released the killed holder's lock: nothing is stuck.
    with run_lock(str(run_dir)):
        assert (run_dir / ".lock").read_text().split()[0] == str(os.getpid())
        assert check_run_dir(TrainConfig(run_dir=str(run_dir)))  # the lock is no content


def test_run_lock_is_reentrant_and_follows_restart(tmp_path, capsys):
    run_dir = tmp_path / "run"
    config = TrainConfig(run_dir=str(run_dir))
    with run_lock(str(run_dir)):
        with run_lock(str(run_dir)):  # the CLI and run() both take it
            training.prepare_run_dir(config)
        check_run_dir(config, restart=True)  # moves the old run (and its lock) aside
        capsys.readouterr()
        # The new run directory is locked too, not only the moved one.
        process = subprocess.run(
            [sys.executable, "-c", HOLD_THE_LOCK, str(run_dir)], capture_output=True,
            text=True, env=dict(os.environ, PYTHONPATH=REPO), timeout=60)
        assert process.returncode == 1 and f"pid {os.getpid()}" in process.stderr
        assert _entries_of(run_dir) == [".lock"]
    assert not run_dir.exists()


def _entries_of(folder):
    return sorted(os.listdir(folder))


def test_a_folder_refused_as_run_directory_keeps_no_lock(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a kgan run")
    assert main(["--run-dir", str(tmp_path), "--epochs", "1", "--no-export"]) in (1, 2)
    assert "not a kgan run" in capsys.readouterr().err
    assert _entries_of(tmp_path) == ["notes.txt"]


def test_only_the_chief_of_a_multi_worker_run_takes_the_lock():
    cluster = {"worker": ["a:1", "b:1"]}
    assert writes_run_dir({})
    assert writes_run_dir({"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": 0}})})
    assert not writes_run_dir({"TF_CONFIG": json.dumps(
        {"cluster": cluster, "task": {"type": "worker", "index": 1}})})
    with_chief = {"chief": ["c:1"], **cluster}
    assert writes_run_dir({"TF_CONFIG": json.dumps(
        {"cluster": with_chief, "task": {"type": "chief", "index": 0}})})
    assert not writes_run_dir({"TF_CONFIG": json.dumps(
        {"cluster": with_chief, "task": {"type": "worker", "index": 0}})})


# ----------------------------------------------------------- --download without a network
def test_download_without_a_network_fails_before_any_download(capsys, tmp_path, monkeypatch):
    calls = []

    def unreachable(*args, **kwargs):
        calls.append(args)
        return "storage.googleapis.com:443: name look-up failed (Temporary failure)"

    monkeypatch.setattr(network, "probe", unreachable)
    data_dir = tmp_path / "data"
    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        lambda *a, **k: pytest.fail("tried to download after a failed probe"))
    assert main(["--preset", "mnist", "--download", "--data-dir", str(data_dir),
                 "--run-dir", str(tmp_path / "run")]) == 2
    assert calls  # one probe of the network, then the one-line error
    _one_line_error(capsys, "--download needs the internet, but storage.googleapis.com:443: "
                            "name look-up failed", "tfds build mnist --data_dir=DIR",
                    f"--data-dir {data_dir}")
    assert not glob.glob(str(tmp_path / "**" / "*.tmp.*"), recursive=True)
    assert not (tmp_path / "run").exists()


def test_download_is_not_probed_without_download_or_for_prepared_data(monkeypatch):
    monkeypatch.setattr(network, "probe", lambda *a, **k: pytest.fail("probed"))
    network.check_download("mnist", None, download=False)
    network.check_download("digits", None, download=True)  # not TFDS: nothing to download
    monkeypatch.setattr(network, "probe", lambda *a, **k: "unreachable")
    monkeypatch.setattr(network, "_prepared", lambda dataset, data_dir: True)
    network.check_download("mnist", None, download=True)  # on disk: nothing to download


PLUGIN = '''
import keras

import kgan.networks


@keras.saving.register_keras_serializable(package="plugin")
class Halve(keras.layers.Layer):
    def call(self, x):
        return 0.5 * x


def build(resolution, channels, latent_dim, num_classes=None, width=8):
    side = resolution * resolution * channels
    generator = keras.Sequential([
        keras.Input((latent_dim,)), keras.layers.Dense(side), Halve(),
        keras.layers.Reshape((resolution, resolution, channels)),
        keras.layers.Activation("tanh")])
    discriminator = keras.Sequential([
        keras.Input((resolution, resolution, channels)), keras.layers.Flatten(),
        keras.layers.Dense(width), keras.layers.LeakyReLU(), keras.layers.Dense(1)])
    return generator, discriminator


kgan.networks.register(kgan.networks.Family("halving", __name__, "a user's family",
                                            options=dict(width=8)))
kgan.losses.register_loss(  # least squares with targets +-1
    "pm_least_squares", lambda fake: keras.ops.mean((fake - 1.0) ** 2),
    lambda real, fake: keras.ops.mean((real - 1.0) ** 2) + keras.ops.mean((fake + 1.0) ** 2))
'''


def test_your_own_network_family_trains_resumes_and_exports_with_import(
        tmp_path, monkeypatch, capsys):
    """A family and a loss registered in the user's module (in the current folder):
    `--import` loads it before the config is read, config.json records it, and a resume
    with the same flags or a `--config` replay imports it again."""
    from kgan import networks
    from kgan.gan import losses

    monkeypatch.setattr(networks, "_REGISTRY", dict(networks._REGISTRY))  # restored after
    monkeypatch.setattr(losses, "_FAMILIES", dict(losses._FAMILIES))
    monkeypatch.setattr(losses, "NAMES", losses.NAMES)
    (tmp_path / "halving_plugin.py").write_text(PLUGIN)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", os.getcwd())])
    monkeypatch.chdir(tmp_path)
    flags = ["--network", "halving", "--loss", "pm_least_squares", "--no-conditional",
             "--resolution", "8", "--latent-dim",
             "4", "--batch-size", "16", "--steps-per-epoch", "2", "--epochs", "1",
             "--num-samples", "4", "--run-dir", "run", "--export-dir", "exp"]
    assert main(flags) == 2
    assert "unknown network 'halving'" in capsys.readouterr().err
    assert main([*flags, "--import", "nowhere_plugin"]) == 2
    assert "--import nowhere_plugin: No module named 'nowhere_plugin'" in capsys.readouterr().err
    assert main([*flags, "--import", "halving_plugin"]) == 0
    assert json.loads((tmp_path / "run/config.json").read_text())["imports"] == [
        "halving_plugin"]
    assert (tmp_path / "exp/digits/1/saved_model.pb").is_file()
    # As in a new process: the module and its family are gone until the replay imports them.
    monkeypatch.delitem(sys.modules, "halving_plugin")
    monkeypatch.delitem(networks._REGISTRY, "halving")
    monkeypatch.delitem(losses._FAMILIES, "pm_least_squares")
    assert main(["--config", "run/config.json", "--epochs", "2"]) == 0
    assert "resuming at epoch 2" in capsys.readouterr().out
    monkeypatch.delitem(sys.modules, "halving_plugin")
    monkeypatch.delitem(networks._REGISTRY, "halving")
    monkeypatch.delitem(losses._FAMILIES, "pm_least_squares")
    assert main([*flags, "--epochs", "3"]) == 0  # no --import: the run recorded it
    assert "resuming at epoch 3" in capsys.readouterr().out


def test_a_resume_takes_the_backend_and_imports_its_run_recorded(tmp_path, monkeypatch):
    """`kgan-train --run-dir R` resumes on the backend R started on, importing what it
    imported, unless flags or --config say otherwise; --restart starts afresh."""
    from kgan.cli import train as cli

    (tmp_path / "run").mkdir()
    (tmp_path / "run/config.json").write_text(json.dumps(
        {"backend": "jax", "imports": ["my_gans"], "epochs": 1}))
    parser = cli.build_parser()
    args = parser.parse_args(["--run-dir", str(tmp_path / "run")])
    cli._resume_as_recorded(args)
    assert (args.backend, args.imports) == ("jax", ["my_gans"])
    args = parser.parse_args(["--run-dir", str(tmp_path / "run"), "--backend", "tensorflow",
                              "--import", "other"])
    cli._resume_as_recorded(args)
    assert (args.backend, args.imports) == ("tensorflow", ["other"])
    args = parser.parse_args(["--run-dir", str(tmp_path / "run"), "--restart"])
    cli._resume_as_recorded(args)
    assert not hasattr(args, "backend") and not hasattr(args, "imports")
    monkeypatch.chdir(tmp_path)  # the default run directory of the digits demo
    (tmp_path / "runs/digits").mkdir(parents=True)
    (tmp_path / "runs/digits/config.json").write_text(json.dumps({"backend": "jax"}))
    args = parser.parse_args([])
    cli._resume_as_recorded(args)
    assert args.backend == "jax"
