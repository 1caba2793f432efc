"""The truncated-diffusion recursion (spec ``truncation.md``): exact laws, the limit, the
Hermite transfer functions, annealed schedules, robustness, and its simulation.

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
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd

from ._validation import (as_seed, check_allocation, check_choice, check_finite_array, check_positive_int,
                          check_real, check_threads)
from .mixture import GaussianMixture, _pow2_scale

#: Most rounds / schedule values one call computes (each is a Python-level step).
MAX_ROUNDS = 1_000_000
#: Most projections :func:`sliced_w2` sorts (one Python-level step each).
MAX_PROJECTIONS = 1_000_000


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
    def constant(cls, delta: float) -> "Schedule":
        delta = check_real(delta, "delta", low=0.0)
        return cls(lambda k: delta, f"constant(delta={delta:g})", constant_value=delta)

    @classmethod
    def geometric(cls, delta0: float, gamma: float) -> "Schedule":
        delta0 = check_real(delta0, "delta0", low=0.0)
        gamma = check_real(gamma, "gamma", 0.0, 1.0)
        return cls(lambda k: delta0 * gamma ** k, f"geometric(delta0={delta0:g}, gamma={gamma:g})")

    @classmethod
    def polynomial(cls, delta0: float, beta: float) -> "Schedule":
        delta0 = check_real(delta0, "delta0", low=0.0)
        beta = check_real(beta, "beta", low=0.0)
        return cls(lambda k: delta0 * (k + 1.0) ** (-beta), f"polynomial(delta0={delta0:g}, beta={beta:g})")

    @classmethod
    def from_array(cls, values: Any) -> "Schedule":
        v = check_finite_array(values, "schedule", ndim=1)
        if len(v) == 0 or np.any(v < 0):
            raise ValueError("a schedule array must be non-empty with every delta_k >= 0")
        return cls(lambda k: float(v[k]), f"array({len(v)} values)", length=len(v))

    @classmethod
    def from_callable(cls, fn: Callable[[int], float]) -> "Schedule":
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

    def smooth(self, t: float) -> "SmoothedLaw":
        t = check_real(t, "t", low=0.0)
        return SmoothedLaw(self.base, self.weights.copy(), self.times + t)

    def mix_with_base(self, real_fraction: float) -> "SmoothedLaw":
        """a p + (1 - a) self."""
        a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
        if a == 0.0:
            return SmoothedLaw(self.base, self.weights.copy(), self.times.copy())
        return SmoothedLaw(self.base, np.concatenate([[a], (1 - a) * self.weights]), np.concatenate([[0.0], self.times]))

    def to_mixture(self) -> GaussianMixture:
        """The law as one GaussianMixture (components of all smoothings concatenated)."""
        d = self.base.dim
        parts = []
        for w, t in zip(self.weights, self.times):
            if w <= 0:
                continue
            if math.isinf(t):
                parts.append((w, GaussianMixture([1.0], np.zeros((1, d)), 1.0)))
            else:
                parts.append((w, self.base.smooth(float(t)) if t > 0 else self.base))
        law = parts[0][1]
        acc = parts[0][0]
        for w, comp in parts[1:]:
            acc += w
            law = law.mix(comp, (acc - w) / acc)
        return law

    def hermite_factor(self, n: Any) -> np.ndarray:
        """sum_j w_j exp(-n t_j): c_alpha(self) = factor(|alpha|) c_alpha(p) (Mehler)."""
        n = check_finite_array(n, "n", allow_empty=True)
        if np.any(n < 0):
            raise ValueError("n (degrees) must be >= 0")
        with np.errstate(invalid="ignore"):
            e = np.exp(-np.multiply.outer(n, self.times))
        e = np.where(np.isnan(e), 0.0, e)  # 0 * inf
        if np.ndim(n) == 0:
            return float(e @ self.weights)
        e[n == 0] = 1.0
        return e @ self.weights


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
# Distances used by the tests and experiments (small, self-contained)


def mixture_quantiles_1d(law: GaussianMixture, u: Any) -> np.ndarray:
    """Quantiles of a 1-D Gaussian mixture at levels u in (0, 1) (bracketing + Newton; ~1e-12).

    Returns an array of u's shape (a float for a scalar u).
    """
    from scipy.special import ndtr

    _check_law(law, "law")
    if law.dim != 1:
        raise ValueError("law must be a 1-D mixture for mixture_quantiles_1d")
    u_in = check_finite_array(u, "u", allow_empty=True)
    if np.any(u_in <= 0.0) or np.any(u_in >= 1.0):
        raise ValueError("u (quantile levels) must lie strictly between 0 and 1")
    check_allocation(float(u_in.size) * (law.n_components + 4) * 2, "u", "the quantile iterations")
    u = u_in.ravel()
    w = law.weights
    mu = law.means[:, 0]
    sd = np.sqrt(law.full_covariances()[:, 0, 0])
    lo = float(np.min(mu - 40 * sd))
    hi = float(np.max(mu + 40 * sd))
    if not (math.isfinite(lo) and math.isfinite(hi) and math.isfinite(hi - lo)):
        raise ValueError("law spans more than the float64 range (means +- 40 standard deviations overflow)")
    grid = np.linspace(lo, hi, 4001)
    cdf = ndtr((grid[:, None] - mu) / sd) @ w
    x = np.interp(u, cdf, grid)
    for _ in range(8):
        F = ndtr((x[:, None] - mu) / sd) @ w
        f = (np.exp(-0.5 * ((x[:, None] - mu) / sd) ** 2) / (sd * math.sqrt(2 * math.pi))) @ w
        step = (F - u) / np.maximum(f, 1e-300)
        step = np.clip(step, -0.5, 0.5)
        x = x - step
        if x.size == 0 or np.max(np.abs(step)) < 1e-12:
            break
    return x.reshape(u_in.shape) if u_in.ndim else float(x[0])


def _as_sample_1d(x: Any, name: str) -> np.ndarray:
    """A non-empty finite sample, flattened (any shape is read as a list of 1-D values)."""
    return check_finite_array(x, name).ravel()


def _rms_difference(a: np.ndarray, b: np.ndarray, names: str) -> float:
    """sqrt(mean((a - b)^2)) without overflow where the result is representable: values past
    ~1e154 are divided by a power of two first (exact), which leaves ordinary inputs'
    results bit-identical."""
    top = max(float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0)))
    if top < 1e140:  # squares and their sum stay finite
        return float(np.sqrt(np.mean((a - b) ** 2)))
    c = float(_pow2_scale(np.array(top)))
    out = float(np.sqrt(np.mean((a / c - b / c) ** 2))) * c
    if not math.isfinite(out):
        raise ValueError(f"{names} too large: their W2 distance overflows float64")
    return out


def _w2_sorted(a: np.ndarray, b: np.ndarray, names: str) -> float:
    if len(a) != len(b):
        top = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
        c = float(_pow2_scale(np.array(top))) if top >= 1e140 else 1.0  # quantile interpolation overflows too
        u = (np.arange(max(len(a), len(b))) + 0.5) / max(len(a), len(b))
        a = np.quantile(a / c, u) * c if c != 1.0 else np.quantile(a, u)
        b = np.quantile(b / c, u) * c if c != 1.0 else np.quantile(b, u)
    return _rms_difference(a, b, names)


def w2_1d(x: Any, y: Any) -> float:
    """W2 between two 1-D samples (sorting; quantile functions at common levels)."""
    a = np.sort(_as_sample_1d(x, "x"))
    b = np.sort(_as_sample_1d(y, "y"))
    return _w2_sorted(a, b, "x and y")


def w2_1d_to_law(x: Any, law: GaussianMixture) -> float:
    """W2 between a 1-D sample and a 1-D mixture (sample quantiles vs law quantiles at (i-1/2)/n)."""
    a = np.sort(_as_sample_1d(x, "x"))
    u = (np.arange(len(a)) + 0.5) / len(a)
    return _rms_difference(a, mixture_quantiles_1d(_check_law(law, "law"), u), "x and law")


def w2_1d_laws(p: GaussianMixture, q: GaussianMixture, n_levels: int = 2_000) -> float:
    """W2 between two 1-D mixtures: int_0^1 (F^-1 - G^-1)^2 du by Gauss-Legendre on u-panels."""
    _check_law(p, "p")
    _check_law(q, "q")
    n_levels = check_positive_int(n_levels, "n_levels", maximum=10**8)
    check_allocation(float(n_levels) * (p.n_components + q.n_components + 8) * 2, "n_levels", "the quantile levels")
    nodes, wts = np.polynomial.legendre.leggauss(8)
    edges = np.concatenate([[0.0], np.logspace(-12, -2, 40), np.linspace(0.01, 0.99, n_levels // 8)[1:-1],
                            1 - np.logspace(-2, -12, 40), [1.0]])
    edges = np.unique(edges)
    lo, hi = edges[:-1], edges[1:]
    u = (0.5 * (hi - lo)[:, None] * nodes + 0.5 * (hi + lo)[:, None]).ravel()
    ww = (0.5 * (hi - lo)[:, None] * wts).ravel()
    with np.errstate(over="ignore", invalid="ignore"):
        d = mixture_quantiles_1d(p, u) - mixture_quantiles_1d(q, u)
        out = float(np.sqrt(max(np.sum(ww * d * d), 0.0)))
    if not math.isfinite(out):
        raise ValueError("p and q too far apart: their W2 distance overflows float64")
    return out


def sliced_w2(x: Any, y: Any, n_projections: int = 200, seed: Any = 0) -> float:
    """Sliced W2 between two samples in R^d (random directions, 1-D W2 by sorting)."""
    a = check_finite_array(x, "x", ndim=(1, 2))
    b = check_finite_array(y, "y", ndim=(1, 2))
    if a.ndim != b.ndim or (a.ndim == 2 and a.shape[1] != b.shape[1]):
        raise ValueError(f"x and y must have the same dimension, got shapes {a.shape} and {b.shape}")
    if a.ndim == 1:
        return w2_1d(a, b)
    n_projections = check_positive_int(n_projections, "n_projections", maximum=MAX_PROJECTIONS)
    check_allocation(float(n_projections) * a.shape[1] + 2.0 * (len(a) + len(b)), "n_projections",
                     "the projections")
    rng = np.random.default_rng(as_seed(seed))
    top = max(float(np.max(np.abs(a))), float(np.max(np.abs(b))))
    c = float(_pow2_scale(np.array(top))) if top >= 1e140 else 1.0  # W2 is homogeneous: scale exactly
    if c != 1.0:
        a, b = a / c, b / c
    theta = rng.normal(size=(n_projections, a.shape[1]))
    theta /= np.linalg.norm(theta, axis=1, keepdims=True)
    out = float(np.sqrt(np.mean([w2_1d(a @ t, b @ t) ** 2 for t in theta]))) * c
    if not math.isfinite(out):
        raise ValueError("x and y too large: their sliced W2 distance overflows float64")
    return out


def grid_distances(p: GaussianMixture, q: GaussianMixture, lim: float = 6.0, n: int | None = None) -> dict[str, float]:
    """TV = 1/2 int |p - q| and Hellinger H (H^2 = 1/2 int (sqrt p - sqrt q)^2) on a grid over
    [-lim, lim]^d, d in {1, 2}."""
    _check_law(p, "p")
    _check_law(q, "q")
    d = p.dim
    if d not in (1, 2) or q.dim != d:
        raise ValueError("grid_distances needs two mixtures p and q of the same dimension 1 or 2")
    lim = check_real(lim, "lim", low=0.0, low_open=True, high=1e300)
    n = 4001 if n is None and d == 1 else 401 if n is None else check_positive_int(n, "n", minimum=2)
    check_allocation(float(n) ** d * (d + 4 + p.n_components + q.n_components), "n", "the grid densities")
    g = np.linspace(-lim, lim, n)
    h = g[1] - g[0]
    pts = g[:, None] if d == 1 else np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    fp, fq = p.pdf(pts), q.pdf(pts)
    cell = h ** d
    with np.errstate(over="ignore", invalid="ignore"):
        out = {"tv": float(0.5 * np.sum(np.abs(fp - fq)) * cell),
               "hellinger": float(np.sqrt(max(0.5 * np.sum((np.sqrt(fp) - np.sqrt(fq)) ** 2) * cell, 0.0)))}
    if not all(math.isfinite(v) for v in out.values()):
        raise ValueError(f"lim = {lim:.3g} too large: the grid cells overflow float64")
    return out


# ----------------------------------------------------------------------------------------
# Simulated recursion on top of the project's one retraining loop

MODELS = ("exact", "empirical", "gmm")


class _ScheduledSampler:
    """Samples the round's model with the compiled reverse sampler at truncation delta_k."""

    def __init__(self, schedule: Schedule, T: float, steps: int, integrator: str, grid: str, init: str,
                 threads: int) -> None:
        from .sampler import GRIDS, INTEGRATORS

        self.schedule = schedule
        self.T = check_real(T, "T", low=0.0, low_open=True)
        self.steps = check_positive_int(steps, "steps", maximum=10**9)
        self.integrator = check_choice(integrator, "integrator", INTEGRATORS)
        self.grid = check_choice(grid, "grid", GRIDS)
        self.init = init
        self.threads = check_threads(threads)

    def _sample(self, score_model: Any, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        from .sampler import sample_reverse

        delta = self.schedule(k)
        if not delta < self.T:
            raise ValueError(f"delta_{k} = {delta} must be < T = {self.T}")
        out = sample_reverse(score_model, n_samples=n, T=self.T, delta=delta, steps=self.steps, grid=self.grid,
                             integrator=self.integrator, init=self.init, seed=as_seed(rng), threads=self.threads)
        return np.asarray(out.samples, dtype=np.float64)

    def _config(self, rounds: int) -> dict[str, Any]:
        return {"schedule": self.schedule.values(rounds + 1).tolist(), "T": self.T, "steps": self.steps,
                "integrator": self.integrator, "grid": self.grid, "init": self.init}


class ExactLawLearner(_ScheduledSampler):
    """Perfect learning of the population law: the state of round k is the training law
    q_k (a GaussianMixture: q_0 = p, q_k = a p + (1 - a) S_{delta_{k-1}} q_{k-1}); the data
    passed to ``fit`` is ignored. Sampling runs the reverse sampler with q_k's exact score."""

    name = "exact"

    def __init__(self, data_law: GaussianMixture, real_fraction: float, schedule: Any, rounds: int, *,
                 T: float = 2.0, steps: int = 200, integrator: str = "exponential", grid: str = "quadratic",
                 perturbation: float = 0.0, threads: int = 0) -> None:
        super().__init__(as_schedule(schedule), T, steps, integrator, grid, "exact", threads)
        self.data_law = _check_law(data_law, "data_law")
        self.a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
        self.rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)
        # A relative error: beyond 1e6 the sampled law has nothing to do with q_k (and overflows).
        self.perturbation = check_real(perturbation, "perturbation", low=0.0, high=1e6)

    def config(self) -> dict[str, Any]:
        return {"real_fraction": self.a, "perturbation": self.perturbation, **self._config(self.rounds)}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        if previous_state is None:
            return {"round": 0, "law": self.data_law.to_dict()}
        k = previous_state["round"] + 1
        prev = GaussianMixture.from_dict(previous_state["law"]).smooth(self.schedule(k - 1))
        law = prev if self.a == 0 else self.data_law.mix(prev, self.a)
        return {"round": k, "law": law.to_dict()}

    def score_model(self, state: dict[str, Any]) -> GaussianMixture:
        """The score model sampled: q_k, or (perturbation eta > 0) q_k with every covariance
        scaled by (1 + eta) and means shifted by eta (a controlled score error)."""
        law = GaussianMixture.from_dict(state["law"])
        if self.perturbation == 0.0:
            return law
        eta = self.perturbation
        return GaussianMixture(law.weights, law.means + eta, law.covariances * (1.0 + eta))

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return self._sample(self.score_model(state), state["round"], n, rng)


class FittedModelLearner(_ScheduledSampler):
    """Wraps a retraining learner (``GMMLearner`` or ``EmpiricalLearner``) for fitting and
    samples the fitted model with the reverse sampler (exact score of the fitted model,
    exact initial law) at truncation delta_k."""

    def __init__(self, inner: Any, schedule: Any, rounds: int, *, T: float = 2.0, steps: int = 200,
                 integrator: str = "exponential", grid: str = "quadratic", threads: int = 0) -> None:
        if not (callable(getattr(inner, "fit", None)) and hasattr(inner, "name")):
            raise TypeError("inner must be a retraining learner (GMMLearner or EmpiricalLearner: fit() and a name), "
                            f"got {type(inner).__name__}")
        super().__init__(as_schedule(schedule), T, steps, integrator, grid, "exact", threads)
        self.inner = inner
        self.name = inner.name
        self.rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)

    def config(self) -> dict[str, Any]:
        inner = self.inner.config() if hasattr(self.inner, "config") else {}
        return {"inner": inner, **self._config(self.rounds)}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        k = 0 if previous_state is None else previous_state["round"] + 1
        prev = None if previous_state is None else previous_state["model"]
        return {"round": k, "model": self.inner.fit(data, prev, rng)}

    def score_model(self, state: dict[str, Any]) -> Any:
        from .empirical import EmpiricalScore

        m = state["model"]
        if "train" in m:
            return EmpiricalScore(m["train"])
        return GaussianMixture(m["weights"] / m["weights"].sum(), m["means"], m["covariances"])

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return self._sample(self.score_model(state), state["round"], n, rng)


@dataclasses.dataclass
class SimulationResult:
    """Output of :func:`simulate_recursion`: tidy ``table`` (round x metric), each round's
    output ``samples``, the model ``states``, the ``exact`` recursion for comparison, and the
    underlying :class:`~modelcollapse.retraining.RetrainingResult`."""

    table: pd.DataFrame
    samples: list[np.ndarray]
    states: list[Any]
    exact: ExactRecursion
    retraining: Any


def simulate_recursion(data_law: GaussianMixture, rounds: int, n_samples: int, real_fraction: float,
                       schedule: Any, *, model: str = "exact", T: float = 2.0, steps: int = 200,
                       integrator: str = "exponential", grid: str = "quadratic", n_components: int | None = None,
                       perturbation: float = 0.0, hermite_degree: int = 6, seed: int = 0,
                       checkpoint_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
                       threads: int = 0, labels: dict[str, Any] | None = None) -> SimulationResult:
    """Simulate the truncated-diffusion recursion with samples, through
    :func:`modelcollapse.retraining.run_retraining` (workflow ``mix`` with this real_fraction).

    Each round's model is sampled with the compiled reverse sampler (exact score of the
    model, exact initial law, ``steps`` steps of ``integrator`` on ``grid`` from T down to
    delta_k). The next model is ``exact`` (the population law q_k: the ideal recursion),
    ``empirical`` (KDE score of the n_samples-point training set: perfect learning of
    finite data) or ``gmm`` (EM fit, warm-started, ``n_components`` default K of p).
    Per round the table holds: mean, variance (trace), W2 to the exact p_hat_k (1-D: sample
    quantiles vs exact quantiles; d >= 2: sliced W2 against a sample of p_hat_k), and the
    orthonormal Hermite moments up to ``hermite_degree`` (measured and exact). Checkpoints
    and resume as in ``run_retraining``.
    """
    from .hermite import hermite_moments, mixture_moments
    from .retraining import EmpiricalLearner, GMMLearner, run_retraining

    if not isinstance(data_law, GaussianMixture):
        raise TypeError("data_law must be a modelcollapse.GaussianMixture")
    check_choice(model, "model", MODELS)
    rounds = check_positive_int(rounds, "rounds", minimum=0)
    n_samples = check_positive_int(n_samples, "n_samples", minimum=2)
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    sched = as_schedule(schedule)
    seed = as_seed(seed)
    hermite_degree = check_positive_int(hermite_degree, "hermite_degree", minimum=0, maximum=200)
    if n_components is not None:
        n_components = check_positive_int(n_components, "n_components", maximum=10**6)
    perturbation = check_real(perturbation, "perturbation", low=0.0, high=1e6)
    if labels is not None and not isinstance(labels, dict):
        raise TypeError(f"labels must be a dict of column values, got {type(labels).__name__}")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, Path)):
        raise TypeError(f"checkpoint_dir must be a path (str or Path), got {type(checkpoint_dir).__name__}")
    # Every round's samples are kept (keep_samples): n_samples x d per round.
    check_allocation(float(n_samples) * data_law.dim * (rounds + 2) * 2, "n_samples and rounds",
                     "the samples of every round")
    exact = exact_recursion(data_law, rounds, a, sched)
    kw = dict(T=T, steps=steps, integrator=integrator, grid=grid, threads=threads)
    if model == "exact":
        learner: Any = ExactLawLearner(data_law, a, sched, rounds, perturbation=perturbation, **kw)
        n_train = 2  # the exact learner ignores its training data; keep the loop's synthetic draws tiny
    else:
        if perturbation:
            raise ValueError("perturbation is only for model='exact'")
        inner = (EmpiricalLearner() if model == "empirical"
                 else GMMLearner(n_components or data_law.n_components))
        learner = FittedModelLearner(inner, sched, rounds, **kw)
        n_train = n_samples
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(9_999,)))
    real = data_law.sample(n_train, seed=rng)
    eval_data = data_law.sample(min(n_samples, 2000), seed=rng)
    d = data_law.dim
    exact_moments = [mixture_moments(exact.output_mixture(k), hermite_degree) for k in range(rounds + 1)]

    def metric(ctx):
        k = ctx.round
        x = ctx.samples
        law_k = exact.output_mixture(k)
        out = {"mean_0": float(x[:, 0].mean()), "var_trace": float(np.trace(np.atleast_2d(np.cov(x.T)))),
               "exact_mean_0": float(law_k.mean()[0]), "exact_var_trace": float(np.trace(law_k.covariance()))}
        if d == 1:
            out["w2_to_exact"] = w2_1d_to_law(x[:, 0], law_k)
        else:
            ref = law_k.sample(len(x), seed=np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, 77))))
            out["w2_to_exact"] = sliced_w2(x, ref, seed=seed + k)
        hm = hermite_moments(x, hermite_degree, std_errors=True)
        em = exact_moments[k]
        for i, alpha in enumerate(hm.indices):
            if alpha.sum() == 0:
                continue
            tag = "".join(str(v) for v in alpha) if d > 1 else str(alpha[0])
            out[f"g_{tag}"] = float(hm.values[i])
            out[f"g_{tag}_se"] = float(hm.std_errors[i])
            out[f"g_{tag}_exact"] = float(em.values[i])
        return out

    res = run_retraining(learner, real, rounds, workflow="mix", real_fraction=a, eval_data=eval_data,
                         n_eval=n_samples, metrics={"truncation": metric}, seed=seed, checkpoint_dir=checkpoint_dir,
                         resume=resume, keep_states=True, keep_samples=True, progress=progress,
                         labels={"model": model, "schedule": sched.description, **(labels or {})})
    return SimulationResult(table=res.table, samples=res.samples, states=res.states, exact=exact, retraining=res)


__all__ = ["Schedule", "as_schedule", "SmoothedLaw", "ExactRecursion", "exact_recursion", "limit_law",
           "transfer_function", "bias_factors", "contraction_factor", "robustness_radius", "robustness_bound",
           "simulate_recursion", "SimulationResult", "ExactLawLearner", "FittedModelLearner", "MODELS",
           "w2_1d", "w2_1d_to_law", "w2_1d_laws", "sliced_w2", "grid_distances", "mixture_quantiles_1d"]
