"""Writes that survive a power cut: the data reaches the disk before the rename that
publishes it, and the rename itself is made durable (design.md: exports are written
under a temporary name, synced, then renamed). Without the syncs a crash can keep the
rename and lose the data: a run's result.json or a served version with empty files."""

from __future__ import annotations

import os


def sync_file(path: str) -> None:
    """Flushes one file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_dir(path: str) -> None:
    """Makes the entries of a folder (a rename into it) durable; a no-op where folders
    cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems refuse fsync on a folder; the data is synced
        pass
    finally:
        os.close(fd)


def sync_tree(path: str) -> None:
    """Syncs every file under `path` (or `path` itself), then every folder, deepest first."""
    if not os.path.isdir(path):
        sync_file(path)
        return
    for folder, _, files in os.walk(path, topdown=False):
        for name in files:
            sync_file(os.path.join(folder, name))
        sync_dir(folder)


def replace_file(temp: str, target: str) -> None:
    """Replaces the file `target` with the finished `temp`: data synced first, then the
    rename, which is synced too."""
    sync_file(temp)
    os.replace(temp, target)
    sync_dir(os.path.dirname(os.path.abspath(target)))
