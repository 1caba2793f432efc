"""Gaussian mixtures: compiled vs numpy vs scipy, smoothing operator vs forward noising,
far-away points, validation."""
import numpy as np
import pytest
from scipy import stats

import modelcollapse as mc


def scipy_logpdf(p: mc.GaussianMixture, x, t=0.0):
    q = p.smooth(t)
    comps = [np.log(w) + stats.multivariate_normal(m, c).logpdf(x)
             for w, m, c in zip(q.weights, q.means, q.full_covariances())]
    return np.logaddexp.reduce(np.array(comps), axis=0)


@pytest.mark.parametrize("t", [0.0, 0.05, 0.7, 3.0])
def test_logpdf_and_score_cpp_vs_numpy_vs_scipy(any_mixture, t):
    p = any_mixture
    x = np.random.default_rng(1).normal(size=(200, p.dim)) * 2.5
    lp = p.logpdf(x, t)
    np.testing.assert_allclose(lp, p.logpdf(x, t, backend="numpy"), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lp, scipy_logpdf(p, x, t), rtol=1e-10, atol=1e-10)
    s = p.score(x, t)
    np.testing.assert_allclose(s, p.score(x, t, backend="numpy"), rtol=1e-10, atol=1e-11)


def test_score_is_gradient_of_logpdf(any_mixture):
    p = any_mixture
    x = np.random.default_rng(2).normal(size=(20, p.dim))
    h = 1e-5
    fd = np.stack([(p.logpdf(x + h * e, 0.3) - p.logpdf(x - h * e, 0.3)) / (2 * h) for e in np.eye(p.dim)], axis=1)
    np.testing.assert_allclose(p.score(x, 0.3), fd, rtol=1e-6, atol=1e-7)


def test_far_away_points_are_finite(any_mixture):
    p = any_mixture
    x = np.full((3, p.dim), 1e3) * np.array([[1], [-1], [50]])
    s, lp = p.score(x), p.logpdf(x)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(lp))
    # far from every mean the score points back towards the mixture
    assert np.all(np.sum(s * x, axis=1) < 0)
    np.testing.assert_allclose(s, p.score(x, backend="numpy"), rtol=1e-8)


def test_single_point_and_threads(mixture_full):
    x = np.random.default_rng(3).normal(size=(5000, 3))
    np.testing.assert_array_equal(mixture_full.score(x, threads=1), mixture_full.score(x, threads=2))
    assert mixture_full.score(x[0]).shape == (3,)
    assert np.ndim(mixture_full.logpdf(x[0])) == 0


def test_smooth_closed_form_semigroup_and_limit(any_mixture):
    p = any_mixture
    a, b = p.smooth(0.3).smooth(0.45), p.smooth(0.75)
    np.testing.assert_allclose(a.means, b.means, rtol=1e-13)
    np.testing.assert_allclose(a.full_covariances(), b.full_covariances(), rtol=1e-12)
    far = p.smooth(40.0)
    np.testing.assert_allclose(far.covariance(), np.eye(p.dim), atol=1e-12)


def test_smooth_matches_sampled_forward_noising_moments(any_mixture):
    p, t, n = any_mixture, 0.4, 200_000
    x = p.sample(n, seed=11)
    z = mc.random.standard_normal(12, (n, p.dim))
    xt = np.exp(-t) * x + np.sqrt(1 - np.exp(-2 * t)) * z
    q = p.smooth(t)
    cov = q.covariance()
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(xt.mean(0) - q.mean()) < 5 * se_mean)
    # SE of a covariance entry: sqrt((C_ii C_jj + C_ij^2) / n) for near-Gaussian data; x3 for the mixture's kurtosis
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n)
    assert np.all(np.abs(np.cov(xt.T) - cov) < 3 * 5 * se_cov)


def test_smooth_matches_forward_noising_ks_1d():
    p = mc.GaussianMixture([0.3, 0.7], [[-2.0], [1.5]], [0.2, 0.4])
    t, n = 0.25, 50_000
    x = p.sample(n, seed=5)[:, 0]
    xt = np.exp(-t) * x + np.sqrt(1 - np.exp(-2 * t)) * np.random.default_rng(6).normal(size=n)
    q = p.smooth(t)
    sd = np.sqrt(q.covariances)

    def cdf(v):
        return sum(w * stats.norm.cdf(v, m[0], s) for w, m, s in zip(q.weights, q.means, sd))

    assert stats.kstest(xt, cdf).pvalue > 1e-3
    # and the unsmoothed law is rejected: the test has power
    assert stats.kstest(x, cdf).pvalue < 1e-6


def test_sample_cpp_equals_numpy_twin(any_mixture):
    a = any_mixture.sample(500, seed=9, t=0.2)
    b = any_mixture.sample(500, seed=9, t=0.2, backend="numpy")
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_mix_concatenates_and_promotes(mixture_iso):
    other = mc.GaussianMixture([1.0], [[0.0, 0.0]], [[[1.0, 0.2], [0.2, 0.5]]])
    m = mixture_iso.mix(other, 0.25)
    assert m.n_components == 4 and m.cov_type == "full"
    np.testing.assert_allclose(m.weights.sum(), 1.0)
    x = np.random.default_rng(0).normal(size=(50, 2))
    np.testing.assert_allclose(m.pdf(x), 0.25 * mixture_iso.pdf(x) + 0.75 * other.pdf(x), rtol=1e-12)
    assert mixture_iso.mix(other, 1.0).n_components == 3  # zero-weight parts dropped


@pytest.mark.parametrize("kwargs,match", [
    (dict(weights=[0.5, 0.6], means=[[0, 0], [1, 1]], covariances=1.0), "weights must sum to 1"),
    (dict(weights=[1.5, -0.5], means=[[0, 0], [1, 1]], covariances=1.0), "weights must be non-negative"),
    (dict(weights=[0.5, 0.5], means=[[0, 0], [1, np.nan]], covariances=1.0), "means contains 1 NaN"),
    (dict(weights=[0.5, 0.5, 0.0], means=[[0, 0], [1, 1]], covariances=1.0), "weights has 3 entries"),
    (dict(weights=[0.5, 0.5], means=[[0, 0], [1, 1]], covariances=[1.0, -1.0]), "covariances"),
    (dict(weights=[1.0], means=[[0, 0]], covariances=[[[1.0, 2.0], [2.0, 1.0]]]), "positive definite"),
    (dict(weights=[1.0], means=[[0, 0]], covariances=[[[1.0, 0.5], [0.0, 1.0]]]), "symmetric"),
    (dict(weights=[1.0], means=[[0, 0]], covariances=np.ones((1, 3))), r"shape \(1, 2\)"),
])
def test_bad_mixtures_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mc.GaussianMixture(**kwargs)


def test_bad_evaluation_inputs_rejected(mixture_iso):
    with pytest.raises(ValueError, match="x must have 2 columns"):
        mixture_iso.score(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="x contains"):
        mixture_iso.score(np.array([[0.0, np.inf]]))
    with pytest.raises(ValueError, match="t must be >= 0"):
        mixture_iso.logpdf(np.zeros((1, 2)), t=-0.1)
    with pytest.raises(ValueError, match="backend"):
        mixture_iso.score(np.zeros((1, 2)), backend="fortran")


# ----------------------------------------------------------------------------- far points, huge sizes (issue 12)
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_far_points_give_finite_exact_values_or_a_clear_error(backend):
    p = mc.GaussianMixture([0.5, 0.5], [[-2.0, 0.0], [2.0, 0.0]], 0.3)
    x = np.array([[8.7e153, 0.0], [1.0, 1.0]])
    # Squaring 8.7e153 overflows, yet the log density (-1.26e308) and the score are finite.
    lp = p.logpdf(x, backend=backend)
    assert np.all(np.isfinite(lp))
    assert lp[0] == pytest.approx(-(8.7e153 / 2) * (8.7e153 / 0.3), rel=1e-12)
    assert lp[1] == p.logpdf(x[1:], backend=backend)[0]  # ordinary rows untouched
    s = p.score(x, backend=backend)
    assert np.all(np.isfinite(s)) and s[0, 0] == pytest.approx(-(8.7e153 - 2.0) / 0.3, rel=1e-12)
    # Beyond float64: the log density cannot be represented, so x is refused by name; the density is 0.
    with pytest.raises(ValueError, match="x row 0 is too far"):
        p.logpdf([[1e200, 0.0]], backend=backend)
    assert p.pdf([[1e200, 0.0]], backend=backend)[0] == 0.0
    with pytest.raises(ValueError, match="x row 0"):
        p.score([[1e308, 0.0]], backend=backend)


def test_far_points_of_an_empirical_score():
    e = mc.EmpiricalScore(np.random.default_rng(0).normal(size=(50, 2)))
    s = e.score([[1e200, 0.0]], 0.1, backend="numpy")
    assert np.all(np.isfinite(s)) and s[0, 0] == pytest.approx(-1e200 / -np.expm1(-0.2), rel=1e-6)
    with pytest.raises(ValueError, match="x row 0"):
        e.logpdf([[8.7e153, 0.0]], 0.1)


def test_huge_sample_sizes_are_refused_before_allocating():
    p = mc.GaussianMixture([1.0], [[0.0, 0.0]], 1.0)
    with pytest.raises(ValueError, match="n_samples too large"):
        p.sample(10**12)
    with pytest.raises(ValueError, match="n_samples too large"):
        mc.EmpiricalScore(np.zeros((3, 2))).sample_smoothed(10**12, 0.1)
    with pytest.raises(TypeError, match="data must be a mapping"):
        mc.GaussianMixture.from_dict("x")
