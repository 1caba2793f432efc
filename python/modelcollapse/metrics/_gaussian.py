"""Closed-form W2 and KL between Gaussians."""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import linalg

from .._validation import (
    check_finite_array,
)


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
