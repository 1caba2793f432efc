"""modelcollapse: simulate, measure and explain model collapse.

Diffusion and flow models retrained, round after round, on samples they generated
themselves drift away from the data. This package provides exact laws (Gaussian
mixtures and their smoothings), compiled samplers and kernels, numpy references for all
of them, and reproducible experiments from four papers.

Quick start::

    import modelcollapse as mc
    p = mc.GaussianMixture([0.5, 0.5], [[-2, 0], [2, 0]], 0.3)
    out = mc.sample_reverse(p, n_samples=10_000, T=2.0, delta=0.05, steps=200, init="exact", seed=1)
    out.samples  # ~ S_0.05 p
"""
from __future__ import annotations

from . import _core, random, reference
from .empirical import EmpiricalScore
from .mixture import GaussianMixture
from .sampler import ReverseSamples, sample_reverse, time_grid

__version__ = "0.1.0"


def default_threads() -> int:
    """Number of threads the compiled kernels use when ``threads=0`` (all cores)."""
    return int(_core.hardware_threads())


__all__ = ["EmpiricalScore", "GaussianMixture", "ReverseSamples", "default_threads", "sample_reverse",
           "time_grid", "__version__"]

# retraining (issue 5): the generic retraining loop, learners, Gaussian theory
from . import retraining  # noqa: E402

__all__ += ["retraining"]
