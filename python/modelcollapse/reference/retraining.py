"""Numpy twin of the Gaussian retraining-chains kernel (``cpp/include/modelcollapse/gaussian_chains.hpp``).

Vectorised over chains; the only Python loop is over rounds (they are sequential). The
noise layout is the kernel's, so with the same seed (through :mod:`modelcollapse.reference.random`'s ARS-7) or the
same injected noise both give the same numbers up to rounding.
"""
from __future__ import annotations

from typing import cast

import numpy as np

from . import random as _rnd

PURPOSE_GAUSS_CHAIN_REAL = 16
PURPOSE_GAUSS_CHAIN_SYNTH = 17


SINGULAR_TOL = 1e-12  # a Cholesky pivot below this times max diag(cov) counts as singular


def psd_factor(cov: np.ndarray) -> np.ndarray:
    """Batched L with L L^T = cov: Cholesky where every pivot exceeds 1e-12 max diag(cov),
    else the symmetric PSD square root (eigendecomposition), as in the kernel."""
    C = cov.shape[0]
    maxdiag = np.einsum("cii->ci", cov).max(axis=1)
    out = np.zeros_like(cov)
    ok = maxdiag > 0
    try:
        L = np.linalg.cholesky(cov)
        good = np.all(np.isfinite(L), axis=(1, 2))
    except np.linalg.LinAlgError:  # rare (singular covariances): per-chain
        L = np.zeros_like(cov)
        good = np.zeros(C, dtype=bool)
        for c in range(C):
            try:
                L[c] = np.linalg.cholesky(cov[c])
                good[c] = True
            except np.linalg.LinAlgError:
                pass
    pivots = np.einsum("cii->ci", L) ** 2
    ok &= good & np.all(pivots > SINGULAR_TOL * maxdiag[:, None], axis=1)
    out[ok] = L[ok]
    bad = ~ok
    if np.any(bad):
        w, v = np.linalg.eigh(cov[bad])
        # eigenvalues below SINGULAR_TOL * the largest are rounding noise: zero them
        w = np.where(w > SINGULAR_TOL * w.max(axis=1, keepdims=True), w, 0.0)
        out[bad] = (v * np.sqrt(w)[:, None, :]) @ np.swapaxes(v, -1, -2)
    return out


def fit_gaussian(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Batched mean and unbiased covariance of x (C, N, d)."""
    mean = x.mean(axis=1)
    xc = x - mean[:, None, :]
    return mean, np.einsum("cni,cnj->cij", xc, xc) / (x.shape[1] - 1)


def chain_noise(seed: int, n_chains: int, n_real: int, n_synth: int, rounds: int, d: int,
                need_real: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """The normals the kernel draws for ``seed``: real (C, n, d) and synthetic (C, T, m, d)."""
    chains = np.arange(n_chains)
    real = None
    if need_real:
        real = _rnd.normals(seed, _rnd.make_stream(PURPOSE_GAUSS_CHAIN_REAL, chains), 0, n_real * d)
        real = real.reshape(n_chains, n_real, d)
    synth = _rnd.normals(seed, _rnd.make_stream(PURPOSE_GAUSS_CHAIN_SYNTH, chains), 0, rounds * n_synth * d)
    return real, synth.reshape(n_chains, rounds, n_synth, d)


def gaussian_chains(data_mean: np.ndarray, data_factor: np.ndarray, init_mean: np.ndarray | None,
                    init_cov: np.ndarray | None, n_real: int, n_synth: int, rounds: int, n_chains: int,
                    fully_synthetic: bool, seed: int = 0, noise_real: np.ndarray | None = None,
                    noise_synth: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Same contract as ``_core.gaussian_chains``: returns means (C, T+1, d), covs (C, T+1, d, d)."""
    d = len(data_mean)
    init_given = init_mean is not None
    need_real = not (fully_synthetic and init_given)
    if noise_real is None and need_real or noise_synth is None:
        zr, zs = chain_noise(seed, n_chains, n_real, n_synth, rounds, d, need_real)
        noise_real = zr if noise_real is None else noise_real
        noise_synth = zs if noise_synth is None else noise_synth
    means = np.empty((n_chains, rounds + 1, d))
    covs = np.empty((n_chains, rounds + 1, d, d))
    real = None
    if need_real:
        real = noise_real @ np.asarray(data_factor).T + data_mean
    if init_given:
        mu = np.broadcast_to(cast(np.ndarray, init_mean), (n_chains, d)).copy()
        cov = np.broadcast_to(cast(np.ndarray, init_cov), (n_chains, d, d)).copy()
    else:
        assert real is not None  # need_real holds when no initial fit is given
        mu, cov = fit_gaussian(real)
    means[:, 0], covs[:, 0] = mu, cov
    for t in range(1, rounds + 1):
        if n_synth > 0:
            L = psd_factor(cov)
            synth = np.einsum("cij,cmj->cmi", L, noise_synth[:, t - 1]) + mu[:, None, :]
        else:
            synth = np.empty((n_chains, 0, d))
        pool = synth if fully_synthetic else np.concatenate([real, synth], axis=1)
        mu, cov = fit_gaussian(pool)
        means[:, t], covs[:, t] = mu, cov
    return means, covs
