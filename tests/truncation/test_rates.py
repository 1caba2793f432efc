"""Sharp rates vs bounds, annealed-bias asymptotics, unbiased Hermite energies, and the
SmoothedLaw fixes (docs/truncation.md, sections "Rates: bounds and sharp rates",
"Annealing: how fast the bias vanishes", "A5: digits")."""
import math
import time

import numpy as np
import pytest

import modelcollapse as mc
from modelcollapse import hermite as hm
from modelcollapse import truncation as tr
from modelcollapse.experiments.truncation import fit_rate


def _p1():
    return mc.GaussianMixture([0.35, 0.65], [[-2.0], [1.5]], [0.1, 0.2])


def _symmetric():
    """Mean 0, variance 1 (0.8^2 + 0.36), symmetric: c_1 = c_2 = c_3 = 0, so n0 = 4."""
    return mc.GaussianMixture([0.5, 0.5], [[-0.8], [0.8]], [0.36, 0.36])


def _ratios(p, a, delta, K, metric):
    ex = tr.exact_recursion(p, K, a, delta)
    lim = tr.limit_law(p, a, delta, tol=1e-14)[0].to_mixture()
    if metric == "tv":
        d = [tr.grid_distances(ex.output_mixture(k), lim, lim=10.0, n=8001)["tv"] for k in range(K + 1)]
    else:
        d = [tr.w2_1d_laws(ex.output_mixture(k), lim) for k in range(K + 1)]
    d = np.array(d)
    return d[1:] / d[:-1]


@pytest.mark.parametrize("law,a,delta,n0,metric", [(_symmetric, 0.5, 0.3, 4, "tv"), (_p1, 0.5, 0.5, 1, "w2"),
                                                   (_p1, 0.0, 0.5, 1, "tv")])
def test_measured_asymptotic_rate_is_the_sharp_rate(law, a, delta, n0, metric):
    # Kills: delta -> 2 delta in the rate, n0 fixed at 1 (or off by one), (1-a) -> sqrt(1-a),
    # the bound returned as the rate. The measured ratio comes from distances of exact laws.
    r = tr.asymptotic_rate(law(), a, delta)
    assert r.lowest_degree == n0
    ratio = _ratios(law(), a, delta, 9, metric)[-2:].mean()
    # next mode's correction at k = 8: e^{-delta k} <= e^{-2.4} ~ 0.09 of the gap e^{-delta}: < 2% here
    assert ratio == pytest.approx(r.rate, rel=0.02)
    assert r.rate < min(r.bound_tv, r.bound_w2) * 0.99 or a == 0.0  # strictly sharper than the bounds
    assert r.bound_w2 == pytest.approx(tr.contraction_factor(a, delta))


def test_asymptotic_rate_refuses_a_gaussian_and_bad_input():
    with pytest.raises(ValueError, match="N\\(0, I\\)"):
        tr.asymptotic_rate(mc.GaussianMixture([1.0], [[0.0]], [1.0]), 0.5, 0.1)
    with pytest.raises(ValueError, match="real_fraction"):
        tr.asymptotic_rate(_p1(), 1.5, 0.1)
    with pytest.raises(TypeError, match="data_law"):
        tr.asymptotic_rate(np.zeros(3), 0.5, 0.1)


def test_fit_rate_recovers_a_geometric_sequence_and_skips_the_floor():
    k = np.arange(30)
    v = 3.0 * 0.7 ** k * (1 + 0.3 * 0.5 ** k)   # a transient that dies out
    v[v < 1e-9] = 0.0                            # below the floor: not fitted
    rate, lo, hi, n = fit_rate(k, v)
    assert rate == pytest.approx(0.7, rel=1e-4) and lo <= rate <= hi and 3 <= n < 30


@pytest.mark.parametrize("a,beta", [(0.3, 0.5), (0.5, 1.0)])
def test_polynomial_annealing_bias_is_n_delta_over_a(a, beta):
    # Linearised: b_k = n delta_k + (1-a) b_{k-1} -> b_K ~ n delta_K / a. Kills: a <-> 1-a in
    # bias_factors' recurrence, a dropped factor n.
    K, n = 2000, np.arange(1, 6)
    s = tr.Schedule.polynomial(0.05, beta)
    b = 1 - tr.bias_factors(n, K, a, s)[-1]
    # first-order corrections: the quasi-static 1 - H_n(delta_K) = (n delta_K / a)(1 - n delta_K (1/2 + (1-a)/a)
    # + ...) and the schedule's change per round, (1-a) beta / (a (K+1)); twice their sum
    tol = 2 * (n * s(K) * (0.5 + (1 - a) / a) + (1 - a) * beta / (a * (K + 1)))
    np.testing.assert_array_less(np.abs(b / (n * s(K) / a) - 1), tol)


@pytest.mark.parametrize("gamma,a", [(0.9, 0.3), (0.5, 0.2)])
def test_geometric_annealing_bias_rate_is_max_gamma_one_minus_a(gamma, a):
    K = 300
    b = 1 - tr.bias_factors([1], K, a, tr.Schedule.geometric(0.05, gamma))[:, 0]
    rate, lo, hi, _ = fit_rate(np.arange(K + 1), b)
    target = max(gamma, 1 - a)
    assert rate == pytest.approx(target, abs=abs(gamma - (1 - a)) / 4)


def test_hermite_factor_degree_zero_is_one_for_scalars_too():
    # a = 0 limit (S_inf p): e^{-0 * inf} is NaN; degree 0 is the mass, 1. Kills the scalar path's 0.0.
    lim, _ = tr.limit_law(_p1(), 0.0, 0.1)
    assert lim.hermite_factor(0) == 1.0
    assert isinstance(lim.hermite_factor(0), float)
    law = tr.SmoothedLaw(_p1(), np.array([0.25, 0.75]), np.array([0.3, np.inf]))
    np.testing.assert_allclose([law.hermite_factor(n) for n in range(4)], law.hermite_factor(np.arange(4)))
    np.testing.assert_allclose(law.hermite_factor(np.arange(4)), [1.0, 0.25 * math.exp(-0.3),
                                                                  0.25 * math.exp(-0.6), 0.25 * math.exp(-0.9)])


def test_to_mixture_is_the_law_and_linear_in_the_number_of_terms():
    p = mc.GaussianMixture([0.4, 0.6], [[0.0, 1.0], [1.0, 2.0]], [[[1.0, 0.3], [0.3, 0.5]], [[0.2, 0.0], [0.0, 0.4]]])
    law = tr.SmoothedLaw(p, np.array([0.2, 0.0, 0.3, 0.5]), np.array([0.0, 0.1, 0.5, np.inf]))
    x = np.random.default_rng(0).normal(size=(40, 2))
    direct = 0.2 * p.pdf(x) + 0.3 * p.smooth(0.5).pdf(x) + 0.5 * mc.GaussianMixture([1.0], [[0.0, 0.0]], 1.0).pdf(x)
    np.testing.assert_allclose(law.to_mixture().pdf(x), direct, rtol=1e-12)
    # J ~ 27 600 smoothings: the pairwise-mix construction was O(J^2) (minutes); one pass is ms.
    lim, _ = tr.limit_law(_p1(), 0.0005, 0.05, tol=1e-6)
    t0 = time.perf_counter()
    m = lim.to_mixture()
    assert time.perf_counter() - t0 < 3.0
    assert m.n_components == 2 * len(lim.times)


def test_unbiased_energies_are_unbiased_and_the_plugin_is_not():
    # N(m, 1) in 1-D: E_n = m^{2n} / n!. n = 2 samples per estimate (degree 1: U = x1 x2), 3 000 estimates.
    # Kills: the se^2 subtraction dropped (plug-in, bias Var/n) and se^2 from a ddof-0 variance.
    m, n, reps = 0.5, 2, 3_000
    x = np.random.default_rng(1).normal(m, 1.0, size=(reps, n))
    moms = [hm.hermite_moments(xi, 2, std_errors=True, threads=1) for xi in x]
    est = np.array([mo.energies(unbiased=True) for mo in moms])
    plug = np.array([mo.energies() for mo in moms])
    truth = np.array([1.0, m ** 2, m ** 4 / 2])
    se = est.std(0, ddof=1) / math.sqrt(reps)
    assert np.all(np.abs(est.mean(0) - truth)[1:] < 4 * se[1:])
    assert np.all(np.abs(plug.mean(0) - truth)[1:] > 10 * se[1:])
    floor = hm.hermite_moments(x[0], 2, std_errors=True).noise_floor()
    mom = hm.hermite_moments(x[0], 2, std_errors=True)
    np.testing.assert_allclose(mom.energies() - mom.energies(unbiased=True), floor, atol=1e-15)
    with pytest.raises(ValueError, match="std_errors"):
        hm.hermite_moments(x[0], 2).energies(unbiased=True)


@pytest.mark.parametrize("a", [0.0, 0.5])
def test_a5_finite_sample_prediction_matches_exact_sampling(a):
    # The empirical-score recursion with exact sampling (no sampler error): E[U-energy of round 1]
    # = B^2 (E_n(p) + s_n(p)/N) + V_1 (docs/truncation.md, section "A5: digits"). Kills: dropping
    # the real set's s_n(p)/N (both a), dropping V_K (a = 0). Not killed: (1-a) for (1-a)^2 in V
    # (at a = 0.5 the difference is below this test's noise).
    from modelcollapse.experiments.truncation import A5_DELTA, _a5_prediction

    rng = np.random.default_rng(5)
    z = mc.GaussianMixture([0.5, 0.3, 0.2], [[-0.8, 0.0], [0.9, 0.6], [0.6, -1.0]], 0.3).sample(200, seed=rng)
    N, D, d = len(z), 4, A5_DELTA
    p = mc.GaussianMixture(np.full(N, 1.0 / N), z, np.full(N, 1e-3))
    e_p = hm.mixture_moments(p, D).energies()
    s_p = hm.hermite_moments(z, D, std_errors=True).noise_floor() * N
    meas, pred = [], []
    for r in range(120):
        R = p.sample(N, seed=r)
        X0 = mc.EmpiricalScore(R).sample_smoothed(N, d, seed=10_000 + r)
        Y0 = mc.EmpiricalScore(R).sample_smoothed(N, d, seed=20_000 + r)
        X1 = mc.EmpiricalScore(Y0 if a == 0 else np.concatenate([R, Y0])).sample_smoothed(N, d, seed=30_000 + r)
        s0 = hm.hermite_moments(X0, D, std_errors=True).noise_floor() * N
        meas.append(hm.hermite_moments(X1, D, std_errors=True, threads=1).energies(unbiased=True)[1:].sum())
        pred.append(_a5_prediction(e_p, s_p, [s0], N, a, 1)[1][1:].sum())
    meas, pred = np.array(meas), np.array(pred)
    se = meas.std(ddof=1) / math.sqrt(len(meas))
    assert abs(meas.mean() - pred.mean()) < 3 * se
    ideal = _a5_prediction(e_p, s_p, [0 * s_p], N, a, 1)[0][1:].sum()   # N = inf: no finite-sample terms
    assert meas.mean() - ideal > 3 * se
