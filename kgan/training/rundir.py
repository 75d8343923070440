"""The run directory (design.md, run directory contract): where a run keeps what, the
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
import shlex
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Iterator

from kgan import _durable
from kgan.training.config import ConfigError, TrainConfig
from kgan.training.errors import RunDirInUse, RunError, TrainingInterrupted

try:
    import fcntl
except ImportError:  # not POSIX: runs are not locked
    fcntl = None

__all__ = ["LOCK_FILE", "RunPaths", "RunResult", "check_export_dir", "check_run_dir",
           "prepare_run_dir", "run_lock", "writable_problem", "write_run_dir"]

#: Held (flock) by the process training into the run directory; holds its PID and host.
LOCK_FILE = ".lock"


BACKUP, CHECKPOINTS = "backup", "checkpoints"


class RunPaths:
    """Where a run keeps what (design.md, run directory contract)."""

    def __init__(self, root: str):
        self.root = root
        self.config = os.path.join(root, "config.json")
        self.logs = os.path.join(root, "logs")
        self.samples = os.path.join(root, "samples")
        self.backup = os.path.join(root, BACKUP)
        self.checkpoints = os.path.join(root, CHECKPOINTS)
        self.final_model = os.path.join(root, "final.keras")
        self.result = os.path.join(root, "result.json")
        self.classifier = os.path.join(root, "metrics_classifier.keras")


def count(number: int, noun: str) -> str:
    """'1 epoch', '2 epochs'."""
    return f"{number} {noun}{'' if number == 1 else 's'}"


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What a finished run produced, and what it ran on (`auto` settings resolved).

    `result.json` holds it with absolute paths, so tools that read it need not know the
    folder the run was started from.
    """

    run_dir: str
    epochs: int
    steps: int
    final_model: str
    export: str | None
    worker: int = 0  # another worker of a multi-worker run: the chief wrote the files
    backend: str | None = None  # None: written by kgan before 0.3
    precision: str | None = None  # the dtype policy used (`auto` resolved)
    replicas: int | None = None

    def summary(self) -> str:
        trained = f"{count(self.epochs, 'epoch')} ({count(self.steps, 'step')})"
        if self.worker:
            return (f"Worker {self.worker} trained {trained}; the chief (worker 0) writes "
                    f"{self.run_dir}.")
        logs = os.path.join(self.run_dir, "logs")
        lines = [f"Trained {trained}.",
                 f"  run dir:     {self.run_dir}",
                 f"  samples:     {os.path.join(self.run_dir, 'samples')}",
                 f"  checkpoints: {os.path.join(self.run_dir, 'checkpoints')} (resume: "
                 f"{os.path.join(self.run_dir, 'backup')})",
                 f"  final model: {self.final_model}"]
        if self.export:
            lines.append(f"  export:      {self.export}")
        lines.append(f"  TensorBoard: tensorboard --logdir {shlex.quote(logs)}")  # pasteable
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
    if restart and _entries(paths.root):
        moved = _move_aside(paths.root)
        _lock_again(paths.root)
        print(f"--restart: moved the previous run to {moved}")
    _check_existing(config, paths)
    return paths


def write_run_dir(config: TrainConfig, paths: RunPaths) -> None:
    """Creates the run's folders and (re)writes `config.json`.

    Raises:
        ConfigError: the run directory cannot be written (exit status 2: bad input).
        RunError: the disk is full.
    """
    try:
        for folder in (paths.logs, paths.samples, paths.backup, paths.checkpoints):
            os.makedirs(folder, exist_ok=True)
        write_atomic(paths.config, config.to_json())
    except OSError as error:
        message = f"cannot write the run directory {paths.root}: {error.strerror or error}"
        if error.errno == errno.ENOSPC:
            raise RunError(message) from None
        raise ConfigError(f"{message}; choose another --run-dir") from None


def _entries(root: str) -> list[str]:
    """What the run directory holds, apart from the lock file; [] when it is missing."""
    try:
        return [name for name in os.listdir(root) if name != LOCK_FILE]
    except (FileNotFoundError, NotADirectoryError):
        return []


def _check_existing(config: TrainConfig, paths: RunPaths) -> None:
    if os.path.isfile(paths.config):
        try:
            saved = TrainConfig.load(paths.config)
        except ConfigError as error:
            raise RunError(f"cannot resume {paths.root}: {error}; pass --restart to move it "
                           "aside and start over") from None
        if saved.backend not in (config.backend, "auto"):
            raise RunError(
                f"{paths.root} was trained on the {saved.backend} backend; resume it with "
                f"--backend {saved.backend} (its checkpoints load on that backend only; its "
                "final.keras loads on either), or pass --restart to start over")
        changed = saved.differences(config)
        if changed:
            raise RunError(
                f"{paths.root} holds a run with other settings ({'; '.join(changed)}); use "
                "the same settings to resume, another --run-dir, or --restart to move the "
                "old run aside and start over")
        _check_checkpoint_folders(paths)
    elif _entries(paths.root):
        raise RunError(f"{paths.root} is not empty and holds no config.json, so it is not a "
                       "kgan run; choose another --run-dir or pass --restart to move it aside")
    elif os.path.exists(paths.root) and not os.path.isdir(paths.root):
        raise RunError(f"cannot use {paths.root} as the run directory: it is a file")


def refuse_overwriting_trained_run(paths: RunPaths) -> None:
    """Refuses to train from step 0 over a run that holds a trained model or result."""
    trained = [p for p in (paths.final_model, paths.result) if os.path.exists(p)]
    if trained:
        raise RunError(f"{paths.root} holds a trained run ({os.path.basename(trained[0])}) "
                       f"but no checkpoint in {paths.backup} or {paths.checkpoints}; "
                       "training again would overwrite it: pass --restart to move it aside "
                       "and start over")


def _check_checkpoint_folders(paths: RunPaths) -> None:
    """Refuses a run whose `backup/` and `checkpoints/` are both gone: `write_run_dir` makes
    both with `config.json`, so someone deleted them, and training would start again at
    step 0 over the run's logs, samples (and final model)."""
    if os.path.isdir(paths.backup) or os.path.isdir(paths.checkpoints):
        return  # RunState.restore finds what they hold, or refuses unreadable ones
    refuse_overwriting_trained_run(paths)
    kept = ", ".join(name + ("/" if os.path.isdir(os.path.join(paths.root, name)) else "")
                     for name in sorted(_entries(paths.root)))
    raise RunError(f"{paths.root} holds a run ({kept}) whose {BACKUP}/ and {CHECKPOINTS}/ "
                   "folders are gone, so it cannot resume: training again would start at "
                   "step 0 and overwrite its logs and samples; pass --restart to move it "
                   "aside and start over")


def inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies under it, links resolved."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return os.path.commonpath([path, folder]) == folder


def _move_aside(root: str) -> str:
    old = os.path.realpath(root)
    if inside(os.getcwd(), root):
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


# ------------------------------------------------------------------ the lock
# Run directories this process holds: real path -> [lock file descriptor, depth, folders
# this process created for it (removed again when the run left them empty)].
_HELD: dict[str, list] = {}


@contextlib.contextmanager
def run_lock(root: str, enabled: bool = True) -> Iterator[None]:
    """Holds `RUN_DIR/.lock` for the block, so that a second process training into the
    same run directory refuses at once (naming the PID, and the host, that holds it).

    The lock is `fcntl.flock`: the kernel releases it when the holder exits or is killed,
    so a crashed run never leaves it stuck (the file stays, with the last holder's PID).
    It is re-entrant within a process (the CLI and `run()` may both take it), follows
    `check_run_dir(restart=True)` into the new directory, and creates the run directory
    when missing, removing it again when the block leaves it empty. `enabled=False`
    (the non-chief workers of a multi-worker run, which share the chief's directory) does
    nothing. Where the file system has no locks (some network mounts), runs go unlocked.

    Raises:
        RunDirInUse: another process holds the lock.
        ConfigError: the run directory cannot be created or written.
    """
    if not enabled or fcntl is None:
        yield
        return
    created = _make_dirs(root)
    key = os.path.realpath(root)
    if key in _HELD:
        _HELD[key][1] += 1
    else:
        try:
            # A lock this process adds to a folder that never becomes a run (a refused
            # --run-dir) is removed again on release.
            fresh = not os.path.exists(os.path.join(root, LOCK_FILE))
            _HELD[key] = [_acquire(root), 1, created, fresh]
        except BaseException:
            _remove_empty(created)
            raise
    try:
        yield
    finally:
        held = _HELD[key]
        held[1] -= 1
        if held[1] == 0:
            del _HELD[key]
            _release(root, held[0], held[2], held[3])


def _make_dirs(root: str) -> list[str]:
    """Creates `root` and missing parents; returns the folders made, outermost first."""
    missing, folder = [], os.path.abspath(root)
    while not os.path.lexists(folder):
        missing.insert(0, folder)
        folder = os.path.dirname(folder)
    problem = writable_problem(root)
    if problem is None:
        try:
            for folder in missing:
                os.mkdir(folder)
        except OSError as error:
            problem = error.strerror or str(error)
    if problem:
        _remove_empty(missing)
        raise ConfigError(f"cannot write the run directory {root}: {problem}; choose "
                          "another --run-dir")
    return missing


def _acquire(root: str) -> int | None:
    """Locks a fresh `RUN_DIR/.lock` and writes "PID HOST" into it; its descriptor."""
    path = os.path.join(root, LOCK_FILE)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ConfigError(f"cannot write the run directory {root}: "
                              f"{error.strerror or error}; choose another --run-dir") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise RunDirInUse(f"{root} is in use by another kgan-train ({holder}); wait for "
                              "it to finish or stop it, or choose another --run-dir") from None
        except OSError:  # no locks on this file system
            os.close(fd)
            return None
        # A holder that was leaving may have removed the file between open and flock.
        with contextlib.suppress(OSError):
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        os.close(fd)
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
    return fd


def _holder(fd: int) -> str:
    """"pid 123" (+ " on host h" when another machine's), from the lock file."""
    try:
        pid, _, host = os.pread(fd, 256, 0).decode("utf-8", "replace").strip().partition(" ")
    except OSError:
        pid, host = "", ""
    if not pid.isdigit():
        return "pid unknown"
    return f"pid {pid}" + (f" on host {host}" if host and host != socket.gethostname() else "")


def _release(root: str, fd: int | None, created: list[str], fresh: bool = False) -> None:
    never_a_run = fresh and not os.path.exists(os.path.join(root, "config.json"))
    if (_entries(root) == [] and created) or never_a_run:  # leave no trace
        with contextlib.suppress(OSError):
            os.remove(os.path.join(root, LOCK_FILE))
        _remove_empty(created)
    if fd is not None:
        os.close(fd)


def _remove_empty(folders: list[str]) -> None:
    for folder in reversed(folders):
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def _lock_again(root: str) -> None:
    """After --restart moved a locked run aside, locks the new run directory in its place
    (the old lock moved with the old run)."""
    held = _HELD.get(os.path.realpath(root))
    if held is None:
        return
    created = _make_dirs(root)
    fd = _acquire(root)
    if held[0] is not None:
        os.close(held[0])
    held[0], held[2] = fd, created


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
    """Writes via a synced temporary file and a rename, so a crash (a power cut too) never
    leaves half a file."""
    temp = f"{path}.tmp"
    with open(temp, "w", encoding="utf-8") as file:
        file.write(text)
    _durable.replace_file(temp, path)


def read_result(paths: RunPaths) -> RunResult | None:
    """The run's `result.json`, or None when absent or damaged (then written again)."""
    try:
        with open(paths.result, encoding="utf-8") as file:
            values = json.load(file)
        known = {field.name for field in dataclasses.fields(RunResult)}
        return RunResult(**{k: v for k, v in values.items() if k in known})
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def write_result(paths: RunPaths, result: RunResult) -> None:
    absolute = {name: os.path.abspath(getattr(result, name))
                for name in ("run_dir", "final_model", "export") if getattr(result, name)}
    values = dataclasses.asdict(dataclasses.replace(result, **absolute))
    write_atomic(paths.result, json.dumps(values, indent=2) + "\n")


def save_final(gan, paths: RunPaths, where: str) -> None:
    """Saves the GAN as `final.keras` via a temporary file; `where` says where the trained
    state is for the messages of a failed or interrupted save."""
    temp = os.path.join(paths.root, ".final-tmp.keras")
    try:
        gan.save(temp)
        _durable.replace_file(temp, paths.final_model)
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
