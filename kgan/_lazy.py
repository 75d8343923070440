"""PEP 562 lazy attributes for kgan's packages, so importing a package loads nothing heavy."""

from __future__ import annotations

import importlib


def attributes(package: str, names: dict[str, str]):
    """A module `__getattr__` serving `names` (attribute -> "module:attribute")."""

    def __getattr__(name: str):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = names[name].partition(":")
        value = importlib.import_module(module)
        return getattr(value, attribute) if attribute else value

    return __getattr__
