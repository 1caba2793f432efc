"""Gaussian mixtures in numpy: log density, score and sampling of S_t p.

The mixture is passed as plain arrays (weights (K,), means (K, d), covariances in full
form (K, d, d)), so this module does not depend on the class it checks.
"""
from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from . import random as ref_random

LOG_2PI = np.log(2.0 * np.pi)


def smooth(weights: np.ndarray, means: np.ndarray, covs: np.ndarray, t: float):
    """Parameters of S_t p: means e^{-t} mu_k, covariances e^{-2t} C_k + (1 - e^{-2t}) I."""
    d = means.shape[1]
    a = np.exp(-t)
    s2 = -np.expm1(-2.0 * t)
    return weights, a * means, a * a * covs + s2 * np.eye(d)


def component_terms(means: np.ndarray, covs: np.ndarray, x: np.ndarray):
    """Per-component log N(x; mu_k, C_k) (m, K) and C_k^{-1}(x - mu_k) (m, K, d)."""
    d = means.shape[1]
    chol = np.linalg.cholesky(covs)  # (K, d, d)
    diff = x[:, None, :] - means[None, :, :]  # (m, K, d)
    # Solve L z = diff for every point and component.
    z = np.linalg.solve(chol[None], diff[..., None])[..., 0]
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    logn = -0.5 * (np.sum(z * z, axis=-1) + logdet[None, :] + d * LOG_2PI)
    prec_diff = np.linalg.solve(covs[None], diff[..., None])[..., 0]
    return logn, prec_diff


def logpdf(weights, means, covs, x, t: float = 0.0) -> np.ndarray:
    """log (S_t p)(x) for the rows of x."""
    w, m, c = smooth(weights, means, covs, t)
    logn, _ = component_terms(m, c, x)
    with np.errstate(divide="ignore"):
        return logsumexp(logn + np.log(w)[None, :], axis=1)


def score(weights, means, covs, x, t: float = 0.0) -> np.ndarray:
    """grad log (S_t p)(x) = -sum_k r_k(x) C_k(t)^{-1} (x - mu_k(t))."""
    w, m, c = smooth(weights, means, covs, t)
    logn, prec_diff = component_terms(m, c, x)
    with np.errstate(divide="ignore"):
        logits = logn + np.log(w)[None, :]
    r = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))  # responsibilities
    return -np.einsum("mk,mkd->md", r, prec_diff)


def sample(weights, means, covs, n: int, seed: int, t: float = 0.0, stream_start: int = 0) -> np.ndarray:
    """Samples of S_t p with the library's stream layout (reproduces the compiled sampler).

    Sample i: component from uniform 0 of stream (INIT_CHOICE=3, stream_start + i) by
    inverse CDF; then mean + C^{1/2} z with z = normals [0, d) of stream (INIT_NORMAL=2, .)
    and the symmetric square root C^{1/2} = U diag(sqrt(lambda)) U^T.
    """
    w, m, c = smooth(weights, means, covs, t)
    d = m.shape[1]
    idx = np.arange(stream_start, stream_start + n, dtype=np.uint64)
    u = ref_random.uniforms(seed, ref_random.make_stream(3, idx), 0, 1)[:, 0]
    cum = np.cumsum(w) / np.sum(w)
    k = np.minimum(np.searchsorted(cum, u, side="right"), len(w) - 1)
    z = ref_random.normals(seed, ref_random.make_stream(2, idx), 0, d)
    lam, U = np.linalg.eigh(c)
    # Symmetric square root U diag(sqrt(lambda)) U^T: independent of eigenvector signs.
    root = np.einsum("kij,kj,klj->kil", U, np.sqrt(lam), U)
    return m[k] + np.einsum("nij,nj->ni", root[k], z)
