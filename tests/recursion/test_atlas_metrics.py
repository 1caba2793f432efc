"""The per-round metrics added for comparing remedies (w2_auto, hellinger, variance_ratio,
memorization, param_error) against values computed independently."""
from __future__ import annotations

import numpy as np
import pytest

import modelcollapse.recursion as R
from modelcollapse import metrics
from modelcollapse.retraining import EmpiricalLearner, GaussianLearner


def _ctx(samples, eval_data, train=None, real=None, backend=None, learner=None, state=None):
    return R.RoundContext(round=1, state=state, initial_state=state, samples=np.asarray(samples, float),
                          eval_data=np.asarray(eval_data, float),
                          real_data=np.asarray(eval_data if real is None else real, float),
                          train_data=np.asarray(eval_data if train is None else train, float),
                          learner=learner, rng=np.random.default_rng(0),
                          metric_backend=backend or R.MetricBackend())


def test_w2_auto_switches_to_sliced_above_exact_max_points():
    # kills a reversed or off-by-one switch
    backend = R.MetricBackend(wasserstein=lambda x, y, p: 1.0, sliced_wasserstein=lambda x, y, p: 2.0,
                              exact_max_points=10)
    x = np.zeros((11, 2))
    assert R.metric_w2_auto(_ctx(x[:10], x[:10], backend=backend)) == 1.0
    assert R.metric_w2_auto(_ctx(x, x, backend=backend)) == 2.0
    # the default sliced distance is modelcollapse.metrics' (W2, not W2^2)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + [2.0, 0.0]
    assert R.MetricBackend().sliced_wasserstein(a, b, 2) == pytest.approx(
        metrics.wasserstein(a, b, 2, method="sliced", n_projections=200, seed=0), rel=1e-12)
    with pytest.raises(ValueError, match="exact_max_points"):
        R.MetricBackend(exact_max_points=1)


def test_hellinger_metric_is_the_kde_hellinger_and_refuses_d_above_2():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(200, 1)), rng.normal(0.5, 1.0, size=(200, 1))
    assert R.metric_hellinger(_ctx(a, b)) == pytest.approx(metrics.hellinger(b, a), rel=1e-12)
    with pytest.raises(ValueError, match="d <= 2"):
        R.metric_hellinger(_ctx(np.zeros((5, 3)), np.zeros((5, 3))))


def test_variance_ratio():
    # tr Cov(samples) / tr Cov(eval), both ddof = 1 (kills a ratio of standard deviations)
    rng = np.random.default_rng(2)
    ev = rng.normal(size=(500, 2))
    assert R.metric_variance_ratio(_ctx(3.0 * ev, ev)) == pytest.approx(9.0, rel=1e-12)
    s = rng.normal(size=(300, 2))
    expected = np.trace(np.cov(s.T)) / np.trace(np.cov(ev.T))
    assert R.metric_variance_ratio(_ctx(s, ev)) == pytest.approx(expected, rel=1e-12)


def test_memorization_threshold_and_fraction():
    # real data in pairs {3k, 3k + 1}: nearest-neighbour distance 1 (second neighbour 2), threshold 1/3;
    # samples 0.3 from a training point count, 0.4 away do not (kills a threshold from the
    # second neighbour, a different kappa, or distances to the real data instead of the training set)
    real = np.sort(np.concatenate([3.0 * np.arange(5), 3.0 * np.arange(5) + 1]))[:, None]
    train = real + 100.0
    samples = np.concatenate([train[:6] + 0.3, train[6:] + 0.4])
    out = R.metric_memorization(_ctx(samples, real, train=train, real=real))
    assert out["memorization_threshold"] == pytest.approx(1 / 3)
    assert out["memorization"] == pytest.approx(0.6)
    frac, thr = R.memorization_fraction(samples, train, real, kappa=0.5)
    assert (frac, thr) == (pytest.approx(1.0), pytest.approx(0.5))
    with pytest.raises(ValueError, match="kappa"):
        R.memorization_fraction(samples, train, real, kappa=0.0)


def test_memorization_baseline_does_not_depend_on_the_training_set_size():
    # fresh Gaussian samples against a training set of the same law: 200 points, or 10 times
    # as many (accumulate's pool after 9 rounds). With the threshold rescaled by
    # (n_ref / n_train)^(1/d) both fractions sit at the baseline 1 - exp(-ln 2 / 9) ~ 0.074;
    # with the real data's spacing alone the large set gives ~0.54 (kills the rescaling dropped)
    rng = np.random.default_rng(5)
    small, large = [], []
    for _ in range(5):
        ref = rng.standard_normal((200, 2))
        samples = rng.standard_normal((2000, 2))
        small.append(R.memorization_fraction(samples, rng.standard_normal((200, 2)), ref)[0])
        large.append(R.memorization_fraction(samples, rng.standard_normal((2000, 2)), ref)[0])
    diff = np.array(large) - np.array(small)
    se = diff.std(ddof=1) / np.sqrt(len(diff))
    assert abs(diff.mean()) < max(4 * se, 0.01), (small, large)
    assert 0.05 < np.mean(small) < 0.12


def test_memorization_separates_a_memorising_learner_from_a_generalising_one():
    # the empirical learner at small delta reproduces (smoothed copies of) its training points;
    # a Gaussian fit does not. Baseline of a generalising model ~0.08 in d = 2 (docs); smoothing
    # sqrt(2 delta) = 0.0045 is well below the threshold (~0.05 for 150 points)
    real = np.random.default_rng(3).normal(size=(150, 2))
    emp = R.run_retraining(EmpiricalLearner(delta=1e-5, steps=200, grid="log", threads=1), real, 0,
                           synthetic_ratio=1.0, metrics=("memorization",), progress=False)
    gau = R.run_retraining(GaussianLearner(), real, 0, synthetic_ratio=1.0, metrics=("memorization",),
                           progress=False)
    m_emp = emp.table.query("metric == 'memorization'").value.iloc[0]
    m_gau = gau.table.query("metric == 'memorization'").value.iloc[0]
    assert m_emp > 0.9
    assert m_gau < 0.3


def test_param_error_against_a_reference_state():
    g = GaussianLearner()
    ref = {"mean": np.zeros(2), "cov": np.eye(2)}
    st = {"mean": np.array([3.0, 4.0]), "cov": np.eye(2)}
    metric = R.param_error(ref)
    assert metric(_ctx(np.zeros((3, 2)), np.zeros((3, 2)), learner=g, state=st)) == pytest.approx(5.0 / np.sqrt(6))
    with pytest.raises(TypeError, match="reference_state"):
        R.param_error(None)
    with pytest.raises(ValueError, match="parameters"):
        R.param_error({"mean": np.zeros(1), "cov": np.eye(1)})(_ctx(np.zeros((3, 2)), np.zeros((3, 2)), learner=g,
                                                                    state=st))


def test_new_metrics_are_registered():
    for name in ("w2_auto", "hellinger", "variance_ratio", "memorization"):
        assert R.get_metric(name) is R.METRICS[name]
