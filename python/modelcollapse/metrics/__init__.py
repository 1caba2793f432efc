"""Distances between laws (docs/metrics.md): Gaussian KDE, Hellinger, KL and total
variation on grids, Wasserstein (exact, 1-D, sliced, Gaussian closed forms) and
Kynkaanniemi et al.'s precision/recall.

Hellinger is H^2(p, q) = 1/2 int (sqrt p - sqrt q)^2, so H in [0, 1]; Cui et al. plot
int (sqrt p - sqrt q)^2 = 2 H^2 (``kind="cui"``). Densities from samples are Gaussian
KDEs with scipy's bandwidth convention (``scott`` / ``silverman`` factor times the
weighted sample covariance) times ``factor``; exact KDE agrees with
``scipy.stats.gaussian_kde`` to 1e-10 relative (typically ~1e-12; on regular grids it
uses exponential-free recurrences, see ``docs/metrics.md``). The binned mode (linear binning and a
truncated-kernel convolution) refines its binning grid until an a-priori bound on the
Hellinger distance to the exact KDE is below ``tol`` (default 1e-3); see
:func:`binned_error_bound` and ``docs/metrics.md``.
"""
from __future__ import annotations

from .._types import BACKENDS
from ._divergences import auto_grid, hellinger, hellinger_grid, kl_grid, tv_grid
from ._gaussian import _gaussian_params, gaussian_kl, gaussian_w2
from ._grid import (
    BANDWIDTH_RULES,
    EXACT_OT_MAX_PAIRS,
    HELLINGER_KINDS,
    KDE_METHODS,
    WASSERSTEIN_METHODS,
    Grid,
    as_samples,
)
from ._kde import _exact_grid_axes, binned_error_bound, binned_plan, kde, kde_bandwidth
from ._precision_recall import PrecisionRecall, precision_recall
from ._wasserstein import sliced_projections, wasserstein

__all__ = [
    "Grid", "auto_grid", "kde", "kde_bandwidth", "binned_error_bound", "binned_plan", "hellinger",
    "hellinger_grid", "kl_grid", "tv_grid", "wasserstein", "sliced_projections", "gaussian_w2",
    "gaussian_kl", "precision_recall", "PrecisionRecall",
]
