"""Files: data-only checkpoints (no pickle on any load path), atomic writes, strict JSON,
stale checkpoints kept aside."""
from __future__ import annotations

import json
import math
import os
import pickle
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import modelcollapse as mc
from modelcollapse import _checkpoint as ck
from modelcollapse import dae
from modelcollapse.results import load_sidecar, save_results
from modelcollapse.retraining import (
    EmpiricalLearner,
    FitSampleAdapter,
    GaussianLearner,
    GMMLearner,
    completed_rounds,
    load_round,
    run_retraining,
)
from modelcollapse.truncation import FittedModelLearner, IndependentDrawLearner


def _reject_constant(name):
    raise ValueError(f"non-strict JSON constant {name}")


def strict_loads(text):
    """A strict JSON parser: Infinity / NaN are errors."""
    return json.loads(text, parse_constant=_reject_constant)


def assert_identical(a, b, path="obj"):
    """Same structure, same Python / numpy types, same dtypes, same bits."""
    assert type(a) is type(b), f"{path}: {type(a)} != {type(b)}"
    if isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and np.shape(a) == np.shape(b), path
        assert np.asarray(a).tobytes() == np.asarray(b).tobytes(), path
    elif isinstance(a, dict):
        assert list(a) == list(b), path
        for k in a:
            assert type(k) is type(next(kb for kb in b if kb == k)), f"{path} key {k!r}"
            assert_identical(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), path
    else:
        assert a == b, path
        if isinstance(a, float):
            assert math.copysign(1.0, a) == math.copysign(1.0, b), path


def _roundtrip(obj, tmp_path, name="x.npz"):
    path = tmp_path / name
    ck.save_data(path, obj, what="test")
    return ck.load_data(path)


# ----------------------------------------------------------------------------- the codec
def test_codec_roundtrip_is_exact(tmp_path):
    obj = {
        "f64": np.arange(6.0).reshape(2, 3), "f32": np.ones(3, np.float32), "i8": np.array([-1, 2], np.int8),
        "u64": np.array([2**64 - 1], np.uint64), "bool": np.array([True, False]), "c": np.array([1 + 2j]),
        "str_arr": np.array(["a", "bcd"]), "empty": np.empty((0, 3)), "zero_d": np.array(2.5),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "np_f64": np.float64(0.1), "np_i64": np.int64(-3), "np_bool": np.bool_(True), "np_f32": np.float32(1.5),
        "py_float": 0.1, "neg_zero": -0.0, "inf": math.inf, "ninf": -math.inf, "nan": math.nan,
        "big_int": 2**100, "neg_int": -7, "true": True, "false": False, "none": None, "text": "é \"q\" \n",
        "cplx": 1.5 - 2j, "tuple": (0.9, 0.999), "list": [1, [2.0, (None, "x")]], "empty_list": [], "empty_dict": {},
        0: "int key", 1.5: "float key", None: "none key", True: "bool key",
        "nested": {"state": {0: {"step": np.array(3.0, np.float32), "exp_avg": np.zeros(2)}}},
    }
    back = _roundtrip(obj, tmp_path)
    assert_identical(obj, back)
    assert back["fortran"].flags.writeable


@pytest.mark.parametrize("bad, key", [
    ({"model": object()}, "state['model']"),
    ({"a": [1, {"b": np.array([None, 1], dtype=object)}]}, "state['a'][1]['b']"),
    ({"s": {1, 2}}, "state['s']"),
    ({"m": np.ma.masked_array([1.0])}, "state['m']"),
    ({(1, 2): 3.0}, "(1, 2)"),
    ({"b": b"bytes"}, "state['b']"),
])
def test_codec_refuses_non_data_with_the_key(tmp_path, bad, key):
    path = tmp_path / "x.npz"
    with pytest.raises(TypeError, match="learner 'L'") as info:
        ck.save_data(path, bad, what="learner 'L'", root="state")
    assert key in str(info.value) and "\n" not in str(info.value)
    assert not path.exists() and not list(tmp_path.iterdir())   # nothing written


# ----------------------------------------------------------------------------- learners' states
def _gm():
    return mc.GaussianMixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.0]], 0.3)


def _learners():
    out = [
        ("gaussian", GaussianLearner()),
        ("gmm", GMMLearner(2, max_iter=10)),
        ("empirical", EmpiricalLearner(steps=5)),
        ("dae", dae.DaeLearner(r=2, lr=0.2, schedule=dae.sampler_schedule(5, 0.9))),
        ("dae-warm", dae.DaeLearner(r=2, lr=0.2, warm_start=True, schedule=dae.sampler_schedule(5, 0.9))),
        ("truncation-independent", IndependentDrawLearner(_gm(), 0.5, 0.1, 2, steps=10)),
        ("truncation-gmm", FittedModelLearner(GMMLearner(2, max_iter=10), 0.1, 2, steps=10)),
        ("truncation-empirical", FittedModelLearner(EmpiricalLearner(steps=5), 0.1, 2, steps=10)),
    ]
    try:
        from modelcollapse.retraining.torch_learners import DDPMLearner, FlowMatchingLearner
    except ImportError:  # pragma: no cover - torch is an optional extra
        return out
    small = dict(width=8, n_blocks=1, batch_size=16, samples_per_round=32, device="cpu")
    out += [("ddpm", DDPMLearner(n_levels=20, sample_steps=5, **small)),
            ("flow_matching", FlowMatchingLearner(sample_steps=2, **small))]
    return out


@pytest.mark.parametrize("name, learner", _learners(), ids=[n for n, _ in _learners()])
def test_learner_states_roundtrip(tmp_path, name, learner):
    real = np.random.default_rng(0).normal(size=(40, 2 if not name.startswith("dae") else 20))
    s0 = learner.fit(real, None, np.random.default_rng(1))
    s1 = learner.fit(real, s0, np.random.default_rng(2))       # warm-started states too
    for i, state in enumerate((s0, s1)):
        back = _roundtrip(state, tmp_path, f"s{i}.npz")
        assert_identical(state, back)
        # the restored state drives the learner exactly as the original
        a = learner.sample(state, 8, np.random.default_rng(3))
        b = learner.sample(back, 8, np.random.default_rng(3))
        np.testing.assert_array_equal(a, b)
    # and fine-tuning from a restored state gives the same next state
    assert_identical(learner.fit(real, s0, np.random.default_rng(2)),
                     learner.fit(real, _roundtrip(s0, tmp_path, "w.npz"), np.random.default_rng(2)))


class _Stateful:
    def fit(self, x, seed):
        self.mu = x.mean(0)

    def sample(self, n, seed):
        return np.tile(self.mu, (n, 1))


def test_non_data_state_raises_at_save_naming_learner_and_key(tmp_path):
    learner = FitSampleAdapter(_Stateful(), name="stateful")
    real = np.random.default_rng(0).normal(size=(20, 2))
    run_retraining(learner, real, 1, synthetic_ratio=1.0, progress=False)          # fine in memory
    with pytest.raises(TypeError, match=r"learner 'stateful'.*state\['model'\].*_Stateful.*checkpoint_dir"):
        run_retraining(learner, real, 1, synthetic_ratio=1.0, progress=False, checkpoint_dir=tmp_path / "ck")
    assert not list((tmp_path / "ck").glob("round_*"))


# ----------------------------------------------------------------------------- hostile folders
class _Evil:
    """Unpickling this runs code: it writes the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def _real(n=60, seed=0):
    return np.random.default_rng(seed).normal(size=(n, 2)) * [1.0, 2.0]


def _plant_pickles(folder: Path, marker: Path) -> int:
    """Replace every round's data file by a pickle that would run code when loaded."""
    n = 0
    for npz in sorted(folder.glob("round_*.npz")):
        state = {"mean": np.zeros(2), "cov": np.eye(2), "extra": _Evil(marker)}
        payload = {"round": n, "state": state, "synthetic": None, "eval_samples": np.zeros((3, 2))}
        npz.with_suffix(".pkl").write_bytes(pickle.dumps(payload))
        npz.unlink()
        n += 1
    return n


def test_hostile_pickle_folder_is_never_loaded_api(tmp_path):
    marker = tmp_path / "MARKER"
    folder = tmp_path / "ck"
    kw = dict(synthetic_ratio=1.0, seed=4, progress=False)
    full = run_retraining(GaussianLearner(), _real(), 3, **kw)
    run_retraining(GaussianLearner(), _real(), 3, checkpoint_dir=folder, **kw)   # matching config.json
    assert _plant_pickles(folder, marker) == 4
    with pytest.warns(UserWarning, match="round_0000.pkl and 3 more.*pickles can execute code") as rec:
        res = run_retraining(GaussianLearner(), _real(), 3, checkpoint_dir=folder, **kw)
    assert len([w for w in rec if "pickle" in str(w.message)]) == 1
    assert not marker.exists()
    assert res.resumed_from == -1                     # recomputed, same results as a clean run
    pd.testing.assert_frame_equal(full.table, res.table)
    with pytest.raises(ValueError, match="pickles can execute code"):
        (folder / "round_0001.npz").unlink()
        load_round(folder, 1)
    assert not marker.exists()


def test_hostile_object_array_npz_is_refused(tmp_path):
    marker = tmp_path / "MARKER"
    folder = tmp_path / "ck"
    kw = dict(synthetic_ratio=1.0, seed=4, progress=False)
    run_retraining(GaussianLearner(), _real(), 2, checkpoint_dir=folder, **kw)
    target = folder / "round_0001.npz"
    tree = np.frombuffer(json.dumps({"format": ck.FORMAT, "version": ck.VERSION,
                                     "root": {"t": "array", "k": "a0"}}).encode(), np.uint8)
    np.savez(target, __tree__=tree, a0=np.array([_Evil(marker)], dtype=object))   # needs pickle to read
    with pytest.raises(ValueError, match=r"round_0001\.npz.*pickles can execute code.*not loaded"):
        ck.load_data(target)
    with pytest.raises(ValueError, match=r"round_0001\.npz.*not loaded"):
        run_retraining(GaussianLearner(), _real(), 2, checkpoint_dir=folder, **kw)
    # a pickle file under an .npz name is refused too
    target.write_bytes(pickle.dumps(_Evil(marker)))
    with pytest.raises(ValueError, match=r"round_0001\.npz.*pickles can execute code"):
        ck.load_data(target)
    for junk in (b"", b"not a zip", b"PK\x03\x04garbage"):
        target.write_bytes(junk)
        with pytest.raises(ValueError, match=r"round_0001\.npz"):
            ck.load_data(target)
    np.save(target.with_suffix(".npy"), np.zeros(3))
    target.write_bytes(target.with_suffix(".npy").read_bytes())
    with pytest.raises(ValueError, match="not an .npz"):
        ck.load_data(target)
    assert not marker.exists()


@pytest.mark.parametrize("tree", [
    {"format": "other"}, {"format": ck.FORMAT, "version": 99, "root": {"t": "none"}},
    {"format": ck.FORMAT, "version": ck.VERSION, "root": {"t": "array", "k": "missing"}},
    {"format": ck.FORMAT, "version": ck.VERSION, "root": {"t": "int", "v": "x"}},
    {"format": ck.FORMAT, "version": ck.VERSION, "root": {"t": "eval", "v": "1"}},
    {"format": ck.FORMAT, "version": ck.VERSION, "root": {"t": "dict", "v": [[{"t": "list", "v": []}, {"t": "none"}]]}},
])
def test_malformed_structure_is_a_value_error(tmp_path, tree):
    path = tmp_path / "bad.npz"
    np.savez(path, __tree__=np.frombuffer(json.dumps(tree).encode(), np.uint8))
    with pytest.raises(ValueError, match=r"bad\.npz is not a valid"):
        ck.load_data(path)


def test_hostile_folder_dae_generations_cli(tmp_path):
    """The issue's reproduction: a shared results folder with a pickle checkpoint and a
    matching config.json, resumed by the command line."""
    from modelcollapse.experiments import get

    out = tmp_path / "run"
    exp = get("dae-generations")
    small = {"side": "8", "n_eval": "100", "theory": "false", "n_grid": "10", "fixed_b": "0.3"}   # seconds, not minutes
    exp.run(exp.make_config("quick", small), out, progress=False)     # a genuine folder (matching config.json)
    folder = out / "checkpoints" / "trained_b" / f"seed_{exp.make_config('quick', small).seed}"
    marker = tmp_path / "MARKER"
    assert _plant_pickles(folder, marker) == 2
    env = {**os.environ, "PYTHONPATH": str(Path(mc.__file__).parents[1])}
    proc = subprocess.run([sys.executable, "-m", "modelcollapse", "run", "dae-generations", "--preset", "quick",
                           "--out", str(out), "--quiet", *[x for k, v in small.items() for x in ("--set", f"{k}={v}")]],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pickles can execute code" in proc.stderr
    assert not marker.exists()
    assert completed_rounds(folder) == [0, 1]


# ----------------------------------------------------------------------------- atomic writes
def test_atomic_file_failure_keeps_previous_file(tmp_path):
    path = tmp_path / "f.bin"
    ck.atomic_write_bytes(path, b"previous")
    with pytest.raises(RuntimeError):
        with ck.atomic_file(path) as fh:
            fh.write(b"half")
            raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]          # no temporary left
    ck.atomic_write_text(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"


def test_save_results_crash_mid_write_keeps_previous(tmp_path, monkeypatch):
    old = pd.DataFrame({"x": [1.0, 2.0]})
    save_results(old, tmp_path, "res", {"a": 1})
    sidecar = (tmp_path / "res.json").read_bytes()

    def broken_to_parquet(self, fh, **kw):
        fh.write(b"PAR1 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken_to_parquet)
    with pytest.raises(OSError, match="disk full"):
        save_results(pd.DataFrame({"x": [3.0]}), tmp_path, "res", {"a": 2})
    monkeypatch.undo()
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "res.parquet"), old)
    assert (tmp_path / "res.json").read_bytes() == sidecar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["res.json", "res.parquet"]

    def broken_dumps(*a, **kw):
        raise OSError("crash while writing the sidecar")

    new = pd.DataFrame({"x": [3.0]})
    monkeypatch.setattr("modelcollapse.results.dumps_strict", broken_dumps)
    with pytest.raises(OSError):
        save_results(new, tmp_path, "res", {"a": 2})
    assert (tmp_path / "res.json").read_bytes() == sidecar


def test_checkpoint_crash_mid_write_keeps_previous_round(tmp_path, monkeypatch):
    folder = tmp_path / "ck"
    kw = dict(synthetic_ratio=1.0, seed=4, progress=False)
    run_retraining(GaussianLearner(), _real(), 1, checkpoint_dir=folder, **kw)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def broken_savez(fh, *a, **k):
        fh.write(b"PK\x03\x04 partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(KeyboardInterrupt):
        run_retraining(GaussianLearner(), _real(), 2, checkpoint_dir=folder, **kw)
    monkeypatch.undo()
    after = {p.name: p.read_bytes() for p in folder.iterdir()}
    assert after == before                             # round 1 intact, no partial round 2, no temporaries
    assert completed_rounds(folder) == [0, 1]
    assert run_retraining(GaussianLearner(), _real(), 2, checkpoint_dir=folder, **kw).resumed_from == 1


# ----------------------------------------------------------------------------- stale checkpoints
def test_stale_checkpoints_are_moved_aside_not_deleted(tmp_path):
    folder = tmp_path / "ck"
    run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=1.0, progress=False, checkpoint_dir=folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ValueError, match="different configuration.*moves the old files aside"):
        run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=0.5, progress=False, checkpoint_dir=folder)
    with pytest.warns(UserWarning, match=r"moved its 5 files to .*stale-\d{8}-\d{6}.*not deleted"):
        run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=0.5, progress=False, checkpoint_dir=folder,
                       resume=False)
    stale = [p for p in folder.iterdir() if p.name.startswith("stale-")]
    assert len(stale) == 1
    assert {p.name: p.read_bytes() for p in stale[0].iterdir()} == before
    # a second move gets its own folder
    with pytest.warns(UserWarning, match="stale-"):
        run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=1.0, progress=False, checkpoint_dir=folder,
                       resume=False)
    assert len([p for p in folder.iterdir() if p.name.startswith("stale-")]) == 2


# ----------------------------------------------------------------------------- strict JSON
def test_json_files_are_strict(tmp_path):
    folder = tmp_path / "ck"
    # replace: synthetic_ratio = inf; a metric that is nan / inf
    metrics = {"odd": lambda ctx: {"nan": math.nan, "inf": math.inf, "one": 1.0}}
    full = run_retraining(GaussianLearner(), _real(), 2, workflow="replace", metrics=metrics, progress=False)
    res = run_retraining(GaussianLearner(), _real(), 2, workflow="replace", metrics=metrics, progress=False,
                         checkpoint_dir=folder)
    for p in folder.glob("*.json"):
        strict_loads(p.read_text())
    assert strict_loads((folder / "config.json").read_text())["synthetic_ratio"] == "inf"
    # the library reads them back as floats: resuming gives the same table
    resumed = run_retraining(GaussianLearner(), _real(), 2, workflow="replace", metrics=metrics, progress=False,
                             checkpoint_dir=folder)
    assert resumed.resumed_from == 2
    pd.testing.assert_frame_equal(full.table, resumed.table)
    pd.testing.assert_frame_equal(res.table, resumed.table)
    assert math.isinf(load_round(folder, 1)["rows"][0]["synthetic_ratio"])

    save_results(full.table, tmp_path, "res", {"ratio": math.inf, "arr": np.array([1.0, np.nan])},
                 extra={"summary": {"x": [-math.inf, np.float64("nan"), 2.0]}})
    side = strict_loads((tmp_path / "res.json").read_text())
    assert side["config"] == {"ratio": "inf", "arr": [1.0, "nan"]}
    back = load_sidecar(tmp_path / "res.json")
    assert back["config"]["ratio"] == math.inf and math.isnan(back["config"]["arr"][1])
    assert back["summary"]["x"][0] == -math.inf and back["summary"]["x"][2] == 2.0


def test_config_json_of_older_versions_still_matches(tmp_path):
    # older versions wrote Infinity into config.json; it must still be recognised as the same run
    folder = tmp_path / "ck"
    kw = dict(workflow="replace", seed=2, progress=False)
    run_retraining(GaussianLearner(), _real(), 1, checkpoint_dir=folder, **kw)
    cfg = folder / "config.json"
    cfg.write_text(cfg.read_text().replace('"inf"', "Infinity"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run_retraining(GaussianLearner(), _real(), 1, checkpoint_dir=folder, **kw).resumed_from == 1
