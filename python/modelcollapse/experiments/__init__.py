"""Reproduced experiments, one module per figure family. The library never imports this
package; the CLI and users do."""
from __future__ import annotations

import importlib

from ._claims import Claim, claim, claim_from_interval, claims_frame
from ._registry import PRESETS, REGISTRY, Experiment, ExperimentOutput, register

# One entry per experiment module; each registers itself on import.
_MODULES = ("demo", "truncation", "hodge", "dae", "retraining_gaussian", "retraining_neural", "atlas")


def load_all() -> dict[str, Experiment]:
    """Import every experiment module and return the registry."""
    for module in _MODULES:
        importlib.import_module(f"{__name__}.{module}")
    return REGISTRY


def get(name: str) -> Experiment:
    registry = load_all()
    if name not in registry:
        raise ValueError(f"unknown experiment {name!r}; available: {', '.join(sorted(registry))}")
    return registry[name]


__all__ = ["Claim", "claim", "claim_from_interval", "claims_frame", "PRESETS", "REGISTRY", "Experiment",
           "ExperimentOutput", "register", "load_all", "get"]
