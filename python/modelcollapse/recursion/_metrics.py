"""Per-round metrics of the retraining loop (callbacks on :class:`RoundContext`) and their
registry (:data:`METRICS`, :func:`get_metric`, :func:`default_metrics`).

The sample distances come from the round's :class:`MetricBackend` (by default
:mod:`modelcollapse.metrics`: exact W_p through POT's ``ot.emd2``, reported as W_p not
W_p^p; improved precision/recall with k-NN balls, k = 4, cKDTree). A run chooses other
distances with ``run_retraining(metric_backend=...)``; nothing here is global state.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .._validation import check_bool, check_positive_int
from ._context import RoundContext


def _check_ctx(ctx: Any) -> RoundContext:
    if not isinstance(ctx, RoundContext):
        raise TypeError(f"ctx must be a RoundContext (passed by run_retraining), got {type(ctx).__name__}")
    return ctx


def _finite_samples(ctx: RoundContext) -> np.ndarray:
    x = np.asarray(ctx.samples)
    if x.ndim != 2 or x.shape[0] < 2 or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
        raise ValueError(f"ctx.samples must be a real (n >= 2, d) array, got shape {x.shape}")
    if not np.all(np.isfinite(x)) or np.abs(x).max() > 1e150:
        raise ValueError("ctx.samples contains NaN/inf or values too large (> 1e150): the model diverged")
    return x.astype(np.float64)


def _equal_size(ctx: RoundContext) -> tuple[np.ndarray, np.ndarray]:
    _check_ctx(ctx)
    m = min(len(ctx.samples), len(ctx.eval_data))
    return ctx.samples[:m], ctx.eval_data[:m]


def metric_w1(ctx: RoundContext) -> float:
    """W1 between the round's samples and the held-out real data (equal-size sets)."""
    s, e = _equal_size(ctx)
    return ctx.metric_backend.wasserstein(s, e, 1)


def metric_w2(ctx: RoundContext) -> float:
    """W2 (not W2^2) between the round's samples and the held-out real data."""
    s, e = _equal_size(ctx)
    return ctx.metric_backend.wasserstein(s, e, 2)


def metric_precision_recall(ctx: RoundContext, k: int = 4) -> dict[str, float]:
    """Precision and recall of the round's samples against the held-out real data (k-NN balls)."""
    _check_ctx(ctx)
    p, r = ctx.metric_backend.precision_recall(ctx.eval_data, ctx.samples, check_positive_int(k, "k"))
    return {"precision": p, "recall": r}


def metric_std(ctx: RoundContext) -> dict[str, float]:
    """Sample standard deviation (ddof=1): the mean over coordinates, and sqrt of the mean
    variance (``std_rms``) which is what collapses under fully synthetic retraining."""
    var = _finite_samples(_check_ctx(ctx)).var(axis=0, ddof=1)
    return {"std": float(np.mean(np.sqrt(var))), "std_rms": float(np.sqrt(var.mean()))}


def metric_mean(ctx: RoundContext) -> dict[str, float]:
    """Per-coordinate sample mean (``mean_0``, ``mean_1``, ...)."""
    mu = _finite_samples(_check_ctx(ctx)).mean(axis=0)
    return {f"mean_{j}": float(v) for j, v in enumerate(mu)}


def metric_param_distance(ctx: RoundContext) -> float:
    """||theta_t - theta_0|| / sqrt(#params) (needs ``learner.parameter_vector``)."""
    _check_ctx(ctx)
    if not hasattr(ctx.learner, "parameter_vector"):
        raise TypeError(f"learner {getattr(ctx.learner, 'name', ctx.learner)!r} has no parameter_vector(state); "
                        "drop the 'param_distance' metric")
    a = np.asarray(ctx.learner.parameter_vector(ctx.state), dtype=np.float64)
    b = np.asarray(ctx.learner.parameter_vector(ctx.initial_state), dtype=np.float64)
    out = float(np.linalg.norm(a - b) / np.sqrt(a.size))
    if not np.isfinite(out):
        raise ValueError("ctx.state gives a non-finite parameter distance: the model diverged")
    return out


#: The built-in metrics by name (what ``run_retraining(metrics=("w2", ...))`` looks up).
METRICS: dict[str, Callable[[RoundContext], Any]] = {
    "w1": metric_w1,
    "w2": metric_w2,
    "precision_recall": metric_precision_recall,
    "std": metric_std,
    "mean": metric_mean,
    "param_distance": metric_param_distance,
}


def get_metric(name: str) -> Callable[[RoundContext], Any]:
    """The built-in metric called ``name`` (ValueError listing the names otherwise)."""
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"unknown metric name {name!r}; available: {', '.join(METRICS)} (or pass a callable)")
    return METRICS[name]


def default_metrics(neural: bool = False) -> Mapping[str, Callable[[RoundContext], Any]]:
    """w1, w2, precision_recall and std (plus param_distance for ``neural`` learners)."""
    names = ["w1", "w2", "precision_recall", "std"] + (["param_distance"] if check_bool(neural, "neural") else [])
    return {n: METRICS[n] for n in names}
