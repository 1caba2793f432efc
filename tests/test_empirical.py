"""Smoothed empirical score: compiled vs blocked numpy vs the equivalent Gaussian mixture."""
import numpy as np
import pytest

import modelcollapse as mc


@pytest.fixture
def train():
    return np.random.default_rng(0).normal(size=(700, 2)) * [1.0, 2.0]


@pytest.mark.parametrize("t", [0.003, 0.05, 0.5, 4.0])
def test_cpp_vs_numpy_vs_mixture(train, t):
    e = mc.EmpiricalScore(train)
    y = np.random.default_rng(1).normal(size=(300, 2)) * 2
    s = e.score(y, t)
    scale = np.abs(s).max()
    np.testing.assert_allclose(s, e.score(y, t, backend="numpy"), rtol=0, atol=1e-10 * scale)
    # The same law written as an explicit isotropic mixture.
    a, s2 = np.exp(-t), -np.expm1(-2 * t)
    mix = mc.GaussianMixture(np.full(len(train), 1 / len(train)), a * train, np.full(len(train), s2))
    np.testing.assert_allclose(s, mix.score(y), rtol=0, atol=1e-9 * scale)
    np.testing.assert_allclose(e.logpdf(y, t), mix.logpdf(y), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(e.logpdf(y, t), e.logpdf(y, t, backend="numpy"), rtol=1e-11, atol=1e-11)


def test_finite_far_away_and_thread_invariant(train):
    e = mc.EmpiricalScore(train)
    y = np.array([[1e4, -1e4], [0.0, 300.0]])
    assert np.all(np.isfinite(e.score(y, 0.01)))
    z = np.random.default_rng(2).normal(size=(3000, 2))
    np.testing.assert_array_equal(e.score(z, 0.1, threads=1), e.score(z, 0.1, threads=2))


def test_smoothed_sampling_moments(train):
    e = mc.EmpiricalScore(train)
    t, n = 0.3, 100_000
    x = e.sample_smoothed(n, t, seed=4)
    a = np.exp(-t)
    assert np.all(np.abs(x.mean(0) - a * train.mean(0)) < 5 * np.sqrt(np.var(x, 0) / n))


def test_validation(train):
    e = mc.EmpiricalScore(train)
    with pytest.raises(ValueError, match="t must be > 0"):
        e.score(np.zeros((1, 2)), 0.0)
    with pytest.raises(ValueError, match="samples contains"):
        mc.EmpiricalScore(np.array([[0.0, np.nan]]))
    with pytest.raises(ValueError, match="samples must not be empty"):
        mc.EmpiricalScore(np.zeros((0, 2)))
