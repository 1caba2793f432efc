"""Experiments A1-A5 of the truncated-diffusion recursion (``docs/truncation.md``, section "Experiments").

- A1: distance of p_hat_k to the limit p_hat_inf (W2, TV, Hellinger) over rounds for
  a in {0, 0.1, 0.5} x delta in {0.01, 0.05, 0.2}, 1-D and 2-D mixtures; measured rates vs
  rho = sqrt(1-a) e^{-delta} and (1-a); simulated rounds (reverse sampler) next to the exact laws.
- A2: Hermite spectra: measured |g_n| of simulated samples vs predicted B_{n,K} g_n(p) and the
  transfer function H_n (low-pass).
- A3: schedules: exact bias 1 - B_{n,k} for constant / geometric / polynomial schedules,
  a = 0 vs a > 0.
- A4: robustness: W2 to p_hat_inf vs the bound rho^k W2_0 + eps (1 - rho^k)/(1 - rho) as the
  number of sampler steps and a controlled score error vary (eps measured).
- A5: real data: scikit-learn's digits (in place of the paper's CIFAR-10), PCA to 2-D,
  empirical (KDE) score model retrained on its own samples.

``modelcollapse run truncation`` runs all five; ``truncation-a1`` ... ``truncation-a5`` one each.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path

import pandas as pd

from ... import truncation as tr
from .._claims import Claim
from .._registry import ExperimentOutput, register
from .._units import unit
from ._common import A_VALUES, DELTAS, PRESETS, RATE_FLOOR, TruncationConfig, fit_rate, law_1d, law_2d
from ._digits import A5_DELTA, _a5_prediction, a5_seed_energies, digits_claims, digits_law, part_a5
from ._limit import part_a1, part_a2, rate_claims
from ._schedules import annealing_claims, part_a3, part_a4

__all__ = ["A5_DELTA", "A_VALUES", "DELTAS", "PARTS", "PRESETS", "RATE_FLOOR", "TruncationConfig", "annealing_claims",
           "digits_claims", "digits_law", "fit_rate", "law_1d", "law_2d", "part_a1", "part_a2", "part_a3", "part_a4",
           "part_a5", "rate_claims", "rate_summary", "run_all", "_a5_prediction", "a5_seed_energies"]

PARTS = {"a1": part_a1, "a2": part_a2, "a3": part_a3, "a4": part_a4, "a5": part_a5}


def _run(parts, config: TruncationConfig, out_dir: Path, progress: bool) -> ExperimentOutput:
    claims: list[Claim]
    tables, figs, claims = [], [], []
    for name in parts:
        # a finished part (table, figures, claims) is kept and reused by a resumed run
        t, f, *c = unit(f"part-{name}", partial(PARTS[name], config, out_dir, progress))
        claims += c[0] if c else []
        t = t.copy()
        t["seed"] = config.seed
        tables.append(t)
        figs += f
    table = pd.concat(tables, ignore_index=True)
    for col in table.columns:
        if table[col].dtype == object:
            table[col] = table[col].astype(str)
    summary: dict = {}
    if "a1" in parts:
        summary["rates"] = rate_summary(table)
    if "a1" in parts:
        claims += rate_claims(table)
    if "a3" in parts:
        claims += annealing_claims(table)
    if "a5" in parts:
        claims += digits_claims(table, config)
    return ExperimentOutput(table=table, figures=figs, summary=summary, claims=claims)


def rate_summary(table: pd.DataFrame) -> list[dict]:
    """A1's per-round rates of the exact 1-D laws, one record per (distance, a, delta): the
    fitted rate with its 95% CI (:func:`fit_rate`), the sharp asymptotic rate (1-a) e^(-n0 delta)
    and the bound (W2: rho = sqrt(1-a) e^-delta; TV: 1-a)."""
    r = table[(table.part == "A1") & (table["round"] == -1) & (table.dim == 1)]
    v = r.pivot_table(index=["real_fraction", "delta"], columns="metric", values="value")
    out = []
    for metric, bound_name in (("w2", "rho"), ("tv", "1-a")):
        for (a, delta), row in v.iterrows():
            out.append({"distance": metric.upper(), "a": float(a), "delta": float(delta),
                        "fitted rate": float(row[f"rate_{metric}"]), "ci_low": float(row[f"rate_{metric}_ci_low"]),
                        "ci_high": float(row[f"rate_{metric}_ci_high"]), "sharp rate": float(row[f"rate_{metric}_sharp"]),
                        "bound": float(row[f"rate_{metric}_bound"]), "bound is": bound_name})
    return out


CLAIM = ("Even with a perfect score and exact sampling, stopping the reverse diffusion at delta > 0 makes "
         "recursive retraining drift: the recursion converges geometrically (bounds: W2 rate sqrt(1-a) e^-delta, TV "
         "rate 1-a; sharp asymptotic rate (1-a) e^-n0 delta) to a unique limit, an infinite mixture of smoothed "
         "copies of the data; in Hermite coordinates "
         "retraining is a low-pass filter; annealed schedules delta_k -> 0 remove the bias when a > 0. Summary: "
         "fitted rate (95% CI), sharp rate and bound per distance and (a, delta).")


@register("truncation", "truncated-diffusion recursion: experiments A1-A5 (limit, Hermite spectra, schedules, "
          "robustness, digits)", TruncationConfig, PRESETS, part="truncation", headline=True, claim=CLAIM)
def run_all(config: TruncationConfig, out_dir: Path, progress: bool = True) -> ExperimentOutput:
    return _run(list(PARTS), config, out_dir, progress)


def _make(part: str):
    def fn(config: TruncationConfig, out_dir: Path, progress: bool = True) -> ExperimentOutput:
        return _run([part], config, out_dir, progress)

    return fn


for _p, _d in (("a1", "rates to the limit"), ("a2", "Hermite spectra"), ("a3", "schedules"), ("a4", "robustness"),
               ("a5", "digits")):
    register(f"truncation-{_p}", f"truncation experiment {_p.upper()}: {_d}", TruncationConfig, PRESETS,
             part="truncation")(_make(_p))
