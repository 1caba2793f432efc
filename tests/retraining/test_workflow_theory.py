"""Exact Gaussian error curves of every workflow (retraining/_gaussian_workflows.py) against
simulation, with confidence intervals.

Two simulations: (1) the retraining loop itself (``run_retraining`` with ``GaussianLearner``
in d = 12 with Sigma* = I, few seeds: the loop's workflows and the curves agree to ~25 %);
(2) 20 000 independent 1-D chains simulated here in numpy, written from the workflows'
definitions (not from the formulas), small n = 6 so that the O(t/n) finite-sample terms are
large: the curves agree to ~4 %. Tolerance: 4.5 standard errors of the mean over seeds /
chains (independent), so a correct formula fails with probability < 1e-4 per comparison.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from modelcollapse.recursion import run_retraining
from modelcollapse.retraining import (
    FixedStart,
    GaussianLearner,
    accumulate_mean_error_bound,
    mix_mean_contraction,
    stationary_error,
    workflow_curves,
)

D = 12
N = 16
SEEDS = 32
ROUNDS = 8


def _sampler(n, seed):
    return np.random.default_rng(seed).standard_normal((n, D))


def _simulate(workflow, ddof=1, **kw):
    """(seeds, rounds + 1) arrays of ||mu_t||^2 / d and tr Sigma_t / d (mu* = 0, Sigma* = I);
    every seed draws its own real data."""
    err, cov = [], []
    for s in range(SEEDS):
        res = run_retraining(GaussianLearner(ddof=ddof), _sampler, ROUNDS, workflow=workflow, n_real=N, seed=s,
                             metrics=(), progress=False, **kw)
        err.append([float(st["mean"] @ st["mean"]) / D for st in res.states])
        cov.append([float(np.trace(st["cov"])) / D for st in res.states])
    return np.array(err), np.array(cov)


def _assert_within(sim, theory, what):
    mean = sim.mean(axis=0)
    se = sim.std(axis=0, ddof=1) / math.sqrt(len(sim))
    z = np.abs(mean - theory) / se
    assert np.all(z < 4.5), f"{what}: simulation {mean} vs theory {theory}, |z| = {z}"


@pytest.mark.parametrize("workflow, ddof, kw", [
    ("replace", 0, {}),                             # random walk of the mean, decaying covariance
    ("accumulate", 1, {"n_synthetic": N}),          # bounded error
    ("mix", 1, {"synthetic_ratio": 1.5}),           # contraction lambda / (1 + lambda)
    ("fresh", 1, {"synthetic_ratio": 1.0}),         # stationary error of the fresh data loop
    ("accumulate-subsample", 1, {"train_budget": 12}),  # the pool's fit, subsampled
])
def test_workflow_curves_match_the_loop(workflow, ddof, kw):
    # kills: replace's random-walk increment c/m dropped or ddof ignored; accumulate's
    # increment m c / N_t (not N_t^2); mix's rho^2 or its D D^T term; fresh's n / N^2 term
    err, cov = _simulate(workflow, ddof=ddof, **kw)
    theory = workflow_curves(workflow, N, ROUNDS, ddof=ddof, **kw)
    _assert_within(err, theory.mean_sq_error, f"{workflow} E||mu_t - mu*||^2 / tr Sigma*")
    _assert_within(cov, theory.cov_factor, f"{workflow} E tr Sigma_t / tr Sigma*")


def _chains(workflow, n, rounds, *, m=None, lam=0.0, ddof=1, tau=1.0, corr=(0.0, 1), budget=None, chains=20_000,
            seed=0):
    """(chains, rounds + 1) arrays of mu_t^2 and sigma_t^2, 1-D, data law N(0, 1)."""
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((chains, n))
    mu, var = real.mean(1), real.var(1, ddof=ddof)
    if m is None:
        m = n if workflow in ("replace", "accumulate", "accumulate-subsample") else int(math.floor(lam * n + 1e-9))
    pool = real
    out_e, out_c = [mu ** 2], [var]
    for _ in range(rounds):
        y = mu[:, None] + np.sqrt(tau * var)[:, None] * rng.standard_normal((chains, m))
        h = corr[0] / corr[1]
        for _ in range(corr[1] if corr[0] > 0 else 0):   # ULA with the true score -y
            y = y - h * y + np.sqrt(2 * h) * rng.standard_normal(y.shape)
        if workflow == "replace":
            train = y
        elif workflow == "accumulate":
            pool = train = np.concatenate([pool, y], axis=1)
        elif workflow == "accumulate-subsample":   # B of the pool, without replacement, per chain
            pool = np.concatenate([pool, y], axis=1)
            pick = np.argsort(rng.random(pool.shape), axis=1)[:, :(n if budget is None else budget)]
            train = np.take_along_axis(pool, pick, axis=1)
        elif workflow == "mix":
            train = np.concatenate([real, y], axis=1)
        else:   # fresh
            train = np.concatenate([rng.standard_normal((chains, n)), y], axis=1)
        mu, var = train.mean(1), train.var(1, ddof=ddof)
        out_e.append(mu ** 2)
        out_c.append(var)
    return np.array(out_e).T, np.array(out_c).T


@pytest.mark.parametrize("workflow, ddof, kw", [
    ("replace", 0, {"n_synthetic": 5}),
    ("replace", 1, {"temperature": 0.8}),
    ("accumulate", 1, {"n_synthetic": 3}),
    ("accumulate", 0, {"temperature": 0.7}),
    ("mix", 1, {"synthetic_ratio": 2.0}),
    ("mix", 0, {"synthetic_ratio": 0.5, "temperature": 0.6}),
    ("fresh", 1, {"synthetic_ratio": 1.0}),
    ("fresh", 0, {"synthetic_ratio": 3.0, "temperature": 0.5}),
    ("replace", 1, {"correction_strength": 0.6, "correction_steps": 3}),
    ("accumulate", 1, {"correction_strength": 0.3, "correction_steps": 2, "temperature": 0.8}),
    ("fresh", 0, {"synthetic_ratio": 2.0, "correction_strength": 1.0, "correction_steps": 4}),
    ("accumulate-subsample", 1, {}),
    ("accumulate-subsample", 0, {"n_synthetic": 3, "train_budget": 4, "temperature": 0.7}),
    ("accumulate-subsample", 1, {"n_synthetic": 9, "train_budget": 12, "correction_strength": 0.3,
                                 "correction_steps": 2}),
])
def test_workflow_curves_match_many_small_chains(workflow, ddof, kw):
    # n = 6: the finite-sample terms (ddof, c_t's decay, the D D^T and n/N^2 terms, the
    # temperature) are 10-50 % effects here, well above the 4.5-SE tolerance of ~4 %
    n, rounds = 6, 10
    m = kw.get("n_synthetic")
    e, c = _chains(workflow, n, rounds, m=m, lam=kw.get("synthetic_ratio", 0.0), ddof=ddof,
                   tau=kw.get("temperature", 1.0),
                   corr=(kw.get("correction_strength", 0.0), kw.get("correction_steps", 1)),
                   budget=kw.get("train_budget"))
    theory = workflow_curves(workflow, n, rounds, ddof=ddof, **kw)
    _assert_within(e, theory.mean_sq_error, f"{workflow} ddof={ddof} E mu_t^2")
    _assert_within(c, theory.cov_factor, f"{workflow} ddof={ddof} E sigma_t^2")


@pytest.mark.parametrize("ddof, m", [(1, None), (0, 4)])
def test_accumulate_covariance_is_expected_cov_factor(ddof, m):
    # the accumulate covariance recursion here and gaussian.expected_cov_factor (derived and
    # tested separately) agree
    from modelcollapse.retraining.gaussian import expected_cov_factor

    curve = workflow_curves("accumulate", 7, 30, n_synthetic=m, ddof=ddof).cov_factor
    np.testing.assert_allclose(curve, expected_cov_factor("accumulate", 7, np.arange(31), n_synthetic=m, ddof=ddof),
                               rtol=1e-12)


def test_sampling_bias_in_the_loop_matches_the_tempered_curves():
    # GaussianLearner samples N(mu, tau Sigma) under SamplingBias(tau): the loop against the curves
    from modelcollapse.recursion import SamplingBias

    err, cov = _simulate("replace", remedies=SamplingBias(temperature=0.7))
    theory = workflow_curves("replace", N, ROUNDS, temperature=0.7)
    _assert_within(err, theory.mean_sq_error, "replace tau=0.7 E||mu_t - mu*||^2 / tr Sigma*")
    _assert_within(cov, theory.cov_factor, "replace tau=0.7 E tr Sigma_t / tr Sigma*")


def test_self_correction_in_the_loop_matches_the_corrected_curves():
    # SelfCorrection with the true law N(0, I) (isotropic, sigma*^2 = 1) under replace: the
    # mean's random walk is pulled back (g = (1 - s/k)^k per round), the error settles
    from modelcollapse.mixture import GaussianMixture
    from modelcollapse.recursion import SelfCorrection

    law = GaussianMixture([1.0], np.zeros((1, D)), np.eye(D)[None])
    err, cov = _simulate("replace", remedies=SelfCorrection(law, strength=0.5, steps=5))
    theory = workflow_curves("replace", N, ROUNDS, correction_strength=0.5, correction_steps=5)
    _assert_within(err, theory.mean_sq_error, "replace corrected E||mu_t - mu*||^2 / tr Sigma*")
    _assert_within(cov, theory.cov_factor, "replace corrected E tr Sigma_t / tr Sigma*")


def test_replace_grows_and_accumulate_stays_below_the_pi2_over_6_bound():
    # the statements the atlas shows: replace e_t = (1 + t)/n exactly (ddof = 1, m = n);
    # accumulate e_t <= (pi^2/6)/n for every t, and it approaches sum_{k <= t+1} 1/k^2 / n as
    # c_t -> 1 (large n), so the bound is the right constant, not a loose one
    n, T = 10, 50
    rep = workflow_curves("replace", n, T)
    np.testing.assert_allclose(rep.mean_sq_error, (1 + np.arange(T + 1)) / n, rtol=1e-12)
    acc = workflow_curves("accumulate", n, 10_000)
    assert acc.mean_sq_error.max() < accumulate_mean_error_bound(n)
    big = workflow_curves("accumulate", 10_000, 200).mean_sq_error * 10_000
    basel = np.cumsum(1.0 / np.arange(1, 202) ** 2)
    np.testing.assert_allclose(big, basel, rtol=2e-3)


def test_stationary_error_is_the_limit_of_the_curves():
    # kills a wrong coefficient in the fixed-point system
    for wf, lam, tau in (("fresh", 1.0, 1.0), ("fresh", 0.5, 0.6), ("mix", 2.0, 1.0), ("mix", 1.0, 0.5)):
        curve = workflow_curves(wf, 12, 400, synthetic_ratio=lam, temperature=tau)
        e_inf, c_inf = stationary_error(wf, 12, lam, temperature=tau)
        assert curve.mean_sq_error[-1] == pytest.approx(e_inf, rel=1e-10)
        assert curve.cov_factor[-1] == pytest.approx(c_inf, rel=1e-10)
    # fresh data alone: the error of one fit, every round
    e, c = stationary_error("fresh", 12, 0.0)
    assert (e, c) == (pytest.approx(1 / 12), pytest.approx(1.0))


def test_mix_contracts_the_mean_deviation_at_lambda_over_one_plus_lambda():
    # E[mu_t - m_r] = rho^t (mu_0 - m_r), rho = m/(n+m) = lambda/(1+lambda) for integer lambda n;
    # theta_0 is put off the real mean with FixedStart; the real data are the same for every seed
    real = _sampler(20, 123)
    m_r = real.mean(0)
    offset = np.full(D, 3.0)
    theta0 = {"mean": m_r + offset, "cov": np.eye(D)}
    lam, rounds, seeds = 1.0, 5, 24
    dev = []
    for s in range(seeds):
        res = run_retraining(FixedStart(GaussianLearner(), theta0), real, rounds, synthetic_ratio=lam, seed=s,
                             metrics=(), progress=False)
        dev.append([float((st["mean"] - m_r) @ offset) / float(offset @ offset) for st in res.states])
    dev = np.array(dev)
    rho = mix_mean_contraction(20, lam)
    assert rho == pytest.approx(lam / (1 + lam))
    _assert_within(dev[:, 1:], rho ** np.arange(1, rounds + 1), "mix E[mu_t - m_r] / (mu_0 - m_r)")


@pytest.mark.parametrize("call, match", [
    (lambda: workflow_curves("subsample", 10, 3), "workflow"),
    (lambda: workflow_curves("accumulate", 10, 3, train_budget=5), "train_budget"),
    (lambda: workflow_curves("accumulate-subsample", 10, 3, train_budget=21), "train_budget"),
    (lambda: workflow_curves("mix", 10, 3), "synthetic_ratio"),
    (lambda: workflow_curves("replace", 10, 3, synthetic_ratio=1.0), "synthetic_ratio"),
    (lambda: workflow_curves("fresh", 10, 3, n_synthetic=5), "n_synthetic"),
    (lambda: workflow_curves("replace", 1, 3), "n"),
    (lambda: workflow_curves("replace", 10, 3, ddof=2), "ddof"),
    (lambda: workflow_curves("replace", 10, 3, temperature=0.0), "temperature"),
    (lambda: workflow_curves("mix", 10, 3, synthetic_ratio=1.0, correction_strength=0.5), "mix"),
    (lambda: workflow_curves("replace", 10, 3, correction_strength=0.5, correction_steps=0), "correction_steps"),
    (lambda: workflow_curves("replace", 10, 3, correction_strength=5.0, correction_steps=2), "unstable"),
    (lambda: stationary_error("replace", 10, 1.0), "workflow"),
    (lambda: mix_mean_contraction(10, -1.0), "synthetic_ratio"),
])
def test_theory_input_validation(call, match):
    with pytest.raises(ValueError, match=match):
        call()
