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
from collections.abc import Callable, Iterator

from kgan.training import signals

OK, STOPPED, BAD_INPUT = 0, 1, 2
INTERRUPTED = 128 + signal.SIGINT
TERMINATED = 128 + signal.SIGTERM


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; raised like Ctrl-C's KeyboardInterrupt so the same clean-up runs."""

    signum = signal.SIGTERM


def one_line(error: BaseException | str) -> str:
    """An error as one readable line: a KeyError's message without its quotes, an OSError
    as "reason: file", else its text with the whitespace folded (or its class name)."""
    if isinstance(error, str):
        return " ".join(error.split())
    if isinstance(error, OSError) and error.errno is not None and error.strerror:
        return f"{error.strerror}: {error.filename or ''}".rstrip(": ")
    text = str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(text.split()) or type(error).__name__


def run(prog: str, work: Callable[[], object], *, debug: bool = False,
        bad_input: tuple[type[BaseException], ...] = (ValueError,),
        stopped: Callable[[Exception], bool] = lambda error: True,
        stopped_prefix: str = "", interrupted: str = "") -> int:
    """Runs a command's `work` under this module's convention and returns its status.

    SIGTERM and Ctrl-C interrupt it (130 / 143, "`prog`: interrupted`interrupted`"); a
    signal whose exception Python dropped is answered once the work is done; `bad_input`
    exceptions exit 2 and others 1, each as one line (`--debug`: the traceback), except
    those `stopped` does not claim, which propagate as bugs; `stopped_prefix` may name the
    exception's `{type}`. `work` prints its own results.
    """
    finished = False
    with sigterm_as_interrupt():
        try:
            work()
            finished = True
            check_received()
        except KeyboardInterrupt as error:
            note = " after its work was done; nothing was lost" if finished else interrupted
            print(f"{prog}: {interruption(error)}{note}", file=sys.stderr)
            return interrupted_status(error)
        except bad_input as error:
            if debug:
                raise
            print(f"{prog}: error: {one_line(error)}", file=sys.stderr)
            return BAD_INPUT
        except Exception as error:
            if debug or not stopped(error):
                raise
            prefix = stopped_prefix.format(type=type(error).__name__)
            print(f"{prog}: error: {prefix}{one_line(error)}", file=sys.stderr)
            return STOPPED
    return OK


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
