"""D1: M, Q, b over training time (simulation vs the ODEs)."""
from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ... import dae
from ... import dae_theory as th
from .._plotting import panels, pyplot, save_figure
from .._registry import ExperimentOutput, register
from .._units import unit
from ._common import _trimodal, _warm


@dataclasses.dataclass
class TrainingConfig:
    d: int = 2000  # dimension of the data
    r: int = 2  # hidden units of the DAE (Cui et al., Fig. 5: 2)
    mean_norm: float = 3.0  # distance of the three cluster means from the origin
    lr: float = 0.2  # SGD learning rate eta (Fig. 5: 0.2)
    weight_decay: float = 0.0  # weight decay lambda (Fig. 5 caption: 0)
    tau_max: float = 6.0  # training time reached, SGD steps x 2 lr / d
    n_records: int = 24  # recorded points along the training
    replicas: int = 5  # independent SGD replicas (mean +- std in the figure)
    init: str = "warm"  # initial weights: "warm" (O(1) overlaps with the means) or "random"
    n_nodes: int = 10  # quadrature nodes per direction of the ODEs' Gaussian expectations
    seed: int = 0  # seed of the replicas
    threads: int = 0  # threads of the compiled kernels (0: all cores)


@register("dae-training", "D1: M, Q, b over training time for a trimodal isotropic mixture (simulation vs ODEs)",
          TrainingConfig, {
              "quick": dict(d=400, tau_max=1.5, replicas=2, n_records=6, n_nodes=6),
              "default": {},
              "paper": dict(d=1000, tau_max=8.0, replicas=8, init="random", n_nodes=12),
          }, part="dae", headline=True,
          claim=("A two-layer denoising autoencoder trained by online SGD in dimension d concentrates on "
                 "deterministic ODEs for its summary statistics (M, Q, b) as d grows; the skip connection b(tau) "
                 "follows a closed form set by the average covariance eigenvalue, which is what makes real-data "
                 "spectra collapse the generated variance. Summary: simulation vs ODE."))
def run_training(cfg: TrainingConfig, out: Path, progress: bool) -> ExperimentOutput:
    m, E, tg = _trimodal(cfg.d, cfg.mean_norm)
    n = dae.training_steps(cfg.tau_max, cfg.d, cfg.lr)
    init = "random" if cfg.init == "random" else _warm(cfg.d, cfg.r, np.array([[0.5, 0.1], [-0.1, 0.4]])[: cfg.r], cfg.seed)

    def simulate() -> dict:
        # all replicas in one call (spread over the threads); the wall time is part of the unit,
        # so a resumed run reports the throughput measured when the simulation ran
        t0 = time.perf_counter()
        run = dae.train(tg, r=cfg.r, n_steps=n, lr=cfg.lr, weight_decay=cfg.weight_decay, observe=E,
                        replicas=cfg.replicas, seed=cfg.seed, init=init, record_every=max(1, n // cfg.n_records),
                        threads=cfg.threads)
        return {"run": run.to_dict(), "wall_s": time.perf_counter() - t0}

    # two units (docs/cli.md, "Interrupting and resuming"): the SGD replicas, then their ODEs
    sim = unit("simulation", simulate)
    run, sim_wall = dae.DaeRun(**sim["run"]), sim["wall_s"]
    # finite-d target (docs/dae.md, "Theory"): keeps the O(1/d) parts of db (||mu||^2 / d and the
    # network term), which the closed form b(tau) (d -> infinity) drops
    ode = dae.TrainingPath(**unit("ode", lambda: th.integrate_odes(
        th.theory_target(m, 1.0, d=cfg.d), run.Q[:, 0].mean(0), run.G[:, 0].mean(0), 0.0, taus=run.tau, lr=cfg.lr,
        weight_decay=cfg.weight_decay, n_nodes=cfg.n_nodes, dtau=0.05).to_dict()))
    b_cf = th.skip_closed_form(run.tau, 1.0, (0.5,))
    # simulation and theory share their field names (docs/dae.md, "Results"): their tidy
    # tables have the same columns, melted here into (source, replica, tau, metric, value)
    stats = ([f"M[{c},{j}]" for c in range(3) for j in range(cfg.r)]
             + [f"Q[{j},{l}]" for j in range(cfg.r) for l in range(j, cfg.r)])
    closed = pd.DataFrame({"tau": run.tau, "b": b_cf})
    parts = [(run.to_frame(), "simulation", stats + ["b"]), (ode.to_frame(), "ode", stats),
             (closed, "closed_form", ["b"])]
    table = pd.concat([frame.assign(source=source, replica=frame.get("replica", -1))
                       .melt(id_vars=["source", "replica", "tau"], value_vars=cols, var_name="metric")
                       for frame, source, cols in parts], ignore_index=True)
    table["d"] = cfg.d
    plt = pyplot()
    fig, axes = panels(3, size=(3.8, 3.2),
                       title=f"D1: summary statistics of the DAE over training time, d={cfg.d}: simulation (points, "
                             f"mean +- std over {cfg.replicas} replicas) vs the ODEs and the closed form (dashed)")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for idx, (c, j) in enumerate([(a, b) for a in range(3) for b in range(cfg.r)]):
        col = colors[idx % len(colors)]
        mean, sd = run.M[:, :, c, j].mean(0), run.M[:, :, c, j].std(0)
        axes[0].errorbar(run.tau, mean, sd, color=col, fmt="o", ms=3, label=f"M{c}{j}")
        axes[0].plot(run.tau, ode.M[:, c, j], "--", color=col)
    axes[0].set_title("overlaps with the cluster means")
    axes[0].set_ylabel("M_cj = w_j^T mu_c / sqrt(d)")
    for idx, (j, l) in enumerate([(a, b) for a in range(cfg.r) for b in range(a, cfg.r)]):
        col = colors[idx % len(colors)]
        axes[1].errorbar(run.tau, run.Q[:, :, j, l].mean(0), run.Q[:, :, j, l].std(0), color=col, fmt="o", ms=3,
                         label=f"Q{j}{l}")
        axes[1].plot(run.tau, ode.Q[:, j, l], "--", color=col)
    axes[1].set_title("weight norms and overlaps")
    axes[1].set_ylabel("Q_jl = w_j^T w_l / d")
    axes[2].plot(run.tau, run.b_hist.mean(0), "o", ms=3, label="simulation")
    axes[2].plot(run.tau, b_cf, "--", label="closed form (eq. 11)")
    axes[2].set_title("skip connection b")
    axes[2].set_ylabel("b")
    for ax in axes:
        ax.set_xlabel("training time tau")
        ax.legend(fontsize=7, ncols=2 if len(ax.get_legend_handles_labels()[1]) > 3 else 1)
    path = out / "dae_training.png"
    save_figure(fig, path)
    dev = float(np.abs(run.M.mean(0) - ode.M).max())
    return ExperimentOutput(table, [path], {"max_abs_dev_M_mean": dev, "sim_wall_s": sim_wall,
                                            "steps_per_s": n * cfg.replicas / sim_wall,
                                            "b_final_sim": float(run.b_hist[:, -1].mean()), "b_final_theory": float(b_cf[-1])},
                            claims=_training_claims(run, ode, b_cf, cfg))


def _training_claims(run, ode, b_cf: np.ndarray, cfg: TrainingConfig) -> list:
    """D1 claims over the replicas (independent RNG streams, docs/dae.md "D1")."""
    from .._claims import claim

    small = " (quick preset: too few replicas to decide)" if cfg.replicas < 5 else ""
    # b's SGD noise: per step db ~ (eta / d^2) O(sqrt d), relaxation time 1/K in tau = d / (2 eta K)
    # steps, so std(b) ~ sqrt(eta / (2 K)) / d; K = E[beta^2] rho_bar + E[alpha^2] at t = 1/2
    K = 0.25 * (1.0 + cfg.mean_norm**2 / cfg.d) + 0.25
    tol_b = 5.0 * np.sqrt(cfg.lr / (2 * K)) / cfg.d
    dev_M = np.abs(run.M - ode.M[None]).mean(axis=(1, 2, 3))          # per replica, mean over tau and entries
    spread = float(run.M.std(0, ddof=1).mean())
    return [
        claim("d1.skip_ode", f"b(tau = {run.tau[-1]:.3g}) of each replica agrees with the finite-d ODE (the closed "
              f"form of Cui et al., eq. 11, plus its O(1/d) terms) within 5 standard deviations of b's SGD noise",
              run.b_hist[:, -1] - ode.b[-1], "~", 0.0, tol_b,
              detail=f"std(b) ~ sqrt(eta / (2K)) / d = {tol_b / 5:.2e} (per-step noise (eta/d^2) O(sqrt d), "
                     f"relaxation time d/(2 eta K) steps, K = {K:.3f}); tolerance 5 x that{small}"),
        claim("d1.ode_M", "each replica's overlaps M(tau) stay within 2 replica standard deviations of the ODE on "
              "average over tau and entries", dev_M, "<=", 0.0, 2.0 * spread,
              detail=f"per replica mean |M - M_ODE|; tolerance 2 x the replica std of M measured in the same run "
                     f"({spread:.3f}; O(1/sqrt d) fluctuations): an unbiased ODE gives ~0.8 std, a bias above ~1.5 "
                     f"std fails{small}")]


# ============================================================================ D2
