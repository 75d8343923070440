"""The quality routine: scores a generator against real images with registered metrics.

Both the `QualityMetrics` training callback and `kgan-evaluate` call `evaluate_quality`,
so a number logged during training and one printed by the command are computed the
same way: generated images from fixed seeds (image i from seed `seed + i`, as
`GAN.generate` and the export's `generate` signature map them), features from one
float32 extractor, streaming statistics (`FeatureStats`, never all images in memory),
then `compute_metrics`.

The real side does not change while the generator trains: compute it once with
`real_statistics` and pass the `FeatureStats` to every evaluation.

Example:
    >>> extractor = ClassifierFeatures.from_file("runs/digits/metrics_classifier.keras")
    >>> real = real_statistics(real_images, extractor, ["fid", "pr"], num_samples=2000)
    >>> evaluate_quality(lambda n, seed: gan.generate(n, seed=seed), real, extractor,
    ...                  ["fid", "pr"], num_samples=2000)
    {'fid': 3.1, 'precision': 0.74, 'recall': 0.61}
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import numpy as np

from kgan.evaluation.features import FeatureExtractor, collect_stats, image_batches
from kgan.evaluation.metrics import compute_metrics, get_metric, metric_names
from kgan.evaluation.stats import FeatureStats

# (count, first_seed) -> float images [count, H, W, C] in [-1, 1]; image i from first_seed + i.
Sampler = Callable[[int, int], np.ndarray]

# Reservoir seeds of the two sides, so the real and generated samples are drawn apart.
_REAL_SEED, _FAKE_SEED = 0, 1


class EvaluationError(RuntimeError):
    """The evaluation cannot go on (the generator produced non-finite images)."""


def check_metrics(metrics: Iterable[str]) -> tuple[str, ...]:
    """The names as a tuple, each a registered metric; raises ValueError listing the valid ones."""
    names = tuple(metrics)
    if not names:
        raise ValueError(f"no metric named; choose from {', '.join(metric_names())}")
    for name in names:
        get_metric(name)
    return names


def sample_capacity(metrics: Iterable[str], num_samples: int) -> int | None:
    """Rows each side's reservoir keeps: all of them if any metric needs samples
    (kid, pr, dc), else none (FID needs only the running mean and covariance)."""
    return num_samples if any(get_metric(n).needs_samples for n in metrics) else None


def real_statistics(
    real: np.ndarray | Iterable,
    extractor: FeatureExtractor,
    metrics: Iterable[str],
    num_samples: int,
    batch_size: int = 256,
) -> FeatureStats:
    """Statistics of up to `num_samples` real images, enough for `metrics`.

    Args:
        real: images in [-1, 1]: an array [N, H, W, C], a tf.data.Dataset or an
            iterable of batches (images or (images, labels)).
        extractor: the feature extractor every evaluation of this run uses.
        metrics: registered metric names the statistics must serve.
        num_samples: real images used, at most.
        batch_size: images per feature batch (for arrays).
    """
    names = check_metrics(metrics)
    _check_counts(num_samples, batch_size)
    return collect_stats(image_batches(real, batch_size), extractor, num_samples,
                         sample_capacity(names, num_samples), seed=_REAL_SEED)


def evaluate_quality(
    sample_fn: Sampler,
    real: FeatureStats | np.ndarray | Iterable,
    extractor: FeatureExtractor,
    metrics: Iterable[str],
    num_samples: int,
    *,
    seed: int = 0,
    batch_size: int = 256,
    **options,
) -> dict[str, float]:
    """Scores `num_samples` generated images (seeds `seed`, `seed + 1`, ...) against `real`.

    Args:
        sample_fn: `(count, first_seed) -> images` in [-1, 1], e.g.
            `lambda n, s: gan.generate(n, seed=s)`.
        real: `FeatureStats` from `real_statistics` (computed once per run), or real
            images in any form `real_statistics` takes (computed now).
        extractor: the feature extractor (the one the real statistics came from).
        metrics: registered metric names, e.g. ("fid", "kid", "pr", "dc").
        num_samples: generated images (and real images, at most, when `real` is images).
        seed: latent seed of the first generated image.
        batch_size: images generated and featurised per step.
        **options: metric options (`k` for pr/dc; `num_subsets`, `subset_size` for kid).

    Returns:
        {output name: value}, e.g. {"fid": ..., "precision": ..., "recall": ...}.

    Raises:
        ValueError: unknown metric, bad counts, or `sample_fn` returning the wrong number.
        EvaluationError: the generator produced NaN or infinite images.
    """
    names = check_metrics(metrics)
    _check_counts(num_samples, batch_size)
    if not isinstance(real, FeatureStats):
        real = real_statistics(real, extractor, names, num_samples, batch_size)
    fake = collect_stats(_generated(sample_fn, num_samples, seed, batch_size), extractor,
                         num_samples, sample_capacity(names, num_samples), seed=_FAKE_SEED)
    return compute_metrics(names, real, fake, **options)


def _generated(sample_fn: Sampler, total: int, seed: int, batch_size: int) -> Iterator:
    for start in range(0, total, batch_size):
        count = min(batch_size, total - start)
        images = np.asarray(sample_fn(count, seed + start), np.float32)
        if len(images) != count:
            raise ValueError(f"the sampler returned {len(images)} images for {count} seeds")
        if not np.isfinite(images).all():
            raise EvaluationError(
                f"generated images from seeds {seed + start}..{seed + start + count - 1} hold "
                "NaN or inf: the generator diverged; there is nothing to score"
            )
        yield images


def _check_counts(num_samples: int, batch_size: int) -> None:
    if num_samples < 2 or batch_size < 1:
        raise ValueError(f"need num_samples >= 2 and batch_size >= 1, got {num_samples}, "
                         f"{batch_size}")
