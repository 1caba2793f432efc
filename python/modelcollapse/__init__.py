"""modelcollapse: simulate, measure and explain model collapse.

Diffusion and flow models retrained, round after round, on samples they generated
themselves drift away from the data. This package provides exact laws (Gaussian
mixtures and their smoothings), compiled samplers and kernels, numpy references for all
of them, and reproducible experiments from four papers.

Quick start (samples ~ S_0.05 p, the law a perfectly trained model samples):

>>> import modelcollapse as mc
>>> p = mc.GaussianMixture([0.5, 0.5], [[-2, 0], [2, 0]], 0.3)
>>> out = mc.sample_reverse(p, n_samples=10_000, T=2.0, delta=0.05, steps=200, init="exact", seed=1)
>>> out.samples.shape
(10000, 2)

Areas: :mod:`.truncation` and :mod:`.hermite` (recursion with truncated reverse
diffusion), :mod:`.hodge` (geometry of score errors), :mod:`.retraining` (the retraining
loop, learners, Gaussian theory), :mod:`.dae` and :mod:`.dae_theory` (high-dimensional
denoising autoencoder), :mod:`.metrics` (KDE, Hellinger, Wasserstein, precision/recall).
"""
from __future__ import annotations

from . import _core, random, reference
from ._version import version as __version__  # from the package metadata (pyproject.toml)
from .empirical import EmpiricalScore
from .mixture import GaussianMixture
from .sampler import ReverseSamples, sample_reverse, time_grid


def default_threads() -> int:
    """Number of threads the compiled kernels use when ``threads=0`` (all cores)."""
    return int(_core.hardware_threads())


from . import dae, dae_theory, hermite, hodge, metrics, retraining, truncation  # noqa: E402
from .hermite import HermiteMoments, hermite_moments, mixture_moments  # noqa: E402
from .hodge import PerturbedScore  # noqa: E402
from .truncation import Schedule, exact_recursion, limit_law, simulate_recursion  # noqa: E402

__all__ = ["EmpiricalScore", "GaussianMixture", "ReverseSamples", "default_threads", "sample_reverse",
           "time_grid", "__version__", "dae", "dae_theory", "hermite", "hodge", "metrics", "retraining",
           "truncation", "HermiteMoments", "hermite_moments", "mixture_moments", "PerturbedScore", "Schedule",
           "exact_recursion", "limit_law", "simulate_recursion"]
