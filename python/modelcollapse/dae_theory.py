"""Asymptotic theory of the high-dimensional DAE (docs/dae.md, "Theory").

The code lives in :mod:`modelcollapse.dae`: the closed forms, the training ODEs and the
generation theory in ``dae/_theory.py``, the spectral-density closure in
``dae/_spectral.py``, the machinery they share in ``dae/_odes.py``. This module re-exports
their public names so that ``from modelcollapse import dae_theory`` keeps working.
"""
from __future__ import annotations

from .dae._records import SpectralPath, TrainingPath
from .dae._spectral import (
                            SpectralTarget,
                            SpectrumBins,
                            bin_spectrum,
                            integrate_spectral_odes,
                            level_overlaps,
                            spectral_ode_rhs,
                            spectral_target,
)
from .dae._theory import (
                            TheoryTarget,
                            generation_target,
                            integrate_odes,
                            linear_binary_fixed_point,
                            ode_rhs,
                            projected_law_samples,
                            skip_closed_form,
                            skip_for_variance,
                            theory_target,
                            time_moments,
                            z_sde_samples,
)

__all__ = [
    "time_moments", "skip_closed_form", "skip_for_variance", "linear_binary_fixed_point", "TheoryTarget", "theory_target",
    "ode_rhs", "integrate_odes", "SpectrumBins", "bin_spectrum", "level_overlaps", "SpectralTarget", "spectral_target",
    "spectral_ode_rhs", "integrate_spectral_odes", "z_sde_samples", "projected_law_samples", "generation_target",
    "TrainingPath", "SpectralPath",
]
