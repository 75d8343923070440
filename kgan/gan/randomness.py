"""One seed, one draw, on every backend and every number of replicas (design.md rules 2, 7).

Every random tensor of a train step is a stateless function of (GAN seed, step,
stream), drawn for the *global* batch, of which each replica keeps its own rows: N
replicas then see exactly the noise one device sees with the same global batch. The
numbers are TensorFlow's `tf.random.stateless_*` on both backends (on JAX through
`kgan.gan.philox`), so a seed gives the same latent, label and augmentation on either.

Sampling (`latents_from_seeds`) maps image seed s to the normal vector drawn from the
seed pair (s, 0x5EED), as the export's `generate` signature does in its graph.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from keras import ops

from kgan.gan import backends

# Second seed word for latents: (seed, 0x5EED) draws image `seed`'s z. Labels need no
# stream (seed % num_classes); noise and augmentation use other words.
LATENT_STREAM = 0x5EED


def _backend():
    return backends.current()


def seed(base: int, counter):
    """The stateless seed of (base, counter); counter may be a traced integer."""
    return _backend().random.seed(base, counter)


def split(seed_, count: int) -> list:
    """`count` independent seeds derived from one (`tf.random.experimental.stateless_split`)."""
    return _backend().random.split(seed_, count)


def position() -> tuple:
    """(replica id, replicas in sync); (0, 1) where the step sees the global batch."""
    return _backend().replica_position()


def count() -> float:
    """Replicas in sync, as the float that hand-written losses are divided by."""
    return float(position()[1])


def _own_rows(full, batch):
    replica, _ = position()
    return full[replica * batch : (replica + 1) * batch]


def _global(batch, replicas: int):
    return batch * replicas


def global_normal(batch, tail: list, seed_):
    """This replica's `batch` rows of one standard-normal draw for the global batch."""
    replicas = position()[1]
    return _own_rows(_backend().random.normal([_global(batch, replicas), *tail], seed_), batch)


def global_uniform(batch, tail: list, seed_):
    """This replica's rows of one uniform [0, 1) float32 draw of [global batch, *tail]."""
    replicas = position()[1]
    return _own_rows(_backend().random.uniform([_global(batch, replicas), *tail], seed_), batch)


def global_integers(batch, tail: list, seed_, minval, maxval):
    """This replica's rows of one int32 draw in [minval, maxval) of [global batch, *tail]."""
    replicas = position()[1]
    full = _backend().random.integers([_global(batch, replicas), *tail], seed_, minval, maxval)
    return _own_rows(full, batch)


def global_labels(batch, num_classes: int, seed_):
    """This replica's rows of one uniform class-label draw for the global batch."""
    return global_integers(batch, [], seed_, 0, num_classes)


def scalar_uniform(seed_):
    return _backend().random.uniform([], seed_)


def scalar_integer(seed_, minval, maxval):
    return _backend().random.integers([], seed_, minval, maxval)


def latents_from_seeds(seeds, latent_dim: int):
    """Maps int seeds [N] to standard-normal latents [N, latent_dim], one per seed (a
    backend tensor; the same numbers on TensorFlow and JAX, to float32 rounding).

    Example:
        >>> z = latents_from_seeds(np.array([0, 1]), 8)   # [2, 8] float32
    """
    return _backend().random.latents(seeds, latent_dim, LATENT_STREAM)


def labels_from_seeds(seeds, num_classes: int):
    """Cycles seeds through the classes (seed % num_classes), int32 [N]: consecutive
    seeds cover every class, which makes sample grids readable. The export's contract;
    `kgan.serving.limits.labels_from_seeds` is its checked twin for NumPy-only callers
    (kgan.gan imports nothing from kgan.serving)."""
    return np.mod(np.asarray(seeds, np.int64), num_classes).astype(np.int32)


def static_batch(images):
    """The batch size of `images`: a Python int when static, else a tensor."""
    size = images.shape[0]
    return int(size) if size is not None else ops.shape(images)[0]


@dataclasses.dataclass(frozen=True)
class StreamLayout:
    """Which stream of a train step each random draw uses, so that no two draws of a run
    share a (step, stream) pair: a collision would correlate noise silently.

    Step t's counter is t * per_step + stream. Each D step k has four streams (its z,
    WGAN-GP's alpha, T(real), T(fake)), then the G step four (its z, one reserved since
    kgan 0.2, T(fake), T(real)). A style-based generator's extra draws count below zero
    (`style_counter`), so other generators' numbers never moved: four per forward pass
    (noise, mixing gate, cutoff, second z) for each D step, the G step and the
    path-length pass, then the path-length pass's z, labels and y.
    """

    d_steps: int
    PER_PASS = 4
    D_STEP = {"z": 0, "gp": 1, "real": 2, "fake": 3}
    G_STEP = {"z": 0, "reserved": 1, "fake": 2, "real": 3}
    STYLE_PASS = {"noise": 0, "gate": 1, "cutoff": 2, "second": 3}
    PATH_LENGTH = {"z": 0, "labels": 1, "y": 2}

    def d_step(self, index: int, draw: str) -> int:
        return index * self.PER_PASS + self.D_STEP[draw]

    def g_step(self, draw: str) -> int:
        return self.d_steps * self.PER_PASS + self.G_STEP[draw]

    @property
    def per_step(self) -> int:
        return (self.d_steps + 1) * self.PER_PASS

    def counter(self, step, stream: int):
        """The counter of `stream` at `step` (a traced integer inside a step)."""
        return ops.cast(step, "int32") * self.per_step + stream

    # ---------------------------------------------- a style-based generator's draws
    def style_pass(self, pass_index: int, draw: str) -> int:
        """Pass `pass_index`: 0..d_steps-1 the D steps, d_steps the G step, d_steps + 1
        the path-length pass."""
        return pass_index * self.PER_PASS + self.STYLE_PASS[draw]

    def path_length(self, draw: str) -> int:
        return (self.d_steps + 2) * self.PER_PASS + self.PATH_LENGTH[draw]

    @property
    def style_per_step(self) -> int:
        return (self.d_steps + 3) * self.PER_PASS

    def style_counter(self, step, stream: int):
        return -1 - (ops.cast(step, "int32") * self.style_per_step + stream)
