"""Theory overlays of the collapse atlas, each checked against chains of the same retraining
loop the atlas runs (docs/atlas.md, section "Theory overlays").

The atlas's data law is a three-mode mixture with mean mu* and covariance Sigma*; the Gaussian
learner's curves only involve the first two moments of the real data (the synthetic draws are
Gaussian), so the library's closed forms hold for it unchanged:

- ``replace``, ``accumulate``, ``mix``, ``fresh`` (Gaussian learner):
  e_t = E||mu_t - mu*||^2 / tr Sigma* and c_t = E[tr Sigma_t] / tr Sigma* from
  :func:`~modelcollapse.retraining.workflow_curves` (docs/retraining.md, section "Gaussian
  theory of the workflows"): replace's mean walk grows as (1 + t)/B, accumulate's error stays
  below (pi^2/6)/B (:func:`~modelcollapse.retraining.accumulate_mean_error_bound`), mix and
  fresh settle at a stationary error (:func:`~modelcollapse.retraining.stationary_error`).
- ``replace`` in d dimensions (Bertrand et al., Proposition 1): the per-round factor
  det(Sigma_{t+1})^{1/2} / det(Sigma_t)^{1/2} has mean kappa(B, d)
  (:func:`~modelcollapse.retraining.gaussian.sqrt_det_rate`, Bartlett decomposition).
- ``mix`` started away from the real points' mean m_r (a common theta_0 through
  ``FixedStart``): E[mu_t - m_r] = rho^t (mu_0 - m_r), rho = lambda/(1+lambda)
  (:func:`~modelcollapse.retraining.mix_mean_contraction`).
- ``temperature`` (replace + ``SamplingBias(temperature=tau)``, Gaussian learner): the synthetic
  covariance is tau Sigma_{t-1}, so E[Sigma_t] shrinks by tau per round (``workflow_curves(...,
  temperature=tau)``).
- ``truncated`` (replace, exact draws of S_delta of the training set): the total variance of
  the round-t law v_t = e^{-2 delta} s_t + d (1 - e^{-2 delta}) (s_t the ddof-0 total
  variance of the training set) has E[v_t] = A E[v_{t-1}] + d (1 - e^{-2 delta}),
  A = e^{-2 delta} (B - 1) / B: the finite-sample law of the truncation part's recursion
  (docs/truncation.md).
- ``accumulate-subsample`` (Gaussian learner, B of the pool each round): e_t and c_t from
  ``workflow_curves("accumulate-subsample", ...)`` (the pool's mean and scatter tracked next to
  the subsample's fit; docs/retraining.md, section "Gaussian theory of the workflows").
- ``annealed`` (truncated learner sampled at delta_t = delta_0 gamma^t): the same recursion
  with the round's delta, E[v_t] = e^{-2 delta_t} (B-1)/B E[v_{t-1}] + d (1 - e^{-2 delta_t}).
- ``fixed-skip`` (the DAE, on standardised coordinates, with its skip frozen at b): the
  generative SDE is linear in b off the span of w (docs/dae.md, "Generation"), so every
  standardised coordinate of the samples orthogonal to w has second moment v_(t_f)(b)
  (``SamplerSchedule.v_t``) in every round, whatever was learned; by default b gives 1, the
  data's. A trained b (about 0 here) gives v_(t_f)(b) ~ 4e-4 instead: the DAE's mode collapse.

Self-correction has no overlay on the atlas's mixture (the Langevin map of a mixture's score is
not affine): its closed form is checked for a Gaussian true law in
tests/retraining/test_workflow_theory.py, and the atlas shows its effect with CIs only.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ... import retraining as rt
from ...mixture import GaussianMixture
from ...recursion import run_retraining
from ...retraining import FixedStart, GaussianLearner, SamplingBias
from ...retraining import gaussian as g
from .._claims import Claim, claim, mean_ci
from .._units import unit
from ._setup import (
    AtlasConfig,
    anneal_schedule,
    dae_schedule,
    fixed_skip,
    make_learner,
    mix_sizes,
    remedy_learner,
    seed_rng,
)

# Agreement claims allow this many standard errors of the seed average (the SE predicted by the
# theory where it can be, else the pooled spread of the chains): with 5 seeds the Student-t
# interval (half-width 2.78 SE) then lies inside the band unless the estimate is off by more
# than about 3 SE, so a correct theory holds and a wrong constant (a few SE off) fails (as in
# retraining-gaussian).
K_SE = 6.0
#: The overlays: (key, remedy, learner, metric) of the theory rows of the table.
OVERLAYS = (("replace.error", "replace", "gaussian", "mean_sq_error"),
            ("replace.cov", "replace", "gaussian", "cov_factor"),
            ("replace.det", "replace", "gaussian", "sqrt_det_ratio"),
            ("accumulate.error", "accumulate", "gaussian", "mean_sq_error"),
            ("accumulate.cov", "accumulate", "gaussian", "cov_factor"),
            ("subsample.error", "accumulate-subsample", "gaussian", "mean_sq_error"),
            ("subsample.cov", "accumulate-subsample", "gaussian", "cov_factor"),
            ("mix.error", "mix", "gaussian", "mean_sq_error"),
            ("mix.contraction", "mix", "gaussian", "offset_contraction"),
            ("fresh.error", "fresh", "gaussian", "mean_sq_error"),
            ("temperature.cov", "temperature", "gaussian", "cov_factor"),
            ("truncated.variance", "replace", "truncated", "variance_over_theory"),
            ("annealed.variance", "annealed", "truncated", "variance_over_theory"),
            ("fixed-skip.variance", "fixed-skip", "dae", "off_w_variance_over_theory"))


def _chain_seed(seed: int, *key: int) -> int:
    return int(seed_rng(seed, 50, *key).integers(0, 2**31 - 1))


def _states(learner: Any, config: AtlasConfig, seed: int, c: int, **kwargs: Any) -> list[Any]:
    """One chain's states (round 0..T) of the loop, no metrics (the theory reads the states)."""
    res = run_retraining(learner, rounds=config.rounds, n_eval=2, metrics=(), seed=_chain_seed(seed, c),
                         keep_states=True, progress=False, **kwargs)
    return res.states


def dae_chains(config: AtlasConfig) -> int:
    """Chains per seed of the fixed-skip overlay (an exact identity whose spread theory gives:
    fewer chains than the others suffice)."""
    return max(2, config.theory_chains // 8)


def _law_variance(states: list[dict], deltas: np.ndarray) -> np.ndarray:
    """v_t = e^{-2 delta_t} s_t + d (1 - e^{-2 delta_t}): the total variance of S_(delta_t) of
    round t's training set (s_t its ddof-0 total variance)."""
    s_t = np.array([np.trace(np.atleast_2d(np.cov(s["model"]["train"].T, ddof=0))) for s in states])
    d = states[0]["model"]["train"].shape[1]
    return np.exp(-2 * deltas) * s_t - d * np.expm1(-2 * deltas)


def off_w_second_moment(samples: np.ndarray, w: np.ndarray) -> float:
    """Mean square of the samples' coordinates in the orthogonal complement of span(w)
    (per coordinate: ||P x||^2 / (d - r) averaged over the samples)."""
    q = np.linalg.qr(w, mode="complete")[0][:, w.shape[1]:]
    return float(np.mean((samples @ q) ** 2))


def _gaussian_stats(states: list[dict], mu: np.ndarray, tr: float) -> tuple[np.ndarray, np.ndarray]:
    """(||mu_t - mu*||^2 / tr Sigma*, tr Sigma_t / tr Sigma*) over the rounds of one chain."""
    means = np.array([s["mean"] for s in states])
    covs = np.array([s["cov"] for s in states])
    return np.sum((means - mu) ** 2, axis=1) / tr, np.trace(covs, axis1=1, axis2=2) / tr


def _chain_stats(config: AtlasConfig, law: GaussianMixture, seed: int) -> dict[str, np.ndarray]:
    """Per-chain statistics of one seed: arrays (chains, rounds + 1) (``replace.det``: (chains,))."""
    B, d = config.budget, config.dim
    n_r, lam = mix_sizes(config)
    mu, tr = law.mean(), float(np.trace(law.covariance()))
    out: dict[str, list] = {}
    trunc = make_learner("truncated", config)
    annealed = remedy_learner("annealed", trunc, "truncated", config)
    fixed = remedy_learner("fixed-skip", make_learner("dae", config), "dae", config)
    v_b = float(dae_schedule().v_t(fixed_skip(config))[-1])
    constant = np.full(config.rounds + 1, config.truncation_delta)
    schedule = anneal_schedule(config).values(config.rounds + 1)
    off = 3.0 * math.sqrt(tr / d)

    def fresh_real(n_samples: int, s: int) -> np.ndarray:
        return law.sample(n_samples, seed=s)

    for c in range(config.theory_chains):
        real = law.sample(B, seed=seed_rng(seed, 60, c))
        for wf, key, kw in (("replace", "replace", {}), ("accumulate", "accumulate", {}),
                            ("accumulate-subsample", "subsample", {"train_budget": B})):
            st = _states(GaussianLearner(), config, seed, c, real_data=real, workflow=wf, n_synthetic=B, **kw)
            err, cov = _gaussian_stats(st, mu, tr)
            out.setdefault(f"{key}.error", []).append(err)
            out.setdefault(f"{key}.cov", []).append(cov)
            if wf == "replace":
                sdet = np.sqrt(np.linalg.det(np.array([s["cov"] for s in st])))
                out.setdefault("replace.det", []).append(sdet / sdet[0])
                out.setdefault("replace.det_step", []).append(np.mean(sdet[1:] / sdet[:-1]))
        part = real[:n_r]
        st = _states(GaussianLearner(), config, seed, c, real_data=part, workflow="mix", synthetic_ratio=lam)
        out.setdefault("mix.error", []).append(_gaussian_stats(st, mu, tr)[0])
        st = _states(GaussianLearner(), config, seed, c, real_data=fresh_real, n_real=n_r, workflow="fresh",
                     synthetic_ratio=lam)
        out.setdefault("fresh.error", []).append(_gaussian_stats(st, mu, tr)[0])
        st = _states(GaussianLearner(), config, seed, c, real_data=real, workflow="replace", n_synthetic=B,
                     remedies=[SamplingBias(temperature=config.temperature)])
        out.setdefault("temperature.cov", []).append(_gaussian_stats(st, mu, tr)[1])
        # mix from a common start theta_0 = (m_r + offset e_1, C_r) away from the real points' fit
        m_r = part.mean(0)
        e0 = np.zeros(d)
        e0[0] = off
        st = _states(FixedStart(GaussianLearner(), {"mean": m_r + e0, "cov": np.cov(part.T)}), config, seed, c,
                     real_data=part, workflow="mix", synthetic_ratio=lam)
        out.setdefault("mix.contraction", []).append((np.array([s["mean"] for s in st]) - m_r) @ e0 / (e0 @ e0))
        # truncated learner, replace: the law's total variance against its exact expectation given round 0
        for key, learner, deltas in (("truncated", trunc, constant), ("annealed", annealed, schedule)):
            st = _states(learner, config, seed, c, real_data=real, workflow="replace", n_synthetic=B)
            v = _law_variance(st, deltas)
            out.setdefault(f"{key}.variance", []).append(v / truncated_variance(v[0], config, deltas))
        if c < dae_chains(config):   # the DAE with its skip fixed: second moment off W over v_(t_f)(b)
            res = run_retraining(fixed, real, config.rounds, workflow="replace", n_synthetic=B, n_eval=config.n_eval,
                                 metrics=(), seed=_chain_seed(seed, c), keep_samples=True, progress=False)
            out.setdefault("fixed-skip.variance", []).append(
                np.array([off_w_second_moment((x - fixed.mean) / fixed.scale, st["w"])
                          for x, st in zip(res.samples, res.states)]) / v_b)
    return {k: np.array(v) for k, v in out.items()}


def truncated_variance(v0: float, config: AtlasConfig, deltas: np.ndarray | None = None) -> np.ndarray:
    """E[v_t | v_0], t = 0..T: v_t = A_t v_{t-1} + d (1 - e^{-2 delta_t}) in expectation,
    A_t = e^{-2 delta_t} (B - 1)/B (module docstring); ``deltas`` (T + 1,) the truncation of
    each round (default ``truncation_delta`` every round)."""
    deltas = np.full(config.rounds + 1, config.truncation_delta) if deltas is None else np.asarray(deltas, float)
    v = [float(v0)]
    for t in range(1, config.rounds + 1):
        a = math.exp(-2 * deltas[t]) * (config.budget - 1) / config.budget
        v.append(a * v[-1] - config.dim * math.expm1(-2 * deltas[t]))
    return np.array(v)


def theory_curves(config: AtlasConfig) -> dict[str, np.ndarray]:
    """The overlays' expected curves, t = 0..T, keyed as :data:`OVERLAYS`."""
    T, B, d = config.rounds, config.budget, config.dim
    t = np.arange(T + 1)
    n_r, lam = mix_sizes(config)
    rep = rt.workflow_curves("replace", B, T, n_synthetic=B)
    acc = rt.workflow_curves("accumulate", B, T, n_synthetic=B)
    sub = rt.workflow_curves("accumulate-subsample", B, T, n_synthetic=B, train_budget=B)
    return {"replace.error": rep.mean_sq_error, "replace.cov": rep.cov_factor,
            "replace.det": g.sqrt_det_rate(B, d) ** t.astype(float),
            "accumulate.error": acc.mean_sq_error, "accumulate.cov": acc.cov_factor,
            "subsample.error": sub.mean_sq_error, "subsample.cov": sub.cov_factor,
            "mix.error": rt.workflow_curves("mix", n_r, T, synthetic_ratio=lam).mean_sq_error,
            "mix.contraction": rt.mix_mean_contraction(n_r, lam) ** t.astype(float),
            "fresh.error": rt.workflow_curves("fresh", n_r, T, synthetic_ratio=lam).mean_sq_error,
            "temperature.cov": rt.workflow_curves("replace", B, T, n_synthetic=B,
                                                  temperature=config.temperature).cov_factor,
            "truncated.variance": np.ones(T + 1), "annealed.variance": np.ones(T + 1),
            "fixed-skip.variance": np.ones(T + 1)}


def run_theory(config: AtlasConfig, law: GaussianMixture, seeds: list[int]) -> tuple[pd.DataFrame, list[Claim]]:
    """Chains for every overlay, their curves against theory (tidy rows) and the claims. The
    chains of each seed are one unit (docs/cli.md, section "Interrupting and resuming")."""
    per_seed = [unit(f"theory-seed-{s}", partial(_chain_stats, config, law, s)) for s in seeds]
    curves = theory_curves(config)
    T, B, d, C, S = config.rounds, config.budget, config.dim, config.theory_chains, len(seeds)
    n_r, lam = mix_sizes(config)
    rows = []
    for key, remedy, learner, metric in OVERLAYS:
        seed_means = np.array([st[key].mean(0) for st in per_seed])        # (S, T + 1)
        for k in range(T + 1):
            m, lo, hi = mean_ci(seed_means[:, k])
            rows.append(dict(section="theory", remedy=remedy, learner=learner, round=k, metric=metric, mean=m,
                             ci_low=lo, ci_high=hi, n=S, theory=float(curves[key][k])))
    table = pd.DataFrame(rows)

    def at(key: str, k: int = T) -> tuple[np.ndarray, float, float]:
        """Per-seed chain means at round k, the theory there, and the pooled SE of the seed average."""
        vals = np.array([st[key][:, k] for st in per_seed])                  # (S, C)
        sd = math.sqrt(float(np.mean(vals.var(axis=1, ddof=1))))
        return vals.mean(axis=1), float(curves[key][k]), sd / math.sqrt(C * S)

    pooled = (f"tolerance {K_SE:g} x the pooled SE of the seed average (within-seed sd over {C} chains, "
              f"/ sqrt(chains x seeds = {C * S}))")
    claims: list[Claim] = []
    kappa = g.sqrt_det_rate(B, d)
    second = float(np.prod((B - np.arange(1, d + 1)) / (B - 1.0)))            # E[ratio^2] (Wishart determinant)
    sd_step = math.sqrt(max(second - kappa ** 2, 0.0))
    claims.append(claim(
        "atlas.replace_det_rate", f"replace, Gaussian learner, B={B}, d={d}: the mean per-round factor "
        f"det(Sigma_(t+1))^(1/2)/det(Sigma_t)^(1/2) equals kappa(B, d) = {kappa:.5f} (Proposition 1 in d dimensions)",
        [st["replace.det_step"].mean() for st in per_seed], "~", kappa, K_SE * sd_step / math.sqrt(C * T * S),
        detail=f"tolerance {K_SE:g} x the seed-average SE predicted by theory: sd of one factor sqrt(E[r^2] - kappa^2) "
               f"= {sd_step:.4f}, E[r^2] = prod_i (B-i)/(B-1)^d, over {C} chains x {T} rounds x {S} seeds"))
    vals, target, se = at("replace.error")
    claims.append(claim(
        "atlas.replace_mean_error", f"replace, Gaussian learner: E||mu_T - mu*||^2/tr Sigma* at T={T} equals "
        f"(1 + T)/B = {target:.5f} (the mean's random walk grows linearly)", vals, "~", target, K_SE * se,
        detail=pooled))
    vals, target, se = at("accumulate.error")
    bound = rt.accumulate_mean_error_bound(B)
    claims.append(claim(
        "atlas.accumulate_mean_error", f"accumulate, Gaussian learner: E||mu_T - mu*||^2/tr Sigma* at T={T} equals "
        f"the exact curve {target:.5f}, below the bound (pi^2/6)/B = {bound:.5f} that holds for every T "
        f"(replace: {float(curves['replace.error'][T]):.5f})", vals, "~", target, K_SE * se,
        detail=pooled + "; the statement checked is the exact expectation at T (workflow_curves), whose every value "
               "lies below the pi^2/6 bound (Gerstgrasser et al.)"))
    vals, target, se = at("accumulate.cov")
    claims.append(claim(
        "atlas.accumulate_cov", f"accumulate, Gaussian learner: E[tr Sigma_T]/tr Sigma* at T={T} equals the closed "
        f"form c_T = {target:.5f} (no collapse of the variance)", vals, "~", target, K_SE * se, detail=pooled))
    for key, what in (("subsample.error", "E||mu_T - mu*||^2/tr Sigma*"), ("subsample.cov", "E[tr Sigma_T]/tr Sigma*")):
        vals, target, se = at(key)
        claims.append(claim(
            f"atlas.{key.replace('.', '_')}", f"accumulate-subsample, Gaussian learner ({B} of the pool each round): "
            f"{what} at T={T} equals the exact finite-n curve {target:.5f}", vals, "~", target, K_SE * se,
            detail=pooled + "; curve: workflow_curves('accumulate-subsample'), the pool's mean and scatter tracked "
                   "through sampling without replacement"))
    vals, target, se = at("mix.contraction", 1)
    claims.append(claim(
        f"atlas.mix_contraction_lam{lam:g}", f"mix, Gaussian learner, lambda={lam:g} ({n_r} real + {B - n_r} synthetic "
        f"points): one round multiplies the mean's offset from the real points' mean by lambda/(1+lambda) = "
        f"{target:.4f}", vals, "~", target, K_SE * se,
        detail=f"exact: E[mu_1 - m_r] = (m/B)(mu_0 - m_r) from a common start 3 sd of the data law away; {pooled}"))
    e_mix, _ = rt.stationary_error("mix", n_r, lam)
    vals, target, se = at("mix.error")
    claims.append(claim(
        f"atlas.mix_mean_error_lam{lam:g}", f"mix, Gaussian learner, lambda={lam:g}: E||mu_T - mu*||^2/tr Sigma* at "
        f"T={T} equals the exact curve {target:.5f} (stationary value {e_mix:.5f})", vals, "~", target, K_SE * se,
        detail=pooled))
    e_fresh, _ = rt.stationary_error("fresh", n_r, lam)
    vals, target, se = at("fresh.error")
    claims.append(claim(
        f"atlas.fresh_mean_error_lam{lam:g}", f"fresh, Gaussian learner, {n_r} new real + {B - n_r} synthetic points a "
        f"round: E||mu_T - mu*||^2/tr Sigma* at T={T} equals the exact curve {target:.5f} (stationary error "
        f"{e_fresh:.5f})", vals, "~", target, K_SE * se, detail=pooled))
    vals, target, se = at("temperature.cov")
    claims.append(claim(
        f"atlas.temperature_cov_tau{config.temperature:g}", f"replace with sampling bias (temperature "
        f"tau={config.temperature:g}), Gaussian learner: E[tr Sigma_T]/tr Sigma* at T={T} equals the exact curve "
        f"{target:.5f} (tau^T: the quality-diversity trade-off compounds)", vals, "~", target, K_SE * se,
        detail=pooled))
    vals, target, se = at("truncated.variance")
    claims.append(claim(
        "atlas.truncated_variance", f"replace, truncated learner (delta={config.truncation_delta:g}): the round-T law's "
        f"total variance over its exact expectation E[v_T | v_0] is 1 at T={T}", vals, "~", target, K_SE * se,
        detail="E[v_t] = e^(-2 delta)(B-1)/B E[v_(t-1)] + d(1 - e^(-2 delta)); " + pooled))
    vals, target, se = at("annealed.variance")
    claims.append(claim(
        "atlas.annealed_variance", f"annealed remedy, truncated learner (delta_t = {config.truncation_delta:g} x "
        f"{config.anneal_gamma:g}^t): the round-T law's total variance over its exact expectation E[v_T | v_0] is 1 "
        f"at T={T}", vals, "~", target, K_SE * se,
        detail="E[v_t] = e^(-2 delta_t)(B-1)/B E[v_(t-1)] + d(1 - e^(-2 delta_t)); " + pooled))
    b, n_dae = fixed_skip(config), dae_chains(config)
    vals = np.array([st["fixed-skip.variance"][:, T] for st in per_seed]).mean(axis=1)
    sd_one = math.sqrt(2.0 / (config.n_eval * (d - config.dae_r)))    # Var(z^2) = 2 v^2, per sample and coordinate
    claims.append(claim(
        "atlas.fixed_skip_variance", f"fixed-skip remedy, DAE (r={config.dae_r}, b fixed at {b:.4f}): the round-T "
        f"samples' second moment off the span of w over v_(t_f)(b) = {float(dae_schedule().v_t(b)[-1]):.4f} "
        f"(the standardised data's: 1 by default) is 1 at T={T}", vals, "~", 1.0, K_SE * sd_one / math.sqrt(n_dae * S),
        detail=f"tolerance {K_SE:g} x the seed-average SE predicted by theory: sd of one chain's ratio sqrt(2/(n_eval "
               f"(d - r))) = {sd_one:.4f} (Gaussian coordinates), over {n_dae} chains x {S} seeds"))
    return table, claims
