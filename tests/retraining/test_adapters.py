"""SklearnLearner (any estimator with fit(X) / sample(n)) in the retraining loop, and the
tidy frames of the retraining results (docs/retraining.md, section "Bring your own learner")."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import digamma, polygamma
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity

from modelcollapse.retraining import SklearnLearner, run_retraining
from modelcollapse.retraining.gaussian import simulate_chains


@pytest.fixture(autouse=True)
def _one_blas_thread():
    # tiny (2 x 2) BLAS calls: thread start-up on a loaded machine costs more than the work
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


def _real(n=40, d=2, seed=0):
    return np.random.default_rng(seed).standard_normal((n, d))


@pytest.mark.parametrize("estimator", [GaussianMixture(2, init_params="random_from_data"),
                                       KernelDensity(bandwidth=0.3)], ids=["gmm", "kde"])
def test_same_seed_same_run_other_seed_other_run(estimator):
    learner = SklearnLearner(estimator)
    kw = dict(workflow="replace", metrics=("std", "mean"), progress=False)
    a = run_retraining(learner, _real(), 3, seed=5, **kw).to_frame()
    b = run_retraining(SklearnLearner(estimator), _real(), 3, seed=5, **kw).to_frame()
    c = run_retraining(learner, _real(), 3, seed=6, **kw).to_frame()
    pd.testing.assert_frame_equal(a, b)
    later = a["round"] > 0
    assert not np.allclose(a.loc[later, "value"], c.loc[later, "value"])


@pytest.mark.parametrize("estimator", [GaussianMixture(2, init_params="random_from_data"),
                                       KernelDensity(bandwidth=0.3)], ids=["gmm", "kde"])
def test_two_draws_from_one_fitted_model_are_independent(estimator):
    # an integer random_state left on the fitted GaussianMixture would repeat the same points
    learner = SklearnLearner(estimator)
    state = learner.fit(_real(), None, np.random.default_rng(1))
    x = learner.sample(state, 50, np.random.default_rng(2))
    y = learner.sample(state, 50, np.random.default_rng(3))
    z = learner.sample(state, 50, np.random.default_rng(2))
    assert x.shape == (50, 2) and x.dtype == np.float64
    np.testing.assert_array_equal(x, z)
    assert not np.any(np.all(np.isclose(x[:, None, :], y[None, :, :]), axis=-1))


def test_gmm_state_is_data_and_resumes_exactly(tmp_path):
    kw = dict(workflow="replace", metrics=("std",), seed=3, progress=False)
    full = run_retraining(SklearnLearner(GaussianMixture(2, init_params="random_from_data")), _real(), 4, **kw)
    assert set(full.states[0]) == {"fitted", "random_state"}
    run_retraining(SklearnLearner(GaussianMixture(2, init_params="random_from_data")), _real(), 2,
                   checkpoint_dir=tmp_path, **kw)
    resumed = run_retraining(SklearnLearner(GaussianMixture(2, init_params="random_from_data")), _real(), 4,
                             checkpoint_dir=tmp_path, **kw)
    assert resumed.resumed_from == 2
    pd.testing.assert_frame_equal(resumed.to_frame(), full.to_frame())


def test_kde_state_refuses_checkpoints_in_one_line(tmp_path):
    learner = SklearnLearner(KernelDensity(bandwidth=0.3))
    with pytest.raises(TypeError) as err:
        run_retraining(learner, _real(), 1, workflow="replace", checkpoint_dir=tmp_path, progress=False)
    assert "KernelDensity" in str(err.value) and "checkpoint_dir" in str(err.value)
    assert "\n" not in str(err.value)


@pytest.mark.slow
def test_gmm_one_component_collapses_as_the_mle_gaussian_chain():
    # GaussianMixture(1) is the maximum-likelihood Gaussian: fully synthetic, each round's
    # variance is the previous one times chi2_{n-1} / n, so E[log var_t] = (t + 1) g with
    # g = digamma((n-1)/2) + log(2/n) (round 0 fits n real N(0, 1) points) and
    # Var[log var_t] = (t + 1) trigamma((n-1)/2), independent over seeds.
    n, rounds, seeds = 10, 8, 24
    logs = []
    for s in range(seeds):
        real = np.random.default_rng(100 + s).standard_normal((n, 1))
        res = run_retraining(SklearnLearner(GaussianMixture(1, init_params="random_from_data")), real, rounds,
                             workflow="replace", metrics=(), seed=s, progress=False)
        logs.append([np.log(st["fitted"]["covariances_"][0, 0, 0]) for st in res.states])
    mean = np.mean(logs, axis=0)
    t = np.arange(rounds + 1)
    g = digamma((n - 1) / 2) + np.log(2 / n)                    # -0.22 per round for n = 10
    se = np.sqrt((t + 1) * polygamma(1, (n - 1) / 2) / seeds)   # theory SE of the seed mean
    # 4 SE (per round; 9 correlated rounds): a correct adapter fails with probability < 1e-3;
    # no collapse (mean 0) is |(t+1) g| / se = 6.5 SE away at the last round.
    np.testing.assert_array_less(np.abs(mean - (t + 1) * g), 4 * se)
    assert mean[-1] < (rounds + 1) * g / 2


def test_bad_estimators_and_states_are_refused():
    with pytest.raises(TypeError, match="estimator must have fit"):
        SklearnLearner(object())
    with pytest.raises(TypeError, match="name"):
        SklearnLearner(KernelDensity(), name=3)
    learner = SklearnLearner(GaussianMixture(1))
    with pytest.raises(TypeError, match="SklearnLearner.fit"):
        learner.sample({"weights": 1}, 3, np.random.default_rng(0))
    with pytest.raises(TypeError, match="parameter_fn"):
        learner.parameter_vector(learner.fit(_real(), None, np.random.default_rng(0)))


def test_parameter_fn_gives_the_param_distance_metric():
    learner = SklearnLearner(GaussianMixture(1), parameter_fn=lambda gm: np.r_[gm.means_.ravel(), gm.covariances_.ravel()])
    res = run_retraining(learner, _real(), 2, workflow="replace", metrics=("param_distance",), progress=False)
    wide = res.wide()
    assert wide.loc[0, "param_distance"] == 0.0 and wide.loc[2, "param_distance"] > 0.0


def test_result_frames_are_tidy():
    res = run_retraining(SklearnLearner(GaussianMixture(1)), _real(), 2, synthetic_ratio=1.0, metrics=("std",),
                         progress=False)
    frame = res.to_frame()
    assert list(frame.columns[-3:]) == ["round", "metric", "value"]
    metrics = set(frame["metric"])
    assert {"train_size"} < metrics and len(frame) == 3 * len(metrics)   # one row per round x metric
    assert not frame.duplicated(["round", "metric"]).any()
    frame.loc[0, "value"] = -1.0                                # a copy: the result is unchanged
    assert res.table.loc[0, "value"] != -1.0

    chains = simulate_chains(np.zeros(2), np.eye(2), 10, 3, 2, synthetic_ratio=1.0, seed=1)
    f = chains.to_frame()
    assert len(f) == 2 * 4
    row = f[(f["chain"] == 1) & (f["round"] == 2)].iloc[0]
    assert row["cov[0,1]"] == chains.covs[1, 2, 0, 1] and row["mean[1]"] == chains.means[1, 2, 1]
    assert row["std"] == chains.std()[1, 2]
