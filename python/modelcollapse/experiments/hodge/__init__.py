"""Experiment ``hodge``: only the gradient part of a score error is observed (docs/hodge.md,
"Experiment ``hodge``").

Three studies on a 2-D Gaussian mixture p (and a 2-D Gaussian for closed forms):

1. correlation, over ``n_seeds`` independent replicates: random perturbed models
   s = grad log p_t + u grad V_t + c (solenoidal field) + a (random Fourier field); per model
   the integrated L2 error, the integrated gradient-part estimate (samples + model score
   only, with its error bar), the exact gradient part (term types or the grid solver), and
   the sample quality after reverse sampling with an accurate sampler
   (:func:`modelcollapse.metrics.hellinger` of a KDE against p_delta on a grid, sliced W2 by
   :func:`modelcollapse.metrics.wasserstein`). Spearman correlations with quality per
   replicate, and a bootstrap CI (models resampled within replicates) of the difference
   between the estimate's and the L2 error's. A control family (c = 0, a = 0: the L2 error
   is all gradient) and a null family (u = 0, a = 0: gradient part 0, estimate only).
2. impossibility: (I + cA) grad log p_t for growing c: L2 error grows like c^2 while
   quality stays flat once the sampler takes enough steps (with few steps it does not).
3. bounds: Girsanov and marginal KL bounds against the true KL (closed form for a
   Gaussian; reverse Fokker-Planck on a grid for the mixture), and the interaction of a
   solenoidal error with a gradient error (true KL against c for several u, closed form).

Every statement is returned as a claim (docs/hodge.md, section "Claims").
"""
from __future__ import annotations

import dataclasses
import warnings
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
from tqdm.auto import tqdm

from ... import GaussianMixture, metrics, sample_reverse
from ... import hodge as H
from ...hodge._common import _time_nodes
from ...hodge._grid import _default_box
from .._claims import Claim, claim, claim_from_interval
from .._plotting import panels, save_figure, title
from .._registry import ExperimentOutput, register
from .._units import unit
from ._figures import _figures
from ._setup import (
    PRESETS,
    SLICED_DIRECTIONS,
    HodgeConfig,
    _integrated_l2_and_exact,
    _quality,
    _sample,
    _Setting,
    _setting,
    data_law,
    gaussian_law,
    random_model,
)
from ._studies import (
    _bounds_study,
    _bounds_summary,
    _correlation_study,
    _correlations,
    _impossibility_study,
    _model_record,
    _rowwise_spearman,
    spearman_bootstrap,
)
from ._verdicts import FLAT_FRACTION, RHO_MARGIN, _claims

__all__ = ["FLAT_FRACTION", "PRESETS", "RHO_MARGIN", "SLICED_DIRECTIONS", "HodgeConfig", "data_law", "gaussian_law",
           "random_model", "run", "spearman_bootstrap"]


@register("hodge", "score errors: L2 vs gradient part (Helmholtz-Hodge), impossibility, KL bounds",
          HodgeConfig, PRESETS, part="hodge", headline=True,
          claim="A diffusion sampler only sees the gradient part of its score error: a solenoidal error "
                "(I + cA) grad log p_t leaves the marginals unchanged however large the L2 error. Sample quality "
                "therefore correlates with the gradient part, estimated from samples and the model score (Stein "
                "form), not with the L2 error; the marginal KL bound is tighter than Girsanov's.")
def run(config: HodgeConfig, out_dir: Path, progress: bool = True) -> ExperimentOutput:
    """The three studies (module docstring), their summary, claims and figures."""
    cfg = config
    st = _setting(cfg, progress)
    rows: list[dict] = []
    # floor of the quality metrics: exact score
    exact_q = unit("exact-score-quality", partial(st.sample_quality, H.PerturbedScore(st.p), cfg.steps, cfg.seed + 7))
    cdf = _correlation_study(st, rows)
    summary: dict = {"quality_floor_exact_score": exact_q, "estimator_basis": cfg.estimator_basis}
    _correlations(cdf, summary, rows)
    A = H.antisymmetric(2)
    idf = _impossibility_study(st, A, rows)
    bdf = _bounds_study(st, A, rows)
    _bounds_summary(bdf, summary)
    claims = _claims(cfg, cdf, idf, bdf, summary, exact_q)
    figs = _figures(cfg, cdf, idf, bdf, summary, exact_q, Path(out_dir))
    table = pd.DataFrame(rows)
    table["seed"] = cfg.seed
    return ExperimentOutput(table=table, figures=figs, summary=summary, claims=claims)
