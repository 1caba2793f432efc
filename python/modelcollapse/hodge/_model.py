"""The perturbed score model s_theta = grad log p_t + sum of error terms, compiled, and the
Monte Carlo energies of its error (docs/hodge.md "Score models")."""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _core
from .. import reference as _ref
from .._types import BACKENDS, SeedLike
from .._validation import (
    check_allocation,
    check_bool,
    check_choice,
    check_points,
    check_positive_int,
    check_real,
    check_threads,
)
from ..mixture import GaussianMixture
from ..reference import hodge as _refh
from ..results import Record
from ._terms import _TERM_TYPES, Term


class PerturbedScore:
    """s_theta(t, x) = grad log p_t(x) + sum_j e_j(t, x) for p a Gaussian mixture.

    The model is compiled: :func:`modelcollapse.sample_reverse` runs its whole time loop in
    C++. ``score`` is the model score, ``true_score`` the exact one, ``error`` e_t (all terms
    or a subset), ``gradient_error`` the sum of the gradient-type terms, which is the exact
    Hodge gradient part when no term is "mixed" (see :attr:`known_gradient_part`).

    Parameters
    ----------
    base : GaussianMixture
        The data law p (p_t = S_t p).
    terms : sequence of terms
        :class:`MatrixTerm`, :class:`LinearTerm`, :class:`GradientTerm`,
        :class:`SolenoidalTerm`, :class:`FourierTerm`.

    Examples
    --------
    >>> from modelcollapse import GaussianMixture
    >>> from modelcollapse.hodge import GaussianBump, GradientTerm, SolenoidalTerm, antisymmetric
    >>> p = GaussianMixture([0.5, 0.5], [[-1.5, 0], [1.5, 0]], 0.3)
    >>> A = antisymmetric(2)
    >>> model = PerturbedScore(p, [SolenoidalTerm(A, c=3.0)])       # (I + 3A) grad log p_t
    >>> model.with_terms([GradientTerm(0.5, GaussianBump([0, 0], 0.7))])  # plus u grad V_t
    PerturbedScore(GaussianMixture(K=2, d=2, isotropic), 2 terms)
    """

    _compiled_score_model = True

    def __init__(self, base: GaussianMixture, terms: Sequence[Term] = ()) -> None:
        if not isinstance(base, GaussianMixture):
            raise TypeError(f"base must be a GaussianMixture, got {type(base).__name__}")
        self.base = base
        if isinstance(terms, (str, bytes)) or not isinstance(terms, Sequence) and not hasattr(terms, "__iter__"):
            raise TypeError("terms must be a sequence of terms (MatrixTerm, LinearTerm, ...), "
                            f"got {type(terms).__name__}")
        self.terms = tuple(terms)
        for i, term in enumerate(self.terms):
            if not isinstance(term, _TERM_TYPES):
                raise TypeError(f"terms[{i}] must be a MatrixTerm, LinearTerm, GradientTerm, SolenoidalTerm or "
                                f"FourierTerm, got {type(term).__name__}")
        d = base.dim
        self._compiled = [t.compile(d) for t in self.terms]
        self._nature = [t.nature(d) for t in self.terms]
        self._core_obj: Any = None

    # description
    @property
    def dim(self) -> int:
        return self.base.dim

    @property
    def natures(self) -> tuple[str, ...]:
        """Per term: "gradient", "solenoidal" or "mixed"."""
        return tuple(self._nature)

    @property
    def known_gradient_part(self) -> bool:
        """True when every term is a pure gradient or purely solenoidal (then the Hodge
        gradient part is exactly :meth:`gradient_error`)."""
        return all(n != "mixed" for n in self._nature)

    def with_terms(self, terms: Sequence[Term]) -> PerturbedScore:
        """A new model with ``terms`` added."""
        if isinstance(terms, (str, bytes)) or not hasattr(terms, "__iter__"):
            raise TypeError("terms must be a sequence of terms (MatrixTerm, LinearTerm, ...), "
                            f"got {type(terms).__name__}")
        return PerturbedScore(self.base, self.terms + tuple(terms))

    def __repr__(self) -> str:
        return f"PerturbedScore({self.base!r}, {len(self.terms)} terms)"

    def describe(self) -> str:
        kinds = ", ".join(f"{type(t).__name__}({n})" for t, n in zip(self.terms, self._nature))
        return f"PerturbedScore({self.base.describe()}; {kinds or 'exact'})"

    # evaluation
    def _core(self):
        if self._core_obj is None:
            self._core_obj = _core.PerturbedScoreCore(self.base._core(), self._compiled)
        return self._core_obj

    def _ref_args(self):
        return self.base.weights, self.base.means, self.base.full_covariances(), self._compiled

    def fields(self, x: Any, t: float, mask: Sequence[bool] | None = None, *, threads: int = 0,
               backend: str = "cpp") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log p_t, true score, error of the terms selected by ``mask``) at the rows of x."""
        pts, _ = check_points(x, self.dim)
        t = check_real(t, "t", low=0.0)
        check_choice(backend, "backend", BACKENDS)
        if mask is not None:
            if isinstance(mask, (str, bytes)) or not hasattr(mask, "__iter__"):
                raise TypeError(f"mask must be a sequence of booleans (one per term), got {type(mask).__name__}")
            mask = [check_bool(m, "mask entries") for m in mask]
            if len(mask) != len(self.terms):
                raise ValueError(f"mask must have {len(self.terms)} entries (one per term)")
        if backend == "cpp":
            out = self._core().fields(pts, t, mask, check_threads(threads))
        else:
            w, m, c, terms = self._ref_args()
            out = _refh.fields(w, m, c, terms, pts, t, mask)
        return _finite_fields(out, pts)

    def score(self, x: Any, t: float = 0.0, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """Model score s_theta(t, x) at the rows of x."""
        _, s, e = self.fields(x, t, threads=threads, backend=backend)
        return s + e

    def true_score(self, x: Any, t: float = 0.0, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """grad log p_t at the rows of x."""
        return self.fields(x, t, threads=threads, backend=backend)[1]

    def error(self, x: Any, t: float = 0.0, mask: Sequence[bool] | None = None, *, threads: int = 0,
              backend: str = "cpp") -> np.ndarray:
        """e_t = s_theta - grad log p_t (of the terms selected by ``mask``)."""
        return self.fields(x, t, mask, threads=threads, backend=backend)[2]

    def gradient_error(self, x: Any, t: float = 0.0, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """Sum of the gradient-type terms: the exact Hodge gradient part when
        :attr:`known_gradient_part`; raises otherwise."""
        if not self.known_gradient_part:
            raise ValueError("this model has 'mixed' terms: its gradient part is not known in closed form "
                             "(use solve_weighted_poisson_2d, gaussian_gradient_part or gradient_part_estimate)")
        mask = [n == "gradient" for n in self._nature]
        if not any(mask):
            return np.zeros_like(check_points(x, self.dim)[0])
        return self.error(x, t, mask, threads=threads, backend=backend)

    def logpdf(self, x: Any, t: float = 0.0, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """log p_t (the true law; the model does not define its own density)."""
        return self.base.logpdf(x, t, threads=threads, backend=backend)

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        return self.score(x, t)

    def sample(self, n_samples: int, *, seed: SeedLike = 0, t: float = 0.0,
               threads: int = 0) -> np.ndarray:
        """Samples of the true p_t."""
        n = check_positive_int(n_samples, "n_samples", minimum=0)
        check_allocation(2.0 * n * self.dim, "n_samples", "the samples")
        return self.base.sample(n, seed=seed, t=t, threads=threads)

    def sample_smoothed(self, n_samples: int, t: float, *, seed: SeedLike = 0,
                        threads: int = 0) -> np.ndarray:
        """Samples of p_t (used by the reverse sampler's ``init="exact"``)."""
        return self.sample(n_samples, seed=seed, t=t, threads=threads)

    def _numpy_score_fn(self):
        """(score_fn, exact_init) in numpy, for the reference sampler."""
        w, m, c, terms = self._ref_args()

        def exact(n, T, rng):
            return _ref.mixture.sample(w, m, c, n, int(rng.integers(0, 2**63)), T)

        return (lambda x, t: _refh.model_score(w, m, c, terms, x, t)), exact


def _finite_fields(out: tuple[np.ndarray, np.ndarray, np.ndarray], pts: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fields, or a ValueError naming the first row of x where they overflow (a point so
    far from the law that its log density or the terms are not representable)."""
    logp, score, err = out
    bad = ~(np.isfinite(logp) & np.all(np.isfinite(score), axis=1) & np.all(np.isfinite(err), axis=1))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"x row {i} is too far from the law (max |x| = {np.max(np.abs(pts[i])):.3g}): the model's "
                         "log density, score or error overflows float64; rescale x")
    return out


def _check_model(model: Any) -> PerturbedScore:
    if not isinstance(model, PerturbedScore):
        raise TypeError(f"model must be a PerturbedScore, got {type(model).__name__}")
    return model


def _check_mc(model: Any, n: Any) -> int:
    """Model type and sample size of a Monte Carlo estimate (n >= 2 for a standard error)."""
    _check_model(model)
    n = check_positive_int(n, "n_samples", minimum=2)
    check_allocation(4.0 * n * model.dim, "n_samples", "the Monte Carlo samples")
    return n


def _finite_sq(sq: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(sq)):
        raise ValueError("the squared error overflows: the model's terms are too large at these samples")
    return sq


@dataclasses.dataclass(frozen=True)
class EnergyEstimate(Record):
    """Monte Carlo estimate of an energy E_{p_t}|f|^2 (returned by :func:`l2_error` and
    :func:`exact_gradient_energy`).

    value : the sample mean of |f(x_i)|^2 over n samples x_i ~ p_t.
    se : its standard error.
    n : number of samples.
    t : diffusion time.
    """

    value: float
    se: float
    n: int
    t: float


def _mc_energy(model: PerturbedScore, t: float, n: int, seed: SeedLike, threads: int, gradient: bool
               ) -> EnergyEstimate:
    n = _check_mc(model, n)
    x = model.sample(n, seed=seed, t=t, threads=threads)
    field = model.gradient_error if gradient else model.error
    with np.errstate(over="ignore"):
        sq = _finite_sq(np.sum(field(x, t, threads=threads) ** 2, axis=1))
    return EnergyEstimate(value=float(sq.mean()), se=float(sq.std(ddof=1) / np.sqrt(n)), n=n, t=float(t))


def l2_error(model: PerturbedScore, t: float, n_samples: int = 20000, *, seed: SeedLike = 0, threads: int = 0
             ) -> EnergyEstimate:
    """Monte Carlo E_{p_t}|e_t|^2 (the L2 score error) and its standard error.

    Parameters
    ----------
    model : PerturbedScore
    t : float
        Diffusion time.
    n_samples : int
        Samples of p_t (>= 2).
    seed : int, numpy Generator or None
    threads : int
        Threads of the compiled sampler and model (0: all).

    Returns
    -------
    EnergyEstimate
        ``value`` and ``se`` (``est.value``, or ``est["value"]``).
    """
    return _mc_energy(model, t, n_samples, seed, threads, gradient=False)


def exact_gradient_energy(model: PerturbedScore, t: float, n_samples: int = 20000, *, seed: SeedLike = 0,
                          threads: int = 0
                          ) -> EnergyEstimate:
    """Monte Carlo E_{p_t}|grad phi_t|^2 for models with :attr:`PerturbedScore.known_gradient_part`.

    Same parameters and result as :func:`l2_error`; raises ValueError for a model with
    "mixed" terms.
    """
    return _mc_energy(model, t, n_samples, seed, threads, gradient=True)
