"""D4 study: how the gap between simulation and theory at generation 2 scales with d and lr.

The generation-1 model of D4 (digits '7', d = 784, trained b, the D4 default hyperparameters)
is reduced to its 4 coordinates (the target's top-2 PCs E and span(w1)), then embedded
isometrically in R^d for d in --dims (same Q, G on E and b: the generated law of generation 1
has the same projection at every d, Cui et al. Remark 4.1). Generation 2 is trained on that
law from fresh N(0, 1) weights w0 for tau = 2.8 at lr in --lrs (n = tau d / (2 lr) samples, one
pass), and compared with the D4 theory (ODEs from the same w0 on the law of generation 1, then
Cor. 2.3): excess = H(sim, theory) - H(theory, theory') on E, per (d, lr, replica).
The ODEs are the d -> infinity limit at fixed lr: the SGD noise of the overlaps has variance
O(lr tau / d). Output: one CSV row per (seed, d, lr, replica). docs/dae.md, "D4".

    python docs/scripts/d4_scaling.py --dims 250 500 1000 2000 4000 --lrs 0.2 --out d4_scaling.csv
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from modelcollapse import dae
from modelcollapse import dae_theory as th
from modelcollapse.experiments.dae._common import _hellinger
from modelcollapse.experiments.dae._generations import GenerationsConfig, _generation_theory_target, _ode_stats


def generation1(cfg: GenerationsConfig, seed: int):
    """Generation 1 of D4 at d = 784 (trained b): returns (A (4, 2) = w1 in the basis
    [E, completion of span(w1)] / sqrt d, b1)."""
    tg = dae.digits_target(cfg.digit, cfg.side)
    E = tg.basis[:, :2]
    sch = dae.sampler_schedule(cfg.n_grid, cfg.t_final)
    lrn = dae.DaeLearner(r=cfg.r, lr=cfg.lr, train_b=True, b0=0.0, weight_decay=cfg.weight_decay, schedule=sch,
                         threads=cfg.threads)
    n = dae.training_steps(cfg.tau, tg.d, cfg.lr)
    st = lrn.fit(tg.sample(n, seed=seed + 1), None, np.random.default_rng(seed))
    w1 = st["w"]
    Eq, _ = np.linalg.qr(np.concatenate([E, w1], axis=1))
    Eq[:, :2] = E
    return Eq.T @ w1 / np.sqrt(tg.d), float(st["b"])


def sample_chunks(A, b, d, n, sch, rng, chunk, threads, exact):
    """n samples of the model w = sqrt(d) [A; 0] in chunks. ``exact``: from its exact law
    given w (Cui et al. Remark 4.1; docs/dae.md, "Generation"): Z from the Z SDE, the
    W-part A Q^-1 Z, N(0, v_tf) across W (O(d) per sample instead of the sampler's O(N d))."""
    w = np.zeros((d, A.shape[1]))
    w[: A.shape[0]] = np.sqrt(d) * A
    Q = A.T @ A
    P = A @ np.linalg.solve(Q, A.T)                      # projector on span(A) in the first coordinates
    L = np.sqrt(sch.v_t(b)[-1])
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        if not exact:
            yield dae.generate(w, b, n_samples=m, schedule=sch, return_full=True, seed=rng, threads=threads).X
            continue
        x = L * rng.standard_normal((m, d))
        z = th.z_sde_samples(Q, b, schedule=sch, n_samples=m, seed=rng)
        x[:, : A.shape[0]] = z @ np.linalg.solve(Q, A.T) + x[:, : A.shape[0]] @ (np.eye(A.shape[0]) - P)
        yield x


def generation2(A, b1, d, lr, cfg, rng, chunk=4000, exact=True):
    """One generation-2 run at dimension d and learning rate lr, and its theory."""
    sch = dae.sampler_schedule(cfg.n_grid, cfg.t_final)
    w_prev = np.zeros((d, cfg.r))
    w_prev[: A.shape[0]] = np.sqrt(d) * A
    E = np.eye(d)[:, :2]
    w0 = rng.standard_normal((d, cfg.r))
    n = dae.training_steps(cfg.tau, d, lr)
    w, b = w0, 0.0
    for x in sample_chunks(A, b1, d, n, sch, rng, chunk, cfg.threads, exact):   # one continued pass
        run = dae.fit_generation(x, r=cfg.r, lr=lr, train_b=True, b0=b, init=w, weight_decay=cfg.weight_decay,
                                 record_every=x.shape[0], seed=rng, threads=cfg.threads)
        w, b = run.w[0].copy(), float(run.b[0])
    seed = int(rng.integers(2**31))
    Eq, ttg = _generation_theory_target(w_prev, b1, E, sch, cfg, seed)
    st = {"b0": 0.0, "tau": cfg.tau}
    Qt, Gt, bt = _ode_stats(ttg, w0, Eq, st, cfg, True, lr)
    sim = dae.generate(w, b, n_samples=cfg.n_eval, schedule=sch, observe=E, seed=rng, threads=cfg.threads).proj
    theo = [th.projected_law_samples(Qt, Gt, bt, schedule=sch, n_samples=cfg.n_eval, seed=seed + k) for k in (1, 2)]
    h, floor = _hellinger(sim, theo[0]), _hellinger(theo[0], theo[1])
    Q = w.T @ w / d
    G = w.T @ E / np.sqrt(d)
    return dict(H=h, noise=floor, excess=h - floor, trQ=float(np.trace(Q)), trQ_theory=float(np.trace(Qt)),
                dG=float(np.linalg.norm(G - Gt)), b=b, b_theory=bt, n_steps=n)


def analyse(table: pd.DataFrame, by: str, n_boot: int = 2000, seed: int = 0) -> dict:
    """Per value of ``by`` ("d" or "lr"): mean excess with a 95% bootstrap CI (resampling
    replicas within each seed, then seeds), and the log-log slope of the mean excess against
    ``by`` (least squares over the values of ``by``) with its bootstrap CI."""
    rng = np.random.default_rng(seed)
    keys = sorted(table[by].unique())
    cells = {(s, k): g.excess.to_numpy() for (s, k), g in table.groupby(["seed", by])}
    seeds = sorted(table.seed.unique())

    def stats(seed_draw, rep_draw):
        means = []
        for k in keys:
            vals = [rep_draw(cells[(s, k)]) for s in seed_draw if (s, k) in cells]
            means.append(np.mean(np.concatenate(vals)) if vals else np.nan)   # a seed draw may miss a cell
        m = np.array(means)
        ok = np.isfinite(m)
        if ok.sum() < 3:                                  # a bootstrap draw that lost most cells
            return m, np.nan
        slope = np.polyfit(np.log(np.array(keys)[ok]), np.log(np.clip(m[ok], 1e-4, None)), 1)[0]
        return m, slope

    m0, s0 = stats(seeds, lambda x: x)
    boots = [stats(rng.choice(seeds, len(seeds)), lambda x: rng.choice(x, len(x))) for _ in range(n_boot)]
    bm = np.array([b[0] for b in boots])
    bs = np.array([b[1] for b in boots])
    lo, hi = np.nanpercentile(bm, [2.5, 97.5], axis=0)
    return {"by": by, "values": keys, "mean": m0, "lo": lo, "hi": hi, "n": [int((table[by] == k).sum()) for k in keys],
            "noise": [float(table[table[by] == k].noise.mean()) for k in keys],
            "slope": s0, "slope_ci": np.nanpercentile(bs, [2.5, 97.5])}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dims", type=int, nargs="+", default=[250, 500, 1000, 2000, 4000])
    p.add_argument("--lrs", type=float, nargs="+", default=[0.2])
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--n-eval", type=int, default=2000)
    p.add_argument("--out", default="d4_scaling.csv")
    p.add_argument("--sampler", action="store_true", help="train on the d-dimensional sampler's output (slow)")
    p.add_argument("--analyse", nargs="+", metavar="CSV", help="only analyse these CSVs (by d at the first lr, by lr)")
    a = p.parse_args(argv)
    if a.analyse:
        t = pd.concat([pd.read_csv(f) for f in a.analyse])
        for by, sub in (("d", t[t.lr == t.lr.max()]), ("lr", t[t.d == 784])):
            if sub[by].nunique() < 2:
                continue
            r = analyse(sub, by)
            print(f"excess = H(sim, theory) - H(theory, theory') by {by}:")
            for k, m, lo, hi, n, nz in zip(r["values"], r["mean"], r["lo"], r["hi"], r["n"], r["noise"]):
                print(f"  {by} = {k:g}: {m:.3f} [{lo:.3f}, {hi:.3f}]  (n = {n}, noise {nz:.3f})")
            print(f"  log-log slope {r['slope']:.2f} [{r['slope_ci'][0]:.2f}, {r['slope_ci'][1]:.2f}]")
        return
    cfg = GenerationsConfig(threads=1, n_eval=a.n_eval)
    rows = []
    for s in a.seeds:
        A, b1 = generation1(cfg, 1000 * s)
        for d in a.dims:
            for lr in a.lrs:
                for k in range(a.replicas):
                    t0 = time.time()
                    r = generation2(A, b1, d, lr, cfg, np.random.default_rng([s, d, int(round(lr * 1e4)), k]),
                                    exact=not a.sampler)
                    rows.append(dict(seed=1000 * s, d=d, lr=lr, replica=k, **r, seconds=time.time() - t0))
                    print({k2: (round(v, 4) if isinstance(v, float) else v) for k2, v in rows[-1].items()}, flush=True)
                    pd.DataFrame(rows).to_csv(a.out, index=False)


if __name__ == "__main__":
    main()
