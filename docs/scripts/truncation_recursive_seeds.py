"""How many seeds the A1/A2 recursive claims need (docs/truncation.md, section "Independent
draws and recursive simulation"): the truly recursive empirical-score run of experiment A2
(law_1d, delta = 0.1) over many seeds, z^2 in units of the compounded SD (expected_moment_sd) and
of the independent-draw SD, per seed, and how often a claim over a few seeds holds, fails or is
underpowered when that few is redrawn from them (the claim's target 1, and its
previous target, the predicted ratio minus half its excess over 1).

    python docs/scripts/truncation_recursive_seeds.py ROUNDS N SEEDS A[,A...] [CLAIM_SEEDS]

quick sizes: 3 2000 400 0.5,0.1 6; default sizes: 8 20000 20 0.5,0.1 20 (seeds 5000, 5001, ...).
"""
import sys

import numpy as np

from modelcollapse import truncation as tr
from modelcollapse.experiments._claims import decide, mean_ci
from modelcollapse.experiments.truncation._common import law_1d
from modelcollapse.experiments.truncation._limit import A2_CLAIM_DEGREE as D
from modelcollapse.experiments.truncation._limit import _recursive_run

rounds, N, seeds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
a_list = [float(x) for x in sys.argv[4].split(",")]
n_claim = int(sys.argv[5]) if len(sys.argv) > 5 else 5
p, delta = law_1d(), 0.1
rng = np.random.default_rng(0)
for a in a_list:
    sd_rec = tr.expected_moment_sd(p, rounds, a, delta, D, N)[:, 1:]
    sd_ind = tr.expected_moment_sd(p, rounds, a, delta, D, N, model="independent")[:, 1:]
    ratio = float(np.mean((sd_rec / sd_ind) ** 2))
    devs = []
    for r in range(seeds):
        t = _recursive_run(p, rounds, N, a, delta, 5000 + r, D).table.pivot_table(index="round", columns="metric",
                                                                                    values="value")
        devs.append(np.array([t[f"g_{j}"].values - t[f"g_{j}_exact"].values for j in range(1, D + 1)]).T)
    devs = np.array(devs)
    z2r, z2i = np.mean((devs / sd_rec) ** 2, axis=(1, 2)), np.mean((devs / sd_ind) ** 2, axis=(1, 2))
    se = z2i.std(ddof=1) / np.sqrt(seeds)
    print(f"a={a}, K={rounds}, N={N}, {seeds} seeds: z2_ind {z2i.mean():.3f} +- {se:.3f} (SE) against the "
          f"predicted ratio {ratio:.3f}, per-seed sd {z2i.std(ddof=1):.3f}; z2 {z2r.mean():.3f} +- "
          f"{z2r.std(ddof=1) / np.sqrt(seeds):.3f} against 1")
    # the claim's target now (1, the independent-draw value) and before (the ratio minus half its excess)
    for target, tol in ((1.0, 0.0), (ratio, (ratio - 1) / 2)):
        counts = {"holds": 0, "fails": 0, "underpowered": 0}
        for _ in range(4000):
            idx = rng.choice(seeds, n_claim, replace=n_claim > seeds // 2)
            counts[decide(*mean_ci(z2i[idx])[1:], ">=", target, tol)] += 1
        print(f"  z2_ind >= {target:.3f} - {tol:.3f} over {n_claim} redrawn seeds:",
              {k: v / 4000 for k, v in counts.items()})
