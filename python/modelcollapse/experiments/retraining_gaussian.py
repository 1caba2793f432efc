"""Gaussian retraining (Bertrand et al., section 2.2 and 3): Monte Carlo chains vs closed forms.

Panels
------
collapse   fully synthetic, 1D: E[sigma_t]/sigma_0 (Monte Carlo mean +- 2 SE) vs alpha(n)^t (Prop. 1)
contraction mixed data, started away from theta*: E[mu_t - mu*] vs (lam/(1+lam))^t (infinite-sample map)
stability  sigma_t over rounds for lam in {0, 0.5, 1, inf}: fully synthetic collapses, lam <= 1 stays
plateau    E||theta_t - theta*|| for several n at lam = 1: it settles at a level ~ 1/sqrt(n) (Thm 2)
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..retraining import gaussian as g
from ._plotting import pyplot, save_figure
from ._registry import ExperimentOutput, register


@dataclasses.dataclass
class RetrainingGaussianConfig:
    n_values: tuple[int, ...] = (5, 10, 50)      # samples per round for the collapse panel
    rounds: int = 100
    n_chains: int = 4000
    synthetic_ratios: tuple[float, ...] = (0.0, 0.5, 1.0, math.inf)
    stability_n: int = 20
    contraction_ratios: tuple[float, ...] = (0.5, 1.0, 2.0)
    contraction_rounds: int = 12
    plateau_n: tuple[int, ...] = (25, 100, 400)
    dim: int = 2                                   # dimension of the plateau panel
    seed: int = 0
    threads: int = 0

    def __post_init__(self) -> None:
        if self.rounds < 1 or self.n_chains < 2:
            raise ValueError("need rounds >= 1 and n_chains >= 2")
        if any(n < 2 for n in self.n_values + self.plateau_n) or self.stability_n < 2:
            raise ValueError("every n must be >= 2")


PRESETS = {
    "quick": dict(n_values=(5, 20), rounds=30, n_chains=1000, stability_n=10, contraction_rounds=8,
                  plateau_n=(25, 100), dim=1),
    "default": {},
    "paper": dict(n_values=(5, 10, 50, 200), rounds=300, n_chains=20000, plateau_n=(25, 100, 400, 1600)),
}


def _se(x: np.ndarray) -> np.ndarray:
    return x.std(axis=0, ddof=1) / math.sqrt(x.shape[0])


@register("retraining-gaussian", "Gaussian retraining: collapse rate alpha(n)^t, mixed-data contraction, "
          "stability and the 1/sqrt(n) plateau (Monte Carlo vs formulas)", RetrainingGaussianConfig, PRESETS,
          part="retraining", headline=True,
          claim="Refitting a Gaussian only on its own samples makes E[sigma_t] shrink exactly as alpha(n)^t "
                "(Proposition 1); keeping the real data with lambda synthetic per real point contracts to the "
                "data fit at rate lambda/(1+lambda) and the error plateaus at a level ~ 1/sqrt(n) (Theorems 1-2).")
def run(config: RetrainingGaussianConfig, out_dir: Path, progress: bool = True) -> ExperimentOutput:
    plt = pyplot()

    rows: list[dict] = []
    summary: dict = {}
    T = config.rounds
    t = np.arange(T + 1)
    kw = dict(seed=config.seed, threads=config.threads)

    # ---- collapse (Proposition 1)
    fig, axes = plt.subplots(1, 4, figsize=(19, 4.2))
    ax = axes[0]
    worst = 0.0
    for n in config.n_values:
        ch = g.simulate_chains([0.0], [[1.0]], n, T, config.n_chains, synthetic_ratio=math.inf, init_mean=[0.0],
                               init_cov=[[1.0]], **kw)
        sig = ch.std()
        mean, se = sig.mean(0), _se(sig)
        theory = g.expected_std(1.0, n, t)
        z = np.abs(mean - theory) / np.maximum(se, 1e-300)
        # only rounds where the Monte Carlo mean is still reliable (heavy tails later)
        reliable = theory > 0.05
        worst = max(worst, float(z[reliable].max()))
        for k in range(T + 1):
            rows += [dict(panel="collapse", n=n, synthetic_ratio=math.inf, round=k, metric="std_mean", value=mean[k]),
                     dict(panel="collapse", n=n, synthetic_ratio=math.inf, round=k, metric="std_se", value=se[k]),
                     dict(panel="collapse", n=n, synthetic_ratio=math.inf, round=k, metric="std_theory",
                          value=theory[k])]
        line, = ax.semilogy(t, mean, lw=1.5, label=f"n={n} simulation")
        ax.fill_between(t, np.maximum(mean - 2 * se, 1e-12), mean + 2 * se, color=line.get_color(), alpha=0.25)
        ax.semilogy(t, theory, "k--", lw=1)
        summary[f"alpha(n={n})"] = g.alpha(n)
    summary["collapse_max_z"] = worst
    ax.set(title="fully synthetic: E[sigma_t] vs alpha(n)^t (dashed)", xlabel="round t", ylabel="E[sigma_t]/sigma_0")
    ax.legend(fontsize=8)

    # ---- contraction (infinite-sample map rate lambda / (1 + lambda))
    ax = axes[1]
    n_c = 100
    for lam in config.contraction_ratios:
        Tc = config.contraction_rounds
        ch = g.simulate_chains([0.0], [[1.0]], n_c, Tc, config.n_chains, synthetic_ratio=lam, init_mean=[3.0],
                               init_cov=[[1.0]], **kw)
        # each chain's own fixed point is the fit of its real data (theta* of that chain): the
        # lambda = 0 run with the same seed draws the same real points and refits them in round 1
        own = g.simulate_chains([0.0], [[1.0]], n_c, 1, config.n_chains, synthetic_ratio=0.0, init_mean=[3.0],
                                init_cov=[[1.0]], **kw).means[:, 1, 0]
        err = ch.means[:, :, 0] - own[:, None]
        mean, se = err.mean(0), _se(err)
        rho = g.contraction_rate(lam)
        tc = np.arange(Tc + 1)
        theory = mean[0] * rho ** tc
        # measured rate: log-linear fit over the rounds where the mean error is well above the
        # Monte Carlo noise floor (|mean| > 5 SE)
        above = np.abs(mean) > 5 * se
        k_max = int(np.argmin(above)) if not above.all() else Tc + 1
        k_max = max(k_max, 2)
        fit_rate = float(np.exp(np.polyfit(tc[:k_max], np.log(np.abs(mean[:k_max])), 1)[0]))
        summary[f"contraction_rate(lam={lam:g})"] = {"theory": rho, "measured": fit_rate}
        for k in tc:
            rows += [dict(panel="contraction", n=n_c, synthetic_ratio=lam, round=int(k), metric="mean_error",
                          value=mean[k]),
                     dict(panel="contraction", n=n_c, synthetic_ratio=lam, round=int(k), metric="mean_error_se",
                          value=se[k]),
                     dict(panel="contraction", n=n_c, synthetic_ratio=lam, round=int(k), metric="mean_error_theory",
                          value=theory[k])]
        line, = ax.semilogy(tc[:k_max], np.abs(mean[:k_max]), "o-", ms=3,
                            label=f"lambda={lam:g}: rate {fit_rate:.3f} (theory {rho:.3f})")
        ax.semilogy(tc, theory, "--", color=line.get_color(), lw=1)
    ax.set(title="mixed: E[mu_t - mu*] vs (lambda/(1+lambda))^t (dashed)", xlabel="round t",
           ylabel="|E[mu_t - mu*_chain]| (above the MC noise floor)")
    ax.legend(fontsize=8)

    # ---- stability
    ax = axes[2]
    n_s = config.stability_n
    for lam in config.synthetic_ratios:
        ch = g.simulate_chains([0.0], [[1.0]], n_s, T, config.n_chains, synthetic_ratio=lam, **kw)
        sig = ch.std()
        q = np.quantile(sig, [0.1, 0.5, 0.9], axis=0)
        for k in range(T + 1):
            for name, v in (("std_q10", q[0, k]), ("std_median", q[1, k]), ("std_q90", q[2, k]),
                            ("std_mean", sig[:, k].mean())):
                rows.append(dict(panel="stability", n=n_s, synthetic_ratio=lam, round=k, metric=name, value=v))
        label = "fully synthetic" if math.isinf(lam) else f"lambda={lam:g}"
        line, = ax.semilogy(t, q[1], label=label)
        ax.fill_between(t, np.maximum(q[0], 1e-12), q[2], color=line.get_color(), alpha=0.2)
        summary[f"median_std_final({label})"] = float(q[1, -1])
    ax.set(title=f"sigma_t (median, 10-90%), n={n_s}", xlabel="round t", ylabel="sigma_t")
    ax.legend(fontsize=8)

    # ---- plateau (Theorem 2)
    ax = axes[3]
    d = config.dim
    levels = {}
    for n in config.plateau_n:
        ch = g.simulate_chains(np.zeros(d), np.eye(d), n, T, config.n_chains, synthetic_ratio=1.0, **kw)
        err = ch.param_error()
        mean = err.mean(0)
        levels[n] = float(mean[T // 2:].mean())
        for k in range(T + 1):
            rows.append(dict(panel="plateau", n=n, synthetic_ratio=1.0, round=k, metric="param_error_mean",
                             value=mean[k]))
        ax.plot(t, mean * math.sqrt(n), label=f"n={n}")
    summary["plateau_times_sqrt_n"] = {str(n): v * math.sqrt(n) for n, v in levels.items()}
    ax.set(title="lambda=1: sqrt(n) E||theta_t - theta*||", xlabel="round t",
           ylabel="sqrt(n) x error")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = out_dir / "retraining_gaussian.png"
    save_figure(fig, path, dpi=110)

    table = pd.DataFrame(rows)
    table["seed"] = config.seed
    return ExperimentOutput(table=table, figures=[path], summary=summary)
