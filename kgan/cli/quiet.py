"""TensorFlow's start-up noise, hidden from kgan's commands unless `--debug` asks for it.

Importing TensorFlow 2.21 prints lines such as `oneDNN custom operations are on`, `Could
not find cuda drivers`, `This TensorFlow binary is optimized to use available CPU
instructions` and `failed call to cuInit` before a command says anything itself. Some
come through TensorFlow's logger (`TF_CPP_MIN_LOG_LEVEL` hides them); the first ones are
written before that logger reads its settings, so `quiet_tensorflow` also imports
TensorFlow with the process's stderr (file descriptor 2) captured and writes back every
line that is not such start-up noise.

Nothing changes when the user set `TF_CPP_MIN_LOG_LEVEL` or passed `--debug`.
Standard library only: call it before anything imports TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterator

__all__ = ["DEBUG_HELP", "add_debug_flag", "is_noise", "quiet_tensorflow"]

#: Set for TensorFlow's C++ logging (and gRPC's) unless the user set them.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}
DEBUG_HELP = "show tracebacks and TensorFlow's own log lines"

_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called"
# absl/glog line: severity letter, MMDD, time, thread id, file:line]
_LOG_LINE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]\s]+:\d+\] ")
# ERROR lines TensorFlow prints on every start of a CUDA build on a machine without a GPU
# (or with one, registering its plug-ins twice).
_START_UP_ERRORS = re.compile(r"cuInit|Unable to register cu\w+ factory|computation placer")
_CPU_FLAGS = re.compile(r"^To enable the following instructions: .* rebuild TensorFlow")


def add_debug_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--debug", action="store_true", default=False, help=DEBUG_HELP)


def is_noise(line: str) -> bool:
    """Whether a line of stderr is TensorFlow's start-up chatter (not a real error)."""
    match = _LOG_LINE.match(line)
    if match:
        return match[1] in "IW" or bool(_START_UP_ERRORS.search(line))
    return line.startswith(_ABSL_PREAMBLE) or bool(_CPU_FLAGS.match(line))


def quiet_tensorflow(debug: bool = False, load: bool = True) -> None:
    """Hides TensorFlow's start-up lines: sets `QUIET_ENVIRONMENT`'s variables the user did
    not set, lowers absl's Python logger to errors and, with `load`, imports TensorFlow
    with its early lines filtered out. kgan's own warnings print as one plain line.

    Does nothing with `debug`; only the plain warnings when the user set
    TF_CPP_MIN_LOG_LEVEL themselves; no import when TensorFlow is already loaded.
    """
    if debug:
        return
    _plain_kgan_warnings()
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    logging.getLogger("absl").setLevel(logging.ERROR)  # Keras's Python-side WARNING:absl
    for name, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if load and "tensorflow" not in sys.modules:
        with _filtered_stderr():
            import tensorflow  # noqa: F401


def _plain_kgan_warnings() -> None:
    """kgan's own warnings (e.g. the images a folder skipped) as `kgan: warning: ...` lines,
    without the file, line number and source line that Python's format adds."""
    if getattr(warnings.showwarning, "kgan_plain", False):
        return
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if not category.__module__.startswith("kgan."):
            return shown(message, category, filename, lineno, file, line)
        print(f"kgan: warning: {message}", file=file or sys.stderr)

    show.kgan_plain = True
    warnings.showwarning = show


@contextlib.contextmanager
def _filtered_stderr() -> Iterator[None]:
    """Captures file descriptor 2 (C++ code writes there, not to sys.stderr) and writes
    back what is not noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not is_noise(line)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
