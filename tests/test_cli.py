"""The console script end to end, in a subprocess, as a user runs it."""
import json
import subprocess
import sys

import pandas as pd
import pytest


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


@pytest.mark.slow
def test_report_contains_every_registered_part(tmp_path):
    from modelcollapse.experiments import load_all
    from modelcollapse.experiments.report import PART_TITLES

    res = run_cli("report", "--preset", "quick", "--out", str(tmp_path))
    md = (tmp_path / "report.md").read_text()
    html = (tmp_path / "report.html").read_text()
    parts = {exp.part for exp in load_all().values()}
    for part in parts:
        assert f"## {PART_TITLES.get(part, part)}" in md
        assert "failed" not in md.lower()
    assert html.count("data:image/png;base64,") >= len(parts)
    assert "modelcollapse run demo --preset quick" in md
    assert "ok" in res.stdout


@pytest.mark.slow
def test_sweep_local_merges_and_resumes(tmp_path):
    args = ["sweep", "demo", "--preset", "quick", "--grid", "real_fraction=0,0.5", "--grid", "rounds=2",
            "--seeds", "2", "--jobs", "2", "--out", str(tmp_path)]
    first = run_cli(*args).stdout
    assert "4 cells, 0 already finished, 4 to run" in first
    table = pd.read_parquet(tmp_path / "sweep.parquet")
    assert table["cell"].nunique() == 4
    # typed columns: the config's values, not the command-line strings
    assert set(table["sweep_real_fraction"]) == {0.0, 0.5} and set(table["sweep_seed"]) == {0, 1}
    assert table["sweep_real_fraction"].dtype == float and table["sweep_seed"].dtype.kind == "i"
    assert len(table[table.sweep_real_fraction == 0.5]) == len(table) // 2
    # a=0 collapses more than a=0.5: smaller covariance trace in the last round
    last = table[(table["round"] == 1) & (table.metric == "trace_cov") & (table.source == "exact")]
    by_a = last.groupby("sweep_real_fraction")["value"].mean()
    assert by_a[0.0] < by_a[0.5]
    # interrupt-and-restart: a cell without its DONE marker is run again, the others are skipped
    done = sorted((tmp_path / "cells").glob("*/DONE"))
    done[0].unlink()
    second = run_cli(*args).stdout
    assert "4 cells, 3 already finished, 1 to run" in second


def test_sweep_rejects_bad_grid(tmp_path):
    res = run_cli("sweep", "demo", "--grid", "bogus=1,2", "--out", str(tmp_path), check=False)
    assert res.returncode == 2 and "unknown key 'bogus'" in res.stderr


def test_sweep_on_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    # In-process workers, reachable by the CLI subprocess over loopback TCP.
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        out = run_cli("sweep", "demo", "--preset", "quick", "--grid", "real_fraction=0,1", "--out", str(tmp_path),
                      "--scheduler", cluster.scheduler_address).stdout
    assert "2 cells" in out
    table = pd.read_parquet(tmp_path / "sweep.parquet")
    assert table["cell"].nunique() == 2


@pytest.mark.slow
def test_sweep_scheduler_local_shortcut(tmp_path):
    pytest.importorskip("distributed")
    out = run_cli("sweep", "demo", "--preset", "quick", "--grid", "rounds=1,2", "--jobs", "1", "--out", str(tmp_path),
                  "--scheduler", "local").stdout
    assert "2 cells, 0 already finished, 2 to run" in out
    table = pd.read_parquet(tmp_path / "sweep.parquet")
    assert set(table["sweep_rounds"]) == {1, 2}


@pytest.mark.slow
def test_sweep_ctrl_c_keeps_finished_cells_and_resumes(tmp_path):
    import signal
    import time

    args = [sys.executable, "-m", "modelcollapse", "sweep", "demo", "--preset", "quick", "--grid",
            "real_fraction=0,0.25,0.5,0.75", "--seeds", "2", "--jobs", "1", "--out", str(tmp_path)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list((tmp_path / "cells").glob("*/DONE")) and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    done = len(list((tmp_path / "cells").glob("*/DONE")))
    assert proc.returncode == 130, (out, err)
    assert "finished cells are saved" in err
    assert 1 <= done < 8
    second = run_cli(*args[3:]).stdout
    assert f"8 cells, {done} already finished, {8 - done} to run" in second
    assert pd.read_parquet(tmp_path / "sweep.parquet")["cell"].nunique() == 8
