"""Figures of the collapse atlas: the heatmap of the final round (rows remedies, columns
learners), the curves over rounds per learner, and the theory overlays."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._plotting import pyplot, save_figure
from ._setup import AtlasConfig

HEATMAP_METRICS = ("w2", "var_ratio", "recall", "memorisation")
THEORY_PANELS = (
    ("replace.det_ratio", "replace: det(Sigma_t)^(1/2)/det(Sigma_0)^(1/2) vs kappa^t", "gaussian"),
    ("replace.drift", "mean drift B||mu_t - mu_0||^2/tr Sigma_0: replace (t) vs accumulate (bounded)", "gaussian"),
    ("accumulate.trace_ratio", "accumulate: tr Sigma_t/tr Sigma_0 vs c_t/c_0", "gaussian"),
    ("mix.contraction", "mix: E[mu_t - m_r] (projected) vs (lambda/(1+lambda))^t", "gaussian"),
    ("truncated.variance_ratio", "truncated, replace: v_t / E[v_t | v_0]", "truncated"),
    ("fresh.error", "fresh: B E||mu_t - mu*||^2/tr Sigma* vs the recursion", "gaussian"),
)


def heatmap(summary: pd.DataFrame, config: AtlasConfig, path: Path) -> Path:
    """Final-round mean (and 95% CI) of each heatmap metric: rows remedies, columns learners."""
    plt = pyplot()
    grid = summary[(summary["section"] == "grid") & (summary["round"] == config.rounds)]
    metrics = [config.rank_metric] + [m for m in HEATMAP_METRICS if m != config.rank_metric and m in set(grid["metric"])]
    remedies = [r for r in config.remedies if r in set(grid["remedy"])]
    learners = [lr for lr in config.learners if lr in set(grid["learner"])]
    ncols = min(2, len(metrics))
    nrows = -(-len(metrics) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * (2.0 + 1.3 * len(learners)), nrows * (1.2 + 0.5 * len(remedies))),
                             squeeze=False)
    for ax in axes.ravel()[len(metrics):]:
        ax.axis("off")
    for ax, metric in zip(axes.ravel(), metrics):
        cell = grid[grid["metric"] == metric].set_index(["remedy", "learner"])
        vals = np.full((len(remedies), len(learners)), np.nan)
        for i, r in enumerate(remedies):
            for j, lr in enumerate(learners):
                if (r, lr) in cell.index:
                    vals[i, j] = cell.loc[(r, lr), "mean"]
        cmap = "viridis_r" if metric in ("w2", "memorisation") else "viridis"
        im = ax.imshow(vals, cmap=cmap, aspect="auto")
        for i, r in enumerate(remedies):
            for j, lr in enumerate(learners):
                if (r, lr) in cell.index:
                    row = cell.loc[(r, lr)]
                    half = (row["ci_high"] - row["ci_low"]) / 2
                    text = f"{row['mean']:.3g}" + (f"\n+-{half:.2g}" if np.isfinite(half) else "")
                    dark = im.norm(row["mean"]) < 0.5 if cmap == "viridis" else im.norm(row["mean"]) > 0.5
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if dark else "k")
        ax.set_xticks(range(len(learners)), learners, rotation=30)
        ax.set_yticks(range(len(remedies)), remedies)
        ax.set_title(f"{metric} at round {config.rounds} (mean +- 95% CI half-width)", fontsize=9)
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def curves(summary: pd.DataFrame, config: AtlasConfig, path: Path) -> Path:
    """``rank_metric`` and ``var_ratio`` over rounds, one panel per learner, one line per remedy
    (95% CI bands over seeds)."""
    plt = pyplot()
    grid = summary[summary["section"] == "grid"]
    learners = [lr for lr in config.learners if lr in set(grid["learner"])]
    metrics = [config.rank_metric, "var_ratio"]
    fig, axes = plt.subplots(len(metrics), len(learners), figsize=(4.2 * len(learners), 3.4 * len(metrics)),
                             squeeze=False)
    for i, metric in enumerate(metrics):
        for j, learner in enumerate(learners):
            ax = axes[i, j]
            sub = grid[(grid["learner"] == learner) & (grid["metric"] == metric)]
            for remedy in config.remedies:
                line = sub[sub["remedy"] == remedy].sort_values("round")
                if line.empty:
                    continue
                h, = ax.plot(line["round"], line["mean"], "o-", ms=3, lw=1.2, label=remedy)
                lo, hi = line["ci_low"].to_numpy(), line["ci_high"].to_numpy()
                if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):   # one seed: no band
                    ax.fill_between(line["round"], lo, hi, color=h.get_color(), alpha=0.15)
            ax.set(title=f"{learner}: {metric}", xlabel="round t")
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)


def theory_figure(theory: pd.DataFrame, path: Path) -> Path:
    """Simulation (mean and 95% CI over seeds of chain averages) with the theory curve dashed."""
    plt = pyplot()
    panels = [p for p in THEORY_PANELS if ((theory["remedy"] + "." + theory["metric"]) == p[0]).any()
              or (p[0] == "truncated.variance_ratio" and (theory["metric"] == "variance_ratio").any())]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.3 * len(panels), 3.6), squeeze=False)
    for ax, (key, title, learner) in zip(axes[0], panels, strict=True):
        remedy, metric = key.split(".")
        keys = [("replace", metric), ("accumulate", metric)] if key == "replace.drift" else [
            ("replace" if remedy == "truncated" else remedy, metric)]
        for r, m in keys:
            sub = theory[(theory["remedy"] == r) & (theory["metric"] == m) & (theory["learner"] == learner)]
            sub = sub.sort_values("round")
            h, = ax.plot(sub["round"], sub["mean"], "o-", ms=3, label=f"{r} simulation")
            ax.fill_between(sub["round"], sub["ci_low"], sub["ci_high"], color=h.get_color(), alpha=0.2)
            ax.plot(sub["round"], sub["theory"], "--", color="k", lw=1)
        ax.set_title(title, fontsize=8)
        ax.set_xlabel("round t")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=110)
