"""Guards for the smoothed empirical law that the other tests leave open (found by the
mutation check, .ci/mutate.py): the spread of its samples, not only their mean."""
from __future__ import annotations

import numpy as np
import pytest

import modelcollapse as mc


def test_smoothed_samples_have_the_smoothed_law():
    """Samples of S_t(1/n sum_i delta_{x_i}) = (1/n) sum_i N(e^-t x_i, sigma_t^2 I),
    sigma_t^2 = 1 - e^{-2t} (docs/foundation.md, "Empirical (KDE) score").

    1. Same streams as GaussianMixture.sample (documented): the mixture of the training points
       with a negligible variance (1e-12), sampled at time t with the same seed, gives the same
       points up to that variance (measured difference 2e-12; tolerance 1e-9).
    2. Per-coordinate variance e^{-2t} var(x) + sigma_t^2 within 5 standard errors
       (SE = var sqrt(2/(n-1)), Gaussian-like fourth moment) for n = 100 000 draws: a noise
       variance of 1 - e^{-t} instead moves it by 0.19, 16 to 43 SE.
    """
    train = np.random.default_rng(0).normal(size=(700, 2)) * [1.0, 2.0]
    e = mc.EmpiricalScore(train)
    t, n = 0.3, 100_000
    x = e.sample_smoothed(n, t, seed=4)
    mix = mc.GaussianMixture(np.full(len(train), 1 / len(train)), train, np.full(len(train), 1e-12))
    np.testing.assert_allclose(x[:5000], mix.sample(5000, seed=4, t=t), rtol=0, atol=1e-9)
    expected = np.exp(-2 * t) * train.var(axis=0) + -np.expm1(-2 * t)
    se = expected * np.sqrt(2.0 / (n - 1))
    assert np.all(np.abs(x.var(axis=0, ddof=1) - expected) < 5 * se)


@pytest.mark.parametrize("d", [1, 3])
def test_compiled_score_in_other_dimensions_matches_the_mixture(d):
    """The compiled kernel has a fast path for d = 2 (what test_empirical.py checks) and a
    general one for every other d, which the mutation check found untested (a logit factor
    -1/sigma_t^2 instead of -1/(2 sigma_t^2) there went unnoticed). Here the general path
    against the numpy twin and the explicit isotropic mixture, same tolerances as the d = 2 test."""
    train = np.random.default_rng(0).normal(size=(400, d)) * np.linspace(1.0, 2.0, d)
    e = mc.EmpiricalScore(train)
    y = np.random.default_rng(1).normal(size=(200, d)) * 2
    for t in (0.05, 0.5):
        s = e.score(y, t)
        scale = np.abs(s).max()
        np.testing.assert_allclose(s, e.score(y, t, backend="numpy"), rtol=0, atol=1e-10 * scale)
        a, s2 = np.exp(-t), -np.expm1(-2 * t)
        mix = mc.GaussianMixture(np.full(len(train), 1 / len(train)), a * train, np.full(len(train), s2))
        np.testing.assert_allclose(s, mix.score(y), rtol=0, atol=1e-9 * scale)
        np.testing.assert_allclose(e.logpdf(y, t), mix.logpdf(y), rtol=1e-11, atol=1e-11)
