"""The run directory (DESIGN.md, run directory contract): where a run keeps what, the
checks that keep one run's files from being overwritten by another, and its outputs.

Nothing here changes a run directory before the request is accepted: `check_run_dir`
only reads (or, with --restart, moves the old run aside), `write_run_dir` comes after
the resume checks, and `final.keras` / `result.json` are written via a temporary file
and a rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import shutil
import signal
import tempfile
import time

from kgan.training.config import ConfigError, TrainConfig
from kgan.training.errors import RunError, TrainingInterrupted

__all__ = ["RunPaths", "RunResult", "check_export_dir", "check_run_dir", "prepare_run_dir",
           "writable_problem", "write_run_dir"]


class RunPaths:
    """Where a run keeps what (DESIGN.md, run directory contract)."""

    def __init__(self, root: str):
        self.root = root
        self.config = os.path.join(root, "config.json")
        self.logs = os.path.join(root, "logs")
        self.samples = os.path.join(root, "samples")
        self.backup = os.path.join(root, "backup")
        self.checkpoints = os.path.join(root, "checkpoints")
        self.final_model = os.path.join(root, "final.keras")
        self.result = os.path.join(root, "result.json")
        self.classifier = os.path.join(root, "metrics_classifier.keras")


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run produced."""

    run_dir: str
    epochs: int
    steps: int
    final_model: str
    export: str | None
    worker: int = 0  # another worker of a multi-worker run: the chief wrote the files

    def summary(self) -> str:
        if self.worker:
            return (f"Worker {self.worker} trained {self.epochs} epochs ({self.steps} steps); "
                    f"the chief (worker 0) writes {self.run_dir}.")
        logs = os.path.join(self.run_dir, "logs")
        lines = [f"Trained {self.epochs} epochs ({self.steps} steps).",
                 f"  run dir:     {self.run_dir}",
                 f"  samples:     {os.path.join(self.run_dir, 'samples')}",
                 f"  final model: {self.final_model}"]
        if self.export:
            lines.append(f"  export:      {self.export}")
        lines.append(f"  TensorBoard: tensorboard --logdir {logs}")
        return "\n".join(lines)


def prepare_run_dir(config: TrainConfig, restart: bool = False) -> RunPaths:
    """Creates the run directory, or checks that the one there is this run's.

    Raises:
        RunError: the directory holds a run with other settings, is not a kgan run,
            or cannot be written.
        ConfigError: --restart would move the current directory (or a parent) aside.
    """
    paths = check_run_dir(config, restart)
    write_run_dir(config, paths)
    return paths


def check_run_dir(config: TrainConfig, restart: bool = False) -> RunPaths:
    """Checks that the run directory is free or this run's (with `restart`, moves it
    aside first); writes nothing else, so a refused request leaves it as it was."""
    paths = RunPaths(config.run_dir)
    if restart and os.path.isdir(paths.root) and os.listdir(paths.root):
        moved = _move_aside(paths.root)
        print(f"--restart: moved the previous run to {moved}")
    _check_existing(config, paths)
    return paths


def write_run_dir(config: TrainConfig, paths: RunPaths) -> None:
    """Creates the run's folders and (re)writes `config.json`."""
    try:
        for folder in (paths.logs, paths.samples, paths.backup, paths.checkpoints):
            os.makedirs(folder, exist_ok=True)
        write_atomic(paths.config, config.to_json())
    except OSError as error:
        raise RunError(f"cannot write the run directory {paths.root}: "
                       f"{error.strerror or error}") from None


def _check_existing(config: TrainConfig, paths: RunPaths) -> None:
    if os.path.isfile(paths.config):
        try:
            saved = TrainConfig.load(paths.config)
        except ConfigError as error:
            raise RunError(f"cannot resume {paths.root}: {error}; pass --restart to move it "
                           "aside and start over") from None
        changed = saved.differences(config)
        if changed:
            raise RunError(
                f"{paths.root} holds a run with other settings ({'; '.join(changed)}); use "
                "the same settings to resume, another --run-dir, or --restart to move the "
                "old run aside and start over")
    elif os.path.isdir(paths.root) and os.listdir(paths.root):
        raise RunError(f"{paths.root} is not empty and holds no config.json, so it is not a "
                       "kgan run; choose another --run-dir or pass --restart to move it aside")
    elif os.path.exists(paths.root) and not os.path.isdir(paths.root):
        raise RunError(f"cannot use {paths.root} as the run directory: it is a file")


def _move_aside(root: str) -> str:
    here, old = os.path.realpath(os.getcwd()), os.path.realpath(root)
    if here == old or here.startswith(old.rstrip(os.sep) + os.sep):
        raise ConfigError(f"--restart cannot move {root} aside: it is the current directory "
                          "or holds it; run from its parent folder (e.g. cd .. and "
                          f"--run-dir {os.path.basename(old)})")
    base = f"{os.path.normpath(root)}.old-{time.strftime('%Y%m%d-%H%M%S')}"
    target, number = base, 1
    while os.path.exists(target):
        number += 1
        target = f"{base}-{number}"
    try:
        shutil.move(root, target)
    except OSError as error:
        raise RunError(f"--restart cannot move {root} to {target}: "
                       f"{error.strerror or error}") from None
    return target


def check_export_dir(config: TrainConfig) -> None:
    """Fails before training, not after it, when the export cannot be written."""
    if not config.export:
        return
    problem = writable_problem(os.path.join(config.export_dir, config.model_name))
    if problem:
        raise ConfigError(f"--export-dir {config.export_dir}: {problem}; choose a writable "
                          "folder, or pass --no-export")


def writable_problem(folder: str) -> str | None:
    """Why `folder` (existing or to be created) cannot be written, or None if it can.

    Tries a probe file in the nearest existing folder: `os.access` says yes to root even
    on a read-only mount.
    """
    existing = os.path.abspath(folder)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        return f"{existing} is a file, not a folder"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        return f"cannot write in {existing} ({error.strerror or error})"
    return None


def write_atomic(path: str, text: str) -> None:
    """Writes via a temporary file and a rename, so a crash never leaves half a file."""
    temp = f"{path}.tmp"
    with open(temp, "w", encoding="utf-8") as file:
        file.write(text)
    os.replace(temp, path)




def read_result(paths: RunPaths) -> RunResult | None:
    """The run's `result.json`, or None when absent or damaged (then written again)."""
    try:
        with open(paths.result, encoding="utf-8") as file:
            return RunResult(**json.load(file))
    except (OSError, ValueError, TypeError):
        return None


def write_result(paths: RunPaths, result: RunResult) -> None:
    write_atomic(paths.result, json.dumps(dataclasses.asdict(result), indent=2) + "\n")


def save_final(gan, paths: RunPaths, where: str) -> None:
    """Saves the GAN as `final.keras` via a temporary file; `where` says where the trained
    state is for the messages of a failed or interrupted save."""
    temp = os.path.join(paths.root, ".final-tmp.keras")
    try:
        gan.save(temp)
        os.replace(temp, paths.final_model)
    except KeyboardInterrupt as error:
        _remove(temp)
        raise interrupted(error, f"interrupted while writing {paths.final_model}; {where}"
                          ) from None
    except OSError as error:
        _remove(temp)
        cause = "disk full" if error.errno == errno.ENOSPC else error.strerror or str(error)
        raise RunError(f"{cause} writing {paths.final_model}; {where}: free space and run "
                       "the same command again") from None


def interrupted(error: BaseException, what: str) -> TrainingInterrupted:
    """A `TrainingInterrupted` (with the signal's number) for a Ctrl-C or SIGTERM that
    arrived outside the Saver's watch, saying what had happened by then."""
    stopped = TrainingInterrupted(f"{what}. Run the same command again to go on.")
    stopped.signum = getattr(error, "signum", signal.SIGINT)
    return stopped


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
