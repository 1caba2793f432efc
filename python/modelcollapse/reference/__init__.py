"""Pure-numpy twins of every compiled kernel: readable first, vectorised, the ground truth
of the tests and the baseline of the benchmarks. Nothing here imports ``modelcollapse._core``.

Modules: :mod:`.random` (Philox4x32-10 and Box-Muller), :mod:`.mixture` (Gaussian-mixture
log density, score, sampling), :mod:`.empirical` (smoothed empirical score),
:mod:`.sampler` (truncated reverse sampler).
"""
from . import empirical, hodge, mixture, random, sampler

__all__ = ["empirical", "hodge", "mixture", "random", "sampler"]
