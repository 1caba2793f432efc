"""Quick presets of the DAE experiments D1-D5 run, save their results and report numbers
that agree with the theory where the theory is exact or asymptotically exact."""
from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

importlib.import_module("modelcollapse.experiments.dae")
from modelcollapse.experiments._registry import REGISTRY  # noqa: E402


def _run(name, tmp_path, **over):
    exp = REGISTRY[name]
    res = exp.run(exp.make_config("quick", over), tmp_path / name, progress=False)
    assert (tmp_path / name / f"{name}.parquet").exists()
    assert all(p.exists() for p in res.figures)
    return res


def _claims(res):
    return {c.name: c for c in res.claims}


def test_d1_training(tmp_path):
    """b against the finite-d ODE (kills: the O(1/d) terms of db dropped, or the closed form's K
    changed) and M against the ODE (d = 400, 2 replicas).

    With 2 replicas the claim's Student-t interval (1 degree of freedom, t = 12.7) is about 6 |b1 - b2|
    wide each side, against a tolerance of 5 std: it lands inside (verdict "holds") only about a third
    of the time, so the test asks for the mean deviation within the tolerance and no "fails" (seeds
    0-7 at the ziggurat's normals: 2 hold, 6 underpowered, none fails, |mean| <= 1.6e-3 against
    5.6e-3)."""
    res = _run("dae-training", tmp_path)
    c = _claims(res)
    skip = c["d1.skip_ode"]
    assert skip.verdict in ("holds", "underpowered"), skip
    assert abs(skip.estimate) < 0.5 * skip.tolerance, skip
    assert res.summary["max_abs_dev_M_mean"] < 0.4   # d = 400, 2 replicas


def test_d2_generation(tmp_path):
    """Pure theory (ODEs with the weight decay 1.5 of Cui et al. Fig. 2 + Cor. 2.3) against the
    d-dimensional samples in the paper's Hellinger convention (2H^2, 1-D on span(mu)).
    Measured (quick, d = 300): 2H^2(sim, theory) 0.001-0.007, two-sample noise 0.0005-0.0034,
    2H^2(sim, target) 1.2 -> 0.33. Kills (checked): the weight decay dropped from the ODE call
    (2H^2(sim, theory) 0.14-0.24)."""
    res = _run("dae-generation", tmp_path)
    t = res.table
    h_st = t[t.metric == "2H2(sim,theory)"].value.to_numpy()
    noise = t[t.metric == "2H2(theory,theory')"].value.to_numpy()
    assert np.all(h_st < 3 * noise + 0.01), (h_st, noise)
    h_sim = [row["2H2(sim,target)"] for row in res.summary["hellinger_by_tau"]]
    assert h_sim[-1] < 0.5 * h_sim[0]               # the generated law approaches the target
    assert _claims(res)["d2.hellinger_to_target_decreases"].verdict == "holds"


def test_d3_digits_mode_collapse(tmp_path):
    res = _run("dae-digits", tmp_path)
    # the summary table: one row per (variant, quantity) at the last tau
    s = {(r["variant"].split("=")[0], r["quantity"]): r for r in res.summary["by_variant"]}
    trained = s["trained b", "generated / target total variance"]
    assert trained["simulation"] < 0.3     # variance loss
    assert s["fixed b", "generated / target total variance"]["simulation"] > 3 * trained["simulation"]  # the remedy
    assert s["trained b", "skip connection b"]["simulation"] < 0.1
    # each row: the mean over the seeds of the table's values, the ODE's likewise
    last = res.table[(res.table.tau == res.summary["last_tau"]) & (res.table.variant == "trained b")]
    assert trained["simulation"] == pytest.approx(last[last.metric == "total_variance_ratio"].value.mean(), rel=1e-12)
    assert trained["ODE"] == pytest.approx(last[last.metric == "total_variance_ratio_ode"].value.mean(), rel=1e-12)
    assert trained["ci_low"] < trained["simulation"] < trained["ci_high"]
    # spectral-closure ODE (spikes + quantile bins of the digits spectrum, weight decay 0.784) from
    # the same initial weights: b, tr Q and the generated total variance follow the simulation
    # (quick: measured within 1-3%; without the weight decay in the simulation tr Q is off by 70%)
    c = _claims(res)
    for name in ("d3.ode_total_variance_ratio_trained_b", "d3.ode_trQ_trained_b", "d3.ode_b_trained_b",
                 "d3.ode_total_variance_ratio_fixed_b", "d3.ode_trQ_fixed_b"):
        assert c[name].verdict != "fails", c[name]
        assert abs(c[name].estimate) < 0.05, c[name]


@pytest.mark.slow
def test_d4_generations(tmp_path):
    """D4 at d = 784 with the paper's hyperparameters (Fig. 4: tau = 2.8, weight decay 0.784), 2
    seeds, 2 generations, theory of generation 2 from the ODEs on generation 1's law (docs/dae.md,
    "D4"). At the paper's lr = 0.2 H(sim, theory) depends on the draw (the SGD noise of the
    overlaps, O(lr / d), moves the narrow generated modes; another generator gave 0.19-0.23), so
    the agreement is checked where the ODEs are the limit: generation 2 retrained at lr / 8 from
    the same w0 and previous model. Measured (quick, seeds 5 and 1005): tr Q ODE / sim - 1 =
    -0.007 ... 0.002 (tolerance 0.05, ~ the O(1/sqrt d) = 0.036 fluctuation of the overlaps),
    H(sim, theory) - H(theory, theory') = -0.003 ... 0.014, mean 0.005 (tolerance on the mean of
    the 4 seed x variant values 0.03, about 3 standard errors from the per-value spread of the
    KDE noise at 600 samples, ~0.02).
    Kills (checked, see docs/dae.md, "Tests"): dae.d4_ode_weight_decay (weight decay doubled in the
    experiment's ODE call), dae.weight_decay_G, dae.generation_map_bulk (the previous law's off-W
    variance v dropped from the generation map), dae.generation_map_weights (nu's atom masses
    ignored); from earlier checks, the weight decay dropped from the preset (total variance grows)."""
    res = _run("dae-generations", tmp_path)
    t = res.table

    def per_seed(variant, g, metric):
        sub = t[(t.variant == variant) & (t.generation == g) & (t.metric == metric)]
        return sub.sort_values("seed").value.to_numpy()

    tv1, tv2 = per_seed("trained b", 1, "total_variance_ratio"), per_seed("trained b", 2, "total_variance_ratio")
    assert np.all(tv2 < 0.9 * tv1), (tv1, tv2)      # collapse compounds (Cui et al., Fig. 4)
    assert np.all(tv1 < 0.5)
    dh = []
    for variant in t.variant.unique():
        rel = per_seed(variant, 2, "trQ_theory_small_lr") / per_seed(variant, 2, "trQ_small_lr") - 1
        assert np.all(np.abs(rel) < 0.05), (variant, rel)
        dh += list(per_seed(variant, 2, "H(sim,theory)_small_lr") - per_seed(variant, 2, "H(theory,theory')_small_lr"))
    assert len(dh) == 4 and np.mean(dh) < 0.03, dh
    for suffix in ("", "_small_lr"):
        b, bt = per_seed("trained b", 2, "b" + suffix), per_seed("trained b", 2, "b_theory" + suffix)
        assert np.all(np.abs(bt / b - 1) < 0.1), (suffix, b, bt)
    # the generations run through the retraining loop: an interrupted run (last round of one
    # variant lost) resumes from its checkpoints and gives the same simulation results (the
    # theory, not part of the loop's configuration, is skipped in the rerun to save time)
    ck = tmp_path / "dae-generations" / "checkpoints" / "fixed_b" / "seed_0"
    (ck / "round_0001.json").unlink()
    again = _run("dae-generations", tmp_path, theory=False)
    sim = ["total_variance_ratio", "var_pc1_ratio", "b", "trQ", "H(sim,target)", "H(sim,sim')"]
    pick = lambda tab: tab[tab.metric.isin(sim)].reset_index(drop=True).drop(columns="theory")  # noqa: E731
    pd.testing.assert_frame_equal(pick(res.table), pick(again.table))


def test_d5_scale(tmp_path):
    res = _run("dae-scale", tmp_path)
    assert res.summary["fluctuation_slope"] < -0.2   # ~ -1/2


def test_d5_scale_one_thread_times_once(tmp_path):
    # threads=1: the one-thread and the cfg.threads timings are the same run; one row per d,
    # not two rows whose summary columns collide
    res = _run("dae-scale", tmp_path, threads=1)
    tp = res.table[(res.table.part == "throughput") & (res.table.metric == "steps_per_s")]
    assert tp.groupby("d").size().eq(1).all()
    assert all(set(row) == {"d", "steps/s, threads=1"} for row in res.summary["throughput"])


def test_d4_gap_claim_pairs_lr_and_small_lr_per_seed():
    """d4.gap_shrinks_at_small_lr_*: per seed, (H - noise) at lr minus (H - noise) at lr / 16,
    paired by seed (docs/dae.md, "D4"). A synthetic table whose seeds differ in size (so an
    unpaired or re-sorted difference changes the mean) and whose noise differs between lr and
    lr / 16 (so dropping the noise terms changes it). Kills (checked): dae.d4_gap_claim_sign
    (the difference taken the other way round: estimate -0.097 instead of 0.097) and, by hand,
    the noise terms dropped (h - hs: 0.089)."""
    from types import SimpleNamespace

    from modelcollapse.experiments.dae._generations import _generations_claims

    rng = np.random.default_rng(0)
    rows = []
    seeds = [0, 1000, 2000, 3000, 4000]
    h = {2: [0.25, 0.10, 0.15, 0.05, 0.12], 3: [0.08, 0.20, 0.06, 0.11, 0.09]}
    hs = {2: [0.05, 0.04, 0.06, 0.03, 0.045], 3: [0.04, 0.05, 0.035, 0.04, 0.05]}
    for g in (1, 2, 3):
        for i, s in enumerate(seeds):
            vals = {"total_variance_ratio": 0.3 / g, "H(sim,theory)": 0.05 if g == 1 else h[g][i],
                    "H(theory,theory')": 0.03 + 0.001 * i, "H(sim,sim')": 0.1,
                    "trQ": 2.0, "trQ_theory": 2.0 + 0.01 * rng.standard_normal()}
            if g >= 2:
                vals.update({"H(sim,theory)_small_lr": hs[g][i], "H(theory,theory')_small_lr": 0.04,
                             "trQ_small_lr": 2.0, "trQ_theory_small_lr": 2.0})
            rows += [dict(variant="trained b", seed=s, generation=g, metric=k, value=v,
                          theory="ODE" if g > 1 else "measured", d=784) for k, v in vals.items()]
    table = pd.DataFrame(rows).sample(frac=1.0, random_state=1)         # row order must not matter
    cfg = SimpleNamespace(generations=3, n_eval=2000, nu_method="mixture", nu_atoms=8, lr=0.2,
                          small_lr_factor=16, small_lr_replicas=3, stable_threshold=0.1)
    c = {x.name: x for x in _generations_claims(table, cfg)}
    assert "d4.gap_shrinks_at_small_lr_trained_b_gen1" not in c
    for g in (2, 3):
        want = np.array(h[g]) - (0.03 + 0.001 * np.arange(5)) - (np.array(hs[g]) - 0.04)
        got = c[f"d4.gap_shrinks_at_small_lr_trained_b_gen{g}"]
        assert got.estimate == pytest.approx(want.mean(), abs=1e-12), (g, got)
        assert got.n == 5 and got.comparison == ">=" and got.tolerance == 0.0
    assert c["d4.gap_shrinks_at_small_lr_trained_b_gen2"].verdict == "holds"


def test_d4_small_lr_replicas_validated(tmp_path):
    with pytest.raises(ValueError, match="small_lr_replicas"):
        _run("dae-generations", tmp_path, small_lr_replicas=0)
