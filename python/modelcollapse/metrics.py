"""Distances between laws (docs/metrics.md): Gaussian KDE, Hellinger, KL and total
variation on grids, Wasserstein (exact, 1-D, sliced, Gaussian closed forms) and
Kynkaanniemi et al.'s precision/recall.

Hellinger is H^2(p, q) = 1/2 int (sqrt p - sqrt q)^2, so H in [0, 1]; Cui et al. plot
int (sqrt p - sqrt q)^2 = 2 H^2 (``kind="cui"``). Densities from samples are Gaussian
KDEs with scipy's bandwidth convention (``scott`` / ``silverman`` factor times the
weighted sample covariance) times ``factor``; exact KDE agrees with
``scipy.stats.gaussian_kde`` to 1e-10 relative (typically ~1e-12; on regular grids it
uses exponential-free recurrences, see ``docs/metrics.md``). The binned mode (linear binning and a
truncated-kernel convolution) refines its binning grid until an a-priori bound on the
Hellinger distance to the exact KDE is below ``tol`` (default 1e-3); see
:func:`binned_error_bound` and ``docs/metrics.md``.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from scipy import linalg, stats

from . import _core
from ._validation import (
    as_seed,
    check_allocation,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from .mixture import GaussianMixture, _pow2_scale
from .reference import metrics as _ref
from .results import Record

BACKENDS = ("cpp", "numpy")
BANDWIDTH_RULES = ("scott", "silverman")
KDE_METHODS = ("exact", "binned")
HELLINGER_KINDS = ("H", "H2", "cui")
WASSERSTEIN_METHODS = ("exact", "sliced", "1d")
#: Largest n * m for which ``wasserstein(method="exact")`` builds the full cost matrix.
EXACT_OT_MAX_PAIRS = 25_000_000
#: Fraction of ``tol`` given to the kernel truncation (the rest goes to linear binning).
_TRUNCATION_SHARE = 0.1
_MAX_REFINE = 64


# ----------------------------------------------------------------------------- inputs
def as_samples(x: Any, name: str = "samples") -> np.ndarray:
    """Samples as a float64 (n, d) array: a 1-D array is n one-dimensional samples."""
    arr = check_finite_array(x, name, ndim=(1, 2))
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column (the dimension), got shape {arr.shape}")
    return arr


def _as_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = check_finite_array(weights, "weights", ndim=1)
    if w.shape[0] != n:
        raise ValueError(f"weights has {w.shape[0]} entries but there are {n} samples (one weight per sample)")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    total = w.sum()
    if not total > 0:
        raise ValueError("weights must have a positive sum")
    return np.ascontiguousarray(w / total)


def _is_density(obj: Any) -> bool:
    return hasattr(obj, "logpdf") and callable(obj.logpdf)


@dataclass(frozen=True)
class Grid:
    """A tensor grid: one increasing 1-D array of coordinates per axis (d = 1 or 2).

    Values on the grid have shape ``grid.shape`` (axis 0 first, ``indexing="ij"``).
    """

    axes: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if isinstance(self.axes, (str, bytes)) or not isinstance(self.axes, (tuple, list, np.ndarray)):
            raise TypeError(f"axes must be a tuple of 1-D arrays (one per axis), got {type(self.axes).__name__}")
        axes = []
        for a, ax in enumerate(self.axes):
            arr = check_finite_array(ax, f"grid axis {a}", ndim=1)
            if arr.size > 1:
                with np.errstate(over="ignore", invalid="ignore"):
                    step = np.diff(arr)
                if not np.all(np.isfinite(step)):
                    raise ValueError(f"grid axis {a} spans more than the float64 range (its steps overflow)")
                if np.any(step <= 0):
                    raise ValueError(f"grid axis {a} must be strictly increasing")
            axes.append(arr)
        if not axes:
            raise ValueError("axes must hold at least one axis (a grid needs one)")
        object.__setattr__(self, "axes", tuple(axes))

    @classmethod
    def regular(cls, lower: Sequence[float], upper: Sequence[float], n: int | Sequence[int]) -> Grid:
        """Equally spaced axes from ``lower`` to ``upper`` (one entry per axis) with ``n`` points each."""
        low = np.atleast_1d(check_finite_array(lower, "lower", ndim=(0, 1)))
        high = np.atleast_1d(check_finite_array(upper, "upper", ndim=(0, 1)))
        if high.shape != low.shape:
            raise ValueError(f"upper must have the shape of lower {low.shape}, got {high.shape}")
        counts: list[Any]
        if isinstance(n, numbers.Integral) and not isinstance(n, bool):
            counts = [n] * low.size
        elif isinstance(n, (tuple, list, np.ndarray)) and len(n) == low.size:
            counts = list(n)
        else:
            raise TypeError(f"n must be an int or one int per axis ({low.size}), got {n!r:.80}")
        ns = [check_positive_int(k, "n", minimum=1) for k in counts]
        if any(k > 1 and not hi > lo for k, lo, hi in zip(ns, low, high, strict=True)):
            raise ValueError(f"upper must be > lower on every axis, got lower={low.tolist()} upper={high.tolist()}")
        check_allocation(float(sum(ns)), "n", "the grid axes")
        return cls(tuple(np.linspace(lo, hi, int(k)) for lo, hi, k in zip(low, high, ns, strict=True)))

    @property
    def dim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(ax.size for ax in self.axes)

    @property
    def is_regular(self) -> bool:
        for ax in self.axes:
            if ax.size < 2:
                return False
            step = np.diff(ax)
            if not np.allclose(step, step[0], rtol=1e-9, atol=0.0):
                return False
        return True

    @property
    def steps(self) -> np.ndarray:
        return np.array([(ax[-1] - ax[0]) / (ax.size - 1) if ax.size > 1 else 1.0 for ax in self.axes])

    @property
    def cell_volume(self) -> float:
        """Volume of one cell (product of the steps); the grid must be regular."""
        if not self.is_regular:
            raise ValueError("cell_volume needs a regular grid (equally spaced axes)")
        return float(np.prod(self.steps))

    def points(self) -> np.ndarray:
        """All grid points as an (m, d) array, axis 0 slowest."""
        check_allocation(float(np.prod(np.array(self.shape, dtype=float))) * (self.dim + 1), "grid",
                         "the grid points")
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.ascontiguousarray(np.stack([m.ravel() for m in mesh], axis=1))


def _as_grid(grid: Any, d: int) -> tuple[Grid | None, np.ndarray | None]:
    """(Grid, None) for tensor grids, (None, points) for arbitrary points."""
    if isinstance(grid, Grid):
        g = grid
    elif isinstance(grid, tuple):
        g = Grid(grid)
    else:
        arr = check_finite_array(grid, "grid", ndim=(1, 2))
        if arr.ndim == 1:
            if d != 1:
                raise ValueError(f"grid is a 1-D array but the samples have d = {d}; pass a tuple of "
                                 f"{d} axes, a Grid, or an (m, {d}) array of points")
            g = Grid((arr,))
        else:
            if arr.shape[1] != d:
                raise ValueError(f"grid points must have {d} columns (the dimension), got shape {arr.shape}")
            return None, arr
    if g.dim != d:
        raise ValueError(f"grid has {g.dim} axes but the samples have d = {d}")
    return g, None


# ----------------------------------------------------------------------------- bandwidth
def kde_bandwidth(samples: Any, bandwidth: Any = "scott", factor: float = 1.0, weights: Any = None) -> np.ndarray:
    """Kernel covariance H (d, d) used by :func:`kde`.

    ``"scott"`` / ``"silverman"``: scipy's rule factor (n_eff^(-1/(d+4)), resp.
    (n_eff (d+2)/4)^(-1/(d+4)), n_eff = 1 / sum w_i^2) times the weighted sample covariance
    (``np.cov(..., aweights=w)``), exactly as ``scipy.stats.gaussian_kde``. A positive
    float is the kernel standard deviation h in every direction (H = h^2 I); a (d, d)
    symmetric positive definite matrix is H itself. ``factor`` multiplies the standard
    deviation (H is scaled by factor^2): Cui et al. use ``"silverman"`` with factor 1.5.
    (scipy's scalar ``bw_method=c`` is ``bandwidth=c**2 * np.cov(x.T)`` here.)
    """
    return _bandwidth(as_samples(samples), bandwidth, factor, weights, "samples")


def _check_kernel(H: np.ndarray, what: str) -> np.ndarray:
    """A kernel covariance the KDE kernels can use: finite, positive definite, with a finite
    inverse and log-determinant (a bandwidth of 1e-300 squares to 0; 1e200 to inf)."""
    bad = f"{what} gives the kernel covariance "
    if not np.all(np.isfinite(H)):
        raise ValueError(bad + "inf (overflow): use a smaller bandwidth or factor")
    try:
        L = np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(bad + "a matrix that is not positive definite in float64 (a variance underflows to 0): "
                         "use a larger bandwidth or factor") from None
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        finite = np.all(np.isfinite(np.linalg.inv(L))) and np.isfinite(np.sum(np.log(np.diag(L))))
    if not finite or np.min(np.diag(L)) < 1e-150:
        raise ValueError(bad + "a matrix too close to singular for float64 (kernel standard deviation below 1e-150): "
                         "use a larger bandwidth or factor")
    return H


def _bandwidth(x: np.ndarray, bandwidth: Any, factor: float, weights: Any, name: str) -> np.ndarray:
    """:func:`kde_bandwidth` for samples already checked; ``name`` is the samples' argument."""
    n, d = x.shape
    w = _as_weights(weights, n)
    f = check_real(factor, "factor", low=0.0, low_open=True)
    if isinstance(bandwidth, str):
        rule = check_choice(bandwidth, "bandwidth", BANDWIDTH_RULES)
        neff = 1.0 / np.sum(w * w)
        if n < 2 or neff <= 1.0 + 1e-12:
            raise ValueError(f"bandwidth={rule!r} needs at least two {name} with positive weight")
        if rule == "scott":
            rf = neff ** (-1.0 / (d + 4))
        else:
            rf = (neff * (d + 2) / 4.0) ** (-1.0 / (d + 4))
        with np.errstate(over="ignore", invalid="ignore"):
            cov = np.atleast_2d(np.cov(x.T, rowvar=True, bias=False, aweights=w))
        if not np.all(np.isfinite(cov)):
            raise ValueError(f"{name} too large: their covariance overflows float64 (rescale them)")
        H = cov * (rf * f) ** 2
        eig = np.linalg.eigvalsh(cov)
        scale = max(min(float(np.max(np.abs(x))), 1e154) ** 2, 1e-300)  # a float ** 2 past 1e154 raises
        if not eig[0] > 1e-13 * max(eig[-1], scale):
            raise ValueError(f"the weighted sample covariance of {name} is singular (identical samples, or samples on "
                             "a line/plane); pass an explicit bandwidth") from None
        return _check_kernel(H, f"bandwidth={rule!r} with factor={f:g}")
    if isinstance(bandwidth, numbers.Real) and not isinstance(bandwidth, bool):
        h = check_real(bandwidth, "bandwidth", low=0.0, low_open=True)
        return _check_kernel(np.eye(d) * (h * f) ** 2, f"bandwidth={h:g} with factor={f:g}")
    H = check_finite_array(bandwidth, "bandwidth", ndim=(0, 2))
    if H.ndim == 0:
        raise TypeError("bandwidth must be 'scott', 'silverman', a positive float or a (d, d) matrix")
    if H.shape != (d, d):
        raise ValueError(f"bandwidth matrix must have shape ({d}, {d}), got {H.shape}")
    if not np.allclose(H, H.T, rtol=1e-12, atol=0.0):
        raise ValueError("bandwidth matrix must be symmetric")
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError("bandwidth matrix must be positive definite") from None
    return _check_kernel(np.ascontiguousarray(H * f * f), f"the bandwidth matrix with factor={f:g}")


# ----------------------------------------------------------------------------- binned error bound
def binned_error_bound(bandwidth: Any, spacing: Sequence[float], radius: float, n_t: int = 21) -> float:
    """A-priori bound on the Hellinger distance H between the exact KDE and the binned one.

    Linear binning replaces each kernel N(x_i, H) by the mixture sum_c w_c N(g_c, H) over
    the corners g_c of the binning cell holding x_i (weights w_c, with mean x_i). H^2 is
    jointly convex, so H^2(exact, binned) <= max over cell positions of
    H^2(N(x, H), sum_c w_c N(g_c, H)) <= chi^2 / 2, with
    chi^2 + 1 = sum_{c,c'} w_c w_c' exp(D_c^T H^{-1} D_c') (D_c = g_c - x), maximised over
    the position of x in the cell (``n_t`` points per axis). Truncating the kernel where
    u^T H^{-1} u > radius^2 adds at most sqrt(P(chi2_d > radius^2) / 2) (H is a metric).
    """
    H = check_finite_array(bandwidth, "bandwidth", ndim=(0, 1, 2))
    H = np.atleast_2d(H) if H.ndim < 2 else H
    d = H.shape[0]
    if H.shape != (d, d):
        raise ValueError(f"bandwidth must be a (d, d) kernel covariance, got shape {H.shape}")
    _check_kernel(H, "bandwidth")
    h = check_finite_array(spacing, "spacing", ndim=(0, 1))
    if h.size != d or np.any(h <= 0):
        raise ValueError(f"spacing must hold {d} positive grid steps, got {h.tolist()}")
    radius = check_real(radius, "radius", low=0.0)
    n_t = check_positive_int(n_t, "n_t", minimum=2, maximum=10**6)
    check_allocation(float(n_t) ** d * 4.0 ** d * 3, "n_t", "the cell positions times corner pairs")
    with np.errstate(over="ignore", invalid="ignore"):
        out = _binned_error_bound(H, h, radius, n_t)
    if not math.isfinite(out):
        raise ValueError("spacing too large for this bandwidth: the error bound overflows float64 (it is no bound)")
    return out


def _binned_error_bound(bandwidth: Any, spacing: Sequence[float] | np.ndarray, radius: float, n_t: int = 21) -> float:
    """:func:`binned_error_bound` for checked arguments (the refinement loop calls it)."""
    H = np.atleast_2d(np.asarray(bandwidth, dtype=float))
    d = H.shape[0]
    P = np.linalg.inv(H)
    h = np.asarray(spacing, dtype=float).reshape(d)
    t = np.linspace(0.0, 1.0, n_t)
    ts = np.stack(np.meshgrid(*([t] * d), indexing="ij"), axis=-1).reshape(-1, d)  # (T, d)
    corners = np.stack(np.meshgrid(*([np.array([0.0, 1.0])] * d), indexing="ij"), axis=-1).reshape(-1, d)  # (C, d)
    D = (corners[None, :, :] - ts[:, None, :]) * h  # (T, C, d) offsets g_c - x
    W = np.prod(np.where(corners[None, :, :] == 1.0, ts[:, None, :], 1.0 - ts[:, None, :]), axis=-1)  # (T, C)
    G = np.einsum("tca,ab,tdb->tcd", D, P, D)  # (T, C, C)
    chi2 = np.einsum("tc,td,tcd->t", W, W, np.exp(G)) - 1.0
    chi2 = float(max(np.max(chi2), 0.0))
    trunc = float(stats.chi2.sf(radius * radius, d))
    return math.sqrt(chi2 / 2.0) + math.sqrt(trunc / 2.0)


def _truncation_radius(tol: float, d: int) -> float:
    """R with sqrt(P(chi2_d > R^2) / 2) <= share * tol."""
    p = 2.0 * (_TRUNCATION_SHARE * tol) ** 2
    return float(math.sqrt(stats.chi2.isf(p, d)))


def binned_plan(bandwidth: Any, grid: Grid, tol: float | None = 1e-3) -> dict[str, Any]:
    """Refinement, truncation radius, padding and error bound of a binned KDE on ``grid``.

    With ``tol=None`` the binning grid is the output grid (no refinement, radius for
    tol = 1e-3), as KDEpy's FFTKDE does; the returned ``bound`` then says what it costs.
    """
    if not isinstance(grid, Grid) or not grid.is_regular:
        raise TypeError(f"grid must be a regular Grid (equally spaced axes), got {grid!r:.80}")
    H = np.atleast_2d(check_finite_array(bandwidth, "bandwidth", ndim=(0, 1, 2)))
    d = H.shape[0]
    if H.shape != (d, d) or d != grid.dim:
        raise ValueError(f"bandwidth must be a ({grid.dim}, {grid.dim}) kernel covariance, got shape {H.shape}")
    _check_kernel(H, "bandwidth")
    if tol is not None:
        tol = check_real(tol, "tol", low=0.0, high=1.0, low_open=True)
    steps = grid.steps
    sig = np.sqrt(np.diag(H))
    R = _truncation_radius(1e-3 if tol is None else tol, d)
    refine = np.ones(d, dtype=np.int64)
    if tol is not None:
        target = (1.0 - _TRUNCATION_SHARE) * tol
        trunc = math.sqrt(float(stats.chi2.sf(R * R, d)) / 2.0)
        while _binned_error_bound(H, steps / refine, R) - trunc > target:
            ratio = np.max(steps / refine / sig) * 0.8
            new = np.maximum(refine, np.ceil(steps / (ratio * sig)).astype(np.int64))
            if np.any(new > _MAX_REFINE):
                raise ValueError(f"binned KDE cannot reach tol={tol} on this grid: the bandwidth is below "
                                 f"1/{_MAX_REFINE} of the grid step; use method='exact' or a finer grid")
            refine = new
    fine = steps / refine
    pad = np.ceil(R * sig / fine * (1 + 1e-12)).astype(np.int64)
    return {"refine": refine, "pad": pad, "radius": R, "fine_step": fine,
            "bound": _binned_error_bound(H, fine, R)}


# ----------------------------------------------------------------------------- KDE
#: Largest whitened exponent the exact grid kernel keeps (kGridCutoff in kde.hpp).
_GRID_CUTOFF = 690.0


def _exact_grid_axes(g: Grid, H: np.ndarray) -> list[tuple[float, float, int]] | None:
    """(start, step, count) per axis for the exact grid kernel, or None to use the points path.

    The kernel evaluates at start + j * step; the grid qualifies when d <= 2 and moving every
    grid coordinate to that arithmetic progression changes no kept term by more than 1e-12
    relative: |d(Q/2)| <= |L^{-1}(z - x)| * sum_a |L^{-1} e_a| delta_a, with
    |L^{-1}(z - x)| <= sqrt(2 * cutoff) for every kept term.
    """
    if g.dim > 2:
        return None
    Linv = np.linalg.inv(np.linalg.cholesky(H))
    axes, change = [], 0.0
    for a, ax in enumerate(g.axes):
        m = ax.size
        step = float((ax[-1] - ax[0]) / (m - 1)) if m > 1 else 1.0
        if not step > 0:
            return None
        dev = float(np.max(np.abs(ax - (ax[0] + np.arange(m) * step)))) if m > 1 else 0.0
        change += float(np.linalg.norm(Linv[:, a])) * dev
        axes.append((float(ax[0]), step, int(m)))
    if math.sqrt(2.0 * _GRID_CUTOFF) * change > 1e-12:
        return None
    return axes


def kde(samples: Any, grid: Any, bandwidth: Any = "scott", factor: float = 1.0, weights: Any = None,
        method: str = "exact", tol: float | None = 1e-3, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
    """Gaussian kernel density estimate f(z) = sum_i w_i N(z; x_i, H).

    Parameters
    ----------
    samples : array_like, shape (n,) or (n, d)
    grid : Grid, tuple of d 1-D axes, 1-D array (d = 1) or (m, d) array of points
        Tensor grids give values of shape ``grid.shape`` (``indexing="ij"``); points
        give shape (m,). Points work for any d with ``method="exact"``.
    bandwidth : "scott", "silverman", float or (d, d) array
        See :func:`kde_bandwidth`; ``factor`` multiplies the kernel standard deviation.
    weights : array_like, shape (n,), optional
        Non-negative sample weights (normalised to sum 1), as in scipy.
    method : "exact" or "binned"
        ``exact`` sums every kernel at every point (threaded C++, agrees with
        ``scipy.stats.gaussian_kde`` to 1e-10 relative wherever f(z) exceeds about
        1e-290 times the kernel's peak value). On a regular tensor grid in d = 1, 2 it
        uses exponential-free recurrences along the grid (see ``docs/metrics.md``).
        ``binned`` (d = 1, 2, regular grid) bins the samples linearly on a grid refined
        until :func:`binned_error_bound` <= ``tol`` (Hellinger distance to the exact KDE),
        then convolves with the kernel truncated at the radius that leaves at most tol / 10
        of that bound.
    tol : float or None
        Binned only; None bins on the output grid itself (no refinement guarantee).
    threads : int
        0 = all cores.
    backend : "cpp" or "numpy"
        ``numpy`` runs the reference implementation (slow, for checks).
    """
    x = as_samples(samples)
    n, d = x.shape
    w = _as_weights(weights, n)
    H = _bandwidth(x, bandwidth, factor, w, "samples")
    check_choice(method, "method", KDE_METHODS)
    check_choice(backend, "backend", BACKENDS)
    threads = check_threads(threads)
    g, pts = _as_grid(grid, d)
    n_points = cast(np.ndarray, pts).shape[0] if g is None else float(np.prod(np.array(g.shape, dtype=float)))
    check_allocation(float(n_points) * (d + 2), "grid", "the KDE values")
    out = _kde(x, w, H, g, pts, d, method, tol, threads, backend)
    if not np.all(np.isfinite(out)):
        raise ValueError("samples, grid and bandwidth give non-finite KDE values (float64 overflow): rescale the "
                         "samples or use a larger bandwidth")
    return out


def _kde(x: np.ndarray, w: np.ndarray, H: np.ndarray, g: Grid | None, pts: np.ndarray | None, d: int, method: str,
         tol: float | None, threads: int, backend: str) -> np.ndarray:
    if method == "exact":
        if backend == "cpp" and g is not None:
            axes = _exact_grid_axes(g, H)
            if axes is not None:
                return _core.kde_exact_grid(x, w, H, axes, threads)
        points = cast(np.ndarray, pts) if g is None else g.points()
        if backend == "cpp":
            vals = _core.kde_exact(x, w, H, points, threads)
        else:
            vals = _ref.kde_exact(x, w, H, points)
        return vals if g is None else vals.reshape(g.shape)
    if g is None or d > 2:
        raise ValueError("method='binned' needs a regular grid in d = 1 or 2 (a Grid or a tuple of equally "
                         "spaced axes); use method='exact' for arbitrary points")
    if not g.is_regular:
        raise ValueError("method='binned' needs equally spaced grid axes with at least 2 points each")
    if tol is not None:
        tol = check_real(tol, "tol", low=0.0, high=1.0, low_open=True)
    plan = binned_plan(H, g, tol)
    fine_axes = [(float(ax[0]), float(step), int(ax.size), int(r), int(p))
                 for ax, step, r, p in zip(g.axes, g.steps, plan["refine"], plan["pad"], strict=True)]
    if backend == "cpp":
        return _core.kde_binned(x, w, H, fine_axes, plan["radius"], threads)
    return _ref.kde_binned(x, w, H, fine_axes, plan["radius"])


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
    g: Grid | None
    if grid is None:
        sets = [s for s in samples if s is not None]
        if not sets:
            raise ValueError("grid is required when both p and q are densities")
        bws = [_bandwidth(s, bandwidth, factor, None, nm)
               for s, nm in zip(samples, ("p", "q"), strict=True) if s is not None]
        g = auto_grid(*sets, bandwidths=bws, n=n_grid)
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
    vals = []
    for it, s, name in zip(items, samples, ("p", "q"), strict=True):
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
            # A kernel narrower than the grid cells cannot be integrated on that grid: the
            # result would be a number in [0, 1] with no meaning. Say so instead.
            H = _bandwidth(s, bandwidth, factor, None, name)
            kernel_sd = float(np.sqrt(np.linalg.eigvalsh(np.atleast_2d(H)).min()))
            spacing = max(float(ax[1] - ax[0]) for ax in g.axes if len(ax) > 1)
            if kernel_sd < 0.5 * spacing:
                raise ValueError(f"KDE bandwidth (kernel sd {kernel_sd:.3g}) is smaller than half the grid spacing "
                                 f"({spacing:.3g}): pass a finer grid (n_grid), a larger bandwidth or factor")
            vals.append(kde(s, g, bandwidth, factor, method=method, tol=tol, threads=threads, backend=backend))
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


# ----------------------------------------------------------------------------- Wasserstein
def wasserstein(x: Any, y: Any, p: int = 2, method: str = "exact", n_projections: int = 200, *, seed: Any = 0,
                threads: int = 0, backend: str = "cpp") -> float:
    """Wasserstein distance W_p (not W_p^p) between two empirical laws with uniform weights.

    ``exact``: optimal transport through POT's ``ot.emd2`` on the full cost matrix (up to
    n m = 2.5e7 pairs). ``1d``: exact by sorting (d = 1, any sizes). ``sliced``: the sliced
    distance (mean over ``n_projections`` random unit directions of W_p^p of the
    projections)^(1/p); directions come from the counter-based RNG (``seed``), so the result
    does not depend on ``threads``.
    """
    xs, ys = as_samples(x, "x"), as_samples(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {xs.shape[1]} and {ys.shape[1]}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r:.80}")
    check_choice(method, "method", WASSERSTEIN_METHODS)
    check_choice(backend, "backend", BACKENDS)
    threads = check_threads(threads)
    # W_p is homogeneous (W_p(cx, cy) = c W_p(x, y)): samples past ~1e150, whose squared
    # distances would overflow, are divided by a power of two (exact) and the result scaled back.
    top = max(float(np.max(np.abs(xs))), float(np.max(np.abs(ys))))
    if top >= 1e140:
        c = float(_pow2_scale(np.array(top)))
        out = c * wasserstein(xs / c, ys / c, p, method, n_projections, seed=seed, threads=threads, backend=backend)
        if not math.isfinite(out):
            raise ValueError("x and y too large: their Wasserstein distance overflows float64")
        return out
    if method == "1d":
        if xs.shape[1] != 1:
            raise ValueError(f"method='1d' needs one-dimensional samples, got d = {xs.shape[1]}")
        if backend == "cpp":
            val = _core.wasserstein_1d_pow(xs[:, 0], ys[:, 0], float(p))
        else:
            val = _ref.wasserstein_1d_pow(xs[:, 0], ys[:, 0], p)
        return float(val ** (1.0 / p))
    if method == "exact":
        import ot

        n, m = xs.shape[0], ys.shape[0]
        if n * m > EXACT_OT_MAX_PAIRS:
            raise ValueError(f"method='exact' builds an {n} x {m} cost matrix (over {EXACT_OT_MAX_PAIRS} entries); "
                             "use method='sliced' (or '1d' in one dimension)")
        M = ot.dist(xs, ys, metric="sqeuclidean" if p == 2 else "euclidean")
        a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
        cost = float(ot.emd2(a, b, M, numItermax=max(1_000_000, 50 * (n + m))))
        return max(cost, 0.0) ** (1.0 / p)
    L = check_positive_int(n_projections, "n_projections")
    check_allocation(float(L) * (xs.shape[1] + 2), "n_projections", "the projections")
    key = as_seed(seed)
    theta = _core.sliced_projections(key, L, xs.shape[1])
    if backend == "cpp":
        vals = _core.sliced_wp_pow(xs, ys, theta, float(p), threads)
    else:
        vals = _ref.sliced_wp_pow(xs, ys, theta, p)
    return float(np.mean(vals) ** (1.0 / p))


def sliced_projections(n_projections: int, d: int, *, seed: Any = 0) -> np.ndarray:
    """The unit directions ``wasserstein(method="sliced")`` uses for this seed, (L, d)."""
    key = as_seed(seed)
    L = check_positive_int(n_projections, "n_projections")
    d = check_positive_int(d, "d")
    check_allocation(float(L) * d, "n_projections and d", "the directions")
    return _core.sliced_projections(key, L, d)


def _gaussian_params(mean: Any, cov: Any, mean_name: str, cov_name: str) -> tuple[np.ndarray, np.ndarray]:
    m = np.atleast_1d(check_finite_array(mean, mean_name, ndim=(0, 1)))
    scalar = np.ndim(cov) == 0
    C = check_finite_array(cov, cov_name, ndim=(0, 1, 2))
    d = m.size
    if scalar:
        C = np.eye(d) * float(C.ravel()[0])
    elif C.ndim == 1:
        if C.size != d:
            raise ValueError(f"{cov_name} (a vector: diagonal covariance) must have {d} entries, got {C.size}")
        C = np.diag(C)
    if C.shape != (d, d):
        raise ValueError(f"{cov_name} must have shape ({d}, {d}) to match {mean_name} (dimension {d}), got {C.shape}")
    # Cholesky reads one triangle only: check the other agrees, so that a non-symmetric
    # matrix is refused instead of silently half-read.
    if not np.array_equal(C, C.T):
        if not np.allclose(C, C.T, rtol=0.0, atol=1e-12 * float(np.max(np.abs(C)))):
            raise ValueError(f"{cov_name} must be symmetric (got a matrix with C != C.T)")
        C = 0.5 * (C + C.T)
    try:
        np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        raise ValueError(f"{cov_name} must be symmetric positive definite") from None
    return m, C


def _gaussian_pair(mean1: Any, cov1: Any, mean2: Any, cov2: Any):
    """Checked parameters, and the power of two c they are divided by when their scale is far
    from 1 (c = 1 otherwise, so ordinary inputs give bit-identical results)."""
    m1, C1 = _gaussian_params(mean1, cov1, "mean1", "cov1")
    m2, C2 = _gaussian_params(mean2, cov2, "mean2", "cov2")
    if m1.size != m2.size:
        raise ValueError(f"mean1 and mean2 must have the same dimension, got {m1.size} and {m2.size}")
    top = max(float(np.max(np.abs(m1))), float(np.max(np.abs(m2))),
              math.sqrt(float(np.max(np.abs(C1)))), math.sqrt(float(np.max(np.abs(C2)))))
    c = 1.0
    if top > 1e100 or top < 1e-100:
        c = float(np.ldexp(1.0, int(math.ceil(math.log2(top)))))
        m1, m2, C1, C2 = m1 / c, m2 / c, C1 / (c * c), C2 / (c * c)
        for C, name in ((C1, "cov1"), (C2, "cov2")):  # rescaled: still positive definite?
            try:
                np.linalg.cholesky(C)
            except np.linalg.LinAlgError:
                raise ValueError(f"{name} too ill-conditioned for float64 after rescaling (eigenvalues span more "
                                 "than ~1e300)") from None
    return m1, C1, m2, C2, c


def gaussian_w2(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> float:
    """W2 between N(m1, C1) and N(m2, C2): |m1 - m2|^2 + tr(C1 + C2 - 2 (C2^1/2 C1 C2^1/2)^1/2).

    Covariances may be scalars (isotropic), vectors (diagonal) or symmetric positive
    definite matrices (a non-symmetric matrix is refused).
    """
    m1, C1, m2, C2, c = _gaussian_pair(mean1, cov1, mean2, cov2)
    s2 = np.real(linalg.sqrtm(C2))
    cross = np.real(linalg.sqrtm(s2 @ C1 @ s2))
    w2 = float(np.sum((m1 - m2) ** 2) + np.trace(C1 + C2 - 2.0 * cross))
    out = math.sqrt(max(w2, 0.0)) * c  # W2 is homogeneous: scale back
    if not math.isfinite(out):
        raise ValueError("mean1, cov1, mean2, cov2 too large: W2 overflows float64")
    return out


def gaussian_kl(mean1: Any, cov1: Any, mean2: Any, cov2: Any) -> float:
    """KL(N(m1, C1) || N(m2, C2)) = 1/2 [tr(C2^-1 C1) + (m2-m1)^T C2^-1 (m2-m1) - d + log det C2/det C1].

    Covariances as in :func:`gaussian_w2`.
    """
    m1, C1, m2, C2, _ = _gaussian_pair(mean1, cov1, mean2, cov2)  # KL is scale-invariant
    d = m1.size
    L2 = np.linalg.cholesky(C2)
    A = linalg.solve_triangular(L2, C1, lower=True)
    A = linalg.solve_triangular(L2, A.T, lower=True)  # L2^-1 C1 L2^-T
    z = linalg.solve_triangular(L2, m2 - m1, lower=True)
    logdet1 = 2.0 * np.log(np.diag(np.linalg.cholesky(C1))).sum()
    logdet2 = 2.0 * np.log(np.diag(L2)).sum()
    with np.errstate(over="ignore", invalid="ignore"):
        out = float(0.5 * (np.trace(A) + z @ z - d + logdet2 - logdet1))
    if not math.isfinite(out):
        raise ValueError("cov2 nearly singular relative to cov1 (or mean1 - mean2 too large): KL overflows float64")
    return out


# ----------------------------------------------------------------------------- precision / recall
@dataclasses.dataclass(frozen=True)
class PrecisionRecall(Record):
    """Output of :func:`precision_recall`; unpacks as ``precision, recall = ...``."""

    precision: float
    recall: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.precision, self.recall))


def _inside_kdtree(ref: np.ndarray, radii: np.ndarray, query: np.ndarray, tree: Any) -> np.ndarray:
    """Whether each query point lies in some ball B(ref_i, radii_i), exactly."""
    k = min(ref.shape[0], 32)
    dist, idx = tree.query(query, k=k)
    dist, idx = dist.reshape(query.shape[0], k), idx.reshape(query.shape[0], k)
    inside = np.any(dist <= radii[idx], axis=1)
    rmax = radii.max()
    # Undecided: no hit among the k nearest, yet farther balls could still be large enough.
    todo = np.flatnonzero(~inside & (dist[:, -1] <= rmax))
    if todo.size and k < ref.shape[0]:
        for j, cand in zip(todo, tree.query_ball_point(query[todo], r=rmax), strict=True):
            cand = np.asarray(cand, dtype=np.int64)
            if cand.size:
                inside[j] = bool(np.any(np.linalg.norm(ref[cand] - query[j], axis=1) <= radii[cand]))
    return inside


def precision_recall(real: Any, fake: Any, k: int = 4, *, backend: str = "scipy") -> PrecisionRecall:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k nearest neighbours.

    The real manifold is the union of balls around the real samples with radius the
    distance to their k-th nearest other real sample; precision is the share of fake
    samples inside it, recall the share of real samples inside the fake manifold. Works
    on raw samples or on features. ``backend``: "scipy" (cKDTree) or "numpy" (brute force).
    """
    from scipy.spatial import cKDTree

    r, f = as_samples(real, "real"), as_samples(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake must have the same dimension, got {r.shape[1]} and {f.shape[1]}")
    k = check_positive_int(k, "k")
    if r.shape[0] <= k or f.shape[0] <= k:
        raise ValueError(f"real and fake both need more than k = {k} samples, got {r.shape[0]} and {f.shape[0]}")
    check_choice(backend, "backend", ("scipy", "numpy"))
    if backend == "numpy":
        return PrecisionRecall(*_ref.precision_recall(r, f, k))
    tr, tf = cKDTree(r), cKDTree(f)
    rad_r = tr.query(r, k=k + 1)[0][:, k]
    rad_f = tf.query(f, k=k + 1)[0][:, k]
    precision = float(np.mean(_inside_kdtree(r, rad_r, f, tr)))
    recall = float(np.mean(_inside_kdtree(f, rad_f, r, tf)))
    return PrecisionRecall(precision, recall)


__all__ = [
    "Grid", "auto_grid", "kde", "kde_bandwidth", "binned_error_bound", "binned_plan", "hellinger",
    "hellinger_grid", "kl_grid", "tv_grid", "wasserstein", "sliced_projections", "gaussian_w2",
    "gaussian_kl", "precision_recall", "PrecisionRecall",
]
