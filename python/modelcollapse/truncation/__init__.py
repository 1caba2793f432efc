"""The truncated-diffusion recursion (``docs/truncation.md``): a diffusion model whose
reverse sampler stops at delta_k > 0 is retrained on a mix of real data (fraction a) and its
own samples; its laws stay Gaussian mixtures that contract to a limit law.

- Exact laws (:mod:`._laws`): :class:`Schedule` / :func:`as_schedule`, :class:`SmoothedLaw`,
  :func:`exact_recursion`, :func:`limit_law`, :func:`transfer_function`, :func:`bias_factors`,
  :func:`contraction_factor`, :func:`asymptotic_rate`, :func:`robustness_radius`, :func:`robustness_bound`.
- The Hermite picture (:mod:`._hermite`, also importable as :mod:`modelcollapse.hermite`):
  Hermite moments from samples (compiled) and of mixtures, degree energies, Gram-Charlier.
- Distances (:mod:`._distances`): 1-D mixture quantiles and W2 to or between 1-D mixtures;
  :func:`sliced_w2`, :func:`w2_1d` and :func:`grid_distances` are thin wrappers over
  :mod:`modelcollapse.metrics`.
- Compounding errors (:mod:`._laws`): :func:`affine_score_error`, :func:`compounding_recursion`.
- Simulation (:mod:`._learners`): :class:`IndependentDrawLearner` (independent draws from the
  exact laws), :class:`FittedModelLearner` (truly recursive: empirical score or GMM) and
  :func:`simulate_recursion` on the shared loop of :mod:`modelcollapse.recursion`;
  :func:`expected_moment_sd`, the predicted deviation of the simulated Hermite moments.
"""
from __future__ import annotations

from ._distances import (
                         MAX_PROJECTIONS,
                         grid_distances,
                         mixture_quantiles_1d,
                         sliced_w2,
                         w2_1d,
                         w2_1d_laws,
                         w2_1d_to_law,
)
from ._laws import (
                         MAX_ROUNDS,
                         AsymptoticRate,
                         CompoundingRecursion,
                         ExactRecursion,
                         Schedule,
                         SmoothedLaw,
                         affine_score_error,
                         as_schedule,
                         asymptotic_rate,
                         bias_factors,
                         compounding_recursion,
                         contraction_factor,
                         exact_recursion,
                         limit_law,
                         robustness_bound,
                         robustness_radius,
                         transfer_function,
)
from ._learners import (
                         MODELS,
                         SAMPLERS,
                         ExactLawLearner,  # former name of IndependentDrawLearner
                         FittedModelLearner,
                         IndependentDrawLearner,
                         SimulationResult,
                         expected_moment_sd,
                         hermite_variances_1d,
                         simulate_recursion,
)

__all__ = ["Schedule", "as_schedule", "SmoothedLaw", "ExactRecursion", "exact_recursion", "limit_law",
           "transfer_function", "bias_factors", "contraction_factor", "robustness_radius", "robustness_bound",
           "simulate_recursion", "SimulationResult", "IndependentDrawLearner", "FittedModelLearner", "MODELS",
           "SAMPLERS", "affine_score_error", "compounding_recursion", "CompoundingRecursion", "expected_moment_sd",
           "hermite_variances_1d",
           "asymptotic_rate", "AsymptoticRate",
           "w2_1d", "w2_1d_to_law", "w2_1d_laws", "sliced_w2", "grid_distances", "mixture_quantiles_1d",
           "MAX_ROUNDS", "MAX_PROJECTIONS"]
