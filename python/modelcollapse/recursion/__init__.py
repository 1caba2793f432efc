"""The recursion shared by every part: retrain a generative model on (real data and) its own
samples, round after round, with per-round metrics and exact resume from checkpoints.

- :func:`run_retraining` / :func:`sweep`: the project's one generic loop (Bertrand et al.,
  Algorithm 1; workflows ``mix``, ``replace``, ``accumulate``). Truncation's
  ``simulate_recursion``, the DAE's generations and the retraining experiments all run on it.
- Workflows (:data:`WORKFLOWS`): ``mix``, ``replace``, ``accumulate``,
  ``accumulate-subsample``, ``fresh`` (:mod:`._workflows`, with the training points per round).
- Remedies (``run_retraining(remedies=...)``): :class:`SamplingBias`, :class:`SelfCorrection`,
  :class:`Verification` (:mod:`._remedies`).
- :class:`Learner`: what the loop needs from a model (``fit``, ``sample``, ``name``).
- :class:`RoundContext`: what a per-round metric sees; :class:`MetricBackend`: the sample
  distances the built-in metrics use (passed explicitly, no global state).
- :data:`METRICS`, :func:`get_metric`, :func:`default_metrics`: the built-in metrics.
- :func:`save_round`, :func:`load_round`, :func:`completed_rounds`: the data-only checkpoints.
- :class:`TensorBoardCallback`, :class:`MLflowCallback`: ``callback=`` objects that log the
  configuration and each round's metrics (optional extra ``modelcollapse[tracking]``).

Layout: ``_context`` (Learner, RoundContext, MetricBackend) is imported by both ``_metrics``
(the registry) and ``_loop``; ``_checkpoints`` holds the file format. Nothing imports the loop
back, so there is no import cycle. See ``docs/retraining.md`` ("The generic loop").
"""
from __future__ import annotations

from ._checkpoints import completed_rounds, load_round, save_round
from ._context import Learner, MetricBackend, MetricFn, RoundContext, exact_wasserstein, knn_precision_recall
from ._loop import WORKFLOWS, RetrainingResult, resolve_mixing, round_rng, run_retraining, sweep
from ._metrics import (
                       METRICS,
                       default_metrics,
                       get_metric,
                       memorization_fraction,
                       metric_hellinger,
                       metric_mean,
                       metric_memorization,
                       metric_param_distance,
                       metric_precision_recall,
                       metric_std,
                       metric_variance_ratio,
                       metric_w1,
                       metric_w2,
                       metric_w2_auto,
                       param_error,
)
from ._remedies import SamplingBias, SelfCorrection, Verification
from ._tracking import MLflowCallback, TensorBoardCallback

__all__ = ["WORKFLOWS", "Learner", "RoundContext", "MetricBackend", "MetricFn", "RetrainingResult", "run_retraining",
           "sweep", "resolve_mixing", "round_rng", "completed_rounds", "load_round", "save_round", "METRICS",
           "get_metric", "default_metrics", "metric_w1", "metric_w2", "metric_precision_recall", "metric_std",
           "metric_mean", "metric_param_distance", "exact_wasserstein", "knn_precision_recall",
           "TensorBoardCallback", "MLflowCallback", "SamplingBias", "SelfCorrection", "Verification",
           "metric_w2_auto", "metric_hellinger", "metric_variance_ratio", "metric_memorization", "memorization_fraction",
           "param_error"]
