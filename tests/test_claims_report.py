"""Claims as a reader sees them (docs/claims.md): rounding to the interval, the saved claims
read back (infinite bounds included), the report's verdicts, counts and links, and the demo's
own claims turning against a broken sampler."""
import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest

from modelcollapse.experiments import _claims
from modelcollapse.experiments._claims import (
    Claim,
    claim,
    claim_from_interval,
    format_claim,
    format_estimate,
    format_number,
    format_target,
    load_claims,
)
from modelcollapse.experiments._registry import Experiment, ExperimentOutput
from modelcollapse.experiments.report import build_report, format_value, summary_rows


def _c(est, lo, hi, verdict="holds", **kw):
    base = dict(name="t.x", statement="s", estimate=est, ci_low=lo, ci_high=hi, comparison="~", target=0.0,
                tolerance=0.1, verdict=verdict, n=5)
    return Claim(**{**base, **kw})


@pytest.mark.parametrize("est,lo,hi,expected", [
    (0.0291234, 0.0123, 0.0456, ("0.029", "[0.012, 0.046]")),        # width 0.033: 2 significant digits
    (1.23456, 1.2, 1.27, ("1.235", "[1.200, 1.270]")),                # width 0.07 -> 3 decimals
    (1234.5678, 1000.0, 1500.0, ("1230", "[1000, 1500]")),            # width 500 -> tens
    (2.5e-9, 2.4e-9, 2.6e-9, ("2.50e-09", "[2.40e-09, 2.60e-09]")),  # tiny width -> scientific
    (0.5, -math.inf, math.inf, ("0.5", "[-inf, inf]")),               # one seed: no interval
])
def test_estimate_is_rounded_to_what_the_interval_supports(est, lo, hi, expected):
    assert format_estimate(_c(est, lo, hi)) == expected


def test_format_number_edge_cases_and_target_spelling():
    assert format_number(float("nan"), 3) == "nan" and format_number(0.0, 9) == "0"
    assert format_number(-0.0001, 3) == "0.000" and format_number(-0.0006, 3) == "-0.001"
    assert format_number(3.3e7, -5) == "3.30e+07" and format_number(123456.0, -3) == "123000"
    assert format_target(_c(0, 0, 1, comparison="~", target=1.0, tolerance=0.05)) == "~ 1 +- 0.05"
    assert format_target(_c(0, 0, 1, comparison="<=", target=0.25, tolerance=0.0)) == "<= 0.25"
    assert format_target(_c(0, 0, 1, comparison=">=", target=0.0, tolerance=0.1), pm="±") == ">= 0 - 0.1"
    line = format_claim(_c(0.3, 0.2, 0.4, verdict="fails", name="a.b", statement="it is small"))
    assert line.startswith("[fails] a.b: it is small: 0.30 [0.20, 0.40] ~ 0 +- 0.1 (n=5,")


def test_summary_values_are_rounded_and_flattened():
    rows = dict(summary_rows({"rate": {"theory": 1 / 3, "measured": 0.32433679018950445}, "k": 3,
                              "ok": True, "xs": list(np.arange(20) / 7.0), "inf": math.inf}))
    assert rows == {"rate.theory": "0.3333", "rate.measured": "0.3243", "k": "3", "ok": "True",
                    "xs": "[0, 0.1429, 0.2857, 0.4286, 0.5714, 0.7143, 0.8571, 1, ... (20 values)]", "inf": "inf"}
    assert format_value(np.float64(2.0) / 3) == "0.6667"


@dataclasses.dataclass
class _Cfg:
    fail: bool = True


def _fake_run(cfg: _Cfg, out, progress):
    rng = np.random.default_rng(0)
    good = 1.0 + 0.01 * rng.standard_normal(6)
    claims = [claim("fake.holds", "the mean is 1 within 0.05", good, "~", 1.0, 0.05, detail="tol from SE"),
              claim("fake.fails", "the mean is at most 0.5", good, "<=", 0.5),
              claim("fake.one_seed", "a single seed cannot decide", [0.1], "<=", 1.0),
              claim_from_interval("fake.boot", "bootstrap interval >= 0", 0.3, 0.1, 0.5, ">=", 0.0, n=40)]
    if not cfg.fail:
        claims = claims[:1]
    table = pd.DataFrame({"seed": range(6), "value": good})
    return ExperimentOutput(table, [], {"nested": {"theory": 1 / 3, "measured": 0.32433679018950445}}, claims)


def _broken_run(cfg, out, progress):
    raise RuntimeError("deliberately broken")


def _fake(name="fake", run=_fake_run, part="foundation", headline=True, preset=None):
    presets = {p: dict(preset or {}) for p in ("quick", "default", "paper")}
    return Experiment(name, "a fake experiment", _Cfg, presets, run, part, headline, "Fake paragraph.")


def test_saved_claims_round_trip_parquet_and_sidecar_with_infinite_bounds(tmp_path):
    exp = _fake()
    result = exp.run(exp.make_config("quick"), tmp_path, progress=False)
    assert math.isinf(result.claims[2].ci_low) and result.claims[2].verdict == "underpowered"
    # the sidecar is strict JSON: the infinite bounds are strings there
    raw = json.loads((tmp_path / "fake.json").read_text())
    assert raw["claims"][2]["ci_low"] == "-inf" and raw["claims"][2]["ci_high"] == "inf"
    from_parquet = load_claims(tmp_path)
    assert list(from_parquet) == [tmp_path / "fake_claims.parquet"]
    assert [c.to_dict() for c in from_parquet[tmp_path / "fake_claims.parquet"]] == [c.to_dict() for c in result.claims]
    from_sidecar = load_claims(tmp_path / "fake.json")[tmp_path / "fake.json"]
    assert [c.to_dict() for c in from_sidecar] == [c.to_dict() for c in result.claims]
    # a folder whose Parquet twin is gone still yields the sidecar's claims; other JSON is skipped
    (tmp_path / "fake_claims.parquet").unlink()
    (tmp_path / "other.json").write_text("{not json")
    assert list(load_claims(tmp_path)) == [tmp_path / "fake.json"]
    with pytest.raises(ValueError, match="does not exist"):
        load_claims(tmp_path / "missing")
    with pytest.raises(ValueError, match="lacks"):
        _claims.claim_from_dict({"name": "x"})


def test_report_shows_failing_and_underpowered_claims_with_counts_and_links(tmp_path):
    plan = {"foundation": [_fake()], "dae": [_fake("broken", _broken_run, part="dae"),
                                             _fake("quiet", part="dae", headline=False, preset={"fail": False})]}
    res = build_report("quick", tmp_path, experiments=plan)
    assert res["counts"] == {"holds": 3, "fails": 1, "underpowered": 1, "experiments failed": 1,
                             "experiments without claims": 0}
    md = (tmp_path / "report.md").read_text()
    # counts row of the summary table, then the non-holding claims, fails first, with links
    assert "| 3 | 1 | 1 | 1 | 0 |" in md
    fails_at = md.index("* **fails**: [`fake.fails`](#claim-fake.fails)")
    under_at = md.index("* **underpowered**: [`fake.one_seed`](#claim-fake.one_seed)")
    assert fails_at < under_at
    assert "* **experiment failed**: [`broken`](#exp-broken)" in md and "deliberately broken" in md
    assert '<a id="claim-fake.fails"></a>**FAILS** | `fake.fails`: the mean is at most 0.5' in md
    assert "| [-inf, inf] | <= 1 |" in md                       # the one-seed claim's interval
    assert "| nested.measured | 0.3243 |" in md                 # summary rounded and flattened
    assert "0.32433679" not in md
    assert "tol from SE" in md                                  # the tolerance's derivation is shown
    # the second dae experiment (not headline) is written in its own folder
    assert (tmp_path / "dae" / "quiet" / "quiet_claims.parquet").exists()
    html = (tmp_path / "report.html").read_text()
    assert "<tr id='claim-fake.fails' class='fails'><td><span class='verdict fails' style='color:#cf222e'>fails" in html
    assert "<tr id='claim-fake.holds' class='holds'><td><span class='verdict holds' style='color:#1a7f37'>" in html
    assert "href='#claim-fake.one_seed'" in html
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["meta"]["counts"]["fails"] == 1
    assert [c["verdict"] for c in data["sections"][0]["claims"]] == ["holds", "fails", "underpowered", "holds"]


def test_report_flags_an_experiment_without_claims(tmp_path):
    def no_claims(cfg, out, progress):
        return ExperimentOutput(pd.DataFrame({"a": [1]}), [], {"x": 1.0})

    res = build_report("quick", tmp_path, experiments={"hodge": [_fake("bare", no_claims, part="hodge")]})
    assert res["counts"]["experiments without claims"] == 1
    md = (tmp_path / "report.md").read_text()
    assert "* no claims: [`bare`](#exp-bare)" in md and "*This experiment declares no claims.*" in md


def test_report_plan_puts_headline_first_and_opted_in_experiments_after():
    from modelcollapse.experiments import REGISTRY, register
    from modelcollapse.experiments.report import report_experiments

    register("zz-extra", "opted into the report", _Cfg, {p: {} for p in ("quick", "default", "paper")},
             part="foundation", report=True)(_fake_run)
    register("zz-left-out", "not in the report", _Cfg, {p: {} for p in ("quick", "default", "paper")},
             part="foundation")(_fake_run)
    try:
        names = [e.name for e in report_experiments()["foundation"]]
        assert names == ["demo", "zz-extra"]
    finally:
        del REGISTRY["zz-extra"], REGISTRY["zz-left-out"]


def test_report_of_a_preset_runs_its_experiments_and_names_those_left_out(tmp_path, monkeypatch):
    """``report=("default", "paper")``: in the default report, not in the quick one, whose
    header names it with the commands that run it (kills: the preset ignored by the plan, the
    header line dropped); D4 is registered so (docs/claims.md, "Reading the report")."""
    from modelcollapse.experiments import REGISTRY, get, register, report
    from modelcollapse.experiments.report import report_experiments, report_left_out

    presets = {p: {} for p in ("quick", "default", "paper")}
    register("zz-extra", "in every report", _Cfg, presets, part="foundation", report=True)(_fake_run)
    register("zz-slow", "in the default report", _Cfg, presets, part="foundation",
             report=("paper", "default"))(_fake_run)
    with pytest.raises(ValueError, match="tuple of presets"):
        register("zz-bad", "x", _Cfg, presets, report=("fast",))(_fake_run)
    try:
        assert REGISTRY["zz-slow"].report_presets == ("default", "paper")
        assert [e.name for e in report_experiments("quick")["foundation"]] == ["demo", "zz-extra"]
        assert [e.name for e in report_experiments("default")["foundation"]] == ["demo", "zz-extra", "zz-slow"]
        assert [e.name for e in report_experiments("default")["dae"]] == ["dae-training", "dae-generations"]
        assert "dae-generations" not in [e.name for e in report_experiments("quick")["dae"]]
        assert get("dae-generations").report_presets == ("default", "paper")
        assert [x["experiment"] for x in report_left_out("quick")] == ["dae-generations", "zz-slow"]
        assert report_left_out("default") == []
        # the quick report (its plan cut down to one fake experiment) says what it leaves out
        monkeypatch.setattr(report, "report_experiments", lambda preset: {"foundation": [_fake()]})
        res = build_report("quick", tmp_path)
        md = (tmp_path / "report.md").read_text()
        assert ("Not in this report: `dae-generations` (dae) is in the report at `default`, `paper` only, not at "
                "`quick`: `modelcollapse report --preset default` includes it; `modelcollapse run dae-generations "
                "--preset quick` runs it alone.") in md
        assert md.index("Not in this report") < md.index("## Claims at a glance")
        assert "Not in this report: <code>zz-slow</code> (foundation)" in (tmp_path / "report.html").read_text()
        assert [x["experiment"] for x in json.loads(res["json"].read_text())["meta"]["left_out"]] == \
            ["dae-generations", "zz-slow"]
    finally:
        del REGISTRY["zz-extra"], REGISTRY["zz-slow"]


def test_demo_claims_hold_at_quick_and_turn_against_a_broken_sampler(tmp_path):
    from modelcollapse.experiments import get

    exp = get("demo")
    good = {c.name: c for c in exp.run(exp.make_config("quick"), tmp_path / "good", progress=False).claims}
    assert set(good) == {"demo.sampler_tracks_exact_laws", "demo.trace_follows_moment_recursion", "demo.law_drifts"}
    assert all(c.n == 5 for c in good.values())
    # 5 seeds' Student-t interval decides this agreement claim most of the time, not always: seeds
    # 0-7 of the quick preset give 6 "holds" and 2 "underpowered" (Box-Muller normals: 7 and 1),
    # estimates 0.003-0.015 against a tolerance of 0.025; never "fails"
    tracks = good["demo.sampler_tracks_exact_laws"]
    assert tracks.verdict in ("holds", "underpowered") and abs(tracks.estimate) < 0.75 * tracks.tolerance, tracks
    assert good["demo.law_drifts"].verdict == "holds"
    # 5 sampler steps from T = 3: a large discretisation bias, which both agreement claims must catch
    coarse = {c.name: c for c in exp.run(exp.make_config("quick", {"steps": "5", "rounds": "2"}),
                                         tmp_path / "coarse", progress=False).claims}
    assert coarse["demo.sampler_tracks_exact_laws"].verdict == "fails"
    assert coarse["demo.trace_follows_moment_recursion"].verdict == "fails"
    # only real data (a = 1): no drift, so the drift claim cannot hold
    still = {c.name: c for c in exp.run(exp.make_config("quick", {"real_fraction": "1", "rounds": "2"}),
                                        tmp_path / "still", progress=False).claims}
    assert still["demo.law_drifts"].verdict != "holds"


@pytest.mark.parametrize("a", [0.0, 0.3, 1.0])
def test_demo_moment_recursion_agrees_with_the_mixture_recursion(a):
    from modelcollapse.experiments.demo import data_law, moment_recursion

    p, delta = data_law(), 0.1
    model, traces = p, []
    for _ in range(4):   # the exact laws p_hat_k through GaussianMixture.smooth and .mix
        exact = model.smooth(delta)
        traces.append(np.trace(exact.covariance()))
        model = p.mix(exact, a) if a > 0 else exact
    np.testing.assert_allclose(moment_recursion(p, a, delta, 4), traces, rtol=1e-12)


def test_claims_command_prints_saved_claims_and_strict_exit_code(tmp_path, capsys):
    from modelcollapse.cli import main
    from modelcollapse.experiments._claims import claims_frame

    bad = claim("x.too_big", "the mean is at most 0", [1.0, 1.1, 0.9, 1.05, 0.95], "<=", 0.0)
    claims_frame([bad]).to_parquet(tmp_path / "x_claims.parquet")
    assert main(["claims", str(tmp_path), "--strict"]) == 1
    out = capsys.readouterr().out
    # sd 0.079, t(0.975, 4) = 2.776: half width 0.098
    assert "  [fails] x.too_big: the mean is at most 0: 1.00 [0.90, 1.10] <= 0 (n=5, t over seeds)" in out
    assert "claims (0 holds, 1 fails, 0 underpowered):" in out
    assert main(["claims", str(tmp_path)]) == 0
    assert main(["claims", str(tmp_path / "nowhere")]) == 2
    assert "does not exist" in capsys.readouterr().err
    good = claim("x.small", "the mean is at most 2", [1.0, 1.1, 0.9, 1.05, 0.95], "<=", 2.0)
    under = claim("x.one", "one seed", [1.0], "<=", 2.0)
    claims_frame([good, under]).to_parquet(tmp_path / "x_claims.parquet")
    assert main(["claims", str(tmp_path), "--strict"]) == 0     # underpowered does not fail --strict
    (tmp_path / "x_claims.parquet").unlink()
    assert main(["claims", str(tmp_path), "--strict"]) == 1 and main(["claims", str(tmp_path)]) == 0
