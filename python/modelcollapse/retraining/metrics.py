"""Per-round metrics of the retraining loop (callbacks on :class:`RoundContext`).

The sample-based distances come from :mod:`modelcollapse.metrics` (exact W_p through POT's
``ot.emd2``, reported as W_p not W_p^p; improved precision/recall with k-NN balls, k = 4,
cKDTree). They are looked up through :data:`BACKEND`, so :func:`set_metric_backend` can
repoint them (e.g. to sliced Wasserstein for large sample sets) without touching the loop.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from .loop import RoundContext


def _wasserstein(x: np.ndarray, y: np.ndarray, p: int = 2) -> float:
    from ..metrics import wasserstein as _w

    return float(_w(x, y, p=p, method="exact"))


def _precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 4) -> tuple[float, float]:
    from ..metrics import precision_recall as _pr

    pr = _pr(real, fake, k=k)
    return float(pr.precision), float(pr.recall)


BACKEND: dict[str, Callable[..., Any]] = {"wasserstein": _wasserstein, "precision_recall": _precision_recall}


def set_metric_backend(wasserstein: Callable[..., float] | None = None,
                       precision_recall: Callable[..., tuple[float, float]] | None = None) -> None:
    """Repoint the sample-distance functions used by the built-in metrics.

    ``wasserstein(x, y, p)`` must return W_p; ``precision_recall(real, fake, k)`` a pair.
    """
    for fn, name in ((wasserstein, "wasserstein"), (precision_recall, "precision_recall")):
        if fn is not None and not callable(fn):
            raise TypeError(f"{name} must be callable or None, got {type(fn).__name__}")
    if wasserstein is not None:
        BACKEND["wasserstein"] = wasserstein
    if precision_recall is not None:
        BACKEND["precision_recall"] = precision_recall


def wasserstein(x: np.ndarray, y: np.ndarray, p: int = 2) -> float:
    """W_p between two sample sets through the current backend (default: exact, POT)."""
    from .._validation import check_positive_int

    return BACKEND["wasserstein"](x, y, check_positive_int(p, "p"))


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 4) -> tuple[float, float]:
    """Improved precision and recall (k-NN balls) through the current backend."""
    from .._validation import check_positive_int

    return BACKEND["precision_recall"](real, fake, check_positive_int(k, "k"))


# --------------------------------------------------------------------------- callbacks

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
    return wasserstein(s, e, 1)


def metric_w2(ctx: RoundContext) -> float:
    """W2 (not W2^2) between the round's samples and the held-out real data."""
    s, e = _equal_size(ctx)
    return wasserstein(s, e, 2)


def metric_precision_recall(ctx: RoundContext, k: int = 4) -> dict[str, float]:
    _check_ctx(ctx)
    p, r = precision_recall(ctx.eval_data, ctx.samples, k)
    return {"precision": p, "recall": r}


def metric_std(ctx: RoundContext) -> dict[str, float]:
    """Sample standard deviation (ddof=1): the mean over coordinates, and sqrt of the mean
    variance (``std_rms``) which is what collapses under fully synthetic retraining."""
    var = _finite_samples(_check_ctx(ctx)).var(axis=0, ddof=1)
    return {"std": float(np.mean(np.sqrt(var))), "std_rms": float(np.sqrt(var.mean()))}


def metric_mean(ctx: RoundContext) -> dict[str, float]:
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


METRICS: dict[str, Callable[[RoundContext], Any]] = {
    "w1": metric_w1,
    "w2": metric_w2,
    "precision_recall": metric_precision_recall,
    "std": metric_std,
    "mean": metric_mean,
    "param_distance": metric_param_distance,
}


def get_metric(name: str) -> Callable[[RoundContext], Any]:
    if not isinstance(name, str) or name not in METRICS:
        raise ValueError(f"unknown metric name {name!r}; available: {', '.join(METRICS)} (or pass a callable)")
    return METRICS[name]


def default_metrics(neural: bool = False) -> Mapping[str, Callable[[RoundContext], Any]]:
    from .._validation import check_bool

    names = ["w1", "w2", "precision_recall", "std"] + (["param_distance"] if check_bool(neural, "neural") else [])
    return {n: METRICS[n] for n in names}
