"""Targets of the high-dimensional DAE: the law of the data x_1 (docs/dae.md, "Model and training").

K-cluster mixtures with isotropic or diagonal covariances, a Gaussian with a given
covariance spectrum or matrix (trained in its eigenbasis, which is exact in law because x_0
and the random initialisation are isotropic), the Gaussian with the covariance of a
scikit-learn digits class, and the uniform law on a finite data set (e.g. samples of a
previous generation).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._validation import as_seed, check_allocation, check_bool, check_finite_array, check_positive_int, check_real


@dataclasses.dataclass(frozen=True)
class DaeTarget:
    """Law of the data x_1.

    Attributes
    ----------
    means : (K, d) centroids in the original coordinates (K = 0 for a data set target).
    scales : (K, d) standard deviations per coordinate *in the training basis*.
    weights : (K,) mixture weights (sum 1).
    basis : (d, d) orthogonal matrix or None. When given, the target covariance of cluster k
        is basis diag(scales[k]^2) basis^T and training runs in the coordinates basis^T x.
    data : (n, d) or None. When given, x_1 is a uniformly drawn row of ``data`` (or, with
        ``sequential``, row s mod n at step s: one pass over the data when n_steps <= n).
    variances : (K,) isotropic variances when every cluster is isotropic, else None.
    """

    means: np.ndarray
    scales: np.ndarray
    weights: np.ndarray
    basis: np.ndarray | None = None
    data: np.ndarray | None = None
    variances: np.ndarray | None = None
    sequential: bool = False

    @property
    def d(self) -> int:
        return int(self.data.shape[1] if self.data is not None else self.means.shape[1])

    @property
    def rho_bar(self) -> float:
        """Average covariance eigenvalue E_c[tr Sigma(c)] / d (for a data set: of the rows)."""
        if self.data is not None:
            x = self.data - self.data.mean(axis=0)
            return float(np.mean(np.sum(x * x, axis=1)) / self.d)
        return float(np.sum(self.weights * np.mean(self.scales**2, axis=1)))

    def train_coords(self, x: np.ndarray) -> np.ndarray:
        """Vectors (rows of x, or columns when x is (d, m)) in the training basis."""
        x = check_finite_array(x, "x", ndim=(1, 2), allow_empty=True)
        if self.basis is not None and x.shape[-1] != self.d:
            raise ValueError(f"x must have {self.d} columns (the dimension), got shape {x.shape}")
        return x if self.basis is None else x @ self.basis

    def sample(self, n_samples: int, *, seed: Any = 0) -> np.ndarray:
        """``n_samples`` samples of the target (numpy generator; for metrics, not for training)."""
        n = check_positive_int(n_samples, "n_samples", minimum=0)
        check_allocation(2.0 * n * self.d, "n_samples", "the samples")
        rng = np.random.default_rng(as_seed(seed))
        if self.data is not None:
            return self.data[rng.integers(0, self.data.shape[0], n)]
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        z = rng.standard_normal((n, self.d)) * self.scales[comp]
        if self.basis is not None:
            z = z @ self.basis.T
        return self.means[comp] + z


def _weights(weights: Any, K: int) -> np.ndarray:
    if weights is None:
        return np.full(K, 1.0 / K)
    w = check_finite_array(weights, "weights", ndim=1, shape=(K,))
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return w / w.sum()


def isotropic_mixture(means: Any, variances: Any = 1.0, weights: Any = None) -> DaeTarget:
    """Mixture sum_k pi_k N(mu_k, rho_k I_d). ``means`` (K, d); ``variances`` scalar or (K,)."""
    mu = check_finite_array(means, "means", ndim=2)
    K, d = mu.shape
    var = np.broadcast_to(check_finite_array(variances, "variances", ndim=(0, 1)), (K,)).astype(float)
    if np.any(var < 0):
        raise ValueError("variances must be >= 0")
    scales = np.repeat(np.sqrt(var)[:, None], d, axis=1)
    return DaeTarget(mu, scales, _weights(weights, K), variances=var.copy())


def diagonal_mixture(means: Any, spectrum: Any, weights: Any = None) -> DaeTarget:
    """Mixture sum_k pi_k N(mu_k, diag(spectrum)) with a shared diagonal spectrum (d,) or
    per-cluster spectra (K, d)."""
    mu = check_finite_array(means, "means", ndim=2)
    K, d = mu.shape
    spec = check_finite_array(spectrum, "spectrum", ndim=(1, 2))
    if spec.shape[-1] != d:
        raise ValueError(f"spectrum must have {d} entries per row (the dimension), got shape {spec.shape}")
    if np.any(spec < 0):
        raise ValueError("spectrum must be >= 0 (variances)")
    scales = np.broadcast_to(np.sqrt(spec), (K, d)).copy()
    return DaeTarget(mu, scales, _weights(weights, K))


def gaussian_target(spectrum: Any = None, covariance: Any = None, mean: Any = None) -> DaeTarget:
    """Gaussian N(mean, Sigma) with Sigma = diag(spectrum) or a full SPD ``covariance``.

    A full covariance is eigendecomposed once; training runs in its eigenbasis (exact in
    law, O(d) per step instead of O(d^2)).
    """
    if (spectrum is None) == (covariance is None):
        raise ValueError("give exactly one of spectrum (d,) or covariance (d, d)")
    basis = None
    if covariance is not None:
        cov = check_finite_array(covariance, "covariance", ndim=2)
        if cov.shape[0] != cov.shape[1]:
            raise ValueError(f"covariance must be square, got shape {cov.shape}")
        if not np.allclose(cov, cov.T, atol=1e-10 * max(1.0, np.abs(cov).max())):
            raise ValueError("covariance must be symmetric")
        evals, basis = np.linalg.eigh(cov)
        if evals.min() < -1e-8 * max(1.0, evals.max()):
            raise ValueError(f"covariance must be positive semi-definite (smallest eigenvalue {evals.min():.3g})")
        order = np.argsort(evals)[::-1]
        spec, basis = np.clip(evals[order], 0.0, None), np.ascontiguousarray(basis[:, order])
    else:
        spec = check_finite_array(spectrum, "spectrum", ndim=1)
        if np.any(spec < 0):
            raise ValueError("spectrum must be >= 0 (variances)")
    d = spec.shape[0]
    mu = np.zeros((1, d)) if mean is None else check_finite_array(mean, "mean", ndim=1, shape=(d,))[None, :]
    return DaeTarget(mu, np.sqrt(spec)[None, :], np.ones(1), basis=basis)


def digits_covariance(digit: int = 7, side: int = 28, scale: float = 300.0) -> np.ndarray:
    """Covariance of one class of scikit-learn's 8x8 digits, upsampled to side x side pixels.

    Preprocessing (documented choice, mirroring Cui et al.'s MNIST recipe): the 8x8 images
    (grey levels 0..16) are rescaled to 0..255, upsampled to ``side`` x ``side`` by bilinear
    interpolation (scipy.ndimage.zoom, order 1), flattened (d = side^2, 784 by default),
    centred, and divided by ``scale`` (300 as in the paper); the empirical covariance of the
    class is returned. Its rank is at most 64, so most eigenvalues vanish.
    """
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digit = check_positive_int(digit, "digit", minimum=0, maximum=9)
    side = check_positive_int(side, "side", minimum=8)
    check_allocation(2.0 * float(side) ** 4, "side", "the (side^2, side^2) covariance")
    scale = check_real(scale, "scale", low=0.0, low_open=True)
    data = load_digits()
    imgs = data.images[data.target == digit] * (255.0 / 16.0)
    up = np.stack([zoom(im, side / 8.0, order=1) for im in imgs]).reshape(len(imgs), -1)
    x = (up - up.mean(axis=0)) / float(scale)
    return x.T @ x / x.shape[0]


def digits_target(digit: int = 7, side: int = 28, scale: float = 300.0) -> DaeTarget:
    """Centred Gaussian with the covariance of a scikit-learn digits class (see
    :func:`digits_covariance`)."""
    return gaussian_target(covariance=digits_covariance(digit, side, scale))


def empirical_target(samples: Any, sequential: bool = False) -> DaeTarget:
    """Uniform law on the rows of ``samples`` (n, d): online SGD then draws rows with
    replacement, or uses them in order when ``sequential`` (true online SGD on a finite
    sample: each row once when n_steps <= n)."""
    x = check_finite_array(samples, "samples", ndim=2)
    return DaeTarget(np.zeros((0, x.shape[1])), np.zeros((0, x.shape[1])), np.zeros(0), data=x,
                     sequential=check_bool(sequential, "sequential"))

