"""Hermite coordinates of laws: moments from samples (compiled), analytic moments of
Gaussian mixtures, degree energies and Gram-Charlier reconstructions.

Probabilists' Hermite polynomials He_n (He_{n+1} = x He_n - n He_{n-1}) are orthogonal
under N(0, 1) with E[He_m He_n] = n! delta_mn; multivariate He_alpha(x) = prod_i He_{alpha_i}(x_i).
The Hermite coordinates of a law p are c_alpha(p) = E_p[He_alpha(X)]; this module works with
the orthonormal ones g_alpha = c_alpha / sqrt(alpha!) (``normalized=True``, the default),
which stay O(1) at high degree. Mehler: c_alpha(S_t p) = exp(-|alpha| t) c_alpha(p), so the
smoothing S_t (and the truncated-diffusion recursion) acts diagonally on these coordinates.

Multi-indices are graded: all alpha with |alpha| <= degree, by total degree, then
lexicographically decreasing (``multi_indices(d, degree)``); in 1-D index n is degree n.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, cast

import numpy as np

from .. import _core
from .._types import BACKENDS
from .._validation import check_allocation, check_choice, check_finite_array, check_positive_int, check_threads
from ..mixture import GaussianMixture
from ..reference import hermite as _ref
from . import _hermite_basis as _basis

MAX_DIM = 10
#: Most entries M * d of one multi-index table: it is enumerated in Python (~ a second per 1e7).
MAX_INDEX_ENTRIES = 20_000_000
#: Most terms n * M (samples times multi-indices) :func:`hermite_moments` evaluates (~ a minute).
MAX_MOMENT_TERMS = 2 * 10**10


def _n_indices(d: int, degree: int) -> float:
    """Number of multi-indices alpha in N^d with |alpha| <= degree, C(d + degree, d) (inf when huge)."""
    log_count = math.lgamma(d + degree + 1.0) - math.lgamma(d + 1.0) - math.lgamma(degree + 1.0)
    return float(math.comb(d + degree, d)) if log_count < 60.0 else math.inf


def _check_index_count(d: int, degree: int) -> int:
    """Refuse (d, degree) whose multi-index table is too large to build, before building it."""
    count = _n_indices(d, degree)
    if count * d > MAX_INDEX_ENTRIES:
        raise ValueError(f"degree and d too large: {count:.3g} multi-indices of dimension {d} (|alpha| <= {degree}) "
                         f"exceed the limit of {MAX_INDEX_ENTRIES:.3g} entries; lower degree")
    check_allocation(count * (d + 4), "degree", "the multi-index table")
    return int(count)


def multi_indices(d: int, degree: int) -> np.ndarray:
    """All multi-indices alpha in N^d with |alpha| <= degree, graded order; shape (M, d)."""
    d = check_positive_int(d, "d")
    degree = check_positive_int(degree, "degree", minimum=0)
    _check_index_count(d, degree)
    return _basis.multi_indices(d, degree)


def _log_factorial(idx: np.ndarray) -> np.ndarray:
    from scipy.special import gammaln

    return gammaln(idx + 1.0).sum(axis=-1)


@dataclasses.dataclass
class HermiteMoments:
    """Hermite coordinates of a law in R^d for all |alpha| <= degree.

    Attributes
    ----------
    indices : (M, d) graded multi-indices.
    values : (M,) orthonormal coordinates g_alpha = E[He_alpha(X)] / sqrt(alpha!).
    std_errors : (M,) standard errors of ``values`` (sample moments only; None for analytic).
    n_samples : number of samples (None for analytic moments).
    """

    indices: np.ndarray
    values: np.ndarray
    std_errors: np.ndarray | None = None
    n_samples: int | None = None

    def __post_init__(self) -> None:
        idx = check_finite_array(self.indices, "indices", ndim=2)
        if np.any(idx < 0) or np.any(idx != np.round(idx)):
            raise ValueError("indices must be non-negative integers (one multi-index per row)")
        self.indices = idx.astype(np.int64)
        for field in ("values", "std_errors"):
            v = getattr(self, field)
            if v is None and field == "std_errors":
                continue
            v = check_finite_array(v, field, ndim=1)
            if v.shape[0] != idx.shape[0]:
                raise ValueError(f"{field} must have one entry per row of indices ({idx.shape[0]}), got {v.shape[0]}")
            setattr(self, field, v)
        if self.n_samples is not None:
            self.n_samples = check_positive_int(self.n_samples, "n_samples")

    @property
    def dim(self) -> int:
        return int(self.indices.shape[1])

    @property
    def degree(self) -> int:
        return int(self.indices.sum(axis=1).max())

    @property
    def total_degrees(self) -> np.ndarray:
        return self.indices.sum(axis=1)

    def raw(self) -> np.ndarray:
        """Unnormalised coordinates c_alpha = E[He_alpha(X)] = sqrt(alpha!) g_alpha."""
        return self.values * np.exp(0.5 * _log_factorial(self.indices))

    def energies(self, unbiased: bool = False) -> np.ndarray:
        """Degree energies E_n = sum_{|alpha| = n} c_alpha^2 / alpha! = sum g_alpha^2, n = 0..degree.

        Parameters
        ----------
        unbiased : bool
            For sample moments: the U-statistic sum_alpha (gbar_alpha^2 - se_alpha^2), the
            unbiased estimate of the law's E_n (the plug-in gbar^2 is biased up by
            Var(h_alpha)/n, the :meth:`noise_floor`; docs/truncation.md, section
            "A5: digits"). Needs ``std_errors``; it can be negative where E_n is below the floor.
        """
        if not isinstance(unbiased, (bool, np.bool_)):
            raise TypeError(f"unbiased must be True or False, got {type(unbiased).__name__}")
        sq = self.values ** 2
        if unbiased:
            sq = sq - self._squared_errors("unbiased energies")
        return np.bincount(self.total_degrees, weights=sq, minlength=self.degree + 1)

    def noise_floor(self) -> np.ndarray:
        """Per degree, sum_{|alpha| = n} se_alpha^2: the plug-in energies' bias and the scale
        below which an energy cannot be told from 0 with these samples."""
        return np.bincount(self.total_degrees, weights=self._squared_errors("the noise floor"),
                           minlength=self.degree + 1)

    def _squared_errors(self, what: str) -> np.ndarray:
        if self.std_errors is None:
            raise ValueError(f"{what} need sample moments with std_errors (hermite_moments(..., std_errors=True))")
        return self.std_errors ** 2

    def __getitem__(self, alpha: Any) -> float:
        """g_alpha for a multi-index (tuple) or, in 1-D, a degree n."""
        key = (int(cast(Any, alpha)),) if np.isscalar(alpha) else tuple(int(a) for a in alpha)
        hits = np.flatnonzero((self.indices == np.asarray(key)).all(axis=1))
        if hits.size == 0:
            raise KeyError(f"multi-index {key} not stored (degree {self.degree}, d = {self.dim})")
        return float(self.values[hits[0]])


def _as_points(x: Any, finite: bool = True) -> np.ndarray:
    arr = check_finite_array(x, "x", ndim=(1, 2), finite=finite)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] < 1:
        raise ValueError("x must hold at least one sample")
    if arr.shape[1] > MAX_DIM:
        raise ValueError(f"x has dimension {arr.shape[1]}; multivariate Hermite moments support d <= {MAX_DIM}")
    return arr


@functools.lru_cache(maxsize=16)
def _cached_tables(d: int, degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(indices, parent, dim, order) of :func:`hermite_moments`, built once per (d, degree):
    Python loops over the multi-indices, 2-9% of a 1e6-sample call. Read-only, since they
    are shared between calls (HermiteMoments keeps its own copy of the indices)."""
    idx = _basis.multi_indices(d, degree)
    tables = (idx, *_basis.index_table(idx))
    for a in tables:
        a.setflags(write=False)
    return tables


def hermite_moments(x: Any, degree: int, *, std_errors: bool = False, threads: int = 0,
                    backend: str = "cpp") -> HermiteMoments:
    """Orthonormal Hermite moments g_alpha = mean_i He_alpha(x_i)/sqrt(alpha!) for |alpha| <= degree.

    Parameters
    ----------
    x : array_like, shape (n,) or (n, d), d <= 10
        Samples (finite).
    degree : int >= 0
        Maximal total degree D (1-D: any, e.g. 60 or more; the normalised recurrence keeps
        high degrees accurate).
    std_errors : bool
        Also return standard errors sqrt((mean h^2 - mean h^2) / (n - 1)).
    threads : int
        Threads for the compiled kernel (0 = all cores). Results do not depend on it.
    backend : "cpp" | "numpy"

    Returns
    -------
    HermiteMoments
    """
    # Finiteness later: the compiled kernel reads every sample anyway, and a NaN or inf one
    # makes a degree-1 moment non-finite (a scan up front was most of the call outside the
    # kernel at 1e6 samples)
    pts = _as_points(x, finite=False)
    degree = check_positive_int(degree, "degree", minimum=0)
    if not isinstance(std_errors, (bool, np.bool_)):
        raise TypeError(f"std_errors must be True or False, got {type(std_errors).__name__}")
    threads = check_threads(threads)
    check_choice(backend, "backend", BACKENDS)
    count = _check_index_count(pts.shape[1], degree)
    if float(count) * pts.shape[0] > MAX_MOMENT_TERMS:
        raise ValueError(f"x and degree too large: {pts.shape[0]} samples x {count} multi-indices = "
                         f"{float(count) * pts.shape[0]:.3g} Hermite terms exceed the limit {MAX_MOMENT_TERMS:.3g} "
                         "(minutes of CPU); lower degree or use fewer samples")
    if count <= 100_000:  # the tables of the usual degrees; a huge one is not kept alive
        idx, parent, dim, order = _cached_tables(pts.shape[1], degree)
    else:
        idx = _basis.multi_indices(pts.shape[1], degree)
        parent, dim, order = _basis.index_table(idx)
    if backend != "cpp" or degree == 0:  # no kernel, or no degree-1 moment to show a bad sample
        check_finite_array(pts, "x")
    if backend == "cpp":
        mean, sq = _core.hermite_moments(pts, parent, dim, order, bool(std_errors), threads)
        mean = np.asarray(mean)
        sq = None if sq is None else np.asarray(sq)
    else:
        mean, sq = _ref.hermite_moments(pts, idx, with_squares=bool(std_errors))
    if not (np.all(np.isfinite(mean)) and (sq is None or np.all(np.isfinite(sq)))):
        check_finite_array(pts, "x")  # a NaN or inf sample: the error the check up front gave
        # He_n(x) ~ x^n: large |x| at a high degree overflows float64.
        raise ValueError(f"x too large for degree {degree}: Hermite moments overflow float64 "
                         f"(max |x| = {np.max(np.abs(pts)):.3g}); standardise x or lower degree")
    se = None
    n = pts.shape[0]
    if std_errors:
        var = np.clip(sq - mean ** 2, 0.0, None) * n / max(n - 1, 1)
        se = np.sqrt(var / n)
    return _checked_moments(idx, mean, se, n)


def _checked_moments(idx: np.ndarray, values: np.ndarray, se: np.ndarray | None, n: int) -> HermiteMoments:
    """HermiteMoments of :func:`hermite_moments`, whose arrays it has checked already: the index
    table (graded, int64, non-negative: multi_indices), finite float64 values and errors of one
    entry per index (the kernel's output, checked finite above). ``__post_init__`` would check
    them again, most of the call's time outside the kernel at 1e6 samples in 1-D (docs/truncation.md,
    section "Performance"). The indices are copied: the cached table is shared between calls."""
    out = object.__new__(HermiteMoments)
    out.indices = idx.copy()
    out.values = values
    out.std_errors = se
    out.n_samples = n
    return out


def mixture_moments(mixture: GaussianMixture, degree: int, *, method: str = "auto") -> HermiteMoments:
    """Exact orthonormal Hermite coordinates of a Gaussian mixture, |alpha| <= degree.

    Isotropic and diagonal covariances: products over coordinates of the 1-D moments of
    N(m, s^2), from c_{n+1} = m c_n + n (s^2 - 1) c_{n-1}. Full covariances (``method="full"``,
    or ``"auto"`` for a full mixture): the exact multivariate recurrence of the generating
    function exp(u.m + u^T (C - I) u / 2). Mixtures are weighted sums over components.
    """
    if not isinstance(mixture, GaussianMixture):
        raise TypeError("mixture must be a modelcollapse.GaussianMixture")
    degree = check_positive_int(degree, "degree", minimum=0)
    check_choice(method, "method", ("auto", "product", "full"))
    d = mixture.dim
    if d > MAX_DIM:
        raise ValueError(f"mixture has dimension {d}; Hermite moments support d <= {MAX_DIM}")
    count = _check_index_count(d, degree)
    check_allocation(float(count) * mixture.n_components * 2 + (degree + 1.0) * mixture.n_components * d,
                     "degree", "the per-component moments")
    if method == "auto":
        method = "full" if mixture.cov_type == "full" else "product"
    if method == "product" and mixture.cov_type == "full":
        raise ValueError("method='product' needs isotropic or diagonal covariances; use method='full'")
    idx = _basis.multi_indices(d, degree)
    w = mixture.weights
    mu = mixture.means
    if method == "product":
        cov = mixture.covariances
        var = np.broadcast_to(cov[:, None], mu.shape) if mixture.cov_type == "isotropic" else cov
        g1 = _basis.gaussian_moments_1d(mu, var, degree)  # (D+1, K, d)
        prod = np.ones((len(idx), len(w)))
        for i in range(d):
            prod *= g1[idx[:, i], :, i]
    else:
        prod = _basis.gaussian_moments_full(mu, mixture.full_covariances(), idx)
    with np.errstate(over="ignore", invalid="ignore"):
        values = prod @ w
    if not np.all(np.isfinite(values)):
        raise ValueError(f"degree {degree} too high for this mixture: its Hermite coordinates overflow float64 "
                         "(means or variances far from the standard normal's); lower degree")
    return HermiteMoments(indices=idx, values=values)


def _check_moments(moments: Any) -> HermiteMoments:
    if not isinstance(moments, HermiteMoments):
        raise TypeError(f"moments must be a HermiteMoments (from hermite_moments or mixture_moments), "
                        f"got {type(moments).__name__}")
    return moments


def degree_energies(moments: HermiteMoments) -> np.ndarray:
    """E_n = sum_{|alpha|=n} c_alpha^2 / alpha!, n = 0..degree (see :meth:`HermiteMoments.energies`)."""
    out = _check_moments(moments).energies()
    if not np.all(np.isfinite(out)):
        raise ValueError("moments too large: the degree energies (sums of squares) overflow float64")
    return out


def gram_charlier(moments: HermiteMoments, points: Any) -> np.ndarray:
    """Truncated Gram-Charlier density phi(x) sum_alpha g_alpha h_alpha(x) at ``points``.

    ``points``: shape (m,) in 1-D or (m, d). The truncated series can be negative where
    the law is far from Gaussian; it is meant for plots of what the low modes carry.
    """
    d = _check_moments(moments).dim
    pts = check_finite_array(points, "points", ndim=(1, 2))
    if pts.ndim == 1:
        if d != 1:
            raise ValueError(f"points must be (m, {d}) for a {d}-D law")
        pts = pts[:, None]
    if pts.shape[1] != d:
        raise ValueError(f"points must have {d} columns, got {pts.shape[1]}")
    check_allocation(float(len(moments.indices)) * (pts.shape[0] + 1) * 2, "points", "the Hermite products")
    with np.errstate(over="ignore", invalid="ignore"):
        val = _basis.hermite_products(pts, moments.indices)  # (M, m)
        phi = np.exp(-0.5 * np.sum(pts ** 2, axis=1)) / (2 * math.pi) ** (d / 2)
        out = phi * (moments.values @ val)
    if not np.all(np.isfinite(out)):
        i = int(np.flatnonzero(~np.isfinite(out))[0])
        raise ValueError(f"points row {i} is too far out for this degree: the Hermite series overflows float64 "
                         f"(max |points| = {np.max(np.abs(pts[i])):.3g})")
    return out


__all__ = ["HermiteMoments", "hermite_moments", "mixture_moments", "degree_energies", "gram_charlier",
           "multi_indices"]
