"""The score a perfect learner fits to a finite training set (docs/foundation.md, "Empirical (KDE) score").

``EmpiricalScore(samples)`` is the law (1/n) sum_i delta_{x_i}; at time t its smoothing is
(1/n) sum_i N(e^{-t} x_i, sigma_t^2 I), whose score the compiled kernel evaluates with a
streamed log-sum-exp over the n components: memory O(n + m), never an n x m matrix.
Sampling the reverse diffusion with this score reproduces (smoothed copies of) the
training points: the memorisation limit of a perfectly trained model.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from . import reference as _ref
from ._types import BACKENDS
from ._validation import (
    as_seed,
    check_allocation,
    check_choice,
    check_finite_array,
    check_points,
    check_positive_int,
    check_real,
    check_threads,
)
from .mixture import _repair_far_rows


class EmpiricalScore:
    """Score of the Gaussian-smoothed empirical law of ``samples`` (n, d).

    Examples
    --------
    >>> import numpy as np
    >>> s = EmpiricalScore(np.random.default_rng(0).normal(size=(500, 2)))
    >>> s.score(np.zeros((3, 2)), t=0.5).shape
    (3, 2)
    """

    def __init__(self, samples: Any) -> None:
        x = check_finite_array(samples, "samples", ndim=(1, 2))
        if x.ndim == 1:
            x = x[:, None]
        self._samples = x
        self._core_obj = None

    @property
    def samples(self) -> np.ndarray:
        return self._samples.copy()

    @property
    def n_points(self) -> int:
        return self._samples.shape[0]

    @property
    def dim(self) -> int:
        return self._samples.shape[1]

    def __repr__(self) -> str:
        return f"EmpiricalScore(n={self.n_points}, d={self.dim})"

    def describe(self) -> str:
        return repr(self)

    def _core(self):
        if self._core_obj is None:
            self._core_obj = _core.EmpiricalScoreCore(self._samples)
        return self._core_obj

    def _evaluate(self, what: str, x: Any, t: Any, threads: int, backend: str) -> np.ndarray:
        pts, single = check_points(x, self.dim)
        t = check_real(t, "t", low=0.0, low_open=True)
        check_choice(backend, "backend", BACKENDS)
        if backend == "cpp":
            out = getattr(self._core(), what)(pts, t, check_threads(threads))
        else:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                out = getattr(_ref.empirical, what)(self._samples, pts, t)
        if not np.all(np.isfinite(out)):
            # Points (or training samples) so far apart that squared distances overflow.
            n = self.n_points
            law = (np.full(n, 1.0 / n), np.exp(-t) * self._samples, np.full(n, -np.expm1(-2.0 * t)))
            out = _repair_far_rows(what, out, pts, law, allow_minus_inf=False)
        return out[0] if single else out

    def score(self, x: Any, t: float, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """Score of the smoothed empirical law at time t > 0, at the rows of x."""
        return self._evaluate("score", x, t, threads, backend)

    def logpdf(self, x: Any, t: float, *, threads: int = 0, backend: str = "cpp") -> np.ndarray:
        """Log density of the smoothed empirical law at time t > 0, at the rows of x."""
        return self._evaluate("logpdf", x, t, threads, backend)

    def __call__(self, x: Any, t: float) -> np.ndarray:
        return self.score(x, t)

    def sample_smoothed(self, n_samples: int, t: float, *, seed: int | np.random.Generator | None = 0,
                        threads: int = 0) -> np.ndarray:
        """Samples of the smoothed empirical law at time t: e^{-t} x_I + sigma_t Z, I uniform.

        Uses the same streams as :meth:`GaussianMixture.sample` (choice, then normals).
        """
        n = check_positive_int(n_samples, "n_samples", 0)
        t = check_real(t, "t", low=0.0)
        check_allocation(float(n) * (self.dim + 1), "n_samples", "the samples")
        key = as_seed(seed)
        u = _core.uniforms(key, _core.PURPOSE_INIT_CHOICE, 0, n, 1, 0)[:, 0]
        idx = np.minimum((u * self.n_points).astype(np.int64), self.n_points - 1)
        z = _core.normals(key, _core.PURPOSE_INIT_NORMAL, 0, n, self.dim, 0, check_threads(threads))
        return np.exp(-t) * self._samples[idx] + np.sqrt(-np.expm1(-2.0 * t)) * z
