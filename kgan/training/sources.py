"""Where a trained model is: a `.keras` file, or a run directory's `final.keras`
(for kgan-export, kgan-evaluate, kgan-generate and kgan-demo). Loads nothing."""

from __future__ import annotations

import os
import zipfile

FINAL_MODEL = "final.keras"


class SourceError(ValueError):
    """SOURCE is not something kgan-export can export (the message says what to pass)."""


def find_model_file(source: str) -> str:
    """Returns the `.keras` file SOURCE names, or a run directory's `final.keras`."""
    if os.path.isfile(source):
        if not source.endswith(".keras"):
            raise SourceError(f"{source} is not a .keras file; pass a run directory or a "
                              ".keras model")
        return source
    if not os.path.isdir(source):
        raise SourceError(f"{source} does not exist")
    path = os.path.join(source, FINAL_MODEL)
    if os.path.isfile(path):
        return path
    if os.path.isfile(os.path.join(source, "config.json")):
        raise SourceError(f"{source} has no {FINAL_MODEL} yet: the run has not finished; "
                          "run the same kgan-train command again to finish it (it writes "
                          f"{FINAL_MODEL} and exports)")
    raise SourceError(f"{source} is not a kgan run directory (no {FINAL_MODEL}); pass a run "
                      "directory or a .keras file")


def check_keras_archive(path: str) -> None:
    """Names a damaged `.keras` file (a zip archive) before Keras calls it "not found"."""
    if os.path.isfile(path) and not zipfile.is_zipfile(path):
        raise SourceError(f"{path} is not a readable .keras file: a .keras file is a zip "
                          "archive, and this one is damaged or truncated")
