"""What differs between Keras backends, one module each: gradients (a tape vs
`jax.value_and_grad`), how stateful code runs (TensorFlow variables vs JAX's stateless
`train_step(state, data)`), conditionals over stateful branches, applying gradients,
replicas and collectives. The GAN maths in `kgan.gan` calls only these functions.

A backend module provides every member of `Backend` below (a test checks both modules
against it); a third backend (PyTorch) is one more module of these functions.
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

import keras

SUPPORTED = ("tensorflow", "jax")


_LOADED: dict = {}


class Backend(Protocol):
    """The interface `kgan.gan` uses; each member's one-line contract."""

    name: str  # "tensorflow" / "jax"
    random: Any  # stateless draws (kgan.gan.randomness): seed, split, normal, uniform,
    #              integers, latents, noise (latents of int64 seeds or int32 word pairs)
    #              and row_hash (kgan.gan.noise_hash); TensorFlow's numbers on both

    def replica_position(self) -> tuple:
        """(replica id, replicas in sync); (0, 1) where a step sees the global batch."""

    def all_reduce(self, value, op: str = "sum"):
        """Sum or mean over replicas (the value itself without replicas)."""

    def value_and_grad(self, fn, variables):
        """fn() -> (loss, aux): (loss, aux, grads), keeping what fn assigned."""

    def vjp(self, fn, *inputs):
        """(fn(*inputs), pullback(cotangents) -> gradients w.r.t. inputs)."""

    def cond(self, pred, true_fn, false_fn):
        """A conditional whose branches may assign variables."""

    def apply_gradients(self, optimizer, grads, variables) -> None:
        """One optimizer update."""

    def agree_on_finiteness(self, grads: list, optimizer) -> list:
        """Skip a loss-scaled step on every replica or on none."""

    def after_batch(self, data, fn):
        """fn() once the batch has arrived (draws never race the input pipeline)."""

    def run_train_step(self, model, step_fn, *args):
        """Keras's train_step around the common step (JAX: also threads `state`)."""

    def run_test_step(self, model, step_fn, *args):
        """Keras's test_step around the common evaluation step."""

    def stateful(self, model, fn):
        """Runs part of a step eagerly, keeping what it assigns (tests, callbacks)."""

    def first_replica_variables(self):
        """A scope whose new variables take the first replica's value (the EMA copy)."""

    def step_logs(self, model, logs: dict) -> dict:
        """The logs a train step returns, as Keras's trainer wants them."""

    def counter_dtype(self) -> str:
        """The step counter's dtype (int64 where the backend has it)."""

    def check_compile(self, model, kwargs: dict) -> None:
        """Refuses compile options this backend cannot honour."""

    def build_distribution(self):
        """The distribution the model is built under (None on TensorFlow)."""

    def data_scope(self, model):
        """A context for fit/evaluate: the model's distribution where Keras needs it."""

    def check_fit(self, model, x, batch_size) -> None:
        """Refuses a global batch that the replicas or devices cannot split evenly."""


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


def check_batch_split(x, batch_size, parts: int, noun: str) -> None:
    """Refuses data whose global batches cannot split evenly into `parts` (`noun`:
    "replicas", "devices"); left alone, the step fails mid-way with a shape error. `x` is
    what `fit` got: a tf.data.Dataset (its fixed batch size) or arrays (`batch_size`)."""
    if parts == 1:
        return
    # A tf.data.Dataset, recognised without importing TF (a tf.distribute dataset, which
    # has no `batch`, is left to Keras as before).
    if hasattr(x, "element_spec") and hasattr(x, "batch"):
        spec = x.element_spec
        spec = spec[0] if isinstance(spec, (tuple, list)) else spec
        batch_size = spec.shape[0] if spec.shape.rank else None
        if batch_size is None:
            raise ValueError(
                f"Training on {parts} {noun} needs batches of a fixed size that splits "
                "evenly across them: batch the dataset with drop_remainder=True and a global "
                f"batch size divisible by {parts} (kgan.data.load does both).")
    elif hasattr(x, "shape") and batch_size is None:
        batch_size = 32  # fit's default for arrays
    if batch_size is not None and int(batch_size) % parts:
        raise ValueError(f"The global batch size {int(batch_size)} does not split evenly "
                         f"across {parts} {noun}; use a multiple of {parts}.")
    last = int(x.shape[0]) % int(batch_size) if hasattr(x, "shape") and batch_size else 0
    if last % parts:  # arrays: fit's last batch holds the remainder
        raise ValueError(
            f"{int(x.shape[0])} images in batches of {int(batch_size)} leave a last batch of "
            f"{last}, which does not split across {parts} {noun}: drop the remainder "
            f"(x[:{int(x.shape[0]) - last}]), or use kgan.data.from_arrays (whole batches).")
