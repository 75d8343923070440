"""Registries' one rule for a name registered again: the same definition run again (a
re-run notebook cell, a reloaded module) replaces its entry; any other is refused."""

from __future__ import annotations


def same_definition(old: object, new: object) -> bool:
    """Whether `new` is `old` defined again: the same module and qualified name."""
    return all(getattr(old, key, None) == getattr(new, key, None)
               for key in ("__module__", "__qualname__"))
