"""Gaussian KDE: bandwidth rules, the binned mode's a-priori error bound, exact and binned evaluation."""
from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from typing import Any, cast

import numpy as np
from scipy import special  # chi2 tails: special.chdtrc/chdtri are what stats.chi2.sf/isf call, minus ~1 ms of overhead

from .. import _core
from .._types import BACKENDS
from .._validation import (
    check_allocation,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from ..reference import metrics as _ref
from ._grid import _MAX_REFINE, _TRUNCATION_SHARE, BANDWIDTH_RULES, KDE_METHODS, Grid, _as_grid, _as_weights, as_samples


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
    if H.shape[0] <= 2 and (H.shape[0] == 1 or (H[0, 1] == 0.0 and H[1, 0] == 0.0)):
        # Diagonal (every scalar bandwidth, and diagonal matrices in d = 2): the checks below in
        # scalars, without ~5 numpy linear-algebra calls (70 us, most of a small binned KDE).
        # LAPACK's Cholesky of a diagonal matrix is diag(sqrt(H_aa)) and fails iff some H_aa
        # <= 0; with sqrt(H_aa) >= 1e-150 the inverse and the log-determinant are finite.
        diag = [float(H[a, a]) for a in range(H.shape[0])]
        if not all(math.isfinite(v) for v in diag):
            raise ValueError(bad + "inf (overflow): use a smaller bandwidth or factor")
        if not all(v > 0.0 for v in diag):
            raise ValueError(bad + "a matrix that is not positive definite in float64 (a variance underflows to "
                             "0): use a larger bandwidth or factor")
        if min(math.sqrt(v) for v in diag) < 1e-150:
            raise ValueError(bad + "a matrix too close to singular for float64 (kernel standard deviation below "
                             "1e-150): use a larger bandwidth or factor")
        return H
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


def _bandwidth(x: np.ndarray, bandwidth: Any, factor: float, weights: Any, name: str,
               weights_checked: bool = False) -> np.ndarray:
    """:func:`kde_bandwidth` for samples already checked; ``name`` is the samples' argument.
    ``weights_checked``: the caller has already checked (and normalised) ``weights``, so a
    bandwidth that does not use them (a float or a matrix) skips their O(n) check."""
    n, d = x.shape
    if not (weights_checked and not isinstance(bandwidth, str)):
        # the rules normalise the weights here even when the caller did (kde): their sum is
        # 1 only to rounding, and neff and the covariance have always used the re-normalised copy
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
    trunc = float(special.chdtrc(d, radius * radius))
    return math.sqrt(chi2 / 2.0) + math.sqrt(trunc / 2.0)


@functools.lru_cache(maxsize=64)
def _truncation_radius(tol: float, d: int) -> float:
    """R with sqrt(P(chi2_d > R^2) / 2) <= share * tol."""
    p = 2.0 * (_TRUNCATION_SHARE * tol) ** 2
    return float(math.sqrt(special.chdtri(d, p)))


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
    return _plan(H, grid, tol, bound=True)


def _plan(H: np.ndarray, grid: Grid, tol: float | None, bound: bool) -> dict[str, Any]:
    """:func:`binned_plan` for checked arguments; ``bound=False`` leaves out the error bound
    (``None``), which :func:`kde` does not use: with ``tol=None`` it is most of the time
    spent outside the compiled kernel."""
    d = H.shape[0]
    steps = grid.steps
    sig = np.sqrt(np.diag(H))
    R = _truncation_radius(1e-3 if tol is None else tol, d)
    refine = np.ones(d, dtype=np.int64)
    last = None  # the bound at the final refinement, when the loop computed it
    if tol is not None:
        target = (1.0 - _TRUNCATION_SHARE) * tol
        trunc = math.sqrt(float(special.chdtrc(d, R * R)) / 2.0)
        while (last := _binned_error_bound(H, steps / refine, R)) - trunc > target:
            ratio = np.max(steps / refine / sig) * 0.8
            new = np.maximum(refine, np.ceil(steps / (ratio * sig)).astype(np.int64))
            if np.any(new > _MAX_REFINE):
                raise ValueError(f"binned KDE cannot reach tol={tol} on this grid: the bandwidth is below "
                                 f"1/{_MAX_REFINE} of the grid step; use method='exact' or a finer grid")
            refine = new
    fine = steps / refine
    pad = np.ceil(R * sig / fine * (1 + 1e-12)).astype(np.int64)
    return {"refine": refine, "pad": pad, "radius": R, "fine_step": fine,
            "bound": (last if last is not None else _binned_error_bound(H, fine, R)) if bound else None}


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
    # |L^{-1} e_a| in closed form for d <= 2 (L = [[l00, 0], [l10, l11]]): numpy's cholesky and
    # inv cost ~50 us a call, a measurable part of a 1-D exact grid call at n = 5000
    # (docs/metrics.md, "Performance")
    if g.dim == 1:
        col_norms = [1.0 / math.sqrt(float(H[0, 0]))]
    else:
        l00 = math.sqrt(float(H[0, 0]))
        l10 = float(H[1, 0]) / l00
        l11 = math.sqrt(float(H[1, 1]) - l10 * l10)
        col_norms = [math.hypot(1.0 / l00, l10 / (l00 * l11)), 1.0 / l11]
    axes, change = [], 0.0
    for a, ax in enumerate(g.axes):
        m = ax.size
        step = float((ax[-1] - ax[0]) / (m - 1)) if m > 1 else 1.0
        if not step > 0:
            return None
        dev = float(np.max(np.abs(ax - (ax[0] + np.arange(m) * step)))) if m > 1 else 0.0
        change += col_norms[a] * dev
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
        uses exponential-free recurrences along the grid, and in d = 2 with a diagonal
        bandwidth a matrix product of per-axis factors (``docs/metrics.md``, "Performance").
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
    H = _bandwidth(x, bandwidth, factor, w, "samples", weights_checked=True)
    check_choice(method, "method", KDE_METHODS)
    check_choice(backend, "backend", BACKENDS)
    threads = check_threads(threads)
    g, pts = _as_grid(grid, d)
    n_points = cast(np.ndarray, pts).shape[0] if g is None else float(np.prod(np.array(g.shape, dtype=float)))
    check_allocation(float(n_points) * (d + 2), "grid", "the KDE values")
    return _kde_values(x, w, H, g, pts, d, method, tol, threads, backend)


def _kde_values(x: np.ndarray, w: np.ndarray, H: np.ndarray, g: Grid | None, pts: np.ndarray | None, d: int,
                method: str, tol: float | None, threads: int, backend: str) -> np.ndarray:
    """:func:`kde` for checked arguments (hellinger calls it with bandwidths it already has)."""
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
    plan = _plan(H, g, tol, bound=False)  # H was checked by _bandwidth
    fine_axes = [(float(ax[0]), float(step), int(ax.size), int(r), int(p))
                 for ax, step, r, p in zip(g.axes, g.steps, plan["refine"], plan["pad"], strict=True)]
    if backend == "cpp":
        if d == 2 and (H[0, 1] != 0.0 or H[1, 0] != 0.0):
            return _binned_full_fft(x, w, H, fine_axes, plan["radius"], threads)
        return _core.kde_binned(x, w, H, fine_axes, plan["radius"], threads)
    return _ref.kde_binned(x, w, H, fine_axes, plan["radius"])


def _binned_full_fft(x: np.ndarray, w: np.ndarray, H: np.ndarray, axes_spec: list[tuple[float, float, int, int, int]],
                     radius: float, threads: int) -> np.ndarray:
    """2-D binned KDE with a full (non-diagonal) bandwidth by FFT: the same binned density
    and truncated kernel as :func:`modelcollapse.reference.metrics.kde_binned`, whose direct
    sum out[j] = sum_o B[j r + o] k[o] costs (output points) x (kernel cells) and is
    not separable. Split the fine offsets by their residue a = o mod r (per axis):
    out = sum_a (B_a correlated with k_a), where B_a = B[a::r] and k_a = k[a::r] live on the
    coarse grid; each correlation is a product of FFTs, summed over the r0 r1 residues
    before one inverse FFT. Work ~ (fine grid points) log, and the result equals the direct
    sum to FFT rounding (~1e-15 of the peak; docs/metrics.md, binned KDE). Tiny negative
    values from that rounding are set to 0 (densities must be non-negative)."""
    from scipy import fft as sfft  # loaded on first use (docs/benchmarks.md, import time)

    B = _ref.linear_binning(x, w, axes_spec)
    k = _ref.binned_kernel_2d(H, axes_spec, radius)
    (_, _, c0, r0, _), (_, _, c1, r1, _) = axes_spec
    K0, K1 = k.shape
    # Coarse lengths: outputs j < c and residue offsets o' < ceil(K / r) reach index
    # c + ceil(K / r) - 2 < N, so the circular correlation never wraps.
    N0 = sfft.next_fast_len(c0 + -(-K0 // r0) - 1, real=True)
    N1 = sfft.next_fast_len(c1 + -(-K1 // r1) - 1, real=True)
    Bp = np.zeros((N0 * r0, N1 * r1))
    m0, m1 = min(B.shape[0], N0 * r0), min(B.shape[1], N1 * r1)
    Bp[:m0, :m1] = B[:m0, :m1]  # fine indices past N r are never reached by an output
    Kp = np.zeros((N0 * r0, N1 * r1))
    Kp[:K0, :K1] = k
    # (N0 r0, N1 r1) -> (r0, r1, N0, N1): plane (a, b) holds fine index (i r0 + a, j r1 + b)
    Bs = Bp.reshape(N0, r0, N1, r1).transpose(1, 3, 0, 2)
    Ks = Kp.reshape(N0, r0, N1, r1).transpose(1, 3, 0, 2)
    workers = -1 if threads == 0 else threads
    S = np.einsum("abij,abij->ij", sfft.rfft2(Bs, workers=workers), sfft.rfft2(Ks, workers=workers).conj())
    out = sfft.irfft2(S, s=(N0, N1), workers=workers)[:c0, :c1]
    return np.maximum(out, 0.0)
