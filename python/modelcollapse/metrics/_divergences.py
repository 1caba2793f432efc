"""Hellinger, KL and total variation between densities on a grid, and from samples."""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from .._types import BACKENDS
from .._validation import (
    check_allocation,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from ..mixture import GaussianMixture
from ._grid import HELLINGER_KINDS, KDE_METHODS, Grid, _as_grid, _is_density, as_samples
from ._kde import _bandwidth, _kde_values


# ----------------------------------------------------------------------------- grid divergences
def _grid_pair(p: Any, q: Any, cell_volume: float) -> tuple[np.ndarray, np.ndarray, float]:
    pv = check_finite_array(p, "p", allow_empty=False)
    qv = check_finite_array(q, "q", allow_empty=False)
    if pv.shape != qv.shape:
        raise ValueError(f"p and q must have the same shape on the grid, got {pv.shape} and {qv.shape}")
    if np.any(pv < 0) or np.any(qv < 0):
        raise ValueError("densities on the grid must be non-negative")
    cv = check_real(cell_volume, "cell_volume", low=0.0, low_open=True)
    return pv, qv, cv


def hellinger_grid(p: Any, q: Any, cell_volume: float, kind: str = "H") -> float:
    """Hellinger from density values on a regular grid: H^2 = 1/2 sum (sqrt p - sqrt q)^2 dV.

    ``kind``: "H" (default, in [0, 1]), "H2" (H^2) or "cui" (sum (sqrt p - sqrt q)^2 dV =
    2 H^2, what Cui et al. plot). The sum is clipped to the exact range ([0, 1] for H^2).
    """
    pv, qv, cv = _grid_pair(p, q, cell_volume)
    check_choice(kind, "kind", HELLINGER_KINDS)
    h2 = min(max(0.5 * float(np.sum((np.sqrt(pv) - np.sqrt(qv)) ** 2)) * cv, 0.0), 1.0)
    return {"H": math.sqrt(h2), "H2": h2, "cui": 2.0 * h2}[kind]


def kl_grid(p: Any, q: Any, cell_volume: float) -> float:
    """KL(p || q) = sum p log(p / q) dV on a grid (inf if q = 0 where p > 0)."""
    pv, qv, cv = _grid_pair(p, q, cell_volume)
    mask = pv > 0
    if np.any(qv[mask] == 0):
        return math.inf  # documented: KL is infinite where q vanishes and p does not
    with np.errstate(over="ignore", invalid="ignore"):
        out = float(np.sum(pv[mask] * (np.log(pv[mask]) - np.log(qv[mask]))) * cv)
    return _finite_sum(out)


def tv_grid(p: Any, q: Any, cell_volume: float) -> float:
    """Total variation 1/2 sum |p - q| dV on a grid."""
    pv, qv, cv = _grid_pair(p, q, cell_volume)
    with np.errstate(over="ignore", invalid="ignore"):
        out = float(0.5 * np.sum(np.abs(pv - qv)) * cv)
    return _finite_sum(out)


def _finite_sum(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("p, q or cell_volume too large: the sum over the grid overflows float64 (densities times "
                         "cell_volume should integrate to about 1)")
    return value


def auto_grid(*sample_sets: np.ndarray, bandwidths: Sequence[np.ndarray] = (), n: int | None = None,
              pad: float = 5.0) -> Grid:
    """Regular grid over a box holding every sample set, widened by ``pad`` kernel standard
    deviations (the largest of ``bandwidths``) on each side."""
    if not sample_sets:
        raise TypeError("auto_grid needs at least one sample set (sample_sets)")
    sample_sets = tuple(as_samples(s, "sample_sets") for s in sample_sets)
    d = sample_sets[0].shape[1]
    if d > 2:
        raise ValueError(f"grid-based metrics support d = 1 or 2, got d = {d}")
    if any(s.shape[1] != d for s in sample_sets):
        raise ValueError("sample_sets must all have the same dimension")
    if isinstance(bandwidths, (str, bytes)) or not isinstance(bandwidths, (tuple, list)):
        raise TypeError(f"bandwidths must be a sequence of (d, d) kernel covariances, got {type(bandwidths).__name__}")
    bandwidths = [check_finite_array(H, "bandwidths", ndim=2) for H in bandwidths]
    if any(H.shape != (d, d) for H in bandwidths):
        raise ValueError(f"bandwidths must be ({d}, {d}) matrices, matching the dimension of sample_sets")
    pad = check_real(pad, "pad", low=0.0, high=1e6)
    if n is not None:
        n = check_positive_int(n, "n_grid", minimum=2, maximum=10**8)
        check_allocation(float(n) ** d * (d + 2), "n_grid", "the grid")
    lo = np.min([s.min(axis=0) for s in sample_sets], axis=0)
    hi = np.max([s.max(axis=0) for s in sample_sets], axis=0)
    sig = np.max([np.sqrt(np.diag(H)) for H in bandwidths], axis=0) if bandwidths else 0.1 * (hi - lo + 1.0)
    if n is None:
        # At least 2049 (d = 1) / 201 (d = 2) points, and a step below 0.7 kernel standard
        # deviations where affordable (Riemann sums of a Gaussian are then exact to ~1e-17),
        # capped at 16385 / 401 points per axis.
        base, cap = (2049, 16385) if d == 1 else (201, 401)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            want = float(np.max(np.ceil((hi - lo + 2 * pad * sig) / (0.7 * sig)))) + 1
        n = int(min(max(base, want), cap)) if not math.isnan(want) else cap
    with np.errstate(over="ignore", invalid="ignore"):
        span_ok = np.all(np.isfinite(hi + pad * sig)) and np.all(np.isfinite(lo - pad * sig)) and np.all(
            np.isfinite((hi + pad * sig) - (lo - pad * sig)))
    if not span_ok:
        raise ValueError("sample_sets too spread out: the grid (widened by pad kernel deviations) spans more than "
                         "the float64 range; rescale the samples")
    return Grid.regular(lo - pad * sig, hi + pad * sig, check_positive_int(n, "n_grid", minimum=2))


def _densities_on_grid(items: list[Any], grid: Grid | None, n_grid: int | None, bandwidth: Any, factor: float,
                       method: str, tol: float | None, threads: int, backend: str) -> tuple[list[np.ndarray], Grid]:
    samples = [None if _is_density(it) else as_samples(it, name) for it, name in zip(items, ("p", "q"), strict=True)]
    dims = {s.shape[1] for s in samples if s is not None}
    if len(dims) > 1:
        raise ValueError(f"p and q must have the same dimension, got {sorted(dims)}")
    # Each kernel covariance once: auto_grid, the spacing check and the KDE all use it.
    Hs = [None if s is None else _bandwidth(s, bandwidth, factor, None, nm)
          for s, nm in zip(samples, ("p", "q"), strict=True)]
    g: Grid | None
    if grid is None:
        sets = [s for s in samples if s is not None]
        if not sets:
            raise ValueError("grid is required when both p and q are densities")
        g = auto_grid(*sets, bandwidths=[H for H in Hs if H is not None], n=n_grid)
    else:
        if dims:
            d = next(iter(dims))
        else:
            d = grid.dim if isinstance(grid, Grid) else len(grid) if isinstance(grid, tuple) else 1
        g, pts = _as_grid(grid, d)
        if g is None:
            raise ValueError("grid-based metrics need a tensor grid (Grid or tuple of axes), not points")
    if not g.is_regular:
        raise ValueError("grid-based metrics need a regular grid (equally spaced axes)")
    if g.dim > 2:
        raise ValueError(f"grid-based metrics support d = 1 or 2, got d = {g.dim}")
    check_choice(method, "method", KDE_METHODS)
    check_choice(backend, "backend", BACKENDS)
    threads = check_threads(threads)
    check_allocation(float(np.prod(np.array(g.shape, dtype=float))) * (g.dim + 2), "grid", "the KDE values")
    vals = []
    for it, s, H, name in zip(items, samples, Hs, ("p", "q"), strict=True):
        if isinstance(it, GaussianMixture):
            # pdf, not exp(logpdf): far grid points get density 0 instead of an overflow error.
            vals.append(np.asarray(it.pdf(g.points()), dtype=float).reshape(g.shape))
        elif s is None:
            logp = it.logpdf(g.points())
            if np.iscomplexobj(logp):
                raise TypeError(f"{name}.logpdf returned complex values; it must return real log densities")
            logp = np.asarray(logp, dtype=float).reshape(g.shape)
            if np.any(np.isnan(logp)):
                raise ValueError(f"{name}.logpdf returned NaN on the grid")
            vals.append(np.exp(logp))
        else:
            H = cast(np.ndarray, H)  # computed above for every sample set
            # A kernel narrower than the grid cells cannot be integrated on that grid: the
            # result would be a number in [0, 1] with no meaning. Say so instead.
            kernel_sd = float(np.sqrt(np.linalg.eigvalsh(np.atleast_2d(H)).min()))
            spacing = max(float(ax[1] - ax[0]) for ax in g.axes if len(ax) > 1)
            if kernel_sd < 0.5 * spacing:
                raise ValueError(f"KDE bandwidth (kernel sd {kernel_sd:.3g}) is smaller than half the grid spacing "
                                 f"({spacing:.3g}): pass a finer grid (n_grid), a larger bandwidth or factor")
            # kde() less its argument checks, done above (the bandwidth once, not three times)
            vals.append(_kde_values(s, np.full(len(s), 1.0 / len(s)), H, g, None, g.dim, method, tol, threads,
                                    backend))
    return vals, g


def hellinger(p: Any, q: Any, grid: Any = None, *, kind: str = "H", bandwidth: Any = "scott", factor: float = 1.0,
              method: str = "exact", tol: float | None = 1e-3, n_grid: int | None = None, threads: int = 0,
              backend: str = "cpp") -> float:
    """Hellinger distance between two laws in d = 1 or 2, each given by samples or a density.

    Parameters
    ----------
    p, q : array_like (n,) / (n, d) samples, or any object with ``logpdf(points)`` taking an
        (m, d) array (e.g. ``GaussianMixture``); samples are turned into Gaussian KDEs.
    grid : Grid or tuple of axes, optional
        Default: :func:`auto_grid` over the sample sets, widened by 5 kernel standard
        deviations (required when both are densities). A density's mass outside the
        grid is not counted.
    kind : "H" (H in [0, 1]), "H2" (H^2) or "cui" (2 H^2 = int (sqrt p - sqrt q)^2).
    bandwidth, factor, method, tol, threads, backend : see :func:`kde`.
    """
    check_choice(kind, "kind", HELLINGER_KINDS)
    (pv, qv), g = _densities_on_grid([p, q], grid, n_grid, bandwidth, factor, method, tol, threads, backend)
    return hellinger_grid(pv, qv, g.cell_volume, kind)
