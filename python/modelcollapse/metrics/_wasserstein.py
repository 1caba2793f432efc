"""Wasserstein distances between samples: exact (POT), 1-D, sliced."""
from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .. import _core
from .._types import BACKENDS
from .._validation import (
    as_seed,
    check_allocation,
    check_choice,
    check_positive_int,
    check_threads,
)
from ..mixture import _pow2_scale
from ..reference import metrics as _ref
from ._grid import EXACT_OT_MAX_PAIRS, WASSERSTEIN_METHODS, as_samples


# ----------------------------------------------------------------------------- Wasserstein
def wasserstein(x: Any, y: Any, p: int = 2, method: str = "exact", n_projections: int = 200, *, seed: Any = 0,
                threads: int = 0, backend: str = "cpp") -> float:
    """Wasserstein distance W_p (not W_p^p) between two empirical laws with uniform weights.

    ``exact``: optimal transport through POT's ``ot.emd2`` on the full cost matrix (up to
    n m = 2.5e7 pairs). ``1d``: exact by sorting (d = 1, any sizes). ``sliced``: the sliced
    distance (mean over ``n_projections`` random unit directions of W_p^p of the
    projections)^(1/p); directions come from the counter-based RNG (``seed``), so the result
    does not depend on ``threads``.
    """
    xs, ys = as_samples(x, "x"), as_samples(y, "y")
    if xs.shape[1] != ys.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {xs.shape[1]} and {ys.shape[1]}")
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or p not in (1, 2):
        raise ValueError(f"p must be 1 or 2, got {p!r:.80}")
    check_choice(method, "method", WASSERSTEIN_METHODS)
    check_choice(backend, "backend", BACKENDS)
    threads = check_threads(threads)
    # W_p is homogeneous (W_p(cx, cy) = c W_p(x, y)): samples past ~1e150, whose squared
    # distances would overflow, are divided by a power of two (exact) and the result scaled back.
    top = max(float(np.max(np.abs(xs))), float(np.max(np.abs(ys))))
    if top >= 1e140:
        c = float(_pow2_scale(np.array(top)))
        out = c * wasserstein(xs / c, ys / c, p, method, n_projections, seed=seed, threads=threads, backend=backend)
        if not math.isfinite(out):
            raise ValueError("x and y too large: their Wasserstein distance overflows float64")
        return out
    if method == "1d":
        if xs.shape[1] != 1:
            raise ValueError(f"method='1d' needs one-dimensional samples, got d = {xs.shape[1]}")
        if backend == "cpp":
            val = _core.wasserstein_1d_pow(xs[:, 0], ys[:, 0], float(p))
        else:
            val = _ref.wasserstein_1d_pow(xs[:, 0], ys[:, 0], p)
        return float(val ** (1.0 / p))
    if method == "exact":
        import ot

        n, m = xs.shape[0], ys.shape[0]
        if n * m > EXACT_OT_MAX_PAIRS:
            raise ValueError(f"method='exact' builds an {n} x {m} cost matrix (over {EXACT_OT_MAX_PAIRS} entries); "
                             "use method='sliced' (or '1d' in one dimension)")
        M = ot.dist(xs, ys, metric="sqeuclidean" if p == 2 else "euclidean")
        a, b = np.full(n, 1.0 / n), np.full(m, 1.0 / m)
        cost = float(ot.emd2(a, b, M, numItermax=max(1_000_000, 50 * (n + m))))
        return max(cost, 0.0) ** (1.0 / p)
    L = check_positive_int(n_projections, "n_projections")
    check_allocation(float(L) * (xs.shape[1] + 2), "n_projections", "the projections")
    key = as_seed(seed)
    theta = _core.sliced_projections(key, L, xs.shape[1])
    if backend == "cpp":
        vals = _core.sliced_wp_pow(xs, ys, theta, float(p), threads)
    else:
        vals = _ref.sliced_wp_pow(xs, ys, theta, p)
    return float(np.mean(vals) ** (1.0 / p))


def sliced_projections(n_projections: int, d: int, *, seed: Any = 0) -> np.ndarray:
    """The unit directions ``wasserstein(method="sliced")`` uses for this seed, (L, d)."""
    key = as_seed(seed)
    L = check_positive_int(n_projections, "n_projections")
    d = check_positive_int(d, "d")
    check_allocation(float(L) * d, "n_projections and d", "the directions")
    return _core.sliced_projections(key, L, d)
