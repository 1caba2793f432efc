"""Results of the DAE part: the same field names for simulation and theory.

A training history, simulated (:meth:`DaeRun.path <modelcollapse.dae.DaeRun.path>`) or
integrated (:func:`modelcollapse.dae_theory.integrate_odes`), is a :class:`TrainingPath`
with ``tau``, ``Q``, ``G``, ``M``, ``b``, ``v`` indexed by time first; their
:meth:`~modelcollapse.results.Record.to_frame` tables have the same columns, so overlaying
a simulation on its theory is a ``pandas.concat`` (docs/dae.md, "Results").
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..results import Record


@dataclasses.dataclass(frozen=True)
class TrainingPath(Record):
    """Summary statistics along training time (n records).

    ``tau`` (n,) training time 2 eta steps / d; ``Q`` (n, r, r) = w^T w / d; ``G`` (n, r, R)
    = w^T E / sqrt d for the observation basis E; ``M`` (n, K, r) = w^T mu_c / sqrt d per
    cluster; ``b`` (n,) the skip connection; ``v`` (n, r) the time-encoding weights.
    """

    tau: np.ndarray
    Q: np.ndarray
    G: np.ndarray
    M: np.ndarray
    b: np.ndarray
    v: np.ndarray


@dataclasses.dataclass(frozen=True)
class SpectralPath(TrainingPath):
    """:class:`TrainingPath` of the spectral-density closure, with the bulk densities ``q``
    (n, L, r, r) and the per-cluster ``Qc`` (n, K, r, r) = sum_l rho[c, l] q_l + spike part."""

    q: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 0, 0)))
    Qc: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 0, 0, 0)))


@dataclasses.dataclass(frozen=True)
class GeneratedSamples(Record):
    """Samples of the d-dimensional generative SDE (:func:`modelcollapse.dae.generate`):
    ``Z`` (n, r) = w^T X / sqrt d, ``proj`` (n, R) = E^T X, ``X`` (n, d) or None (when not
    asked for with ``return_full``)."""

    Z: np.ndarray
    proj: np.ndarray
    X: np.ndarray | None = None
