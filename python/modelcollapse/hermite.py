"""Hermite coordinates of laws (moments from samples, moments of Gaussian mixtures, degree
energies, Gram-Charlier reconstructions).

The code lives in :mod:`modelcollapse.truncation._hermite` (the Hermite picture of the
truncation recursion, ``docs/truncation.md``); this module keeps the documented path
``modelcollapse.hermite`` working and holds no code.
"""
from __future__ import annotations

from .truncation._hermite import (
                                  BACKENDS,
                                  MAX_DIM,
                                  MAX_INDEX_ENTRIES,
                                  MAX_MOMENT_TERMS,
                                  HermiteMoments,
                                  degree_energies,
                                  gram_charlier,
                                  hermite_moments,
                                  mixture_moments,
                                  multi_indices,
)

__all__ = ["HermiteMoments", "hermite_moments", "mixture_moments", "degree_energies", "gram_charlier",
           "multi_indices", "BACKENDS", "MAX_DIM", "MAX_INDEX_ENTRIES", "MAX_MOMENT_TERMS"]
