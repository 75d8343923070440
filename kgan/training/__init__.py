"""Training runs: config and presets, run directory and checkpoints, strategy setup,
Keras callbacks, and `run(config)` that ties them together (the body of `kgan-train`).

Example:
    >>> from kgan.training import TrainConfig, run
    >>> result = run(TrainConfig.from_preset("digits", epochs=2))
    >>> print(result.summary())
"""

from kgan import _lazy

_NAMES = {
    "TrainConfig": "kgan.training.config:TrainConfig",
    "PRESETS": "kgan.training.config:PRESETS",
    "ConfigError": "kgan.training.errors:ConfigError",
    "RunError": "kgan.training.errors:RunError",
    "run": "kgan.training.runner:run",
    "RunResult": "kgan.training.runner:RunResult",
}
__all__ = sorted(_NAMES)
__getattr__ = _lazy.attributes(__name__, _NAMES)
