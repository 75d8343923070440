"""Sample quality: metrics (FID, KID, precision/recall, density/coverage) on streaming
feature statistics (`stats`), feature extractors (`features`), and `evaluate_quality`
(`quality`), the one routine that both the `QualityMetrics` callback and `kgan-evaluate`
call.
"""

from kgan import _lazy

_NAMES = {
    "metrics": "kgan.evaluation.metrics",
    "features": "kgan.evaluation.features",
    "quality": "kgan.evaluation.quality",
    "stats": "kgan.evaluation.stats",
    "evaluate_quality": "kgan.evaluation.quality:evaluate_quality",
    "real_statistics": "kgan.evaluation.quality:real_statistics",
    "compute_metrics": "kgan.evaluation.metrics:compute_metrics",
    "metric_names": "kgan.evaluation.metrics:metric_names",
}
__all__ = sorted(_NAMES)
__getattr__ = _lazy.attributes(__name__, _NAMES)
