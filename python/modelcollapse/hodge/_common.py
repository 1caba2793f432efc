"""Argument checks and small numerical helpers shared by the modules of :mod:`modelcollapse.hodge`."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import check_allocation, check_finite_array, check_positive_int
from ..mixture import GaussianMixture

#: A score model as a plain callable: score(x (n, d), t) -> (n, d).
ScoreFn = Callable[[np.ndarray, float], np.ndarray]


def _dim(d: Any, name: str = "d") -> int:
    d = check_positive_int(d, name)
    check_allocation(2.0 * d * d, name, "a (d, d) matrix")
    return d


def _matrix(a: Any, d: int, name: str) -> np.ndarray:
    """A (d, d) float matrix; a scalar a means a * I."""
    d = _dim(d)
    m = check_finite_array(a, name, ndim=(0, 2))
    if m.ndim == 0:
        m = float(m) * np.eye(d)
    if m.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {m.shape}")
    return m


def _vector(v: Any, d: int, name: str) -> np.ndarray:
    """A (d,) float vector; None means zeros, a scalar v means v * ones."""
    d = _dim(d)
    if v is None:
        return np.zeros(d)
    a = check_finite_array(v, name, ndim=(0, 1))
    if a.ndim == 0:
        a = np.full(d, float(a))
    if a.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {a.shape}")
    return a


def _check_base(base: Any, name: str = "base") -> GaussianMixture:
    if not isinstance(base, GaussianMixture):
        raise TypeError(f"{name} must be a GaussianMixture, got {type(base).__name__}")
    return base


def _check_callable(fn: Any, name: str) -> Any:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    return fn


def _check_box(box: Any) -> tuple[float, float, float, float]:
    b = check_finite_array(box, "box", shape=(4,))
    x0, x1, y0, y1 = (float(v) for v in b)
    if not (x1 > x0 and y1 > y0) or max(abs(b).max(), x1 - x0, y1 - y0) > 1e150:
        raise ValueError("box must be (xmin, xmax, ymin, ymax) with xmin < xmax, ymin < ymax and |values| < 1e150")
    return x0, x1, y0, y1


def _time_nodes(T: float, delta: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes in u = log t over [log delta, log T] (dense near delta): returns
    times and weights for int f(t) dt = int f(e^u) e^u du."""
    lo, hi = math.log(delta), math.log(T)
    x, w = np.polynomial.legendre.leggauss(n)
    u = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    t = np.exp(u)
    return t, 0.5 * (hi - lo) * w * t
