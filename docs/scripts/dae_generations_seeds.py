"""How many seeds decide the D4 agreement claims (docs/dae.md, "D4", section "Seed count").

Pools the per-seed values of one or more ``dae-generations`` runs at the default preset (each
run's seeds are ``seed + 1000 s``, s < ``seeds``), and prints, per variant and generation, the
claim's statistic H(sim, theory) - H(theory, theory') per seed, its mean with the t interval
over the first 5 and over all pooled seeds, and the seed count a t interval of that spread
would need to end on one side of the tolerance.

Run (about 100 s per seed and variant on one core; two runs of 5 seeds ~40 min):
    modelcollapse run dae-generations --preset default --set threads=1 --out results/d4-a
    modelcollapse run dae-generations --preset default --set seed=5000 --set threads=1 --out results/d4-b
    python docs/scripts/dae_generations_seeds.py results/d4-a results/d4-b
"""
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats


def pooled(folders: list[str]) -> pd.DataFrame:
    frames = [pd.read_parquet(Path(f) / "dae-generations.parquet") for f in folders]
    table = pd.concat(frames)
    # a seed present in two runs must agree (same seed, same code): keep one copy
    return table.drop_duplicates(["variant", "seed", "generation", "metric"])


def main(folders: list[str]) -> None:
    table = pooled(folders)
    print("| variant | gen | seeds | per-seed H(sim,theory) - noise | mean [95% CI], first 5 | mean [95% CI], all "
          "| tolerance | seeds needed |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in table.variant.unique():
        for g in sorted(table.generation.unique()):
            s = table[(table.variant == variant) & (table.generation == g)].pivot_table(
                index="seed", columns="metric", values="value")
            d = (s["H(sim,theory)"] - s["H(theory,theory')"]).to_numpy()
            tol = float(s["H(theory,theory')"].mean())
            cells = []
            for x in (d[:5], d):
                h = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
                cells.append(f"{x.mean():.3f} [{x.mean() - h:.3f}, {x.mean() + h:.3f}]")
            gap = abs(d.mean() - tol)
            need = int(np.ceil((2.0 * d.std(ddof=1) / gap) ** 2)) if gap > 0 else -1
            print(f"| {variant} | {g} | {len(d)} | {' '.join(f'{v:.3f}' for v in d)} | {cells[0]} | {cells[1]} "
                  f"| {tol:.3f} | {need} |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["results/dae-generations"])
