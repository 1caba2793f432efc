"""Error terms of a perturbed score model and the potentials they are built from.

Each term knows its *nature* ("gradient", "solenoidal" or "mixed", docs/hodge.md "Score
models") and compiles itself to the dict the C++ model reads, with its kind as a
:class:`modelcollapse._core.TermKind` (the order of ``mc::TermKind``, never a bare integer).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .._core import TermKind
from .._types import SeedLike
from .._validation import as_generator, check_allocation, check_finite_array, check_positive_int, check_real
from ._common import _dim, _matrix, _vector


def antisymmetric(d: int, *, seed: SeedLike = 0, scale: float = 1.0) -> np.ndarray:
    """A random antisymmetric d x d matrix (for d = 2: +-scale * [[0, -1], [1, 0]]), normalised
    to Frobenius norm scale * sqrt(2).

    Parameters
    ----------
    d : int
        Dimension (>= 2).
    seed : int, numpy Generator or None
        Seed of the random matrix (unused for d = 2).
    scale : float
        Amplitude.
    """
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

    def compile(self, d: int) -> dict[str, Any]:
        """The term as the compiled model reads it (checked, for dimension d)."""
        return {"kind": TermKind.matrix, "mat": _matrix(self.M, d, "M")}

    def nature(self, d: int) -> str:
        """The nature of the term in dimension d: "gradient", "solenoidal" or "mixed"."""
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

    def compile(self, d: int) -> dict[str, Any]:
        """The term as the compiled model reads it (checked, for dimension d)."""
        return {"kind": TermKind.linear, "mat": _matrix(self.E, d, "E"), "vec": _vector(self.f, d, "f"),
                "center": _vector(self.center, d, "center")}

    def nature(self, d: int) -> str:
        """The nature of the term in dimension d: "gradient", "solenoidal" or "mixed"."""
        E = _matrix(self.E, d, "E")
        return "gradient" if np.allclose(E, E.T, atol=1e-14) else "mixed"


@dataclasses.dataclass(frozen=True)
class GradientTerm:
    """e_t = u grad V_t for a :class:`QuadraticPotential` or a :class:`GaussianBump` potential.
    Purely a gradient: its weighted Hodge gradient part is itself."""

    u: float
    potential: QuadraticPotential | GaussianBump

    def compile(self, d: int) -> dict[str, Any]:
        """The term as the compiled model reads it (checked, for dimension d)."""
        u = check_real(self.u, "u")
        pot = self.potential
        if isinstance(pot, QuadraticPotential):
            Q = _matrix(pot.Q, d, "Q")
            if not np.allclose(Q, Q.T, atol=1e-12):
                raise ValueError("quadratic potential needs a symmetric Q")
            return {"kind": TermKind.linear, "mat": u * 0.5 * (Q + Q.T), "vec": np.zeros(d),
                    "center": _vector(pot.center, d, "center")}
        if isinstance(pot, GaussianBump):
            w = check_real(pot.width, "width", low=0.0, low_open=True)
            return {"kind": TermKind.gradient_bump, "center": _vector(pot.center, d, "center"),
                    "amp": u * check_real(pot.height, "height"), "width2": w * w}
        raise TypeError("potential must be a QuadraticPotential or a GaussianBump")

    def nature(self, d: int) -> str:
        """The nature of the term in dimension d: "gradient", "solenoidal" or "mixed"."""
        return "gradient"


@dataclasses.dataclass(frozen=True)
class SolenoidalTerm:
    """e_t = c A grad h_t / p_t with h_t = g_t p_t (g_t a :class:`GaussianBump`, or g = 1 for
    bump=None, which gives c A grad log p_t). div(p_t e_t) = c sum_ij A_ij d_i d_j h_t = 0 for
    antisymmetric A, so the error is invisible to the marginals."""

    A: Any
    c: float = 1.0
    bump: GaussianBump | None = None

    def compile(self, d: int) -> dict[str, Any]:
        """The term as the compiled model reads it (checked, for dimension d)."""
        A = _matrix(self.A, d, "A")
        if not np.allclose(A, -A.T, atol=1e-12):
            raise ValueError("a solenoidal term needs an antisymmetric A (A = -A^T)")
        c = check_real(self.c, "c")
        if self.bump is None:
            return {"kind": TermKind.matrix, "mat": c * A}
        w = check_real(self.bump.width, "width", low=0.0, low_open=True)
        return {"kind": TermKind.solenoidal_bump, "mat": A, "center": _vector(self.bump.center, d, "center"),
                "amp": c * check_real(self.bump.height, "height"), "width2": w * w}

    def nature(self, d: int) -> str:
        """The nature of the term in dimension d: "gradient", "solenoidal" or "mixed"."""
        return "solenoidal"


@dataclasses.dataclass(frozen=True)
class FourierTerm:
    """e(x) = sum_j coef_j cos(omega_j . x + phase_j): a generic smooth field (both parts)."""

    omega: Any
    phase: Any
    coef: Any

    @classmethod
    def random(cls, d: int, n_freq: int = 8, amplitude: float = 0.3, bandwidth: float = 1.0, *,
               seed: SeedLike = 0) -> FourierTerm:
        d = check_positive_int(d, "d")
        n_freq = check_positive_int(n_freq, "n_freq")
        check_allocation(2.0 * n_freq * d, "n_freq", "the frequencies")
        amplitude = check_real(amplitude, "amplitude", low=-1e150, high=1e150)
        bandwidth = check_real(bandwidth, "bandwidth", low=1e-150, high=1e150)
        rng = as_generator(seed)
        return cls(rng.standard_normal((n_freq, d)) / bandwidth, rng.uniform(0, 2 * np.pi, n_freq),
                   amplitude * rng.standard_normal((n_freq, d)) / np.sqrt(n_freq))

    def compile(self, d: int) -> dict[str, Any]:
        """The term as the compiled model reads it (checked, for dimension d)."""
        d = _dim(d)
        om = check_finite_array(self.omega, "omega", ndim=2)
        if om.shape[1] != d:
            raise ValueError(f"omega must have shape (J, {d})")
        J = om.shape[0]
        return {"kind": TermKind.fourier, "omega": om, "phase": check_finite_array(self.phase, "phase", shape=(J,)),
                "coef": check_finite_array(self.coef, "coef", shape=(J, d))}

    def nature(self, d: int) -> str:
        """The nature of the term in dimension d: "gradient", "solenoidal" or "mixed"."""
        return "mixed"


#: Any error term of a :class:`~modelcollapse.hodge.PerturbedScore`.
Term = MatrixTerm | LinearTerm | GradientTerm | SolenoidalTerm | FourierTerm
_TERM_TYPES = (MatrixTerm, LinearTerm, GradientTerm, SolenoidalTerm, FourierTerm)
