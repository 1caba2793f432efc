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

    value
        the cross-fitted variational value 2 beta.b - beta^T G beta (beta fitted on the
        other half) plus the variance correction ``correction``: estimates J(E beta_hat), the
        finite-basis value less only the ridge's shrinkage, without the downward bias of
        the fitted beta's noise (docs/hodge.md, section "Bias and error bar").
    se
        standard error of ``value``: the held-out per-sample noise and the size of the
        correction, in quadrature (the correction's own spread is at most its size).
    plugin
        b^T (G + eps I)^{-1} b on all samples (in-sample; biased upwards by noise).
    basis_size
        number of basis functions (for ``basis="network"``: trainable parameters).
    basis
        "hermite", "rff" or "network".
    n
        number of samples.
    ridge
        the relative ridge used (geometric mean over the two fitting halves).
    lower
        the held-out value alone (before the correction): an unbiased estimate of
        J(beta_hat) <= E|grad phi|^2, i.e. a lower bound up to noise, biased down by the
        noise of beta_hat (the former ``value``).
    correction
        (beta_A - beta_B)^T G (beta_A - beta_B) / 2 from the two half fits: an
        unbiased estimate of E (beta_hat - E beta_hat)^T G (beta_hat - E beta_hat), the
        expected loss of the held-out value to the fit noise (0 for the network basis).
    truncation
        value at the full basis minus value at the next smaller basis (Hermite:
        degree - 2; RFF: half the features), clipped at 0: the allowance for what the
        basis still misses; the upper end of the error bar adds it (one-sided: a finite
        basis can only fall short). NaN when not computed.
    info
        extra diagnostics (for ``basis="network"``: per half, the training step kept, the
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
    lower: float = float("nan")
    correction: float = 0.0
    truncation: float = 0.0

    @property
    def ci_low(self) -> float:
        """Lower end of the 95% error bar: value - 1.96 se, clipped at 0 (E|grad phi|^2 >= 0)."""
        return max(0.0, self.value - 1.96 * self.se)

    @property
    def ci_high(self) -> float:
        """Upper end of the 95% error bar: value + 1.96 se + truncation."""
        trunc = self.truncation if np.isfinite(self.truncation) else 0.0
        return self.value + 1.96 * self.se + trunc


def _solve(G: np.ndarray, b: np.ndarray, ridge: float) -> np.ndarray:
    """beta = (G + eps I)^{-1} b with eps = ridge * tr(G) / K."""
    K = len(b)
    eps = ridge * max(np.trace(G) / K, 1e-300)
    return np.linalg.solve(G + eps * np.eye(K), b)
