"""Old path (kgan 0.1) of `kgan.evaluation.metrics`: the same module, with a DeprecationWarning."""

from kgan import _lazy

_lazy.alias(__name__, "kgan.evaluation.metrics")
