"""The generic retraining loop: workflows, mixing parameters, checkpoints and exact resume."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from modelcollapse.recursion import completed_rounds, load_round, resolve_mixing, run_retraining
from modelcollapse.retraining import EmpiricalLearner, GaussianLearner, GMMLearner


def _real(n=200, d=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * [1.0, 2.0] + [1.0, -1.0]


class Interrupt(Exception):
    pass


def test_resolve_mixing():
    assert resolve_mixing("mix", synthetic_ratio=1.0) == (1.0, 0.5)
    assert resolve_mixing("mix", real_fraction=0.25) == (3.0, 0.25)
    assert resolve_mixing("mix", synthetic_ratio=math.inf) == (math.inf, 0.0)
    assert resolve_mixing("mix", real_fraction=0.0) == (math.inf, 0.0)
    assert resolve_mixing("replace") == (math.inf, 0.0)
    with pytest.raises(ValueError, match="exactly one"):
        resolve_mixing("mix")
    with pytest.raises(ValueError, match="exactly one"):
        resolve_mixing("mix", synthetic_ratio=1.0, real_fraction=0.5)
    with pytest.raises(ValueError, match="synthetic_ratio"):
        resolve_mixing("mix", synthetic_ratio=-1.0)
    with pytest.raises(ValueError, match="real_fraction"):
        resolve_mixing("mix", real_fraction=1.5)
    with pytest.raises(ValueError, match="workflow"):
        resolve_mixing("blend", synthetic_ratio=1.0)
    with pytest.raises(ValueError, match="takes no"):
        resolve_mixing("replace", synthetic_ratio=1.0)


@pytest.mark.parametrize("kw, sizes", [
    ({"workflow": "mix", "synthetic_ratio": 0.5}, [200, 300, 300, 300]),
    ({"workflow": "mix", "real_fraction": 0.5}, [200, 400, 400, 400]),
    ({"workflow": "mix", "synthetic_ratio": math.inf}, [200, 200, 200, 200]),
    ({"workflow": "replace", "n_synthetic": 50}, [200, 50, 50, 50]),
    ({"workflow": "accumulate", "n_synthetic": 100}, [200, 300, 400, 500]),
])
def test_training_set_sizes(kw, sizes):
    res = run_retraining(GaussianLearner(), _real(), 3, seed=1, progress=False, **kw)
    got = res.table[res.table.metric == "train_size"].sort_values("round").value.tolist()
    assert got == sizes
    assert set(res.table.columns) >= {"round", "metric", "value", "synthetic_ratio", "real_fraction", "seed"}


def test_round0_is_fit_on_real_data():
    real = _real()
    res = run_retraining(GaussianLearner(), real, 0, synthetic_ratio=1.0, progress=False)
    np.testing.assert_allclose(res.states[0]["mean"], real.mean(0), rtol=1e-14)
    np.testing.assert_allclose(res.states[0]["cov"], np.cov(real.T), rtol=1e-12)


def test_real_only_is_stationary():
    # lambda = 0: every round refits the same real data, so the state never moves
    res = run_retraining(GaussianLearner(), _real(), 3, synthetic_ratio=0.0, progress=False)
    for s in res.states[1:]:
        np.testing.assert_allclose(s["cov"], res.states[0]["cov"], rtol=1e-13)


def test_same_seed_same_result_and_seed_matters():
    a = run_retraining(GaussianLearner(), _real(), 4, synthetic_ratio=1.0, seed=3, progress=False)
    b = run_retraining(GaussianLearner(), _real(), 4, synthetic_ratio=1.0, seed=3, progress=False)
    c = run_retraining(GaussianLearner(), _real(), 4, synthetic_ratio=1.0, seed=4, progress=False)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not np.allclose(a.states[-1]["cov"], c.states[-1]["cov"])


@pytest.mark.parametrize("learner, kw", [
    (GaussianLearner(), {"workflow": "mix", "synthetic_ratio": 1.0}),
    (GaussianLearner(), {"workflow": "accumulate"}),
    (GMMLearner(n_components=2, max_iter=20), {"workflow": "mix", "real_fraction": 0.5}),
])
def test_resume_after_interruption_is_identical(tmp_path, learner, kw):
    real = _real()
    metrics = ("std", "w2")
    full = run_retraining(learner, real, 5, seed=7, metrics=metrics, progress=False, **kw)

    def boom(ctx):
        if ctx.round == 2:
            raise Interrupt

    ck = tmp_path / "ck"
    with pytest.raises(Interrupt):
        run_retraining(learner, real, 5, seed=7, metrics=metrics, progress=False, checkpoint_dir=ck,
                       callback=boom, **kw)
    assert completed_rounds(ck) == [0, 1, 2]  # round 2 was checkpointed before the callback
    resumed = run_retraining(learner, real, 5, seed=7, metrics=metrics, progress=False, checkpoint_dir=ck, **kw)
    assert resumed.resumed_from == 2
    pd.testing.assert_frame_equal(full.table, resumed.table)
    for s_full, s_res in zip(full.states, resumed.states):
        for key in s_full:
            np.testing.assert_array_equal(s_full[key], s_res[key])
    # the stored rounds hold the state and the round's synthetic set, as data only (no pickle)
    assert not list(ck.glob("*.pkl")) and len(list(ck.glob("round_*.npz"))) == 6
    r3 = load_round(ck, 3)
    for key in full.states[3]:
        np.testing.assert_array_equal(r3["state"][key], full.states[3][key])
    assert r3["synthetic"] is not None and r3["synthetic"].shape[1] == 2
    # extending the number of rounds continues the same run
    longer = run_retraining(learner, real, 6, seed=7, metrics=metrics, progress=False, checkpoint_dir=ck, **kw)
    assert longer.resumed_from == 5
    full6 = run_retraining(learner, real, 6, seed=7, metrics=metrics, progress=False, **kw)
    pd.testing.assert_frame_equal(full6.table, longer.table)


def test_resume_refuses_other_configuration(tmp_path):
    ck = tmp_path / "ck"
    run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=1.0, progress=False, checkpoint_dir=ck)
    with pytest.raises(ValueError, match="synthetic_ratio"):
        run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=0.5, progress=False, checkpoint_dir=ck)
    with pytest.raises(ValueError, match="real_digest"):
        run_retraining(GaussianLearner(), _real(seed=1), 1, synthetic_ratio=1.0, progress=False, checkpoint_dir=ck)
    # resume=False starts afresh in the same folder; the old run is moved aside, not deleted
    old = {p.name: p.read_bytes() for p in ck.iterdir()}
    with pytest.warns(UserWarning, match="moved its 5 files to .*stale-"):
        res = run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=0.5, progress=False, checkpoint_dir=ck,
                             resume=False)
    assert res.resumed_from == -1
    (stale,) = ck.glob("stale-*")
    assert {p.name: p.read_bytes() for p in stale.iterdir()} == old
    assert completed_rounds(ck) == [0, 1]


def test_input_validation():
    with pytest.raises(ValueError, match="NaN"):
        run_retraining(GaussianLearner(), np.array([[0.0], [np.nan]]), 1, synthetic_ratio=1.0, progress=False)
    with pytest.raises(ValueError, match="dimension"):
        run_retraining(GaussianLearner(), np.zeros(5), 1, synthetic_ratio=1.0, progress=False)
    with pytest.raises(TypeError, match="learner"):
        run_retraining(object(), _real(), 1, synthetic_ratio=1.0, progress=False)
    with pytest.raises(ValueError, match="unknown metric"):
        run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=1.0, metrics=("nope",), progress=False)
    with pytest.raises(ValueError, match="eval_data"):
        run_retraining(GaussianLearner(), _real(), 1, synthetic_ratio=1.0, eval_data=np.zeros((5, 3)),
                       progress=False)


def test_custom_metric_and_wide():
    res = run_retraining(GaussianLearner(), _real(), 2, synthetic_ratio=1.0, progress=False,
                         metrics={"var0": lambda ctx: ctx.state["cov"][0, 0], "param_distance": "param_distance"})
    w = res.wide()
    assert list(w["round"]) == [0, 1, 2]
    assert w["param_distance"].iloc[0] == 0.0 and w["param_distance"].iloc[2] > 0
    np.testing.assert_allclose(w["var0"], [s["cov"][0, 0] for s in res.states])


def test_fully_synthetic_gaussian_collapses_mixed_stays():
    # small n makes Proposition 1's collapse fast: alpha(10)^60 ~ 0.06
    real = _real(n=10, d=1, seed=2)
    fs = run_retraining(GaussianLearner(), real, 60, synthetic_ratio=math.inf, seed=0, progress=False,
                        metrics=(), keep_states=True)
    mx = run_retraining(GaussianLearner(), real, 60, synthetic_ratio=1.0, seed=0, progress=False, metrics=())
    # ratio to the round-0 fit; log-scale comparison robust to the one chain's noise
    r_fs = np.sqrt(fs.states[-1]["cov"][0, 0] / fs.states[0]["cov"][0, 0])
    r_mx = np.sqrt(mx.states[-1]["cov"][0, 0] / mx.states[0]["cov"][0, 0])
    assert r_fs < 0.5 < r_mx


def test_empirical_learner_runs():
    real = _real(n=100)
    lr = EmpiricalLearner(T=1.0, delta=0.05, steps=20)
    res = run_retraining(lr, real, 2, synthetic_ratio=1.0, seed=0, progress=False, metrics=("std",))
    assert res.states[0]["train"].shape == (100, 2)
    assert res.states[1]["train"].shape == (200, 2)
    std = res.wide()["std"].to_numpy()
    assert np.all(np.isfinite(std)) and np.all(std > 0.5)
