"""Truncated reverse-time sampler in numpy (docs/foundation.md, "Reverse sampler"), whole arrays per step.

Reverse SDE dY = [Y + 2 s(t, Y)] dtau + sqrt(2) dW from t_0 = T to t_N = delta; step k
uses the score at t_k and h_k = t_k - t_{k+1}:
- euler_maruyama: Y <- Y + h (Y + 2 s) + sqrt(2h) xi
- exponential:    Y <- e^h Y + 2 (e^h - 1) s + sqrt(e^{2h} - 1) xi
- ode:            Y <- Y + h (Y + s)
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import empirical, mixture


def time_grid(T: float, delta: float, steps: int, grid: str = "uniform") -> np.ndarray:
    """t_0 = T > ... > t_steps = delta: uniform, quadratic (dense near delta) or log."""
    k = np.arange(steps + 1) / steps
    if grid == "uniform":
        times = T - (T - delta) * k
    elif grid == "quadratic":
        times = delta + (T - delta) * (1.0 - k) ** 2
    elif grid == "log":
        times = T * (delta / T) ** k
    else:
        raise ValueError(f"unknown grid {grid!r}")
    times[0], times[-1] = T, delta
    return times


def step(y: np.ndarray, s: np.ndarray, h: float, integrator: str, xi: np.ndarray | None) -> np.ndarray:
    """One reverse step from the score s at the current time."""
    if integrator == "euler_maruyama":
        return y + h * (y + 2.0 * s) + np.sqrt(2.0 * h) * xi
    if integrator == "exponential":
        return np.exp(h) * y + 2.0 * np.expm1(h) * s + np.sqrt(np.expm1(2.0 * h)) * xi
    if integrator == "ode":
        return y + h * (y + s)
    raise ValueError(f"unknown integrator {integrator!r}")


def reverse_loop(score_fn: Callable[[np.ndarray, float], np.ndarray], init: np.ndarray, times: np.ndarray,
                 integrator: str, noise: np.ndarray | None = None, rng: np.random.Generator | None = None,
                 record_steps: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Runs the sampler from ``init`` over ``times``; noise (n, steps, d) or drawn from rng.

    Returns the final points and the states at ``record_steps`` (indices into times).
    """
    y = np.array(init, dtype=np.float64, copy=True)
    steps = len(times) - 1
    record = np.empty((len(record_steps),) + y.shape)
    where = {k: r for r, k in enumerate(record_steps)}
    for k in range(steps + 1):
        if k in where:
            record[where[k]] = y
        if k == steps:
            break
        h = times[k] - times[k + 1]
        xi = None
        if integrator != "ode":
            if noise is not None:
                xi = noise[:, k, :]
            else:
                assert rng is not None, "reverse_loop needs noise or rng for a stochastic integrator"
                xi = rng.standard_normal(y.shape)
        y = step(y, score_fn(y, times[k]), h, integrator, xi)
    return y, record


def numpy_score(model):
    """(score_fn(x, t), exact_init(n, T, rng) or None) computed with numpy only.

    Gaussian mixtures (anything with ``weights``, ``means``, ``full_covariances()``) and
    empirical laws (anything with a ``samples`` array and no means) are evaluated by this
    package's numpy code; any other callable is used as it is.
    """
    if hasattr(model, "_numpy_score_fn"):  # compiled score models that carry a numpy twin
        return model._numpy_score_fn()
    if hasattr(model, "full_covariances"):
        w, m, c = model.weights, model.means, model.full_covariances()

        def exact_mixture(n, T, rng):
            return mixture.sample(w, m, c, n, int(rng.integers(0, 2**63)), T)

        return (lambda x, t: mixture.score(w, m, c, x, t)), exact_mixture
    if isinstance(getattr(model, "samples", None), np.ndarray):
        X = model.samples

        def exact_empirical(n, T, rng):
            idx = rng.integers(0, len(X), size=n)
            return np.exp(-T) * X[idx] + np.sqrt(-np.expm1(-2.0 * T)) * rng.standard_normal((n, X.shape[1]))

        return (lambda x, t: empirical.score(X, x, t)), exact_empirical
    return model, None


def sample_reverse(score_model, n_samples: int, T: float = 1.0, delta: float = 0.01, steps: int = 200,
                   grid: str = "uniform", integrator: str = "euler_maruyama", init="standard_normal",
                   seed: int | None = 0, threads: int = 0, backend: str = "numpy", noise=None,
                   trajectory_times=None):
    """Reference twin of :func:`modelcollapse.sample_reverse` (``threads``/``backend`` unused).

    ``score_model`` is called as ``score_model(x, t)``. Returns (samples, times, record
    steps, recorded states). With a seed, the noise comes from numpy's default_rng(seed),
    so only runs with an injected ``noise`` (and array ``init``) match the compiled sampler.
    """
    rng = np.random.default_rng(seed)
    times = time_grid(T, delta, steps, grid)
    score_fn, exact_init = numpy_score(score_model)
    d = np.shape(init)[1] if isinstance(init, np.ndarray) else score_model.dim
    if isinstance(init, np.ndarray):
        y0 = init
    elif init == "standard_normal":
        y0 = rng.standard_normal((n_samples, d))
    elif init == "exact":
        if exact_init is None:
            raise ValueError("init='exact' needs a mixture or empirical score model")
        y0 = exact_init(n_samples, T, rng)
    else:
        raise ValueError(f"unknown init {init!r}")
    rec_steps: tuple[int, ...] = ()
    if trajectory_times is not None:
        rec_steps = tuple(sorted({int(np.argmin(np.abs(times - t))) for t in trajectory_times}))
    y, rec = reverse_loop(score_fn, y0, times, integrator, noise, rng, rec_steps)
    return y, times, rec_steps, rec
