"""Hermite bases used by the library: graded multi-indices, the parent table that builds
products degree by degree, products of orthonormal Hermite functions, and the exact
orthonormal Hermite moments of Gaussians (docs/truncation.md, "Hermite picture").

The numpy reference (``modelcollapse.reference.hermite``) keeps its own readable versions of
the products and the parent table: it is the oracle of the compiled moments kernel and must
not call the library it checks.
"""
from __future__ import annotations

import numpy as np


def multi_indices(d: int, degree: int) -> np.ndarray:
    """All alpha in N^d with |alpha| <= degree, graded (total degree first), then
    lexicographically decreasing within a degree: (0,0), (1,0), (0,1), (2,0), (1,1), (0,2), ..."""
    rows: list[tuple[int, ...]] = []
    for total in range(degree + 1):
        rows.extend(_compositions(total, d))
    return np.asarray(rows, dtype=np.int64).reshape(-1, d)


def _compositions(total: int, d: int):
    """Compositions of ``total`` into d non-negative parts, lexicographically decreasing.

    Iterative (no recursion per axis, so any d works): from (total, 0, ..., 0), the next
    composition moves one unit out of the last non-zero part j < d - 1 and gathers
    everything after j into part j + 1.
    """
    a = [total] + [0] * (d - 1)
    while True:
        yield tuple(a)
        j = next((i for i in range(d - 2, -1, -1) if a[i] > 0), None)
        if j is None:
            return
        rest = sum(a[j + 1:])
        a[j] -= 1
        a[j + 1:] = [rest + 1] + [0] * (d - j - 2)


def index_table(indices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(parent, dim, order) for graded multi-indices: alpha = parent + e_dim, order = alpha_dim."""
    idx = np.asarray(indices, dtype=np.int64)
    M, d = idx.shape
    lookup = {tuple(r): m for m, r in enumerate(idx.tolist())}
    parent = np.full(M, -1, dtype=np.int64)
    dim = np.zeros(M, dtype=np.int64)
    order = np.zeros(M, dtype=np.int64)
    for m, row in enumerate(idx.tolist()):
        nz = [i for i, v in enumerate(row) if v]
        if not nz:
            continue
        j = nz[-1]
        par = list(row)
        par[j] = 0
        parent[m] = lookup[tuple(par)]
        dim[m] = j
        order[m] = row[j]
    return parent, dim, order


def hermite_functions(x: np.ndarray, degree: int) -> np.ndarray:
    """h_m(x) = He_m(x)/sqrt(m!) for m = 0..degree; shape (degree + 1, *x.shape)."""
    x = np.asarray(x, dtype=np.float64)
    h = np.empty((degree + 1, *x.shape))
    h[0] = 1.0
    if degree >= 1:
        h[1] = x
    for m in range(1, degree):
        h[m + 1] = (x * h[m] - np.sqrt(m) * h[m - 1]) / np.sqrt(m + 1)
    return h


def hermite_products(x: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """h_alpha(x) for every row of ``indices``; x is (n, d); returns (M, n)."""
    x = np.asarray(x, dtype=np.float64)
    parent, dim, order = index_table(indices)
    D = int(np.max(indices)) if indices.size else 0
    h = np.stack([hermite_functions(x[:, i], D) for i in range(x.shape[1])])  # (d, D+1, n)
    val = np.empty((len(parent), x.shape[0]))
    val[0] = 1.0
    for m in range(1, len(parent)):
        val[m] = val[parent[m]] * h[dim[m], order[m]]
    return val


def gaussian_moments_1d(mean: np.ndarray, var: np.ndarray, degree: int) -> np.ndarray:
    """Orthonormal moments g_m = E[He_m(X)]/sqrt(m!) of X ~ N(mean, var), m = 0..degree;
    from c_{m+1} = mean c_m + m (var - 1) c_{m-1} (generating function exp(mu + (var-1)u^2/2)).
    Broadcasts over mean/var; shape (degree + 1, *broadcast shape)."""
    mean, var = np.broadcast_arrays(np.asarray(mean, dtype=np.float64), np.asarray(var, dtype=np.float64))
    g = np.empty((degree + 1, *mean.shape))
    g[0] = 1.0
    if degree >= 1:
        g[1] = mean
    for m in range(1, degree):
        g[m + 1] = (mean * g[m] + np.sqrt(m) * (var - 1.0) * g[m - 1]) / np.sqrt(m + 1)
    return g


def gaussian_moments_full(means: np.ndarray, covs: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """Orthonormal moments g_alpha of N(m_k, C_k) for each component k, full covariances.

    Exact recurrence from the generating function exp(u.m + u^T (C - I) u / 2):
    g_{alpha+e_i} = (m_i g_alpha + sum_j A_ij sqrt(alpha_j) g_{alpha-e_j}) / sqrt(alpha_i + 1),
    A = C - I. Returns (M, K).
    """
    idx = np.asarray(indices, dtype=np.int64)
    M, d = idx.shape
    K = means.shape[0]
    A = covs - np.eye(d)[None]
    lookup = {tuple(r): m for m, r in enumerate(idx.tolist())}
    g = np.zeros((M, K))
    g[0] = 1.0
    for m, row in enumerate(idx.tolist()):
        if m == 0:
            continue
        nz = [i for i, v in enumerate(row) if v]
        i = nz[-1]
        base = list(row)
        base[i] -= 1  # alpha = base + e_i
        acc = means[:, i] * g[lookup[tuple(base)]]
        for j in range(d):
            if base[j] > 0:
                lower = list(base)
                lower[j] -= 1
                acc = acc + A[:, i, j] * np.sqrt(base[j]) * g[lookup[tuple(lower)]]
        g[m] = acc / np.sqrt(base[i] + 1)
    return g
