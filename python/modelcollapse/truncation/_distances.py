"""Distances between the truncation recursion's laws and samples: quantiles of 1-D
mixtures, W2 of a sample or a mixture to a 1-D mixture, and thin wrappers that give the
sample and grid distances of :mod:`modelcollapse.metrics` (the one implementation) the
signatures the truncation experiments use.
"""
from __future__ import annotations

import math
from typing import Any, cast

import numpy as np

from .. import metrics as _metrics
from .._validation import check_allocation, check_finite_array, check_positive_int, check_real
from ..mixture import GaussianMixture, _pow2_scale
from ._laws import _check_law

#: Most projections :func:`sliced_w2` accepts (its limit before it used :mod:`modelcollapse.metrics`).
MAX_PROJECTIONS = 1_000_000


def mixture_quantiles_1d(law: GaussianMixture, u: Any) -> np.ndarray | float:
    """Quantiles of a 1-D Gaussian mixture at levels u in (0, 1) (bracketing + Newton; ~1e-12).

    Returns an array of u's shape (a float for a scalar u).
    """
    from scipy.special import ndtr

    _check_law(law, "law")
    if law.dim != 1:
        raise ValueError("law must be a 1-D mixture for mixture_quantiles_1d")
    u_in = check_finite_array(u, "u", allow_empty=True)
    if np.any(u_in <= 0.0) or np.any(u_in >= 1.0):
        raise ValueError("u (quantile levels) must lie strictly between 0 and 1")
    check_allocation(float(u_in.size) * (law.n_components + 4) * 2, "u", "the quantile iterations")
    u = u_in.ravel()
    w = law.weights
    mu = law.means[:, 0]
    sd = np.sqrt(law.full_covariances()[:, 0, 0])
    lo = float(np.min(mu - 40 * sd))
    hi = float(np.max(mu + 40 * sd))
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(hi - lo)):
        raise ValueError("law spans more than the float64 range (means +- 40 standard deviations overflow)")
    grid = np.linspace(lo, hi, 4001)
    cdf = ndtr((grid[:, None] - mu) / sd) @ w
    x = np.interp(u, cdf, grid)
    for _ in range(8):
        F = ndtr((x[:, None] - mu) / sd) @ w
        f = (np.exp(-0.5 * ((x[:, None] - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))) @ w
        step = (F - u) / np.maximum(f, 1e-300)
        step = np.clip(step, -0.5, 0.5)
        x = x - step
        if x.size == 0 or np.max(np.abs(step)) < 1e-12:
            break
    return x.reshape(u_in.shape) if u_in.ndim else float(x[0])


def _as_sample_1d(x: Any, name: str) -> np.ndarray:
    """A non-empty finite sample, flattened (any shape is read as a list of 1-D values)."""
    return check_finite_array(x, name).ravel()


def _rms_difference(a: np.ndarray, b: np.ndarray, names: str) -> float:
    """sqrt(mean((a - b)^2)) without overflow where the result is representable: values past
    ~1e154 are divided by a power of two first (exact), which leaves ordinary inputs'
    results bit-identical."""
    top = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    if top < 1e140:  # squares and their sum stay finite
        return float(np.sqrt(np.mean((a - b) ** 2)))
    c = float(_pow2_scale(np.array(top)))
    out = float(np.sqrt(np.mean((a / c - b / c) ** 2))) * c
    if not math.isfinite(out):
        raise ValueError(f"{names} too large: their W2 distance overflows float64")
    return out


def w2_1d(x: Any, y: Any) -> float:
    """W2 between two 1-D samples: the exact distance between their empirical laws (sorting),
    computed by :func:`modelcollapse.metrics.wasserstein` (``method="1d"``).

    Any shape is read as a list of 1-D values.
    """
    return float(_metrics.wasserstein(_as_sample_1d(x, "x"), _as_sample_1d(y, "y"), 2, method="1d"))


def w2_1d_to_law(x: Any, law: GaussianMixture) -> float:
    """W2 between a 1-D sample and a 1-D mixture (sample quantiles vs law quantiles at (i-1/2)/n)."""
    a = np.sort(_as_sample_1d(x, "x"))
    u = (np.arange(len(a)) + 0.5) / len(a)
    return _rms_difference(a, cast(np.ndarray, mixture_quantiles_1d(_check_law(law, "law"), u)), "x and law")


def w2_1d_laws(p: GaussianMixture, q: GaussianMixture, n_levels: int = 2_000) -> float:
    """W2 between two 1-D mixtures: int_0^1 (F^-1 - G^-1)^2 du by Gauss-Legendre on u-panels."""
    _check_law(p, "p")
    _check_law(q, "q")
    n_levels = check_positive_int(n_levels, "n_levels", maximum=10**8)
    check_allocation(float(n_levels) * (p.n_components + q.n_components + 8) * 2, "n_levels", "the quantile levels")
    nodes, wts = np.polynomial.legendre.leggauss(8)
    edges = np.concatenate([[0.0], np.logspace(-12, -2, 40), np.linspace(0.01, 0.99, n_levels // 8)[1:-1],
                            1 - np.logspace(-2, -12, 40), [1.0]])
    edges = np.unique(edges)
    lo, hi = edges[:-1], edges[1:]
    u = (0.5 * (hi - lo)[:, None] * nodes + 0.5 * (hi + lo)[:, None]).ravel()
    ww = (0.5 * (hi - lo)[:, None] * wts).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        d = mixture_quantiles_1d(p, u) - mixture_quantiles_1d(q, u)
        out = float(np.sqrt(max(np.sum(ww * d * d), 0.0)))
    if not math.isfinite(out):
        raise ValueError("p and q too far apart: their W2 distance overflows float64")
    return out


def sliced_w2(x: Any, y: Any, n_projections: int = 200, *, seed: Any = 0) -> float:
    """Sliced W2 between two samples in R^d: :func:`modelcollapse.metrics.wasserstein` with
    ``method="sliced"``, ``p=2`` (``n_projections`` unit directions drawn by the counter-based
    RNG from ``seed``; 1-D W2 of the projections by sorting, exact for unequal sizes too).

    ``x`` and ``y`` are ``(n, d)`` arrays (a 1-D array is n one-dimensional samples).
    """
    n_projections = check_positive_int(n_projections, "n_projections", maximum=MAX_PROJECTIONS)
    return float(_metrics.wasserstein(x, y, 2, method="sliced", n_projections=n_projections, seed=seed))


def grid_distances(p: GaussianMixture, q: GaussianMixture, lim: float = 6.0, n: int | None = None) -> dict[str, float]:
    """TV = 1/2 int |p - q| and Hellinger H (H^2 = 1/2 int (sqrt p - sqrt q)^2) of two
    mixtures, from their densities on an ``n``-point-per-axis grid over [-lim, lim]^d,
    d in {1, 2} (the sums are :func:`modelcollapse.metrics.tv_grid` and
    :func:`modelcollapse.metrics.hellinger_grid`)."""
    _check_law(p, "p")
    _check_law(q, "q")
    d = p.dim
    if d not in (1, 2) or q.dim != d:
        raise ValueError("grid_distances needs two mixtures p and q of the same dimension 1 or 2")
    lim = check_real(lim, "lim", low=0.0, low_open=True, high=1e300)
    n = 4001 if n is None and d == 1 else 401 if n is None else check_positive_int(n, "n", minimum=2)
    check_allocation(float(n) ** d * (d + 4 + p.n_components + q.n_components), "n", "the grid densities")
    g = np.linspace(-lim, lim, n)
    h = g[1] - g[0]
    pts = g[:, None] if d == 1 else np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    fp, fq = p.pdf(pts), q.pdf(pts)
    cell = h ** d
    if not math.isfinite(cell):
        raise ValueError(f"lim = {lim:.3g} too large: the grid cells overflow float64")
    try:
        return {"tv": _metrics.tv_grid(fp, fq, cell), "hellinger": _metrics.hellinger_grid(fp, fq, cell, kind="H")}
    except ValueError:  # the sums overflow: name the argument to change
        raise ValueError(f"lim = {lim:.3g} too large: the grid cells overflow float64") from None
