"""Old path (kgan 0.1) of `kgan.training.distribute`: the same module, with a DeprecationWarning."""

from kgan import _lazy

_lazy.alias(__name__, "kgan.training.distribute")
