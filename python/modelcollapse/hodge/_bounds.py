"""Girsanov and marginal (gradient-part) bounds on the KL divergence reached by the reverse
SDE with a perturbed score (docs/hodge.md "Formulas")."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._types import SeedLike
from .._validation import check_allocation, check_choice, check_positive_int, check_real
from ..mixture import GaussianMixture
from ..results import Record
from ._common import _check_base, _check_box, _time_nodes
from ._gaussian import _gaussian_moments_t, gaussian_error_energies, kl_gaussian
from ._grid import decompose_on_grid
from ._model import PerturbedScore, _check_model, exact_gradient_energy, l2_error
from ._terms import GradientTerm, LinearTerm, MatrixTerm, QuadraticPotential, SolenoidalTerm


@dataclasses.dataclass(frozen=True)
class KLBounds(Record):
    """Girsanov and marginal (gradient-part) bounds on KL(p_delta || q_delta).

    girsanov = init_kl + int_delta^T E|e_t|^2 dt; marginal = init_kl + int E|grad phi_t|^2 dt.
    ``times``, ``l2`` and ``gradient`` hold the integrands on the quadrature grid.
    """

    girsanov: float
    marginal: float
    init_kl: float
    l2_integral: float
    gradient_integral: float
    times: np.ndarray
    l2: np.ndarray
    gradient: np.ndarray
    method: str


def kl_to_standard_normal(base: GaussianMixture, T: float, n_samples: int = 200000, *, seed: SeedLike = 0) -> float:
    """KL(p_T || N(0, I)): closed form for a Gaussian, Monte Carlo for a mixture.

    Parameters
    ----------
    base : GaussianMixture
        The data law p (p_T = S_T p).
    T : float
        Diffusion time.
    n_samples, seed : Monte Carlo samples and their seed (mixtures only).
    """
    _check_base(base)
    T = check_real(T, "T", low=0.0)
    n = check_positive_int(n_samples, "n_samples")
    check_allocation(4.0 * n * base.dim, "n_samples", "the Monte Carlo samples")
    if base.n_components == 1:
        m, C = _gaussian_moments_t(base, T)
        return kl_gaussian(m, C, np.zeros(base.dim), np.eye(base.dim))
    x = base.sample(n, seed=seed, t=T)
    logpi = -0.5 * np.sum(x * x, axis=1) - 0.5 * base.dim * np.log(2 * np.pi)
    return float(np.mean(base.logpdf(x, T) - logpi))


def _is_affine(term: Any) -> bool:
    """Whether the term's error is affine in x (then a Gaussian base has closed forms)."""
    return (isinstance(term, (MatrixTerm, LinearTerm))
            or (isinstance(term, GradientTerm) and isinstance(term.potential, QuadraticPotential))
            or (isinstance(term, SolenoidalTerm) and term.bump is None))


def _auto_method(model: PerturbedScore) -> str:
    """The first ground truth of the gradient part that applies to ``model``."""
    if model.base.n_components == 1 and all(_is_affine(t) for t in model.terms):
        return "gaussian"
    if model.known_gradient_part:
        return "exact"
    if model.dim == 2:
        return "grid"
    raise ValueError("no ground truth for the gradient part of this model (d > 2 with mixed terms)")


def kl_bounds(model: PerturbedScore, T: float, delta: float, *, n_times: int = 24, n_samples: int = 20000,
              method: str = "auto", seed: int = 0, grid_n: int = 160, box: Any = None) -> KLBounds:
    """Girsanov and marginal KL bounds for the reverse SDE from N(0, I) with ``model``.

    Parameters
    ----------
    model : PerturbedScore
    T, delta : float
        Horizon and early-stopping time (0 < delta < T).
    n_times : int
        Gauss-Legendre nodes in log t of the time integral.
    n_samples : int
        Monte Carlo samples per node (method "exact").
    method : {"auto", "gaussian", "exact", "grid"}
        ``"gaussian"`` (closed form: Gaussian base, affine terms), ``"exact"`` (Monte
        Carlo, gradient part known from the term types), ``"grid"`` (2D finite-volume solver
        for the gradient part, Monte Carlo not used), or ``"auto"`` (the first that applies).
    seed : int
        Seed of the Monte Carlo estimates (node i uses seed + i).
    grid_n, box : grid of method "grid" (cells per axis; box default: 6 sd around the modes).

    Returns
    -------
    KLBounds
    """
    _check_model(model)
    T = check_real(T, "T", low=0.0, low_open=True)
    delta = check_real(delta, "delta", low=0.0, low_open=True, high=T, high_open=True)
    check_choice(method, "method", ("auto", "gaussian", "exact", "grid"))
    n_times = check_positive_int(n_times, "n_times", maximum=10_000)   # Gauss-Legendre nodes
    n_samples = check_positive_int(n_samples, "n_samples", minimum=2)
    check_allocation(4.0 * n_samples * model.dim, "n_samples", "the Monte Carlo samples")
    grid_n = check_positive_int(grid_n, "grid_n", minimum=4)
    check_allocation(60.0 * grid_n * grid_n, "grid_n", "the finite-volume system")
    if box is not None:
        box = _check_box(box)
    if method == "auto":
        method = _auto_method(model)
    times, weights = _time_nodes(T, delta, n_times)
    l2 = np.empty(n_times)
    gr = np.empty(n_times)
    for i, t in enumerate(times):
        if method == "gaussian":
            e = gaussian_error_energies(model, t)
            l2[i], gr[i] = e.total, e.gradient
        elif method == "exact":
            l2[i] = l2_error(model, t, n_samples, seed=seed + i).value
            gr[i] = exact_gradient_energy(model, t, n_samples, seed=seed + i).value
        else:
            dec = decompose_on_grid(model, t, n=grid_n, box=box)
            l2[i], gr[i] = dec.total_energy, dec.gradient_energy
    init = kl_to_standard_normal(model.base, T, seed=seed)
    li, gi = float(weights @ l2), float(weights @ gr)
    return KLBounds(girsanov=init + li, marginal=init + gi, init_kl=init, l2_integral=li, gradient_integral=gi,
                    times=times, l2=l2, gradient=gr, method=method)


