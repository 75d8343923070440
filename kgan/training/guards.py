"""The callbacks that keep a run safe while it trains: `Saver` writes the resume state
(`kgan.training.checkpointing.RunState`) every N steps and at each epoch end and turns
Ctrl-C / SIGTERM into a save and a clean stop; `NonFiniteGuard` stops at the first
NaN or infinite loss, before anything saves the bad step."""

from __future__ import annotations

import signal

import keras
import numpy as np

from kgan.training import signals
from kgan.training.checkpointing import RunState
from kgan.training.errors import NonFiniteLossError, TrainingInterrupted

__all__ = ["STOP_SIGNALS", "NonFiniteGuard", "Saver"]


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training at the first step whose logged losses are NaN or infinite.

    Keras's `TerminateOnNaN` watches only a `loss` key, which a GAN does not log, and
    its graceful stop still lets later callbacks (ModelCheckpoint) save NaN weights; this
    raises `NonFiniteLossError` before any callback after it (place it first) can save
    anything from the bad step. Logged values are running means over the epoch, so the
    first non-finite one is the step where it happened.

    Args:
        state: the run's `RunState` (kgan-train: to name the last good checkpoint); None
            in a plain `fit`, where the step comes from `gan.step_counter`.

    Example:
        >>> gan.fit(data, epochs=10, callbacks=[kgan.callbacks.NonFiniteGuard(),
        ...                                     keras.callbacks.ModelCheckpoint(...)])
    """

    def __init__(self, state: RunState | None = None):
        super().__init__()
        self.state = state

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        for name, value in (logs or {}).items():
            value = np.asarray(keras.ops.convert_to_numpy(value))
            if value.size == 1 and not np.isfinite(value).all():
                raise NonFiniteLossError(f"{name} is {value.item()} at {self._where()}; "
                                         f"training stopped. {self._advice()}")

    def _where(self) -> str:
        if self.state is None:
            return f"step {int(keras.ops.convert_to_numpy(self.model.step_counter))}"
        step = self.state.step
        epoch, within = divmod(step - 1, self.state.steps_per_epoch)
        return f"step {step} (epoch {epoch + 1}, batch {within + 1})"

    def _advice(self) -> str:
        kept = (f"The last good checkpoint is kept: {self.state.latest or 'none yet'}. "
                if self.state is not None else "")
        return f"{kept}Check the data for NaN/Inf, or lower the learning rates."


#: What the process does on these signals while training: save, then stop.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Saver(keras.callbacks.Callback):
    """Saves the run state every `every` steps and at each epoch end; handles Ctrl-C
    and SIGTERM (what docker stop, Kubernetes and SLURM send before killing).

    While active (`with saver:`), SIGINT and SIGTERM only raise a flag; the next batch
    end saves and raises `TrainingInterrupted` (its `signum` says which signal), so the
    state is never captured mid-step. A second signal gets the handler that was there
    before (Python's KeyboardInterrupt for Ctrl-C), in case a step hangs. In a
    multi-worker run the workers agree at each batch end on whether any of them got a
    signal, so all save the same step and stop together.

    Args:
        state: the run's `RunState`.
        every: steps between backups.
        cluster: the `distribute.Setup` of a multi-worker run, whose `sum_over_workers`
            the workers agree with (None: this process alone).
    """

    def __init__(self, state: RunState, every: int, cluster=None):
        super().__init__()
        self.state, self.every, self.cluster = state, int(every), cluster
        self.signum: int | None = None
        self._previous: dict = {}
        self._previous_step: int | None = None

    def __enter__(self) -> Saver:
        # A signal whose exception Python dropped during start-up (kgan.training.signals)
        # still stops the run: `on_train_begin` answers it before the first step.
        self.signum = signals.received()
        for signum in STOP_SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._on_signal)
            except ValueError:  # not the main thread: leave signals alone
                break
        return self

    def __exit__(self, *exc_info) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _on_signal(self, signum, frame) -> None:
        self.signum = signum
        # Once is a request; a second time means "now": restore what was there before.
        signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))

    def _agreed_signal(self) -> int | None:
        """The signal this worker, or any worker of the cluster, got (SIGTERM first)."""
        if self.cluster is None:
            return self.signum
        counts = self.cluster.sum_over_workers([float(self.signum == s) for s in STOP_SIGNALS])
        got = [s for s, count in zip(STOP_SIGNALS, counts, strict=True) if count > 0]
        return max(got) if got else None

    def check(self, save: bool = True) -> None:
        """Saves (unless `save` is False: nothing trained yet) and raises
        `TrainingInterrupted` if a stop signal arrived."""
        signum = self._agreed_signal()
        if signum is None:
            return
        what = ("interrupted" if signum == signal.SIGINT
                else f"stopped by {signal.Signals(signum).name}")
        if self.signum is None:
            what += " (on another worker)"
        if save:
            done = f"at step {self.state.step}; saved {self.state.save()}"
        else:
            done = f"before training step {self.state.step + 1}; nothing new to save"
        error = TrainingInterrupted(f"{what} {done}. Run the same command again to resume.")
        error.signum = signum
        raise error

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.check()
        step, previous = self.state.step, self._previous_step
        self._previous_step = step
        # A multiple of `every` was passed (steps_per_execution > 1 jumps several steps);
        # the last step of an epoch is saved by on_epoch_end.
        if previous is not None and step // self.every > previous // self.every and (
                step % self.state.steps_per_epoch):
            self.state.save()

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._previous_step = self.state.step
        self.check(save=False)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.state.save(epoch_end=True)
