"""kgan's one lazy-import mechanism: PEP 562 module attributes that import on first use,
so importing a package (and every CLI's --help) loads neither TensorFlow nor JAX; and the
0.1 module paths, kept as aliases that warn."""

from __future__ import annotations

import importlib
import sys
import warnings


def attributes(package: str, names: dict[str, str]):
    """A module `__getattr__` serving `names` (attribute -> "module:attribute", or
    "module" for the module itself)."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = names[name].partition(":")
        value = importlib.import_module(module)
        value = getattr(value, attribute) if attribute else value
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


def alias(old: str, new: str) -> None:
    """Makes the module `old` (a 0.1 path, being imported) the module `new`, with a
    DeprecationWarning that names the new path."""
    warnings.warn(f"{old} is deprecated; import {new} instead.", DeprecationWarning,
                  stacklevel=3)
    sys.modules[old] = importlib.import_module(new)
