"""``modelcollapse run atlas``: every remedy against every learner in the one retraining loop,
with the theory overlays where a theory exists (docs/atlas.md)."""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from ... import retraining as rt
from ..._checkpoint import atomic_file
from .._registry import ExperimentOutput, register
from .._units import unit
from ._figures import curves, heatmap, theory_figure
from ._grid import ranking, run_grid, summarise
from ._setup import PRESETS, AtlasConfig, data_law
from ._theory import run_theory

COLUMNS = ["section", "remedy", "learner", "round", "metric", "mean", "ci_low", "ci_high", "n", "theory"]


def _figures(summary_table: pd.DataFrame, theory: pd.DataFrame, config: AtlasConfig, out_dir: Path) -> list[Path]:
    return [heatmap(summary_table, config, out_dir / "atlas_heatmap.png"),
            curves(summary_table, config, out_dir / "atlas_curves.png"),
            theory_figure(theory, out_dir / "atlas_theory.png", rt.accumulate_mean_error_bound(config.budget))]


@register("atlas", "The collapse atlas: remedies x learners x rounds x metrics with 95% CIs over seeds, equal "
          "training budgets, theory overlays (Gaussian replace / accumulate / subsample / mix, truncated and annealed "
          "variance, DAE fixed-b variance)",
          AtlasConfig, PRESETS, part="atlas", headline=True,
          claim="Every remedy of the model-collapse literature runs through the same retraining loop, on the same "
                "learners, data and budget (B points per round; accumulate counted by its B new synthetic points a "
                "round). The theory overlays are checked against chains of that loop (claims atlas.replace_*, "
                "atlas.accumulate_*, atlas.subsample_*, atlas.mix_contraction_*, atlas.truncated_variance, "
                "atlas.annealed_variance, atlas.fixed_skip_variance), and for each learner the "
                "best remedy by final-round W2 is tested against the runner-up, paired by seed (atlas.best_*).")
def run(config: AtlasConfig, out_dir: Path, progress: bool = True) -> ExperimentOutput:
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # (no stubs; a scikit-learn dependency)

    law = data_law(config.dim)
    seeds = [config.seed + k for k in range(config.seeds)]
    # scikit-learn's EM on a few hundred points only loses to thread start-up (and the
    # machines the atlas runs on are shared): one BLAS / OpenMP thread
    with threadpool_limits(limits=1):
        runs = run_grid(config, law, seeds, progress)
        theory, theory_claims = run_theory(config, law, seeds)
    with atomic_file(out_dir / "atlas_runs.parquet", "wb") as fh:
        runs.to_parquet(fh, index=False)
    summary_table = summarise(runs)
    table = pd.concat([summary_table, theory], ignore_index=True)[COLUMNS]
    order, rank_claims = ranking(runs, config)
    # the figures are a unit too (their image bytes): drawing them is most of a resumed run's time
    figures = unit("figures", partial(_figures, summary_table, theory, config, out_dir))
    budget = runs[(runs["metric"] == "train_size") & (runs["round"] == config.rounds)]
    summary = {
        "seeds": seeds,
        "ranking": {lr: [f"{r}: {v:.4g}" for r, v in rows] for lr, rows in order.items()},
        "train_size_final_round": {r: float(v) for r, v in budget.groupby("remedy")["value"].mean().items()},
        "rank_metric": config.rank_metric,
    }
    return ExperimentOutput(table=table, figures=figures, summary=summary, claims=[*theory_claims, *rank_claims])
