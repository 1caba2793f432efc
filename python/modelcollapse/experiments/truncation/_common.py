"""Truncation experiments: configuration, presets, the test laws and the rate fits shared by A1-A5."""
from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ... import GaussianMixture
from ... import truncation as tr
from .._claims import Comparison, claim_from_interval
from .._plotting import panels, save_figure, title
from .._units import unit


@dataclasses.dataclass
class TruncationConfig:
    rounds: int = 8  # retraining rounds K of the recursion (A1, A2, A4)
    n_samples: int = 20_000  # samples per simulated round (A1, A2; A4 uses at most a4_samples)
    steps: int = 200  # reverse-sampler steps per round
    T: float = 3.0  # diffusion horizon: sampling starts at t = T
    integrator: str = "exponential"  # reverse-SDE integrator: euler_maruyama, exponential or ode
    hermite_degree: int = 20  # highest Hermite degree of the A2 spectra
    schedule_rounds: int = 400  # rounds of the A3 schedule comparison (exact, cheap)
    a5_rounds: int = 4  # retraining rounds of the A5 digits experiment
    a5_samples: int = 1797  # digits used in A5 (at most 1797)
    grid_2d: int = 301  # grid points per axis of the 2-D distances (1-D: 10x as many; W2 quantile levels: 2x)
    seed: int = 0  # first seed
    n_seeds: int = 5  # independent seeds of the A4 and A5 simulated recursions (claims' replicates)
    # seeds of the truly recursive empirical-score runs of A1 and A2 (exact sampler, cheap): their
    # per-seed z^2 spreads by ~30% of its mean, so deciding the compounding claims takes ~20
    recursive_seeds: int = 20
    a4_samples: int = 5_000  # samples per round of the A4 robustness simulations
    rate_rounds: int = 24  # rounds of the exact 1-D recursion whose distances give the fitted rates
    a5_steps: int = 400  # reverse-sampler steps per round in A5

    def __post_init__(self) -> None:
        if self.rounds < 2 or self.a5_rounds < 1:
            raise ValueError("rounds must be >= 2 and a5_rounds >= 1")
        if self.n_samples < 100:
            raise ValueError("n_samples must be >= 100")
        if self.n_seeds < 1 or self.recursive_seeds < 1 or self.a4_samples < 100:
            raise ValueError("n_seeds and recursive_seeds must be >= 1 and a4_samples >= 100")


PRESETS = {
    "quick": dict(rounds=3, n_samples=2_000, steps=40, hermite_degree=10, schedule_rounds=100, a5_rounds=1,
                  a5_samples=400, grid_2d=101, n_seeds=2, recursive_seeds=6, a4_samples=2_000, rate_rounds=12,
                  a5_steps=200),
    "default": dict(rounds=8, n_samples=20_000, steps=200),
    "paper": dict(rounds=15, n_samples=100_000, steps=400, hermite_degree=30, schedule_rounds=2000, a5_rounds=8,
                  rate_rounds=40, a5_steps=800),
}

A_VALUES = (0.0, 0.1, 0.5)
DELTAS = (0.01, 0.05, 0.2)


def simulate(key: str, *args, **kwargs):
    """:func:`modelcollapse.truncation.simulate_recursion` as the unit ``key`` of the run: a
    resumed run reuses its ``samples`` and ``table`` (docs/cli.md, "Interrupting and resuming")."""
    return unit(key, partial(tr.simulate_recursion, *args, **kwargs), keep=("samples", "table"))


def law_1d() -> GaussianMixture:
    return GaussianMixture([0.35, 0.65], [[-2.0], [1.5]], [0.1, 0.2])


def law_2d() -> GaussianMixture:
    return GaussianMixture([0.4, 0.35, 0.25], [[-2.0, -1.0], [2.0, -1.0], [0.0, 2.0]], [0.15, 0.15, 0.15])


def _limit(p, a, delta):
    return tr.limit_law(p, a, delta, tol=1e-6)[0].to_mixture()


#: Distances below this are not fitted: the limit is cut at TV error 1e-12 and the quantile
#: W2 is accurate to ~1e-10 (docs/truncation.md, section "Rates: bounds and sharp rates").
RATE_FLOOR = 1e-9


def fit_rate(rounds, values, level: float = 0.95) -> tuple[float, float, float, int]:
    """Per-round rate exp(slope) of log(values) on the last half of the rounds above
    :data:`RATE_FLOOR`, by least squares, with its Student-t interval over those rounds:
    ``(rate, low, high, n_fitted)``. Exact laws have no sampling noise: the interval measures
    the curvature of log(values), i.e. how far the fitted window is from the asymptotic regime."""
    from scipy import stats

    k = np.asarray(rounds, dtype=float)
    v = np.asarray(values, dtype=float)
    ok = np.flatnonzero(v > RATE_FLOOR)
    ok = ok[ok >= 1]  # round 0 is the starting distance, not a contraction step
    if ok.size < 3:
        return (np.nan, np.nan, np.nan, int(ok.size))
    sel = ok[max(0, min(len(ok) // 2, len(ok) - 3)):]
    x, y = k[sel], np.log(v[sel])
    (b, c), cov = np.polyfit(x, y, 1, cov="unscaled")
    resid = y - (b * x + c)
    dof = len(x) - 2
    s2 = float(resid @ resid) / dof if dof > 0 else np.inf
    half = float(stats.t.ppf(0.5 + level / 2, max(dof, 1)) * np.sqrt(max(cov[0, 0] * s2, 0.0)))
    return (float(np.exp(b)), float(np.exp(b - half)), float(np.exp(b + half)), int(len(x)))


def _rate_rows(cfg: TruncationConfig, table: pd.DataFrame) -> list[dict]:
    """Bound, sharp rate and fitted slope (with CI) per (dim, a, delta, metric).

    1-D: TV and W2 of the exact p_hat_k to p_hat_inf over ``cfg.rate_rounds`` rounds (the
    asymptotic regime needs e^{-delta k} small, more rounds than the plots show); 2-D: the
    TV / Hellinger rows of ``table`` (cfg.rounds rounds)."""
    rows = []
    p = law_1d()
    R = cfg.rate_rounds

    def add(dim, a, delta, metric, fit, sharp):
        rate, lo, hi, nfit = fit
        # H^2 is jointly convex and contracted by S_delta: H^2(p_k, p_inf) <= (1-a) H^2(p_{k-1}, p_inf)
        bound = {"w2": sharp.bound_w2, "hellinger": np.sqrt(sharp.bound_tv)}.get(metric, sharp.bound_tv)
        for name, v in ((f"rate_{metric}", rate), (f"rate_{metric}_ci_low", lo), (f"rate_{metric}_ci_high", hi),
                        (f"rate_{metric}_n_fit", nfit), (f"rate_{metric}_sharp", sharp.rate),
                        (f"rate_{metric}_bound", bound), ("lowest_degree", sharp.lowest_degree)):
            rows.append(dict(part="A1", dim=dim, real_fraction=a, delta=delta, round=-1, metric=name,
                             source="exact", value=float(v)))

    for a in A_VALUES:
        for delta in DELTAS:
            sharp = tr.asymptotic_rate(p, a, delta)
            # a unit per (a, delta): a resumed run reuses the finished distance curves
            tv, w2 = unit(f"a1-rate-curves-a{a:g}-d{delta:g}", partial(_rate_curves, cfg, p, a, delta))
            add(1, a, delta, "tv", fit_rate(np.arange(R + 1), tv), sharp)
            add(1, a, delta, "w2", fit_rate(np.arange(R + 1), w2), sharp)
    ex2 = table[(table.source == "exact") & (table.dim == 2)]
    for (a, delta, metric), g in ex2.groupby(["real_fraction", "delta", "metric"]):
        g = g.sort_values("round")
        add(2, a, delta, metric, fit_rate(g["round"].values, g["value"].values), tr.asymptotic_rate(law_2d(), a, delta))
    return rows


def _rate_curves(cfg: TruncationConfig, p: GaussianMixture, a: float, delta: float) -> tuple[list, list]:
    """TV and W2 of the exact 1-D p_hat_k, k = 0..cfg.rate_rounds, to p_hat_inf."""
    ex = tr.exact_recursion(p, cfg.rate_rounds, a, delta)
    lim = tr.limit_law(p, a, delta, tol=1e-12)[0].to_mixture()
    laws = [ex.output_mixture(k) for k in range(cfg.rate_rounds + 1)]
    tv = [tr.grid_distances(m, lim, lim=8.0, n=10 * cfg.grid_2d)["tv"] for m in laws]
    w2 = [tr.w2_1d_laws(m, lim, n_levels=cfg.grid_2d * 2) for m in laws]
    return tv, w2


def _rate_figure(table: pd.DataFrame, out: Path) -> Path:
    """Fitted per-round rate (95% CI) vs the sharp rate (1-a) e^{-n0 delta} and the bound."""
    r = table[(table.part == "A1") & (table["round"] == -1) & (table.dim == 1)]
    fig, axes = panels(2, size=(5.6, 3.6),
                       title="A1, 1-D: fitted per-round contraction rate of the exact laws (95% CI) against the sharp "
                             "asymptotic rate (1-a) e^(-n0 delta) and the bound, per (a, delta)")
    for ax, metric, bname in ((axes[0], "w2", "rho = sqrt(1-a) e^-delta"), (axes[1], "tv", "1-a")):
        v = r.pivot_table(index=["real_fraction", "delta"], columns="metric", values="value")
        x = np.arange(len(v))
        fit = v[f"rate_{metric}"].values
        err = np.vstack([fit - v[f"rate_{metric}_ci_low"].values, v[f"rate_{metric}_ci_high"].values - fit])
        ax.errorbar(x, fit, yerr=err, fmt="o", ms=4, label="fitted rate (95% CI)")
        ax.plot(x, v[f"rate_{metric}_sharp"].values, "k_", ms=14, mew=2, label="sharp (1-a) e^(-n0 delta)")
        ax.plot(x, v[f"rate_{metric}_bound"].values, "r_", ms=14, mew=2, label=f"bound {bname}")
        ax.set_xticks(x, [f"{a:g}\n{d:g}" for a, d in v.index], fontsize=8)
        ax.set_xlabel("real fraction a (top) and truncation time delta (bottom)")
        ax.set_ylabel(f"per-round rate of {metric.upper()}")
        title(ax, f"{metric.upper()}(p_hat_k, p_hat_inf)")
        ax.legend(loc="lower left")
    f = out / "truncation_a1_rates.png"
    save_figure(fig, f)
    return f




def _exact_claim(name, statement, value, comparison, target, n, detail):
    """A claim on a number computed from exact laws (no sampling): zero-width interval."""
    return claim_from_interval(name, statement, value, value, value, comparison, target, 0.0, n=n,
                               method="exact laws (no sampling)", detail=detail)




def _exact(name: str, statement: str, est: float, lo: float, hi: float, comparison: Comparison, target: float,
           tol: float, n: int, method: str, detail: str):
    return claim_from_interval(name, statement, est, lo, hi, comparison, target, tol, n=max(int(n), 1),
                               method=method, detail=detail)


