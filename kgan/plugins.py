"""The user's own registered pieces (network families, losses, metrics, data sources,
Keras layers) live in the user's modules: `load` imports them by name, and
`load_failure` turns Keras's "could not locate class" into the module to import.
Library code; the commands' `--import` flag (`kgan.cli.plugins`) calls it."""

from __future__ import annotations

import importlib
import os
import re
import sys


def load(names) -> None:
    """Imports each module in `names`, looking in the current folder too (as `python -m`
    does; last, so it shadows no installed package); ValueError names the one that
    failed and why."""
    here = os.getcwd()
    if here not in sys.path and "" not in sys.path:
        sys.path.append(here)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as error:
            raise ValueError(f"--import {name}: {error} (is its folder the current one, or "
                             "on PYTHONPATH?)") from None
        except Exception as error:  # the module itself failed: say which, and where
            cause = " ".join(str(error).split())[:300] or "no message"
            raise ValueError(f"--import {name} failed while importing it: "
                             f"{type(error).__name__}: {cause} (in its own code; python -c "
                             f"'import {name}' shows the traceback)") from None


def load_failure(error: Exception) -> str:
    """Keras's reason a model did not load, without the model configs it prints around
    it; for a class this process does not know, which module registers it and the flag
    that imports it."""
    text = " ".join(str(error).split())
    unknown = re.findall(r"Could not locate class '([^']+)'", text)
    if not unknown:
        return text[:300]
    module = re.search(r"\{'module': '([^']+)', 'class_name': '" + re.escape(unknown[-1]),
                       text)
    where = module.group(1) if module else None
    if where in ("__main__", None):
        return (f"it uses {unknown[-1]}, a class this process does not know (defined in a "
                "script, or not registered); put it in a module, register it with "
                "keras.saving.register_keras_serializable, and pass --import MODULE")
    return (f"it uses {unknown[-1]}, which is not registered in this process: pass "
            f"--import {where} (the module that registers it with "
            "keras.saving.register_keras_serializable)")
