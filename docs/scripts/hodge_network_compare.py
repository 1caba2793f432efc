"""Gradient-part estimators side by side (docs/hodge.md, "network basis" table).

Run: python docs/scripts/hodge_network_compare.py   (needs modelcollapse[torch]; ~2 min on one core)
Prints a markdown table: estimate +- standard error (cross-fitted) and wall time per estimator,
against the exact E|grad phi|^2 (Lyapunov closed form, or the known gradient term by Monte
Carlo with 2e5 samples).
"""
import time

import numpy as np
import torch

from modelcollapse import hodge as H
from modelcollapse.experiments.hodge import data_law

torch.set_num_threads(1)
N = 20_000
ESTIMATORS = [
    ("Hermite, degree 4", dict(basis="hermite", degree=4, threads=1)),
    ("Hermite, degree 6", dict(basis="hermite", degree=6, threads=1)),
    ("Hermite, degree 8", dict(basis="hermite", degree=8, threads=1)),
    ("RFF, 200 features", dict(basis="rff", n_features=200)),
    ("network 2x32 (defaults)", dict(basis="network")),
    ("network 2x64", dict(basis="network", network=dict(width=64))),
    ("network 2x32, Hutchinson", dict(basis="network", network=dict(laplacian="hutchinson"))),
]


def cases():
    rng = np.random.default_rng(1)
    m, C = np.array([0.5, -0.5]), np.array([[1.0, 0.3], [0.3, 0.6]])
    E, f = np.array([[0.6, -0.9], [0.3, -0.4]]), np.array([0.3, -0.2])
    gp = H.gaussian_gradient_part(E, C, f)
    x = rng.multivariate_normal(m, C, size=N)
    yield (f"Gaussian, linear error (E\\|e\\|² = {gp['total']:.3f})", x,
           -(x - m) @ np.linalg.inv(C).T + (x - m) @ E.T + f, gp["gradient"])
    p, A = data_law(), H.antisymmetric(2)
    for u, c in ((1.5, 0.5), (0.6, 1.0)):
        model = H.PerturbedScore(p, [H.GradientTerm(u, H.GaussianBump([0.5, 0.3], 0.7)), H.SolenoidalTerm(A, c)])
        t = 0.2
        x = model.sample(N, seed=11, t=t)
        l2 = H.l2_error(model, t, n_samples=200_000, seed=5).value
        yield (f"mixture t = 0.2, bump u = {u} + rotation c = {c} (E\\|e\\|² = {l2:.2f})", x, model.score(x, t),
               H.exact_gradient_energy(model, t, n_samples=200_000, seed=5).value)


rows = []
for label, x, s, exact in cases():
    cells = []
    for _name, kw in ESTIMATORS:
        t0 = time.perf_counter()
        est = H.gradient_part_estimate(x, s, seed=0, **kw)
        cells.append(f"{est.value:.3f} ± {est.se:.3f} ({time.perf_counter() - t0:.1f} s)")
    rows.append(f"| {label} | {exact:.3f} | " + " | ".join(cells) + " |")
print("| case (n = 20 000) | exact | " + " | ".join(n for n, _ in ESTIMATORS) + " |")
print("|---" * (len(ESTIMATORS) + 2) + "|")
print("\n".join(rows))
