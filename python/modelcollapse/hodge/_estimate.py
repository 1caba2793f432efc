"""What every gradient-part estimator shares: its result record and the ridge-regularised
solve of the finite-basis problem (docs/hodge.md "Gradient-part estimator")."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ..results import Record

#: Relative ridges eps / (tr(G) / K) tried by ``ridge="auto"`` and by the network's output refit.
RIDGE_GRID = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


@dataclasses.dataclass(frozen=True)
class GradientPartEstimate(Record):
    """Estimate of E_p|grad phi|^2 from samples and the model score.

    value : cross-fitted variational value 2 beta.b - beta^T G beta (beta fitted on the other
        half): an unbiased estimate of a lower bound of E|grad phi|^2.
    se : its standard error (per-sample variance on the evaluation halves).
    plugin : b^T (G + eps I)^{-1} b on all samples (in-sample; biased upwards by noise).
    basis_size : number of basis functions (for ``basis="network"``: trainable parameters).
    basis : "hermite", "rff" or "network".
    n : number of samples.
    ridge : the relative ridge used (geometric mean over the two fitting halves).
    info : extra diagnostics (for ``basis="network"``: per half, the training step kept, the
        validation objective, whether the refitted output layer was kept; the fit time).
    """

    value: float
    se: float
    plugin: float
    basis_size: int
    basis: str
    n: int
    ridge: float = 0.0
    info: dict[str, Any] = dataclasses.field(default_factory=dict)


def _solve(G: np.ndarray, b: np.ndarray, ridge: float) -> np.ndarray:
    """beta = (G + eps I)^{-1} b with eps = ridge * tr(G) / K."""
    K = len(b)
    eps = ridge * max(np.trace(G) / K, 1e-300)
    return np.linalg.solve(G + eps * np.eye(K), b)
