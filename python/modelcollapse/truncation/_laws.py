"""The truncated-diffusion recursion's exact laws: schedules, smoothed laws, the exact
recursion, its limit, the Hermite transfer functions and bias factors, and the robustness
bounds (``docs/truncation.md``, section "Formulas").

Round 0 trains on the data law p and its (perfect) model samples p_hat_0 = S_{delta_0} p;
round k >= 1 trains on q_k = a p + (1 - a) p_hat_{k-1} and outputs p_hat_k = S_{delta_k} q_k
(a = ``real_fraction``). Unrolled,

    p_hat_k = sum_{j<k} a (1-a)^j S_{tau_{k,j}} p + (1-a)^k S_{tau_{k,k}} p,
    tau_{k,j} = delta_k + delta_{k-1} + ... + delta_{k-j},

so every p_hat_k is a finite mixture of smoothings of p (:class:`SmoothedLaw`), a Gaussian
mixture when p is one. Hermite coordinates obey c_alpha(p_hat_k) = B_{|alpha|,k} c_alpha(p)
with the exact bias factors B_{n,0} = e^{-n delta_0}, B_{n,k} = e^{-n delta_k}(a + (1-a) B_{n,k-1}).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import check_allocation, check_choice, check_finite_array, check_positive_int, check_real
from ..mixture import GaussianMixture

#: Most rounds / schedule values one call computes (each is a Python-level step).
MAX_ROUNDS = 1_000_000


def _check_law(law: Any, name: str) -> GaussianMixture:
    if not isinstance(law, GaussianMixture):
        raise TypeError(f"{name} must be a modelcollapse.GaussianMixture, got {type(law).__name__}")
    return law

# ----------------------------------------------------------------------------------------
# Schedules


class Schedule:
    """Truncation schedule k -> delta_k >= 0 (k = 0, 1, ...).

    Build with :meth:`constant`, :meth:`geometric` (delta_0 gamma^k), :meth:`polynomial`
    (delta_0 (k+1)^-beta), :meth:`from_array` or :meth:`from_callable`; :func:`as_schedule`
    accepts a float, an array, a callable or a Schedule.
    """

    def __init__(self, fn: Callable[[int], float], description: str, constant_value: float | None = None,
                 length: int | None = None) -> None:
        self._fn = fn
        self.description = description
        self.constant_value = constant_value
        self.length = length

    @classmethod
    def constant(cls, delta: float) -> Schedule:
        delta = check_real(delta, "delta", low=0.0)
        return cls(lambda k: delta, f"constant(delta={delta:g})", constant_value=delta)

    @classmethod
    def geometric(cls, delta0: float, gamma: float) -> Schedule:
        delta0 = check_real(delta0, "delta0", low=0.0)
        gamma = check_real(gamma, "gamma", 0.0, 1.0)
        return cls(lambda k: delta0 * gamma ** k, f"geometric(delta0={delta0:g}, gamma={gamma:g})")

    @classmethod
    def polynomial(cls, delta0: float, beta: float) -> Schedule:
        delta0 = check_real(delta0, "delta0", low=0.0)
        beta = check_real(beta, "beta", low=0.0)
        return cls(lambda k: delta0 * (k + 1.0) ** (-beta), f"polynomial(delta0={delta0:g}, beta={beta:g})")

    @classmethod
    def from_array(cls, values: Any) -> Schedule:
        v = check_finite_array(values, "schedule", ndim=1)
        if len(v) == 0 or np.any(v < 0):
            raise ValueError("a schedule array must be non-empty with every delta_k >= 0")
        return cls(lambda k: float(v[k]), f"array({len(v)} values)", length=len(v))

    @classmethod
    def from_callable(cls, fn: Callable[[int], float]) -> Schedule:
        if not callable(fn):
            raise TypeError("schedule must be callable k -> delta_k")
        return cls(fn, f"callable({getattr(fn, '__name__', 'fn')})")

    def __call__(self, k: int) -> float:
        k = check_positive_int(k, "k", minimum=0)
        if self.length is not None and k >= self.length:
            raise ValueError(f"schedule has {self.length} values; round {k} needs more (give rounds+1 values)")
        raw = self._fn(int(k))
        if isinstance(raw, (complex, np.complexfloating)) or not isinstance(raw, (numbers.Real, np.ndarray)):
            raise TypeError(f"schedule gave delta_{k} = {raw!r:.40}; truncation times must be real numbers")
        v = float(raw)
        if not math.isfinite(v) or v < 0:
            raise ValueError(f"schedule gave delta_{k} = {v}; truncation times must be finite and >= 0")
        return v

    def values(self, n: int) -> np.ndarray:
        """delta_0, ..., delta_{n-1}."""
        n = check_positive_int(n, "n", minimum=0, maximum=MAX_ROUNDS)
        return np.array([self(k) for k in range(n)], dtype=np.float64)

    def __repr__(self) -> str:
        return f"Schedule.{self.description}"


def as_schedule(schedule: Any) -> Schedule:
    """A float (constant), an array (delta_k per round), a callable or a :class:`Schedule`."""
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, bool):
        raise TypeError("schedule must be a number, an array, a callable or a Schedule")
    if isinstance(schedule, (int, float, np.integer, np.floating)):
        return Schedule.constant(float(schedule))
    if callable(schedule):
        return Schedule.from_callable(schedule)
    if isinstance(schedule, (list, tuple, np.ndarray)):
        return Schedule.from_array(schedule)
    raise TypeError(f"schedule must be a number, an array, a callable or a Schedule, got {type(schedule).__name__}")


# ----------------------------------------------------------------------------------------
# Exact laws


@dataclasses.dataclass
class SmoothedLaw:
    """sum_j weights[j] S_{times[j]} p for a base law p (a GaussianMixture); times may be inf
    (S_inf p = N(0, I))."""

    base: GaussianMixture
    weights: np.ndarray
    times: np.ndarray

    def __post_init__(self) -> None:
        _check_law(self.base, "base")
        w = check_finite_array(self.weights, "weights", ndim=1)
        if np.any(w < 0):
            raise ValueError("weights must be non-negative")
        if np.iscomplexobj(self.times):
            raise TypeError("times must be real")
        try:
            t = np.asarray(self.times, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"times must be an array of real numbers, got {type(self.times).__name__}") from None
        if t.shape != w.shape:
            raise ValueError(f"times must have the shape of weights {w.shape}, got {t.shape}")
        if np.any(np.isnan(t)) or np.any(t < 0):  # +inf is allowed: S_inf p = N(0, I)
            raise ValueError("times must be >= 0 (inf allowed), without NaN")
        self.weights, self.times = w, t

    def smooth(self, t: float) -> SmoothedLaw:
        t = check_real(t, "t", low=0.0)
        return SmoothedLaw(self.base, self.weights.copy(), self.times + t)

    def mix_with_base(self, real_fraction: float) -> SmoothedLaw:
        """a p + (1 - a) self."""
        a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
        if a == 0.0:
            return SmoothedLaw(self.base, self.weights.copy(), self.times.copy())
        return SmoothedLaw(self.base, np.concatenate([[a], (1 - a) * self.weights]), np.concatenate([[0.0], self.times]))

    def to_mixture(self) -> GaussianMixture:
        """The law as one GaussianMixture (components of all smoothings concatenated, in the
        order of ``times``; smoothings of weight 0 are dropped).

        Built in one pass, O(J K) for J smoothings of a K-component base (a mixture of J
        pairwise ``mix`` calls would copy the growing law each time, O(J^2 K)).
        """
        base = self.base
        d, kind = base.dim, base.cov_type
        keep = self.weights > 0
        if not np.any(keep):
            raise ValueError("weights must not all be 0")
        w, t = self.weights[keep] / self.weights[keep].sum(), self.times[keep]
        fin = np.isfinite(t)
        wf, tf = w[fin], t[fin]
        cov0 = base.covariances
        eye = np.eye(d) if kind == "full" else 1.0
        # S_t N(m, C) = N(e^{-t} m, e^{-2t} C + (1 - e^{-2t}) I)
        shape = (-1,) + (1,) * cov0.ndim
        decay = np.exp(-tf)
        covs = [((decay ** 2).reshape(shape) * cov0[None] + (-np.expm1(-2.0 * tf)).reshape(shape) * eye)
                .reshape((-1,) + cov0.shape[1:])]
        means = [(decay[:, None, None] * base.means[None]).reshape(-1, d)]
        weights = [(wf[:, None] * base.weights[None]).ravel()]
        if not np.all(fin):  # S_inf p = N(0, I): one component with the weights of every infinite time
            weights.append(np.array([w[~fin].sum()]))
            means.append(np.zeros((1, d)))
            covs.append(np.ones((1,) + cov0.shape[1:]) if kind != "full" else np.eye(d)[None])
        wt = np.concatenate(weights)
        nz = wt > 0  # as GaussianMixture.mix: components of weight 0 are dropped
        return GaussianMixture(wt[nz] / wt[nz].sum(), np.concatenate(means)[nz], np.concatenate(covs)[nz])

    def hermite_factor(self, n: Any) -> np.ndarray:
        """sum_j w_j exp(-n t_j): c_alpha(self) = factor(|alpha|) c_alpha(p) (Mehler)."""
        n = check_finite_array(n, "n", allow_empty=True)
        if np.any(n < 0):
            raise ValueError("n (degrees) must be >= 0")
        with np.errstate(invalid="ignore"):
            e = np.exp(-np.multiply.outer(n, self.times))
        e = np.where(np.isnan(e), 0.0, e)  # 0 * inf
        # Degree 0 is the total mass: factor 1 for every smoothing, S_inf included (e^{-0 inf}
        # is the a = 0 limit of e^{-n t}, 1 for n = 0); the scalar path needs it as well.
        e = np.where(np.equal.outer(n, np.zeros_like(self.times)), 1.0, e)
        out = e @ self.weights
        return float(out) if np.ndim(n) == 0 else out


@dataclasses.dataclass
class ExactRecursion:
    """Exact laws of the recursion: ``training[k]`` = q_k, ``outputs[k]`` = p_hat_k, k = 0..rounds."""

    data_law: GaussianMixture
    real_fraction: float
    deltas: np.ndarray
    training: list[SmoothedLaw]
    outputs: list[SmoothedLaw]

    def output_mixture(self, k: int) -> GaussianMixture:
        k = check_positive_int(k, "k", minimum=0, maximum=len(self.outputs) - 1)
        return self.outputs[k].to_mixture()


def exact_recursion(data_law: GaussianMixture, rounds: int, real_fraction: float, schedule: Any) -> ExactRecursion:
    """Exact laws q_k and p_hat_k for k = 0..rounds, any real_fraction a in [0, 1] and schedule."""
    if not isinstance(data_law, GaussianMixture):
        raise TypeError("data_law must be a modelcollapse.GaussianMixture")
    rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)
    # Round k's laws hold k + 1 smoothings each (weights and times, for q_k and p_hat_k):
    # the whole record grows as rounds^2, and so does the time to build it.
    check_allocation(2.0 * (rounds + 1.0) * (rounds + 2.0), "rounds", "the exact laws of every round")
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    sched = as_schedule(schedule)
    deltas = sched.values(rounds + 1)
    q = SmoothedLaw(data_law, np.array([1.0]), np.array([0.0]))
    training, outputs = [], []
    for k in range(rounds + 1):
        if k > 0:
            q = outputs[-1].mix_with_base(a)
        training.append(q)
        outputs.append(q.smooth(deltas[k]))
    return ExactRecursion(data_law, a, deltas, training, outputs)


def limit_law(data_law: GaussianMixture, real_fraction: float, delta: float, *, law: str = "output",
              tol: float = 1e-10, max_terms: int = 100_000) -> tuple[SmoothedLaw, float]:
    """The fixed point of the constant-delta recursion and its truncation error.

    Output law p_hat_inf = sum_{j>=0} a (1-a)^j S_{(j+1) delta} p; training law
    q_inf = sum_{j>=0} a (1-a)^j S_{j delta} p. The series is cut after J terms, with J the
    smallest number with (1-a)^J <= tol (at most ``max_terms``), and renormalised: the
    returned error bounds TV(returned, exact limit) by (1-a)^J. a = 0: N(0, I) exactly.
    """
    if not isinstance(data_law, GaussianMixture):
        raise TypeError("data_law must be a modelcollapse.GaussianMixture")
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    delta = check_real(delta, "delta", low=0.0)
    check_choice(law, "law", ("output", "training"))
    tol = check_real(tol, "tol", 0.0, 1.0, low_open=True)
    max_terms = check_positive_int(max_terms, "max_terms", maximum=10**8)
    if a == 0.0:
        if delta == 0.0:
            raise ValueError("with real_fraction=0 and delta=0 every round returns p: there is no contraction")
        return SmoothedLaw(data_law, np.array([1.0]), np.array([np.inf])), 0.0
    # In floats first: for a tiny a the ratio overflows any int (math.ceil(inf) would raise).
    J = 1 if a == 1.0 else int(min(float(max_terms), max(1.0, math.ceil(min(math.log(tol) / math.log1p(-a), 1e18)))))
    j = np.arange(J)
    w = a * (1 - a) ** j
    err = float((1 - a) ** J)
    shift = 1.0 if law == "output" else 0.0
    return SmoothedLaw(data_law, w / w.sum(), (j + shift) * delta), err


def transfer_function(n: Any, real_fraction: float, delta: float, law: str = "output") -> np.ndarray:
    """H_n = a e^{-n delta} / (1 - (1-a) e^{-n delta}) (output) or a / (1 - (1-a) e^{-n delta})
    (training law): c_n(p_hat_inf) = H_n c_n(p). H_0 = 1; a = 0 gives H_n = 0 for n >= 1."""
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    delta = check_real(delta, "delta", low=0.0)
    check_choice(law, "law", ("output", "training"))
    nn = check_finite_array(n, "n", allow_empty=True)
    if np.any(nn < 0):
        raise ValueError("degrees n must be >= 0")
    e = np.exp(-nn * delta)
    denom = 1.0 - (1.0 - a) * e
    num = a * e if law == "output" else a * np.ones_like(e)
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.where(denom > 0, num / np.where(denom > 0, denom, 1.0), 1.0)
    h = np.where(nn == 0, 1.0, h)
    return h if np.ndim(n) else float(h)


def bias_factors(degrees: Any, rounds: int, real_fraction: float, schedule: Any) -> np.ndarray:
    """Exact B_{n,k} = c_n(p_hat_k) / c_n(p), shape (rounds + 1, len(degrees)):
    B_{n,0} = e^{-n delta_0}, B_{n,k} = e^{-n delta_k} (a + (1-a) B_{n,k-1})."""
    n = np.atleast_1d(check_finite_array(degrees, "degrees", ndim=(0, 1)))
    if np.any(n < 0):
        raise ValueError("degrees must be >= 0")
    rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)
    check_allocation((rounds + 1.0) * max(len(n), 1), "rounds and degrees", "the bias factors")
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    deltas = as_schedule(schedule).values(rounds + 1)
    out = np.empty((rounds + 1, len(n)))
    out[0] = np.exp(-n * deltas[0])
    for k in range(1, rounds + 1):
        out[k] = np.exp(-n * deltas[k]) * (a + (1 - a) * out[k - 1])
    return out


def contraction_factor(real_fraction: float, delta: float) -> float:
    """rho = sqrt(1 - a) e^{-delta}: W2(p_hat_k, p_hat_inf) <= rho^k W2(p_hat_0, p_hat_inf)."""
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    delta = check_real(delta, "delta", low=0.0)
    return math.sqrt(1.0 - a) * math.exp(-delta)


@dataclasses.dataclass(frozen=True)
class AsymptoticRate:
    """The per-round contraction of p_hat_k to p_hat_inf (constant delta), see :func:`asymptotic_rate`.

    Attributes
    ----------
    rate : float
        The sharp asymptotic rate (1 - a) e^{-n0 delta} of TV, Hellinger and W2.
    lowest_degree : int
        n0, the lowest degree n >= 1 in which p_hat_0 and p_hat_inf differ.
    bound_tv : float
        The TV bound's rate 1 - a.
    bound_w2 : float
        The W2 bound's rate rho = sqrt(1 - a) e^{-delta} (:func:`contraction_factor`).
    """

    rate: float
    lowest_degree: int
    bound_tv: float
    bound_w2: float


def asymptotic_rate(data_law: GaussianMixture, real_fraction: float, delta: float, *, max_degree: int = 40,
                    tol: float = 1e-9) -> AsymptoticRate:
    """The sharp asymptotic rate of the constant-delta recursion, next to the bounds' rates.

    p_hat_k - p_hat_inf = (1-a)^k S_{k delta}(p_hat_0 - p_hat_inf), and S_t multiplies the
    degree-n Hermite coordinates by e^{-n t} (Mehler). The signed measure p_hat_0 - p_hat_inf
    has coordinates (e^{-n delta} - H_n) c_alpha(p), which for a < 1, delta > 0 vanish exactly
    where c_alpha(p) does (n >= 1; mass 0 at n = 0). So for large k the difference is its
    lowest mode n0 times ((1-a) e^{-n0 delta})^k, and TV, Hellinger and W2 (each linear in a
    small smooth perturbation of p_hat_inf) all decay at the rate (1-a) e^{-n0 delta}: below
    the bounds' rates 1 - a (TV) and sqrt(1-a) e^{-delta} (W2) (docs/truncation.md, section
    "Rates: bounds and sharp rates").

    Parameters
    ----------
    data_law : GaussianMixture
        The data law p.
    real_fraction : float in [0, 1]
        a.
    delta : float >= 0
        The constant truncation time.
    max_degree : int
        Highest degree searched for n0.
    tol : float > 0
        A degree counts as present when sqrt(E_n(p)) > tol (orthonormal energy; symmetric
        or standardised laws have some exactly-zero low modes, zero up to rounding here).

    Returns
    -------
    AsymptoticRate

    Examples
    --------
    >>> import modelcollapse as mc
    >>> p = mc.GaussianMixture([0.5, 0.5], [[-0.8], [0.8]], [0.36, 0.36])  # mean 0, variance 1, symmetric
    >>> r = asymptotic_rate(p, 0.5, 0.2)
    >>> r.lowest_degree, round(r.rate, 4)   # (1 - a) e^{-4 delta}
    (4, 0.2247)
    """
    from ._hermite import mixture_moments

    _check_law(data_law, "data_law")
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    delta = check_real(delta, "delta", low=0.0)
    max_degree = check_positive_int(max_degree, "max_degree", minimum=1, maximum=200)
    tol = check_real(tol, "tol", low=0.0, low_open=True, high=1.0)
    energies = mixture_moments(data_law, max_degree).energies()
    present = np.flatnonzero(np.sqrt(energies[1:]) > tol)
    if present.size == 0:
        raise ValueError(f"data_law has no Hermite energy above tol = {tol:g} in degrees 1..{max_degree}: "
                         "it is N(0, I) to that accuracy (nothing to contract); raise max_degree or lower tol")
    n0 = int(present[0]) + 1
    return AsymptoticRate(rate=(1.0 - a) * math.exp(-n0 * delta), lowest_degree=n0, bound_tv=1.0 - a,
                          bound_w2=contraction_factor(a, delta))


def robustness_radius(epsilon: float, real_fraction: float, delta: float) -> float:
    """epsilon / (1 - rho): the W2 ball around p_hat_inf that a sampler with per-round error
    epsilon stays in."""
    eps = check_real(epsilon, "epsilon", low=0.0)
    rho = contraction_factor(real_fraction, delta)
    if rho >= 1.0:
        return math.inf  # no contraction (real_fraction = delta = 0): no ball, as documented
    out = eps / (1.0 - rho)
    if not math.isfinite(out):
        raise ValueError(f"epsilon = {eps:.3g} too large: the radius epsilon / (1 - rho) overflows float64")
    return out


def robustness_bound(k: Any, initial_distance: float, epsilon: float, real_fraction: float, delta: float) -> np.ndarray:
    """rho^k W2_0 + epsilon (1 - rho^k) / (1 - rho)."""
    rho = contraction_factor(real_fraction, delta)
    kk = check_finite_array(k, "k", allow_empty=True)
    if np.any(kk < 0):
        raise ValueError("k (rounds) must be >= 0")
    w0 = check_real(initial_distance, "initial_distance", low=0.0)
    eps = check_real(epsilon, "epsilon", low=0.0)
    with np.errstate(over="ignore", invalid="ignore"):
        geo = kk if rho == 1.0 else (1 - rho ** kk) / (1 - rho)
        out = rho ** kk * w0 + eps * geo
    if not np.all(np.isfinite(out)):
        raise ValueError("initial_distance, epsilon or k too large: the bound overflows float64")
    return out if np.ndim(k) else float(out)


# ----------------------------------------------------------------------------------------
# Compounding errors: the closed-form recursion under a controlled affine score error


def affine_score_error(law: GaussianMixture, eta: float) -> GaussianMixture:
    """The law A_eta # q that a score model with the controlled error eta represents.

    A_eta(x) = sqrt(1 + eta) x + eta (every coordinate): covariances are scaled by (1 + eta)
    and means mapped to sqrt(1 + eta) m + eta. The map acts on points, so it is the same for
    every mixture representation of q (a fitted mixture, an empirical law, the exact q_k):
    the recursion it drives is linear in the law, and its one-point marginal is exact for any
    learner whose model is unbiased for its training law (docs/truncation.md, section
    "Compounding errors"). eta = 0 returns ``law`` itself.
    """
    _check_law(law, "law")
    eta = check_real(eta, "eta", low=0.0, high=1e6)
    if eta == 0.0:
        return law
    return GaussianMixture(law.weights, math.sqrt(1.0 + eta) * law.means + eta, law.covariances * (1.0 + eta))


@dataclasses.dataclass
class CompoundingRecursion:
    """Exact laws of the recursion with a per-round affine score error (compounding).

    ``training[k]`` = q~_k (q~_0 = p, q~_k = a p + (1-a) p~_{k-1}) and ``outputs[k]`` =
    p~_k = S_{delta_k} A_eta q~_k, every one a GaussianMixture with K (k + 1) components.
    The per-round error is eps_k = W2(p~_k, ``ideal_step(k)``) (in 1-D:
    ``w2_1d_laws(rec.outputs[k], rec.ideal_step(k))``).
    """

    data_law: GaussianMixture
    real_fraction: float
    deltas: np.ndarray
    eta: float
    training: list[GaussianMixture]
    outputs: list[GaussianMixture]

    def ideal_step(self, k: int) -> GaussianMixture:
        """S_{delta_k} q~_k: what an error-free round would output from round k's training law."""
        k = check_positive_int(k, "k", minimum=0, maximum=len(self.outputs) - 1)
        return self.training[int(k)].smooth(float(self.deltas[k]))


def compounding_recursion(data_law: GaussianMixture, rounds: int, real_fraction: float, schedule: Any,
                          eta: float) -> CompoundingRecursion:
    """Closed-form laws of the recursion whose every round has the affine score error eta.

    p~_k = S_{delta_k} A_eta (a p + (1-a) p~_{k-1}), p~_0 = S_{delta_0} A_eta p, with A_eta of
    :func:`affine_score_error`: errors compound, since round k trains on round k-1's
    imperfect output. Compare ``exact_recursion`` + one error per round (the ideal q_k
    perturbed once), which does not compound. Round k's law holds K (k + 1) components.

    Examples
    --------
    >>> p = GaussianMixture([0.35, 0.65], [[-2.0], [1.5]], [0.1, 0.2])
    >>> rec = compounding_recursion(p, 3, 0.5, 0.1, eta=0.05)
    >>> rec.outputs[3].n_components
    8
    """
    _check_law(data_law, "data_law")
    rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)
    check_allocation(float(data_law.n_components) * (rounds + 1.0) * (rounds + 2.0) * data_law.dim ** 2,
                     "rounds", "the compounding laws of every round")
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    eta = check_real(eta, "eta", low=0.0, high=1e6)
    deltas = as_schedule(schedule).values(rounds + 1)
    training, outputs = [], []
    q = data_law
    for k in range(rounds + 1):
        if k > 0:
            q = outputs[-1] if a == 0.0 else data_law.mix(outputs[-1], a)
        training.append(q)
        outputs.append(affine_score_error(q, eta).smooth(float(deltas[k])))
    return CompoundingRecursion(data_law, a, deltas, eta, training, outputs)
