"""Interrupted experiments resume: finished units are kept under ``<out>/.units`` and reused
by a rerun with the same configuration and code, never by another one, and a unit file that
is not genuine is recomputed without running anything it holds (docs/cli.md, section
"Interrupting and resuming")."""
from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest

import modelcollapse.experiments.demo as demo_mod
import modelcollapse.experiments.truncation as trunc_mod
from modelcollapse import _checkpoint as ck
from modelcollapse.cli import main
from modelcollapse.experiments import _units, get
from modelcollapse.experiments import hodge as hodge_mod
from modelcollapse.experiments._units import UnitCache, active

# demo with 2 seeds x 2 rounds: 4 units (one reverse-sampler run each), seconds in all
SMALL_DEMO = {"n_seeds": "2", "rounds": "2", "n_samples": "300", "steps": "20"}
N_DEMO_UNITS = 4


class _Evil:
    """Unpickling this runs code: creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def sampler_calls(monkeypatch):
    """Counts the demo's reverse-sampler runs (one per unit); ``state["fail_on"] = k`` makes the
    k-th call raise KeyboardInterrupt, as Ctrl-C would."""
    real = demo_mod.sample_reverse
    state = {"calls": 0, "fail_on": None}

    def counted(*args, **kwargs):
        state["calls"] += 1
        if state["calls"] == state["fail_on"]:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(demo_mod, "sample_reverse", counted)
    return state


def _demo(**over):
    exp = get("demo")
    return exp, exp.make_config("quick", {**SMALL_DEMO, **over})


def _run_quiet(exp, cfg, out):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the small demo's sampler discretisation warnings
        return exp.run(cfg, out, progress=False)


@pytest.fixture(scope="module")
def demo_reference(tmp_path_factory):
    """An uninterrupted run of the small demo."""
    exp, cfg = _demo()
    return _run_quiet(exp, cfg, tmp_path_factory.mktemp("ref"))


def _same(result, ref):
    pd.testing.assert_frame_equal(result.table, ref.table)
    assert [c.to_dict() for c in result.claims] == [c.to_dict() for c in ref.claims]


def test_interrupted_run_resumes_without_recomputing(tmp_path, sampler_calls, demo_reference):
    exp, cfg = _demo()
    out = tmp_path / "run"
    sampler_calls["fail_on"] = 2
    with pytest.raises(KeyboardInterrupt):
        _run_quiet(exp, cfg, out)
    folder = UnitCache(out, "demo", cfg).folder
    assert sorted(p.name for p in folder.iterdir()) == ["seed0-round0.npz"]   # the finished unit, no temporaries
    sampler_calls.update(calls=0, fail_on=None)
    res = _run_quiet(exp, cfg, out)
    assert sampler_calls["calls"] == N_DEMO_UNITS - 1          # the finished unit was not recomputed
    assert (res.units["reused"], res.units["computed"]) == (1, N_DEMO_UNITS - 1)
    _same(res, demo_reference)                                  # same table and claims as without Ctrl-C
    sampler_calls["calls"] = 0
    _same(_run_quiet(exp, cfg, out), demo_reference)            # a finished run: everything reused
    assert sampler_calls["calls"] == 0


def test_other_configuration_or_code_is_not_reused(tmp_path, sampler_calls, monkeypatch):
    exp, cfg = _demo()
    out = tmp_path / "run"
    _run_quiet(exp, cfg, out)
    assert sampler_calls["calls"] == N_DEMO_UNITS
    other = exp.make_config("quick", {**SMALL_DEMO, "n_samples": "301"})
    assert UnitCache(out, "demo", other).not_reused() == N_DEMO_UNITS
    res = _run_quiet(exp, other, out)
    assert sampler_calls["calls"] == 2 * N_DEMO_UNITS and res.units["reused"] == 0
    monkeypatch.setattr(_units, "code_fingerprint", lambda module=None: "another version")
    res = _run_quiet(exp, cfg, out)
    assert sampler_calls["calls"] == 3 * N_DEMO_UNITS and res.units["reused"] == 0


def test_tampered_unit_files_are_recomputed_never_run(tmp_path, sampler_calls, demo_reference):
    exp, cfg = _demo()
    out = tmp_path / "run"
    _run_quiet(exp, cfg, out)
    cache = UnitCache(out, "demo", cfg)
    marker = tmp_path / "MARKER"
    f = {k: cache.path(k) for k in ("seed0-round0", "seed0-round1", "seed1-round0", "seed1-round1")}
    # a pickle that would run code; half a file (an interrupted copy); another unit's genuine file;
    # a genuine-looking unit whose figure would be written outside the folder
    f["seed0-round0"].write_bytes(pickle.dumps(_Evil(marker)))
    f["seed0-round1"].write_bytes(f["seed0-round1"].read_bytes()[:200])
    f["seed1-round0"].write_bytes(f["seed1-round1"].read_bytes())
    ck.save_data(f["seed1-round1"], {"format": "modelcollapse-unit", "experiment": "demo", "run": cache.key,
                                     "unit": "seed1-round1", "value": {"__unit__": "figure", "name": "../evil.png",
                                                                      "bytes": np.zeros(3, np.uint8)}})
    sampler_calls["calls"] = 0
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        res = exp.run(cfg, out, progress=False)
    msgs = [str(w.message) for w in rec if "unit not reused" in str(w.message)]
    assert len(msgs) == 4 and all("\n" not in m for m in msgs)
    assert any("pickles can execute code" in m for m in msgs)
    assert any("is not unit 'seed1-round0'" in m for m in msgs)
    assert not marker.exists() and not (tmp_path / "run" / ".units" / "demo" / "evil.png").exists()
    assert not list(tmp_path.rglob("evil.png"))
    assert sampler_calls["calls"] == N_DEMO_UNITS
    _same(res, demo_reference)


def test_cli_reports_reuse_and_interrupts(tmp_path, sampler_calls, capsys):
    args = ["run", "demo", "--preset", "quick", "--out", str(tmp_path), "--quiet",
            *[x for k, v in SMALL_DEMO.items() for x in ("--set", f"{k}={v}")]]
    sampler_calls["fail_on"] = 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(args) == 130
        err = capsys.readouterr().err
        assert "interrupted; 2 finished units are saved" in err and "rerun the same command to resume" in err
        sampler_calls.update(calls=0, fail_on=None)
        assert main(args) == 0
        text = capsys.readouterr().out
        assert "resuming: 2 finished units" in text and "units:  2 reused, 2 computed" in text
        assert main([*args, "--set", "seed=1"]) == 0
    text = capsys.readouterr().out
    assert "4 finished units in" in text and "another configuration or code version: not reused" in text


def test_truncation_part_unit_restores_its_figure(tmp_path, monkeypatch):
    """A finished part is reused whole (table, claims, figure bytes) after Ctrl-C in a later one."""
    real, calls = trunc_mod.part_a3, []
    interrupt = [True]

    def a3(*args):
        calls.append(1)
        return real(*args)

    def later(cfg, out, progress):
        if interrupt[0]:
            raise KeyboardInterrupt
        return pd.DataFrame({"part": ["X"], "value": [1.0]}), []

    monkeypatch.setattr(trunc_mod, "PARTS", {"a3": a3, "x": later})
    exp = get("truncation")
    cfg = exp.make_config("quick", {"schedule_rounds": "40", "hermite_degree": "6"})
    with pytest.raises(KeyboardInterrupt):
        exp.run(cfg, tmp_path, progress=False)
    fig = tmp_path / "truncation_a3.png"
    drawn = fig.read_bytes()
    fig.unlink()
    interrupt[0] = False
    res = exp.run(cfg, tmp_path, progress=False)
    assert len(calls) == 1 and res.units["reused"] == 1
    assert fig in res.figures and fig.read_bytes() == drawn
    assert set(res.table.part) == {"A3", "X"}


def test_hodge_models_resume_with_the_same_random_draws(tmp_path, monkeypatch):
    """Each model of the correlation study is a unit, the model's random draws stay outside it:
    after Ctrl-C at the third model a resumed study equals an uninterrupted one."""
    cfg = hodge_mod.HodgeConfig(n_models=3, n_seeds=1, n_control=3, n_null=0, n_est=200, n_times=2, degree=2,
                                n_sample=200, steps=10, kde_grid=30, grid_n=12)
    st = hodge_mod._setting(cfg, False)
    ref = hodge_mod._correlation_study(st, [])
    real, calls, interrupt = hodge_mod._model_record, [], [True]

    def record(*args):
        calls.append(1)
        if interrupt[0] and len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(hodge_mod._studies, "_model_record", record)  # where the study looks it up
    cache = UnitCache(tmp_path, "hodge", cfg)
    with active(cache), pytest.raises(KeyboardInterrupt):
        hodge_mod._correlation_study(st, [])
    calls.clear()
    interrupt[0] = False
    with active(UnitCache(tmp_path, "hodge", cfg)) as again:
        df = hodge_mod._correlation_study(st, [])
    assert len(calls) == 4 and again.reused == 2
    pd.testing.assert_frame_equal(df, ref)


@pytest.fixture
def counted_dae(monkeypatch):
    """Counts the SGD runs (``dae.train``) and the ODE integrations of the DAE experiments;
    ``state["fail"] = ("train" or "ode", k)`` makes the k-th such call raise KeyboardInterrupt.
    Their figures are not drawn (most of a small run's time; not what these tests check)."""
    import modelcollapse.dae as dae_pkg
    import modelcollapse.dae_theory as th
    from modelcollapse.experiments.dae import _scale, _training

    state = {"train": 0, "ode": 0, "fail": None}

    def wrap(kind, real):
        def counted(*args, **kwargs):
            state[kind] += 1
            if state["fail"] == (kind, state[kind]):
                raise KeyboardInterrupt
            return real(*args, **kwargs)
        return counted

    def no_figure(fig, path):
        _training.pyplot().close(fig)
        path.write_bytes(b"")
        return path

    monkeypatch.setattr(dae_pkg, "train", wrap("train", dae_pkg.train))
    monkeypatch.setattr(th, "integrate_odes", wrap("ode", th.integrate_odes))   # the experiments call th.integrate_odes
    for mod in (_scale, _training):
        monkeypatch.setattr(mod, "save_figure", no_figure)
    return state


def _dae_run(name, out, **over):
    exp = get(name)
    cfg = exp.make_config("quick", {"threads": "1", **over})
    return exp.run(cfg, out, progress=False), cfg


SMALL_D1 = {"d": "200", "tau_max": "0.5", "n_records": "3"}


def test_dae_training_resumes_after_ctrl_c_in_the_odes(tmp_path, counted_dae):
    """D1's units are the SGD replicas (one call) and their ODEs: Ctrl-C in the ODEs keeps the
    simulation, which the rerun loads (kills: the simulation not a unit, or not reused); a
    unit file swapped for the other unit's is recomputed (kills: a unit trusted by its file
    name alone); both give the uninterrupted run's table and claims."""
    ref, _ = _dae_run("dae-training", tmp_path / "ref", **SMALL_D1)
    counted_dae.update(train=0, ode=0, fail=("ode", 1))
    with pytest.raises(KeyboardInterrupt):
        _dae_run("dae-training", tmp_path / "run", **SMALL_D1)
    assert counted_dae["train"] == 1
    counted_dae.update(train=0, ode=0, fail=None)
    res, cfg = _dae_run("dae-training", tmp_path / "run", **SMALL_D1)
    assert (counted_dae["train"], counted_dae["ode"]) == (0, 1)
    assert (res.units["reused"], res.units["computed"]) == (1, 1)
    _same(res, ref)
    cache = UnitCache(tmp_path / "run", "dae-training", cfg)
    cache.path("ode").write_bytes(cache.path("simulation").read_bytes())
    counted_dae.update(train=0, ode=0)
    with pytest.warns(UserWarning, match="is not unit 'ode'"):
        res, _ = _dae_run("dae-training", tmp_path / "run", **SMALL_D1)
    assert (counted_dae["train"], counted_dae["ode"]) == (0, 1)
    _same(res, ref)


def test_dae_scale_resumes_each_dimension(tmp_path, counted_dae):
    """D5's units are the throughput timing and the fluctuation runs, one per d: Ctrl-C in the
    last fluctuation run keeps the three finished units (kills: a unit not reused), and the
    resumed fluctuation rows equal an uninterrupted run's (kills: one key for both parts of a
    d, which would hand the throughput rows to the fluctuations)."""
    ref, _ = _dae_run("dae-scale", tmp_path / "ref")
    n_train = counted_dae["train"]     # 1 per throughput d (threads=1: timed once) + 1 per fluctuation d
    assert n_train == 2 * 1 + 2
    counted_dae.update(train=0, ode=0, fail=("train", n_train))
    with pytest.raises(KeyboardInterrupt):
        _dae_run("dae-scale", tmp_path / "run")
    counted_dae.update(train=0, ode=0, fail=None)
    res, _ = _dae_run("dae-scale", tmp_path / "run")
    assert (counted_dae["train"], counted_dae["ode"]) == (1, 1)
    assert (res.units["reused"], res.units["computed"]) == (3, 1)
    fluct = lambda r: r.table[r.table.part == "fluctuations"].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(fluct(res), fluct(ref))
    assert set(res.table.part) == {"throughput", "fluctuations"} and len(res.table) == len(ref.table)


def test_every_experiment_has_its_units_documented():
    """docs/cli.md's table of units names every registered experiment (kills: an experiment
    added without saying what it resumes, or a row dropped)."""
    import re
    from pathlib import Path

    from modelcollapse.experiments._registry import REGISTRY

    text = (Path(__file__).resolve().parents[1] / "docs" / "cli.md").read_text()
    section = text.split("### Interrupting and resuming", 1)[1].split("\n\n", 3)[2]
    names = {n for line in section.splitlines() if line.startswith("| `")
             for n in re.findall(r"`([a-z0-9-]+)`", line.split("|")[1])}
    get("demo")                                            # the registry fills on first use
    assert names == set(REGISTRY), set(REGISTRY) ^ names
