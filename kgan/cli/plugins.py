"""`--import MODULE` for every kgan command: the user's own registered pieces (network
families, losses, metrics, data sources, Keras layers) live in the user's modules, which
a command imports before it reads a config or loads a model. Loads nothing itself."""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys

IMPORT_HELP = ("import MODULE first (repeatable): where your own network family, loss, "
               "metric, data source or Keras layers are registered")


def add_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="imports", action="append", default=[],
                        metavar="MODULE", help=IMPORT_HELP)


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
