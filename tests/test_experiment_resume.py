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


def _counting(state, kind, real):
    """``real``, counting its calls in ``state[kind]``; the call that makes ``state["fail"] ==
    (kind, count)`` raises KeyboardInterrupt instead (a Ctrl-C inside that piece)."""
    def counted(*args, **kwargs):
        state[kind] += 1
        if state["fail"] == (kind, state[kind]):
            raise KeyboardInterrupt
        return real(*args, **kwargs)
    return counted


@pytest.fixture
def counted_dae(monkeypatch):
    """Counts the SGD runs (``dae.train``) and the ODE integrations of the DAE experiments;
    ``state["fail"] = ("train" or "ode", k)`` makes the k-th such call raise KeyboardInterrupt.
    Their figures are not drawn (most of a small run's time; not what these tests check)."""
    import modelcollapse.dae as dae_pkg
    import modelcollapse.dae_theory as th
    from modelcollapse.experiments.dae import _scale, _training

    state = {"train": 0, "ode": 0, "fail": None}

    def no_figure(fig, path):
        _training.pyplot().close(fig)
        path.write_bytes(b"")
        return path

    monkeypatch.setattr(dae_pkg, "train", _counting(state, "train", dae_pkg.train))
    # the experiments call th.integrate_odes
    monkeypatch.setattr(th, "integrate_odes", _counting(state, "ode", th.integrate_odes))
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


# D4 on a tiny digits target (d = 64), one seed, two generations: seconds per run
TINY_D4 = {"side": "8", "seeds": "1", "generations": "2", "n_eval": "150", "small_lr_factor": "2", "nu_atoms": "3",
           "n_nodes": "3", "tau": "0.6", "threads": "1"}


@pytest.fixture
def counted_d4(monkeypatch):
    """Counts D4's pieces that units keep (the ODE integrations, the theory's target, the
    lr/factor reruns, the replicas); ``state["fail"] = (piece, k)`` makes the k-th call of that
    piece raise KeyboardInterrupt. The figure is not drawn (most of a small run's time)."""
    from modelcollapse.experiments.dae import _generations as gen

    state = {"ode": 0, "target": 0, "small_lr": 0, "replica": 0, "fail": None}

    def no_figure(*args, **kwargs):
        path = args[-1]
        path.write_bytes(b"")
        return path

    for kind, name in (("ode", "_ode_stats"), ("target", "_generation_theory_target"),
                       ("small_lr", "_small_lr_replica"), ("replica", "_replica_samples")):
        monkeypatch.setattr(gen, name, _counting(state, kind, getattr(gen, name)))
    monkeypatch.setattr(gen, "_panels_figure", no_figure)
    return state


def test_dae_generations_resumes_its_theory_and_reruns(tmp_path, counted_d4):
    """D4's ODE theory, its lr/factor reruns and replicas are units (docs/cli.md): Ctrl-C in
    the second variant's lr/factor rerun keeps every finished piece, the rerun computes only
    the rest (kills: any of them computed outside a unit, or the theory's target built
    eagerly although every ODE is reused), a finished run computes nothing, and both give the
    uninterrupted run's table and claims."""
    ref, _ = _dae_run("dae-generations", tmp_path / "ref", **TINY_D4)
    # per variant: 4 ODEs (lr, sensitivity x 2, lr/factor) at generation 2, one rerun, 2 replicas
    assert {k: counted_d4[k] for k in ("ode", "target", "small_lr", "replica")} == \
        {"ode": 8, "target": 2, "small_lr": 2, "replica": 4}
    assert (ref.units["reused"], ref.units["computed"]) == (0, 2 * 7 + 1)   # + the figure
    counted_d4.update(ode=0, target=0, small_lr=0, replica=0, fail=("small_lr", 2))
    with pytest.raises(KeyboardInterrupt):
        _dae_run("dae-generations", tmp_path / "run", **TINY_D4)
    counted_d4.update(ode=0, target=0, small_lr=0, replica=0, fail=None)
    res, _ = _dae_run("dae-generations", tmp_path / "run", **TINY_D4)
    # left: the second variant's rerun and its gen-2 replica (its ODEs, lr/factor included, ran before)
    assert {k: counted_d4[k] for k in ("ode", "target", "small_lr", "replica")} == \
        {"ode": 0, "target": 0, "small_lr": 1, "replica": 1}
    assert (res.units["reused"], res.units["computed"]) == (12, 3)
    _same(res, ref)
    counted_d4.update(ode=0, target=0, small_lr=0, replica=0)
    again, _ = _dae_run("dae-generations", tmp_path / "run", **TINY_D4)
    assert {k: counted_d4[k] for k in ("ode", "target", "small_lr", "replica")} == \
        {"ode": 0, "target": 0, "small_lr": 0, "replica": 0}
    assert (again.units["reused"], again.units["computed"]) == (15, 0)
    _same(again, ref)


def test_run_key_hashes_what_a_unit_can_depend_on(tmp_path, monkeypatch, request):
    """In a copy of the package: editing the CLI, the report, the sweep or another experiment
    (even one of the same subpackage) keeps D4's run key (kills: hashing every source file);
    editing the library, a shared helper, D4's module, a helper it imports or its package's
    __init__ changes it (kills: the library left out, the imports not followed), and a new
    library module does too."""
    import shutil
    from pathlib import Path

    root = tmp_path / "modelcollapse"
    shutil.copytree(Path(_units.__file__).resolve().parents[1], root,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    monkeypatch.setattr(_units, "_package_root", lambda: root)
    request.addfinalizer(_units.code_fingerprint.cache_clear)

    def key(module="modelcollapse.experiments.dae._generations"):
        _units.code_fingerprint.cache_clear()
        return _units.run_key("dae-generations", {"seed": 0}, module)

    def edited(rel, module="modelcollapse.experiments.dae._generations"):
        f = root / rel
        old = f.read_bytes()
        f.write_bytes(old + b"\n# an edit\n")
        try:
            return key(module)
        finally:
            f.write_bytes(old)

    base = key()
    for rel in ("cli.py", "__main__.py", "experiments/report.py", "experiments/sweep.py", "experiments/demo.py",
                "experiments/dae/_digits.py", "experiments/hodge/_studies.py", "experiments/truncation/_limit.py"):
        assert edited(rel) == base, rel
    for rel in ("dae_theory.py", "dae/_theory.py", "metrics/__init__.py", "_version.py", "experiments/_claims.py",
                "experiments/_units.py", "experiments/dae/_generations.py", "experiments/dae/_common.py",
                "experiments/dae/__init__.py", "experiments/__init__.py"):
        assert edited(rel) != base, rel
    (root / "new_kernel.py").write_text("X = 1\n")
    assert key() != base
    (root / "new_kernel.py").unlink()
    assert key() == base
    # an experiment the package does not define (a test's): every experiment module counts
    assert edited("experiments/dae/_digits.py", module="tests.some_test") != key("tests.some_test")
    # a truncation part: its subpackage __init__ imports every part module
    assert edited("experiments/truncation/_limit.py", "modelcollapse.experiments.truncation") \
        != key("modelcollapse.experiments.truncation")


class _UnitWarning(RuntimeWarning):
    """A warning category of the caller's own."""


def _warns_at_caller(x):
    warnings.warn(f"careful with {x}", _UnitWarning, stacklevel=2)   # points at whoever called this
    return x


def _warns_here(x):
    warnings.warn("from inside", UserWarning, stacklevel=1)
    return x


def test_unit_warnings_point_at_the_caller_and_are_raised_again_on_reuse(tmp_path):
    """A unit's warnings keep their category and message and are raised again when the unit is
    reused (kills: warnings lost on reuse); one that would point into _units.py (a
    ``functools.partial`` of a ``stacklevel=2`` warner) points at the line that called
    ``unit`` (kills: the saved location kept as is), one with its own location keeps it
    (kills: every warning moved to the caller); the caller's filters apply."""
    import inspect
    from functools import partial

    def run(cache):
        with active(cache), warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            line = inspect.currentframe().f_lineno + 1
            a = _units.unit("a", partial(_warns_at_caller, 3))
            b = _units.unit("b", partial(_warns_here, 4))
        assert (a, b) == (3, 4)
        return [(w.category, str(w.message), w.filename, w.lineno) for w in rec], line

    fresh, line = run(UnitCache(tmp_path, "demo", {"k": 1}))
    expected = [(_UnitWarning, "careful with 3", __file__, line),
                (UserWarning, "from inside", __file__, _warns_here.__code__.co_firstlineno + 1)]
    assert fresh == expected
    cache = UnitCache(tmp_path, "demo", {"k": 1})
    assert run(cache) == (expected, line)
    assert cache.reused == 2 and cache.computed == 0
    with active(UnitCache(tmp_path, "demo", {"k": 1})), warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("ignore")
        _units.unit("a", partial(_warns_at_caller, 3))
    assert rec == []
    # an "error" filter stops the computation at the warning, as without units: nothing is saved
    # (kills: the unit's own filters overriding the caller's)
    with active(UnitCache(tmp_path, "demo", {"k": 2})) as cache, warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(_UnitWarning, match="careful with 5"):
            _units.unit("c", partial(_warns_at_caller, 5))
    assert not cache.path("c").exists()
