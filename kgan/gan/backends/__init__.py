"""What differs between Keras backends, one module each: gradients (a tape vs
`jax.value_and_grad`), how stateful code runs (TensorFlow variables vs JAX's stateless
`train_step(state, data)`), conditionals over stateful branches, applying gradients,
replicas and collectives. The GAN maths in `kgan.gan` calls only these functions.

A backend module provides:
    name                          "tensorflow" / "jax"
    replica_position()            (replica id, replicas in sync); (0, 1) where a step sees
                                  the global batch (JAX's SPMD, one device)
    all_reduce(x, op)             sum / mean over replicas
    value_and_grad(fn, variables) fn() -> (loss, aux): (loss, aux, grads), state updates kept
    vjp(fn, *inputs)              (fn(*inputs), pullback(cotangents) -> input gradients)
    cond(pred, true_fn, false_fn) a conditional whose branches may assign variables
    apply_gradients(opt, grads, variables)
    agree_on_finiteness(grads)    skip a loss-scaled step on every replica or none
    after_batch(data, fn)         run fn() only once the batch has arrived
    run_train_step(model, fn, *args)  the backend's train_step around the common step
    stateful(model, fn)           run part of a step eagerly, keeping what it assigns
    random                        the stateless random draws (kgan.gan.randomness)

A third backend (PyTorch) is one more module of these functions.
"""

from __future__ import annotations

import importlib

import keras

SUPPORTED = ("tensorflow", "jax")


_LOADED: dict = {}


def current():
    """The module for Keras's backend of this process."""
    name = keras.backend.backend()
    if name in _LOADED:
        return _LOADED[name]
    if name not in SUPPORTED:
        raise RuntimeError(
            f"kgan trains on the {' and '.join(SUPPORTED)} Keras backends; this process "
            f"uses {name!r}. Set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax before "
            "importing keras.")
    _LOADED[name] = importlib.import_module(f"kgan.gan.backends.{name}")
    return _LOADED[name]
