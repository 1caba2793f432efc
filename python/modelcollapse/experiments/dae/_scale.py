"""D5: d from 1e3 to 1e5: throughput and 1/sqrt(d) fluctuations vs the ODEs."""
from __future__ import annotations

import dataclasses
import time
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from ... import dae
from ... import dae_theory as th
from .._plotting import panels, save_figure
from .._registry import ExperimentOutput, register
from .._units import unit
from ._common import _trimodal, _warm


@dataclasses.dataclass
class ScaleConfig:
    dims: tuple[int, ...] = (1000, 10000, 100000)  # dimensions d of the throughput measurement (a fixed number of steps each)
    throughput_steps: int = 400  # SGD steps per replica timed at each d
    fluct_dims: tuple[int, ...] = (1000, 3000, 10000)  # dimensions d of the full runs to tau: fluctuations vs d
    replicas: int = 4  # independent replicas per d (their spread is the fluctuation)
    tau: float = 1.0  # training time of the fluctuation runs (SGD steps x 2 lr / d)
    lr: float = 0.5  # SGD learning rate eta
    mean_norm: float = 3.0  # distance of the three cluster means from the origin
    seed: int = 0  # seed of the replicas
    threads: int = 0  # threads of the compiled kernels (0: all cores); the throughput is also timed at 1


def _throughput_rows(cfg: ScaleConfig, d: int) -> list[dict]:
    """SGD steps/s at dimension d on one thread and on ``cfg.threads``, and the state size."""
    tg = _trimodal(d, cfg.mean_norm)[2]
    rows = []
    for threads in dict.fromkeys((1, cfg.threads)):   # threads=1: timed once, one row
        t0 = time.perf_counter()
        dae.train(tg, r=2, n_steps=cfg.throughput_steps, lr=cfg.lr, replicas=cfg.replicas, seed=cfg.seed,
                  record_every=cfg.throughput_steps, threads=threads)
        wall = time.perf_counter() - t0
        rows.append(dict(d=d, part="throughput", threads=threads, metric="steps_per_s",
                         value=cfg.throughput_steps * cfg.replicas / wall))
    rows.append(dict(d=d, part="throughput", threads=0, metric="state_MB_per_replica",
                     value=(2 * d + 2 * max(16384, d)) * 8 / 1e6))
    return rows


def _fluctuation_rows(cfg: ScaleConfig, d: int, m: np.ndarray) -> list[dict]:
    """Replicas trained to ``cfg.tau`` at dimension d: spread of M and its distance to the ODE."""
    _, E, tg = _trimodal(d, cfg.mean_norm)
    n = dae.training_steps(cfg.tau, d, cfg.lr)
    run = dae.train(tg, r=2, n_steps=n, lr=cfg.lr, observe=E, replicas=cfg.replicas, seed=cfg.seed,
                    init=_warm(d, 2, np.array([[0.5, 0.1], [-0.1, 0.4]]), cfg.seed), record_every=n,
                    threads=cfg.threads)
    ode = th.integrate_odes(th.theory_target(m, 1.0), run.Q[:, 0].mean(0), run.G[:, 0].mean(0), taus=run.tau,
                            lr=cfg.lr, n_nodes=8, dtau=0.05)
    return [dict(d=d, part="fluctuations", threads=cfg.threads, metric=k, value=float(v))
            for k, v in (("mean_abs_dev_M_vs_ode", np.abs(run.M[:, -1] - ode.M[-1]).mean()),
                         ("replica_std_M", run.M[:, -1].std(0).mean()), ("n_steps", n))]


@register("dae-scale", "D5: d from 1e3 to 1e5, ensembles of runs: throughput and 1/sqrt(d) fluctuations vs ODEs",
          ScaleConfig, {
              "quick": dict(dims=(300, 3000), throughput_steps=100, fluct_dims=(300, 1200), replicas=3, tau=0.5),
              "default": {},
              "paper": dict(fluct_dims=(1000, 3000, 10000, 30000), replicas=8, tau=2.0),
          }, part="dae")
def run_scale(cfg: ScaleConfig, out: Path, progress: bool) -> ExperimentOutput:
    m = _trimodal(3, cfg.mean_norm)[0]
    # one unit per (part, d) (docs/cli.md, "Interrupting and resuming"): a resumed run reports
    # the throughput timed when that unit ran
    rows = [row for d in cfg.dims for row in unit(f"throughput-d{d}", partial(_throughput_rows, cfg, d))]
    rows += [row for d in cfg.fluct_dims for row in unit(f"fluctuations-d{d}", partial(_fluctuation_rows, cfg, d, m))]
    table = pd.DataFrame(rows)
    fig, axes = panels(2, size=(4.2, 3.3),
                       title=f"D5: the DAE at growing dimension d: fluctuations of the overlaps M around the ODEs at "
                             f"tau={cfg.tau:g} ({cfg.replicas} replicas) and SGD throughput")
    fl = table[table.part == "fluctuations"].pivot_table(index="d", columns="metric", values="value")
    ds = fl.index.values.astype(float)
    axes[0].loglog(ds, fl["replica_std_M"], "o-", label="replica std of M")
    axes[0].loglog(ds, fl["mean_abs_dev_M_vs_ode"], "s-", label="|M - ODE|")
    axes[0].loglog(ds, fl["replica_std_M"].iloc[0] * np.sqrt(ds[0] / ds), "k--", label="1/sqrt(d)")
    axes[0].set(xlabel="dimension d", ylabel="mean over entries of M")
    axes[0].legend(fontsize=7)
    axes[0].set_title("fluctuations vs 1/sqrt(d)")
    tp = table[(table.part == "throughput") & (table.metric == "steps_per_s")]
    for threads, sub in tp.groupby("threads"):
        axes[1].loglog(sub.d, sub.value, "o-", label=f"threads={threads or 'all'}")
    ref_ = tp[tp.threads == 1]
    axes[1].loglog(ref_.d, ref_.value.iloc[0] * ref_.d.iloc[0] / ref_.d, "k--", label="~1/d")
    axes[1].set_xlabel("dimension d")
    axes[1].set_ylabel("SGD steps/s (all replicas)")
    axes[1].legend(fontsize=7)
    axes[1].set_title("throughput")
    path = out / "dae_scale.png"
    save_figure(fig, path)
    slope = float(np.polyfit(np.log(ds), np.log(fl["replica_std_M"].values), 1)[0]) if len(ds) > 1 else float("nan")
    # one row per d: SGD steps/s of all replicas on one thread and on cfg.threads (single timings)
    throughput = [{"d": int(d), **{f"steps/s, threads={t or 'all'}": float(v) for t, v in zip(sub.threads, sub.value)}}
                  for d, sub in tp.groupby("d", sort=True)]
    return ExperimentOutput(table, [path], {"fluctuation_slope": slope, "throughput": throughput})


# ============================================================================ D4
