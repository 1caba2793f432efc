"""Figures of the collapse atlas: the heatmap of the final round (rows remedies, columns
learners), the curves over rounds per learner, and the theory overlays."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._plotting import panels, save_figure
from ._setup import LOWER_IS_BETTER, AtlasConfig, active_learners

HEATMAP_METRICS = ("w2", "variance_ratio", "recall", "memorization")
THEORY_PANELS = (   # title, [(remedy, learner, metric) drawn in the panel]
    ("E||mu_t - mu*||^2 / tr Sigma* (Gaussian)", [("replace", "gaussian", "mean_sq_error"),
                                                  ("accumulate", "gaussian", "mean_sq_error"),
                                                  ("accumulate-subsample", "gaussian", "mean_sq_error"),
                                                  ("mix", "gaussian", "mean_sq_error"),
                                                  ("fresh", "gaussian", "mean_sq_error")]),
    ("E[tr Sigma_t] / tr Sigma* (Gaussian)", [("replace", "gaussian", "cov_factor"),
                                              ("accumulate", "gaussian", "cov_factor"),
                                              ("accumulate-subsample", "gaussian", "cov_factor"),
                                              ("temperature", "gaussian", "cov_factor")]),
    ("replace: sqrt det ratio vs kappa^t", [("replace", "gaussian", "sqrt_det_ratio")]),
    ("mix from an offset start: E[mu_t - m_r] vs rho^t", [("mix", "gaussian", "offset_contraction")]),
    ("truncated: v_t / E[v_t | v_0]; DAE fixed b: off-W moment / v(b)",
     [("replace", "truncated", "variance_over_theory"), ("annealed", "truncated", "variance_over_theory"),
      ("fixed-skip", "dae", "off_w_variance_over_theory")]),
)


def badness(metric: str, values: np.ndarray) -> np.ndarray:
    """How far each value is from the good end of ``metric`` (larger is worse): the value for
    the lower-is-better metrics, ``|log v|`` for ``variance_ratio`` (1 is right), minus the value
    otherwise (recall: higher is better)."""
    values = np.asarray(values, dtype=float)
    if metric in LOWER_IS_BETTER:
        return values
    if metric == "variance_ratio":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.abs(np.log(values))
    return -values


def column_ranks(bad: np.ndarray) -> np.ndarray:
    """Rank of each cell within its column, scaled to [0, 1] (0 = best, 1 = worst; ties share
    the mean rank; NaN stays NaN; a column with one value gives 0)."""
    out = np.full(bad.shape, np.nan)
    for j in range(bad.shape[1]):
        col = bad[:, j]
        ok = np.isfinite(col)
        if ok.sum() == 0:
            continue
        ranks = pd.Series(col[ok]).rank(method="average").to_numpy() - 1.0
        out[ok, j] = ranks / max(ok.sum() - 1, 1)
    return out


def heatmap(summary: pd.DataFrame, config: AtlasConfig, path: Path) -> Path:
    """Final-round mean (and 95% CI) of each heatmap metric: rows remedies, columns learners.

    The colour of a cell is its remedy's rank within the learner's column (best to worst),
    not the value: learners live on different scales (a DAE's W2 is not a Gaussian's) and one
    runaway remedy would otherwise leave every other cell the same colour. The numbers are the
    values."""
    grid = summary[(summary["section"] == "grid") & (summary["round"] == config.rounds)]
    metrics = [config.rank_metric] + [m for m in HEATMAP_METRICS if m != config.rank_metric and m in set(grid["metric"])]
    remedies = [r for r in config.remedies if r in set(grid["remedy"])]
    learners = [lr for lr in active_learners(config) if lr in set(grid["learner"])]
    # panels wrapped to the report's width (at most 1250 px)
    fig, axes = panels(len(metrics), ncols=2, size=(1.2 + 0.9 * len(learners), 1.0 + 0.45 * len(remedies)))
    for ax, metric in zip(axes, metrics):
        cell = grid[grid["metric"] == metric].set_index(["remedy", "learner"])
        vals = np.full((len(remedies), len(learners)), np.nan)
        for i, r in enumerate(remedies):
            for j, lr in enumerate(learners):
                if (r, lr) in cell.index:
                    vals[i, j] = cell.loc[(r, lr), "mean"]
        ranks = column_ranks(badness(metric, vals))
        im = ax.imshow(ranks, cmap="viridis_r", vmin=0.0, vmax=1.0, aspect="auto")
        for i, r in enumerate(remedies):
            for j, lr in enumerate(learners):
                if (r, lr) in cell.index:
                    row = cell.loc[(r, lr)]
                    half = (row["ci_high"] - row["ci_low"]) / 2
                    text = f"{row['mean']:.3g}" + (f"\n+-{half:.2g}" if np.isfinite(half) else "")
                    dark = np.isfinite(ranks[i, j]) and ranks[i, j] > 0.5
                    ax.text(j, i, text, ha="center", va="center", fontsize=7, color="w" if dark else "k")
        ax.set_xticks(range(len(learners)), learners, rotation=30)
        ax.set_yticks(range(len(remedies)), remedies)
        ax.set(xlabel="learner", ylabel="remedy")
        good = {"variance_ratio": "closest to 1"}.get(metric, "lowest" if metric in LOWER_IS_BETTER else "highest")
        ax.set_title(f"{metric} at round {config.rounds} (mean +- 95% CI half-width)", fontsize=9)
        bar = fig.colorbar(im, ax=ax, shrink=0.8, ticks=[0.0, 1.0], label=f"rank within learner (best: {good})")
        bar.ax.set_yticklabels(["best", "worst"])
    return save_figure(fig, path)


def curves(summary: pd.DataFrame, config: AtlasConfig, path: Path) -> Path:
    """``rank_metric`` and ``variance_ratio`` over rounds, one panel per learner, one line per remedy
    (95% CI bands over seeds)."""
    grid = summary[summary["section"] == "grid"]
    learners = [lr for lr in active_learners(config) if lr in set(grid["learner"])]
    metrics = [config.rank_metric, "variance_ratio"]
    fig, flat = panels(len(metrics) * len(learners))
    for i, metric in enumerate(metrics):
        for j, learner in enumerate(learners):
            ax = flat[i * len(learners) + j]
            sub = grid[(grid["learner"] == learner) & (grid["metric"] == metric)]
            for remedy in config.remedies:
                line = sub[sub["remedy"] == remedy].sort_values("round")
                if line.empty:
                    continue
                h, = ax.plot(line["round"], line["mean"], "o-", ms=3, lw=1.2, label=remedy)
                lo, hi = line["ci_low"].to_numpy(), line["ci_high"].to_numpy()
                if np.all(np.isfinite(lo)) and np.all(np.isfinite(hi)):   # one seed: no band
                    ax.fill_between(line["round"], lo, hi, color=h.get_color(), alpha=0.15)
            ax.set(title=f"{learner}: {metric}", xlabel="round t", ylabel=metric)
            if i == 0 and j == 0:
                ax.legend(fontsize=7)
    return save_figure(fig, path)


def theory_figure(theory: pd.DataFrame, path: Path, bound: float | None = None) -> Path:
    """Simulation (mean and 95% CI over seeds of chain averages) with the theory curves dashed;
    ``bound``: accumulate's (pi^2/6)/B drawn on the mean-error panel."""
    fig, axes = panels(len(THEORY_PANELS))
    for i, (ax, (title, lines)) in enumerate(zip(axes, THEORY_PANELS, strict=True)):
        for remedy, learner, metric in lines:
            sub = theory[(theory["remedy"] == remedy) & (theory["metric"] == metric) & (theory["learner"] == learner)]
            sub = sub.sort_values("round")
            if sub.empty:
                continue
            h, = ax.plot(sub["round"], sub["mean"], "o-", ms=3, label=f"{remedy} ({learner})")
            ax.fill_between(sub["round"], sub["ci_low"], sub["ci_high"], color=h.get_color(), alpha=0.2)
            ax.plot(sub["round"], sub["theory"], "--", color=h.get_color(), lw=1)
        if i == 0 and bound is not None:
            ax.axhline(bound, color="k", lw=0.8, ls=":", label="(pi^2/6)/B")
        ax.set_title(title, fontsize=8)
        ax.set(xlabel="round t", ylabel="simulation (theory dashed)")
        ax.legend(fontsize=7)
    return save_figure(fig, path)
