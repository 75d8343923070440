"""What earlier scans of an image folder found, kept on disk between processes.

A folder's scan decodes every image once (`kgan.data.folder`): minutes for tens of
thousands of photos, in every process that reads the folder (each resume, each
kgan-evaluate). The results are kept per file, keyed on (size, mtime), in
`$KGAN_CACHE_DIR` (default `$XDG_CACHE_HOME/kgan`, else `~/.cache/kgan`), so a later scan
decodes only new or changed files. A cache that cannot be read or written is ignored:
the scan is then slower, never wrong.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

# Bump when what a scan records changes: older files are then ignored.
_VERSION = 2


def cache_dir() -> str:
    """Where scan results live: $KGAN_CACHE_DIR, $XDG_CACHE_HOME/kgan or ~/.cache/kgan."""
    if os.environ.get("KGAN_CACHE_DIR"):
        return os.environ["KGAN_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kgan")


def _path(root: str) -> str:
    digest = hashlib.sha256(root.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return os.path.join(cache_dir(), "folder-scans", f"{digest}.json")


def load(root: str) -> dict[str, list]:
    """{file: [size, mtime_ns, *result]} from the last scan of `root`; {} if none."""
    try:
        with open(_path(root), encoding="utf-8") as file:
            stored = json.load(file)
        if stored.get("version") != _VERSION or stored.get("root") != root:
            return {}
        return dict(stored["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def save(root: str, files: dict[str, list]) -> None:
    """Replaces the results of `root` atomically; quietly gives up where it cannot write."""
    path = _path(root)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump({"version": _VERSION, "root": root, "files": files}, file)
        os.replace(temp, path)
    except OSError:
        pass
