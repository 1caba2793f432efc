"""The console script end to end, in a subprocess, as a user runs it."""
import json
import subprocess
import sys

import pandas as pd


def run_cli(*args, check=True):
    return subprocess.run([sys.executable, "-m", "modelcollapse", *args], capture_output=True, text=True,
                          check=check, timeout=300)


def test_info_reports_backend_and_threads():
    out = run_cli("info").stdout
    assert "modelcollapse" in out and "cpp" in out and "threads" in out


def test_list_shows_demo():
    assert "demo" in run_cli("list").stdout


def test_run_demo_quick_writes_table_figure_and_sidecar(tmp_path):
    run_cli("run", "demo", "--preset", "quick", "--set", "real_fraction=0.5", "--out", str(tmp_path))
    table = pd.read_parquet(tmp_path / "demo.parquet")
    assert set(table.columns) >= {"seed", "round", "metric", "source", "value"}
    meta = json.loads((tmp_path / "demo.json").read_text())
    assert meta["config"]["real_fraction"] == 0.5 and meta["versions"]["modelcollapse"]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    # simulation tracks the exact law of every round (covariance trace within 10%)
    tc = table[table.metric == "trace_cov"].pivot(index="round", columns="source", values="value")
    assert ((tc.simulation - tc.exact).abs() / tc.exact < 0.1).all()


def test_bad_override_is_rejected_with_valid_keys(tmp_path):
    res = run_cli("run", "demo", "--preset", "quick", "--set", "nonsense=1", "--out", str(tmp_path), check=False)
    assert res.returncode == 2
    assert "unknown key 'nonsense'" in res.stderr and "real_fraction" in res.stderr
    res = run_cli("run", "demo", "--preset", "quick", "--set", "rounds=abc", "--out", str(tmp_path), check=False)
    assert res.returncode == 2 and "rounds must be int" in res.stderr
