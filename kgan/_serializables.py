"""Registers kgan's Keras serializables once Keras is loaded, without loading it.

`keras.models.load_model` finds custom classes only through Keras's registry, which a
class joins when its module is imported. Importing them eagerly would make every
`import kgan` (and so every CLI) load TensorFlow; instead they are imported as soon as
both `keras` and `tensorflow` have finished loading (TensorFlow imports Keras while it
loads; wrapt, a TensorFlow dependency, tells when each is done).

If that moment falls inside the import of a kgan module (say `import kgan.gan.sampling`,
which imports Keras, so TensorFlow, first), registering then would import
`kgan.gan.model`, which needs the half-loaded `kgan.gan.sampling`: the registration
waits until the outermost kgan import has finished, which a finder on `sys.meta_path`
reports for every `kgan.*` module.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import sys

import wrapt

# The core modules that define `register_keras_serializable` classes or functions; the
# network families' modules join them from their registry (`modules()`), so a new
# family is its module plus its `register(...)` call.
CORE_MODULES = (
    "kgan.gan.model",
    "kgan.gan.augment",
    "kgan.gan.schedules",
    "kgan.networks.families.common",
)


def modules() -> tuple[str, ...]:
    """The core modules and every kgan family's module (a user's family module is the
    user's `--import`), in registration order."""
    from kgan import networks

    families = (networks.get(name).module for name in networks.NAMES)
    return CORE_MODULES + tuple(m for m in dict.fromkeys(families) if m.startswith("kgan."))
# On the TensorFlow backend Keras loads inside TensorFlow's import: wait for both. JAX's
# Keras needs no TensorFlow.
_WATCHED = ("keras", "tensorflow") if os.environ.get(
    "KERAS_BACKEND", "tensorflow") == "tensorflow" else ("keras",)
_state = {"done": False}


def _initializing(name: str) -> bool:
    spec = getattr(sys.modules.get(name), "__spec__", None)
    return bool(getattr(spec, "_initializing", False))


def _loaded(name: str) -> bool:
    return name in sys.modules and not _initializing(name)


def _register(finished: str | None = None) -> None:
    """Imports MODULES when Keras and TensorFlow are loaded and no kgan module is
    half-loaded (`finished`: a module whose code has just run to its end)."""
    if _state["done"] or not all(_loaded(name) for name in _WATCHED if name != finished):
        return
    busy = [name for name in list(sys.modules)
            if name.startswith("kgan.") and name != finished and _initializing(name)]
    if busy:
        return  # _FinishingLoader calls again when they are done
    _state["done"] = True
    for name in modules():
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as error:
            # A JAX-only install has no TensorFlow: a module that needs it at import is
            # then unavailable, and everything else still loads (every family is keras.ops).
            if error.name != "tensorflow":
                raise


class _FinishingLoader(importlib.abc.Loader):
    """Runs a kgan module's own loader, then retries the registration."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _register(finished=module.__name__)

    def __getattr__(self, name):  # get_source, get_resource_reader, ... for inspect & co.
        return getattr(self._loader, name)


class _KganFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith("kgan.") or _state["done"]:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _FinishingLoader(spec.loader)
        return spec


def register_when_keras_loads() -> None:
    """Registers now if Keras is loaded, else as soon as it (and kgan's imports) are done."""
    if not any(isinstance(finder, _KganFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _KganFinder())
    if all(_loaded(name) for name in _WATCHED):
        _register()
        return
    for name in _WATCHED:
        wrapt.register_post_import_hook(lambda module: _register(finished=module.__name__), name)
