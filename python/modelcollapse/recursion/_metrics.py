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

from .._validation import check_bool, check_finite_array, check_positive_int, check_real
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


def _parameter_distance(ctx: RoundContext, reference_state: Any, metric: str) -> float:
    """||theta_t - theta_ref|| / sqrt(#params), theta_ref = ``learner.parameter_vector(reference_state)``;
    ``metric`` names the metric in the errors."""
    _check_ctx(ctx)
    if not hasattr(ctx.learner, "parameter_vector"):
        raise TypeError(f"learner {getattr(ctx.learner, 'name', ctx.learner)!r} has no parameter_vector(state); "
                        f"drop the {metric!r} metric")
    a = np.asarray(ctx.learner.parameter_vector(ctx.state), dtype=np.float64)
    b = np.asarray(ctx.learner.parameter_vector(reference_state), dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"reference_state has {b.size} parameters, the model {a.size}")
    out = float(np.linalg.norm(a - b) / np.sqrt(a.size))
    if not np.isfinite(out):
        raise ValueError(f"ctx.state gives a non-finite {metric}: the model diverged")
    return out


def metric_param_distance(ctx: RoundContext) -> float:
    """||theta_t - theta_0|| / sqrt(#params) (needs ``learner.parameter_vector``)."""
    return _parameter_distance(ctx, _check_ctx(ctx).initial_state, "param_distance")


def metric_w2_auto(ctx: RoundContext) -> float:
    """W2 between the round's samples and the held-out data (equal-size sets): exact optimal
    transport up to ``metric_backend.exact_max_points`` points per set, sliced W2 beyond
    (the two are different distances: sliced W2 <= W2; a run keeps one of them as long as
    its sizes do not change)."""
    s, e = _equal_size(ctx)
    if len(s) <= ctx.metric_backend.exact_max_points:
        return ctx.metric_backend.wasserstein(s, e, 2)
    return ctx.metric_backend.sliced_wasserstein(s, e, 2)


def metric_hellinger(ctx: RoundContext) -> float:
    """Hellinger distance H in [0, 1] between the KDEs of the round's samples and of the
    held-out data (d <= 2 only; ValueError otherwise)."""
    _check_ctx(ctx)
    d = np.shape(ctx.samples)[-1]
    if d > 2:
        raise ValueError(f"the 'hellinger' metric needs d <= 2 (a KDE on a grid), got d = {d}; drop it")
    return float(ctx.metric_backend.hellinger(ctx.eval_data, _finite_samples(ctx)))


def metric_variance_ratio(ctx: RoundContext) -> float:
    """tr Cov(samples) / tr Cov(held-out data) (ddof = 1): 1 for a model with the data's
    total variance, -> 0 under collapse."""
    x = _finite_samples(_check_ctx(ctx))
    ref = np.asarray(ctx.eval_data, dtype=np.float64)
    den = float(ref.var(axis=0, ddof=1).sum())
    if not den > 0:
        raise ValueError("ctx.eval_data has zero variance: the variance ratio is undefined")
    return float(x.var(axis=0, ddof=1).sum()) / den


#: Default kappa of the memorisation threshold (a fraction of the real data's median
#: nearest-neighbour distance).
MEMORIZATION_KAPPA = 1.0 / 3.0


def memorization_fraction(samples: np.ndarray, train: np.ndarray, reference: np.ndarray,
                          kappa: float = MEMORIZATION_KAPPA) -> tuple[float, float]:
    """Fraction of ``samples`` closer to a point of ``train`` than the threshold
    kappa m (n_ref / n_train)^(1/d), and that threshold; m is the median nearest-neighbour
    distance within ``reference`` (n_ref points), n_train = ``len(train)``.

    The spacing m is set by the real data (``reference``), not by the training set, whose
    synthetic points may contain (near) duplicates with zero spacing; the factor
    (n_ref / n_train)^(1/d) is the spacing of n_train points of the same law, so the measure
    is comparable across training-set sizes (accumulate's pool grows: docs/atlas.md, section
    "Metrics"). For samples drawn afresh from a smooth law with the training set's density, a
    Poisson approximation gives a baseline of 1 - exp(-ln 2 kappa^d) whatever n_train (0.21 in
    d = 1, 0.074 in d = 2 for kappa = 1/3; measured on 2000 Gaussian points, 5 seeds: 0.218
    and 0.084); copies of training points count 1 each.
    """
    from scipy.spatial import cKDTree

    kappa = check_real(kappa, "kappa", low=0.0, low_open=True)
    ref = check_finite_array(reference, "reference", ndim=2)
    samples = check_finite_array(samples, "samples", ndim=2, shape=(None, ref.shape[1]))
    train = check_finite_array(train, "train", ndim=2, shape=(None, ref.shape[1]))
    if len(ref) < 2:
        raise ValueError("reference needs at least 2 points for a nearest-neighbour distance")
    nn_ref = cKDTree(ref).query(ref, k=2)[0][:, 1]
    thr = kappa * float(np.median(nn_ref)) * (len(ref) / len(train)) ** (1.0 / ref.shape[1])
    if not thr > 0:
        raise ValueError("reference has a zero median nearest-neighbour distance (duplicated points)")
    dist = cKDTree(train).query(samples, k=1)[0]
    return float(np.mean(dist < thr)), thr


def metric_memorization(ctx: RoundContext) -> dict[str, float]:
    """``memorization``: fraction of the round's samples within kappa = 1/3 of the
    nearest-neighbour spacing of a point of the round's training set (the real data's median
    spacing rescaled to the training set's size, :func:`memorization_fraction`;
    ``memorization_threshold`` is that distance)."""
    _check_ctx(ctx)
    frac, thr = memorization_fraction(_finite_samples(ctx), ctx.train_data, ctx.real_data)
    return {"memorization": frac, "memorization_threshold": thr}


def param_error(reference_state: Any) -> Callable[[RoundContext], float]:
    """A metric ||theta_t - theta_ref|| / sqrt(#params): the parameter error against a
    reference state (e.g. the true law's parameters ``{"mean": mu, "cov": Sigma}`` for
    ``GaussianLearner``); needs ``learner.parameter_vector``.

    Use as ``metrics={"param_error": param_error(true_state), ...}``.
    """
    if reference_state is None:
        raise TypeError("reference_state must be a state of the learner (e.g. {'mean': mu, 'cov': Sigma}), got None")

    def metric(ctx: RoundContext) -> float:
        return _parameter_distance(ctx, reference_state, "param_error")

    return metric


#: The built-in metrics by name (what ``run_retraining(metrics=("w2", ...))`` looks up).
METRICS: dict[str, Callable[[RoundContext], Any]] = {
    "w1": metric_w1,
    "w2": metric_w2,
    "precision_recall": metric_precision_recall,
    "std": metric_std,
    "mean": metric_mean,
    "param_distance": metric_param_distance,
    "w2_auto": metric_w2_auto,
    "hellinger": metric_hellinger,
    "variance_ratio": metric_variance_ratio,
    "memorization": metric_memorization,
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
