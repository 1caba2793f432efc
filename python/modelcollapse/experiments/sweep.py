"""``modelcollapse sweep``: an experiment over a parameter grid and several seeds, run in
parallel processes (joblib) or on a Dask cluster, merged into one Parquet table.

Each cell writes its results into its own folder and a ``DONE`` marker last, so a sweep
that is interrupted and restarted skips the finished cells.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import time
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from . import get


def parse_grid(items: list[str] | None) -> dict[str, list[str]]:
    """``["a=1,2", "b=x"]`` -> ``{"a": ["1", "2"], "b": ["x"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--grid expects key=v1,v2,..., got {item!r}")
        key, values = item.split("=", 1)
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise ValueError(f"--grid {key} has no values")
        grid[key.strip()] = vals
    return grid


def cell_name(overrides: dict[str, str]) -> str:
    text = ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    safe = "".join(c if c.isalnum() or c in "=.-_," else "_" for c in text)[:80]
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def make_cells(name: str, preset: str, grid: dict[str, list[str]], seeds: int) -> list[dict[str, str]]:
    """Every grid point x seed, each validated against the experiment's config up front."""
    exp = get(name)
    if seeds < 1:
        raise ValueError("--seeds must be >= 1")
    if seeds > 1 and "seed" not in exp.fields():
        raise ValueError(f"experiment {name} has no 'seed' field; use --seeds 1")
    if "seed" in grid and seeds > 1:
        raise ValueError("give either --seeds or a grid over seed, not both")
    keys = list(grid)
    cells = []
    for values in itertools.product(*(grid[k] for k in keys)):
        for s in range(seeds):
            overrides = dict(zip(keys, values))
            if seeds > 1:
                overrides["seed"] = str(s)
            exp.make_config(preset, overrides)  # raises ValueError on unknown keys / bad values
            cells.append(overrides)
    return cells


def run_cell(name: str, preset: str, overrides: dict[str, str], cell_dir: str) -> str:
    """Run one cell (in a worker); skipped when its DONE marker exists."""
    path = Path(cell_dir)
    if (path / "DONE").exists():
        return "skipped"
    exp = get(name)
    exp.run(exp.make_config(preset, overrides), path, progress=False)
    (path / "DONE").write_text(json.dumps(overrides))
    return "ran"


def run_sweep(name: str, preset: str, grid: dict[str, list[str]], seeds: int, out_dir: str | Path,
              scheduler: str | Any | None = None, jobs: int = -1,
              log: Callable[[str], None] = print) -> pd.DataFrame:
    """Run the sweep and return (and save as ``sweep.parquet``) the merged tidy table.

    ``scheduler``: None for local processes (joblib, ``jobs`` workers, -1 = all cores), or
    a Dask scheduler address / ``distributed.Client``.
    """
    out = Path(out_dir)
    cells = make_cells(name, preset, grid, seeds)
    dirs = [str(out / "cells" / cell_name(c)) for c in cells]
    todo = [(c, d) for c, d in zip(cells, dirs) if not (Path(d) / "DONE").exists()]
    log(f"sweep {name}: {len(cells)} cells, {len(cells) - len(todo)} already finished, {len(todo)} to run")
    start = time.perf_counter()
    if todo:
        if scheduler is None:
            from joblib import Parallel, delayed

            Parallel(n_jobs=jobs, backend="loky")(delayed(run_cell)(name, preset, c, d) for c, d in todo)
        else:
            try:
                from distributed import Client
            except ImportError as exc:  # pragma: no cover - depends on the extra
                raise ValueError("--scheduler needs the dask extra: pip install 'modelcollapse[dask]'") from exc
            client = scheduler if isinstance(scheduler, Client) else Client(scheduler)
            try:
                futures = client.map(run_cell, [name] * len(todo), [preset] * len(todo), [c for c, _ in todo],
                                     [d for _, d in todo], pure=False)
                client.gather(futures)
            finally:
                if client is not scheduler:
                    client.close()
    frames = []
    for c, d in zip(cells, dirs):
        df = pd.read_parquet(Path(d) / f"{name}.parquet")
        for key, value in c.items():
            df[f"sweep_{key}"] = value
        df["cell"] = Path(d).name
        frames.append(df)
    table = pd.concat(frames, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    table.to_parquet(out / "sweep.parquet", index=False)
    (out / "sweep.json").write_text(json.dumps({"experiment": name, "preset": preset, "grid": grid, "seeds": seeds,
                                                "cells": len(cells), "ran": len(todo),
                                                "wall_time_s": time.perf_counter() - start}, indent=2))
    log(f"merged table: {out / 'sweep.parquet'} ({len(table)} rows)")
    return table
