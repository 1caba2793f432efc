"""Gaussian retraining: closed forms of Bertrand et al. vs Monte Carlo chains, C++ vs numpy."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from modelcollapse.retraining import gaussian as g

Z = 4.5  # tolerance in Monte Carlo standard errors (many comparisons per test)


def _se(x, axis=0):
    return x.std(axis=axis, ddof=1) / math.sqrt(x.shape[axis])


# ---------------------------------------------------------------- closed forms

def test_alpha_matches_chi_mean_and_limits():
    ns = np.array([2, 3, 5, 10, 50, 1000])
    expected = stats.chi(ns - 1).mean() / np.sqrt(ns - 1)
    np.testing.assert_allclose(g.alpha(ns), expected, rtol=1e-12)
    a = g.alpha(ns)
    assert np.all(a < 1) and np.all(np.diff(a) > 0)
    np.testing.assert_allclose(1 - g.alpha(10_000), 1 / (4 * 10_000), rtol=1e-3)
    assert g.sqrt_det_rate(17, 1) == pytest.approx(g.alpha(17), rel=1e-13)
    with pytest.raises(ValueError, match="n"):
        g.alpha(1)


def test_alpha_ddof_against_chi_mean():
    # E sqrt(chi2_{n-1}) / sqrt(n - ddof) from scipy's chi law, independent of the Gamma formula
    ns = np.array([2, 3, 5, 10, 50, 1000])
    for ddof in (0, 1):
        np.testing.assert_allclose(g.alpha(ns, ddof=ddof), stats.chi(ns - 1).mean() / np.sqrt(ns - ddof), rtol=1e-12)
    assert g.expected_std(2.0, 5, 3, ddof=0) == pytest.approx(2.0 * (stats.chi(4).mean() / math.sqrt(5)) ** 3)
    with pytest.raises(ValueError, match="ddof"):
        g.alpha(5, ddof=2)


def test_log_moments_and_moment_ratio_match_chains():
    # E and Var of log sigma_t (psi, psi' of (n-1)/2) and E sigma^4 / (E sigma^2)^2 = (1 + 2/(n-1))^t
    n, T, C = 5, 12, 40_000
    ch = g.simulate_chains([0.0], [[1.0]], n, T, C, synthetic_ratio=math.inf, init_mean=[0.0], init_cov=[[1.0]],
                           seed=21)
    t = np.arange(1, T + 1)
    lg = np.log(ch.std()[:, 1:])
    mean, var = g.log_std_moments(n, t)
    assert np.all(np.abs(lg.mean(0) - mean) <= Z * np.sqrt(var / C))
    dev2 = (lg - lg.mean(0)) ** 2
    assert np.all(np.abs(dev2.mean(0) - var) <= Z * _se(dev2))
    # the moment ratio at small t, where its own Monte Carlo error is small
    s2 = ch.std()[:, 1:4] ** 2
    ratio = (s2 ** 2).mean(0) / s2.mean(0) ** 2
    np.testing.assert_allclose(ratio, g.std_moment_ratio(n, np.arange(1, 4)), rtol=0.08)


@pytest.mark.parametrize("workflow, ddof, chains", [("replace", 0, 120), ("accumulate", 1, 150)])
def test_replace_and_accumulate_closed_forms_match_the_loop(workflow, ddof, chains):
    from modelcollapse.retraining import GaussianLearner, run_retraining

    n, T, d = 6, 8, 3
    tr = np.empty((chains, T + 1))
    for c in range(chains):
        real = np.random.default_rng(1000 + c).standard_normal((n, d))
        res = run_retraining(GaussianLearner(ddof=ddof), real, T, workflow=workflow, metrics=(), seed=c,
                             progress=False)
        tr[c] = [np.trace(st["cov"]) / d for st in res.states]
    t = np.arange(T + 1)
    expected = g.expected_cov_factor(workflow, n, t, ddof=ddof)
    assert np.all(np.abs(tr.mean(0) - expected) <= Z * _se(tr))
    # the other estimator's curve is rejected at some round (the test has the power to see ddof)
    other = g.expected_cov_factor(workflow, n, t, ddof=1 - ddof)
    assert np.max(np.abs(tr.mean(0) - other) / _se(tr)) > Z
    if workflow == "accumulate":
        # accumulating does not collapse: the factor settles at a positive constant
        far = g.expected_cov_factor("accumulate", n, [50, 100, 200], ddof=1)
        assert far[-1] > 0.8 and abs(far[-1] - far[-2]) < 1e-3


def test_fixed_start_returns_theta0_then_fine_tunes():
    from modelcollapse.retraining import FixedStart, GaussianLearner, run_retraining

    state0 = {"mean": np.array([5.0]), "cov": np.array([[0.25]])}
    real = np.random.default_rng(0).standard_normal((50, 1))
    res = run_retraining(FixedStart(GaussianLearner(), state0), real, 2, synthetic_ratio=1.0, metrics=(), seed=1,
                         progress=False)
    np.testing.assert_array_equal(res.states[0]["mean"], state0["mean"])          # round 0 is theta_0, not the fit
    assert res.states[0] is not state0
    plain = run_retraining(GaussianLearner(), real, 2, synthetic_ratio=1.0, metrics=(), seed=1, progress=False)
    assert not np.allclose(res.states[1]["mean"], plain.states[1]["mean"])    # round 1 samples from theta_0
    other = FixedStart(GaussianLearner(), {"mean": np.array([5.0]), "cov": np.array([[0.5]])})
    assert other.config()["initial_state_digest"] != FixedStart(GaussianLearner(), state0).config()[
        "initial_state_digest"]
    with pytest.raises(TypeError, match="initial_state"):
        FixedStart(GaussianLearner(), None)
    with pytest.raises(ValueError, match="ddof"):
        GaussianLearner(ddof=2)


def test_infinite_sample_map_contracts_at_lambda_over_one_plus_lambda():
    mus, covs = np.array([1.0, -2.0]), np.array([[2.0, 0.5], [0.5, 1.0]])
    for lam in (0.25, 1.0, 3.0):
        m, c = g.iterate_mixed_map([4.0, 0.0], [[0.2, 0.0], [0.0, 5.0]], mus, covs, lam, 60)
        err_mu = np.linalg.norm(m - mus, axis=1)
        err_cov = np.linalg.norm((c - covs).reshape(61, -1), axis=1)
        rho = g.contraction_rate(lam)
        k = int(np.sum(err_mu > 1e-5))  # before rounding noise dominates
        np.testing.assert_allclose(err_mu[1:k] / err_mu[:k - 1], rho, rtol=1e-8)
        j = min(int(np.sum(err_cov > 1e-4)), 40)  # late enough that the (mu* - mu)^2 term is gone
        np.testing.assert_allclose(err_cov[j] / err_cov[j - 1], rho, rtol=1e-3)


def test_finite_sample_expected_map_tends_to_infinite_map():
    mu, cov = np.array([0.5]), np.array([[2.0]])
    mus, covs = np.array([0.0]), np.array([[1.0]])
    lam = 0.5
    inf_mu, inf_cov = g.mixed_map(mu, cov, mus, covs, lam)
    n = 10**7
    e_mu, e_cov = g.mixed_map_expected(mu, cov, mus, covs, n, int(lam * n))
    np.testing.assert_allclose(e_mu, inf_mu, rtol=1e-6)
    np.testing.assert_allclose(e_cov, inf_cov, rtol=1e-6)


def test_theorem1_bounds_the_jacobian_of_the_gaussian_map():
    # theta = (mu, Sigma) of a 1D Gaussian, well specified (eps = 0): the Jacobian of the
    # infinite-sample map at theta* has norm lam/(1+lam) <= Theorem 1's lam/(1 - lam).
    mus, covs = np.array([0.3]), np.array([[1.7]])

    def G(theta, lam):
        m, c = g.mixed_map(theta[:1], theta[1:].reshape(1, 1), mus, covs, lam)
        return np.concatenate([m, c.ravel()])

    star = np.array([0.3, 1.7])
    for lam in (0.1, 0.3, 0.45):
        h = 1e-6
        J = np.stack([(G(star + h * e, lam) - G(star - h * e, lam)) / (2 * h) for e in np.eye(2)], axis=1)
        norm = np.linalg.norm(J, 2)
        assert norm == pytest.approx(lam / (1 + lam), rel=1e-6)
        assert norm <= g.theorem1_rate(lam, alpha_curv=1.0, eps=0.0) < 1
    with pytest.raises(ValueError, match="Theorem 1"):
        g.theorem1_rate(0.6)
    assert g.theorem1_rate(0.2, alpha_curv=1.0, eps=0.1, lipschitz=1.0) == pytest.approx(0.22 / (1 - 0.22))


def test_theorem2_bound_shape():
    t = np.arange(0, 50)
    b = g.theorem2_bound(t, n=100, rho=0.5, a=1.0, initial_error=3.0)
    assert b[0] == 3.0
    plateau = g.theorem2_plateau(100, 0.5, 1.0, t=49)
    assert b[-1] == pytest.approx(plateau, rel=1e-9)
    # the plateau scales as 1/sqrt(n)
    assert g.theorem2_plateau(400, 0.5, 1.0, t=49) == pytest.approx(plateau / 2, rel=1e-12)


# ---------------------------------------------------------------- kernel vs reference

@pytest.mark.parametrize("kw", [
    dict(synthetic_ratio=math.inf),
    dict(synthetic_ratio=0.5),
    dict(real_fraction=0.5, init_mean=[3.0, 0.0], init_cov=np.eye(2) * 0.1),
    dict(synthetic_ratio=math.inf, init_mean=[0.0, 0.0], init_cov=np.eye(2)),
    dict(synthetic_ratio=0.0),
])
def test_cpp_matches_numpy_reference_same_seed(kw):
    cov = [[1.0, 0.3], [0.3, 2.0]]
    a = g.simulate_chains([0.0, 1.0], cov, 10, 15, 40, seed=5, **kw)
    b = g.simulate_chains([0.0, 1.0], cov, 10, 15, 40, seed=5, backend="numpy", **kw)
    scale = np.abs(b.covs).max()
    assert np.max(np.abs(a.covs - b.covs)) <= 1e-10 * scale
    assert np.max(np.abs(a.means - b.means)) <= 1e-10 * max(1.0, np.abs(b.means).max())


def test_cpp_matches_reference_injected_noise_and_threads():
    rng = np.random.default_rng(0)
    C, n, T, d = 30, 8, 6, 3
    m = 4
    zr = rng.standard_normal((C, n, d))
    zs = rng.standard_normal((C, T, m, d))
    kw = dict(synthetic_ratio=0.5, noise_real=zr, noise_synth=zs)
    mean, cov = np.zeros(d), np.diag([1.0, 2.0, 0.5])
    a = g.simulate_chains(mean, cov, n, T, C, threads=1, **kw)
    b = g.simulate_chains(mean, cov, n, T, C, backend="numpy", **kw)
    np.testing.assert_allclose(a.covs, b.covs, rtol=1e-10, atol=1e-14)
    # identical numbers whatever the thread count (counter-based generator)
    x1 = g.simulate_chains(mean, cov, n, T, C, synthetic_ratio=1.0, seed=3, threads=1)
    x2 = g.simulate_chains(mean, cov, n, T, C, synthetic_ratio=1.0, seed=3, threads=2)
    np.testing.assert_array_equal(x1.covs, x2.covs)


def test_singular_covariance_falls_back_to_symmetric_root():
    # d = 3 with n = 3 points: the refitted covariance has rank 2 (singular)
    a = g.simulate_chains(np.zeros(3), np.eye(3), 3, 4, 5, synthetic_ratio=math.inf, seed=1)
    b = g.simulate_chains(np.zeros(3), np.eye(3), 3, 4, 5, synthetic_ratio=math.inf, seed=1, backend="numpy")
    assert np.all(np.isfinite(a.covs))
    np.testing.assert_allclose(a.covs, b.covs, rtol=1e-8, atol=1e-12)


def test_validation():
    with pytest.raises(ValueError, match="positive definite"):
        g.simulate_chains([0.0], [[-1.0]], 10, 2, 2, synthetic_ratio=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        g.simulate_chains([0.0], [[1.0]], 10, 2, 2)
    with pytest.raises(ValueError, match="both"):
        g.simulate_chains([0.0], [[1.0]], 10, 2, 2, synthetic_ratio=1.0, init_mean=[0.0])
    with pytest.raises(ValueError, match="noise_synth"):
        g.simulate_chains([0.0], [[1.0]], 10, 2, 2, synthetic_ratio=1.0, noise_synth=np.zeros((2, 2, 3, 1)))
    with pytest.raises(ValueError, match="backend"):
        g.simulate_chains([0.0], [[1.0]], 10, 2, 2, synthetic_ratio=1.0, backend="julia")


# ---------------------------------------------------------------- Monte Carlo vs theory

def test_proposition1_expected_std_1d():
    n, T, C, sigma0 = 10, 20, 20_000, 1.5
    ch = g.simulate_chains([0.0], [[1.0]], n, T, C, synthetic_ratio=math.inf, init_mean=[0.0],
                           init_cov=[[sigma0**2]], seed=11)
    sig = ch.std()
    t = np.arange(T + 1)
    expected = g.expected_std(sigma0, n, t)
    assert np.all(np.abs(sig.mean(0) - expected) <= Z * _se(sig) + 1e-12)
    # and the variance itself is constant in expectation (unbiased estimator)
    var = sig**2
    assert np.all(np.abs(var.mean(0) - sigma0**2) <= Z * _se(var) + 1e-12)
    # the collapse is real: the mean std at T is well below sigma0 (alpha(10)^20 ~ 0.54)
    assert sig.mean(0)[-1] < 0.6 * sigma0


def test_proposition1_multivariate():
    n, T, C = 12, 10, 20_000
    cov0 = np.array([[2.0, 0.6, 0.0], [0.6, 1.0, 0.2], [0.0, 0.2, 0.5]])
    ch = g.simulate_chains(np.zeros(3), np.eye(3), n, T, C, synthetic_ratio=math.inf, init_mean=np.zeros(3),
                           init_cov=cov0, seed=12)
    # exact: E[tr Sigma_t] = tr Sigma_0
    tr = np.einsum("ctii->ct", ch.covs)
    assert np.all(np.abs(tr.mean(0) - np.trace(cov0)) <= Z * _se(tr))
    # exact: E[det(Sigma_t)^{1/2}] = kappa(n, d)^t det(Sigma_0)^{1/2}
    sd = np.sqrt(np.linalg.det(ch.covs))
    expected = g.sqrt_det_rate(n, 3) ** np.arange(T + 1) * math.sqrt(np.linalg.det(cov0))
    assert np.all(np.abs(sd.mean(0) - expected) <= Z * _se(sd) + 1e-12)
    # Proposition 1: E[Sigma_t^{1/2}] <= alpha^t Sigma_0^{1/2} in the Loewner order
    root = ch.sqrt_cov()
    for t in (1, 5, T):
        gap = g.sqrt_cov_bound(cov0, n, t) - root[:, t].mean(0)
        se = _se(root[:, t]).max()
        assert np.linalg.eigvalsh(gap).min() >= -Z * se


def test_mixed_one_round_expectation():
    n, lam, C = 20, 0.5, 40_000
    m = int(lam * n)
    mu_d, cov_d = np.array([1.0, -1.0]), np.array([[1.0, 0.4], [0.4, 0.8]])
    mu0, cov0 = np.array([3.0, 0.0]), np.array([[0.3, 0.0], [0.0, 2.0]])
    ch = g.simulate_chains(mu_d, cov_d, n, 1, C, synthetic_ratio=lam, init_mean=mu0, init_cov=cov0, seed=13)
    N = n + m
    e_mu, e_cov = g.mixed_map_expected(mu0, cov0, mu_d, cov_d, n, m)
    e_cov = e_cov + n * m / (N * (N - 1)) * cov_d / n  # averaging D D^T over the real sample's mean
    assert np.all(np.abs(ch.means[:, 1].mean(0) - e_mu) <= Z * _se(ch.means[:, 1]))
    assert np.all(np.abs(ch.covs[:, 1].mean(0) - e_cov) <= Z * _se(ch.covs[:, 1]))


def test_mixed_chains_contract_at_measured_rate():
    n, C, T = 20, 20_000, 6
    mu_d = np.array([0.0])
    for lam in (0.5, 1.0):
        ch = g.simulate_chains(mu_d, [[1.0]], n, T, C, synthetic_ratio=lam, init_mean=[4.0], init_cov=[[1.0]],
                               seed=14)
        rho = g.contraction_rate(lam)  # = m / (n + m) exactly for these n
        err = ch.means[:, :, 0] - mu_d[0]
        expected = rho ** np.arange(T + 1) * 4.0
        assert np.all(np.abs(err.mean(0) - expected) <= Z * _se(err) + 1e-12)
        measured = err.mean(0)[1] / err.mean(0)[0]
        assert measured == pytest.approx(rho, abs=Z * _se(err)[1] / 4.0)


def test_fully_synthetic_collapses_while_mixed_stays_bounded():
    n, T, C = 20, 300, 2_000
    med = {}
    for lam in (math.inf, 1.0, 0.5):
        ch = g.simulate_chains([0.0], [[1.0]], n, T, C, synthetic_ratio=lam, seed=15)
        med[lam] = np.median(ch.std()[:, -1])
    assert med[math.inf] < 0.05
    assert 0.7 < med[1.0] < 1.3 and 0.7 < med[0.5] < 1.3


def test_theorem2_plateau_scales_as_inverse_sqrt_n():
    levels = {}
    for n in (25, 100):
        ch = g.simulate_chains([0.0, 0.0], np.eye(2), n, 30, 4_000, synthetic_ratio=1.0, seed=16)
        levels[n] = ch.param_error()[:, 20:].mean()
    assert levels[25] / levels[100] == pytest.approx(2.0, rel=0.15)


def test_quick_experiment_reproduces_the_rates(tmp_path):
    from modelcollapse.experiments import get

    exp = get("retraining-gaussian")
    out = exp.run(exp.make_config("quick"), tmp_path, progress=False)
    s = out.summary
    rates = {r["lambda"]: r for r in s["contraction_rate"]}
    for lam in (0.5, 1.0, 2.0):
        r = rates[lam]
        assert r["rate fitted over rounds (first seed)"] == pytest.approx(r["theory"], rel=0.05)
    final = {r["workflow"]: r["median sigma_T (first seed's chains)"] for r in s["median_std_final"]}
    assert final["fully synthetic"] < 0.5 < final["lambda=1"]
    claims = {c.name: c for c in out.claims}
    # quick has 2 seeds: agreement claims may be underpowered, but none may fail
    assert {"rg.step_ratio_n5", "rg.mean_std_n5", "rg.log_std_slope_n5", "rg.contraction_lam1",
            "rg.plateau_exponent"} <= set(claims)
    assert all(c.verdict != "fails" for c in out.claims), [c for c in out.claims if c.verdict == "fails"]
    assert all(c.n == 2 for c in out.claims)
    t = out.table
    assert {"collapse", "contraction", "stability", "plateau"} <= set(t.panel)
    assert (tmp_path / "retraining-gaussian.parquet").exists()
    assert (tmp_path / "retraining-gaussian_claims.parquet").exists()
