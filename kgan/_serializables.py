"""Registers kgan's Keras serializables once Keras is loaded, without loading it.

`keras.models.load_model` finds custom classes only through Keras's registry, which a
class joins when its module is imported. Importing them eagerly would make every
`import kgan` (and so every CLI) load TensorFlow; instead, a post-import hook (wrapt,
a TensorFlow dependency) imports them right after both `keras` and `tensorflow` have
finished loading, whichever comes first (TensorFlow imports Keras while it loads).
"""

from __future__ import annotations

import importlib
import sys

import wrapt

# Every module that defines a `register_keras_serializable` class or function.
MODULES = (
    "kgan.gan",
    "kgan.augment",
    "kgan.schedules",
    "kgan.networks.families.r3gan",
    "kgan.networks.families.resnet",
    "kgan.networks.families.stylegan2",
)
_WATCHED = ("keras", "tensorflow")
_done = False


def _loaded(name: str) -> bool:
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def _register(module) -> None:
    global _done
    others = [name for name in _WATCHED if name != module.__name__]
    if _done or not all(_loaded(name) for name in others):
        return
    _done = True
    for name in MODULES:
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def register_when_keras_loads() -> None:
    """Registers now if Keras is loaded, else as soon as it is."""
    if all(_loaded(name) for name in _WATCHED):
        _register(sys.modules["keras"])
        return
    for name in _WATCHED:
        wrapt.register_post_import_hook(_register, name)
