"""The high-dimensional denoising auto-encoder of Cui et al. (docs/dae.md).

Layout (private modules, public names re-exported here):

- ``_targets``: the laws of the data (:class:`DaeTarget` and its constructors);
- ``_activations``: the one list of activations (:data:`ACTIVATIONS`) and their formulas;
- ``_train``: online SGD in C++ (:func:`train`, :class:`DaeRun`);
- ``_generate``: the generative SDE (:func:`sampler_schedule`, :func:`generate`) and
  :func:`projected_hellinger`;
- ``_learner``: generations and :class:`DaeLearner` for the retraining loop;
- ``_records``: the results shared by simulation and theory (:class:`TrainingPath`);
- ``_theory``, ``_spectral``, ``_odes``: the asymptotic theory, public as
  :mod:`modelcollapse.dae_theory`.
"""
from __future__ import annotations

from ._activations import ACTIVATIONS
from ._generate import SamplerSchedule, generate, projected_hellinger, sampler_schedule
from ._learner import DaeLearner, fit_generation, sample_generation
from ._records import GeneratedSamples, TrainingPath
from ._targets import (
                       DaeTarget,
                       diagonal_mixture,
                       digits_covariance,
                       digits_target,
                       empirical_target,
                       gaussian_target,
                       isotropic_mixture,
)
from ._train import DaeRun, train, training_steps

__all__ = [
    "ACTIVATIONS", "DaeTarget", "DaeRun", "isotropic_mixture", "diagonal_mixture", "gaussian_target",
    "digits_target", "empirical_target", "train", "training_steps", "sampler_schedule", "generate",
    "fit_generation", "sample_generation", "DaeLearner", "projected_hellinger", "digits_covariance",
    "SamplerSchedule", "TrainingPath", "GeneratedSamples",
]
