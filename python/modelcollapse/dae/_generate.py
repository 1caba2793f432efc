"""Generation with a trained DAE: the Euler grid of the generative SDE, the d-dimensional
sampler, and the Hellinger distance between projected sample sets (docs/dae.md,
"Generation").
"""
from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _core, metrics
from .._validation import (
    as_seed,
    check_allocation,
    check_bool,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from ..reference import dae as _ref
from ._activations import check_activation, core_activation
from ._records import GeneratedSamples

_MAX_KDE_EVALS = 1e11   # projected_hellinger: grid points x samples (minutes of KDE)


@dataclasses.dataclass(frozen=True)
class SamplerSchedule:
    """Euler grid of the generative SDE (docs/dae.md, "Generation") with alpha = 1 - t, beta = t.

    Steps k = 0..n-1 go from t_k to t_{k+1} (t_0 = 0, last t = t_f). Per step:
    delta_k = t_{k+1} - t_k, kappa_k = 1/(1-t_k) + gamma_k t_k/(1-t_k)^2 (the drift factor of
    f), ``kstar_k(b)`` = b kappa_k - 1/(1-t_k) - gamma_k/(1-t_k)^2, noise_k = sqrt(2 gamma_k delta_k),
    p_k = p0 + p1 t_k.
    """

    t: np.ndarray
    delta: np.ndarray
    kappa: np.ndarray
    lin: np.ndarray      # -1/(1-t) - gamma/(1-t)^2: kstar = b kappa + lin
    noise: np.ndarray
    gamma: np.ndarray

    def kstar(self, b: float) -> np.ndarray:
        ks = check_real(b, "b") * self.kappa + self.lin
        if not np.all(np.isfinite(ks)):
            raise ValueError(f"b too large: b kappa overflows (|b| = {abs(b):.3g})")
        return ks

    def p(self, time_encoding: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
        enc = check_finite_array(time_encoding, "time_encoding", shape=(2,))
        p = enc[0] + enc[1] * self.t[:-1]
        if not np.all(np.isfinite(p)):
            raise ValueError("time_encoding too large: p_t = p0 + p1 t overflows")
        return p

    def v_t(self, b: float) -> np.ndarray:
        """Variance in W-perp along the grid: v_0 = 1, v_{k+1} = (1 + delta kstar)^2 v_k + 2 gamma delta."""
        ks = self.kstar(b)
        v = np.empty(len(self.delta) + 1)
        v[0] = 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(len(self.delta)):
                v[k + 1] = (1.0 + self.delta[k] * ks[k]) ** 2 * v[k] + self.noise[k] ** 2
        if not np.all(np.isfinite(v)):
            raise ValueError(f"b = {b:.3g} makes the variance v_t overflow: |b| too large for this schedule")
        return v


def sampler_schedule(n_grid: int = 100, t_final: float = 0.95, gamma: Any = 0.0) -> SamplerSchedule:
    """Grid t_k = k / n_grid up to t_final (< 1, which is appended if not on the grid).
    ``gamma``: constant noise schedule (0 = probability-flow ODE) or one value per step."""
    n_grid = check_positive_int(n_grid, "n_grid")
    check_allocation(8.0 * n_grid, "n_grid", "the time grid")
    t_final = check_real(t_final, "t_final", low=0.0, high=1.0, low_open=True, high_open=True)
    t = np.arange(0, n_grid + 1) / n_grid
    t = t[t < t_final - 1e-12]
    t = np.append(t, t_final)
    tk = t[:-1]
    g = np.broadcast_to(check_finite_array(np.atleast_1d(gamma), "gamma", ndim=1), tk.shape).astype(float) \
        if np.ndim(gamma) else np.full(tk.shape, check_real(gamma, "gamma", low=0.0))
    if np.any(g < 0):
        raise ValueError("gamma must be >= 0")
    delta = np.diff(t)
    a = 1.0 - tk
    if not np.all(np.isfinite(g * tk / a**2 + np.sqrt(2.0 * g * delta))):
        raise ValueError("gamma too large: the drift or noise of the schedule overflows")
    return SamplerSchedule(t=t, delta=delta, kappa=1.0 / a + g * tk / a**2, lin=-1.0 / a - g / a**2,
                           noise=np.sqrt(2.0 * g * delta), gamma=g)


def generate(w: Any, b: float, v: Any = None, *, n_samples: int = 1000, schedule: SamplerSchedule | None = None,
             activation: str = "tanh", time_encoding: Sequence[float] = (0.0, 0.0), observe: Any = None,
             return_full: bool = False, seed: Any = 0, noise: Any = None, threads: int = 0,
             backend: str = "cpp") -> GeneratedSamples:
    """Run the d-dimensional generative SDE with the trained DAE drift from X_0 ~ N(0, I_d).

    Returns a :class:`GeneratedSamples` with ``Z`` = w^T X / sqrt d (n, r), ``proj`` = E^T X
    (n, R) when ``observe`` = E is given (else (n, 0)), and ``X`` (n, d) when ``return_full``
    (else None); ``result["X"]`` works as for the dict this used to be. ``noise``
    (n, steps + 1, d) injects X_0 and the Gaussian increments (for exact comparisons with
    ``backend="numpy"``).
    """
    W = check_finite_array(w, "w", ndim=2)
    d, r = W.shape
    vv = np.zeros(r) if v is None else check_finite_array(v, "v", ndim=1, shape=(r,))
    b = check_real(b, "b")
    if schedule is not None and not isinstance(schedule, SamplerSchedule):
        raise TypeError(f"schedule must be a SamplerSchedule (see sampler_schedule), got {type(schedule).__name__}")
    sch = sampler_schedule() if schedule is None else schedule
    check_activation(activation)
    check_choice(backend, "backend", ("cpp", "numpy"))
    n_samples = check_positive_int(n_samples, "n_samples")
    return_full = check_bool(return_full, "return_full")
    E = np.zeros((d, 0)) if observe is None else check_finite_array(observe, "observe", ndim=2, shape=(d, None))
    check_allocation(float(n_samples) * (r + E.shape[1] + (d if return_full or backend == "numpy" else 0))
                     + (float(n_samples) * (len(sch.delta) + 1) * d if backend == "numpy" else 0.0),
                     "n_samples", "the samples")
    ks, p = sch.kstar(b), sch.p(time_encoding)
    if noise is not None:
        noise = check_finite_array(noise, "noise", ndim=3, shape=(n_samples, len(sch.delta) + 1, d))
    if backend == "numpy":
        if noise is None:
            noise = np.random.default_rng(as_seed(seed)).standard_normal((n_samples, len(sch.delta) + 1, d))
        with np.errstate(over="ignore", invalid="ignore"):
            X = _ref.sample(W, vv, activation, sch.delta, sch.kappa, ks, sch.noise, p, noise)
            Z, proj = X @ W / np.sqrt(d), X @ E
    else:
        X, proj, Z = _core.dae_sample(W, vv, core_activation(activation), sch.delta, sch.kappa, ks, sch.noise, p,
                                      n_samples, as_seed(seed), np.ascontiguousarray(E), bool(return_full),
                                      noise if noise is not None else np.zeros((0, 0, 0)), check_threads(threads))
    out = GeneratedSamples(Z=Z, proj=proj, X=X if return_full else None)
    if not all(np.all(np.isfinite(v)) for v in (Z, proj, X if return_full else Z)):
        raise ValueError("the samples overflowed to NaN/inf: w, b, v or the schedule give too strong a drift")
    return out


def projected_hellinger(a: Any, b: Any, *, grid: int = 100, bandwidth_factor: float = 1.0,
                        bw_method: str | float = "scott", pad: float = 1.0) -> float:
    """Hellinger distance H (H^2 = 1/2 int (sqrt p - sqrt q)^2, in [0, 1]) between Gaussian
    KDEs of two 1-D or 2-D sample sets (e.g. projections E^T X of d-dimensional samples).

    The densities are evaluated on a ``grid`` x ``grid`` box holding both sets (+ ``pad`` on
    each side) by :func:`modelcollapse.metrics.kde` and compared by
    :func:`modelcollapse.metrics.hellinger_grid`; this function only chooses that box and
    scipy's bandwidth convention: ``bw_method`` "scott", "silverman" or a number c (kernel
    covariance c^2 times the sample covariance), the kernel standard deviation times
    ``bandwidth_factor``. Cui et al. plot 2 H^2 (``metrics.hellinger_grid(..., kind="cui")``).
    """
    A = check_finite_array(a, "a", ndim=(1, 2))
    B = check_finite_array(b, "b", ndim=(1, 2))
    A = A[:, None] if A.ndim == 1 else A
    B = B[:, None] if B.ndim == 1 else B
    if A.shape[1] != B.shape[1] or A.shape[1] > 2:
        raise ValueError(f"a and b must be 1-D or 2-D samples of the same dimension, got {A.shape}, {B.shape}")
    for x, name in ((A, "a"), (B, "b")):
        # a KDE needs more points than dimensions and some spread (else a singular covariance)
        if x.shape[0] <= x.shape[1]:
            raise ValueError(f"{name} needs at least {x.shape[1] + 1} samples for a KDE, got {x.shape[0]}")
        if np.any(np.ptp(x, axis=0) == 0):
            raise ValueError(f"{name} has no spread along some axis: its KDE is degenerate")
    grid = check_positive_int(grid, "grid", minimum=2)
    n_pts = float(grid) ** A.shape[1]
    check_allocation(8.0 * n_pts, "grid", "the evaluation grid")
    if n_pts * (A.shape[0] + B.shape[0]) > _MAX_KDE_EVALS:
        raise ValueError(f"grid too large: grid^dim x samples = {n_pts * (A.shape[0] + B.shape[0]):.3g} kernel "
                         f"evaluations (at most {_MAX_KDE_EVALS:.0e}); reduce grid")
    # beyond these the KDE covariance under- or overflows
    bandwidth_factor = check_real(bandwidth_factor, "bandwidth_factor", low=1e-6, high=1e6)
    pad = check_real(pad, "pad", low=0.0)
    if not (isinstance(bw_method, str) and bw_method in ("scott", "silverman")):
        if isinstance(bw_method, str) or not isinstance(bw_method, numbers.Real) or isinstance(bw_method, bool):
            raise TypeError(f"bw_method must be 'scott', 'silverman' or a positive number, got {bw_method!r}")
        check_real(bw_method, "bw_method", low=1e-6, high=1e6)
    if max(np.abs(A).max(), np.abs(B).max()) + pad > 1e150:
        # the KDE covariance squares the values
        raise ValueError("a, b or pad too large: |values| + pad must stay below 1e150")
    lo = np.minimum(A.min(0), B.min(0)) - pad
    hi = np.maximum(A.max(0), B.max(0)) + pad
    box = metrics.Grid(tuple(np.linspace(lo[j], hi[j], grid) for j in range(A.shape[1])))

    def density(x: np.ndarray, name: str) -> np.ndarray:
        # scipy's scalar bw_method c is the kernel covariance c^2 Cov(x)
        bw = bw_method if isinstance(bw_method, str) else bw_method**2 * np.atleast_2d(np.cov(x.T))
        try:
            return metrics.kde(x, box, bandwidth=bw, factor=bandwidth_factor)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    return metrics.hellinger_grid(density(A, "a"), density(B, "b"), box.cell_volume)
