"""Pure-numpy twins of every compiled kernel: readable first, vectorised, the ground truth
of the tests and the baseline of the benchmarks. Nothing here imports ``modelcollapse._core``.

Modules: :mod:`.random` (Philox4x32-10 and Box-Muller), :mod:`.mixture` (Gaussian-mixture
log density, score, sampling), :mod:`.empirical` (smoothed empirical score),
:mod:`.sampler` (truncated reverse sampler), :mod:`.retraining` (Gaussian retraining chains).
"""
from . import empirical, mixture, random, retraining, sampler

__all__ = ["empirical", "mixture", "random", "retraining", "sampler"]
