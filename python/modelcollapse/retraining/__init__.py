"""Iterative retraining of generative models on their own samples (Bertrand et al.).

- :func:`run_retraining`: the project's one generic loop (workflows ``mix`` with
  ``synthetic_ratio`` or ``real_fraction``, ``replace``, ``accumulate``; per-round metrics;
  per-round checkpoints with exact resume; progress bar; tidy results). It lives in
  :mod:`modelcollapse.recursion` (shared with truncation and the DAE) and is re-exported here.
- Learners: :class:`GaussianLearner`, :class:`GMMLearner`, :class:`EmpiricalLearner`,
  :class:`FixedStart` (a common, already trained round 0), :class:`SklearnLearner` (any
  scikit-learn-style estimator with ``fit(X)`` / ``sample(n)``), :class:`FitSampleAdapter`, and
  (torch) ``DDPMLearner`` / ``FlowMatchingLearner`` in :mod:`.torch_learners`.
- Gaussian theory and Monte Carlo chains: :mod:`.gaussian`; exact error curves of every
  workflow (:func:`workflow_curves`, :func:`mix_mean_contraction`,
  :func:`accumulate_mean_error_bound`, :func:`stationary_error`).
- Remedies (:class:`SamplingBias`, :class:`SelfCorrection`, :class:`Verification`).
- Tracking callbacks (:class:`TensorBoardCallback`, :class:`MLflowCallback`).
- Per-round metrics (:data:`METRICS`, :func:`default_metrics`, :class:`MetricBackend`):
  :mod:`modelcollapse.recursion`.
"""
from __future__ import annotations

from ..recursion import (
    METRICS,
    WORKFLOWS,
    Learner,
    MetricBackend,
    MLflowCallback,
    RetrainingResult,
    RoundContext,
    SamplingBias,
    SelfCorrection,
    TensorBoardCallback,
    Verification,
    completed_rounds,
    default_metrics,
    get_metric,
    load_round,
    resolve_mixing,
    round_rng,
    run_retraining,
    sweep,
)
from . import datasets, gaussian
from ._gaussian_workflows import (
    WorkflowCurves,
    accumulate_mean_error_bound,
    mix_mean_contraction,
    stationary_error,
    workflow_curves,
)
from .learners import (
    EmpiricalLearner,
    FitSampleAdapter,
    FixedStart,
    GaussianLearner,
    GMMLearner,
    SklearnLearner,
    make_learner,
)

__all__ = ["datasets", "gaussian", "WORKFLOWS", "Learner", "RetrainingResult", "RoundContext", "run_retraining", "sweep",
           "resolve_mixing", "round_rng", "completed_rounds", "load_round", "GaussianLearner", "GMMLearner",
           "EmpiricalLearner", "FitSampleAdapter", "FixedStart", "make_learner", "METRICS", "default_metrics", "get_metric",
           "MetricBackend", "SklearnLearner", "TensorBoardCallback", "MLflowCallback", "SamplingBias",
           "SelfCorrection", "Verification", "WorkflowCurves", "workflow_curves", "mix_mean_contraction",
           "accumulate_mean_error_bound", "stationary_error"]


def __getattr__(name: str):
    # Lazy: the torch learners need torch (optional extra modelcollapse[torch]).
    if name in ("DDPMLearner", "FlowMatchingLearner"):
        import importlib

        return getattr(importlib.import_module(f"{__name__}.torch_learners"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
