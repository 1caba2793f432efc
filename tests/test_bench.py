"""The bench's bookkeeping (bench/run.py, bench/summarize.py, bench/peers.py), cheaply: a
peer that is missing or wrong is skipped with the reason, the summary's ratios and % of the
limit are computed the right way round, and a peer computes what the project computes."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

import peers  # noqa: E402
import summarize  # noqa: E402
from run import Case, run_case  # noqa: E402


def _missing(_):
    raise ImportError("No module named 'nopkg'", name="nopkg")


def _same(outs):
    for k, v in outs.items():
        assert v == outs["cpp"], k


def test_run_case_skips_missing_and_disagreeing_peers_with_the_reason():
    case = Case("toy", lambda: None, {"cpp": lambda s: 1.0, "numpy": lambda s: 1.0, "jax f64": _missing,
                                      "torch f32": lambda s: 2.0, "jax f32": lambda s: 1.0},
                work=10.0, unit="items", check=_same, limit=100.0, refs=("numpy",))
    recs = {r["impl"]: r for r in run_case(case, repeat=1, min_time=0.0)}
    assert recs["jax f64"]["skipped"] == "nopkg is not installed"
    assert recs["torch f32"]["skipped"].startswith("disagrees with the project")
    assert "skipped" not in recs["jax f32"] and recs["jax f32"]["kind"] == "f32"
    assert [recs[k]["kind"] for k in ("cpp", "numpy")] == ["project", "ref"]
    assert recs["cpp"]["limit"] == 100.0


def test_run_case_stops_when_the_project_fails_or_disagrees():
    with pytest.raises(ImportError):
        run_case(Case("toy", lambda: None, {"cpp": _missing}), repeat=1, min_time=0.0)
    wrong = Case("toy", lambda: None, {"cpp": lambda s: 3.0, "numpy": lambda s: 1.0},
                 check=_same, refs=("numpy",))
    with pytest.raises(AssertionError):
        run_case(wrong, repeat=1, min_time=0.0)


def test_summary_rates_the_project_against_the_best_peer_of_each_dtype():
    def rec(impl, kind, t):
        return {"case": "c", "impl": impl, "kind": kind, "median_s": t, "throughput": 50.0 / t, "unit": "items",
                "limit": 100.0}

    recs = [rec("cpp", "project", 1.0), rec("cpp_1thread", "project", 0.5), rec("numpy", "ref", 0.1),
            rec("jax f64", "f64", 4.0), rec("torch f64", "f64", 3.0), rec("jax f32", "f32", 0.8),
            {"case": "c", "impl": "torch f32", "kind": "f32", "skipped": "torch is not installed"}]
    s = summarize.case_summary(recs)
    assert s["project"]["impl"] == "cpp"  # the rated implementation, not the fastest variant
    assert s["best_f64"]["impl"] == "torch f64" and s["ratio_f64"] == pytest.approx(3.0)
    assert s["best_f32"]["impl"] == "jax f32" and s["ratio_f32"] == pytest.approx(0.8)
    assert s["pct_limit"] == pytest.approx(50.0)  # 50 items/s of a 100 items/s limit


def test_hermite_rolling_peer_computes_the_package_moments():
    hm = pytest.importorskip("modelcollapse.hermite")
    x = np.random.default_rng(0).normal(size=(5000, 1)) * 1.2 + 0.3
    np.testing.assert_allclose(peers.hermite_rolling_numpy(x, 12), hm.hermite_moments(x, 12, threads=1).values,
                               rtol=1e-10, atol=1e-12)
