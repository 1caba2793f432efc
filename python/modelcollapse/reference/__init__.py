"""Pure-numpy twins of every compiled kernel: readable first, vectorised, the ground truth
of the tests and the baseline of the benchmarks. Nothing here imports ``modelcollapse._core``.

Modules: :mod:`.random` (Philox4x32-10 and Box-Muller), :mod:`.mixture` (Gaussian-mixture
log density, score, sampling), :mod:`.empirical` (smoothed empirical score),
:mod:`.sampler` (truncated reverse sampler), :mod:`.retraining` (Gaussian retraining chains),
:mod:`.hermite` (Hermite moments), :mod:`.dae` (online SGD of the two-layer DAE),
:mod:`.metrics` (KDE, Wasserstein, precision/recall), :mod:`.hodge` (perturbed scores,
Stein estimator of the gradient part).
"""
from . import dae, empirical, hermite, hodge, metrics, mixture, random, retraining, sampler

__all__ = ["dae", "empirical", "hermite", "hodge", "metrics", "mixture", "random", "retraining", "sampler"]
