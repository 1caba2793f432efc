"""The three studies: correlation (quality vs L2 and gradient part), impossibility, KL bounds."""
from __future__ import annotations

import warnings
from functools import partial

import numpy as np
import pandas as pd
import scipy.stats
from tqdm.auto import tqdm

from ... import GaussianMixture
from ... import hodge as H
from ...hodge._grid import _default_box
from .._units import unit
from ._setup import (
    _integrated_l2_and_exact,
    _Setting,
    gaussian_law,
    random_model,
)


def _correlation_study(st: _Setting, rows: list[dict]) -> pd.DataFrame:
    """Per replicate: mixed, control and null random models with their integrated L2 error,
    gradient part (estimate with error bar, and exact) and, except for the null family,
    sample quality."""
    cfg = st.cfg
    estimator_kwargs = cfg.estimator_kwargs
    plan = [(rep, fam, i) for rep in range(cfg.n_seeds)
            for fam, k in (("mixed", cfg.n_models), ("control", cfg.n_control), ("null", cfg.n_null))
            for i in range(k)]
    rngs = {(rep, fam): np.random.default_rng([cfg.seed, rep, j])
            for rep in range(cfg.n_seeds) for j, fam in enumerate(("mixed", "control", "null"))}
    corr = []
    for k, (rep, fam, i) in enumerate(tqdm(plan, desc="hodge models", disable=not st.progress)):
        model, params = random_model(st.p, rngs[rep, fam], cfg, fam)
        seed = cfg.seed + 100_000 * rep + 100 * k
        rec = unit(f"correlation-r{rep}-{fam}{i}", partial(_model_record, st, model, fam, seed, estimator_kwargs))
        corr.append({"replicate": rep, "model": i, **params, **rec})
        for metric, value in rec.items():
            rows.append(dict(study="correlation", replicate=rep, model=i, **params, steps=cfg.steps, metric=metric,
                             value=value))
    return pd.DataFrame(corr)


def _model_record(st: _Setting, model: H.PerturbedScore, fam: str, seed: int, estimator_kwargs: dict) -> dict:
    """One model of the correlation study (a unit: its random draws stay outside): L2 error, gradient part, quality."""
    cfg = st.cfg
    l2, exact_grad = _integrated_l2_and_exact(model, cfg, seed)
    est = H.integrated_gradient_part(model, st.p, cfg.T, cfg.delta, n_times=cfg.n_times, n_samples=cfg.n_est,
                                     seed=seed + 50, **estimator_kwargs)
    q = st.sample_quality(model, cfg.steps, seed + 7) if fam != "null" else dict(hellinger=np.nan, sliced_w2=np.nan)
    return dict(l2_error=l2, gradient_estimate=est.integral, gradient_estimate_se=est.se,
                gradient_estimate_lower=est.lower, gradient_estimate_truncation=est.truncation,
                gradient_ci_low=est.ci_low, gradient_ci_high=est.ci_high, gradient_exact=exact_grad, **q)


def _rowwise_spearman(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of each row of a with the same row of b (ties: average ranks)."""
    ra = scipy.stats.rankdata(a, axis=-1)
    rb = scipy.stats.rankdata(b, axis=-1)
    ra = ra - ra.mean(-1, keepdims=True)
    rb = rb - rb.mean(-1, keepdims=True)
    den = np.sqrt(np.sum(ra * ra, -1) * np.sum(rb * rb, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.sum(ra * rb, -1) / den


def spearman_bootstrap(df: pd.DataFrame, measures: tuple[str, ...], quality: str, *, n_boot: int, seed: int
                       ) -> dict[str, tuple[float, float, float]]:
    """Mean over replicates of the Spearman correlation of each measure with ``quality``, and of
    the difference (first measure minus second), with percentile bootstrap intervals: models
    resampled with replacement within each replicate (the replicates are independent draws of
    models, sampler seeds and estimator samples). Returns name -> (estimate, low, high)."""
    rng = np.random.default_rng(seed)
    point: dict[str, list[float]] = {m: [] for m in measures}
    boots: dict[str, list[np.ndarray]] = {m: [] for m in measures}
    for _, g in df.groupby("replicate"):
        m = len(g)
        idx = rng.integers(0, m, size=(n_boot, m))
        qv = g[quality].to_numpy()
        for name in measures:
            v = g[name].to_numpy()
            point[name].append(float(_rowwise_spearman(v[None], qv[None])[0]))
            boots[name].append(_rowwise_spearman(v[idx], qv[idx]))
    out = {}
    with warnings.catch_warnings():   # a resample with constant values has no correlation (NaN): dropped
        warnings.simplefilter("ignore", RuntimeWarning)
        series = {name: (np.mean(point[name]), np.nanmean(np.vstack(boots[name]), axis=0)) for name in measures}
    if len(measures) >= 2:
        a, b = measures[0], measures[1]
        series[f"{a}-{b}"] = (series[a][0] - series[b][0], series[a][1] - series[b][1])
    for name, (est, bt) in series.items():
        bt = bt[np.isfinite(bt)]
        lo, hi = (np.quantile(bt, [0.025, 0.975]) if bt.size else (-np.inf, np.inf))
        out[name] = (float(est), float(lo), float(hi))
    return out


def _correlations(cdf: pd.DataFrame, summary: dict, rows: list[dict]) -> None:
    """Per replicate Spearman correlations (both families) into the table and the summary: one
    row per (family, error measure, quality metric) with the mean over replicates, its Student-t
    95% CI (none with one replicate) and each replicate's rho."""
    from .._claims import mean_ci_fields

    records = []
    for fam in ("mixed", "control"):
        sub = cdf[cdf.family == fam]
        for qname in ("hellinger", "sliced_w2"):
            for measure in ("l2_error", "gradient_estimate", "gradient_exact"):
                rhos = [float(scipy.stats.spearmanr(g[measure], g[qname]).statistic)
                        for _, g in sub.groupby("replicate")]
                rec = {"family": fam, "measure": measure, "quality": qname, **mean_ci_fields(rhos, "mean rho"),
                       **{f"replicate {r}": rho for r, rho in enumerate(rhos)}}
                records.append(rec)
                rows.append(dict(study="correlation_summary", family=fam, metric=f"spearman_{measure}_vs_{qname}",
                                 value=rec["mean rho"]))
    summary["spearman_per_replicate"] = records


def spearman_mean(summary: dict, family: str, measure: str, quality: str) -> float:
    """The mean over replicates of Spearman's rho(measure, quality) in ``family`` (from
    :func:`_correlations`' summary table)."""
    return next(r["mean rho"] for r in summary["spearman_per_replicate"]
                if (r["family"], r["measure"], r["quality"]) == (family, measure, quality))


def _impossibility_study(st: _Setting, A: np.ndarray, rows: list[dict]) -> pd.DataFrame:
    """(I + cA) grad log p_t for growing c, sampled with few, with the study's and with many
    steps, ``n_seeds`` sampler seeds each (the same seeds for every c: paired differences)."""
    cfg = st.cfg
    imp = []
    for j, c in enumerate(tqdm(cfg.cs, desc="impossibility", disable=not st.progress)):
        model = H.PerturbedScore(st.p, [H.SolenoidalTerm(A, c)])
        l2, _ = unit(f"impossibility-l2-c{j}", partial(_integrated_l2_and_exact, model, cfg, cfg.seed + 5000 + j))
        for steps in (cfg.steps_small, cfg.steps, cfg.steps_many):
            for rep in range(cfg.n_seeds):
                q = unit(f"impossibility-c{j}-n{steps}-r{rep}", partial(st.sample_quality, model, steps, cfg.seed + 6000 + rep))
                imp.append(dict(c=c, steps=steps, replicate=rep, l2_error=l2, **q))
                for metric, value in dict(l2_error=l2, **q).items():
                    rows.append(dict(study="impossibility", c=c, steps=steps, replicate=rep, metric=metric,
                                     value=value))
    return pd.DataFrame(imp)


def _bounds_row(bnd: list[dict], rows: list[dict], law: str, c: float, u: float, true_kl: float,
                kb: H.KLBounds) -> None:
    rec = dict(true_kl=true_kl, marginal_bound=kb.marginal, girsanov_bound=kb.girsanov)
    bnd.append(dict(law=law, c=c, u=u, **rec))
    for metric, value in rec.items():
        rows.append(dict(study="bounds", law=law, c=c, u=u, metric=metric, value=value))


def _gaussian_model(g: GaussianMixture, A: np.ndarray, c: float, u: float) -> H.PerturbedScore:
    return H.PerturbedScore(g, [H.SolenoidalTerm(A, c), H.GradientTerm(u, H.QuadraticPotential(np.eye(2),
                                                                                                g.means[0]))])


def _bounds_study(st: _Setting, A: np.ndarray, rows: list[dict]) -> pd.DataFrame:
    """Girsanov and marginal bounds against the true KL: closed form for a Gaussian (every c of
    the grid and every u of ``interaction_u``: the interaction study), reverse Fokker-Planck on
    a grid for the mixture (when ``fp_n`` > 0)."""
    cfg, p = st.cfg, st.p
    g = gaussian_law()
    bnd: list[dict] = []
    for c in sorted(set(cfg.cs) | {0.0, 3.0}):   # c = 3: the interaction claims
        for u in cfg.us:
            model = _gaussian_model(g, A, c, u)
            kb = unit(f"gauss-kl-bounds-c{c:g}-u{u:g}", partial(H.kl_bounds, model, cfg.T, cfg.delta, n_times=24),
                      keep=("marginal", "girsanov"))
            kl = unit(f"gauss-true-kl-c{c:g}-u{u:g}", partial(H.true_kl_gaussian, model, cfg.T, cfg.delta))
            _bounds_row(bnd, rows, "gaussian", c, u, kl, kb)
    if cfg.fp_n > 0:
        fbox = _default_box(p, cfg.delta, pad=5.0)
        for c in (0.0, 2.0):
            for u in (0.0, 0.5):
                model = H.PerturbedScore(p, [H.SolenoidalTerm(A, c), H.GradientTerm(u, H.GaussianBump([0, 0.5], 0.8))])
                fp = unit(f"fp-c{c:g}-u{u:g}", partial(H.fokker_planck_kl_2d, model.score, lambda x: p.logpdf(x, cfg.delta),
                          cfg.T, cfg.delta, fbox, n=cfg.fp_n, steps=cfg.fp_steps), keep=("kl",))
                kb = unit(f"kl-bounds-c{c:g}-u{u:g}", partial(H.kl_bounds, model, cfg.T, cfg.delta, n_times=cfg.n_times,
                          n_samples=cfg.n_est, method="exact"), keep=("marginal", "girsanov"))
                _bounds_row(bnd, rows, "mixture", c, u, fp.kl, kb)
    return pd.DataFrame(bnd)


def _bounds_summary(bdf: pd.DataFrame, summary: dict) -> None:
    # Gaussian: exact true KL, strict check. Mixture: the Fokker-Planck KL carries a grid error,
    # measured on the u = 0 models (pure solenoidal error: their true KL equals the exact-score
    # one, <= KL(p_T || pi)), and the check allows it.
    gb = bdf[bdf.law == "gaussian"]
    summary["bounds_hold_gaussian"] = bool(np.all(gb.true_kl <= gb.marginal_bound * (1 + 1e-6))
                                           and np.all(gb.marginal_bound <= gb.girsanov_bound * (1 + 1e-9)))
    mb = bdf[bdf.law == "mixture"]
    if len(mb):
        grid_err = float(mb[mb.u == 0].true_kl.max())
        summary["fokker_planck_grid_error"] = grid_err
        summary["bounds_hold_mixture_within_grid_error"] = bool(
            np.all(mb.true_kl <= mb.marginal_bound + grid_err) and np.all(mb.marginal_bound <= mb.girsanov_bound))
    summary["bounds_hold"] = summary["bounds_hold_gaussian"] and summary.get("bounds_hold_mixture_within_grid_error",
                                                                           True)


# The change of a quality metric that counts as "flat", relative to the metric's own floor
# (its value for samples of the exact score, KDE and finite-sample error): a quarter of it.
