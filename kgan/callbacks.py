"""Old path (kgan 0.1) of `kgan.training.callbacks`: the same module, with a DeprecationWarning."""

from kgan import _lazy

_lazy.alias(__name__, "kgan.training.callbacks")
