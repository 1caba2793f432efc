"""The time integral int_delta^T E_{p_t}|grad phi_t|^2 dt of the gradient part, estimated from
data and the model score only (the marginal KL bound without ground truth)."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._types import SeedLike
from .._validation import as_generator, check_allocation, check_finite_array, check_positive_int, check_real
from ..mixture import GaussianMixture
from ..results import Record
from ._common import ScoreFn, _check_callable, _time_nodes
from ._model import PerturbedScore
from ._stein import gradient_part_estimate


@dataclasses.dataclass(frozen=True)
class IntegratedGradientPart(Record):
    """Result of :func:`integrated_gradient_part`.

    integral
        the Gauss-Legendre estimate of int_delta^T E|grad phi_t|^2 dt (bias-corrected
        per-time values, :class:`GradientPartEstimate` ``value``).
    se
        its standard error (independent samples per time; each per-time se covers its
        bias correction).
    times, values, ses
        (n_times,) nodes, per-time estimates and their standard errors.
    lower
        the same integral of the uncorrected held-out values (a lower bound up to noise).
    truncation
        the same integral of the per-time truncation allowances (0 if not computed):
        added, not in quadrature, to the upper end of the error bar, since it is systematic.
    """

    integral: float
    se: float
    times: np.ndarray
    values: np.ndarray
    ses: np.ndarray
    lower: float = float("nan")
    truncation: float = 0.0

    @property
    def ci_low(self) -> float:
        """integral - 1.96 se, clipped at 0."""
        return max(0.0, self.integral - 1.96 * self.se)

    @property
    def ci_high(self) -> float:
        """integral + 1.96 se + truncation."""
        return self.integral + 1.96 * self.se + self.truncation


def integrated_gradient_part(score: ScoreFn | PerturbedScore, data: GaussianMixture | np.ndarray, T: float,
                             delta: float, *, n_times: int = 12, n_samples: int = 20000,
                             seed: SeedLike = 0, **estimator_kwargs: Any) -> IntegratedGradientPart:
    """int_delta^T E_{p_t}|grad phi_t|^2 dt from data and the model score only.

    ``data``: a GaussianMixture (samples of p_t drawn exactly) or an (n, d) array of data
    x_0 (then x_t = e^{-t} x_0 + sigma_t z). Gauss-Legendre in log t with ``n_times`` nodes;
    the standard error combines the per-time standard errors (independent samples per time).
    ``estimator_kwargs`` go to :func:`gradient_part_estimate` (basis, degree, network, ...).

    Returns
    -------
    IntegratedGradientPart
        ``integral``, ``se``, ``times``, ``values``, ``ses`` (``res.integral`` or
        ``res["integral"]``).
    """
    score_fn = _check_callable(score.score if isinstance(score, (PerturbedScore, GaussianMixture)) else score, "score")
    n_times = check_positive_int(n_times, "n_times", maximum=10_000)
    n_samples = check_positive_int(n_samples, "n_samples", minimum=4)
    if not isinstance(data, GaussianMixture):
        data = check_finite_array(data, "data", ndim=2)
    dim = data.dim if isinstance(data, GaussianMixture) else data.shape[1]
    check_allocation(8.0 * n_samples * dim, "n_samples", "the samples")
    T = check_real(T, "T", low=0.0, low_open=True)
    times, weights = _time_nodes(T, check_real(delta, "delta", low=0.0, low_open=True, high=T, high_open=True),
                                 n_times)
    rng = as_generator(seed)
    vals, ses, lows, truncs = np.empty(n_times), np.empty(n_times), np.empty(n_times), np.empty(n_times)
    for i, t in enumerate(times):
        key = int(rng.integers(0, 2**62))
        if isinstance(data, GaussianMixture):
            x = data.sample(n_samples, seed=key, t=t)
        else:
            g = np.random.default_rng(key)
            x0 = data[g.integers(0, len(data), n_samples)] if n_samples != len(data) else data
            x = np.exp(-t) * x0 + np.sqrt(-np.expm1(-2 * t)) * g.standard_normal(x0.shape)
        est = gradient_part_estimate(x, score_fn(x, t), seed=key, **estimator_kwargs)
        vals[i], ses[i], lows[i], truncs[i] = est.value, est.se, est.lower, est.truncation
    return IntegratedGradientPart(integral=float(weights @ vals), se=float(np.sqrt(np.sum((weights * ses) ** 2))),
                                  times=times, values=vals, ses=ses, lower=float(weights @ lows),
                                  truncation=float(weights @ truncs))
