"""Pure-numpy twins of every compiled kernel: readable first, vectorised, the ground truth
of the tests and the baseline of the benchmarks. Nothing here imports ``modelcollapse._core``.

Modules: :mod:`.random` (ARS-7 and the ziggurat; its tables in :mod:`.ziggurat_tables`),
:mod:`.mixture` (Gaussian-mixture log density, score, sampling), :mod:`.empirical` (smoothed
empirical score),
:mod:`.sampler` (truncated reverse sampler), :mod:`.retraining` (Gaussian retraining chains),
:mod:`.hermite` (Hermite moments), :mod:`.dae` (online SGD of the two-layer DAE),
:mod:`.metrics` (KDE, Wasserstein, precision/recall), :mod:`.hodge` (perturbed scores,
Stein estimator of the gradient part).
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["dae", "empirical", "hermite", "hodge", "metrics", "mixture", "random", "retraining", "sampler"]


def __getattr__(name: str) -> ModuleType:
    # Submodules load on first use: `import modelcollapse` stays fast (scipy loads only
    # when a twin that needs it is called).
    if name in __all__:
        module = importlib.import_module(f"{__name__}.{name}")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
