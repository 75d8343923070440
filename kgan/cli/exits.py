"""One exit-status convention for every kgan command, and SIGTERM as an interruption.

| status | meaning |
|---|---|
| 0 | done |
| 1 | the work stopped (NaN loss, disk full, server refused, lost worker, ...) |
| 2 | bad input: flags, config, files the command was pointed at |
| 130 | interrupted by Ctrl-C (128 + SIGINT) |
| 143 | stopped by SIGTERM (128 + SIGTERM): docker stop, Kubernetes, SLURM |

Standard library only: command lines answer `--help` and flag errors without TensorFlow.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator

from kgan.training import signals

OK, STOPPED, BAD_INPUT = 0, 1, 2
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised like Ctrl-C's KeyboardInterrupt so the same clean-up runs."""

    signum = signal.SIGTERM


def interrupted_status(error: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM: 128 + the signal an interruption carries."""
    return 128 + int(getattr(error, "signum", signal.SIGINT))


def interruption(error: BaseException) -> str:
    """How the command was interrupted, for its one-line message."""
    return "stopped by SIGTERM" if isinstance(error, Terminated) else "interrupted"


def _interruption_for(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def _raise_interruption(signum, frame) -> None:
    signals.record(signum)  # in case Python drops the exception (kgan.training.signals)
    raise _interruption_for(signum)


def check_received() -> None:
    """Raises the interruption of a Ctrl-C or SIGTERM whose exception Python dropped
    (raised inside a garbage-collection callback; `kgan.training.signals`), so a command
    that finished its work still exits 130 / 143 as the signal asked."""
    signum = signals.received()
    if signum is not None:
        signals.clear()
        raise _interruption_for(signum)


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` instead of killing the process, so
    `finally` blocks and the command's own handling (e.g. saving a checkpoint) run; both
    SIGTERM and Ctrl-C are also recorded, so that `check_received` and the training
    `Saver` still see one whose exception was dropped."""
    signals.clear()
    previous, unraisable_hook = {}, sys.unraisablehook
    sys.unraisablehook = _quiet_dropped_interruptions
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            # Ctrl-C only where Python's own KeyboardInterrupt handler is set: a SIGINT
            # that the parent made the process ignore (nohup, `cmd &`) stays ignored.
            if signum == signal.SIGTERM or (
                    signal.getsignal(signum) is signal.default_int_handler):
                previous[signum] = signal.signal(signum, _raise_interruption)
    except ValueError:  # not the main thread
        pass
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        sys.unraisablehook = unraisable_hook
        signals.clear()  # answered by now; a later library run in this process starts clean


def _quiet_dropped_interruptions(unraisable) -> None:
    """Python's hook for exceptions it drops, without the traceback of an interruption that
    `signals` recorded (the command answers it); anything else goes to Python's hook."""
    if not isinstance(unraisable.exc_value, KeyboardInterrupt):
        sys.__unraisablehook__(unraisable)
