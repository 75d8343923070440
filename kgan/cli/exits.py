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
from collections.abc import Iterator

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


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises `Terminated` instead of killing the process, so
    `finally` blocks and the command's own handling (e.g. saving a checkpoint) run."""
    try:
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
