"""Improved precision and recall (Kynkaanniemi et al., 2019) with k-NN balls."""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from .._validation import (
    check_choice,
    check_positive_int,
)
from ..reference import metrics as _ref
from ..results import Record
from ._grid import as_samples


# ----------------------------------------------------------------------------- precision / recall
@dataclasses.dataclass(frozen=True)
class PrecisionRecall(Record):
    """Output of :func:`precision_recall`; unpacks as ``precision, recall = ...``."""

    precision: float
    recall: float

    def __iter__(self) -> Iterator[float]:
        return iter((self.precision, self.recall))


_LARGEST_COORDINATE = 1e150


def _inside_kdtree(ref: np.ndarray, radii: np.ndarray, query: np.ndarray, tree: Any) -> np.ndarray:
    """Whether each query point lies in some ball B(ref_i, radii_i), exactly."""
    k = min(ref.shape[0], 32)
    dist, idx = tree.query(query, k=k)
    dist, idx = dist.reshape(query.shape[0], k), idx.reshape(query.shape[0], k)
    # cKDTree reports a neighbour it cannot place (distance overflowing to inf, for points
    # ~1e155 or more away) as index n: that slot gets radius -inf, never "inside".
    radii_or_none = np.append(radii, -np.inf)
    inside = np.any(dist <= radii_or_none[idx], axis=1)
    rmax = radii.max()
    # Undecided: no hit among the k nearest, yet farther balls could still be large enough.
    todo = np.flatnonzero(~inside & (dist[:, -1] <= rmax))
    if todo.size and k < ref.shape[0]:
        for j, cand in zip(todo, tree.query_ball_point(query[todo], r=rmax), strict=True):
            cand = np.asarray(cand, dtype=np.int64)
            if cand.size:
                inside[j] = bool(np.any(np.linalg.norm(ref[cand] - query[j], axis=1) <= radii[cand]))
    return inside


def precision_recall(real: Any, fake: Any, k: int = 4, *, backend: str = "scipy") -> PrecisionRecall:
    """Improved precision and recall (Kynkaanniemi et al., 2019) with k nearest neighbours.

    The real manifold is the union of balls around the real samples with radius the
    distance to their k-th nearest other real sample; precision is the share of fake
    samples inside it, recall the share of real samples inside the fake manifold. Works
    on raw samples or on features. ``backend``: "scipy" (cKDTree) or "numpy" (brute force).
    """
    from scipy.spatial import cKDTree

    r, f = as_samples(real, "real"), as_samples(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake must have the same dimension, got {r.shape[1]} and {f.shape[1]}")
    k = check_positive_int(k, "k")
    if r.shape[0] <= k or f.shape[0] <= k:
        raise ValueError(f"real and fake both need more than k = {k} samples, got {r.shape[0]} and {f.shape[0]}")
    check_choice(backend, "backend", ("scipy", "numpy"))
    for name, x in (("real", r), ("fake", f)):
        # Squared distances overflow float64 beyond ~1e154: no radius is meaningful there.
        if np.max(np.abs(x)) > _LARGEST_COORDINATE:
            raise ValueError(f"{name} has coordinates larger than {_LARGEST_COORDINATE:g} in magnitude: "
                             "distances overflow float64; rescale the samples (or treat the run as diverged)")
    if backend == "numpy":
        return PrecisionRecall(*_ref.precision_recall(r, f, k))
    tr, tf = cKDTree(r), cKDTree(f)
    rad_r = tr.query(r, k=k + 1)[0][:, k]
    rad_f = tf.query(f, k=k + 1)[0][:, k]
    precision = float(np.mean(_inside_kdtree(r, rad_r, f, tr)))
    recall = float(np.mean(_inside_kdtree(f, rad_f, r, tf)))
    return PrecisionRecall(precision, recall)

