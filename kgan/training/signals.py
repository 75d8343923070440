"""Stop signals (Ctrl-C, SIGTERM) remembered by the process, so that none is lost.

Python runs a signal handler in the main thread between two bytecodes, wherever that
thread is. When it is inside a garbage-collection callback or a `__del__` (JAX registers
a GC callback), the exception the handler raises is printed as "Exception ignored in ..."
and dropped, and the program runs on as if the signal had never come: `docker stop`
would then wait for its SIGKILL and lose the work since the last checkpoint. So every
raising handler records its signal here first, and the places that can stop cleanly (the
`Saver` before the first step, each command once its work is done) look here.
Standard library only.
"""

from __future__ import annotations

_received: list[int] = []


def record(signum: int) -> None:
    """Notes that `signum` arrived (called by signal handlers)."""
    _received.append(int(signum))


def received() -> int | None:
    """The last stop signal recorded since `clear()`, or None."""
    return _received[-1] if _received else None


def clear() -> None:
    """Forgets the recorded signals (a command starts, or it has answered them)."""
    _received.clear()
