"""The atlas grid: every remedy x learner x seed through the one retraining loop, the tidy
summary (mean and 95% Student-t CI over seeds per remedy x learner x round x metric) and the
ranking of the remedies per learner (docs/atlas.md, sections "Budgets" and "Ranking")."""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ...mixture import GaussianMixture
from ...recursion import run_retraining
from ...retraining import FixedStart
from .._claims import Claim, claim, mean_ci
from .._units import unit
from ._setup import (
    AtlasConfig,
    active_learners,
    make_learner,
    metric_backend,
    real_sets,
    remedy_kwargs,
    remedy_learner,
    round_metrics,
    runs_for,
    seed_rng,
)

#: Words of the errors a diverging model raises (the DAE's training or sampler overflowing).
DIVERGED = ("diverged", "overflowed")


def run_grid(config: AtlasConfig, law: GaussianMixture, seeds: list[int], progress: bool = False) -> pd.DataFrame:
    """Per-seed rows (remedy, learner, seed, round, metric, value) of every run.

    Every remedy of a (learner, seed) starts from the same theta_0 (fitted once on the seed's
    B real points) and uses the loop seed ``seed``: the runs of a seed share their real data
    and their round-0 model, so remedies are compared in pairs.
    """
    backend = metric_backend(config)
    metric = round_metrics(law, config)
    tables = []
    done = 0
    learners = active_learners(config)
    total = len(seeds) * sum(runs_for(r, lr) for lr in learners for r in config.remedies)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="atlas", leave=False)
    for s in seeds:
        for j, name in enumerate(learners):
            # one unit per (seed, learner): an interrupted atlas resumes from the last finished
            # block (docs/cli.md, section "Interrupting and resuming")
            tables.append(unit(f"seed-{s}-{name}",
                               partial(_learner_block, law, config, metric, backend, s, j, name, bar)))
            if bar is not None:
                done += sum(runs_for(r, name) for r in config.remedies)   # a reused block did not update
                bar.n = done
                bar.refresh()
    if bar is not None:
        bar.close()
    return pd.concat(tables, ignore_index=True)


def _learner_block(law: GaussianMixture, config: AtlasConfig, metric: Any, backend: Any, s: int, j: int, name: str,
                   bar: Any) -> pd.DataFrame:
    """Every remedy for learner ``name`` on seed ``s`` (those of :data:`~._setup.LEARNER_REMEDIES`
    for their own learner only), from one shared theta_0."""
    real, held_out = real_sets(law, config, s)
    learner = make_learner(name, config)
    theta0 = learner.fit(real, None, seed_rng(s, 2, j))
    tables = []
    for remedy in config.remedies:
        if not runs_for(remedy, name):
            continue
        start = FixedStart(remedy_learner(remedy, learner, name, config), theta0)
        flag = dict(remedy=remedy, learner=name, seed=s, round=config.rounds, metric="diverged")
        try:
            res = run_retraining(start, rounds=config.rounds, eval_data=held_out,
                                 n_eval=config.n_eval, metrics={"atlas": metric}, seed=s, keep_states=False,
                                 progress=False, metric_backend=backend, labels={"remedy": remedy, "learner": name},
                                 **remedy_kwargs(remedy, config, law, real))
        except ValueError as err:
            if not any(word in str(err) for word in DIVERGED):
                raise
            # a model that blows up is an outcome of the cell, not an error of the atlas: the run
            # is counted (``diverged`` = 1 in the final round) and has no other values
            tables.append(pd.DataFrame([{**flag, "value": 1.0}]))
        else:
            tables.append(pd.concat([res.table[["remedy", "learner", "seed", "round", "metric", "value"]],
                                     pd.DataFrame([{**flag, "value": 0.0}])], ignore_index=True))
        if bar is not None:
            bar.update(1)
    return pd.concat(tables, ignore_index=True)


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """remedy x learner x round x metric: mean and 95% Student-t CI over seeds (``section="grid"``)."""
    rows: list[dict[str, Any]] = []
    for (remedy, learner, k, metric), grp in runs.groupby(["remedy", "learner", "round", "metric"], sort=False):
        m, lo, hi = mean_ci(grp["value"].to_numpy())
        rows.append(dict(section="grid", remedy=remedy, learner=learner, round=int(k), metric=metric, mean=m,
                         ci_low=lo, ci_high=hi, n=len(grp), theory=np.nan))
    return pd.DataFrame(rows)


def final_values(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Final-round ``metric`` per seed: index seed, columns (learner, remedy)."""
    last = runs[(runs["round"] == runs["round"].max()) & (runs["metric"] == metric)]
    return last.pivot_table(index="seed", columns=["learner", "remedy"], values="value")


def ranking(runs: pd.DataFrame, config: AtlasConfig) -> tuple[dict[str, list[tuple[str, float]]], list[Claim]]:
    """Per learner: the remedies ordered by mean final-round ``rank_metric`` (lower first), and
    a claim that the first beats the runner-up (paired by seed)."""
    metric = config.rank_metric
    final = final_values(runs, metric)
    order: dict[str, list[tuple[str, float]]] = {}
    claims: list[Claim] = []
    for learner in active_learners(config):
        if learner not in final.columns.get_level_values(0):
            continue
        per = final[learner]
        means = per.mean(axis=0).sort_values()
        order[learner] = [(str(r), float(v)) for r, v in means.items()]
        if len(means) < 2:
            continue
        first, second = str(means.index[0]), str(means.index[1])
        diff = (per[second] - per[first]).to_numpy()
        diff = diff[np.isfinite(diff)]     # seeds where either run diverged have no final value
        claims.append(claim(
            f"atlas.best_{learner}", f"{learner}: the best remedy by final-round {metric} ({first}, mean "
            f"{means.iloc[0]:.4g}) is lower than the runner-up ({second}, {means.iloc[1]:.4g}): their paired "
            f"difference is >= 0", diff, ">=", 0.0, 0.0,
            detail=f"difference {second} - {first} of the final-round {metric}, paired by seed (same real data and "
                   f"theta_0), Student-t CI over the {len(diff)} seeds where neither diverged: 'holds' means the "
                   "lead is significant at 95%, "
                   "'underpowered' that the two are not distinguished; the two were picked as the best of the same "
                   "runs, so a 'holds' near the boundary is optimistic"))
    return order, claims
