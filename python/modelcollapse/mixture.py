"""Gaussian mixtures, the workhorse data model (docs/foundation.md, "Gaussian mixtures").

``GaussianMixture(weights, means, covariances)`` with isotropic (one scalar per
component), diagonal (a vector per component) or full (a matrix per component)
covariances. Log density and score are compiled, batched and threaded, with a streamed
log-sum-exp so that points far from every component get finite values. ``smooth(t)`` is
the forward-noising operator S_t, under which mixtures stay mixtures.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from . import reference as _ref
from ._types import BACKENDS
from ._validation import (
    as_seed,
    check_allocation,
    check_choice,
    check_finite_array,
    check_points,
    check_positive_int,
    check_real,
    check_threads,
)

COV_TYPES = ("isotropic", "diagonal", "full")
_WEIGHT_TOL = 1e-8
_LOG_2PI = float(np.log(2.0 * np.pi))


def _pow2_scale(v: np.ndarray) -> np.ndarray:
    """A power of two c with |v| / c in [0, 2] (1 for |v| <= 1): dividing by it is exact."""
    e = np.minimum(np.ceil(np.log2(np.maximum(np.abs(v), 1.0))), 1023.0)
    return np.ldexp(1.0, e.astype(np.int64))


def _stable_eval(what: str, weights: np.ndarray, means: np.ndarray, covs: np.ndarray,
                 pts: np.ndarray) -> np.ndarray:
    """Log density or score of sum_k w_k N(means_k, covs_k) at far-away points, in a form
    that does not overflow where the answer itself is representable.

    The kernels square ``x - mu``, which overflows to inf (then NaN) once |x - mu| ~ 1e154
    although the score (linear in x) and often the log density (~ -|x|^2) are still finite.
    Here each row is divided by a power of two c (exact) before squaring, and c^2 is put
    back only inside the log-sum-exp. ``covs`` is (K,) isotropic variances or (K, d, d).
    Used only for the (few) rows the compiled kernel could not represent. Returns -inf
    log densities / non-finite scores where the true value itself overflows.
    """
    d = means.shape[1]
    c = _pow2_scale(np.maximum(np.max(np.abs(pts), axis=1), np.max(np.abs(means))))  # (m,)
    y = pts[:, None, :] / c[:, None, None] - means[None, :, :] / c[:, None, None]  # (m, K, d), |y| <= 4
    if covs.ndim == 1:
        py = y / covs[None, :, None]
        logdet = d * np.log(covs)
    else:
        inv = np.linalg.inv(covs)
        py = np.einsum("kij,mkj->mki", inv, y)
        logdet = np.linalg.slogdet(covs)[1]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        q = np.einsum("mki,mki->mk", y, py)  # (x - mu)^T C^-1 (x - mu) / c^2
        q = np.where(weights[None, :] > 0, q, np.inf)  # weightless components never dominate
        q_min = np.min(q, axis=1)
        # Only differences of the logits matter for the responsibilities: c^2 (q_k - q_min) / 2,
        # ordered so that no intermediate overflows before the product itself does.
        rel = (0.5 * (q - q_min[:, None]) * c[:, None]) * c[:, None]
        logits = np.log(weights)[None, :] - 0.5 * (logdet + d * _LOG_2PI)[None, :] - rel
        top = np.max(logits, axis=1, keepdims=True)
        e = np.exp(logits - top)
        total = e.sum(axis=1, keepdims=True)
        if what == "logpdf":
            return top[:, 0] + np.log(total[:, 0]) - (0.5 * q_min * c) * c
        r = e / total
        # The score is -sum_k r_k C_k^-1 (x - mu_k) = -c sum_k r_k C_k^-1 y_k.
        return -np.einsum("mk,mkd->md", r, py) * c[:, None]


def _repair_far_rows(what: str, out: np.ndarray, pts: np.ndarray, law: tuple[np.ndarray, np.ndarray, np.ndarray],
                     allow_minus_inf: bool,
                     name: str = "x") -> np.ndarray:
    """Recompute the rows the kernel returned as non-finite (points so far away that squaring
    overflowed) with :func:`_stable_eval`; raise naming ``name`` where the true value is not
    representable either. ``law`` = (weights, means, covs) of the (smoothed) mixture."""
    bad = ~np.isfinite(out) if out.ndim == 1 else ~np.all(np.isfinite(out), axis=1)
    if not np.any(bad):
        return out
    rows = np.flatnonzero(bad)
    out = np.array(out, copy=True)
    out[rows] = _stable_eval(what, *law, pts[rows])
    with np.errstate(invalid="ignore", over="ignore"):
        fixed = out[rows] if out.ndim == 1 else out[rows].sum(axis=1)
    fail = rows[~np.isfinite(fixed) & ~(allow_minus_inf & (fixed == -np.inf))] if what == "logpdf" else \
        rows[~np.isfinite(fixed)]
    if fail.size:
        i = int(fail[0])
        raise ValueError(f"{name} row {i} is too far from the law (max |{name}| = {np.max(np.abs(pts[i])):.3g}): its "
                         f"{'log density' if what == 'logpdf' else 'score'} overflows float64; rescale {name}")
    return out


class GaussianMixture:
    """p = sum_k pi_k N(mu_k, C_k) in R^d.

    Parameters
    ----------
    weights : array_like, shape (K,)
        Non-negative, summing to 1 (within 1e-8; then renormalised exactly).
    means : array_like, shape (K, d)
        Component means. A 1-D array of length K is read as K one-dimensional means.
    covariances : float or array_like
        A scalar (every component isotropic with this variance), shape (K,) (isotropic),
        (K, d) (diagonal) or (K, d, d) (full, symmetric positive definite). With K == d a
        (K, d) array is read as diagonal.

    Examples
    --------
    >>> p = GaussianMixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.0]], 0.25)
    >>> x = p.sample(1000, seed=0)
    >>> p.smooth(0.1).score(x).shape
    (1000, 2)
    """

    def __init__(self, weights: Any, means: Any, covariances: Any) -> None:
        w = check_finite_array(weights, "weights", ndim=1)
        mu = check_finite_array(means, "means", ndim=(1, 2))
        if mu.ndim == 1:
            mu = mu[:, None]
        K, d = mu.shape
        if w.shape[0] != K:
            raise ValueError(f"weights has {w.shape[0]} entries but means has {K} rows (one per component)")
        if np.any(w < 0):
            raise ValueError("weights must be non-negative")
        total = float(w.sum())
        if abs(total - 1.0) > _WEIGHT_TOL:
            raise ValueError(f"weights must sum to 1, got sum {total:.12g} (normalise them first)")
        cov = check_finite_array(covariances, "covariances", ndim=(0, 1, 2, 3))
        if cov.ndim == 0:
            cov = np.full(K, float(cov))
        if cov.ndim == 1:
            if cov.shape[0] != K:
                raise ValueError(f"isotropic covariances must have shape ({K},), got {cov.shape}")
            if np.any(cov <= 0):
                raise ValueError("covariances (isotropic variances) must be > 0")
            cov_type = "isotropic"
        elif cov.ndim == 2:
            if cov.shape != (K, d):
                raise ValueError(f"diagonal covariances must have shape ({K}, {d}), got {cov.shape}")
            if np.any(cov <= 0):
                raise ValueError("covariances (diagonal variances) must be > 0")
            cov_type = "diagonal"
        else:
            if cov.shape != (K, d, d):
                raise ValueError(f"full covariances must have shape ({K}, {d}, {d}), got {cov.shape}")
            if not np.allclose(cov, np.swapaxes(cov, 1, 2), rtol=1e-10, atol=1e-12):
                raise ValueError("covariances must be symmetric matrices")
            eig = np.linalg.eigvalsh(cov)
            if np.any(eig <= 0):
                k = int(np.argmin(eig.min(axis=1)))
                raise ValueError(f"covariances must be positive definite (SPD); component {k} has "
                                 f"smallest eigenvalue {eig[k].min():.3g}")
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
            cov_type = "full"
        self._weights = w / total
        self._means = mu
        self._cov = cov
        self._cov_type = cov_type
        self._core_obj = None

    # -- description ---------------------------------------------------------------
    @property
    def weights(self) -> np.ndarray:
        return self._weights.copy()

    @property
    def means(self) -> np.ndarray:
        return self._means.copy()

    @property
    def covariances(self) -> np.ndarray:
        """Covariances in the form they were given: (K,), (K, d) or (K, d, d)."""
        return self._cov.copy()

    @property
    def cov_type(self) -> str:
        return self._cov_type

    @property
    def n_components(self) -> int:
        return self._means.shape[0]

    @property
    def dim(self) -> int:
        return self._means.shape[1]

    def full_covariances(self) -> np.ndarray:
        """Covariances as a (K, d, d) array whatever their type."""
        K, d = self._means.shape
        if self._cov_type == "isotropic":
            return self._cov[:, None, None] * np.eye(d)[None]
        if self._cov_type == "diagonal":
            return np.einsum("ki,ij->kij", self._cov, np.eye(d))
        return self._cov.copy()

    def mean(self) -> np.ndarray:
        """Mean of the mixture, sum_k pi_k mu_k."""
        return self._weights @ self._means

    def covariance(self) -> np.ndarray:
        """Covariance of the mixture (law of total covariance)."""
        m = self.mean()
        dev = self._means - m
        return np.einsum("k,kij->ij", self._weights, self.full_covariances()) + np.einsum(
            "k,ki,kj->ij", self._weights, dev, dev)

    def __repr__(self) -> str:
        return f"GaussianMixture(K={self.n_components}, d={self.dim}, {self._cov_type})"

    def describe(self) -> str:
        """Short description used in sampler reports."""
        return repr(self)

    def to_dict(self) -> dict[str, Any]:
        """Plain-array form, for saving (see :meth:`from_dict`)."""
        return {"weights": self.weights, "means": self.means, "covariances": self.covariances}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GaussianMixture:
        """Inverse of :meth:`to_dict`: a mapping with keys weights, means, covariances."""
        if not hasattr(data, "keys") or not {"weights", "means", "covariances"} <= set(data.keys()):
            raise TypeError("data must be a mapping with keys 'weights', 'means' and 'covariances' "
                            f"(as made by to_dict), got {type(data).__name__}")
        return cls(data["weights"], data["means"], data["covariances"])

    # -- operations on laws ----------------------------------------------------------
    def smooth(self, t: float) -> GaussianMixture:
        """S_t p: the law of e^{-t} X + sigma_t Z, X ~ p, Z ~ N(0, I), sigma_t^2 = 1 - e^{-2t}."""
        t = check_real(t, "t", low=0.0)
        a = np.exp(-t)
        s2 = -np.expm1(-2.0 * t)
        if self._cov_type == "full":
            cov = a * a * self._cov + s2 * np.eye(self.dim)[None]
        else:
            cov = a * a * self._cov + s2
        return GaussianMixture(self._weights, a * self._means, cov)

    def mix(self, other: GaussianMixture, weight: float) -> GaussianMixture:
        """weight * self + (1 - weight) * other (components are concatenated).

        Components of weight 0 are dropped. Covariance types are promoted to the more
        general of the two.
        """
        if not isinstance(other, GaussianMixture):
            raise TypeError(f"other must be a GaussianMixture, got {type(other).__name__}")
        if other.dim != self.dim:
            raise ValueError(f"cannot mix laws of dimension {self.dim} and {other.dim}")
        weight = check_real(weight, "weight", 0.0, 1.0)
        parts = [(weight, self), (1.0 - weight, other)]
        parts = [(w, p) for w, p in parts if w > 0]
        kind = max((p.cov_type for _, p in parts), key=COV_TYPES.index)
        w = np.concatenate([wt * p._weights for wt, p in parts])
        mu = np.concatenate([p._means for _, p in parts])
        cov = np.concatenate([p._cov_as(kind) for _, p in parts])
        keep = w > 0
        return GaussianMixture(w[keep] / w[keep].sum(), mu[keep], cov[keep])

    def _cov_as(self, kind: str) -> np.ndarray:
        if kind == self._cov_type:
            return self._cov
        if kind == "diagonal":  # from isotropic
            return np.repeat(self._cov[:, None], self.dim, axis=1)
        return self.full_covariances()

    # -- evaluation ----------------------------------------------------------------
    def _core(self):
        if self._core_obj is None:
            kind = COV_TYPES.index(self._cov_type)
            self._core_obj = _core.GaussianMixtureCore(self._weights, self._means, kind, self._cov)
        return self._core_obj

    def _evaluate(self, what: str, x: Any, t: float, threads: int, backend: str,
                  allow_minus_inf: bool = False) -> np.ndarray:
        pts, single = check_points(x, self.dim)
        t = check_real(t, "t", low=0.0)
        check_choice(backend, "backend", BACKENDS)
        if backend == "cpp":
            out = getattr(self._core(), what)(pts, t, check_threads(threads))
        else:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = getattr(_ref.mixture, what)(self._weights, self._means, self.full_covariances(), pts, t)
        if not np.all(np.isfinite(out)):
            law = _ref.mixture.smooth(self._weights, self._means, self.full_covariances(), t)
            out = _repair_far_rows(what, out, pts, law, allow_minus_inf)
        return out[0] if single else out

    def logpdf(self, x: Any, t: float = 0.0, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """log (S_t p)(x) at the rows of x, shape (m,) (a scalar for a single point)."""
        return self._evaluate("logpdf", x, t, threads, backend)

    def pdf(self, x: Any, t: float = 0.0, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """Density of S_t p at the rows of x (0 where it underflows, however far x is)."""
        return np.exp(self._evaluate("logpdf", x, t, threads, backend, allow_minus_inf=True))

    def score(self, x: Any, t: float = 0.0, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """grad log (S_t p)(x) at the rows of x, shape (m, d)."""
        return self._evaluate("score", x, t, threads, backend)

    def __call__(self, x: Any, t: float) -> np.ndarray:
        """Score of S_t p (so a mixture is itself a score model ``s(x, t)``)."""
        return self.score(x, t)

    def sample(self, n_samples: int, *, seed: int | np.random.Generator | None = 0, t: float = 0.0,
               threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """``n_samples`` samples of S_t p (of p for t = 0), shape (n_samples, d).

        The compiled and numpy backends draw identical samples for the same seed (the
        numpy backend uses the reference implementation of the same ARS-7 streams).
        """
        n = check_positive_int(n_samples, "n_samples", 0)
        t = check_real(t, "t", low=0.0)
        check_choice(backend, "backend", BACKENDS)
        check_allocation(float(n) * self.dim, "n_samples", "the samples")
        key = as_seed(seed)
        if backend == "cpp":
            return self._core().sample(n, t, key, 0, check_threads(threads))
        return _ref.mixture.sample(self._weights, self._means, self.full_covariances(), n, key, t)

    def sample_smoothed(self, n_samples: int, t: float, *, seed: int | np.random.Generator | None = 0,
                        threads: int = 0) -> np.ndarray:
        """Samples of S_t p (used by the reverse sampler's ``init="exact"``)."""
        return self.sample(n_samples, seed=seed, t=t, threads=threads)
