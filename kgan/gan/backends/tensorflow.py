"""TensorFlow: gradient tapes, variables assigned in place, `tf.distribute` replicas."""

from __future__ import annotations

import contextlib
import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import optimizers

from kgan.gan import noise_hash
from kgan.gan.backends import check_batch_split, tensorflow_random

name = "tensorflow"


def replica_position() -> tuple:
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def all_reduce(value, op: str = "sum"):
    """The sum or mean of `value` over replicas; call in replica context, never in a cond
    (a collective inside `tf.cond` deadlocks MirroredStrategy)."""
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return value
    reduce_op = tf.distribute.ReduceOp.SUM if op == "sum" else tf.distribute.ReduceOp.MEAN
    return context.all_reduce(reduce_op, value)


def value_and_grad(fn, variables):
    with tf.GradientTape() as tape:
        loss, aux = fn()
    grads = tape.gradient(loss, variables)
    return loss, aux, [tf.zeros_like(v) if g is None else g
                       for g, v in zip(grads, variables, strict=True)]


def vjp(fn, *inputs):
    """fn(*inputs) and its pullback; differentiable again under an outer tape."""
    inputs = [tf.convert_to_tensor(x) for x in inputs]
    tape = tf.GradientTape(watch_accessed_variables=False, persistent=True)
    with tape:
        tape.watch(inputs)
        outputs = fn(*inputs)

    def pullback(cotangents):
        return tape.gradient(outputs, inputs, output_gradients=cotangents)

    return outputs, pullback


def cond(pred, true_fn, false_fn):
    return tf.cond(pred, true_fn, false_fn)


def apply_gradients(optimizer, grads, variables) -> None:
    optimizer.apply(grads, variables)


def agree_on_finiteness(grads: list, optimizer) -> list:
    """Makes every replica's gradients non-finite when any replica's are.

    Keras 3.15's LossScaleOptimizer decides "skip or apply" from the first replica's
    *local* gradients (it assumes they are already all-reduced, as in tf.keras). If only
    another replica overflowed, the step would be applied and the summed gradient write NaN
    into the weights; poisoning all replicas' gradients makes the check agree.
    """
    context = tf.distribute.get_replica_context()
    if (not isinstance(optimizer, optimizers.LossScaleOptimizer) or context is None
            or context.num_replicas_in_sync == 1):
        return grads
    finite = [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
    local_overflow = 1.0 - tf.cast(tf.reduce_all(finite), tf.float32)
    overflows = context.all_reduce(tf.distribute.ReduceOp.SUM, local_overflow)
    poison = tf.where(overflows > 0, float("nan"), 0.0)
    return [None if g is None else g + tf.cast(poison, g.dtype) for g in grads]


def after_batch(data, fn):
    """Every op of the step waits for the batch: when a data set of unknown length runs
    out, `next` fails inside the compiled step, and without this the parts that do not
    read the batch (G's pass on noise, its batch-norm statistics, the step counter) would
    already have run for a step that never happened."""
    with tf.control_dependencies([t for t in tf.nest.flatten(data) if t is not None]):
        return fn()


def run_train_step(model, step_fn, data):
    return step_fn(data)


def first_replica_variables():
    """A scope whose new variables keep the first replica's value (`kgan.gan.ema.update` assigns
    the same value on every replica in replica context)."""

    def creator(next_creator, **kwargs):
        kwargs["aggregation"] = tf.VariableAggregation.ONLY_FIRST_REPLICA
        return next_creator(**kwargs)

    return tf.variable_creator_scope(creator)


# ---------------------------------------------------------------- randomness
class random:  # noqa: N801 - a namespace, as `backend.random.normal(...)` reads
    """Stateless draws: TensorFlow's own ops (`tensorflow_random` keeps them equal under
    XLA); seeds are int64 [2]."""

    @staticmethod
    def seed(base: int, counter):
        return tf.stack([tf.constant(base, tf.int64), tf.cast(counter, tf.int64)])

    @staticmethod
    def split(seed, count: int):
        return tf.unstack(tensorflow_random.split(seed, count))

    @staticmethod
    def normal(shape, seed):
        return tensorflow_random.normal(shape, seed)

    @staticmethod
    def uniform(shape, seed):
        return tensorflow_random.uniform(shape, seed)

    @staticmethod
    def integers(shape, seed, minval, maxval):
        return tensorflow_random.integers(shape, seed, minval, maxval)

    @staticmethod
    def latents(seeds, latent_dim: int, stream: int):
        """Rows [N, latent_dim]: row i is stateless_normal([latent_dim], [seeds[i], stream])."""
        seeds = tf.cast(tf.convert_to_tensor(seeds), tf.int64)

        def one(seed):
            pair = tf.stack([seed, tf.constant(stream, tf.int64)])
            return tf.random.stateless_normal([latent_dim], seed=pair, dtype=tf.float32)

        return tf.map_fn(one, seeds, fn_output_signature=tf.TensorSpec([latent_dim], tf.float32))

    @staticmethod
    def noise(seeds, size: int, stream: int):
        """`latents` of int64 seeds [N], or of (low, high) int32 words [N, 2]."""
        if len(getattr(seeds, "shape", np.shape(seeds))) == 2:  # high * 2^32 + unsigned low
            seeds = tf.convert_to_tensor(seeds)
            seeds = (tf.cast(seeds[:, 1], tf.int64) * 2**32
                     + tf.math.floormod(tf.cast(seeds[:, 0], tf.int64), 2**32))
        return random.latents(tf.reshape(seeds, [-1]), size, stream)

    @staticmethod
    def row_hash(flat):
        """`kgan.gan.noise_hash` of float32 rows [N, size], in int64: int64 [N]."""
        bits = tf.math.floormod(tf.cast(tf.bitcast(flat, tf.int32), tf.int64), 2**32)
        weights = tf.constant(noise_hash.weights(int(flat.shape[-1])), tf.int64)
        terms = tf.math.floormod(bits * weights, noise_hash.PRIME)
        return tf.math.floormod(tf.reduce_sum(terms, axis=1), noise_hash.PRIME)


def run_test_step(model, step_fn, data):
    return step_fn(data)


def stateful(model, fn):
    """Runs part of a step, `fn()`, eagerly (tests, tools): variables update in place."""
    return fn()


def step_logs(model, logs: dict) -> dict:
    if isinstance(model.distribute_strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Keras 3.15 reduces multi-worker step logs along axis 0, which scalars lack.
        return {name: tf.reshape(value, [1]) for name, value in logs.items()}
    return logs


def counter_dtype() -> str:
    return "int64"


def check_compile(model, kwargs: dict) -> None:
    """Refuses what a mirrored strategy cannot run.

    Several steps per call: Keras 3.15 / TF 2.21 fail inside the graph ("You must feed a
    value for placeholder tensor ... while/cond"), even for a plain Sequential model.
    Lazy regularisation (or path length) over a network with synchronized batch norm:
    the skipped branch of its `tf.cond` holds the norm's all-reduce, and replicas that
    disagree on entering it wait for each other for ever.
    """
    _refuse_collectives_in_cond(model)
    _warn_unsynchronized_norms(model)
    steps = kwargs.get("steps_per_execution", 1)
    mirrored = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    if steps not in (None, 1, "auto") and isinstance(model.distribute_strategy, mirrored):
        raise ValueError(
            f"steps_per_execution={steps} is not supported with "
            f"{type(model.distribute_strategy).__name__} (Keras 3.15 / TensorFlow 2.21 fail "
            "inside the graph). Use steps_per_execution=1.")


def _warn_unsynchronized_norms(model) -> None:
    """Batch norm that is not synchronized normalises each replica's slice on its own, so
    N replicas no longer compute one device's update (design.md, rule 2)."""
    replicas = model.distribute_strategy.num_replicas_in_sync
    if replicas == 1:
        return
    found = [name for network in (model.generator, model.discriminator)
             for name in _layers_where(network, _unsynchronized_norm)]
    if found:
        warnings.warn(
            f"{', '.join(found[:4])}{' ...' if len(found) > 4 else ''}: batch norm without "
            f"synchronized=True normalises each of the {replicas} replicas' slices on its "
            "own, so the run no longer computes one device's update for the same global "
            "batch; build them with keras.layers.BatchNormalization(synchronized=True) "
            "(kgan's networks do).", UserWarning, stacklevel=4)


def _unsynchronized_norm(layer) -> bool:
    return (isinstance(layer, keras.layers.BatchNormalization)
            and not getattr(layer, "synchronized", False))


def _synchronized_layers(network) -> list[str]:
    return _layers_where(network, lambda layer: getattr(layer, "synchronized", False))


def _layers_where(network, keep) -> list[str]:
    """Names of the layers of `network` (nested models and wrappers opened) that `keep`
    accepts."""
    found = []
    for layer in getattr(network, "layers", []):
        inner = getattr(layer, "layer", layer)
        if keep(inner):
            found.append(layer.name)
        elif hasattr(layer, "layers"):
            found += _layers_where(layer, keep)
    return found


def _refuse_collectives_in_cond(model) -> None:
    if model.distribute_strategy.num_replicas_in_sync == 1:
        return
    conditional = [(model.discriminator, "reg_interval", model.reg_interval > 1
                    and bool(model._penalty_names())),
                   (model.generator, "pl_weight", model.pl_weight > 0)]
    for network, option, used in conditional:
        synchronized = _synchronized_layers(network) if used else []
        if synchronized:
            raise ValueError(
                f"{option} runs {network.name} inside a conditional every few steps, and its "
                f"synchronized batch norm ({', '.join(synchronized[:3])}) all-reduces across "
                f"the {model.distribute_strategy.num_replicas_in_sync} replicas, which "
                "deadlocks inside tf.cond. Use reg_interval=1 / pl_weight=0 with this "
                "network, or a network without batch norm (r3gan, stylegan2).")


def build_distribution():
    """None: a `tf.distribute` strategy travels with the model's variables."""
    return None


def data_scope(model):
    return contextlib.nullcontext()


def check_fit(model, x, batch_size) -> None:
    """Refuses data whose batches cannot split evenly across the strategy's replicas
    (left alone, TensorFlow fails mid-step with "AddN must have the same size and shape")."""
    check_batch_split(x, batch_size, model.distribute_strategy.num_replicas_in_sync,
                      "replicas")
