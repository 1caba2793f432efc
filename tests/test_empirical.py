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


def _straightforward_hp(samples, y, t):
    """log S_t p and its score by the straightforward formula (all n x m distances, exact
    maximum, log-sum-exp) in extended precision (np.longdouble: 64-bit mantissa on x86-64;
    on platforms where it is plain float64 this is the float64 formula)."""
    ld = np.longdouble
    X = samples.astype(ld)
    Y = y.astype(ld)
    tt = ld(t)
    a = np.exp(-tt)
    s2 = -np.expm1(-2 * tt)
    z = a * X
    n, d = X.shape
    D = ((Y[:, None, :] - z[None, :, :]) ** 2).sum(axis=2)
    logits = -D / (2 * s2)
    top = logits.max(axis=1, keepdims=True)
    w = np.exp(logits - top)
    S = w.sum(axis=1)
    logp = top[:, 0] + np.log(S) - np.log(ld(n)) - ld(0.5) * d * (np.log(2 * np.pi * np.ones((), ld)) + np.log(s2))
    score = ((w @ z) / S[:, None] - Y) / s2
    return logp, score


@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("t", [1e-3, 0.01, 1.0, 5.0])
def test_matches_high_precision_formula(d, t):
    """Compiled kernel (pruned, fused, fast exp) vs the straightforward formula in extended
    precision: <= 1e-12 relative, including queries far outside the data (where the first
    guess of the largest weight is far off and the pass is redone) and on training points."""
    rng = np.random.default_rng(10 + d)
    x = rng.normal(size=(500, d)) * np.linspace(1.0, 2.0, d)
    y = np.concatenate([
        rng.normal(size=(150, d)) * 1.5,                     # inside and around the data
        rng.normal(size=(30, d)) * 25.0,                     # far away
        np.exp(-t) * x[:10] + 1e-9 * rng.normal(size=(10, d)),  # on smoothed training points
        np.array([[40.0] + [-30.0] * (d - 1)]),
    ])
    e = mc.EmpiricalScore(x)
    lp_ref, s_ref = _straightforward_hp(x, y, t)
    lp = e.logpdf(y, t)
    s = e.score(y, t)
    lp_ref, s_ref = lp_ref.astype(float), s_ref.astype(float)
    np.testing.assert_array_less(np.abs(lp - lp_ref), 1e-12 * np.maximum(1.0, np.abs(lp_ref)))
    err = np.linalg.norm(s - s_ref, axis=1)
    # Near a training point the score (m(y) - y) / sigma_t^2 is a difference of terms of size
    # |y| / sigma_t^2 that cancel, and one ulp of the centres moves it by ~eps |y| / sigma_t^2
    # in any float64 evaluation: there the scale is |y| / (100 sigma_t^2) (1e-14 relative to
    # the cancelling terms); elsewhere 1e-12 relative to |score| (or absolute below 1).
    s2 = -np.expm1(-2 * t)
    scale = np.maximum.reduce([np.linalg.norm(s_ref, axis=1), np.ones(len(y)),
                               1e-2 * np.linalg.norm(y, axis=1) / s2])
    assert np.all(err <= 1e-12 * scale), (err / scale).max()
    # The score-free path gives the same log density, and threads do not change anything.
    np.testing.assert_array_equal(e.logpdf(y, t, threads=1), e.logpdf(y, t, threads=2))
    np.testing.assert_array_equal(e.score(y, t, threads=1), s)
