"""Where a trained model is: a `.keras` file, a run directory's `final.keras`, or, for a
run that has not finished, its newest checkpoint (for kgan-export, kgan-evaluate and
kgan-generate; kgan-demo serves exports and points a run directory to kgan-export).

A run in progress has no `final.keras` yet, but its `backup/` and `checkpoints/` hold
the whole training state (`kgan.training.checkpointing`). As stylegan2-ada's scripts
take any network snapshot, `find_model_file` then rebuilds the GAN from the run's
`config.json`, restores the newest readable checkpoint with the code a resume uses
(`RunState.restore`), and saves it as a temporary `.keras` file, which loads on either
backend. Checkpoints load only on the backend the run trained on, so this happens in a
child process on that backend; the caller's process loads nothing, and a run still
training is only read, never written.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

FINAL_MODEL = "final.keras"
_NO_CHECKPOINT = ("{} has no final.keras and no checkpoint yet: the run has not trained long "
                  "enough to save one (kgan-train saves every --checkpoint-every steps and at "
                  "each epoch end)")


class SourceError(ValueError):
    """SOURCE is not something kgan-export can export (the message says what to pass)."""


def is_keras_source(source: str) -> bool:
    """Whether `source` names a `.keras` file or a run directory, finished or not (what
    `find_model_file` reads), rather than an export folder."""
    return os.path.isfile(source) or any(os.path.exists(os.path.join(source, name))
                                         for name in (FINAL_MODEL, "config.json", "checkpoints"))


def find_model_file(source: str) -> str:
    """Returns the `.keras` file SOURCE names, a run directory's `final.keras`, or for an
    unfinished run a temporary `.keras` file of its newest checkpoint (removed when this
    process exits; stderr says which step it holds)."""
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise SourceError(f"{source} is not a .keras file; pass a run directory or a "
                              ".keras model")
        return source
    if not os.path.isdir(source):
        raise SourceError(f"{source} does not exist")
    path = os.path.join(source, FINAL_MODEL)
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(source, "config.json")):
        return checkpoint_model_file(source)
    raise SourceError(f"{source} is not a kgan run directory (no {FINAL_MODEL} or "
                      "config.json); pass a run directory or a .keras file")


def checkpoint_model_file(run_dir: str) -> str:
    """Saves the newest checkpoint of the run in `run_dir` as a temporary `.keras` file
    (in a child process on the run's backend) and returns its path.

    Raises:
        SourceError: the run has no readable checkpoint yet, its config or data cannot
            be read, or its backend is not installed here.
    """

    saved = glob.glob(os.path.join(glob.escape(run_dir), "backup", "ckpt-*.index")) + (
        glob.glob(os.path.join(glob.escape(run_dir), "checkpoints", "epoch-*.index")))
    if not saved:
        raise SourceError(_NO_CHECKPOINT.format(run_dir))
    backend = _recorded(run_dir).get("backend") or "auto"  # the file is checked in the child
    backend = "tensorflow" if backend == "auto" else backend
    folder = tempfile.mkdtemp(prefix="kgan-checkpoint-")
    atexit.register(shutil.rmtree, folder, True)
    path = os.path.join(folder, os.path.basename(os.path.abspath(run_dir)) + ".keras")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-m", __name__, run_dir, path], env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        reason = lines[-1] if lines else f"exit status {done.returncode}"
        if "No module named" in reason:
            reason = (f"{reason}; its checkpoints load only on the backend it trained on "
                      f"({backend}): install it, or wait for {FINAL_MODEL}, which loads on "
                      "either")
        raise SourceError(f"{run_dir} has not finished (no {FINAL_MODEL}), and its newest "
                          f"checkpoint cannot be used: {reason.removeprefix('error: ')}")
    print(done.stdout.strip(), file=sys.stderr, flush=True)
    return path


def _save_checkpoint(run_dir: str, path: str) -> str:
    """(Child process, on the run's backend.) Rebuilds the run's GAN, restores its newest
    checkpoint as a resume would, saves it to `path`; returns what it restored."""
    import keras

    from kgan import data, plugins
    from kgan.training.checkpointing import RunState
    from kgan.training.config import TrainConfig
    from kgan.training.recipe import build_gan

    plugins.load(_recorded(run_dir).get("imports") or [])  # the run's own pieces first
    config = TrainConfig.load(os.path.join(run_dir, "config.json"))
    steps_per_epoch = _saved_steps_per_epoch(run_dir)
    num_classes = None
    if config.conditional:
        try:
            num_classes = data.describe(config.dataset, data_dir=config.data_dir).num_classes
        except (ValueError, FileNotFoundError) as error:
            raise SourceError(f"the run's data {config.dataset!r} says how many classes the "
                              f"model has, and cannot be read here: {error}") from None
    step = 0
    # mixed_float16 wraps the optimizers in loss scaling, which the checkpoint holds.
    policies = ([config.mixed_precision] if config.mixed_precision != "auto"
                else ["float32", "mixed_float16"])
    for policy in policies:
        keras.mixed_precision.set_global_policy(policy)
        gan = build_gan(config, num_classes, steps_per_epoch=steps_per_epoch)
        state = RunState(gan, run_dir, steps_per_epoch, chief=False)  # reads only
        try:
            step = state.restore()
        except RuntimeError:
            if policy == policies[-1]:
                raise
        finally:
            state.close()
        if step:
            break
    if not step:
        raise SourceError(_NO_CHECKPOINT.format(run_dir))
    keras.mixed_precision.set_global_policy("float32")
    gan.save(path)
    epoch, batch = divmod(step, steps_per_epoch)
    where = (f"epoch {epoch + 1} of {config.epochs}, batch {batch}" if batch
             else f"the end of epoch {epoch} of {config.epochs}")
    return (f"kgan: {run_dir} has not finished (no {FINAL_MODEL}): using its newest "
            f"checkpoint, step {step} ({where})")


def _recorded(run_dir: str) -> dict:
    """The run's config.json as plain JSON (read before its own modules are imported)."""
    try:
        with open(os.path.join(run_dir, "config.json"), encoding="utf-8") as file:
            values = json.load(file)
    except (OSError, ValueError) as error:
        raise SourceError(f"cannot read {run_dir}/config.json: {error}") from None
    return values if isinstance(values, dict) else {}


def _saved_steps_per_epoch(run_dir: str) -> int:
    """The epoch length the run's checkpoints record (no need to read its data)."""
    import tensorflow as tf

    from kgan.training.checkpointing import BACKUP_DIR, CHECKPOINTS_DIR, find_checkpoints

    prefixes = (find_checkpoints(os.path.join(run_dir, BACKUP_DIR))[0]
                + find_checkpoints(os.path.join(run_dir, CHECKPOINTS_DIR), "epoch")[0])
    for prefix in reversed(prefixes):
        try:
            return int(tf.train.load_variable(prefix, "steps_per_epoch/.ATTRIBUTES/"
                                                      "VARIABLE_VALUE"))
        except (tf.errors.OpError, ValueError):
            continue
    raise SourceError(_NO_CHECKPOINT.format(run_dir))


def intact_keras_archive(path: str) -> bool:
    """Whether `path` is a whole `.keras` archive (every member's CRC checks out)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None and "config.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def check_keras_archive(path: str) -> None:
    """Names a damaged `.keras` file (a zip archive) before Keras calls it "not found"."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise SourceError(f"{path} is not a readable .keras file: a .keras file is a zip "
                          "archive, and this one is damaged or truncated")


def load_keras_file(path: str):
    """The model in a `.keras` file, uncompiled, kgan's classes registered (kgan-export,
    kgan-evaluate and kgan-generate read files this way).

    Raises:
        SourceError: a damaged archive, or a class this process does not know (the
            message names the module to `--import`).
    """
    import keras

    import kgan  # noqa: F401  (registers kgan's classes, so load_model finds them)
    from kgan.plugins import load_failure

    check_keras_archive(path)
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as error:
        raise SourceError(f"cannot load {path}: {load_failure(error)}") from None


if __name__ == "__main__":  # the child process of checkpoint_model_file
    try:
        print(_save_checkpoint(*sys.argv[1:3]))
    except (ValueError, RuntimeError) as failure:  # SourceError, ConfigError, RunError
        print(f"error: {' '.join(str(failure).split())}", file=sys.stderr)
        sys.exit(2)
