"""A5: scikit-learn's digits, an empirical (KDE) score model retrained on its own samples."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import GaussianMixture
from ... import truncation as tr
from ...hermite import hermite_moments, mixture_moments
from .._claims import claim
from .._plotting import legend_below, panels, save_figure, title
from ._common import (
    TruncationConfig,
    simulate,
)


def digits_law(n_max: int | None = None, var: float = 1e-3) -> tuple[GaussianMixture, np.ndarray]:
    """scikit-learn's digits (1797 8x8 images), standardised, PCA to 2-D, whitened; the data
    law is the empirical law, written as a mixture of tiny Gaussians (variance ``var``)."""
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    X = load_digits().data
    X = (X - X.mean(0)) / np.maximum(X.std(0), 1e-9)
    z = PCA(n_components=2, whiten=True, random_state=0).fit_transform(X)
    if n_max is not None:
        z = z[:n_max]
    return GaussianMixture(np.full(len(z), 1.0 / len(z)), z, np.full(len(z), var)), z


A5_DELTA = 0.1


def _a5_prediction(e_p: np.ndarray, s_p: np.ndarray, s_rounds: list[np.ndarray], n: int, a: float,
                   rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """Expected degree energies of the round-K output law of the empirical-score recursion
    (docs/truncation.md, section "A5: digits"): ``(B^2 E_n(p), B^2 (E_n(p) + s_n(p)/N) + V_K)``.

    The real set R is N draws from p, so E[E_n(R)] = E_n(p) + s_n(p)/N (s_n = sum of
    Var(h_alpha) over |alpha| = n). Round k's model is a R + (1-a) emp(Y_{k-1}), Y_{k-1} N
    samples of the previous output, so its coordinates are B_{n,k} g(R) plus a noise of
    variance V_k = e^{-2 n delta} (1-a)^2 (V_{k-1} + s_{n,k-1}/N), V_0 = 0; s_{n,k} is
    estimated from round k's samples."""
    nn = np.arange(len(e_p))
    B = tr.bias_factors(nn, rounds, a, A5_DELTA)
    V = np.zeros(len(e_p))
    for k in range(1, rounds + 1):
        V = np.exp(-2 * nn * A5_DELTA) * (1 - a) ** 2 * (V + s_rounds[k - 1] / n)
    return B[-1] ** 2 * e_p, B[-1] ** 2 * (e_p + s_p / n) + V


def part_a5(cfg: TruncationConfig, out: Path, progress: bool):
    """Digits: empirical-score model retrained on its own samples; unbiased (U-statistic)
    degree energies of the round-K samples vs the prediction, over ``cfg.n_seeds`` seeds,
    with the noise floor and the sampler's discretisation error (vs exact sampling)."""
    from ...empirical import EmpiricalScore
    from ...sampler import sample_reverse

    p, z = digits_law(cfg.a5_samples)
    N = len(z)
    D = min(cfg.hermite_degree, 8)
    rows = []
    delta = A5_DELTA
    mz = hermite_moments(z, D, std_errors=True)
    e_p = mixture_moments(p, D).energies()
    s_p = mz.noise_floor() * N  # sum of Var_p(h_alpha) per degree (the tiny components add O(1e-3))
    nn = np.arange(D + 1)
    # Discretisation: the sampler on the empirical score of z vs exact draws of S_delta emp(z), 4N points.
    exact = EmpiricalScore(z).sample_smoothed(4 * N, delta, seed=cfg.seed + 7)
    e_exact = hermite_moments(exact, D, std_errors=True)
    for steps in sorted({max(cfg.a5_steps // 8, 10), cfg.a5_steps // 2, cfg.a5_steps}):
        xs = sample_reverse(EmpiricalScore(z), 4 * N, T=cfg.T, delta=delta, steps=steps, grid="quadratic",
                            integrator=cfg.integrator, init="exact", seed=cfg.seed + 8).samples
        ms = hermite_moments(xs, D, std_errors=True)
        diff = ms.energies(unbiased=True) - e_exact.energies(unbiased=True)
        se = np.sqrt(2 * ms.noise_floor() * (ms.energies() + e_exact.energies()))  # delta method, two samples
        for j in nn[1:]:
            rows += [dict(part="A5", real_fraction=np.nan, round=0, replicate=-1, metric=f"disc_energy_{j}_steps{steps}",
                          value=float(diff[j])),
                     dict(part="A5", real_fraction=np.nan, round=0, replicate=-1,
                          metric=f"disc_energy_{j}_steps{steps}_se", value=float(se[j]))]
        rows.append(dict(part="A5", real_fraction=np.nan, round=0, replicate=-1, metric=f"disc_var_rel_steps{steps}",
                         value=float(np.trace(np.cov(xs.T)) / np.trace(np.cov(exact.T)) - 1)))
    fig, axes = panels(4, ncols=2, size=(4.4, 3.4),
                       title=f"A5, digits (PCA to 2-D): empirical-score model retrained on its own samples for "
                             f"{cfg.a5_rounds} rounds (delta={delta}, N={N}, {cfg.a5_steps} steps), without (a=0) "
                             "and with (a=0.5) real data: samples, Hermite degree energies against the prediction, "
                             "and distance to the data")
    meas: Any  # per-seed rows, then their array
    floors: Any
    for i, a in enumerate((0.0, 0.5)):
        meas, floors, preds = [], [], []
        for r in range(cfg.n_seeds):
            res = simulate(f"a5-a{a:g}-s{r}", p, cfg.a5_rounds, N, a, delta, model="empirical", T=cfg.T,
                           steps=cfg.a5_steps, grid="quadratic", integrator=cfg.integrator, seed=cfg.seed + 3 + 1000 * r,
                           progress=progress, hermite_degree=2)
            mom = [hermite_moments(xs, D, std_errors=True) for xs in res.samples]
            _, pred = _a5_prediction(e_p, s_p, [m.noise_floor() * N for m in mom], N, a, cfg.a5_rounds)
            e_u, floor = mom[-1].energies(unbiased=True), mom[-1].noise_floor()
            meas.append(e_u)
            floors.append(floor)
            preds.append(pred)
            base = dict(part="A5", real_fraction=a, round=cfg.a5_rounds, replicate=r)
            for j in nn:
                rows += [dict(base, metric=f"energy_{j}", value=float(e_u[j])),
                         dict(base, metric=f"energy_{j}_plugin", value=float(mom[-1].energies()[j])),
                         dict(base, metric=f"energy_{j}_noise_floor", value=float(floor[j])),
                         dict(base, metric=f"energy_{j}_predicted", value=float(pred[j]))]
            for k, xs in enumerate(res.samples):
                rows.append(dict(base, round=k, metric="sliced_w2_to_data", value=tr.sliced_w2(xs, z, seed=k)))
                rows.append(dict(base, round=k, metric="var_trace", value=float(np.trace(np.cov(xs.T)))))
        ideal, _ = _a5_prediction(e_p, s_p, [0 * e_p] * cfg.a5_rounds, N, a, cfg.a5_rounds)
        for j in nn:
            rows.append(dict(part="A5", real_fraction=a, round=cfg.a5_rounds, replicate=-1,
                             metric=f"energy_{j}_ideal", value=float(ideal[j])))
        meas, floors = np.array(meas), np.array(floors)
        ax = axes[i]
        ax.scatter(z[:, 0], z[:, 1], s=2, color="grey", alpha=0.4, label="digits (PCA-2)")
        ax.scatter(res.samples[-1][:, 0], res.samples[-1][:, 1], s=2, color=f"C{i}", alpha=0.5,
                   label=f"samples, round {cfg.a5_rounds}")
        title(ax, f"a={a}: samples after round {cfg.a5_rounds} vs the data")
        ax.set(xlabel="PC 1 (standardised)", ylabel="PC 2 (standardised)")
        ax.legend(fontsize=7, markerscale=4, loc="upper left")
        m = meas.mean(0)
        sd = meas.std(0, ddof=1) / np.sqrt(len(meas)) if len(meas) > 1 else 0 * m
        axes[2].errorbar(nn + 0.1 * i, np.abs(m), yerr=2 * sd, fmt="o", color=f"C{i}", ms=4,
                         label=f"a={a}: measured (U-stat., mean of {len(meas)} seeds, +-2 SE)")
        axes[2].semilogy(nn, np.mean(preds, 0), "-", color=f"C{i}", label=f"a={a}: predicted, finite N")
        axes[2].semilogy(nn, ideal, ":", color=f"C{i}", label=f"a={a}: B_n,K^2 E_n(data) (N = inf)")
        axes[2].semilogy(nn, floors.mean(0), "x", color=f"C{i}", label=f"a={a}: noise floor sum se^2")
        t = pd.DataFrame([r for r in rows if r["metric"] == "sliced_w2_to_data" and r["real_fraction"] == a])
        t = t.groupby("round")["value"].mean()
        axes[3].plot(t.index, t.values, "o-", color=f"C{i}", label=f"a={a} (mean of seeds)")
    axes[2].semilogy(nn, e_p, "k:", label="data E_n(p)")
    # whitened data have E_1 = E_2 = 0 up to rounding (1e-32): the axis starts below the noise
    # floor instead, so that the degrees the claims test stay readable
    axes[2].set_ylim(bottom=0.2 * float(np.min(floors.mean(0)[1:])))
    title(axes[2], f"Hermite degree energies after {cfg.a5_rounds} rounds")
    axes[2].set(xlabel="total Hermite degree n", ylabel="energy E_n")
    legend_below(fig, axes[2], ncols=3, fontsize=7)
    title(axes[3], "sliced W2 to the digits data")
    axes[3].set(xlabel="round k", ylabel="sliced W2(samples, data)")
    axes[3].legend()
    f = out / "truncation_a5.png"
    save_figure(fig, f)
    return pd.DataFrame(rows), [f]


def digits_claims(table: pd.DataFrame, cfg: TruncationConfig) -> list:
    """A5: the unbiased degree energies of the round-K digits samples vs the finite-N prediction."""
    out = []
    t = table[(table.part == "A5") & (table.replicate >= 0) & (table["round"] == cfg.a5_rounds)]
    for a, g in t.groupby("real_fraction"):
        v = g.pivot_table(index="replicate", columns="metric", values="value")
        degs = range(1, len([c for c in v.columns if c.endswith("_predicted")]))
        meas = sum(v[f"energy_{n}"] for n in degs)
        pred = sum(v[f"energy_{n}_predicted"] for n in degs)
        out.append(claim(
            f"a5.energy_sum_a{a}",
            f"digits, a={a}, round {cfg.a5_rounds}: the unbiased (U-statistic) energy of degrees 1..{max(degs)} "
            "equals its finite-N prediction B^2 (E_n(p) + s_n/N) + V_K (relative excess ~ 0)",
            ((meas - pred) / pred).values, "~", 0.0, 0.25,
            detail="per seed: (sum_n E_n^U - sum_n predicted) / sum_n predicted; tolerance 0.25 = a deviation that "
                   "would change the reading (the quick preset's plug-in energies with 20 steps were 5-10x off)"))
    return out


