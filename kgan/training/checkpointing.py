"""Exact resume state of a run (the callbacks that save it live in `guards`).

Why not `keras.callbacks.BackupAndRestore` (checked with TF 2.21 / Keras 3.15): it
restores only `model.optimizer`, so a GAN's two optimizers restart from step 0 unless
built first; it restarts a killed epoch at batch 0; and after a second crash in a
resumed run it starts over at epoch 0. Instead, one `tf.train.Checkpoint` holds
`gan.training_state()` (both networks, the EMA generator, both optimizers with their
loss-scale state, the augmentation probability, `step_counter`) plus the epoch length.
All training noise is a stateless function of (`gan.seed`, `step_counter`), and the
data order a function of (seed, epoch), so `step_counter` alone says where to go on:
epoch = step // steps_per_epoch, batch = step % steps_per_epoch.

Layout: `RUN_DIR/backup/ckpt-<step>` (the resume state: every N steps and at each
epoch end, the newest two kept) and `RUN_DIR/checkpoints/epoch-<epoch>` (epoch
snapshots to go back to). `CheckpointManager.save` writes the new checkpoint, then
updates the `checkpoint` index atomically, and only then deletes the oldest, so a
crash at any moment leaves the last good checkpoint on disk. The index is only a
list: checkpoints are found by their own files (`ckpt-<N>.index`) too, so a deleted or
damaged index never makes a run start over (and then overwrite its own progress).

The callbacks that save this state during `fit()` and stop a run safely (`Saver`,
`NonFiniteGuard`) live in `kgan.training.guards`.

Under MultiWorkerMirroredStrategy every worker saves (a save may hold collective
reads), but only the chief writes into the run directory; the others write to a
scratch folder and delete it (as `keras.callbacks.BackupAndRestore` does). Every
worker restores from the chief's `backup/`, so the run directory must be shared.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from kgan import _durable
from kgan.training.errors import NonFiniteLossError, RunError, TrainingInterrupted
from kgan.training.sources import FINAL_MODEL

__all__ = ["NonFiniteLossError", "RunError", "RunState", "TrainingInterrupted", "find_checkpoints"]

BACKUP_DIR = "backup"
CHECKPOINTS_DIR = "checkpoints"
_BACKUP_NAME, _SNAPSHOT_NAME = "ckpt", "epoch"
# A truncated file gives IndexError ("Read less bytes than requested").
_READ_ERRORS = (tf.errors.OpError, ValueError, AssertionError, IndexError)


def find_checkpoints(directory: str, name: str = _BACKUP_NAME) -> tuple[list[str], str | None]:
    """Checkpoint prefixes in `directory`, oldest first, and what was wrong with the index.

    The `checkpoint` index lists what `CheckpointManager` saved; the `<name>-<N>.index`
    files are what is really there. Both count: a prefix from either source is a
    candidate (restore skips the unreadable ones).

    Returns:
        (prefixes sorted by N, None or "missing" / "unreadable" / "stale" when the index
        does not name the newest checkpoint on disk).
    """
    pattern = re.compile(rf"^{re.escape(name)}-(\d+)\.index$")
    numbers = {int(m[1]) for m in map(pattern.match, _listdir(directory)) if m}
    index = os.path.join(directory, "checkpoint")
    problem = None
    listed = []
    if os.path.exists(index):
        try:  # None when the text does not parse; bytes that are no text raise
            state = tf.train.get_checkpoint_state(directory)
        except (UnicodeDecodeError, ValueError, tf.errors.OpError):
            state = None
        if state is None:
            problem = "unreadable"
        else:
            listed = [os.path.basename(p) for p in state.all_model_checkpoint_paths]
    elif numbers:
        problem = "missing"
    listed_numbers = {int(p.rsplit("-", 1)[1]) for p in listed
                      if re.fullmatch(rf"{re.escape(name)}-\d+", p)}
    if problem is None and numbers and max(numbers) not in listed_numbers:
        problem = "stale"
    prefixes = [os.path.join(directory, f"{name}-{n}") for n in sorted(numbers | listed_numbers)]
    return prefixes, problem


def _listdir(directory: str) -> list[str]:
    try:
        return os.listdir(directory)
    except OSError:
        return []


def _rebuild_index(directory: str, name: str) -> None:
    """Rewrites a missing, unreadable or stale index from the checkpoint files."""
    prefixes, problem = find_checkpoints(directory, name)
    on_disk = [p for p in prefixes if os.path.exists(p + ".index")]
    if problem is None or not on_disk:
        return
    _write_index(directory, on_disk)
    names = ", ".join(os.path.basename(p) for p in on_disk)
    print(f"warning: the index {os.path.join(directory, 'checkpoint')} was {problem}; "
          f"rebuilt it from the checkpoint files ({names})", flush=True)


def _write_index(directory: str, prefixes: list[str]) -> None:
    """Writes the `checkpoint` index (a text CheckpointState, paths relative as
    CheckpointManager writes them). The files' times go in as the save times, so the
    manager rotates these checkpoints like its own instead of keeping them forever."""
    times = [os.path.getmtime(p + ".index") for p in prefixes]
    names = [os.path.basename(p) for p in prefixes]
    lines = [f'model_checkpoint_path: "{names[-1]}"']
    lines += [f'all_model_checkpoint_paths: "{name}"' for name in names]
    lines += [f"all_model_checkpoint_timestamps: {t!r}" for t in times]
    lines.append(f"last_preserved_timestamp: {min(times) - 1.0!r}")
    temp = os.path.join(directory, "checkpoint.tmp")
    with open(temp, "w", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    _durable.replace_file(temp, os.path.join(directory, "checkpoint"))


def _is_disk_full(error: BaseException) -> bool:
    if isinstance(error, tf.errors.ResourceExhaustedError):
        return True
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "no space left" in str(error).lower()


class RunState:
    """Saves and restores the complete training state of `gan` in `run_dir`.

    Args:
        gan: a compiled `kgan.GAN` (its optimizers are built here, so restore has
            slot variables to fill).
        run_dir: the run directory.
        steps_per_epoch: train steps per epoch; saved, and checked on restore, because
            the resume position is derived from it.
        keep_checkpoints: epoch snapshots kept in `checkpoints/`.
        chief: write into `run_dir` (False: another worker of a multi-worker run, which
            saves to a scratch folder and deletes it; it still restores from `run_dir`).
    """

    def __init__(self, gan, run_dir: str, steps_per_epoch: int, keep_checkpoints: int = 3,
                 chief: bool = True):
        gan.build_for_training()
        self.gan = gan
        self.chief = chief
        self.steps_per_epoch = int(steps_per_epoch)
        self._saved_steps_per_epoch = tf.Variable(self.steps_per_epoch, dtype=tf.int64,
                                                  trainable=False)
        self._mirror = None if keras.backend.backend() == "tensorflow" else _Mirror(gan)
        state = gan.training_state() if self._mirror is None else {"state": self._mirror}
        self.checkpoint = tf.train.Checkpoint(
            **state, steps_per_epoch=self._saved_steps_per_epoch
        )
        self.run_backup = os.path.join(run_dir, BACKUP_DIR)
        self.run_snapshots = os.path.join(run_dir, CHECKPOINTS_DIR)
        self._scratch = None if chief else tempfile.mkdtemp(prefix="kgan-worker-")
        root = run_dir if chief else self._scratch
        if chief:
            for directory, name in ((self.run_backup, _BACKUP_NAME),
                                    (self.run_snapshots, _SNAPSHOT_NAME)):
                _rebuild_index(directory, name)
        self.backup = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(root, BACKUP_DIR), max_to_keep=2,
            checkpoint_name=_BACKUP_NAME,
        )
        self.snapshots = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(root, CHECKPOINTS_DIR),
            max_to_keep=keep_checkpoints, checkpoint_name=_SNAPSHOT_NAME,
        )

    @property
    def step(self) -> int:
        """Train steps completed (the GAN's `step_counter`)."""
        _sync(self.gan)
        return int(keras.ops.convert_to_numpy(self.gan.step_counter))

    @property
    def latest(self) -> str | None:
        """The newest checkpoint in the run directory (any worker can read it)."""
        prefixes, _ = find_checkpoints(self.run_backup, _BACKUP_NAME)
        found = [p for p in prefixes if os.path.exists(p + ".index")]
        return found[-1] if found else None

    def position(self) -> tuple[int, int]:
        """(epoch, batch within the epoch) of the next train step."""
        return divmod(self.step, self.steps_per_epoch)

    def restore(self) -> int:
        """Restores the newest readable checkpoint; returns the step it resumes at (0: none).

        Candidates are the backups and the epoch snapshots (so a lost `backup/` still
        resumes from the last epoch end), latest step first. A checkpoint that fails to
        read (e.g. a disk filled up while writing it) is skipped for the one before it,
        with a warning.

        Raises:
            RunError: checkpoints exist but none can be restored into this model, or
                the epoch length changed since they were written.
        """
        errors = []
        for path in self._candidates():
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except _READ_ERRORS as error:
                errors.append(f"{os.path.basename(path)}: {str(error).splitlines()[0]}")
                continue
            if self._mirror is not None:
                self._mirror.push()
            if errors:
                print(f"warning: skipped unreadable checkpoints ({'; '.join(errors)})")
            self._check_epoch_length()
            return self.step
        if errors:
            final = os.path.join(os.path.dirname(self.run_backup), FINAL_MODEL)
            keep = (f"; {final} still holds the trained model (kgan-export, kgan-generate "
                    "and kgan-evaluate read it)" if os.path.isfile(final) else "")
            raise RunError(f"no checkpoint in {self.run_backup} or {self.run_snapshots} can "
                           f"be restored ({'; '.join(errors)}){keep}; pass --restart to "
                           "move the run aside and start over")
        return 0

    def _candidates(self) -> list[str]:
        """Checkpoint prefixes by the step they hold, newest first (backups win ties)."""
        found = []
        for directory, name, steps, rank in (
                (self.run_backup, _BACKUP_NAME, 1, 1),
                (self.run_snapshots, _SNAPSHOT_NAME, self.steps_per_epoch, 0)):
            for prefix in find_checkpoints(directory, name)[0]:
                found.append((int(prefix.rsplit("-", 1)[1]) * steps, rank, prefix))
        return [prefix for *_, prefix in sorted(found, reverse=True)]

    def _check_epoch_length(self) -> None:
        saved = int(self._saved_steps_per_epoch.numpy())
        if saved != self.steps_per_epoch:
            raise RunError(
                f"this run was trained with {saved} steps per epoch but the data now gives "
                f"{self.steps_per_epoch} (did the data set change?); pass "
                f"--steps-per-epoch {saved} to resume, or --restart to start over")
        self._saved_steps_per_epoch.assign(self.steps_per_epoch)

    def save(self, epoch_end: bool = False) -> str:
        """Writes a backup (and, at an epoch end, an epoch snapshot); returns its path.

        Raises:
            NonFiniteLossError: a weight is NaN/Inf; nothing is written, so the last
                good checkpoint stays the newest.
            RunError: the checkpoint could not be written (disk full, ...); its
                temporary files are removed and the last good checkpoint is named.
        """
        _sync(self.gan)
        self._check_finite()
        step = self.step
        if self._mirror is not None:
            self._mirror.pull()
        try:
            path = self._write(self.backup, _BACKUP_NAME, step)
            if epoch_end:
                self._write(self.snapshots, _SNAPSHOT_NAME, step // self.steps_per_epoch)
        finally:
            if self._scratch:
                shutil.rmtree(self._scratch, ignore_errors=True)
        return path if self.chief else os.path.join(self.run_backup, os.path.basename(path))

    def _write(self, manager: tf.train.CheckpointManager, name: str, number: int) -> str:
        prefix = os.path.join(manager.directory, f"{name}-{number}")
        known = set(manager.checkpoints)
        try:
            return manager.save(checkpoint_number=number)
        except (tf.errors.OpError, OSError) as error:
            _remove_partial(prefix, keep=prefix in known)
            last = self.latest or "none yet"
            cause = ("disk full" if _is_disk_full(error)
                     else f"cannot write ({str(error).splitlines()[0]})")
            raise RunError(f"{cause} writing {prefix}; last good checkpoint {last}") from None

    def close(self) -> None:
        """Removes this worker's scratch folder (other workers only)."""
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)

    def _check_finite(self) -> None:
        for name, trackable in self.gan.training_state().items():
            for variable in getattr(trackable, "variables", []):
                value = keras.ops.convert_to_numpy(variable)
                if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                    raise NonFiniteLossError(
                        f"non-finite values in {name} variable {variable.path} at step "
                        f"{self.step}; not saving it. The last good checkpoint is "
                        f"{self.latest}.")


def _sync(gan) -> None:
    """On JAX, `fit` keeps the state out of the variables until an epoch ends: bring it
    back before reading them mid-epoch (what a callback's `self.model` does)."""
    if hasattr(gan, "jax_state_sync"):
        gan.jax_state_sync()


class _Mirror(tf.Module):
    """The training state of a GAN on a backend without TensorFlow variables (JAX), as
    TensorFlow variables for `tf.train.Checkpoint`: one per Keras variable, named by its
    place in `gan.training_state()` ("<part>/<index>"), so the checkpoint files, their
    rotation and their recovery are the same as on TensorFlow. `pull` copies the Keras
    values in before a save, `push` copies them back after a restore."""

    def __init__(self, gan):
        super().__init__(name="kgan_state")
        self._pairs = []
        for part, trackable in gan.training_state().items():
            variables = getattr(trackable, "variables", None)
            variables = [trackable] if variables is None else list(variables)
            for index, variable in enumerate(variables):
                value = keras.ops.convert_to_numpy(variable)
                dtype = tf.int64 if np.issubdtype(value.dtype, np.integer) else tf.float32
                mirror = tf.Variable(tf.zeros(value.shape, dtype), trainable=False,
                                     name=f"{part}/{index}")
                self._pairs.append((variable, mirror))
        self.values = [mirror for _, mirror in self._pairs]

    def pull(self) -> None:
        for variable, mirror in self._pairs:
            mirror.assign(tf.cast(keras.ops.convert_to_numpy(variable), mirror.dtype))

    def push(self) -> None:
        for variable, mirror in self._pairs:
            variable.assign(keras.ops.convert_to_tensor(mirror.numpy(), variable.dtype))


def _remove_partial(prefix: str, keep: bool) -> None:
    """Deletes what a failed save left: `<prefix>_temp/` shards, and the half-merged
    `<prefix>.index` / `.data-*` unless an earlier good save already had this name."""
    shutil.rmtree(f"{prefix}_temp", ignore_errors=True)
    if keep:
        return
    for path in glob.glob(glob.escape(prefix) + ".index") + glob.glob(
            glob.escape(prefix) + ".data-*"):
        with contextlib.suppress(OSError):
            os.remove(path)
