"""The activations sigma of the DAE's hidden layer: the one list of names, their numpy
formulas (used by the theory), and the compiled enum (used by the C++ kernels).

The names are those of ``modelcollapse._core.Activation`` (erf is erf(h), not
erf(h / sqrt 2)); ``modelcollapse.reference.dae`` keeps its own readable twin of the
formulas, which the tests compare with this one (docs/dae.md, "Model and training").
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf as _erf

from .. import _core
from .._validation import check_choice

ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "linear", "erf", "sigmoid")


def check_activation(name: str) -> str:
    """``name`` if it is one of :data:`ACTIVATIONS`, else ValueError naming ``activation``."""
    check_choice(name, "activation", ACTIVATIONS)
    return name


def core_activation(name: str) -> _core.Activation:
    """The compiled enum value of an activation name (validated)."""
    return _core.Activation.__members__[check_activation(name)]


def activation(name: str, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sigma(h) and sigma'(h), elementwise."""
    h = np.asarray(h, dtype=float)
    if name == "tanh":
        s = np.tanh(h)
        return s, 1.0 - s * s
    if name == "relu":
        return np.maximum(h, 0.0), (h > 0).astype(float)
    if name == "linear":
        return h.copy(), np.ones_like(h)
    if name == "erf":
        return _erf(h), 2.0 / np.sqrt(np.pi) * np.exp(-h * h)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-h))
        return s, s * (1.0 - s)
    check_activation(name)
    raise AssertionError(name)  # unreachable: every name of ACTIVATIONS is handled above
