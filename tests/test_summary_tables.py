"""Summary tables of the experiments (issue 15, item 5): named columns, the mean over seeds or
replicates with its Student-t 95% CI (which sets the rounding when printed), plain names."""
from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from modelcollapse._checkpoint import dumps_strict
from modelcollapse.experiments import get
from modelcollapse.experiments._claims import mean_ci
from modelcollapse.experiments.hodge._studies import _correlations, spearman_mean
from modelcollapse.experiments.report import summary_text


def _cdf(signs: dict[str, list[int]]) -> pd.DataFrame:
    """Correlation-study frame: per family and replicate 5 models whose qualities follow every
    measure with Spearman rho = sign (+1 or -1)."""
    rows = []
    for fam, per_rep in signs.items():
        for rep, sign in enumerate(per_rep):
            for i in range(5):
                rows.append(dict(family=fam, replicate=rep, l2_error=float(i), gradient_estimate=float(i),
                                 gradient_exact=float(i), hellinger=float(sign * i), sliced_w2=float(sign * i)))
    return pd.DataFrame(rows)


def test_hodge_spearman_table_per_replicate_with_ci():
    """One row per (family, measure, quality): each replicate's rho in its own column and the mean
    with its t interval, the families kept apart (kills: the replicates pooled, a family's rows
    taken from the other family, the mean replaced by one replicate)."""
    summary, rows = {}, []
    _correlations(_cdf({"mixed": [1, -1, 1], "control": [-1, -1]}), summary, rows)
    recs = summary["spearman_per_replicate"]
    assert len(recs) == 12 and len(rows) == 12
    mixed = [r for r in recs if r["family"] == "mixed"]
    control = [r for r in recs if r["family"] == "control"]
    for r in mixed:
        assert [r[f"replicate {k}"] for k in range(3)] == pytest.approx([1.0, -1.0, 1.0])
        m, lo, hi = mean_ci([1.0, -1.0, 1.0])
        assert (r["mean rho"], r["ci_low"], r["ci_high"]) == pytest.approx((m, lo, hi))
        assert m == pytest.approx(1 / 3)
    for r in control:   # two replicates of rho = -1: no spread, a zero-width interval
        assert r["mean rho"] == pytest.approx(-1.0) and "replicate 2" not in r
    assert spearman_mean(summary, "control", "l2_error", "hellinger") == pytest.approx(-1.0)
    text = "\n".join(summary_text(summary))
    assert "spearman_per_replicate:" in text and "replicate 2" in text and "95% CI" in text
    json.loads(dumps_strict(summary))          # the sidecar keeps it


def test_one_replicate_has_no_interval():
    summary: dict = {}
    _correlations(_cdf({"mixed": [1], "control": [1]}), summary, [])
    r = summary["spearman_per_replicate"][0]
    assert r["ci_low"] is None and r["ci_high"] is None and r["mean rho"] == pytest.approx(1.0)
    json.loads(dumps_strict(summary))          # no infinities in the sidecar
    line = next(x for x in summary_text(summary) if x.strip().startswith("mixed"))
    assert "inf" not in line


def test_neural_retraining_summary_tables():
    """retraining-ddpm/flow: one row per (metric, lambda) after the last round and the reference
    rows (noise floor; theta_0 at round 0, shared by every lambda so counted once per seed).
    Kills: round 0 in place of the last, lambdas mixed, theta_0's seeds counted once per lambda."""
    from modelcollapse.experiments.retraining_neural import _summary

    cfg = get("retraining-ddpm").make_config("quick", {"rounds": "2", "seeds": "0,1,2"})
    lams = cfg.synthetic_ratios
    rows = []
    for s, noise in zip(range(3), (0.0, 0.1, -0.05)):
        for j, lam in enumerate(lams):
            for rnd in range(3):
                # round 0 (theta_0) is the same for every lambda; later rounds depend on lambda
                w2 = 1.0 + noise if rnd == 0 else 1.0 + 0.5 * rnd * (j + 1) + noise
                rows += [dict(synthetic_ratio=lam, seed=s, round=rnd, metric="w2", value=w2),
                         dict(synthetic_ratio=lam, seed=s, round=rnd, metric="mode_fraction", value=0.4 + noise)]
    summary = _summary(pd.DataFrame(rows), cfg, [0.5, 0.6, 0.7])
    final = {(r["metric"], r["lambda"]): r for r in summary["final_round"]}
    assert set(final) == {("W2 to held-out data", "lambda=0.5"), ("W2 to held-out data", "fully synthetic"),
                          ("fraction within 2 sd of a mode centre", "lambda=0.5"),
                          ("fraction within 2 sd of a mode centre", "fully synthetic")}
    for j, label in enumerate(("lambda=0.5", "fully synthetic")):
        m, lo, hi = mean_ci([2.0 + j + x for x in (0.0, 0.1, -0.05)])
        r = final["W2 to held-out data", label]
        assert (r["mean over seeds"], r["ci_low"], r["ci_high"]) == pytest.approx((m, lo, hi))
    ref = {r["quantity"]: r for r in summary["reference"]}
    theta0 = ref["theta_0: W2 to held-out data"]
    assert (theta0["mean over seeds"], theta0["ci_low"], theta0["ci_high"]) == pytest.approx(mean_ci([1.0, 1.1, 0.95]))
    floor = ref["W2 between two real sets (noise floor)"]
    assert (floor["mean over seeds"], floor["ci_low"]) == pytest.approx(mean_ci([0.5, 0.6, 0.7])[:2])
    assert not any("." in k or "(" in k for k in summary)      # plain names, no dotted or bracketed keys
    assert all(math.isfinite(v) for r in summary["final_round"] for v in (r["ci_low"], r["ci_high"]))
    assert np.isclose(summary["rounds"], 2) and summary["seeds"] == 3
