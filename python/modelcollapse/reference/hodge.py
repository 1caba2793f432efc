"""numpy twins of the Helmholtz-Hodge kernels: perturbed score fields and the Stein/Hermite
accumulation of the gradient-part estimator. Readable, vectorised, never imports the
compiled core.

Terms are plain dicts (see :mod:`modelcollapse.hodge`), with c_t = e^{-t} c,
l_t^2 = e^{-2t} l^2 + sigma_t^2, g_t(x) = exp(-|x - c_t|^2 / (2 l_t^2)):

- kind 0 (matrix):          e = M s*
- kind 1 (linear):          e = E (x - c_t) + f
- kind 2 (gradient bump):   e = a grad g_t
- kind 3 (solenoidal bump): e = a A (grad g_t + g_t s*)
- kind 4 (fourier):         e = sum_j v_j cos(w_j . x + b_j)
"""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from . import mixture


def term_error(term: dict, x: np.ndarray, sstar: np.ndarray, t: float) -> np.ndarray:
    """Error field of one term at the rows of x, given the true score sstar."""
    kind = int(term["kind"])
    a = np.exp(-t)
    s2 = -np.expm1(-2.0 * t)
    if kind == 0:
        return sstar @ np.asarray(term["mat"]).T
    if kind == 1:
        c = a * np.asarray(term["center"])
        return (x - c) @ np.asarray(term["mat"]).T + np.asarray(term["vec"])
    if kind in (2, 3):
        c = a * np.asarray(term["center"])
        l2 = a * a * float(term["width2"]) + s2
        diff = x - c
        g = float(term["amp"]) * np.exp(-0.5 * np.sum(diff * diff, axis=1) / l2)
        grad_g = -g[:, None] * diff / l2
        if kind == 2:
            return grad_g
        return (grad_g + g[:, None] * sstar) @ np.asarray(term["mat"]).T
    if kind == 4:
        arg = x @ np.asarray(term["omega"]).T + np.asarray(term["phase"])
        return np.cos(arg) @ np.asarray(term["coef"])
    raise ValueError(f"unknown term kind {kind}")


def fields(weights, means, covs, terms: Sequence[dict], x: np.ndarray, t: float,
           mask: Sequence[bool] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(log p_t, true score, error of the selected terms) at the rows of x."""
    x = np.asarray(x, dtype=np.float64)
    logp = mixture.logpdf(weights, means, covs, x, t)
    sstar = mixture.score(weights, means, covs, x, t)
    err = np.zeros_like(x)
    for j, term in enumerate(terms):
        if mask is None or mask[j]:
            err += term_error(term, x, sstar, t)
    return logp, sstar, err


def model_score(weights, means, covs, terms: Sequence[dict], x: np.ndarray, t: float) -> np.ndarray:
    """s_theta = s* + sum of the term errors."""
    _, sstar, err = fields(weights, means, covs, terms, x, t)
    return sstar + err


# --- Hermite basis ---------------------------------------------------------------------

def hermite_multi_indices(d: int, degree: int) -> np.ndarray:
    """Multi-indices 1 <= |a| <= degree, by total degree then lexicographically descending."""
    idx = [a for a in itertools.product(range(degree + 1), repeat=d) if 1 <= sum(a) <= degree]
    idx.sort(key=lambda a: (sum(a), tuple(-v for v in a)))
    return np.array(idx, dtype=int).reshape(-1, d)


def hermite_table(z: np.ndarray, L: int) -> np.ndarray:
    """He_0..He_L at every entry of z: shape z.shape + (L + 1,)."""
    H = np.empty(z.shape + (L + 1,))
    H[..., 0] = 1.0
    if L >= 1:
        H[..., 1] = z
    for n in range(1, L):
        H[..., n + 1] = z * H[..., n] - n * H[..., n - 1]
    return H


def hermite_derivatives(x: np.ndarray, loc: np.ndarray, scale: np.ndarray, degree: int
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (n, K, d) and Laplacians (n, K) of psi_a = prod_i He_{a_i}(z_i)/sqrt(a_i!)."""
    z = (np.asarray(x) - loc) / scale
    n, d = z.shape
    idx = hermite_multi_indices(d, degree)
    K = len(idx)
    H = hermite_table(z, degree)                           # (n, d, L+1)
    Hpad = np.concatenate([np.zeros((n, d, 2)), H], axis=2)  # He_{-2}, He_{-1} = 0
    norm = 1.0 / np.sqrt(np.prod([[math.factorial(v) for v in a] for a in idx], axis=1))
    cols = np.arange(d)
    val = Hpad[:, cols[None, :], idx + 2]                  # (n, K, d): He_{a_i}(z_i)
    d1 = idx * Hpad[:, cols[None, :], idx + 1] / scale     # a_i He_{a_i - 1} / scale_i
    d2 = idx * (idx - 1) * Hpad[:, cols[None, :], idx] / scale**2
    grads = np.empty((n, K, d))
    lap = np.zeros((n, K))
    for i in range(d):  # loop over coordinates only (d is small)
        rest = np.prod(np.delete(val, i, axis=2), axis=2) * norm
        grads[:, :, i] = d1[:, :, i] * rest
        lap += d2[:, :, i] * rest
    return grads, lap


def hermite_stein_system(x: np.ndarray, score: np.ndarray, loc, scale, degree: int
                         ) -> tuple[np.ndarray, np.ndarray]:
    """b_k = mean(s.grad psi_k + lap psi_k) and G_kl = mean(grad psi_k . grad psi_l), directly."""
    loc = np.asarray(loc, dtype=float)
    scale = np.asarray(scale, dtype=float)
    grads, lap = hermite_derivatives(x, loc, scale, degree)
    n = len(x)
    b = (np.einsum("nkd,nd->k", grads, score) + lap.sum(axis=0)) / n
    flat = grads.transpose(0, 2, 1).reshape(-1, grads.shape[1])  # (n*d, K)
    G = flat.T @ flat / n
    return b, G


def hermite_stein_eval(x: np.ndarray, score: np.ndarray, loc, scale, degree: int, beta: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per sample, psi = sum beta_k psi_k: (s.grad psi + lap psi, |grad psi|^2)."""
    grads, lap = hermite_derivatives(x, np.asarray(loc, float), np.asarray(scale, float), degree)
    g = np.einsum("nkd,k->nd", grads, beta)
    return np.sum(score * g, axis=1) + lap @ beta, np.sum(g * g, axis=1)
