"""Metrics in numpy: the twins of the compiled kernels in ``modelcollapse.metrics``.

- :func:`kde_exact`: sum_i w_i N(z; x_i, H) at arbitrary points, blocked and vectorised
  (whitened squared distances, one block of points at a time).
- :func:`kde_binned`: linear binning on a (refined, padded) regular grid and a
  truncated-kernel convolution, the same algorithm as the C++ kernel.
- :func:`wasserstein_1d_pow`: exact 1-D W_p^p by sorting (monotone coupling).
- :func:`sliced_wp_pow`: per-direction W_p^p for explicitly given unit directions.
- :func:`precision_recall`: Kynkaanniemi et al.'s k-NN precision/recall by brute force.

Nothing here imports the compiled code.
"""
from __future__ import annotations

import numpy as np

LOG_2PI = np.log(2.0 * np.pi)


def _whiten(chol: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Rows of x mapped to L^{-1} x (forward substitution, vectorised over rows)."""
    d = chol.shape[0]
    y = np.empty_like(x)
    for a in range(d):  # loop over the dimension only
        y[:, a] = (x[:, a] - y[:, :a] @ chol[a, :a]) / chol[a, a]
    return y


def kde_exact(samples: np.ndarray, weights: np.ndarray, bandwidth: np.ndarray, points: np.ndarray,
              block: int = 512) -> np.ndarray:
    """Exact Gaussian KDE sum_i w_i N(z; x_i, H) at the rows of ``points``.

    samples (n, d), weights (n,) summing to 1, bandwidth H (d, d) SPD, points (m, d).
    """
    samples = np.asarray(samples, dtype=float)
    points = np.asarray(points, dtype=float)
    chol = np.linalg.cholesky(np.asarray(bandwidth, dtype=float))
    d = samples.shape[1]
    log_norm = -0.5 * d * LOG_2PI - np.log(np.diag(chol)).sum()
    ys = _whiten(chol, samples)
    zs = _whiten(chol, points)
    out = np.empty(points.shape[0])
    for b in range(0, points.shape[0], block):
        z = zs[b:b + block]
        sq = ((z[:, None, :] - ys[None, :, :]) ** 2).sum(axis=-1)  # (block, n)
        out[b:b + block] = np.exp(-0.5 * sq) @ weights
    return np.exp(log_norm) * out


def binned_axes(axes_spec):
    """Fine-grid coordinates of each axis from (start, step, count, refine, pad)."""
    out = []
    for start, step, count, refine, pad in axes_spec:
        h = step / refine
        n_fine = (count - 1) * refine + 1 + 2 * pad
        out.append(start - pad * h + h * np.arange(n_fine))
    return out


def linear_binning(samples: np.ndarray, weights: np.ndarray, axes_spec) -> np.ndarray:
    """Linear binning on the fine grid of ``axes_spec``; samples outside it are dropped."""
    d = samples.shape[1]
    shape, pos, idx, frac = [], [], [], []
    keep = np.ones(samples.shape[0], dtype=bool)
    for a, (start, step, count, refine, pad) in enumerate(axes_spec):
        h = step / refine
        n_fine = (count - 1) * refine + 1 + 2 * pad
        p = (samples[:, a] - (start - pad * h)) / h
        keep &= (p >= 0) & (p <= n_fine - 1)
        shape.append(n_fine)
        pos.append(p)
    for a in range(d):
        n_fine = shape[a]
        p = pos[a][keep]
        j = np.minimum(np.floor(p).astype(np.int64), max(n_fine - 2, 0))
        idx.append(j)
        frac.append(p - j)
    w = weights[keep]
    # np.bincount sums the weights falling on each flat index (np.add.at does the same, 20x slower)
    size = int(np.prod(shape))
    if d == 1:
        B1 = np.bincount(idx[0], w * (1 - frac[0]), minlength=size)
        if shape[0] > 1:
            B1 += np.bincount(idx[0] + 1, w * frac[0], minlength=size)
        return B1
    B = np.zeros(size)
    for c0 in (0, 1):
        for c1 in (0, 1):
            f = (frac[0] if c0 else 1 - frac[0]) * (frac[1] if c1 else 1 - frac[1])
            if (c0 and shape[0] == 1) or (c1 and shape[1] == 1):
                continue
            B += np.bincount((idx[0] + c0) * shape[1] + idx[1] + c1, w * f, minlength=size)
    return B.reshape(shape)


def binned_kernel_2d(bandwidth: np.ndarray, axes_spec, radius: float) -> np.ndarray:
    """The truncated 2-D kernel N(u; 0, H) at the fine-grid offsets (2 pad_0 + 1, 2 pad_1 + 1),
    zero where u^T H^{-1} u > R^2 (for a diagonal H: where either axis' term exceeds R^2, the
    box truncation of the separable C++ path)."""
    H = np.asarray(bandwidth, dtype=float)
    norm = np.exp(-LOG_2PI - np.log(np.diag(np.linalg.cholesky(H))).sum())
    offsets = [(np.arange(2 * pad + 1) - pad) * (step / refine) for start, step, count, refine, pad in axes_spec]
    u, v = np.meshgrid(offsets[0], offsets[1], indexing="ij")
    P = np.linalg.inv(H)
    q = P[0, 0] * u * u + 2 * P[0, 1] * u * v + P[1, 1] * v * v
    if H[0, 1] == 0.0 and H[1, 0] == 0.0:
        cut = (u * u / H[0, 0] > radius ** 2) | (v * v / H[1, 1] > radius ** 2)
    else:
        cut = q > radius ** 2
    return np.where(cut, 0.0, norm * np.exp(-0.5 * q))


def kde_binned(samples: np.ndarray, weights: np.ndarray, bandwidth: np.ndarray, axes_spec,
               radius: float) -> np.ndarray:
    """Binned KDE on the regular grid of ``axes_spec`` = [(start, step, count, refine, pad)].

    The kernel is evaluated at fine-grid offsets and set to zero where u^T H^{-1} u > R^2
    (for a diagonal H in 2-D: where either axis' term exceeds R^2, the box truncation of the
    separable C++ path).
    """
    samples = np.asarray(samples, dtype=float)
    H = np.asarray(bandwidth, dtype=float)
    d = samples.shape[1]
    B = linear_binning(samples, weights, axes_spec)
    if d == 1:
        chol = np.linalg.cholesky(H)
        norm = np.exp(-0.5 * LOG_2PI - np.log(chol[0, 0]))
        start, step, count, refine, pad = axes_spec[0]
        q = ((np.arange(2 * pad + 1) - pad) * (step / refine)) ** 2 / H[0, 0]
        k = np.where(q > radius ** 2, 0.0, norm * np.exp(-0.5 * q))
        windows = np.lib.stride_tricks.sliding_window_view(B, 2 * pad + 1)[::refine][:count]
        return windows @ k
    k = binned_kernel_2d(H, axes_spec, radius)
    (_, _, c0, r0, p0), (_, _, c1, r1, p1) = axes_spec
    win = np.lib.stride_tricks.sliding_window_view(B, (2 * p0 + 1, 2 * p1 + 1))[::r0, ::r1][:c0, :c1]
    return np.einsum("abij,ij->ab", win, k)


def wasserstein_1d_pow(x: np.ndarray, y: np.ndarray, p: float = 1.0) -> float:
    """Exact W_p^p between two 1-D empirical laws with uniform weights (quantile coupling)."""
    u = np.sort(np.asarray(x, dtype=float).ravel())
    v = np.sort(np.asarray(y, dtype=float).ravel())
    n, m = u.size, v.size
    # Breakpoints of both quantile functions in integer units of 1/(n m).
    cuts = np.union1d(np.arange(1, n + 1) * m, np.arange(1, m + 1) * n)
    mass = np.diff(np.concatenate([[0], cuts]))
    iu = (cuts - 1) // m  # quantile piece of u covering (cut - mass, cut]
    iv = (cuts - 1) // n
    return float(np.sum(mass * np.abs(u[iu] - v[iv]) ** p) / (n * m))


def sliced_wp_pow(x: np.ndarray, y: np.ndarray, projections: np.ndarray, p: float = 2.0) -> np.ndarray:
    """Per-direction W_p^p between the projections of x (n, d) and y (m, d) onto the rows of
    ``projections`` (L, d)."""
    px = np.sort(np.asarray(x, dtype=float) @ projections.T, axis=0)
    py = np.sort(np.asarray(y, dtype=float) @ projections.T, axis=0)
    if px.shape[0] == py.shape[0]:
        return np.mean(np.abs(px - py) ** p, axis=0)
    return np.array([wasserstein_1d_pow(px[:, l], py[:, l], p) for l in range(projections.shape[0])])


def projections_from_normals(normals: np.ndarray) -> np.ndarray:
    """Unit directions from rows of standard normals (how the C++ kernel builds them)."""
    return normals / np.sqrt(np.sum(normals * normals, axis=1, keepdims=True))


def knn_radii(x: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Distance of each row of x to its k-th nearest other row (brute force)."""
    out = np.empty(x.shape[0])
    for b in range(0, x.shape[0], block):
        dist = np.sqrt(((x[b:b + block, None, :] - x[None, :, :]) ** 2).sum(-1))
        out[b:b + block] = np.sort(dist, axis=1)[:, k]  # column 0 is the point itself
    return out


def inside_manifold(ref: np.ndarray, radii: np.ndarray, query: np.ndarray, block: int = 1024) -> np.ndarray:
    """Whether each query row lies in some ball B(ref_i, radii_i)."""
    out = np.empty(query.shape[0], dtype=bool)
    for b in range(0, query.shape[0], block):
        dist = np.sqrt(((query[b:b + block, None, :] - ref[None, :, :]) ** 2).sum(-1))
        out[b:b + block] = np.any(dist <= radii[None, :], axis=1)
    return out


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 4) -> tuple[float, float]:
    """Kynkaanniemi et al. (2019): precision = share of fake inside the real k-NN manifold,
    recall = share of real inside the fake k-NN manifold."""
    real = np.asarray(real, dtype=float)
    fake = np.asarray(fake, dtype=float)
    precision = inside_manifold(real, knn_radii(real, k), fake).mean()
    recall = inside_manifold(fake, knn_radii(fake, k), real).mean()
    return float(precision), float(recall)
