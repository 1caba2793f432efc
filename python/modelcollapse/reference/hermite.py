"""Numpy reference for Hermite moments from samples (twin of ``cpp/include/modelcollapse/hermite.hpp``).

Orthonormal Hermite functions h_m = He_m / sqrt(m!) by the stable normalised recurrence
h_{m+1} = (x h_m - sqrt(m) h_{m-1}) / sqrt(m + 1); multivariate products
h_alpha(x) = prod_i h_{alpha_i}(x_i) built in graded order, each alpha from its parent
alpha - e_j (j = last non-zero coordinate). Blocked over samples, vectorised inside a
block: the only Python loops run over degrees and multi-indices, never over samples.
This module never imports the compiled core.
"""
from __future__ import annotations

import numpy as np

BLOCK = 65_536




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
    """h_m(x) = He_m(x)/sqrt(m!) for m = 0..degree; shape ``(degree + 1, *x.shape)``."""
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


def hermite_moments(x: np.ndarray, indices: np.ndarray, with_squares: bool = False
                    ) -> tuple[np.ndarray, np.ndarray | None]:
    """Sample means of h_alpha (orthonormal: E[He_alpha]/sqrt(alpha!)) and optionally of h_alpha^2."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    M = len(indices)
    s1 = np.zeros(M)
    s2 = np.zeros(M) if with_squares else None
    for b in range(0, n, BLOCK):
        val = hermite_products(x[b:b + BLOCK], indices)
        s1 += val.sum(axis=1)
        if s2 is not None:
            s2 += np.einsum("mn,mn->m", val, val)
    return s1 / n, (None if s2 is None else s2 / n)
