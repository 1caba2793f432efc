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

import importlib
from typing import Any

from . import _core, random
from ._version import version as __version__  # from the package metadata (pyproject.toml)
from .empirical import EmpiricalScore
from .mixture import GaussianMixture
from .sampler import ReverseSamples, sample_reverse, time_grid


def default_threads() -> int:
    """Number of threads the compiled kernels use when ``threads=0`` (all cores)."""
    return int(_core.hardware_threads())


# The parts load on first use (PEP 562), so that `import modelcollapse` does not pay for
# scipy.stats, pandas and the parts a script never touches (docs/benchmarks.md, import time).
_SUBMODULES = ("dae", "dae_theory", "hermite", "hodge", "metrics", "reference", "retraining", "truncation")
_LAZY_NAMES = {"HermiteMoments": "hermite", "hermite_moments": "hermite", "mixture_moments": "hermite",
               "PerturbedScore": "hodge", "Schedule": "truncation", "exact_recursion": "truncation",
               "limit_law": "truncation", "simulate_recursion": "truncation"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value: Any = importlib.import_module(f"{__name__}.{name}")
    elif name in _LAZY_NAMES:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


__all__ = ["EmpiricalScore", "GaussianMixture", "ReverseSamples", "default_threads", "sample_reverse",
           "time_grid", "__version__", "dae", "dae_theory", "hermite", "hodge", "metrics", "reference", "retraining",
           "truncation", "HermiteMoments", "hermite_moments", "mixture_moments", "PerturbedScore", "Schedule",
           "exact_recursion", "limit_law", "simulate_recursion"]
