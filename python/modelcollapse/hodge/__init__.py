"""Score errors seen through the Helmholtz-Hodge decomposition (docs/hodge.md).

A model score s_theta(t, x) = grad log p_t(x) + e_t(x) has an error e_t that splits, in
L^2(p_t), into a gradient part grad phi_t (the solution of the weighted Poisson equation
div(p_t grad phi_t) = div(p_t e_t)) and a solenoidal part r_t with div(p_t r_t) = 0.
Only the gradient part moves the marginals.

This package provides

* :class:`PerturbedScore`: compiled, composable score models built on a
  :class:`~modelcollapse.GaussianMixture` -- the exact score times (I + cA), gradient
  perturbations u grad V_t (quadratic potentials, Gaussian bumps), solenoidal fields
  A grad(g p_t) / p_t, linear and random Fourier fields, and sums of them; usable by
  :func:`modelcollapse.sample_reverse` without Python callbacks;
* the gradient-part estimator from samples and the model score only (Stein form):
  :func:`gradient_part_estimate`, :func:`gradient_part_network` (torch),
  :func:`integrated_gradient_part`;
* ground truth: :func:`solve_weighted_poisson_2d` (finite volumes),
  :func:`gaussian_gradient_part` (Lyapunov equation), :func:`kl_bounds`,
  :func:`gaussian_reverse_law` / :func:`true_kl_gaussian` and :func:`fokker_planck_kl_2d`.

Layout (private modules, one idea each): ``_terms`` (error terms and potentials),
``_model`` (the compiled model, Monte Carlo energies), ``_gaussian`` (closed forms),
``_bounds`` (KL bounds), ``_grid`` (2D finite volumes on one staggered grid),
``_fokker_planck`` (true KL on the grid), ``_estimate`` / ``_stein`` / ``_network`` (the
gradient-part estimators), ``_integrated`` (its time integral), ``_common`` (checks).
Every result is a frozen :class:`~modelcollapse.results.Record`.
"""
from __future__ import annotations

from .._types import BACKENDS as BACKENDS  # importable from here before the split
from ..mixture import GaussianMixture as GaussianMixture  # idem
from ._bounds import KLBounds, kl_bounds, kl_to_standard_normal
from ._common import ScoreFn
from ._estimate import RIDGE_GRID, GradientPartEstimate
from ._fokker_planck import FokkerPlanckKL, fokker_planck_kl_2d
from ._gaussian import (
                        GaussianGradientPart,
                        affine_coefficients,
                        gaussian_error_energies,
                        gaussian_gradient_part,
                        gaussian_reverse_law,
                        kl_gaussian,
                        true_kl_gaussian,
)
from ._grid import (
                        DivergenceResidual,
                        GridDecomposition,
                        decompose_on_grid,
                        divergence_residual_2d,
                        solve_weighted_poisson_2d,
)
from ._integrated import IntegratedGradientPart, integrated_gradient_part
from ._model import EnergyEstimate, PerturbedScore, exact_gradient_energy, l2_error
from ._network import NETWORK_ACTIVATIONS, NETWORK_LAPLACIANS, gradient_part_network
from ._stein import gradient_part_estimate, hermite_multi_indices, hermite_stein_system
from ._terms import (
                        FourierTerm,
                        GaussianBump,
                        GradientTerm,
                        LinearTerm,
                        MatrixTerm,
                        QuadraticPotential,
                        SolenoidalTerm,
                        Term,
                        antisymmetric,
)

__all__ = ["PerturbedScore", "MatrixTerm", "LinearTerm", "GradientTerm", "SolenoidalTerm", "FourierTerm",
           "QuadraticPotential", "GaussianBump", "antisymmetric", "l2_error", "exact_gradient_energy",
           "gaussian_gradient_part", "gaussian_error_energies", "affine_coefficients", "kl_gaussian",
           "gaussian_reverse_law", "true_kl_gaussian", "KLBounds", "kl_bounds", "kl_to_standard_normal",
           "GridDecomposition", "solve_weighted_poisson_2d", "decompose_on_grid", "divergence_residual_2d",
           "fokker_planck_kl_2d", "GradientPartEstimate", "hermite_stein_system", "hermite_multi_indices",
           "gradient_part_estimate", "gradient_part_network", "integrated_gradient_part",
           # result records new with the package layout
           "EnergyEstimate", "GaussianGradientPart", "DivergenceResidual", "FokkerPlanckKL", "IntegratedGradientPart",
           "NETWORK_ACTIVATIONS", "NETWORK_LAPLACIANS", "RIDGE_GRID", "ScoreFn", "Term"]
# BACKENDS and GaussianMixture stay importable from here (they were before the split) but
# belong to modelcollapse._types and modelcollapse.mixture.
