"""Streaming feature statistics: what the metrics need from a stream of feature batches.

`MeanCovariance` keeps the running first two moments (all FID needs) in O(D^2) memory;
`Reservoir` keeps a bounded uniform sample of rows for the k-NN and kernel metrics,
whose cost grows with N^2 anyway; `FeatureStats` holds both for one stream.
"""

from __future__ import annotations

import numpy as np


class MeanCovariance:
    """Running mean and covariance of feature rows, merged batch by batch (Chan et al.).

    Memory is O(D^2) whatever the number of rows, and the pairwise update is stable
    in float64 (no large sums of squares to subtract), so streaming FID matches the
    batch computation to round-off.
    """

    def __init__(self) -> None:
        self.count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None  # sum of outer products of deviations

    def update(self, features: np.ndarray) -> None:
        """Adds a batch of rows [B, D]."""
        x = np.asarray(features, np.float64)
        if x.ndim != 2 or len(x) == 0:
            raise ValueError(f"features must be a non-empty [B, D] array, got {x.shape}")
        batch_mean = x.mean(0)
        centred = x - batch_mean
        batch_m2 = centred.T @ centred
        if self._mean is None:
            self.count, self._mean, self._m2 = len(x), batch_mean, batch_m2
            return
        if x.shape[1] != self._mean.shape[0]:
            raise ValueError(f"feature size changed: {self._mean.shape[0]} -> {x.shape[1]}")
        total = self.count + len(x)
        delta = batch_mean - self._mean
        self._m2 = self._m2 + batch_m2 + np.outer(delta, delta) * self.count * len(x) / total
        self._mean = self._mean + delta * len(x) / total
        self.count = total

    def mean(self) -> np.ndarray:
        """Mean row [D]."""
        self._require(1)
        return self._mean

    def covariance(self) -> np.ndarray:
        """Unbiased covariance [D, D] (divides by N - 1, like np.cov)."""
        self._require(2)
        return self._m2 / (self.count - 1)

    def _require(self, rows: int) -> None:
        if self.count < rows:
            raise ValueError(f"need at least {rows} rows of features, have {self.count}")


class Reservoir:
    """A uniform random sample of at most `capacity` rows of a stream (Vitter's algorithm R).

    Keeps k-NN and kernel metrics at a bounded memory and O(capacity^2) cost however
    many batches flow through; while fewer rows than `capacity` arrived it holds all of
    them, in order, so it then equals the batch computation exactly.
    """

    def __init__(self, capacity: int, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.seen = 0
        self._rows: np.ndarray | None = None
        self._size = 0
        self._rng = np.random.default_rng(seed)

    def update(self, features: np.ndarray) -> None:
        """Offers a batch of rows [B, D] to the reservoir."""
        x = np.asarray(features, np.float32)
        if x.ndim != 2:
            raise ValueError(f"features must be [B, D], got shape {x.shape}")
        if self._rows is None:
            self._rows = np.empty((self.capacity, x.shape[1]), np.float32)
        for row in x:
            if self._size < self.capacity:
                self._rows[self._size] = row
                self._size += 1
            else:
                slot = self._rng.integers(0, self.seen + 1)
                if slot < self.capacity:
                    self._rows[slot] = row
            self.seen += 1

    def values(self) -> np.ndarray:
        """The sampled rows [min(seen, capacity), D]."""
        if self._rows is None:
            raise ValueError("the reservoir is empty: no features were added")
        return self._rows[: self._size]


class FeatureStats:
    """Everything the registered metrics need from one stream of features.

    Args:
        capacity: rows kept for the sample-based metrics (kid, pr, dc); None keeps none,
            which is enough for FID alone.
        seed: reservoir seed.
    """

    def __init__(self, capacity: int | None = 10_000, seed: int = 0) -> None:
        self.moments = MeanCovariance()
        self.reservoir = Reservoir(capacity, seed) if capacity else None

    def update(self, features: np.ndarray) -> None:
        """Adds a batch of feature rows [B, D]."""
        self.moments.update(features)
        if self.reservoir is not None:
            self.reservoir.update(features)

    @property
    def count(self) -> int:
        """Rows seen so far."""
        return self.moments.count

    def samples(self) -> np.ndarray:
        """The reservoir's rows; raises if this stream keeps none."""
        if self.reservoir is None:
            raise ValueError("these FeatureStats keep no samples (capacity=None); "
                             "kid, pr and dc need a capacity")
        return self.reservoir.values()
