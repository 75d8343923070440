"""Choosing the Keras backend of a run, before Keras loads (it fixes it per process).

`python train.py --backend jax`, or `KERAS_BACKEND=jax python train.py`: the config
records the backend it resolved to, so the run directory says where it can resume.
Imports neither Keras nor TensorFlow.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys

from kgan.training.config import AUTO, ConfigError, TrainConfig

_PACKAGES = {"tensorflow": "tensorflow", "jax": "jax"}


def resolve(config: TrainConfig) -> TrainConfig:
    """The config with `backend` made concrete: "auto" is KERAS_BACKEND's, else tensorflow."""
    return dataclasses.replace(config, backend=resolve_name(config.backend))


def resolve_name(name: str) -> str:
    """A backend name made concrete: "auto" is KERAS_BACKEND's, else tensorflow."""
    if name == AUTO:
        name = os.environ.get("KERAS_BACKEND") or "tensorflow"
    if name not in _PACKAGES:
        raise ConfigError(f"unknown Keras backend {name!r} (from KERAS_BACKEND); kgan trains "
                          "on tensorflow or jax: pass --backend tensorflow or --backend jax")
    return name


def check_environment(command: str) -> None:
    """Refuses a KERAS_BACKEND kgan does not run on before Keras loads it, for the commands
    that take the environment's backend (kgan-generate, kgan-evaluate, kgan-export)."""
    name = os.environ.get("KERAS_BACKEND")
    if name and name not in _PACKAGES:
        raise ConfigError(f"KERAS_BACKEND={name}: {command} runs on tensorflow or jax; unset "
                          "KERAS_BACKEND or set it to one of them")


def activate(name: str) -> None:
    """Makes `name` this process's Keras backend; refuses a process whose Keras already
    runs another, and a backend whose package is missing (naming the install)."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != name:
            raise ConfigError(
                f"this process already runs Keras on {keras.backend.backend()}; set "
                f"KERAS_BACKEND={name} before importing keras to train on {name}")
        return
    if importlib.util.find_spec(_PACKAGES[name]) is None:
        extra = "jax" if name == "jax" else "gpu"
        raise ConfigError(f"the {name} backend needs the {_PACKAGES[name]} package: "
                          f'pip install "kgan[{extra}]"')
    os.environ["KERAS_BACKEND"] = name
