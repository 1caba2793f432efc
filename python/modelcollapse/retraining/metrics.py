"""Per-round metrics of the retraining loop (callbacks on :class:`RoundContext`).

The sample-based distances are computed by :data:`BACKEND` functions: small private
implementations live here (``_wasserstein``, ``_precision_recall``) until the project's
``modelcollapse.metrics`` module lands; repoint them in one place with
:func:`set_metric_backend` (or by editing ``BACKEND``), nothing else needs to change.
TODO(lead): repoint to modelcollapse.metrics.wasserstein / precision_recall when merged.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np

from .loop import RoundContext


def _wasserstein(x: np.ndarray, y: np.ndarray, p: int = 2) -> float:
    """Exact W_p between two empirical measures with uniform weights (POT ``ot.emd2``);
    returns W_p, not W_p^p. (Private; to be replaced by modelcollapse.metrics.)"""
    import ot

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p == 1:
        cost = ot.dist(x, y, metric="euclidean")
    elif p == 2:
        cost = ot.dist(x, y, metric="sqeuclidean")
    else:
        raise ValueError(f"p must be 1 or 2, got {p}")
    a = np.full(len(x), 1.0 / len(x))
    b = np.full(len(y), 1.0 / len(y))
    val = float(ot.emd2(a, b, cost, numItermax=10_000_000))
    return val if p == 1 else float(np.sqrt(max(val, 0.0)))


def _kth_radii(x: np.ndarray, k: int) -> np.ndarray:
    from scipy.spatial import cKDTree

    dist, _ = cKDTree(x).query(x, k=k + 1)  # the first neighbour is the point itself
    return dist[:, -1]


def _coverage(points: np.ndarray, centres: np.ndarray, radii: np.ndarray, chunk: int = 1024) -> float:
    """Fraction of ``points`` inside at least one ball B(centres_i, radii_i)."""
    from scipy.spatial import cKDTree

    tree = cKDTree(centres)
    rmax = float(radii.max())
    inside = np.zeros(len(points), dtype=bool)
    for b in range(0, len(points), chunk):
        pts = points[b:b + chunk]
        # candidate centres within the largest radius, then the exact per-ball test
        cands = tree.query_ball_point(pts, rmax)
        for i, idx in enumerate(cands):
            if idx:
                idx = np.asarray(idx)
                dd = np.sqrt(((centres[idx] - pts[i]) ** 2).sum(axis=1))
                inside[b + i] = bool(np.any(dd <= radii[idx]))
    return float(inside.mean())


def _precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 4) -> tuple[float, float]:
    """Improved precision/recall (Kynkaanniemi et al. 2019) with k-NN balls (k = 4).
    (Private; to be replaced by modelcollapse.metrics.)"""
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    precision = _coverage(fake, real, _kth_radii(real, k))
    recall = _coverage(real, fake, _kth_radii(fake, k))
    return precision, recall


BACKEND: dict[str, Callable[..., Any]] = {"wasserstein": _wasserstein, "precision_recall": _precision_recall}


def set_metric_backend(wasserstein: Callable[..., float] | None = None,
                       precision_recall: Callable[..., tuple[float, float]] | None = None) -> None:
    """Repoint the sample-distance functions used by the built-in metrics.

    ``wasserstein(x, y, p)`` must return W_p; ``precision_recall(real, fake, k)`` a pair.
    """
    if wasserstein is not None:
        BACKEND["wasserstein"] = wasserstein
    if precision_recall is not None:
        BACKEND["precision_recall"] = precision_recall


def wasserstein(x: np.ndarray, y: np.ndarray, p: int = 2) -> float:
    return BACKEND["wasserstein"](x, y, p)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 4) -> tuple[float, float]:
    return BACKEND["precision_recall"](real, fake, k)


# --------------------------------------------------------------------------- callbacks

def _equal_size(ctx: RoundContext) -> tuple[np.ndarray, np.ndarray]:
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
    p, r = precision_recall(ctx.eval_data, ctx.samples, k)
    return {"precision": p, "recall": r}


def metric_std(ctx: RoundContext) -> dict[str, float]:
    """Sample standard deviation (ddof=1): the mean over coordinates, and sqrt of the mean
    variance (``std_rms``) which is what collapses under fully synthetic retraining."""
    var = ctx.samples.var(axis=0, ddof=1)
    return {"std": float(np.mean(np.sqrt(var))), "std_rms": float(np.sqrt(var.mean()))}


def metric_mean(ctx: RoundContext) -> dict[str, float]:
    mu = ctx.samples.mean(axis=0)
    return {f"mean_{j}": float(v) for j, v in enumerate(mu)}


def metric_param_distance(ctx: RoundContext) -> float:
    """||theta_t - theta_0|| / sqrt(#params) (needs ``learner.parameter_vector``)."""
    if not hasattr(ctx.learner, "parameter_vector"):
        raise TypeError(f"learner {getattr(ctx.learner, 'name', ctx.learner)!r} has no parameter_vector(state); "
                        "drop the 'param_distance' metric")
    a = np.asarray(ctx.learner.parameter_vector(ctx.state), dtype=np.float64)
    b = np.asarray(ctx.learner.parameter_vector(ctx.initial_state), dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.sqrt(a.size))


METRICS: dict[str, Callable[[RoundContext], Any]] = {
    "w1": metric_w1,
    "w2": metric_w2,
    "precision_recall": metric_precision_recall,
    "std": metric_std,
    "mean": metric_mean,
    "param_distance": metric_param_distance,
}


def get_metric(name: str) -> Callable[[RoundContext], Any]:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; available: {', '.join(METRICS)} (or pass a callable)")
    return METRICS[name]


def default_metrics(neural: bool = False) -> Mapping[str, Callable[[RoundContext], Any]]:
    names = ["w1", "w2", "precision_recall", "std"] + (["param_distance"] if neural else [])
    return {n: METRICS[n] for n in names}
