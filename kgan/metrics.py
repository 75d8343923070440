"""Old path (kgan 0.1) of `kgan.evaluation.metrics`; both names are the same module."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("kgan.evaluation.metrics")
