"""Theory overlays of the collapse atlas, each checked against chains of the same retraining
loop the atlas runs (docs/atlas.md, section "Theory overlays").

Every overlay is an identity of expectations that holds *conditionally on the round-0 fit*,
whatever the data law (the atlas's data are a three-mode mixture): once theta_0 is fitted,
the Gaussian learner only ever sees Gaussian samples.

- ``replace`` (Gaussian, Bertrand et al., Proposition 1 in d dimensions): the per-round factor
  det(Sigma_{t+1})^{1/2} / det(Sigma_t)^{1/2} has mean kappa(B, d) (Bartlett decomposition);
  the mean performs a random walk, E||mu_t - mu_0||^2 = t tr(Sigma_0) / B (unbiased
  covariance: E[Sigma_t] = Sigma_0).
- ``accumulate`` (Gaussian): E[Sigma_t] = (c_t / c_0) Sigma_0 (closed form
  :func:`~modelcollapse.retraining.gaussian.expected_cov_factor`) and, with N_t = (t + 1) B
  points, E||mu_t - mu_0||^2 = (tr Sigma_0 / B) sum_{s=1..t} (c_{s-1}/c_0) / (s + 1)^2: bounded
  by (pi^2/6 - 1) max_s (c_s / c_0) tr(Sigma_0) / B for every t (the pi^2/6-type bound of the
  accumulate workflow), where replace grows linearly.
- ``mix`` (Gaussian, a = n_real / B real points, lambda = (1 - a)/a): started at a mean mu_0
  away from the real points' mean m_r, E[mu_t - m_r] = (lambda/(1+lambda))^t (mu_0 - m_r)
  exactly (the loop's mean update is linear in the synthetic mean).
- ``truncated`` (replace, the exact sampler of S_delta of the training set): the total
  variance of the round-t law v_t = e^{-2 delta} s_t + d (1 - e^{-2 delta}) (s_t the ddof-0
  total variance of the training set) has E[v_t] = A E[v_{t-1}] + d (1 - e^{-2 delta}),
  A = e^{-2 delta} (B - 1) / B: the finite-sample law of the truncation part's recursion.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ...mixture import GaussianMixture
from ...recursion import run_retraining
from ...retraining import FixedStart, GaussianLearner
from ...retraining import gaussian as g
from .._claims import Claim, claim, mean_ci
from ._setup import AtlasConfig, make_learner, mix_sizes, real_sets, seed_rng

# Agreement claims allow this many standard errors of the seed average (predicted by the theory
# where it can be, else the pooled spread of the chains): with 5 seeds the Student-t interval
# (half-width 2.78 SE) then lies inside the band unless the estimate is off by more than about
# 3 SE, so a correct theory holds and a wrong constant (a few SE off) fails (as retraining-gaussian).
K_SE = 6.0


def _chain_seed(seed: int, *key: int) -> int:
    return int(seed_rng(seed, 50, *key).integers(0, 2**31 - 1))


def _states(learner: Any, config: AtlasConfig, seed: int, c: int, **kwargs: Any) -> list[Any]:
    """One chain's states (round 0..T) of the loop, no metrics (the theory reads the states)."""
    res = run_retraining(learner, rounds=config.rounds, eval_data=None, n_eval=2, metrics=(), seed=_chain_seed(seed, c),
                         keep_states=True, progress=False, **kwargs)
    return res.states


def _chain_stats(config: AtlasConfig, law: GaussianMixture, seed: int) -> dict[str, np.ndarray]:
    """Per-chain statistics of one seed: arrays (chains, rounds + 1) (or (chains,))."""
    T, B, d = config.rounds, config.budget, config.dim
    n_r, lam = mix_sizes(config)
    out: dict[str, list] = {}
    trunc = make_learner("truncated", config)
    sig2 = -math.expm1(-2 * config.truncation_delta)
    off = 3.0 * math.sqrt(float(np.trace(law.covariance())) / d)
    for c in range(config.theory_chains):
        real = law.sample(B, seed=seed_rng(seed, 60, c))
        # replace and accumulate: each chain fits its own B real points in round 0
        for wf in ("replace", "accumulate"):
            st = _states(GaussianLearner(), config, seed, c, real_data=real, workflow=wf, n_synthetic=B)
            mu = np.array([s["mean"] for s in st])
            cov = np.array([s["cov"] for s in st])
            tr = np.trace(cov, axis1=1, axis2=2)
            out.setdefault(f"{wf}.drift", []).append(np.sum((mu - mu[0]) ** 2, axis=1) * B / tr[0])
            out.setdefault(f"{wf}.trace_ratio", []).append(tr / tr[0])
            if wf == "replace":
                sdet = np.sqrt(np.linalg.det(cov))
                out.setdefault("replace.det_ratio", []).append(sdet / sdet[0])
                out.setdefault("replace.det_step", []).append(np.mean(sdet[1:] / sdet[:-1]))
        # mix: a common start theta_0 = (m_r + offset e_1, C_r) away from the real points' fit
        part = real[:n_r]
        m_r = part.mean(0)
        e0 = np.zeros(d)
        e0[0] = off
        theta0 = {"mean": m_r + e0, "cov": np.cov(part.T)}
        st = _states(FixedStart(GaussianLearner(), theta0), config, seed, c, real_data=part, workflow="mix",
                     synthetic_ratio=lam)
        err = np.array([s["mean"] for s in st]) - m_r
        out.setdefault("mix.contraction", []).append(err @ e0 / (e0 @ e0))
        # truncated learner, replace: the law's total variance against its exact expectation
        st = _states(trunc, config, seed, c, real_data=real, workflow="replace", n_synthetic=B)
        s_t = np.array([np.trace(np.atleast_2d(np.cov(s["model"]["train"].T, ddof=0))) for s in st])
        v = math.exp(-2 * config.truncation_delta) * s_t + d * sig2
        out.setdefault("truncated.variance_ratio", []).append(v / truncated_variance(v[0], config))
    return {k: np.array(v) for k, v in out.items()}


def truncated_variance(v0: float, config: AtlasConfig) -> np.ndarray:
    """E[v_t | v_0], t = 0..T: v_t = A v_{t-1} + d (1 - e^{-2 delta}) in expectation,
    A = e^{-2 delta} (B - 1)/B (module docstring)."""
    a = math.exp(-2 * config.truncation_delta) * (config.budget - 1) / config.budget
    c = config.dim * -math.expm1(-2 * config.truncation_delta)
    v = [float(v0)]
    for _ in range(config.rounds):
        v.append(a * v[-1] + c)
    return np.array(v)


def theory_curves(config: AtlasConfig) -> dict[str, np.ndarray]:
    """The overlays' expected curves, t = 0..T (normalised as the chain statistics)."""
    T, B, d = config.rounds, config.budget, config.dim
    t = np.arange(T + 1)
    c = np.asarray(g.expected_cov_factor("accumulate", B, t, n_synthetic=B))
    c = c / c[0]
    acc_drift = np.concatenate([[0.0], np.cumsum(c[:-1] / (t[1:] + 1.0) ** 2)])
    _, lam = mix_sizes(config)
    return {"replace.det_ratio": g.sqrt_det_rate(B, d) ** t, "replace.drift": t.astype(float),
            "replace.trace_ratio": np.ones(T + 1), "accumulate.trace_ratio": c, "accumulate.drift": acc_drift,
            "mix.contraction": g.contraction_rate(lam) ** t, "truncated.variance_ratio": np.ones(T + 1)}


def run_theory(config: AtlasConfig, law: GaussianMixture, seeds: list[int]) -> tuple[pd.DataFrame, list[Claim]]:
    """Chains for every overlay, their curves against theory (tidy rows) and the claims."""
    per_seed = [_chain_stats(config, law, s) for s in seeds]
    curves = theory_curves(config)
    T, B, d, C, S = config.rounds, config.budget, config.dim, config.theory_chains, len(seeds)
    rows = []
    for key, theory in curves.items():
        remedy, metric = key.split(".")
        learner = "truncated" if remedy == "truncated" else "gaussian"
        seed_means = np.array([st[key].mean(0) for st in per_seed])        # (S, T + 1)
        for k in range(T + 1):
            m, lo, hi = mean_ci(seed_means[:, k])
            rows.append(dict(section="theory", remedy="replace" if remedy == "truncated" else remedy,
                             learner=learner, round=k, metric=metric, mean=m, ci_low=lo, ci_high=hi, n=S,
                             theory=float(theory[k])))
    table = pd.DataFrame(rows)

    def pooled_se(key: str, k: int | None = None) -> tuple[np.ndarray, float]:
        vals = np.array([st[key] if k is None else st[key][:, k] for st in per_seed])   # (S, C)
        sd = math.sqrt(float(np.mean(vals.var(axis=1, ddof=1))))
        return vals.mean(axis=1), sd / math.sqrt(C * S)

    claims: list[Claim] = []
    kappa = g.sqrt_det_rate(B, d)
    second = float(np.prod((B - np.arange(1, d + 1)) / (B - 1.0)))            # E[ratio^2] (Wishart determinant)
    sd_step = math.sqrt(max(second - kappa ** 2, 0.0))
    se = sd_step / math.sqrt(C * T * S)
    claims.append(claim(
        "atlas.replace_det_rate", f"replace, Gaussian learner, B={B}, d={d}: the mean per-round factor "
        f"det(Sigma_(t+1))^(1/2)/det(Sigma_t)^(1/2) equals kappa(B, d) = {kappa:.5f} (Proposition 1 in d dimensions)",
        [st["replace.det_step"].mean() for st in per_seed], "~", kappa, K_SE * se,
        detail=f"tolerance {K_SE:g} x the seed-average SE predicted by theory: sd of one factor sqrt(E[r^2] - kappa^2) "
               f"= {sd_step:.4f}, E[r^2] = prod_i (B-i)/(B-1)^d, over {C} chains x {T} rounds x {S} seeds"))
    vals, se = pooled_se("replace.drift", T)
    claims.append(claim(
        "atlas.replace_mean_walk", f"replace, Gaussian learner: E||mu_T - mu_0||^2 B / (T tr Sigma_0) at T={T} is 1 "
        f"(the mean's random walk)", vals / T, "~", 1.0, K_SE * se / T,
        detail=f"tolerance {K_SE:g} x the pooled SE of the chains (within-seed sd over {C} chains, /sqrt(chains x seeds))"))
    vals, se = pooled_se("accumulate.trace_ratio", T)
    target = float(curves["accumulate.trace_ratio"][T])
    claims.append(claim(
        "atlas.accumulate_trace", f"accumulate, Gaussian learner: E[tr Sigma_T]/tr Sigma_0 at T={T} equals the closed "
        f"form c_T/c_0 = {target:.5f} (no collapse)", vals, "~", target, K_SE * se,
        detail=f"tolerance {K_SE:g} x the pooled SE of the chains ({C} chains x {S} seeds)"))
    vals, se = pooled_se("accumulate.drift", T)
    target = float(curves["accumulate.drift"][T])
    bound = (math.pi ** 2 / 6 - 1) * float(np.max(curves["accumulate.trace_ratio"]))
    claims.append(claim(
        "atlas.accumulate_mean_bounded", f"accumulate, Gaussian learner: E||mu_T - mu_0||^2 B / tr Sigma_0 at T={T} "
        f"equals sum_s (c_(s-1)/c_0)/(s+1)^2 = {target:.4f}, below the bound (pi^2/6 - 1) max c/c_0 = {bound:.4f} "
        f"for every T (replace: T = {T})", vals, "~", target, K_SE * se,
        detail=f"tolerance {K_SE:g} x the pooled SE of the chains; the statement checked is the exact expectation at T, "
               "whose limit T -> inf is below the pi^2/6-type bound"))
    _, lam = mix_sizes(config)
    rho = g.contraction_rate(lam)
    n_r, _ = mix_sizes(config)
    vals, se_pooled = pooled_se("mix.contraction", 1)
    claims.append(claim(
        f"atlas.mix_contraction_lam{lam:g}", f"mix, Gaussian learner, lambda={lam:g} ({n_r} real + {B - n_r} synthetic): "
        f"one round multiplies the mean's offset from the real points' mean by lambda/(1+lambda) = {rho:.4f}",
        vals, "~", rho, K_SE * se_pooled,
        detail=f"exact expectation E[mu_1 - m_r] = (m/B)(mu_0 - m_r), m/B = lambda/(1+lambda); tolerance {K_SE:g} x the "
               f"pooled SE of the chains ({C} chains x {S} seeds, offset 3 sd of the data law)"))
    vals, se = pooled_se("truncated.variance_ratio", T)
    claims.append(claim(
        "atlas.truncated_variance", f"replace, truncated learner (delta={config.truncation_delta:g}): the round-T law's "
        f"total variance over its exact expectation E[v_T | v_0] is 1 at T={T}", vals, "~", 1.0, K_SE * se,
        detail=f"E[v_t] = e^(-2 delta)(B-1)/B E[v_(t-1)] + d(1 - e^(-2 delta)); tolerance {K_SE:g} x the pooled SE "
               f"of the chains ({C} chains x {S} seeds)"))
    return table, claims
