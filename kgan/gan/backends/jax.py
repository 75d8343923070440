"""JAX: the common stateful step runs inside Keras's `StatelessScope`, so it reads and
assigns variables as on TensorFlow while staying a pure function that `jax.jit` compiles.

`train_step(state, data)` maps every variable of the model to its value in `state`
(`keras.StatelessScope`), runs the common step, and returns the values the step
assigned. Inside it, each transformation (`value_and_grad`, `vjp`, `cond`) runs its
function in a nested scope over all variables and returns the values it assigned
(batch-norm statistics, spectral-norm vectors, ADA state) as auxiliary outputs, which
are then assigned in the enclosing scope: nothing traced inside a transformation leaks
out of it. Under `keras.distribution.DataParallel` the step sees the global batch
(SPMD), so there are no replicas to reconcile: draws are global by construction and
batch norm is synchronized.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from keras import StatelessScope
from keras.src.backend.common.stateless_scope import get_stateless_scope

from kgan.gan import noise_hash, philox
from kgan.gan.backends import check_batch_split

name = "jax"
_VARIABLES: list = []  # every variable of the model whose step is being traced


def replica_position() -> tuple:
    return 0, 1


def all_reduce(value, op: str = "sum"):
    return value


def _current(variable):
    scope = get_stateless_scope()
    value = scope.get_current_value(variable) if scope is not None else None
    return variable.value if value is None else value


def _pure(fn):
    """fn (which may assign variables) as a function of nothing that returns
    (fn's output, {index: new value} of the variables it assigned)."""

    def run(overrides: dict, *args):
        before = [overrides.get(i, _current(v)) for i, v in enumerate(_VARIABLES)]
        with StatelessScope(list(zip(_VARIABLES, before, strict=True))) as scope:
            outputs = fn(*args)
        changed = {}
        for index, (variable, old) in enumerate(zip(_VARIABLES, before, strict=True)):
            new = scope.get_current_value(variable)
            if new is not old:
                changed[index] = new
        return outputs, changed

    return run


def _assign(changed: dict) -> None:
    for index, value in changed.items():
        _VARIABLES[index].assign(value)


def value_and_grad(fn, variables):
    indices = [_index(v) for v in variables]
    run = _pure(fn)

    def loss_of(values):
        (loss, aux), changed = run(dict(zip(indices, values, strict=True)))
        return loss, (aux, changed)

    (loss, (aux, changed)), grads = jax.value_and_grad(loss_of, has_aux=True)(
        [_current(v) for v in variables])
    _assign(changed)
    return loss, aux, grads


def vjp(fn, *inputs):
    run = _pure(fn)

    def pure(*xs):
        return run({}, *xs)

    outputs, pullback, changed = jax.vjp(pure, *inputs, has_aux=True)
    _assign(changed)
    return outputs, lambda cotangents: pullback(cotangents)


def cond(pred, true_fn, false_fn):
    """`lax.cond` over branches that may assign variables: each returns the values of
    every variable either branch assigns."""
    branches = [_pure(true_fn), _pure(false_fn)]
    assigned: set = set()
    for branch in branches:  # a trace of each finds what it assigns
        _, changed = jax.eval_shape(lambda b=branch: b({}))
        assigned |= set(changed)
    order = sorted(assigned)

    def complete(branch):
        def run():
            outputs, changed = branch({})
            return outputs, [changed.get(i, _current(_VARIABLES[i])) for i in order]
        return run

    outputs, values = jax.lax.cond(pred, complete(branches[0]), complete(branches[1]))
    _assign(dict(zip(order, values, strict=True)))
    return outputs


def apply_gradients(optimizer, grads, variables) -> None:
    """`stateless_apply` (Keras's LossScaleOptimizer branches with `ops.cond`, which
    only its stateless form supports on JAX), then the new values assigned."""
    new_variables, new_optimizer = optimizer.stateless_apply(
        [_current(v) for v in optimizer.variables], grads, [_current(v) for v in variables])
    for variable, value in zip(variables, new_variables, strict=True):
        variable.assign(value)
    for variable, value in zip(optimizer.variables, new_optimizer, strict=True):
        variable.assign(value)


def agree_on_finiteness(grads: list, optimizer) -> list:
    return grads  # one program over the global batch: one decision


def after_batch(data, fn):
    return fn()


def _index(variable) -> int:
    for index, candidate in enumerate(_VARIABLES):
        if candidate is variable:
            return index
    raise ValueError(f"{variable.path} is not a variable of the model being trained.")


def _threaded(groups: list, state, step_fn, data):
    """Runs `step_fn(data)` with `groups` of variables mapped to `state`'s values; returns
    its output and the groups' new values."""
    variables = [v for group in groups for v in group]
    values = [v for group in state for v in group]
    _VARIABLES[:] = variables
    try:
        with StatelessScope(list(zip(variables, values, strict=True))) as scope:
            logs = step_fn(data)
        new = [scope.get_current_value(v) for v in variables]
    finally:
        _VARIABLES[:] = []
    new = [old if value is None else value for old, value in zip(values, new, strict=True)]
    out, start = [], 0
    for group in groups:
        out.append(new[start:start + len(group)])
        start += len(group)
    return logs, tuple(out)


def _groups(model, optimizer: bool = True) -> list:
    groups = [model.trainable_variables, model.non_trainable_variables]
    if optimizer:
        groups.append(model.optimizer.variables if model.optimizer else [])
    return [*groups, model.metrics_variables]


def run_train_step(model, step_fn, state, data):
    """Keras's JAX `train_step(state, data)` around the common stateful `step_fn(data)`."""
    return _threaded(_groups(model), state, step_fn, data)


def run_test_step(model, step_fn, state, data):
    """Keras's JAX `test_step(state, data)`: (trainable, non-trainable, metrics) values."""
    return _threaded(_groups(model, optimizer=False), state, step_fn, data)


def stateful(model, fn):
    """Runs part of a step, `fn()`, eagerly and keeps what it assigns (tests, tools)."""
    groups = _groups(model)
    state = [[v.value for v in group] for group in groups]
    out, new = _threaded(groups, state, lambda _: fn(), None)
    for group, values in zip(groups, new, strict=True):
        for variable, value in zip(group, values, strict=True):
            variable.assign(value)
    return out


@contextlib.contextmanager
def first_replica_variables():
    yield


# ---------------------------------------------------------------- randomness
class random:  # noqa: N801
    """Stateless draws with TensorFlow's numbers (`kgan.gan.philox`); seeds are uint32 [4]
    words of TensorFlow's int64 seed pair."""

    @staticmethod
    def seed(base: int, counter):
        return philox.words(jnp, int(base), jnp.asarray(counter, jnp.int32))

    @staticmethod
    def split(seed, count: int):
        return list(philox.split(jnp, seed, count))

    @staticmethod
    def normal(shape, seed):
        return philox.normal(jnp, _static(shape), seed)

    @staticmethod
    def uniform(shape, seed):
        return philox.uniform(jnp, _static(shape), seed)

    @staticmethod
    def integers(shape, seed, minval, maxval):
        return philox.integers(jnp, _static(shape), seed, minval, maxval)

    @staticmethod
    def latents(seeds, latent_dim: int, stream: int):
        words = philox.words(np, np.asarray(seeds, np.int64).astype(np.int32), stream)
        big = np.abs(np.asarray(seeds, np.int64)) >= 2**31
        if big.any():  # seeds beyond int32: their exact high words
            words = np.stack([philox.words(np, int(s), stream) for s in np.asarray(seeds)])
        return philox.normal(np, (latent_dim,), words)

    @staticmethod
    def noise(seeds, size: int, stream: int):
        """Rows [N, size] as TensorFlow's `latents` draws them, for int64 seeds [N] (exact
        where concrete; traced ones are int32, sign-extended as TensorFlow would) or
        (low, high) int32 words [N, 2]; computed with jax.numpy, also inside a jit."""
        from kgan.gan.sampling import seed_words

        pairs = len(getattr(seeds, "shape", np.shape(seeds))) == 2
        if not pairs and isinstance(seeds, jax.core.Tracer):
            words = philox.words(jnp, jnp.reshape(seeds, [-1]).astype(jnp.int32), stream)
        else:  # concrete int64 seeds become exact (low, high) words too
            pair = jnp.asarray(seeds if pairs else seed_words(seeds)).astype(jnp.uint32)
            words = jnp.stack([pair[:, 0], pair[:, 1],
                               jnp.full(pair.shape[:1], stream, jnp.uint32),
                               jnp.zeros(pair.shape[:1], jnp.uint32)], axis=-1)
        return philox.normal(jnp, (size,), words)

    @staticmethod
    def row_hash(flat):
        """`kgan.gan.noise_hash` of float32 rows [N, size] in uint32 ops: int32 [N]."""
        bits = jax.lax.bitcast_convert_type(flat, jnp.uint32)
        return noise_hash.hash_bits(jnp, bits).astype(jnp.int32)


def _static(shape) -> tuple:
    return tuple(int(d) for d in shape)



def step_logs(model, logs: dict) -> dict:
    return logs


def counter_dtype() -> str:
    """int64 where JAX has it (x64 on); else int32, which JAX would store anyway, with a
    warning at every read (2**31 train steps are out of reach)."""
    import jax

    return "int64" if jax.config.jax_enable_x64 else "int32"


def check_compile(model, kwargs: dict) -> None:
    return None


def _devices() -> int:
    import keras

    distribution = keras.distribution.distribution()
    return len(distribution.device_mesh.devices.flatten()) if distribution else 1


def build_distribution():
    """The `keras.distribution` the model is built under (kept for `data_scope`)."""
    import keras

    return keras.distribution.distribution()


def data_scope(model):
    """The distribution the model was built under, around `fit`/`evaluate` called outside
    it: Keras's JAX trainer splits the batch over the mesh only inside a distribution,
    and without one every device would compute the whole global batch."""
    import keras

    built = getattr(model, "_built_distribution", None)
    if built is None or keras.distribution.distribution() is not None:
        return contextlib.nullcontext()
    return built.scope()


def check_fit(model, x, batch_size) -> None:
    """Refuses a global batch that the data-parallel mesh cannot split evenly."""
    check_batch_split(x, batch_size, _devices(), "devices")
