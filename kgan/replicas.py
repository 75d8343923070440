"""Per-replica views of global random draws, and checks that replicas get equal batches.

Under a `tf.distribute` strategy, `train_step` runs once per replica on its slice of the
global batch. Every replica draws the same *global* random tensor from a stateless seed
and keeps its own rows, so replicas see different noise (DESIGN.md, rule 3) and N
replicas see exactly the noise one device would with the same global batch (rule 2).
"""

from __future__ import annotations

import tensorflow as tf

from kgan import stateless
from kgan.training.distribute import check_global_batch


def position() -> tuple:
    """(replica id, number of replicas) in the current replica context; (0, 1) outside."""
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0, 1
    return context.replica_id_in_sync_group, context.num_replicas_in_sync


def count() -> float:
    """Replicas in sync, as the float that hand-written losses are divided by."""
    return float(position()[1])


def _own_rows(full: tf.Tensor, batch) -> tf.Tensor:
    replica, _ = position()
    return full[replica * batch : (replica + 1) * batch]


def global_normal(batch, tail: list[int], seed: tf.Tensor) -> tf.Tensor:
    """This replica's `batch` rows of one standard-normal draw for the global batch."""
    return _own_rows(tf.random.stateless_normal([batch * position()[1], *tail], seed=seed), batch)


def global_uniform(batch, seed: tf.Tensor) -> tf.Tensor:
    """This replica's rows of one uniform [0, 1) draw for the global batch."""
    return _own_rows(tf.random.stateless_uniform([batch * position()[1]], seed=seed), batch)


def global_labels(batch, num_classes: int, seed: tf.Tensor) -> tf.Tensor:
    """This replica's rows of one uniform class-label draw for the global batch."""
    full = tf.random.stateless_uniform(
        [batch * position()[1]], seed=seed, minval=0, maxval=num_classes, dtype=tf.int32
    )
    return _own_rows(full, batch)


def check_replica_batches(x, batch_size, strategy: tf.distribute.Strategy) -> None:
    """Refuses data whose batches cannot split evenly across the strategy's replicas.

    Left alone, TensorFlow fails mid-step with "AddN must have the same size and shape".
    """
    replicas = strategy.num_replicas_in_sync
    if replicas == 1:
        return
    if isinstance(x, tf.data.Dataset):
        spec = x.element_spec
        spec = spec[0] if isinstance(spec, (tuple, list)) else spec
        batch_size = spec.shape[0] if spec.shape.rank else None
        if batch_size is None:
            raise ValueError(
                f"Training on {replicas} replicas needs batches of a fixed size that splits "
                "evenly across them: batch the dataset with drop_remainder=True and a global "
                f"batch size divisible by {replicas} (kgan.data.load does both)."
            )
    if batch_size is not None:
        check_global_batch(int(batch_size), replicas)


def check_steps_per_execution(steps, strategy: tf.distribute.Strategy) -> None:
    """Refuses several steps per call under mirrored strategies.

    Keras 3.15 / TF 2.21 then fail inside the graph ("You must feed a value for
    placeholder tensor ... while/cond"), even for a plain Sequential model.
    """
    mirrored = (tf.distribute.MirroredStrategy, tf.distribute.MultiWorkerMirroredStrategy)
    if steps not in (None, 1, "auto") and isinstance(strategy, mirrored):
        raise ValueError(
            f"steps_per_execution={steps} is not supported with {type(strategy).__name__} "
            "(Keras 3.15 / TensorFlow 2.21 fail inside the graph). Use steps_per_execution=1."
        )


def agree_on_finiteness(grads: list) -> list:
    """Makes every replica's gradients non-finite when any replica's are.

    Keras 3.15's LossScaleOptimizer decides "skip or apply" from the first replica's
    *local* gradients (it assumes they are already all-reduced, as in tf.keras). If only
    another replica overflowed, the step is applied and the summed gradient writes NaN
    into the weights. Poisoning all replicas' gradients makes the check agree, so the
    step is skipped and the scale lowered everywhere.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    finite = [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
    local_overflow = 1.0 - tf.cast(tf.reduce_all(finite), tf.float32)
    overflows = context.all_reduce(tf.distribute.ReduceOp.SUM, local_overflow)
    poison = tf.where(overflows > 0, float("nan"), 0.0)
    return [None if g is None else g + tf.cast(poison, g.dtype) for g in grads]


def global_uniform_rows(batch, tail: list[int], seed: tf.Tensor) -> tf.Tensor:
    """This replica's `batch` rows of one uniform [0, 1) float32 draw of [global batch, *tail]:
    `tf.random.stateless_uniform`'s numbers, also under XLA (`kgan.stateless`)."""
    return _own_rows(stateless.uniform([batch * position()[1], *tail], seed), batch)


def global_integer_rows(batch, tail: list[int], seed: tf.Tensor, minval, maxval) -> tf.Tensor:
    """This replica's `batch` rows of one int32 draw in [minval, maxval) of
    [global batch, *tail]: `tf.random.stateless_uniform`'s numbers, also under XLA."""
    full = stateless.integers([batch * position()[1], *tail], seed, minval, maxval)
    return _own_rows(full, batch)
