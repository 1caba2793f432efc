"""Inputs of the distances: sample arrays, weights and regular grids."""
from __future__ import annotations

import functools
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import (
    check_allocation,
    check_finite_array,
    check_positive_int,
)

BANDWIDTH_RULES = ("scott", "silverman")
KDE_METHODS = ("exact", "binned")
HELLINGER_KINDS = ("H", "H2", "cui")
WASSERSTEIN_METHODS = ("exact", "sliced", "1d")
#: Largest n * m for which ``wasserstein(method="exact")`` builds the full cost matrix.
EXACT_OT_MAX_PAIRS = 25_000_000
#: Fraction of ``tol`` given to the kernel truncation (the rest goes to linear binning).
_TRUNCATION_SHARE = 0.1
_MAX_REFINE = 64


# ----------------------------------------------------------------------------- inputs
def as_samples(x: Any, name: str = "samples") -> np.ndarray:
    """Samples as a float64 (n, d) array: a 1-D array is n one-dimensional samples."""
    arr = check_finite_array(x, name, ndim=(1, 2))
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one column (the dimension), got shape {arr.shape}")
    return arr


def _as_weights(weights: Any, n: int) -> np.ndarray:
    if weights is None:
        return np.full(n, 1.0 / n)
    w = check_finite_array(weights, "weights", ndim=1)
    if w.shape[0] != n:
        raise ValueError(f"weights has {w.shape[0]} entries but there are {n} samples (one weight per sample)")
    if np.any(w < 0):
        raise ValueError("weights must be non-negative")
    total = w.sum()
    if not total > 0:
        raise ValueError("weights must have a positive sum")
    return np.ascontiguousarray(w / total)


def _is_density(obj: Any) -> bool:
    return hasattr(obj, "logpdf") and callable(obj.logpdf)


@dataclass(frozen=True)
class Grid:
    """A tensor grid: one increasing 1-D array of coordinates per axis (d = 1 or 2).

    Values on the grid have shape ``grid.shape`` (axis 0 first, ``indexing="ij"``).
    """

    axes: tuple[np.ndarray, ...]

    def __post_init__(self) -> None:
        if isinstance(self.axes, (str, bytes)) or not isinstance(self.axes, (tuple, list, np.ndarray)):
            raise TypeError(f"axes must be a tuple of 1-D arrays (one per axis), got {type(self.axes).__name__}")
        axes = []
        for a, ax in enumerate(self.axes):
            arr = check_finite_array(ax, f"grid axis {a}", ndim=1)
            if arr.size > 1:
                with np.errstate(over="ignore", invalid="ignore"):
                    step = np.diff(arr)
                if not np.all(np.isfinite(step)):
                    raise ValueError(f"grid axis {a} spans more than the float64 range (its steps overflow)")
                if np.any(step <= 0):
                    raise ValueError(f"grid axis {a} must be strictly increasing")
            axes.append(arr)
        if not axes:
            raise ValueError("axes must hold at least one axis (a grid needs one)")
        object.__setattr__(self, "axes", tuple(axes))

    @classmethod
    def regular(cls, lower: Sequence[float], upper: Sequence[float], n: int | Sequence[int]) -> Grid:
        """Equally spaced axes from ``lower`` to ``upper`` (one entry per axis) with ``n`` points each."""
        low = np.atleast_1d(check_finite_array(lower, "lower", ndim=(0, 1)))
        high = np.atleast_1d(check_finite_array(upper, "upper", ndim=(0, 1)))
        if high.shape != low.shape:
            raise ValueError(f"upper must have the shape of lower {low.shape}, got {high.shape}")
        counts: list[Any]
        if isinstance(n, numbers.Integral) and not isinstance(n, bool):
            counts = [n] * low.size
        elif isinstance(n, (tuple, list, np.ndarray)) and len(n) == low.size:
            counts = list(n)
        else:
            raise TypeError(f"n must be an int or one int per axis ({low.size}), got {n!r:.80}")
        ns = [check_positive_int(k, "n", minimum=1) for k in counts]
        if any(k > 1 and not hi > lo for k, lo, hi in zip(ns, low, high, strict=True)):
            raise ValueError(f"upper must be > lower on every axis, got lower={low.tolist()} upper={high.tolist()}")
        check_allocation(float(sum(ns)), "n", "the grid axes")
        return cls(tuple(np.linspace(lo, hi, int(k)) for lo, hi, k in zip(low, high, ns, strict=True)))

    @property
    def dim(self) -> int:
        return len(self.axes)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(ax.size for ax in self.axes)

    @functools.cached_property
    def is_regular(self) -> bool:
        # cached: hellinger asks up to four times per call, each an O(grid) pass over the axes
        for ax in self.axes:
            if ax.size < 2:
                return False
            step = np.diff(ax)
            if not np.allclose(step, step[0], rtol=1e-9, atol=0.0):
                return False
        return True

    @property
    def steps(self) -> np.ndarray:
        return np.array([(ax[-1] - ax[0]) / (ax.size - 1) if ax.size > 1 else 1.0 for ax in self.axes])

    @property
    def cell_volume(self) -> float:
        """Volume of one cell (product of the steps); the grid must be regular."""
        if not self.is_regular:
            raise ValueError("cell_volume needs a regular grid (equally spaced axes)")
        return float(np.prod(self.steps))

    def points(self) -> np.ndarray:
        """All grid points as an (m, d) array, axis 0 slowest."""
        check_allocation(float(np.prod(np.array(self.shape, dtype=float))) * (self.dim + 1), "grid",
                         "the grid points")
        mesh = np.meshgrid(*self.axes, indexing="ij")
        return np.ascontiguousarray(np.stack([m.ravel() for m in mesh], axis=1))


def _as_grid(grid: Any, d: int) -> tuple[Grid | None, np.ndarray | None]:
    """(Grid, None) for tensor grids, (None, points) for arbitrary points."""
    if isinstance(grid, Grid):
        g = grid
    elif isinstance(grid, tuple):
        g = Grid(grid)
    else:
        arr = check_finite_array(grid, "grid", ndim=(1, 2))
        if arr.ndim == 1:
            if d != 1:
                raise ValueError(f"grid is a 1-D array but the samples have d = {d}; pass a tuple of "
                                 f"{d} axes, a Grid, or an (m, {d}) array of points")
            g = Grid((arr,))
        else:
            if arr.shape[1] != d:
                raise ValueError(f"grid points must have {d} columns (the dimension), got shape {arr.shape}")
            return None, arr
    if g.dim != d:
        raise ValueError(f"grid has {g.dim} axes but the samples have d = {d}")
    return g, None
