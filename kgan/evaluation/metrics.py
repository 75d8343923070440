"""Sample-quality metrics computed from feature activations, and streaming statistics.

Every metric is a pure NumPy function of two feature matrices (real and generated,
`[N, D]`), so it can be tested on synthetic activations and reused with any feature
extractor (`kgan.evaluation.features`). For data that does not fit in memory, the
registered metrics read `FeatureStats` (`kgan.evaluation.stats`, re-exported here): a
running mean/covariance plus a bounded uniform reservoir of rows.

Metrics are registered by name, as in stylegan2-ada's `metric_main`:

| name | values | reference |
|---|---|---|
| `fid` | `fid` | Heusel et al., 2017 |
| `kid` | `kid`, `kid_std` | Binkowski et al., 2018 |
| `pr` | `precision`, `recall` | Kynkaanniemi et al., 2019 |
| `dc` | `density`, `coverage` | Naeem et al., 2020 |

Example:
    >>> real, fake = FeatureStats(capacity=5000), FeatureStats(capacity=5000)
    >>> for batch in real_feature_batches: real.update(batch)
    >>> for batch in fake_feature_batches: fake.update(batch)
    >>> compute_metrics(["fid", "pr"], real, fake)
    {'fid': 12.3, 'precision': 0.71, 'recall': 0.52}
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from kgan._definitions import same_definition
from kgan.evaluation.stats import FeatureStats, MeanCovariance, Reservoir

__all__ = [
    "FeatureStats", "MeanCovariance", "Metric", "Reservoir", "compute_metrics",
    "density_coverage", "fid", "frechet_distance", "get_metric", "kernel_inception_distance",
    "knn_radii", "metric_names", "precision_recall", "register_metric",
]

# Rows of the distance matrix computed at once: bounds k-NN memory to _CHUNK * N floats.
_CHUNK = 1024


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Frechet distance between two Gaussians, the core of FID (Heusel et al., 2017).

    d^2 = ||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)).

    As in the reference implementations (TTUR `fid.py`, pytorch-fid), a square root
    that is not finite (singular product) is retried with `eps * I` added to both
    covariances, and the tiny imaginary part that `sqrtm` returns from round-off is
    dropped; a large one is an error, not noise.

    Args:
        mu1: mean activation of the first set, [D].
        sigma1: covariance of the first set, [D, D].
        mu2: mean activation of the second set, [D].
        sigma2: covariance of the second set, [D, D].
        eps: diagonal offset used when the covariance product is near singular.

    Returns:
        The squared Frechet distance (what the literature calls FID), a float >= 0.

    Raises:
        ValueError: on mismatched shapes, non-finite inputs, or a square root that is
            not finite even with the offset or has a significant imaginary component.
    """
    mu1, mu2 = (np.atleast_1d(np.asarray(m, np.float64)) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, np.float64)) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"mean/covariance shapes differ: {mu1.shape} vs {mu2.shape}, "
            f"{sigma1.shape} vs {sigma2.shape}"
        )
    if not all(np.isfinite(x).all() for x in (mu1, mu2, sigma1, sigma2)):
        raise ValueError("means/covariances hold NaN or inf: the features were not finite")
    covmean = _sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = _sqrtm((sigma1 + offset) @ (sigma2 + offset))
        if not np.isfinite(covmean).all():
            raise ValueError("the covariance product has no finite square root, even with "
                             f"eps={eps} added to the diagonals; try a larger eps")
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(
                f"sqrtm has a significant imaginary component {np.max(np.abs(covmean.imag))}"
            )
        covmean = covmean.real
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)
    return float(max(value, 0.0))


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    """`scipy.linalg.sqrtm` without `disp` (deprecated in SciPy 1.16, removed in 1.18).

    Failure shows as NaN/inf entries, which the caller checks. Rank-deficient
    covariances (dead ReLU features, N < D) are expected, so SciPy's singular-matrix
    warning is silenced, and so is the line older SciPy prints on stdout by default
    (it would corrupt `kgan-evaluate --json`).
    """
    import scipy.linalg  # here, so config validation (metric names) stays light

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        return scipy.linalg.sqrtm(matrix)


def fid(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet Inception distance between two activation sets [N, D] and [M, D]."""
    real, fake = _check_pair(real, fake, minimum=2)
    return frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )


def kernel_inception_distance(
    real: np.ndarray,
    fake: np.ndarray,
    num_subsets: int = 100,
    subset_size: int | None = None,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception distance: unbiased MMD^2 with k(x, y) = (x.y / D + 1)^3.

    Follows Binkowski et al., 2018 ("Demystifying MMD GANs") and stylegan2-ada: the
    estimate is averaged over random subsets, which both bounds the O(m^2) kernel
    matrices and gives a spread. The within-set sums exclude the diagonal (unbiased),
    so two samples of one distribution score ~0 and can be slightly negative.

    Args:
        real: real activations [N, D].
        fake: generated activations [M, D].
        num_subsets: number of random subsets to average over.
        subset_size: rows per subset, capped at min(N, M). Default 1000 (stylegan2-ada),
            or half the smaller set when that is less, so the subsets differ and the std
            measures a spread (subsets of a whole set are all one set: std 0). Each
            subset's estimate is unbiased: the size changes the spread, not the
            expected value.
        seed: seed of the subset draws, so a result is reproducible.

    Returns:
        `(mean, std)` of the per-subset MMD^2 estimates.
    """
    real, fake = _check_pair(real, fake, minimum=2)
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be >= 1, got {num_subsets}")
    dim = real.shape[1]
    smaller = min(len(real), len(fake))
    m = min(smaller, subset_size) if subset_size else max(2, min(1000, smaller // 2))
    rng = np.random.default_rng(seed)
    estimates = np.empty(num_subsets)
    for i in range(num_subsets):
        x = fake[rng.choice(len(fake), m, replace=False)]
        y = real[rng.choice(len(real), m, replace=False)]
        k_xx = (x @ x.T / dim + 1) ** 3
        k_yy = (y @ y.T / dim + 1) ** 3
        k_xy = (x @ y.T / dim + 1) ** 3
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates[i] = within - 2 * k_xy.sum() / (m * m)
    return float(estimates.mean()), float(estimates.std())


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019).

    Each set's manifold is the union of balls around its points with radius the distance
    to the k-th nearest neighbour. Precision is the fraction of generated points inside
    the real manifold (fidelity); recall the fraction of real points inside the generated
    manifold (diversity).

    Args:
        real: real activations [N, D].
        fake: generated activations [M, D].
        k: neighbourhood size of the manifold estimate (3, the paper's and StyleGAN's
            `pr50k3`; a larger k gives larger balls, so higher values of both).

    Returns:
        `(precision, recall)`, each in [0, 1].
    """
    real, fake = _check_pair(real, fake, minimum=k + 1)
    real_radii, fake_radii = knn_radii(real, k), knn_radii(fake, k)
    precision = _fraction_inside(fake, real, real_radii)
    recall = _fraction_inside(real, fake, fake_radii)
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    """Density and coverage (Naeem et al., 2020, "Reliable fidelity and diversity metrics").

    Density counts, per generated point, how many real k-NN balls contain it, divided
    by k and averaged: ~1 when the two distributions match, robust to real outliers
    unlike precision, and unbounded above. Coverage is the fraction of real points whose
    k-NN ball contains at least one generated point; for identical distributions it
    tends to 1 - (1/2)^k (0.97 for k=5).

    Args:
        real: real activations [N, D].
        fake: generated activations [M, D].
        k: neighbourhood size (the paper recommends 5).

    Returns:
        `(density, coverage)`.
    """
    real, fake = _check_pair(real, fake, minimum=k + 1)
    radii = knn_radii(real, k)
    inside_count = np.zeros(len(fake))
    nearest_fake = np.empty(len(real))
    for start in range(0, len(real), _CHUNK):
        rows = slice(start, start + _CHUNK)
        dist = _distances(real[rows], fake)
        inside_count += (dist <= radii[rows, None]).sum(0)
        nearest_fake[rows] = dist.min(1)
    density = inside_count.sum() / (k * len(fake))
    coverage = float(np.mean(nearest_fake <= radii))
    return float(density), coverage


def knn_radii(features: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row to its k-th nearest other row, [N] (the row itself excluded)."""
    radii = np.empty(len(features))
    for start in range(0, len(features), _CHUNK):
        dist = _distances(features[start : start + _CHUNK], features)
        # Index k, not k-1: the smallest distance is the point to itself (0).
        radii[start : start + _CHUNK] = np.partition(dist, k, axis=1)[:, k]
    return radii


def _fraction_inside(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """Fraction of `points` inside at least one ball (centres[i], radii[i])."""
    inside = np.empty(len(points), dtype=bool)
    for start in range(0, len(points), _CHUNK):
        dist = _distances(points[start : start + _CHUNK], centres)
        inside[start : start + _CHUNK] = (dist <= radii[None, :]).any(1)
    return float(inside.mean())


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances [len(a), len(b)] via the Gram trick, in float64."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(sq, 0.0))


def _check_pair(real: np.ndarray, fake: np.ndarray, minimum: int) -> tuple[np.ndarray, ...]:
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    for name, x in (("real", real), ("fake", fake)):
        if x.ndim != 2:
            raise ValueError(f"{name} features must be [N, D], got shape {x.shape}")
        if len(x) < minimum:
            raise ValueError(f"{name} features need at least {minimum} rows, got {len(x)}")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: real {real.shape[1]}, fake {fake.shape[1]}")
    return real, fake


@dataclass(frozen=True)
class Metric:
    """A registered metric: its output names, a function of two FeatureStats, and the
    fewest images it can score with the given options (checked before a run starts)."""

    name: str
    outputs: tuple[str, ...]
    compute: Callable[..., dict[str, float]]
    needs_samples: bool
    min_samples: Callable[..., int] = lambda **_: 2


_REGISTRY: dict[str, Metric] = {}


def register_metric(
    name: str, outputs: tuple[str, ...], needs_samples: bool = True,
    min_samples: Callable[..., int] = lambda **_: 2,
) -> Callable[[Callable[..., dict[str, float]]], Callable[..., dict[str, float]]]:
    """Decorator adding `fn(real_stats, fake_stats, **options) -> dict` to the registry;
    `min_samples(**options)` is the fewest images per side it can score. The same
    function defined again (a re-run notebook cell, a reloaded module) replaces it."""

    def decorate(fn: Callable[..., dict[str, float]]) -> Callable[..., dict[str, float]]:
        if name in _REGISTRY and not same_definition(_REGISTRY[name].compute, fn):
            raise ValueError(f"metric {name!r} is already registered")
        _REGISTRY[name] = Metric(name, outputs, fn, needs_samples, min_samples)
        return fn

    return decorate


def metric_names() -> list[str]:
    """Registered metric names, sorted."""
    return sorted(_REGISTRY)


def get_metric(name: str) -> Metric:
    """Looks a metric up by name; the error lists the valid names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown metric {name!r}; valid names: {', '.join(metric_names())}"
        ) from None


def compute_metrics(
    names: Iterable[str], real: FeatureStats, fake: FeatureStats, **options
) -> dict[str, float]:
    """Computes the named metrics from two streams' statistics.

    Args:
        names: registered metric names, e.g. ["fid", "kid", "pr", "dc"].
        real: statistics of the real features.
        fake: statistics of the generated features.
        **options: passed on to metrics that take them (`k` for pr/dc; `num_subsets`,
            `subset_size`, `seed` for kid); each metric ignores the others.

    Returns:
        A flat dict of output name -> float, e.g. {"fid": ..., "precision": ...}.
    """
    results: dict[str, float] = {}
    for name in names:
        results.update(get_metric(name).compute(real, fake, **options))
    return results


@register_metric("fid", ("fid",), needs_samples=False)
def _fid_metric(real: FeatureStats, fake: FeatureStats, **_) -> dict[str, float]:
    value = frechet_distance(
        real.moments.mean(), real.moments.covariance(),
        fake.moments.mean(), fake.moments.covariance(),
    )
    return {"fid": value}


@register_metric("kid", ("kid", "kid_std"))
def _kid_metric(
    real: FeatureStats, fake: FeatureStats, num_subsets: int = 100, subset_size: int | None = None,
    seed: int = 0, **_,
) -> dict[str, float]:
    mean, std = kernel_inception_distance(
        real.samples(), fake.samples(), num_subsets, subset_size, seed
    )
    return {"kid": mean, "kid_std": std}


@register_metric("pr", ("precision", "recall"), min_samples=lambda k=3, **_: k + 1)
def _pr_metric(real: FeatureStats, fake: FeatureStats, k: int = 3, **_) -> dict[str, float]:
    precision, recall = precision_recall(real.samples(), fake.samples(), k)
    return {"precision": precision, "recall": recall}


@register_metric("dc", ("density", "coverage"), min_samples=lambda k=5, **_: k + 1)
def _dc_metric(real: FeatureStats, fake: FeatureStats, k: int = 5, **_) -> dict[str, float]:
    density, coverage = density_coverage(real.samples(), fake.samples(), k)
    return {"density": density, "coverage": coverage}


def min_samples(names, **options) -> int:
    """The fewest images per side that every metric in `names` can score with `options`."""
    return max((get_metric(name).min_samples(**options) for name in names), default=2)
