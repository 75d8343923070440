"""Exact resume state of a run, and the callbacks that save it and guard it.

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
crash at any moment leaves the last good checkpoint on disk.
"""

from __future__ import annotations

import os
import signal

import keras
import numpy as np
import tensorflow as tf

from kgan.training.errors import NonFiniteLossError, RunError, TrainingInterrupted

__all__ = ["NonFiniteLossError", "NonFiniteGuard", "RunError", "RunState", "Saver",
           "TrainingInterrupted"]

BACKUP_DIR = "backup"
CHECKPOINTS_DIR = "checkpoints"


class RunState:
    """Saves and restores the complete training state of `gan` in `run_dir`.

    Args:
        gan: a compiled `kgan.GAN` (its optimizers are built here, so restore has
            slot variables to fill).
        run_dir: the run directory.
        steps_per_epoch: train steps per epoch; saved, and checked on restore, because
            the resume position is derived from it.
        keep_checkpoints: epoch snapshots kept in `checkpoints/`.
    """

    def __init__(self, gan, run_dir: str, steps_per_epoch: int, keep_checkpoints: int = 3):
        gan.build_for_training()
        self.gan = gan
        self.steps_per_epoch = int(steps_per_epoch)
        self._saved_steps_per_epoch = tf.Variable(self.steps_per_epoch, dtype=tf.int64,
                                                  trainable=False)
        self.checkpoint = tf.train.Checkpoint(
            **gan.training_state(), steps_per_epoch=self._saved_steps_per_epoch
        )
        self.backup = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(run_dir, BACKUP_DIR), max_to_keep=2
        )
        self.snapshots = tf.train.CheckpointManager(
            self.checkpoint, os.path.join(run_dir, CHECKPOINTS_DIR),
            max_to_keep=keep_checkpoints, checkpoint_name="epoch",
        )

    @property
    def step(self) -> int:
        """Train steps completed (the GAN's `step_counter`)."""
        return int(keras.ops.convert_to_numpy(self.gan.step_counter))

    def position(self) -> tuple[int, int]:
        """(epoch, batch within the epoch) of the next train step."""
        return divmod(self.step, self.steps_per_epoch)

    def restore(self) -> int:
        """Restores the newest readable backup; returns the step it resumes at (0: none).

        A checkpoint that fails to read (e.g. a disk filled up while writing it) is
        skipped for the one before it, with a warning.

        Raises:
            RunError: checkpoints exist but none can be restored into this model, or
                the epoch length changed since they were written.
        """
        errors = []
        for path in reversed(self.backup.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            # A truncated file gives IndexError ("Read less bytes than requested").
            except (tf.errors.OpError, ValueError, AssertionError, IndexError) as error:
                errors.append(f"{os.path.basename(path)}: {str(error).splitlines()[0]}")
                continue
            if errors:
                print(f"warning: skipped unreadable checkpoints ({'; '.join(errors)})")
            self._check_epoch_length()
            return self.step
        if errors:
            raise RunError(f"no checkpoint in {self.backup.directory} can be restored "
                           f"({'; '.join(errors)}); pass --restart to start over")
        return 0

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
        """
        self._check_finite()
        step = self.step
        path = self.backup.save(checkpoint_number=step)
        if epoch_end:
            self.snapshots.save(checkpoint_number=step // self.steps_per_epoch)
        return path

    def _check_finite(self) -> None:
        for name, trackable in self.gan.training_state().items():
            for variable in getattr(trackable, "variables", []):
                value = keras.ops.convert_to_numpy(variable)
                if np.issubdtype(value.dtype, np.floating) and not np.isfinite(value).all():
                    raise NonFiniteLossError(
                        f"non-finite values in {name} variable {variable.path} at step "
                        f"{self.step}; not saving it. The last good checkpoint is "
                        f"{self.backup.latest_checkpoint}.")


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first step whose logged losses are NaN or infinite.

    Keras's `TerminateOnNaN` watches only a `loss` key, which a GAN does not log, and
    its graceful stop still lets later callbacks save NaN weights; this raises before
    any callback after it (place it first) can save anything from the bad step.
    Logged values are running means over the epoch, so the first non-finite one is
    the step where it happened.

    Args:
        state: the run's `RunState` (to name the step and the last good checkpoint).
    """

    def __init__(self, state: RunState):
        super().__init__()
        self.state = state

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for name, value in (logs or {}).items():
            value = np.asarray(keras.ops.convert_to_numpy(value))
            if value.size == 1 and not np.isfinite(value).all():
                step = self.state.step
                epoch, within = divmod(step - 1, self.state.steps_per_epoch)
                raise NonFiniteLossError(
                    f"{name} is {value.item()} at step {step} (epoch {epoch + 1}, batch "
                    f"{within + 1}); training stopped. The last good checkpoint is kept: "
                    f"{self.state.backup.latest_checkpoint or 'none yet'}. Check the data for "
                    "NaN/Inf, or lower the learning rates.")


class Saver(keras.callbacks.Callback):
    """Saves the run state every `every` steps and at each epoch end; handles Ctrl-C.

    While active (`with saver:`), SIGINT only raises a flag; the next batch end saves
    and raises `TrainingInterrupted`, so the state is never captured mid-step. A second
    Ctrl-C gets Python's default behaviour, in case a step hangs.

    Args:
        state: the run's `RunState`.
        every: steps between backups.
    """

    def __init__(self, state: RunState, every: int):
        super().__init__()
        self.state, self.every = state, int(every)
        self._interrupted = False
        self._previous_handler = None

    def __enter__(self) -> Saver:
        try:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self._previous_handler = None
        return self

    def __exit__(self, *exc_info) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)

    def _on_sigint(self, signum, frame) -> None:
        self._interrupted = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._interrupted:
            path = self.state.save()
            raise TrainingInterrupted(
                f"interrupted at step {self.state.step}; saved {path}. Run the same "
                "command again to resume.")
        step = self.state.step
        # The last step of an epoch is saved by on_epoch_end.
        if step % self.every == 0 and step % self.state.steps_per_epoch:
            self.state.save()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.state.save(epoch_end=True)
