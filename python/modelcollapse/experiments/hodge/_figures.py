"""The hodge experiment's figures."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .._plotting import panels, save_figure, title
from ._setup import (
    HodgeConfig,
)
from ._studies import spearman_mean


def _figures(cfg: HodgeConfig, cdf: pd.DataFrame, idf: pd.DataFrame, bdf: pd.DataFrame, summary: dict,
             exact_q: dict[str, float], out_dir: Path) -> list[Path]:
    figs = []
    mixed = cdf[cdf.family == "mixed"]
    control = cdf[cdf.family == "control"]
    fig, axes = panels(3, size=(3.6, 3.2),
                       title=f"Sample quality of {len(mixed)} perturbed score models (points; colour: solenoidal "
                             f"amplitude c) against three measures of their score error, {cfg.n_seeds} seeds; "
                             "quality follows the gradient part, not the L2 error")
    for ax, measure, label in zip(axes, ("l2_error", "gradient_estimate", "gradient_exact"),
                                  ("integrated L2 error", "integrated gradient part (estimate)",
                                   "integrated gradient part (exact)")):
        sc = ax.scatter(mixed[measure], mixed.hellinger, c=mixed.c, cmap="viridis", s=18)
        ax.scatter(control[measure], control.hellinger, marker="x", color="C3", s=18, label="control (c = 0)")
        rho = spearman_mean(summary, "mixed", measure, "hellinger")
        rho_c = spearman_mean(summary, "control", measure, "hellinger")
        ax.set_xlabel(label)
        ax.set_ylabel("Hellinger(samples, p_delta)")
        title(ax, f"mean Spearman rho = {rho:.2f} (control {rho_c:.2f})")
        if measure == "l2_error":
            ax.set_xscale("log")
        else:
            ax.set_xscale("symlog", linthresh=1e-2)
    axes[0].legend(loc="upper left")
    fig.colorbar(sc, ax=axes, label="solenoidal amplitude c", shrink=0.9)
    path = out_dir / "hodge_correlation.png"
    save_figure(fig, path)
    figs.append(path)

    fig, ax = panels(2, size=(4.4, 3.4),
                     title="Impossibility: the rotated score (I + cA) grad log p_t has an L2 error growing like c^2, "
                           "while the sample quality stays flat once the sampler takes enough steps")
    for steps, sub in idf.groupby("steps"):
        agg = sub.groupby("c").hellinger.agg(["mean", "std", "count"])
        ax[0].errorbar(agg.index, agg["mean"], yerr=2 * agg["std"] / np.sqrt(agg["count"]), fmt="o-",
                       capsize=3, label=f"{steps} steps")
    ax[0].axhline(exact_q["hellinger"], color="k", ls=":", label="exact score")
    ax[0].set_xlabel("rotation amplitude c in (I + cA) grad log p_t")
    ax[0].set_ylabel("Hellinger(samples, p_delta)")
    title(ax[0], f"sample quality (mean +- 2 SE, {cfg.n_seeds} seeds)")
    ax[0].legend()
    sub = idf[(idf.steps == cfg.steps_many) & (idf.replicate == 0)]
    ax[1].plot(sub.c, sub.l2_error, "s-", color="C3")
    ax[1].set_yscale("symlog", linthresh=1e-2)
    ax[1].set_xlabel("rotation amplitude c")
    ax[1].set_ylabel("integrated L2 score error")
    title(ax[1], "L2 error of the rotated score")
    path = out_dir / "hodge_impossibility.png"
    save_figure(fig, path)
    figs.append(path)

    ncol = 3 if cfg.fp_n > 0 else 2
    fig, axs = panels(ncol, size=(4.2, 3.4),
                      title="KL bounds: true KL(p_delta || q_delta) of score models with a gradient error u and a "
                            "solenoidal error c, against the Girsanov and the marginal bound")
    axes = [axs]
    for ax, law in zip(axes[0][1:], ("gaussian", "mixture")):
        sub = bdf[bdf.law == law]
        for u, s2 in sub.groupby("u"):
            if law == "gaussian" and u not in (0.0, max(cfg.us)):
                continue
            ax.plot(s2.c, s2.girsanov_bound, "^--", label=f"Girsanov, u={u}")
            ax.plot(s2.c, s2.marginal_bound, "s-", label=f"marginal, u={u}")
            ax.plot(s2.c, s2.true_kl, "o:", label=f"true KL, u={u}")
        ax.set_yscale("log")
        ax.set_xlabel("solenoidal amplitude c")
        ax.set_ylabel("KL(p_delta || q_delta)")
        title(ax, f"{law}: bounds vs true KL")
        ax.legend(fontsize=7, loc="center right")
    ax = axes[0][0]
    gb = bdf[bdf.law == "gaussian"]
    for u, s2 in gb.groupby("u"):
        line, = ax.plot(s2.c, s2.true_kl, "o-", label=f"true KL, u={u:g}")
        ax.axhline(s2.marginal_bound.iloc[0], color=line.get_color(), ls=":", lw=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("solenoidal amplitude c")
    ax.set_ylabel("true KL(p_delta || q_delta)")
    title(ax, "interaction (Gaussian): true KL vs c; dotted: marginal bound")
    ax.legend(fontsize=7, loc="center right")
    path = out_dir / "hodge_bounds.png"
    save_figure(fig, path)
    figs.append(path)
    return figs

