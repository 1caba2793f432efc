"""Coverage of the gradient-part estimator's error bar (docs/hodge.md, section "Bias and error bar").

Part 1, known gradient parts at one time (n = 20 000 samples per set, Hermite; relative ridge 1e-8
as in the experiment, and "auto" at degree 6 for comparison):
zero (purely solenoidal error on the experiment's mixture), the Gaussian closed form
(Lyapunov), and a Gaussian bump on the mixture (truth by Monte Carlo). Per case and degree:
mean value, sd over sets, mean se, mean truncation allowance, and the fraction of sets whose
[ci_low, ci_high] covers the truth, with its Clopper-Pearson 95% interval.

Part 2, the experiment's models (the families of ``modelcollapse run hodge``): the integrated
estimate's bar against the exact integrated gradient part, all models of a preset and seed,
split by the gradient term's shape (no sampling: only the estimator and the truth).

Run:  python docs/scripts/hodge_coverage.py [REPS] [PRESET] [SEEDS]
      (defaults 200, default, 0; part 1 ~4 min, part 2 ~15 min per seed of the default preset
      on one loaded core)
"""
import sys
import time

import numpy as np
import pandas as pd
import scipy.stats

import modelcollapse as mc
from modelcollapse import hodge as H
from modelcollapse.experiments.hodge import PRESETS, HodgeConfig, _integrated_l2_and_exact, data_law, random_model

A2 = H.antisymmetric(2)
N = 20_000


def cp(k: int, n: int) -> str:
    ci = scipy.stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{k / n:.3f} [{ci.low:.3f}, {ci.high:.3f}]"


def known_cases():
    p = data_law()
    zero = H.PerturbedScore(p, [H.SolenoidalTerm(A2, 2.0)])
    yield "zero: purely solenoidal, mixture, t = 0.1, c = 2", zero, 0.1, 0.0
    gauss = mc.GaussianMixture([1.0], [[0.3, -0.2]], np.array([[[1.0, 0.4], [0.4, 0.5]]]))
    lin = H.PerturbedScore(gauss, [H.LinearTerm(np.array([[0.2, 0.8], [-0.3, 0.1]]), np.array([0.1, -0.2]),
                                                [0.3, -0.2])])
    yield "Gaussian, linear error, t = 0.1 (Lyapunov)", lin, 0.1, H.gaussian_error_energies(lin, 0.1)["gradient"]
    bump = H.PerturbedScore(p, [H.GradientTerm(1.5, H.GaussianBump([0, 0.5], 0.8)), H.SolenoidalTerm(A2, 0.5)])
    yield "bump u = 1.5 + rotation c = 0.5, mixture, t = 0.2 (Monte Carlo 4e5)", bump, 0.2, \
        H.exact_gradient_energy(bump, 0.2, 400_000, seed=1).value


def part1(reps: int, degrees=(4, 6), ridge=1e-8) -> None:
    print(f"## Part 1: known gradient parts, {reps} sets of n = {N} each, relative ridge {ridge}\n")
    print("| case (truth) | degree | value mean (sd, mean se) | truncation | covered: full bar | ± 1.96 se |")
    print("|---|---|---|---|---|---|")
    for label, model, t, truth in known_cases():
        for D in degrees:
            rows = []
            for r in range(reps):
                x = model.sample(N, seed=10_000 + r, t=t)
                e = H.gradient_part_estimate(x, model.score(x, t), degree=D, ridge=ridge, threads=1)
                rows.append((e.value, e.se, e.truncation, e.ci_low <= truth <= e.ci_high,
                             abs(e.value - truth) <= 1.96 * e.se))
            v, se, tr, full, stat = map(np.array, zip(*rows))
            print(f"| {label} ({truth:.4f}) | {D} | {v.mean():.4f} ({v.std(ddof=1):.4f}, {se.mean():.4f}) "
                  f"| {tr.mean():.4f} | {cp(int(full.sum()), reps)} | {cp(int(stat.sum()), reps)} |", flush=True)


def part2(preset: str, seeds: list[int]) -> None:
    rows = []
    for seed in seeds:
        cfg = HodgeConfig(**PRESETS[preset], seed=seed)
        p = data_law()
        # the experiment's plan and seeds (experiments/hodge/_studies.py, _correlation_study)
        plan = [(rep, fam, i) for rep in range(cfg.n_seeds)
                for fam, k in (("mixed", cfg.n_models), ("control", cfg.n_control), ("null", cfg.n_null))
                for i in range(k)]
        rngs = {(rep, fam): np.random.default_rng([cfg.seed, rep, j])
                for rep in range(cfg.n_seeds) for j, fam in enumerate(("mixed", "control", "null"))}
        for k, (rep, fam, _) in enumerate(plan):
            model, params = random_model(p, rngs[rep, fam], cfg, fam)
            s = cfg.seed + 100_000 * rep + 100 * k
            _, exact = _integrated_l2_and_exact(model, cfg, s)
            est = H.integrated_gradient_part(model, p, cfg.T, cfg.delta, n_times=cfg.n_times, n_samples=cfg.n_est,
                                             seed=s + 50, threads=1, **cfg.estimator_kwargs)
            shape = "none (null)" if fam == "null" else params["grad_shape"] + (" + Fourier" if params["a"] else "")
            rows.append(dict(seed=seed, family=fam, shape=shape, exact=exact, value=est.integral, se=est.se,
                             covered=est.ci_low <= exact <= est.ci_high, z=(est.integral - exact) / est.se))
    df = pd.DataFrame(rows)
    print(f"\n## Part 2: the experiment's models, preset {preset}, seeds {seeds}: {len(df)} models (degree "
          f"{cfg.degree}, relative ridge {cfg.ridge})\n")
    print("| gradient term | models | coverage [95% CI] | mean z = (value - exact) / se |")
    print("|---|---|---|---|")
    for shape, g in df.groupby("shape"):
        print(f"| {shape} | {len(g)} | {cp(int(g.covered.sum()), len(g))} | {g.z.mean():.2f} |")
    print(f"| all | {len(df)} | {cp(int(df.covered.sum()), len(df))} | {df.z.mean():.2f} |")


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    preset = sys.argv[2] if len(sys.argv) > 2 else "default"
    seeds = [int(s) for s in sys.argv[3].split(",")] if len(sys.argv) > 3 else [0]
    t0 = time.time()
    if reps > 0:
        part1(reps)
        part1(reps, degrees=(6,), ridge="auto")   # the estimator's default and the old experiment setting
    if preset != "none":
        part2(preset, seeds)
    print(f"\n({time.time() - t0:.0f} s)")
