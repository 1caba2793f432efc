"""The DDPM's concentration claim presumes a theta_0 that separates the 8 modes
(docs/retraining.md, section "Neural models"); no torch needed."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from modelcollapse.experiments import retraining_neural as rn
from modelcollapse.retraining.datasets import eight_gaussians, eight_gaussians_centres


def _table(m0: float, change: np.ndarray, T: int = 4) -> pd.DataFrame:
    rows = []
    for s, c in enumerate(change):
        rows += [dict(synthetic_ratio=math.inf, seed=s, round=0, metric="mode_fraction", value=m0),
                 dict(synthetic_ratio=math.inf, seed=s, round=T, metric="mode_fraction", value=m0 + c)]
    return pd.DataFrame(rows)


def test_concentration_claim_is_not_tested_with_a_ring_theta0():
    """The same clearly negative change (-0.12 +- 0.01 over 5 seeds) fails with a theta_0 that
    separates the modes (0.85) and is not tested (underpowered, measured change in the detail)
    with a ring (0.45). Kills: the premise check dropped (the ring case fails) or reversed
    (the separated case is not tested)."""
    change = -0.12 + 0.01 * np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    seeds = list(range(5))
    ring = rn._concentration_claim("rd", "DDPM", "5 seeds", _table(0.45, change), seeds, 4)
    assert ring.verdict == "underpowered" and "NOT TESTED" in ring.statement
    assert "-0.120" in ring.detail and "0.450" in ring.detail
    sep = rn._concentration_claim("rd", "DDPM", "5 seeds", _table(0.85, change), seeds, 4)
    assert sep.verdict == "fails" and "NOT TESTED" not in sep.statement
    assert rn._concentration_claim("rd", "DDPM", "5 seeds", _table(0.85, -change), seeds, 4).verdict == "holds"


def test_mode_fraction_reference_values():
    """The threshold's two ends: the data's 1 - e^-2 and a ring through the centres with the
    modes' radial sd (0.541), each within 0.01 (> 9 SE of 2e5 points).
    Kills: a wrong ring constant (0.5, as the old docstring said)."""
    rng = np.random.default_rng(0)
    n, sd = 200_000, 0.5 / math.sqrt(2)
    radius = float(np.linalg.norm(eight_gaussians_centres(), axis=1).mean())
    angle, r = rng.uniform(0, 2 * np.pi, n), radius + sd * rng.standard_normal(n)
    ring = np.c_[r * np.cos(angle), r * np.sin(angle)]
    assert abs(rn.mode_fraction(ring) - rn.RING_MODE_FRACTION) < 0.01
    assert abs(rn.mode_fraction(eight_gaussians(n, seed=1)) - rn.DATA_MODE_FRACTION) < 0.01
