"""Truncated reverse-time sampling (docs/foundation.md, "Reverse sampler").

:func:`sample_reverse` integrates dY = [Y + 2 s(t, Y)] dtau + sqrt(2) dW from t = T down
to the truncation time t = delta. For Gaussian mixtures and empirical (KDE) scores the
whole time loop runs in the compiled core, threaded over samples; any Python callable
``score(x, t)`` is accepted too (slow path: one call per step, e.g. a torch model).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import numpy as np

from . import _core
from . import reference as _ref
from ._types import BACKENDS
from ._validation import (
    as_seed,
    check_allocation,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from .empirical import EmpiricalScore
from .mixture import GaussianMixture
from .results import Record

GRIDS = ("uniform", "quadratic", "log")
INTEGRATORS = ("euler_maruyama", "exponential", "ode")
INITS = ("standard_normal", "exact")
# The compiled sampler takes the bound enum, looked up by the integrator's name.



#: A uniform grid whose step h exceeds this fraction of the narrowest variance at delta is
#: warned about: the within-mode variance error is about 1.1 h / sigma^2 (measured,
#: docs/foundation.md, section "Reverse sampler", "Small delta").
UNIFORM_STEP_WARN = 0.05


class DiscretisationWarning(UserWarning):
    """The time grid is too coarse near delta for the narrowest structure of the score model."""


class NonFiniteSamplesError(FloatingPointError, ValueError):
    """The reverse sampler diverged (non-finite states). A FloatingPointError as before, and a
    ValueError because the cause is an argument (step size, horizon, score model)."""


ScoreModel: TypeAlias = GaussianMixture | EmpiricalScore | Callable[[np.ndarray, float], np.ndarray]


@dataclasses.dataclass(frozen=True)
class ReverseSamples(Record):
    """Output of :func:`sample_reverse`.

    Attributes
    ----------
    samples : (n, d) final points at t = delta.
    times : the time grid t_0 = T > ... > t_N = delta.
    trajectory : (len(trajectory_times), n, d) states at the requested times, or None.
    trajectory_times : grid times actually recorded (requested times snapped to the grid).
    score : description of the score model used, e.g. ``GaussianMixture(K=8, d=2, isotropic)``.
    backend, integrator, grid, init, seed : how the samples were produced.
    """

    samples: np.ndarray
    times: np.ndarray
    trajectory: np.ndarray | None
    trajectory_times: np.ndarray | None
    score: str
    backend: str
    integrator: str
    grid: str
    init: str
    seed: int | None

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.samples, dtype=dtype)


def time_grid(T: float, delta: float, steps: int, grid: str = "uniform") -> np.ndarray:
    """Decreasing time grid t_0 = T > t_1 > ... > t_steps = delta.

    ``uniform``: equal steps; ``quadratic``: t_k = delta + (T - delta)(1 - k/N)^2, dense
    near delta where the score varies fastest; ``log``: geometric in t.
    """
    T = check_real(T, "T", low=0.0, low_open=True)
    delta = check_real(delta, "delta", low=0.0)
    if delta >= T:
        raise ValueError(f"delta (truncation time) must be < T, got delta={delta} >= T={T}")
    steps = check_positive_int(steps, "steps")
    check_allocation(steps + 1.0, "steps", "the time grid")
    check_choice(grid, "grid", GRIDS)
    if grid == "log" and delta <= 0:
        raise ValueError("grid='log' needs delta > 0 (geometric steps cannot reach 0)")
    return _ref.sampler.time_grid(T, delta, steps, grid)


def _narrowest_variance(score_model: Any, t: float) -> float | None:
    """The smallest variance (covariance eigenvalue) of the score model's law smoothed to t:
    e^{-2t} lambda_min + 1 - e^{-2t} for a :class:`GaussianMixture`, 1 - e^{-2t} for an
    :class:`EmpiricalScore` (point masses); None for other models."""
    decay = float(np.exp(-2.0 * t))
    if isinstance(score_model, GaussianMixture):
        cov = score_model.covariances
        lam = float(np.min(np.linalg.eigvalsh(cov)) if score_model.cov_type == "full" else np.min(cov))
        return decay * lam + 1.0 - decay
    if isinstance(score_model, EmpiricalScore):
        return 1.0 - decay
    return None


def _warn_coarse_uniform_grid(score_model: Any, T: float, delta: float, steps: int) -> None:
    """Warn when a uniform grid's step is large against the law's narrowest variance at delta:
    the sampler then inflates within-mode variances (e.g. +345% for variance-1e-3 modes at
    delta = 1e-4 with 400 steps from T = 1; the log grid gives +1%)."""
    var = _narrowest_variance(score_model, delta)
    h = (T - delta) / steps
    if var is None or var <= 0 or h <= UNIFORM_STEP_WARN * var:  # var = 0: point masses at delta = 0, refused later
        return
    import warnings

    warnings.warn(f"grid='uniform' with step (T - delta)/steps = {h:.3g} against the narrowest variance "
                  f"{var:.3g} of the law at delta = {delta:g} (ratio {h / var:.2g} > {UNIFORM_STEP_WARN}): expect "
                  f"within-mode variances about {1.1 * h / var:.0%} too large; use grid='log' (or 'quadratic'), or "
                  f"steps >= {(T - delta) / (UNIFORM_STEP_WARN * var):.3g}", DiscretisationWarning,
                  stacklevel=3)


def _is_compiled_model(score_model: Any) -> bool:
    """Mixtures, empirical scores, and any model that declares ``_compiled_score_model``
    (it provides ``_core().sample_reverse``, ``dim``, ``describe()``, ``sample_smoothed``)."""
    return isinstance(score_model, (GaussianMixture, EmpiricalScore)) or bool(
        getattr(score_model, "_compiled_score_model", False))


def describe_score(score_model: Any) -> str:
    if _is_compiled_model(score_model):
        return score_model.describe()
    return f"callable {getattr(score_model, '__qualname__', type(score_model).__name__)}"


def sample_reverse(score_model: ScoreModel, n_samples: int, T: float = 1.0, delta: float = 0.01,
                   steps: int = 200, grid: str = "uniform", integrator: str = "euler_maruyama",
                   init: str | np.ndarray = "standard_normal", *, seed: int | np.random.Generator | None = 0,
                   threads: int = 0, backend: str = "cpp", noise: np.ndarray | None = None,
                   trajectory_times: Sequence[float] | None = None) -> ReverseSamples:
    """Sample the truncated reverse diffusion of a score model.

    Parameters
    ----------
    score_model : GaussianMixture, EmpiricalScore or callable
        The score s(x, t) of p_t. For a :class:`GaussianMixture` p this is the exact score
        of S_t p; for an :class:`EmpiricalScore` the score of the smoothed training set; a
        callable is called as ``score_model(x, t)`` with x of shape (n, d) and must return
        an (n, d) array.
    n_samples : int
        Number of samples.
    T : float
        Start time of the reverse process (the forward horizon), > 0.
    delta : float
        Truncation time (early stopping), 0 <= delta < T. With the exact score, exact init
        and exact integration the output law is S_delta p.
    steps : int
        Number of time steps.
    grid : {"uniform", "quadratic", "log"}
        Time grid, see :func:`time_grid`. A uniform grid whose step exceeds 5% of the law's
        narrowest variance at delta (mixtures, empirical scores) raises a
        :class:`DiscretisationWarning`: small delta or narrow modes need ``"log"``.
    integrator : {"euler_maruyama", "exponential", "ode"}
        Euler-Maruyama, exponential integrator (exact on the linear part), or Euler on the
        probability-flow ODE (deterministic).
    init : {"standard_normal", "exact"} or array (n_samples, d)
        Initial law: N(0, I), p_T itself (mixtures and empirical scores), or given points.
    seed : int, numpy Generator or None
        Key of the counter-based generator (cpp) or of numpy's generator (numpy backend).
        For a seed the compiled result does not depend on ``threads``.
    threads : int
        Threads for the compiled loop (0 = all cores).
    backend : {"cpp", "numpy"}
        Compiled core or the numpy reference (:mod:`modelcollapse.reference.sampler`).
    noise : array (n_samples, steps, d), optional
        Injected step noise (replaces the generator), to compare implementations exactly.
    trajectory_times : sequence of float, optional
        Times in [delta, T] at which to record the states (snapped to the nearest grid time).

    Returns
    -------
    ReverseSamples
        ``.samples`` (n_samples, d) and the record of how they were made.
    """
    n_samples = check_positive_int(n_samples, "n_samples")
    check_choice(integrator, "integrator", INTEGRATORS)
    check_choice(backend, "backend", BACKENDS)
    threads = check_threads(threads)
    times = time_grid(T, delta, steps, grid)
    if grid == "uniform":
        _warn_coarse_uniform_grid(score_model, float(times[0]), float(times[-1]), len(times) - 1)
    is_model = _is_compiled_model(score_model)
    model: Any = score_model  # when is_model: duck-typed, see _is_compiled_model
    if not is_model and not callable(score_model):
        raise TypeError("score_model must be a GaussianMixture, an EmpiricalScore or a callable score(x, t)")
    if isinstance(score_model, EmpiricalScore) and delta <= 0:
        raise ValueError("delta must be > 0 for an empirical score (its score is singular at t = 0)")
    d = _dimension(model if is_model else None, init)
    n_rec = 0 if trajectory_times is None else len(np.atleast_1d(np.asarray(trajectory_times, dtype=object)))
    # The states, the noise of one step (or all of it, when injected) and the recorded trajectory.
    check_allocation(float(n_samples) * d * (3 + n_rec) + (0.0 if noise is None else float(n_samples) * steps * d),
                     "n_samples" if noise is None else "n_samples and steps", "the sampler's arrays")
    # The numpy twin takes a Generator as it is (it draws from it); the kernels take a key.
    key: Any = as_seed(seed) if not (backend == "numpy" and isinstance(seed, np.random.Generator)) else seed
    y0, init_name = _initial_state(model if is_model else None, init, n_samples, d, T, key, threads, backend)
    if noise is not None:
        noise = check_finite_array(noise, "noise", shape=(n_samples, steps, d))
    rec_steps = _recorded_steps(trajectory_times, times)

    if backend == "numpy" or not is_model:
        if backend == "cpp":  # callable score: Python loop over steps, numpy updates and noise
            rng = np.random.default_rng(key)
            y, rec = _ref.sampler.reverse_loop(score_model, y0, times, integrator, noise, rng, rec_steps)
            used = "python-callable"
        else:
            y, _, _, rec = _ref.sampler.sample_reverse(score_model, n_samples, T, delta, steps, grid, integrator,
                                                       y0, key, noise=noise,
                                                       trajectory_times=[times[k] for k in rec_steps] or None)
            used = "numpy"
    else:
        y, rec = model._core().sample_reverse(times, _core.Integrator.__members__[integrator], key, y0, noise,
                                              list(rec_steps), threads)
        used = "cpp"
    if not np.all(np.isfinite(y)):
        raise NonFiniteSamplesError(
            "reverse sampler produced non-finite values: the step (T - delta) / steps = "
            f"{(times[0] - times[-1]) / steps:.3g} "
            "is too large for this score model (raise steps or lower T), or the score model returns non-finite values")
    return ReverseSamples(samples=y, times=times, trajectory=rec if rec_steps else None,
                          trajectory_times=times[list(rec_steps)] if rec_steps else None,
                          score=describe_score(score_model), backend=used, integrator=integrator, grid=grid,
                          init=init_name, seed=key if isinstance(key, int) else None)


def _dimension(model: Any | None, init: Any) -> int:
    """The dimension: from a compiled score model, else from an init array."""
    if model is not None:
        return int(model.dim)
    if isinstance(init, str):
        raise ValueError("with a callable score, pass init as an (n_samples, d) array (the dimension is unknown)")
    return check_finite_array(init, "init", ndim=2, allow_empty=True).shape[1]


def _initial_state(model: Any | None, init: Any, n_samples: int, d: int, T: float, key: Any, threads: int,
                   backend: str) -> tuple[Any, str]:
    """(y0, init's name): an array, or the name of the numpy twin's initial law."""
    if not isinstance(init, str):
        return check_finite_array(init, "init", shape=(n_samples, d)), "given"
    check_choice(init, "init", INITS)
    if init == "exact":
        if model is None:
            raise ValueError("init='exact' needs a GaussianMixture or EmpiricalScore (p_T must be known)")
        return (model.sample_smoothed(n_samples, T, seed=key, threads=threads) if backend == "cpp" else "exact"), init
    if backend == "cpp":
        return _core.normals(key, _core.PURPOSE_INIT_NORMAL, 0, n_samples, d, 0, threads), init
    return "standard_normal", init


def _recorded_steps(trajectory_times: Any, times: np.ndarray) -> tuple[int, ...]:
    """Grid indices of the requested trajectory times (snapped to the grid)."""
    if trajectory_times is None:
        return ()
    tt = check_finite_array(trajectory_times, "trajectory_times", ndim=1)
    if np.any(tt < times[-1] - 1e-12) or np.any(tt > times[0] + 1e-12):
        raise ValueError(f"trajectory_times must lie in [delta, T] = [{times[-1]}, {times[0]}]")
    return tuple(sorted({int(np.argmin(np.abs(times - t))) for t in tt}))
