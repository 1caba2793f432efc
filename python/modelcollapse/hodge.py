"""Score errors seen through the Helmholtz-Hodge decomposition (spec ``hodge.md``).

A model score s_theta(t, x) = grad log p_t(x) + e_t(x) has an error e_t that splits, in
L^2(p_t), into a gradient part grad phi_t (the solution of the weighted Poisson equation
div(p_t grad phi_t) = div(p_t e_t)) and a solenoidal part r_t with div(p_t r_t) = 0.
Only the gradient part moves the marginals.

This module provides

* :class:`PerturbedScore`: compiled, composable score models built on a
  :class:`~modelcollapse.GaussianMixture` -- the exact score times (I + cA), gradient
  perturbations u grad V_t (quadratic potentials, Gaussian bumps), solenoidal fields
  A grad(g p_t) / p_t, linear and random Fourier fields, and sums of them; usable by
  :func:`modelcollapse.sample_reverse` without Python callbacks;
* the gradient-part estimator from samples and the model score only (Stein form):
  :func:`gradient_part_estimate`, :func:`integrated_gradient_part`;
* ground truth: :func:`solve_weighted_poisson_2d` (finite volumes),
  :func:`gaussian_gradient_part` (Lyapunov equation), :func:`kl_bounds`,
  :func:`gaussian_reverse_law` / :func:`true_kl_gaussian` and :func:`fokker_planck_kl_2d`.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Callable, Sequence

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from . import _core
from . import reference as _ref
from ._validation import (as_generator, as_seed, check_allocation, check_bool, check_choice, check_finite_array,
                          check_points, check_positive_int, check_real, check_threads)
from .mixture import GaussianMixture
from .reference import hodge as _refh

BACKENDS = ("cpp", "numpy")
ScoreFn = Callable[[np.ndarray, float], np.ndarray]


# ---------------------------------------------------------------------------------------
# Potentials and error terms
# ---------------------------------------------------------------------------------------

def _dim(d: Any, name: str = "d") -> int:
    d = check_positive_int(d, name)
    check_allocation(2.0 * d * d, name, "a (d, d) matrix")
    return d


def _matrix(a: Any, d: int, name: str) -> np.ndarray:
    d = _dim(d)
    m = check_finite_array(a, name, ndim=(0, 2))
    if m.ndim == 0:
        m = float(m) * np.eye(d)
    if m.shape != (d, d):
        raise ValueError(f"{name} must have shape ({d}, {d}), got {m.shape}")
    return m


def _vector(v: Any, d: int, name: str) -> np.ndarray:
    d = _dim(d)
    if v is None:
        return np.zeros(d)
    a = check_finite_array(v, name, ndim=(0, 1))
    if a.ndim == 0:
        a = np.full(d, float(a))
    if a.shape != (d,):
        raise ValueError(f"{name} must have shape ({d},), got {a.shape}")
    return a


def antisymmetric(d: int, seed: int | np.random.Generator | None = 0, scale: float = 1.0) -> np.ndarray:
    """A random antisymmetric d x d matrix (for d = 2: +-scale * [[0, -1], [1, 0]]), normalised
    to Frobenius norm scale * sqrt(2)."""
    d = check_positive_int(d, "d", 2)
    check_allocation(2.0 * d * d, "d", "the matrix")
    scale = check_real(scale, "scale", low=-1e150, high=1e150)
    if d == 2:
        return scale * np.array([[0.0, -1.0], [1.0, 0.0]])
    rng = as_generator(seed)
    B = rng.standard_normal((d, d))
    A = B - B.T
    return scale * A * (np.sqrt(2.0) / np.linalg.norm(A))


@dataclasses.dataclass(frozen=True)
class QuadraticPotential:
    """V_t(x) = 1/2 (x - c_t)^T Q (x - c_t), c_t = e^{-t} center (Q symmetric)."""

    Q: Any
    center: Any = None


@dataclasses.dataclass(frozen=True)
class GaussianBump:
    """g_t(x) = height * exp(-|x - c_t|^2 / (2 l_t^2)), c_t = e^{-t} center,
    l_t^2 = e^{-2t} width^2 + sigma_t^2 (the bump is carried along by the forward flow)."""

    center: Any
    width: float = 1.0
    height: float = 1.0


@dataclasses.dataclass(frozen=True)
class MatrixTerm:
    """e_t = M grad log p_t. With M = cA, A antisymmetric, the model (I + cA) grad log p_t
    has exactly the right marginals: the error is purely solenoidal."""

    M: Any

    def compile(self, d: int) -> dict:
        return {"kind": 0, "mat": _matrix(self.M, d, "M")}

    def nature(self, d: int) -> str:
        M = _matrix(self.M, d, "M")
        if np.allclose(M, -M.T, atol=1e-14):
            return "solenoidal"
        return "mixed"


@dataclasses.dataclass(frozen=True)
class LinearTerm:
    """e_t = E (x - c_t) + f, c_t = e^{-t} center. A gradient when E is symmetric; otherwise
    its decomposition depends on p_t (closed form for Gaussians: :func:`gaussian_gradient_part`)."""

    E: Any
    f: Any = None
    center: Any = None

    def compile(self, d: int) -> dict:
        return {"kind": 1, "mat": _matrix(self.E, d, "E"), "vec": _vector(self.f, d, "f"),
                "center": _vector(self.center, d, "center")}

    def nature(self, d: int) -> str:
        E = _matrix(self.E, d, "E")
        return "gradient" if np.allclose(E, E.T, atol=1e-14) else "mixed"


@dataclasses.dataclass(frozen=True)
class GradientTerm:
    """e_t = u grad V_t for a :class:`QuadraticPotential` or a :class:`GaussianBump` potential.
    Purely a gradient: its weighted Hodge gradient part is itself."""

    u: float
    potential: QuadraticPotential | GaussianBump

    def compile(self, d: int) -> dict:
        u = check_real(self.u, "u")
        pot = self.potential
        if isinstance(pot, QuadraticPotential):
            Q = _matrix(pot.Q, d, "Q")
            if not np.allclose(Q, Q.T, atol=1e-12):
                raise ValueError("quadratic potential needs a symmetric Q")
            return {"kind": 1, "mat": u * 0.5 * (Q + Q.T), "vec": np.zeros(d), "center": _vector(pot.center, d, "center")}
        if isinstance(pot, GaussianBump):
            w = check_real(pot.width, "width", low=0.0, low_open=True)
            return {"kind": 2, "center": _vector(pot.center, d, "center"), "amp": u * check_real(pot.height, "height"),
                    "width2": w * w}
        raise TypeError("potential must be a QuadraticPotential or a GaussianBump")

    def nature(self, d: int) -> str:
        return "gradient"


@dataclasses.dataclass(frozen=True)
class SolenoidalTerm:
    """e_t = c A grad h_t / p_t with h_t = g_t p_t (g_t a :class:`GaussianBump`, or g = 1 for
    bump=None, which gives c A grad log p_t). div(p_t e_t) = c sum_ij A_ij d_i d_j h_t = 0 for
    antisymmetric A, so the error is invisible to the marginals."""

    A: Any
    c: float = 1.0
    bump: GaussianBump | None = None

    def compile(self, d: int) -> dict:
        A = _matrix(self.A, d, "A")
        if not np.allclose(A, -A.T, atol=1e-12):
            raise ValueError("a solenoidal term needs an antisymmetric A (A = -A^T)")
        c = check_real(self.c, "c")
        if self.bump is None:
            return {"kind": 0, "mat": c * A}
        w = check_real(self.bump.width, "width", low=0.0, low_open=True)
        return {"kind": 3, "mat": A, "center": _vector(self.bump.center, d, "center"),
                "amp": c * check_real(self.bump.height, "height"), "width2": w * w}

    def nature(self, d: int) -> str:
        return "solenoidal"


@dataclasses.dataclass(frozen=True)
class FourierTerm:
    """e(x) = sum_j coef_j cos(omega_j . x + phase_j): a generic smooth field (both parts)."""

    omega: Any
    phase: Any
    coef: Any

    @classmethod
    def random(cls, d: int, n_freq: int = 8, amplitude: float = 0.3, bandwidth: float = 1.0,
               seed: int | np.random.Generator | None = 0) -> "FourierTerm":
        d = check_positive_int(d, "d")
        n_freq = check_positive_int(n_freq, "n_freq")
        check_allocation(2.0 * n_freq * d, "n_freq", "the frequencies")
        amplitude = check_real(amplitude, "amplitude", low=-1e150, high=1e150)
        bandwidth = check_real(bandwidth, "bandwidth", low=1e-150, high=1e150)
        rng = as_generator(seed)
        return cls(rng.standard_normal((n_freq, d)) / bandwidth, rng.uniform(0, 2 * np.pi, n_freq),
                   amplitude * rng.standard_normal((n_freq, d)) / np.sqrt(n_freq))

    def compile(self, d: int) -> dict:
        d = _dim(d)
        om = check_finite_array(self.omega, "omega", ndim=2)
        if om.shape[1] != d:
            raise ValueError(f"omega must have shape (J, {d})")
        J = om.shape[0]
        return {"kind": 4, "omega": om, "phase": check_finite_array(self.phase, "phase", shape=(J,)),
                "coef": check_finite_array(self.coef, "coef", shape=(J, d))}

    def nature(self, d: int) -> str:
        return "mixed"


Term = MatrixTerm | LinearTerm | GradientTerm | SolenoidalTerm | FourierTerm
_TERM_TYPES = (MatrixTerm, LinearTerm, GradientTerm, SolenoidalTerm, FourierTerm)


# ---------------------------------------------------------------------------------------
# The perturbed score model
# ---------------------------------------------------------------------------------------

class PerturbedScore:
    """s_theta(t, x) = grad log p_t(x) + sum_j e_j(t, x) for p a Gaussian mixture.

    Parameters
    ----------
    base : GaussianMixture
        The data law p (p_t = S_t p).
    terms : sequence of terms
        :class:`MatrixTerm`, :class:`LinearTerm`, :class:`GradientTerm`,
        :class:`SolenoidalTerm`, :class:`FourierTerm`.

    The model is compiled: :func:`modelcollapse.sample_reverse` runs its whole time loop in
    C++. ``score`` is the model score, ``true_score`` the exact one, ``error`` e_t (all terms
    or a subset), ``gradient_error`` the sum of the gradient-type terms, which is the exact
    Hodge gradient part when no term is "mixed" (see :attr:`known_gradient_part`).

    Examples
    --------
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
            raise TypeError(f"terms must be a sequence of terms (MatrixTerm, LinearTerm, ...), got {type(terms).__name__}")
        self.terms = tuple(terms)
        for i, term in enumerate(self.terms):
            if not isinstance(term, _TERM_TYPES):
                raise TypeError(f"terms[{i}] must be a MatrixTerm, LinearTerm, GradientTerm, SolenoidalTerm or "
                                f"FourierTerm, got {type(term).__name__}")
        d = base.dim
        self._compiled = [t.compile(d) for t in self.terms]
        self._nature = [t.nature(d) for t in self.terms]
        self._core_obj = None

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

    def with_terms(self, terms: Sequence[Term]) -> "PerturbedScore":
        """A new model with ``terms`` added."""
        if isinstance(terms, (str, bytes)) or not hasattr(terms, "__iter__"):
            raise TypeError(f"terms must be a sequence of terms (MatrixTerm, LinearTerm, ...), got {type(terms).__name__}")
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
            return self._core().fields(pts, t, mask, check_threads(threads))
        w, m, c, terms = self._ref_args()
        return _refh.fields(w, m, c, terms, pts, t, mask)

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

    def sample(self, n: int, seed: int | np.random.Generator | None = None, *, t: float = 0.0,
               threads: int = 0) -> np.ndarray:
        """Samples of the true p_t."""
        n = check_positive_int(n, "n", minimum=0)
        check_allocation(2.0 * n * self.dim, "n", "the samples")
        return self.base.sample(n, seed, t=t, threads=threads)

    def sample_smoothed(self, n: int, t: float, seed: int | np.random.Generator | None = None,
                        *, threads: int = 0) -> np.ndarray:
        """Samples of p_t (used by the reverse sampler's ``init="exact"``)."""
        n = check_positive_int(n, "n", minimum=0)
        check_allocation(2.0 * n * self.dim, "n", "the samples")
        return self.base.sample(n, seed, t=t, threads=threads)

    def _numpy_score_fn(self):
        """(score_fn, exact_init) in numpy, for the reference sampler."""
        w, m, c, terms = self._ref_args()

        def exact(n, T, rng):
            return _ref.mixture.sample(w, m, c, n, int(rng.integers(0, 2**63)), T)

        return (lambda x, t: _refh.model_score(w, m, c, terms, x, t)), exact


def _check_model(model: Any) -> "PerturbedScore":
    if not isinstance(model, PerturbedScore):
        raise TypeError(f"model must be a PerturbedScore, got {type(model).__name__}")
    return model


def _check_base(base: Any, name: str = "base") -> GaussianMixture:
    if not isinstance(base, GaussianMixture):
        raise TypeError(f"{name} must be a GaussianMixture, got {type(base).__name__}")
    return base


def _check_callable(fn: Any, name: str) -> Any:
    if not callable(fn):
        raise TypeError(f"{name} must be callable, got {type(fn).__name__}")
    return fn


def _check_box(box: Any) -> tuple[float, float, float, float]:
    b = check_finite_array(box, "box", shape=(4,))
    x0, x1, y0, y1 = (float(v) for v in b)
    if not (x1 > x0 and y1 > y0) or max(abs(b).max(), x1 - x0, y1 - y0) > 1e150:
        raise ValueError("box must be (xmin, xmax, ymin, ymax) with xmin < xmax, ymin < ymax and |values| < 1e150")
    return x0, x1, y0, y1


def _check_mc(model: Any, n: Any) -> int:
    """Model type and sample size of a Monte Carlo estimate (n >= 2 for a standard error)."""
    _check_model(model)
    n = check_positive_int(n, "n", minimum=2)
    check_allocation(4.0 * n * model.dim, "n", "the Monte Carlo samples")
    return n


def _finite_sq(sq: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(sq)):
        raise ValueError("the squared error overflows: the model's terms are too large at these samples")
    return sq


def l2_error(model: PerturbedScore, t: float, n: int = 20000, seed: int = 0, threads: int = 0
             ) -> tuple[float, float]:
    """Monte Carlo E_{p_t}|e_t|^2 and its standard error."""
    n = _check_mc(model, n)
    x = model.sample(n, seed, t=t, threads=threads)
    with np.errstate(over="ignore"):
        sq = _finite_sq(np.sum(model.error(x, t, threads=threads) ** 2, axis=1))
    return float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(n))


def exact_gradient_energy(model: PerturbedScore, t: float, n: int = 20000, seed: int = 0, threads: int = 0
                          ) -> tuple[float, float]:
    """Monte Carlo E_{p_t}|grad phi_t|^2 for models with :attr:`known_gradient_part`."""
    n = _check_mc(model, n)
    x = model.sample(n, seed, t=t, threads=threads)
    with np.errstate(over="ignore"):
        sq = _finite_sq(np.sum(model.gradient_error(x, t, threads=threads) ** 2, axis=1))
    return float(sq.mean()), float(sq.std(ddof=1) / np.sqrt(n))


# ---------------------------------------------------------------------------------------
# Gaussian closed forms
# ---------------------------------------------------------------------------------------

def gaussian_gradient_part(E: Any, C: Any, f: Any = None) -> dict[str, Any]:
    """Hodge split of the linear error e(x) = E (x - m) + f under p = N(m, C).

    The gradient part is S (x - m) + f with S symmetric solving SC + CS = EC + CE^T; the
    remainder (E - S)(x - m) is solenoidal (div(p (E - S)(x - m)) = 0).

    Returns a dict with S, R = E - S, and the energies ``total`` = tr(E C E^T) + |f|^2,
    ``gradient`` = tr(S C S) + |f|^2, ``solenoidal`` = tr(R C R^T).
    """
    C = check_finite_array(C, "C", ndim=2)
    d = C.shape[0]
    if C.shape != (d, d) or not np.allclose(C, C.T, rtol=1e-10, atol=1e-12 * np.abs(C).max()):
        raise ValueError(f"C must be a symmetric (d, d) covariance, got shape {C.shape}")
    if np.linalg.eigvalsh(C).min() <= 0:
        raise ValueError("C must be positive definite (a covariance)")
    E = _matrix(E, d, "E")
    f = _vector(f, d, "f")
    with np.errstate(over="ignore", invalid="ignore"):
        Q = E @ C + C @ E.T
        S = scipy.linalg.solve_continuous_lyapunov(C, Q)
        S = 0.5 * (S + S.T)
        R = E - S
        out = {"S": S, "R": R, "total": float(np.trace(E @ C @ E.T) + f @ f),
               "gradient": float(np.trace(S @ C @ S) + f @ f), "solenoidal": float(np.trace(R @ C @ R.T))}
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise ValueError("the energies overflow: E, C or f too large (or C too close to singular)")
    return out


def affine_coefficients(score: ScoreFn, t: float, d: int, check: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(J, k) with score(x, t) = J x + k for an affine score model (checked at a random point)."""
    _check_callable(score, "score")
    t = check_real(t, "t", low=0.0)
    d = _dim(d)
    pts = np.vstack([np.zeros(d), np.eye(d)])
    vals = check_finite_array(score(pts, t), "score(x, t)", shape=(d + 1, d))
    k = vals[0]
    J = (vals[1:] - k).T
    if check_bool(check, "check"):
        x = np.linspace(-0.7, 1.3, d)[None, :]
        ref = x @ J.T + k
        got = np.asarray(score(x, t))
        if not np.allclose(got, ref, rtol=1e-8, atol=1e-8 * (1 + np.abs(ref).max())):
            raise ValueError("the score model is not affine in x (needs a Gaussian base and affine terms)")
    return J, k


def _gaussian_moments_t(base: GaussianMixture, t: float) -> tuple[np.ndarray, np.ndarray]:
    if base.n_components != 1:
        raise ValueError("a Gaussian closed form needs a one-component base")
    pt = base.smooth(t)
    return pt.means[0], pt.full_covariances()[0]


def gaussian_error_energies(model: PerturbedScore, t: float) -> dict[str, float]:
    """Closed-form E|e_t|^2 and E|grad phi_t|^2 for a Gaussian base and affine terms."""
    _check_model(model)
    t = check_real(t, "t", low=0.0)
    m, C = _gaussian_moments_t(model.base, t)
    d = model.dim
    Je, ke = affine_coefficients(lambda x, s: model.error(x, s), t, d)
    return gaussian_gradient_part(Je, C, Je @ m + ke)


def kl_gaussian(m0: Any, C0: Any, m1: Any, C1: Any) -> float:
    """KL(N(m0, C0) || N(m1, C1)).

    The means are (d,) vectors (or scalars for d = 1), the covariances symmetric positive
    definite (d, d) matrices (or scalars for d = 1); anything else raises ValueError.
    """
    m0 = np.atleast_1d(check_finite_array(m0, "m0", ndim=(0, 1)))
    d = m0.shape[0]
    m1 = np.atleast_1d(check_finite_array(m1, "m1", ndim=(0, 1)))
    if m1.shape != (d,):
        raise ValueError(f"m1 must have shape ({d},) like m0, got {m1.shape}")
    covs = []
    for C, name in ((C0, "C0"), (C1, "C1")):
        C = np.atleast_2d(check_finite_array(C, name, ndim=(0, 2)))
        if C.shape != (d, d):
            raise ValueError(f"{name} must have shape ({d}, {d}), got {C.shape}")
        if not np.allclose(C, C.T, rtol=1e-10, atol=1e-12 * np.abs(C).max()):
            raise ValueError(f"{name} must be symmetric (a covariance matrix)")
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            raise ValueError(f"{name} must be positive definite (a covariance matrix)") from None
        if not np.all(np.isfinite(L)):
            raise ValueError(f"{name} has entries too large for a Cholesky factorisation")
        covs.append((C, L))
    (C0, _), (C1, L1) = covs
    sol = scipy.linalg.cho_solve((L1, True), C0)
    dm = m1 - m0
    q = dm @ scipy.linalg.cho_solve((L1, True), dm)
    logdet1 = 2 * np.sum(np.log(np.diag(L1)))
    logdet0 = np.linalg.slogdet(C0)[1]
    kl = float(0.5 * (np.trace(sol) + q - d + logdet1 - logdet0))
    if not np.isfinite(kl):
        raise ValueError("KL overflows: m0, m1 too far apart or C1 too close to singular relative to C0")
    return kl


def gaussian_reverse_law(model: Any, T: float, delta: float, dim: int, init: str = "standard_normal",
                         base: GaussianMixture | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of the continuous-time reverse SDE output with an affine score.

    dY = [Y + 2 s(T - tau, Y)] dtau + sqrt(2) dW; with s = J_t y + k_t the law stays Gaussian:
    m' = (I + 2J) m + 2k, Sigma' = (I + 2J) Sigma + Sigma (I + 2J)^T + 2I (solved with
    scipy's solve_ivp, rtol 1e-10). init: "standard_normal" or "exact" (p_T, needs base).
    """
    from scipy.integrate import solve_ivp

    score = _check_callable(model.score if hasattr(model, "score") else model, "model")
    T = check_real(T, "T", low=0.0, low_open=True, high=1e6)
    delta = check_real(delta, "delta", low=0.0, high=T, high_open=True)
    d = dim = _dim(dim, "dim")
    check_choice(init, "init", ("standard_normal", "exact"))
    if init == "exact":
        _check_base(base)
        if base is None:
            raise ValueError("init='exact' needs base")
        m0, C0 = _gaussian_moments_t(base, T)
    else:
        m0, C0 = np.zeros(d), np.eye(d)

    def rhs(tau, y):
        m = y[:d]
        S = y[d:].reshape(d, d)
        J, k = affine_coefficients(score, T - tau, d, check=False)
        B = np.eye(d) + 2 * J
        dS = B @ S + S @ B.T + 2 * np.eye(d)
        return np.concatenate([B @ m + 2 * k, dS.ravel()])

    affine_coefficients(score, T, d, check=True)
    sol = solve_ivp(rhs, (0.0, T - delta), np.concatenate([m0, C0.ravel()]), rtol=1e-10, atol=1e-12,
                    method="DOP853")
    y = sol.y[:, -1]
    if not sol.success or not np.all(np.isfinite(y)):
        raise ValueError(f"the reverse-law ODE failed ({sol.message}): the model's affine score is too large over T")
    S = y[d:].reshape(d, d)
    return y[:d], 0.5 * (S + S.T)


def true_kl_gaussian(model: PerturbedScore, T: float, delta: float, init: str = "standard_normal") -> float:
    """KL(p_delta || q_delta) for a Gaussian base and affine terms (continuous time)."""
    _check_model(model)
    mq, Cq = gaussian_reverse_law(model, T, delta, model.dim, init, model.base)
    mp, Cp = _gaussian_moments_t(model.base, delta)
    return kl_gaussian(mp, Cp, mq, Cq)


# ---------------------------------------------------------------------------------------
# KL bounds
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class KLBounds:
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


def kl_to_standard_normal(base: GaussianMixture, T: float, n: int = 200000, seed: int = 0) -> float:
    """KL(p_T || N(0, I)): closed form for a Gaussian, Monte Carlo for a mixture."""
    _check_base(base)
    T = check_real(T, "T", low=0.0)
    n = check_positive_int(n, "n")
    check_allocation(4.0 * n * base.dim, "n", "the Monte Carlo samples")
    if base.n_components == 1:
        m, C = _gaussian_moments_t(base, T)
        return kl_gaussian(m, C, np.zeros(base.dim), np.eye(base.dim))
    x = base.sample(n, seed, t=T)
    logpi = -0.5 * np.sum(x * x, axis=1) - 0.5 * base.dim * np.log(2 * np.pi)
    return float(np.mean(base.logpdf(x, T) - logpi))


def _time_nodes(T: float, delta: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes in u = log t over [log delta, log T] (dense near delta): returns
    times and weights for int f(t) dt = int f(e^u) e^u du."""
    lo, hi = math.log(delta), math.log(T)
    x, w = np.polynomial.legendre.leggauss(n)
    u = 0.5 * (hi - lo) * x + 0.5 * (hi + lo)
    t = np.exp(u)
    return t, 0.5 * (hi - lo) * w * t


def kl_bounds(model: PerturbedScore, T: float, delta: float, *, n_times: int = 24, n_mc: int = 20000,
              method: str = "auto", seed: int = 0, grid_n: int = 160, box: Any = None) -> KLBounds:
    """Girsanov and marginal KL bounds for the reverse SDE from N(0, I) with ``model``.

    method: ``"gaussian"`` (closed form: Gaussian base, affine terms), ``"exact"`` (Monte
    Carlo, gradient part known from the term types), ``"grid"`` (2D finite-volume solver for
    the gradient part, Monte Carlo not used), or ``"auto"`` (the first that applies).
    Time integral: Gauss-Legendre in log t with ``n_times`` nodes.
    """
    _check_model(model)
    T = check_real(T, "T", low=0.0, low_open=True)
    delta = check_real(delta, "delta", low=0.0, low_open=True, high=T, high_open=True)
    check_choice(method, "method", ("auto", "gaussian", "exact", "grid"))
    n_times = check_positive_int(n_times, "n_times", maximum=10_000)   # Gauss-Legendre nodes
    n_mc = check_positive_int(n_mc, "n_mc", minimum=2)
    check_allocation(4.0 * n_mc * model.dim, "n_mc", "the Monte Carlo samples")
    grid_n = check_positive_int(grid_n, "grid_n", minimum=4)
    check_allocation(60.0 * grid_n * grid_n, "grid_n", "the finite-volume system")
    if box is not None:
        box = _check_box(box)
    if method == "auto":
        if model.base.n_components == 1 and all(isinstance(t, (MatrixTerm, LinearTerm)) or
                                                 (isinstance(t, GradientTerm) and isinstance(t.potential, QuadraticPotential))
                                                 or (isinstance(t, SolenoidalTerm) and t.bump is None)
                                                 for t in model.terms):
            method = "gaussian"
        elif model.known_gradient_part:
            method = "exact"
        elif model.dim == 2:
            method = "grid"
        else:
            raise ValueError("no ground truth for the gradient part of this model (d > 2 with mixed terms)")
    times, weights = _time_nodes(T, delta, n_times)
    l2 = np.empty(n_times)
    gr = np.empty(n_times)
    for i, t in enumerate(times):
        if method == "gaussian":
            e = gaussian_error_energies(model, t)
            l2[i], gr[i] = e["total"], e["gradient"]
        elif method == "exact":
            l2[i] = l2_error(model, t, n_mc, seed + i)[0]
            gr[i] = exact_gradient_energy(model, t, n_mc, seed + i)[0]
        else:
            dec = decompose_on_grid(model, t, n=grid_n, box=box)
            l2[i], gr[i] = dec.total_energy, dec.gradient_energy
    init = kl_to_standard_normal(model.base, T, seed=seed)
    li, gi = float(weights @ l2), float(weights @ gr)
    return KLBounds(girsanov=init + li, marginal=init + gi, init_kl=init, l2_integral=li, gradient_integral=gi,
                    times=times, l2=l2, gradient=gr, method=method)


# ---------------------------------------------------------------------------------------
# 2D finite-volume solver of the weighted Poisson equation
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class GridDecomposition:
    """Hodge split of e on a 2D grid (finite volumes, zero-flux boundary).

    Cell-centred arrays have shape (nx, ny) ((nx, ny, 2) for vectors); ``xc``, ``yc`` are
    the cell centres. Energies are expectations under p normalised on the grid, computed on
    the staggered faces (x-components on x-faces, y-components on y-faces), where the
    discrete split is exact: ``total_energy = gradient_energy + solenoidal_energy + 2 cross``
    with ``cross`` (= E[grad phi . r]) zero up to the linear solver's rounding.
    ``div_residual`` is max |div(p r)| / max |div(p e)| over the cells.
    """

    xc: np.ndarray
    yc: np.ndarray
    density: np.ndarray
    phi: np.ndarray
    grad_phi: np.ndarray
    error: np.ndarray
    r: np.ndarray
    total_energy: float
    gradient_energy: float
    solenoidal_energy: float
    cross: float
    div_residual: float


def _default_box(base: GaussianMixture, t: float, pad: float = 6.0) -> tuple[float, float, float, float]:
    pt = base.smooth(t)
    sd = np.sqrt(np.max(np.linalg.eigvalsh(pt.full_covariances()), axis=1))
    lo = np.min(pt.means - pad * sd[:, None], axis=0)
    hi = np.max(pt.means + pad * sd[:, None], axis=0)
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


# Largest 2D grid (cells) of the sparse solvers: beyond this spsolve takes minutes to hours.
_MAX_CELLS = 4_000_000


def _check_cells(cells: float, name: str) -> None:
    if cells > _MAX_CELLS:
        raise ValueError(f"{name} too large: {cells:.3g} grid cells (at most {_MAX_CELLS:.0e} for the sparse solver)")


def solve_weighted_poisson_2d(logpdf: Callable[[np.ndarray], np.ndarray], error: Callable[[np.ndarray], np.ndarray],
                              box: Sequence[float], n: int | tuple[int, int] = 160,
                              floor: float = 1e-12) -> GridDecomposition:
    """Solve div(p grad phi) = div(p e) on a box with zero flux (finite volumes, scipy.sparse).

    Parameters
    ----------
    logpdf, error : callables of an (m, 2) array
        log p (up to a constant) and the error field e.
    box : (xmin, xmax, ymin, ymax)
        Must hold essentially all the mass of p.
    n : int or (nx, ny)
        Cells per axis.
    floor : float
        Face densities below floor * max p are raised to it (regions of negligible mass).
    """
    _check_callable(logpdf, "logpdf")
    _check_callable(error, "error")
    x0, x1, y0, y1 = _check_box(box)
    if isinstance(n, (tuple, list)) and len(n) == 2:
        nx, ny = n
    else:
        nx = ny = n
    nx, ny = check_positive_int(nx, "n", 4), check_positive_int(ny, "n", 4)
    _check_cells(float(nx) * ny, "n")
    floor = check_real(floor, "floor", low=0.0, high=1.0)
    hx, hy = (x1 - x0) / nx, (y1 - y0) / ny
    xc = x0 + hx * (np.arange(nx) + 0.5)
    yc = y0 + hy * (np.arange(ny) + 0.5)
    XC, YC = np.meshgrid(xc, yc, indexing="ij")
    centres = np.column_stack([XC.ravel(), YC.ravel()])
    # faces: x-faces between (i, j) and (i+1, j) at x = x0 + (i+1) hx
    xf = np.column_stack([(XC[:-1] + hx / 2).ravel(), YC[:-1].ravel()])
    yf = np.column_stack([XC[:, :-1].ravel(), (YC[:, :-1] + hy / 2).ravel()])
    lc, lx, ly = (check_finite_array(logpdf(p), "logpdf(x)", shape=(len(p),)) for p in (centres, xf, yf))
    shift = max(lc.max(), lx.max(), ly.max())
    pc, px, py = np.exp(lc - shift), np.exp(lx - shift), np.exp(ly - shift)
    pmax = max(pc.max(), px.max(), py.max())
    px, py = np.maximum(px, floor * pmax), np.maximum(py, floor * pmax)
    ex = check_finite_array(error(xf), "error(x)", shape=(len(xf), 2))[:, 0]
    ey = check_finite_array(error(yf), "error(x)", shape=(len(yf), 2))[:, 1]
    idx = np.arange(nx * ny).reshape(nx, ny)
    L_, R_ = idx[:-1].ravel(), idx[1:].ravel()  # x-face neighbours
    B_, U_ = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    wx = px * hy / hx
    wy = py * hx / hy
    rows = np.concatenate([L_, R_, L_, R_, B_, U_, B_, U_])
    cols = np.concatenate([L_, R_, R_, L_, B_, U_, U_, B_])
    vals = np.concatenate([-wx, -wx, wx, wx, -wy, -wy, wy, wy])
    N = nx * ny
    A = scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(N, N))
    # rhs: discrete div(p e) times cell area = sum of outward fluxes p e.n * face length
    fx, fy = px * ex * hy, py * ey * hx
    rhs = np.zeros(N)
    np.add.at(rhs, L_, fx)
    np.add.at(rhs, R_, -fx)
    np.add.at(rhs, B_, fy)
    np.add.at(rhs, U_, -fy)
    # pin the cell of largest density (the operator has constants in its kernel)
    pin = int(np.argmax(pc))
    keep = np.ones(N, bool)
    keep[pin] = False
    Ar = A[keep][:, keep].tocsc()
    phi = np.zeros(N)
    phi[keep] = scipy.sparse.linalg.spsolve(Ar, rhs[keep])
    mass = pc.sum()
    phi -= (pc @ phi) / mass
    gx = (phi[R_] - phi[L_]) / hx
    gy = (phi[U_] - phi[B_]) / hy
    rx, ry = ex - gx, ey - gy
    cell = hx * hy
    norm = mass * cell
    wxf, wyf = px * cell / norm, py * cell / norm
    total = float(wxf @ (ex * ex) + wyf @ (ey * ey))
    grad = float(wxf @ (gx * gx) + wyf @ (gy * gy))
    sol = float(wxf @ (rx * rx) + wyf @ (ry * ry))
    cross = float(wxf @ (gx * rx) + wyf @ (gy * ry))
    div_r = np.zeros(N)
    np.add.at(div_r, L_, px * rx * hy)
    np.add.at(div_r, R_, -px * rx * hy)
    np.add.at(div_r, B_, py * ry * hx)
    np.add.at(div_r, U_, -py * ry * hx)
    div_res = float(np.abs(div_r).max() / max(np.abs(rhs).max(), 1e-300))
    # cell-centred fields (average of the two adjacent faces; one-sided at the boundary)
    G = np.zeros((nx, ny, 2))
    gxf = np.zeros((nx + 1, ny))
    gxf[1:-1] = gx.reshape(nx - 1, ny)
    gyf = np.zeros((nx, ny + 1))
    gyf[:, 1:-1] = gy.reshape(nx, ny - 1)
    G[..., 0] = 0.5 * (gxf[:-1] + gxf[1:])
    G[..., 1] = 0.5 * (gyf[:, :-1] + gyf[:, 1:])
    Ec = check_finite_array(error(centres), "error(x)", shape=(nx * ny, 2)).reshape(nx, ny, 2)
    if not all(np.isfinite(v) for v in (total, grad, sol, cross, div_res)) or not np.all(np.isfinite(phi)):
        raise ValueError("the weighted Poisson solve overflowed: the error field is too large on the box")
    return GridDecomposition(xc=xc, yc=yc, density=(pc / norm).reshape(nx, ny), phi=phi.reshape(nx, ny),
                             grad_phi=G, error=Ec, r=Ec - G, total_energy=total, gradient_energy=grad,
                             solenoidal_energy=sol, cross=cross, div_residual=div_res)


def decompose_on_grid(model: PerturbedScore, t: float, n: int = 160, box: Sequence[float] | None = None,
                      mask: Sequence[bool] | None = None) -> GridDecomposition:
    """:func:`solve_weighted_poisson_2d` for a 2D :class:`PerturbedScore` at time t."""
    _check_model(model)
    if model.dim != 2:
        raise ValueError("the grid solver is two-dimensional (model must have dim 2)")
    t = check_real(t, "t", low=0.0)
    box = _default_box(model.base, t) if box is None else box
    return solve_weighted_poisson_2d(lambda x: model.logpdf(x, t), lambda x: model.error(x, t, mask), box, n)


def divergence_residual_2d(model: PerturbedScore, t: float, mask: Sequence[bool] | None = None, n: int = 200,
                           box: Sequence[float] | None = None) -> tuple[float, float]:
    """(max |div(p_t e)|, max |p_t e|) with e the selected terms: central differences of the
    cell-centred flux p_t e on a grid (second order). Solenoidal fields give a ratio
    O(h^2), others O(1)."""
    _check_model(model)
    if model.dim != 2:
        raise ValueError("the grid is two-dimensional (model must have dim 2)")
    t = check_real(t, "t", low=0.0)
    n = check_positive_int(n, "n", minimum=5)
    check_allocation(12.0 * n * n, "n", "the grid")
    x0, x1, y0, y1 = _check_box(_default_box(model.base, t) if box is None else box)
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    hx, hy = xs[1] - xs[0], ys[1] - ys[0]
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    pts = np.column_stack([X.ravel(), Y.ravel()])
    p = model.base.pdf(pts, t).reshape(n, n)
    e = model.error(pts, t, mask).reshape(n, n, 2)
    F = p[..., None] * e
    div = np.gradient(F[..., 0], hx, axis=0) + np.gradient(F[..., 1], hy, axis=1)
    if not (np.all(np.isfinite(div)) and np.all(np.isfinite(F))):
        raise ValueError("p e overflows on the grid: the model's error terms are too large")
    return float(np.abs(div[2:-2, 2:-2]).max()), float(np.abs(F).max())


# ---------------------------------------------------------------------------------------
# True KL on a 2D grid: reverse-time Fokker-Planck equation
# ---------------------------------------------------------------------------------------

def _bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (e^z - 1), stable near 0."""
    out = np.ones_like(z)
    nz = np.abs(z) > 1e-8
    out[nz] = z[nz] / np.expm1(z[nz])
    out[~nz] = 1 - z[~nz] / 2
    return out


def fokker_planck_kl_2d(score: ScoreFn, target_logpdf: Callable[[np.ndarray], np.ndarray], T: float, delta: float,
                        box: Sequence[float], n: int = 96, steps: int = 200) -> dict[str, Any]:
    """KL(p_delta || q_delta) with q the law of the continuous reverse SDE from N(0, I).

    Solves dq/dtau = -div(q b) + lap q, b(tau, y) = y + 2 s(T - tau, y), on a box with zero
    flux: Scharfetter-Gummel finite volumes (positive, mass-conserving for any drift) and
    implicit Euler on a quadratic time grid (dense near delta). The discretisation floor is
    measured by running the exact score through the same solver.
    """
    _check_callable(score, "score")
    _check_callable(target_logpdf, "target_logpdf")
    T = check_real(T, "T", low=0.0, low_open=True)
    delta = check_real(delta, "delta", low=0.0, low_open=True, high=T, high_open=True)
    x0, x1, y0, y1 = _check_box(box)
    n = check_positive_int(n, "n", minimum=4)
    _check_cells(float(n) * n, "n")
    steps = check_positive_int(steps, "steps")
    _check_cells(float(n) * n * steps / 1000.0, "steps")   # steps sparse solves of n^2 cells
    hx, hy = (x1 - x0) / n, (y1 - y0) / n
    xc = x0 + hx * (np.arange(n) + 0.5)
    yc = y0 + hy * (np.arange(n) + 0.5)
    XC, YC = np.meshgrid(xc, yc, indexing="ij")
    centres = np.column_stack([XC.ravel(), YC.ravel()])
    xf = np.column_stack([(XC[:-1] + hx / 2).ravel(), YC[:-1].ravel()])
    yf = np.column_stack([XC[:, :-1].ravel(), (YC[:, :-1] + hy / 2).ravel()])
    idx = np.arange(n * n).reshape(n, n)
    L_, R_ = idx[:-1].ravel(), idx[1:].ravel()
    B_, U_ = idx[:, :-1].ravel(), idx[:, 1:].ravel()
    N = n * n
    times = _ref.sampler.time_grid(T, delta, steps, "quadratic")
    q = np.exp(-0.5 * np.sum(centres**2, axis=1))
    q /= q.sum() * hx * hy
    eye = scipy.sparse.identity(N, format="csr")

    def operator(t):
        bx = xf[:, 0] + 2 * check_finite_array(score(xf, t), "score(x, t)", shape=(len(xf), 2))[:, 0]
        by = yf[:, 1] + 2 * check_finite_array(score(yf, t), "score(x, t)", shape=(len(yf), 2))[:, 1]
        # flux L->R: (B(-z) q_L - B(z) q_R) / h with z = b h (unit diffusion)
        zx, zy = bx * hx, by * hy
        aL, aR = _bernoulli(-zx) / hx**2, _bernoulli(zx) / hx**2
        aB, aU = _bernoulli(-zy) / hy**2, _bernoulli(zy) / hy**2
        rows = np.concatenate([L_, L_, R_, R_, B_, B_, U_, U_])
        cols = np.concatenate([L_, R_, L_, R_, B_, U_, B_, U_])
        vals = np.concatenate([-aL, aR, aL, -aR, -aB, aU, aB, -aU])
        return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(N, N))

    for k in range(steps):
        h = times[k] - times[k + 1]
        A = (eye - h * operator(times[k + 1])).tocsc()
        q = scipy.sparse.linalg.spsolve(A, q)
    q = np.maximum(q, 1e-300)
    q /= q.sum() * hx * hy
    lp = check_finite_array(target_logpdf(centres), "target_logpdf(x)", shape=(N,))
    p = np.exp(lp - lp.max())
    p /= p.sum() * hx * hy
    mask = p > 0
    kl = float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))) * hx * hy)
    if not np.isfinite(kl) or not np.all(np.isfinite(q)):
        raise ValueError("the Fokker-Planck solve overflowed: the score is too large on the box (or box too large)")
    return {"kl": kl, "q": q.reshape(n, n), "p": p.reshape(n, n), "xc": xc, "yc": yc}


# ---------------------------------------------------------------------------------------
# Gradient-part estimator (Stein form, dual Sobolev identity)
# ---------------------------------------------------------------------------------------

@dataclasses.dataclass
class GradientPartEstimate:
    """Estimate of E_p|grad phi|^2 from samples and the model score.

    value : cross-fitted variational value 2 beta.b - beta^T G beta (beta fitted on the other
        half): an unbiased estimate of a lower bound of E|grad phi|^2.
    se : its standard error (per-sample variance on the evaluation halves).
    plugin : b^T (G + eps I)^{-1} b on all samples (in-sample; biased upwards by noise).
    basis_size : number of basis functions (for ``basis="network"``: trainable parameters).
    info : extra diagnostics (for ``basis="network"``: per half, the training step kept, the
        validation objective, whether the refitted output layer was kept; the fit time).
    """

    value: float
    se: float
    plugin: float
    basis_size: int
    basis: str
    n: int
    ridge: float = 0.0
    info: dict = dataclasses.field(default_factory=dict)


def _hermite_system(x, s, loc, scale, degree, threads, backend):
    if backend == "cpp":
        return _core.hermite_stein_system(x, s, loc, scale, degree, threads)
    return _refh.hermite_stein_system(x, s, loc, scale, degree)


def _hermite_eval(x, s, loc, scale, degree, beta, threads, backend):
    if backend == "cpp":
        return _core.hermite_stein_eval(x, s, loc, scale, degree, beta, threads)
    return _refh.hermite_stein_eval(x, s, loc, scale, degree, beta)


def hermite_stein_system(x: Any, score: Any, degree: int, loc: Any = None, scale: Any = None, *, threads: int = 0,
                         backend: str = "cpp") -> tuple[np.ndarray, np.ndarray]:
    """(b, G) for the normalised Hermite basis of total degree <= ``degree``.

    b_k = mean_n [s_n . grad psi_k(x_n) + lap psi_k(x_n)], G_kl = mean_n [grad psi_k . grad psi_l],
    psi_a(x) = prod_i He_{a_i}(z_i) / sqrt(a_i!), z = (x - loc) / scale (defaults: sample mean
    and standard deviation). Order of the basis: :func:`hermite_multi_indices`.
    """
    x = check_finite_array(x, "x", ndim=2)
    s = check_finite_array(score, "score", shape=x.shape)
    degree = check_positive_int(degree, "degree")
    check_choice(backend, "backend", BACKENDS)
    loc = x.mean(axis=0) if loc is None else _vector(loc, x.shape[1], "loc")
    scale = x.std(axis=0) if scale is None else _vector(scale, x.shape[1], "scale")
    if np.any(scale <= 0):
        raise ValueError("scale must be > 0 (are the samples degenerate?)")
    check_allocation(float(math.comb(degree + x.shape[1], x.shape[1])) ** 2 + x.size * 4.0, "degree", "the Gram matrix")
    with np.errstate(over="ignore", invalid="ignore"):
        b, G = _hermite_system(x, s, loc, scale, degree, check_threads(threads), backend)
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(G))):
        raise ValueError("the Hermite system overflows: x, score, loc or scale too large (or degree too high)")
    return b, G


def hermite_multi_indices(d: int, degree: int) -> np.ndarray:
    """Multi-indices of the Hermite basis (1 <= |a| <= degree), in the kernel's order."""
    d = check_positive_int(d, "d")
    degree = check_positive_int(degree, "degree")
    check_allocation(float(math.comb(degree + d, d)) * d, "d and degree", "the multi-indices")
    return _refh.hermite_multi_indices(d, degree)


def _rff(x, s, loc, scale, omega, phase):
    """Per-sample gradients (n, K, d) and Laplacians (n, K) of psi_k = sqrt(2/K) cos(w_k.z + b_k)."""
    z = (x - loc) / scale
    K = len(phase)
    arg = z @ omega.T + phase
    w = omega / scale  # d/dx of w.z
    amp = np.sqrt(2.0 / K)
    grads = -amp * np.sin(arg)[:, :, None] * w[None]
    lap = -amp * np.cos(arg) * np.sum(w * w, axis=1)[None]
    return grads, lap


RIDGE_GRID = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def _solve(G, b, ridge):
    K = len(b)
    eps = ridge * max(np.trace(G) / K, 1e-300)
    return np.linalg.solve(G + eps * np.eye(K), b)


def gradient_part_estimate(x: Any, score: Any, *, basis: str = "hermite", degree: int = 6, n_features: int = 200,
                           bandwidth: float = 1.0, ridge: float | str = "auto", cross_fit: bool = True,
                           seed: int | np.random.Generator | None = 0, threads: int = 0,
                           backend: str = "cpp", network: dict[str, Any] | None = None) -> GradientPartEstimate:
    """Estimate E_p|grad phi|^2 = sup_psi 2E[e.grad psi] - E|grad psi|^2 from samples x ~ p and
    the model score s at x only (Stein: E[e.grad psi] = E[s.grad psi + lap psi]).

    Parameters
    ----------
    x, score : (n, d) arrays
        Samples of p_t and the model score s_theta(t, x) at them (never the true score).
    basis : {"hermite", "rff", "network"}
        Hermite polynomials of the standardised x up to total ``degree`` (compiled
        accumulation), ``n_features`` random Fourier features cos(w.z + b),
        w ~ N(0, I / bandwidth^2), or a small torch MLP psi trained on the variational
        objective (optional extra ``modelcollapse[torch]``; see
        :func:`gradient_part_network`, whose keyword options go in ``network``).
    network : dict, optional
        Options of :func:`gradient_part_network` (width, depth, steps, lr, device, ...);
        only with ``basis="network"``. ``seed`` and ``cross_fit`` are passed on; ``threads``
        and ``backend`` here concern the compiled bases (the network's torch threads are
        ``network={"threads": ...}``).
    ridge : float or "auto"
        eps = ridge * tr(G) / K added to G. "auto" picks it from :data:`RIDGE_GRID` by a
        2-fold split *inside* the fitting half (so the evaluation half stays untouched).
    cross_fit : bool
        Fit beta on one half, evaluate 2 beta.b - beta^T G beta on the other, both ways.
        The result estimates J(beta) <= E|grad phi|^2: a lower bound up to noise, which
        tightens as the basis grows while the noise grows like (basis size) * E|e|^2 / n.
    """
    check_choice(basis, "basis", ("hermite", "rff", "network"))
    if basis == "network":
        return gradient_part_network(x, score, cross_fit=cross_fit, seed=seed, **_network_options(network))
    if network is not None:
        raise ValueError("network options are only used with basis='network'")
    x = check_finite_array(x, "x", ndim=2)
    s = check_finite_array(score, "score", shape=x.shape)
    check_choice(backend, "backend", BACKENDS)
    cross_fit = check_bool(cross_fit, "cross_fit")
    auto = isinstance(ridge, str)
    if auto:
        check_choice(ridge, "ridge", ("auto",))
    else:
        ridge = check_real(ridge, "ridge", low=0.0)
    threads = check_threads(threads)
    n, d = x.shape
    if n < 4:
        raise ValueError("need at least 4 samples")
    loc, scale = x.mean(axis=0), x.std(axis=0)
    if np.any(scale <= 0):
        raise ValueError("samples are degenerate (zero spread along an axis)")
    if basis == "hermite":
        degree = check_positive_int(degree, "degree")
        K = math.comb(degree + d, d) - 1
        check_allocation(float(K) * K * 4 + float(K) * n, "degree", "the Gram matrices")

        def system(idx):
            return _hermite_system(x[idx], s[idx], loc, scale, degree, threads, backend)

        def per_sample(idx, beta):
            return _hermite_eval(x[idx], s[idx], loc, scale, degree, beta, threads, backend)
    else:
        K = check_positive_int(n_features, "n_features")
        check_allocation(float(K) * K * 4 + 3.0 * K * n * d, "n_features", "the features and Gram matrices")
        bw = check_real(bandwidth, "bandwidth", low=1e-150, high=1e150)
        rng = as_generator(seed)
        omega = rng.standard_normal((K, d)) / bw
        phase = rng.uniform(0, 2 * np.pi, K)

        def system(idx):
            g, lap = _rff(x[idx], s[idx], loc, scale, omega, phase)
            m = len(idx)
            flat = g.transpose(0, 2, 1).reshape(-1, K)
            return (np.einsum("nkd,nd->k", g, s[idx]) + lap.sum(0)) / m, flat.T @ flat / m

        def per_sample(idx, beta):
            g, lap = _rff(x[idx], s[idx], loc, scale, omega, phase)
            gb = np.einsum("nkd,k->nd", g, beta)
            return np.sum(s[idx] * gb, axis=1) + lap @ beta, np.sum(gb * gb, axis=1)

    def choose_ridge(idx):
        if not auto:
            return ridge
        m = len(idx)
        parts = (idx[: m // 2], idx[m // 2:])
        systems = [system(q) for q in parts]
        scores = []
        for r in RIDGE_GRID:
            val = 0.0
            for (bA, GA), (bB, GB) in ((systems[0], systems[1]), (systems[1], systems[0])):
                beta = _solve(GA, bA, r)
                val += 2 * beta @ bB - beta @ GB @ beta
            scores.append(val)
        return RIDGE_GRID[int(np.argmax(scores))]

    all_idx = np.arange(n)
    b, G = system(all_idx)
    plugin = float(b @ _solve(G, b, ridge if not auto else RIDGE_GRID[0]))
    if not cross_fit:
        return GradientPartEstimate(value=plugin, se=float("nan"), plugin=plugin, basis_size=K, basis=basis, n=n,
                                    ridge=ridge if not auto else RIDGE_GRID[0])
    halves = (all_idx[: n // 2], all_idx[n // 2:])
    vals, vars_, ridges = [], [], []
    for fit, ev in (halves, halves[::-1]):
        r = choose_ridge(fit)
        ridges.append(r)
        bA, GA = system(fit)
        beta = _solve(GA, bA, r)
        stein, sq = per_sample(ev, beta)
        f = 2 * stein - sq
        vals.append(f.mean())
        vars_.append(f.var(ddof=1) / len(ev))
    value = float(np.mean(vals))
    se = float(0.5 * np.sqrt(vars_[0] + vars_[1]))
    return GradientPartEstimate(value=value, se=se, plugin=plugin, basis_size=K, basis=basis, n=n,
                                ridge=float(np.sqrt(ridges[0] * ridges[1])))


# ---------------------------------------------------------------------------------------
# Gradient-part estimator with a small torch network psi (optional extra "torch")
# ---------------------------------------------------------------------------------------

_TORCH_HINT = 'basis="network" needs torch: pip install "modelcollapse[torch]" (torch==2.13.0)'
NETWORK_ACTIVATIONS = ("tanh", "softplus")
NETWORK_LAPLACIANS = ("exact", "hutchinson")


def _require_torch():
    try:
        import torch
    except ImportError:
        raise ImportError(_TORCH_HINT) from None
    return torch


def _network_options(network: dict[str, Any] | None) -> dict[str, Any]:
    import inspect

    opts = {} if network is None else network
    if not isinstance(opts, dict):
        raise TypeError(f"network must be a dict of gradient_part_network options, got {type(opts).__name__}")
    allowed = [k for k, p in inspect.signature(gradient_part_network).parameters.items()
               if p.kind == p.KEYWORD_ONLY and k not in ("cross_fit", "seed")]
    bad = sorted(set(opts) - set(allowed))
    if bad:
        raise ValueError(f"unknown network option(s) {bad}; allowed: {allowed} "
                         "(seed and cross_fit are arguments of gradient_part_estimate)")
    return dict(opts)


def _mlp_init(torch, d: int, width: int, depth: int, gen, dev):
    """Weights of psi(z) = w_out . [h_L, z], h_l = act(W_l h_{l-1} + c_l) (the output sees the
    last hidden layer and, as a linear skip, z itself): N(0, 1/fan_in) hidden layers, zero
    output layer (psi = 0 at the start: the objective starts at 0)."""
    params, fan_in = [], d
    for _ in range(depth):
        W = torch.randn(width, fan_in, generator=gen, dtype=torch.float64) / math.sqrt(fan_in)
        c = 0.1 * torch.randn(width, generator=gen, dtype=torch.float64)
        params += [W.to(dev).requires_grad_(), c.to(dev).requires_grad_()]
        fan_in = width
    params.append(torch.zeros(width + d, dtype=torch.float64, device=dev).requires_grad_())
    return params


def _act(torch, a, activation: str):
    """(act, act', act'') at a."""
    if activation == "tanh":
        h = torch.tanh(a)
        d1 = 1 - h * h
        return h, d1, -2 * h * d1
    h = torch.nn.functional.softplus(a)
    d1 = torch.sigmoid(a)
    return h, d1, d1 * (1 - d1)


def _mlp_features(torch, params, x, loc, scale, activation: str):
    """Output features [h, z] (n, w + d) -- the last hidden layer h and the linear skip z --, their
    x-Jacobian (n, d, w + d) and x-Laplacian (n, w + d). Propagated
    forward through the layers (exact; one pass, differentiable in the weights):
    a = W h + c: J_a = J_h W^T, lap_a = lap_h W^T; h' = act(a): J = act'(a) J_a,
    lap = act''(a) |J_a|^2 + act'(a) lap_a (sum over the d input directions)."""
    z = (x - loc) / scale
    h = z
    J = None  # (n, d, fan_in); None means diag(1 / scale) for the input layer
    lap = None
    for W, c in zip(params[:-1:2], params[1:-1:2]):
        a = h @ W.T + c
        if J is None:
            Ja = ((W / scale[None, :]).T)[None]            # (1, d, w), same for all samples
            lap_a = None
        else:
            Ja = J @ W.T
            lap_a = lap @ W.T
        h, d1, d2 = _act(torch, a, activation)
        J = d1[:, None, :] * Ja
        lap = d2 * (Ja * Ja).sum(1) + (0 if lap_a is None else d1 * lap_a)
    n, d = x.shape
    Jz = torch.diag(1 / scale).expand(n, d, d)
    return (torch.cat([h, z], 1), torch.cat([J, Jz], 2),
            torch.cat([lap, torch.zeros(n, d, dtype=lap.dtype, device=lap.device)], 1))


def _mlp_grad_lap(torch, params, x, loc, scale, activation: str):
    """(grad psi (n, d), lap psi (n,)), exact."""
    _, J, lap = _mlp_features(torch, params, x, loc, scale, activation)
    w = params[-1]
    return J @ w, lap @ w


def _mlp_grad_hutchinson(torch, params, x, loc, scale, activation: str, n_probes: int, gen):
    """(grad psi (n, d) by backward autograd, Hutchinson estimate of lap psi (n,)): mean over
    Rademacher probes v of v^T H v, the second directional derivative propagated forward
    (cost independent of d, unbiased)."""
    xg = x.detach().requires_grad_(True)
    n, d = x.shape
    v = (torch.randint(0, 2, (n, n_probes, d), generator=gen, dtype=torch.float64, device="cpu") * 2 - 1).to(x.device)
    h = (xg - loc) / scale
    hv = v / scale          # (n, P, fan_in): first directional derivative
    hvv = None              # second directional derivative
    for W, c in zip(params[:-1:2], params[1:-1:2]):
        a = h @ W.T + c
        av = hv @ W.T
        avv = None if hvv is None else hvv @ W.T
        h, d1, d2 = _act(torch, a, activation)
        hv = d1[:, None, :] * av
        hvv = d2[:, None, :] * av * av + (0 if avv is None else d1[:, None, :] * avv)
    w = params[-1][: h.shape[1]]
    psi = h @ w + ((xg - loc) / scale) @ params[-1][h.shape[1]:]   # the linear skip has no Laplacian
    lap = (hvv @ w).mean(1)
    grad = torch.autograd.grad(psi.sum(), xg, create_graph=True)[0]
    return grad, lap


_CHUNK = 8192


def _network_objective(torch, params, x, s, loc, scale, activation):
    """Per-sample 2 (s.grad psi + lap psi) - |grad psi|^2 (exact Laplacian, no autograd graph),
    in chunks of rows, as a numpy array."""
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], _CHUNK):
            xx, ss = x[i:i + _CHUNK], s[i:i + _CHUNK]
            g, lp = _mlp_grad_lap(torch, params, xx, loc, scale, activation)
            out.append((2 * ((ss * g).sum(1) + lp) - (g * g).sum(1)).cpu().numpy())
    return np.concatenate(out)


def _network_feature_system(torch, params, x, s, loc, scale, activation):
    """(b, G) of the finite-basis problem over the output features [h, z] (for the refit)."""
    k = params[-1].shape[0]
    b = torch.zeros(k, dtype=torch.float64, device=x.device)
    G = torch.zeros(k, k, dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for i in range(0, x.shape[0], _CHUNK):
            xx, ss = x[i:i + _CHUNK], s[i:i + _CHUNK]
            _, J, lp = _mlp_features(torch, params, xx, loc, scale, activation)
            b += torch.einsum("nd,ndw->w", ss, J) + lp.sum(0)
            G += torch.einsum("ndw,ndv->wv", J, J)
    return (b / x.shape[0]).cpu().numpy(), (G / x.shape[0]).cpu().numpy()


def _network_fit_half(torch, x, s, loc, scale, *, width, depth, activation, steps, lr, penalty, batch_size,
                      laplacian, n_probes, val_fraction, eval_every, refit_output, gen, dev, progress, desc):
    """Train psi on (x, s) (a fitting half): Adam on -(2 mean(s.grad psi + lap psi) - mean|grad psi|^2)
    + lambda mean(lap psi^2) over minibatches of the first 1 - val_fraction of the rows, cosine learning-rate decay,
    the parameters with the best objective on the last val_fraction rows kept (early
    stopping); then optionally the output layer refitted in closed form on the training rows
    (beta = (G + eps I)^{-1} b over the learned features, eps from RIDGE_GRID) and kept if
    significantly better on the validation rows."""
    from tqdm.auto import tqdm

    n = x.shape[0]
    n_val = max(2, int(round(val_fraction * n)))
    xt, st, xv, sv = x[: n - n_val], s[: n - n_val], x[n - n_val:], s[n - n_val:]
    m = xt.shape[0]
    params = _mlp_init(torch, x.shape[1], width, depth, gen, dev)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

    def objective(xx, ss, ps):
        return float(_network_objective(torch, ps, xx, ss, loc, scale, activation).mean())

    best_val, best_step = objective(xv, sv, params), 0
    best = [p.detach().clone() for p in params]
    bs = min(batch_size, m)
    lam = penalty * float((scale * scale).mean())   # penalty in standardised units (lap scales like 1/length^2)
    for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False):
        idx = torch.randint(0, m, (bs,), generator=gen).to(dev)
        xb, sb = xt[idx], st[idx]
        if laplacian == "exact":
            g, lp = _mlp_grad_lap(torch, params, xb, loc, scale, activation)
        else:
            g, lp = _mlp_grad_hutchinson(torch, params, xb, loc, scale, activation, n_probes, gen)
        loss = -(2 * ((sb * g).sum(1) + lp) - (g * g).sum(1)).mean()
        if penalty > 0:   # curvature penalty: the empirical objective alone is unbounded (see docstring)
            loss = loss + lam * (lp * lp).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            val = objective(xv, sv, params)
            if not math.isfinite(val):
                raise FloatingPointError(f"network training diverged at step {step} (try a smaller lr)")
            if val > best_val:
                best_val, best_step = val, step
                best = [p.detach().clone() for p in params]
    params = best
    refit_kept, refit_ridge = False, None   # None: no refit kept
    if refit_output:
        # conservative: a refit replaces the current output layer only when its gain on the
        # held-out rows exceeds 2 standard errors of the paired per-sample difference
        bT, GT = _network_feature_system(torch, params, xt, st, loc, scale, activation)
        hidden = params[:-1]
        cur = _network_objective(torch, params, xv, sv, loc, scale, activation)
        for r in RIDGE_GRID:
            cand = hidden + [torch.as_tensor(_solve(GT, bT, r), dtype=torch.float64, device=dev)]
            new = _network_objective(torch, cand, xv, sv, loc, scale, activation)
            diff = new - cur
            if diff.mean() > 2 * diff.std(ddof=1) / math.sqrt(len(diff)):
                cur, params, refit_kept, refit_ridge = new, cand, True, r
                best_val = float(new.mean())
    return params, {"best_step": best_step, "val_objective": best_val, "refit_kept": refit_kept,
                    "refit_ridge": refit_ridge}


def gradient_part_network(x: Any, score: Any, *, width: int = 32, depth: int = 2, activation: str = "tanh",
                          steps: int = 400, lr: float = 1e-2, penalty: float = 1.0, batch_size: int = 512,
                          laplacian: str = "exact", n_probes: int = 2, val_fraction: float = 0.2, eval_every: int = 25,
                          refit_output: bool = True, cross_fit: bool = True,
                          seed: int | np.random.Generator | None = 0, device: str = "cpu", threads: int = 1,
                          progress: bool = False) -> GradientPartEstimate:
    """Estimate E_p|grad phi|^2 with a small MLP psi: R^d -> R trained on the variational
    objective J(psi) = 2 E[s.grad psi + lap psi] - E|grad psi|^2 (Stein form: samples x ~ p
    and the model score s at x only). Needs torch (``pip install "modelcollapse[torch]"``).

    psi(x) = w . [h(z), z], z = (x - mean) / std of the samples, h the last of ``depth``
    hidden layers of ``width`` tanh (or softplus) units, plus a linear skip; float64. grad psi
    and lap psi are propagated forward through the layers with the activations' first and
    second derivatives (exact, one pass, differentiable in the weights; checked against
    nested autograd in the tests). ``laplacian="hutchinson"`` trains with an unbiased
    ``n_probes``-probe Rademacher estimate v^T (Hess psi) v instead (second directional
    derivative propagated forward, grad psi by backward autograd: cost independent of d, for
    large d); the evaluation always uses the exact Laplacian.

    Why a penalty: on a finite sample the objective is unbounded above over flexible
    functions (psi can put positive curvature at the sample points with small gradients
    there: mean lap psi grows without bound), and an unpenalised network does exactly that
    (training objective -> infinity, held-out objective -> -infinity). Training therefore
    maximises J_n(psi) - lambda mean((lap psi)^2), lambda = ``penalty`` * mean(std^2)
    (the penalty is in standardised units). The penalty only changes which psi is found: the
    evaluated value is always the unpenalised J on held-out samples, so it stays a lower
    bound up to noise.

    Training (per fitting half): Adam (``lr``, cosine decay to 0) for ``steps`` minibatches of
    ``batch_size`` rows drawn from the first 1 - ``val_fraction`` of the half; the weights
    with the best (unpenalised) objective on the held-out rest, checked every ``eval_every``
    steps, are kept (psi = 0, objective 0, is the starting point: a field with no resolvable
    gradient part gives exactly 0); with ``refit_output`` the output layer is then refitted in
    closed form over the learned features (beta = (G + eps I)^{-1} b, eps from
    :data:`RIDGE_GRID`) and kept only if better on the held-out rows by more than 2 standard
    errors of the paired difference.

    Cross-fitting (as for the other bases): train on one half, evaluate J per sample on the
    other, both ways; ``value`` is the mean (an unbiased estimate of J(psi_hat) <= E|grad phi|^2,
    a lower bound up to noise), ``se`` its standard error, ``plugin`` the mean objective on
    the fitting halves (biased up). ``cross_fit=False`` trains on all samples and returns the
    in-sample value (``se`` NaN). Reproducible for a given ``seed`` on CPU (a torch.Generator
    for the initialisation, minibatches and probes; the global torch RNG is not touched).

    Parameters
    ----------
    x, score : (n, d) arrays
        Samples of p_t and the model score at them.
    width, depth, activation : network shape ("tanh" or "softplus").
    steps, lr, batch_size, penalty : training (defaults: 400 Adam steps of 512 rows, lr 1e-2,
        penalty 1).
    laplacian : {"exact", "hutchinson"}; n_probes : probes per sample for "hutchinson".
    val_fraction, eval_every : early stopping on the held-out part of each fitting half.
    refit_output : closed-form refit of the output layer after training.
    seed : int or numpy Generator.
    device : str
        "cpu" (default), "cuda" (raises if CUDA is not available) or "auto".
    threads : int
        torch CPU threads during the fit (restored afterwards; default 1, which is fastest
        for these small networks and makes results independent of the machine); 0 keeps
        torch's setting.
    progress : bool
        tqdm progress bar over the training steps.

    Cost: steps x batch_size x O(depth width^2 d) for training, O(n depth width^2 d) for the
    evaluation; about 2-3 s per fit on one CPU core for d = 2 with the defaults
    (``info["fit_seconds"]`` reports it).
    """
    torch = _require_torch()
    x = check_finite_array(x, "x", ndim=2)
    s = check_finite_array(score, "score", shape=x.shape)
    n, d = x.shape
    width = check_positive_int(width, "width")
    depth = check_positive_int(depth, "depth")
    check_choice(activation, "activation", NETWORK_ACTIVATIONS)
    steps = check_positive_int(steps, "steps", maximum=10**8)
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    penalty = check_real(penalty, "penalty", low=0.0)
    batch_size = check_positive_int(batch_size, "batch_size", 2)
    check_choice(laplacian, "laplacian", NETWORK_LAPLACIANS)
    n_probes = check_positive_int(n_probes, "n_probes")
    val_fraction = check_real(val_fraction, "val_fraction", low=0.0, high=0.5, low_open=True)
    eval_every = check_positive_int(eval_every, "eval_every")
    threads = check_threads(threads)
    # parameters, and per-sample Jacobians (chunks of rows x d x width) for each layer
    check_allocation(float(width) * (width * depth + d + 2) + 4.0 * min(n, _CHUNK) * d * (width + d) * depth
                     + 4.0 * min(batch_size, n) * n_probes * d, "width/depth/batch_size/n_probes",
                     "the network and its Jacobians")
    refit_output = check_bool(refit_output, "refit_output")
    cross_fit = check_bool(cross_fit, "cross_fit")
    progress = check_bool(progress, "progress")
    check_choice(device, "device", ("cpu", "cuda", "auto"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' but torch.cuda.is_available() is False (use device='cpu')")
    min_n = 8 if cross_fit else 4
    if n < min_n or (cross_fit and int(round(val_fraction * (n // 2))) < 2):
        raise ValueError(f"need more samples for the network estimator (got n = {n})")
    loc_np, scale_np = x.mean(axis=0), x.std(axis=0)
    if np.any(scale_np <= 0):
        raise ValueError("samples are degenerate (zero spread along an axis)")
    seed_ = as_seed(seed)
    dev = torch.device(device)
    gen = torch.Generator(device="cpu").manual_seed(seed_ % (2**63))
    f64 = dict(dtype=torch.float64, device=dev)
    X, S = torch.as_tensor(x, **f64), torch.as_tensor(s, **f64)
    loc, scale = torch.as_tensor(loc_np, **f64), torch.as_tensor(scale_np, **f64)
    kw = dict(width=width, depth=depth, activation=activation, steps=steps, lr=lr, penalty=penalty,
              batch_size=batch_size, laplacian=laplacian, n_probes=n_probes, val_fraction=val_fraction,
              eval_every=eval_every, refit_output=refit_output, gen=gen, dev=dev, progress=progress)
    n_params = width * d + width + (depth - 1) * (width * width + width) + width + d

    def per_sample(params, xx, ss):
        return _network_objective(torch, params, xx, ss, loc, scale, activation)

    old_threads = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    import time

    t0 = time.perf_counter()
    try:
        all_idx = np.arange(n)
        halves = (all_idx[: n // 2], all_idx[n // 2:]) if cross_fit else (all_idx,)
        vals, vars_, plugins, infos = [], [], [], []
        for k, fit in enumerate(halves):
            ev = halves[1 - k] if cross_fit else fit
            params, info = _network_fit_half(torch, X[fit], S[fit], loc, scale, desc=f"psi network, half {k + 1}",
                                             **kw)
            plugins.append(float(per_sample(params, X[fit], S[fit]).mean()))
            f = per_sample(params, X[ev], S[ev])
            vals.append(float(f.mean()))
            vars_.append(float(f.var(ddof=1) / len(ev)))
            infos.append(info)
    finally:
        if threads > 0:
            torch.set_num_threads(old_threads)
    plugin = float(np.mean(plugins))
    info = {"halves": infos, "fit_seconds": time.perf_counter() - t0, "device": str(dev),
            "width": width, "depth": depth, "activation": activation, "steps": steps, "laplacian": laplacian}
    if not cross_fit:
        return GradientPartEstimate(value=plugin, se=float("nan"), plugin=plugin, basis_size=n_params,
                                    basis="network", n=n, ridge=0.0, info=info)
    return GradientPartEstimate(value=float(np.mean(vals)), se=float(0.5 * np.sqrt(vars_[0] + vars_[1])),
                                plugin=plugin, basis_size=n_params, basis="network", n=n, ridge=0.0, info=info)


def integrated_gradient_part(score: ScoreFn | PerturbedScore, data: GaussianMixture | np.ndarray, T: float,
                             delta: float, *, n_times: int = 12, n_samples: int = 20000,
                             seed: int = 0, **estimator_kwargs: Any) -> dict[str, Any]:
    """int_delta^T E_{p_t}|grad phi_t|^2 dt from data and the model score only.

    ``data``: a GaussianMixture (samples of p_t drawn exactly) or an (n, d) array of data
    x_0 (then x_t = e^{-t} x_0 + sigma_t z). Gauss-Legendre in log t with ``n_times`` nodes;
    the standard error combines the per-time standard errors (independent samples per time).
    Returns a dict with ``integral``, ``se``, ``times``, ``values``, ``ses``.
    """
    score_fn = _check_callable(score.score if isinstance(score, (PerturbedScore, GaussianMixture)) else score, "score")
    n_times = check_positive_int(n_times, "n_times", maximum=10_000)
    n_samples = check_positive_int(n_samples, "n_samples", minimum=4)
    if not isinstance(data, GaussianMixture):
        data = check_finite_array(data, "data", ndim=2)
    dim = data.dim if isinstance(data, GaussianMixture) else data.shape[1]
    check_allocation(8.0 * n_samples * dim, "n_samples", "the samples")
    T = check_real(T, "T", low=0.0, low_open=True)
    times, weights = _time_nodes(T, check_real(delta, "delta", low=0.0, low_open=True, high=T, high_open=True),
                                 n_times)
    rng = as_generator(seed)
    vals, ses = np.empty(n_times), np.empty(n_times)
    for i, t in enumerate(times):
        key = int(rng.integers(0, 2**62))
        if isinstance(data, GaussianMixture):
            x = data.sample(n_samples, key, t=t)
        else:
            x0 = check_finite_array(data, "data", ndim=2)
            g = np.random.default_rng(key)
            x0 = x0[g.integers(0, len(x0), n_samples)] if n_samples != len(x0) else x0
            x = np.exp(-t) * x0 + np.sqrt(-np.expm1(-2 * t)) * g.standard_normal(x0.shape)
        est = gradient_part_estimate(x, score_fn(x, t), seed=key, **estimator_kwargs)
        vals[i], ses[i] = est.value, est.se
    return {"integral": float(weights @ vals), "se": float(np.sqrt(np.sum((weights * ses) ** 2))),
            "times": times, "values": vals, "ses": ses}


__all__ = ["PerturbedScore", "MatrixTerm", "LinearTerm", "GradientTerm", "SolenoidalTerm", "FourierTerm",
           "QuadraticPotential", "GaussianBump", "antisymmetric", "l2_error", "exact_gradient_energy",
           "gaussian_gradient_part", "gaussian_error_energies", "affine_coefficients", "kl_gaussian",
           "gaussian_reverse_law", "true_kl_gaussian", "KLBounds", "kl_bounds", "kl_to_standard_normal",
           "GridDecomposition", "solve_weighted_poisson_2d", "decompose_on_grid", "divergence_residual_2d",
           "fokker_planck_kl_2d", "GradientPartEstimate", "hermite_stein_system", "hermite_multi_indices",
           "gradient_part_estimate", "gradient_part_network", "integrated_gradient_part"]
