"""The console script end to end, in a subprocess, as a user runs it."""
import json
import re
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
    out = run_cli("run", "demo", "--preset", "quick", "--set", "real_fraction=0.5", "--out", str(tmp_path)).stdout
    table = pd.read_parquet(tmp_path / "demo.parquet")
    assert set(table.columns) >= {"seed", "round", "metric", "source", "value"}
    assert table["replicate"].nunique() == 5     # the quick preset's seed ensemble
    meta = json.loads((tmp_path / "demo.json").read_text())
    assert meta["config"]["real_fraction"] == 0.5 and meta["versions"]["modelcollapse"]
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    # simulation tracks the exact law of every round (covariance trace within 10%)
    tc = table[table.metric == "trace_cov"].pivot_table(index=["replicate", "round"], columns="source", values="value")
    assert ((tc.simulation - tc.exact).abs() / tc.exact < 0.1).all()
    # the claims, one line each, verdict first, after the run; `claims DIR` prints the same lines from disk
    lines = [ln.strip() for ln in out.splitlines() if ln.strip().startswith("[")]
    assert len(lines) == len(meta["claims"]) == 3
    assert all(ln.startswith(f"[{c['verdict']}] {c['name']}: ") for ln, c in zip(lines, meta["claims"]))
    assert "claims (3 holds, 0 fails, 0 underpowered):" in out
    again = run_cli("claims", str(tmp_path)).stdout
    assert [ln.strip() for ln in again.splitlines() if ln.strip().startswith("[")] == lines
    assert re.search(r"^  trace_cov_data +4\.977$", out, re.M)   # summary table, 4 significant digits


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
        assert "experiment failed" not in md.lower()
    assert html.count("data:image/png;base64,") >= len(parts)
    assert "modelcollapse run demo --preset quick" in md
    assert "## Claims at a glance" in md and "demo.sampler_tracks_exact_laws" in md
    assert "ok" in res.stdout and "claims: " in res.stdout
    from modelcollapse.experiments.report import report_left_out
    left_out = report_left_out("quick")
    assert left_out   # D4 is in the default and paper reports only
    for item in left_out:   # the console names each one, not only the report's header
        assert f"not in this report: {item['experiment']} ({item['part']})" in res.stdout


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
    # the child gets the default SIGINT even when this runner ignores it (a background job)
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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


# ---- discovery, config files, re-runs and one-line errors (issue 15, items 2 and 3) ----
# In-process main() where possible: a subprocess costs seconds of imports per call.

def _main(capsys, *argv):
    from modelcollapse.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_version_matches_the_package(capsys):
    import modelcollapse
    from modelcollapse.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"modelcollapse {modelcollapse.__version__}"


def test_every_command_defaults_to_the_quick_preset():
    from modelcollapse.cli import build_parser

    parser = build_parser()
    for argv in (["run", "demo"], ["show", "demo"], ["report"], ["sweep", "demo"]):
        assert parser.parse_args(argv).preset == "quick", argv


def test_show_lists_keys_types_preset_values_defaults_and_help(capsys):
    from modelcollapse.experiments import get

    exp = get("demo")
    quick, field_default = exp.make_config("quick"), exp.config_cls()
    assert quick.rounds != field_default.rounds      # the row below must show both
    rc, out, _ = _main(capsys, "show", "demo")
    rows = {line.split()[0]: line.split(None, 4) for line in out.splitlines() if line.startswith("  ")}
    assert rc == 0 and list(rows)[1:] == exp.fields()      # header, then every key in order
    assert rows["rounds"][1:4] == ["int", str(quick.rounds), str(field_default.rounds)]
    assert rows["rounds"][4] == "retraining rounds"        # the trailing comment in demo.py
    assert rows["real_fraction"][1:3] == ["float", str(quick.real_fraction)]
    _, paper, _ = _main(capsys, "show", "demo", "--preset", "paper")
    paper_rounds = next(line for line in paper.splitlines() if line.split()[:1] == ["rounds"])
    assert paper_rounds.split()[2] == str(exp.make_config("paper").rounds)


def test_run_name_help_shows_that_experiments_settings(capsys):
    from modelcollapse.cli import main

    texts = {}
    for name in ("demo", "dae-training"):
        with pytest.raises(SystemExit) as exc:
            main(["run", name, "--help"])
        assert exc.value.code == 0
        texts[name] = capsys.readouterr().out
    assert "real_fraction" in texts["demo"] and "tau_max" not in texts["demo"]
    assert "tau_max" in texts["dae-training"] and "real_fraction" not in texts["dae-training"]


def test_field_help_reads_metadata_trailing_and_leading_comments():
    import dataclasses

    from modelcollapse.experiments._registry import field_help

    @dataclasses.dataclass
    class Cfg:
        a: int = 1  # trailing a
        # above b,
        # two lines
        b: float = 2.0
        # orphan comment, then a blank line

        c: tuple[int, ...] = (1,
                              2)  # trailing c, on the statement's last line
        d: str = dataclasses.field(default="x", metadata={"help": "from metadata"})  # not this
        e: bool = False
        # a block above loses to the field's own trailing comment
        f: int = 0  # trailing f

    assert field_help(Cfg) == {"a": "trailing a", "b": "above b, two lines", "c": "trailing c, on the statement's "
                               "last line", "d": "from metadata", "f": "trailing f"}


def test_make_config_checks_typed_values_from_files_and_sidecars():
    import math

    from modelcollapse.experiments import get

    exp = get("retraining-ddpm")
    cfg = exp.make_config("quick", {"synthetic_ratios": [0.5, math.inf], "seeds": [3], "rounds": 2.0, "lr": 1})
    assert cfg.synthetic_ratios == (0.5, math.inf) and cfg.seeds == (3,)
    assert type(cfg.rounds) is int and type(cfg.lr) is float
    for key, bad in (("rounds", 2.5), ("rounds", True), ("rounds", [2]), ("checkpoints", 1), ("device", 0),
                     ("seeds", 3), ("seeds", [1.5]), ("lr", "fast")):
        with pytest.raises((TypeError, ValueError), match=key):
            exp.make_config("quick", {key: bad})


TINY_DEMO = ["--set", "n_samples=200", "--set", "steps=5", "--set", "n_seeds=2", "--quiet"]


def test_config_file_and_rerun_from_sidecar_reproduce_the_run(capsys, tmp_path):
    (tmp_path / "c.toml").write_text("rounds = 1\nreal_fraction = 0.5\nn_samples = 999\n")
    # precedence: preset < config file < --set (n_samples comes from --set, real_fraction from the file)
    rc, out, _ = _main(capsys, "run", "demo", "--config", str(tmp_path / "c.toml"), *TINY_DEMO, "--out",
                       str(tmp_path / "a"))
    assert rc == 0 and "preset quick, the default" in out
    first = json.loads((tmp_path / "a" / "demo.json").read_text())
    assert first["config"]["real_fraction"] == 0.5 and first["config"]["rounds"] == 1
    assert first["config"]["n_samples"] == 200
    assert first["config"]["delta"] == 0.1                      # untouched keys keep the preset's value
    rc, out, _ = _main(capsys, "run", "--from", str(tmp_path / "a" / "demo.json"), "--out", str(tmp_path / "b"))
    assert rc == 0 and "with the config saved in" in out
    assert json.loads((tmp_path / "b" / "demo.json").read_text())["config"] == first["config"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a" / "demo.parquet"),
                                  pd.read_parquet(tmp_path / "b" / "demo.parquet"))


def test_yaml_config_file(capsys, tmp_path):
    pytest.importorskip("yaml")
    from modelcollapse.cli import _read_config_file

    (tmp_path / "c.yaml").write_text("rounds: 2\nsynthetic_ratios: [0.5, .inf]\n")
    assert _read_config_file(str(tmp_path / "c.yaml")) == {"rounds": 2, "synthetic_ratios": [0.5, float("inf")]}


def _error_cases(tmp_path):
    afile = tmp_path / "afile"
    afile.write_text("x")
    (tmp_path / "nested.toml").write_text("[demo]\nrounds = 2\n")
    (tmp_path / "bad.json").write_text('{"name": "demo", "config": {"rounds": 2.5}}')
    (tmp_path / "notsidecar.json").write_text('{"rows": 3}')
    (tmp_path / "c.ini").write_text("rounds=2")
    return {
        "out_is_file": (["run", "demo", "--out", str(afile)], "is a file, not a folder"),
        "out_below_file": (["run", "demo", "--out", str(afile / "sub")], "is a file, not a folder"),
        "sweep_out_is_file": (["sweep", "demo", "--grid", "rounds=1", "--out", str(afile)], "is a file"),
        "unknown_key": (["run", "demo", "--set", "bogus=1"], "unknown key 'bogus'"),
        "bad_value": (["run", "demo", "--set", "rounds=abc"], "rounds must be int"),
        "unknown_experiment": (["run", "nosuch"], "unknown experiment 'nosuch'"),
        "missing_config": (["run", "demo", "--config", str(tmp_path / "none.toml")], "No such file"),
        "nested_config": (["run", "demo", "--config", str(tmp_path / "nested.toml")], "flat table"),
        "config_suffix": (["run", "demo", "--config", str(tmp_path / "c.ini")], ".toml, .yaml or .yml"),
        "sidecar_bad_type": (["run", "--from", str(tmp_path / "bad.json")], "rounds must be int"),
        "not_a_sidecar": (["run", "--from", str(tmp_path / "notsidecar.json")], "not a results sidecar"),
        "no_name": (["run"], "give an experiment NAME"),
    }


@pytest.mark.parametrize("case", [
    "out_is_file", "out_below_file", "sweep_out_is_file", "unknown_key", "bad_value", "unknown_experiment",
    "missing_config", "nested_config", "config_suffix", "sidecar_bad_type", "not_a_sidecar", "no_name"])
def test_errors_are_one_line_with_exit_code_2(capsys, tmp_path, case):
    argv, expected = _error_cases(tmp_path)[case]
    rc, out, err = _main(capsys, *argv)
    assert rc == 2 and expected in err
    assert err.count("\n") == 1 and err.startswith("modelcollapse: error: ") and "--debug" in err
    assert not (tmp_path / "afile").is_dir() and "running" not in out     # failed before running anything


def test_debug_shows_the_traceback(tmp_path):
    from modelcollapse.cli import main

    with pytest.raises(ValueError, match="unknown key"):
        main(["run", "demo", "--set", "bogus=1", "--debug", "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="unknown key"):
        main(["--debug", "run", "demo", "--set", "bogus=1", "--out", str(tmp_path)])


def test_unavailable_or_unknown_device_is_one_line(capsys, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this test needs a torch without CUDA")
    for device, expected in (("cuda", "sees no CUDA GPU: use --set device=cpu"),
                             ("cuda:0", "sees no CUDA GPU"), ("banana", "is not a torch device")):
        rc, out, err = _main(capsys, "run", "retraining-ddpm", "--set", f"device={device}", "--out",
                             str(tmp_path / device))
        assert rc == 2 and expected in err and err.count("\n") == 1, err
        assert not (tmp_path / device).exists()                  # refused before anything ran


def test_missing_optional_extra_names_the_pip_command(capsys, monkeypatch):
    import modelcollapse.cli as cli

    def needs_torch(args):
        raise ModuleNotFoundError("No module named 'torch'", name="torch")

    monkeypatch.setattr(cli, "_cmd_info", needs_torch)
    rc, _, err = _main(capsys, "info")
    assert rc == 2 and 'pip install ".[torch]"' in err and err.count("\n") == 1


def test_unreachable_scheduler_is_one_line(capsys, tmp_path):
    pytest.importorskip("distributed")
    rc, _, err = _main(capsys, "sweep", "demo", "--grid", "rounds=1", "--scheduler", "tcp://127.0.0.1:9",
                       "--connect-timeout", "0.5", "--out", str(tmp_path))
    assert rc == 2 and "cannot reach the Dask scheduler" in err and err.count("\n") == 1
