"""Former home of the per-round metrics, kept so that ``modelcollapse.retraining.metrics``
still imports: they live in :mod:`modelcollapse.recursion` (docs/retraining.md). The sample
distances they use are chosen per run (``run_retraining(metric_backend=...)``), so the
former global ``BACKEND`` and ``set_metric_backend`` are gone."""
from ..recursion import (
    METRICS,
    default_metrics,
    get_metric,
    metric_mean,
    metric_param_distance,
    metric_precision_recall,
    metric_std,
    metric_w1,
    metric_w2,
)

__all__ = ["METRICS", "get_metric", "default_metrics", "metric_w1", "metric_w2", "metric_precision_recall",
           "metric_std", "metric_mean", "metric_param_distance"]
