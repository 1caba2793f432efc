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
from ._digits import A5_DELTA, _a5_prediction, digits_claims, digits_law, part_a5
from ._limit import part_a1, part_a2, rate_claims
from ._schedules import annealing_claims, part_a3, part_a4

__all__ = ["A5_DELTA", "A_VALUES", "DELTAS", "PARTS", "PRESETS", "RATE_FLOOR", "TruncationConfig", "annealing_claims",
           "digits_claims", "digits_law", "fit_rate", "law_1d", "law_2d", "part_a1", "part_a2", "part_a3", "part_a4",
           "part_a5", "rate_claims", "run_all", "_a5_prediction"]

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
    summary = {}
    if "a1" in parts:
        r = table[(table.part == "A1") & (table.metric.isin(["rate_w2", "rate_tv"])) & (table.dim == 1)]
        for _, row in r.iterrows():  # [fitted, sharp (1-a) e^{-n0 delta}, bound]
            bound = (tr.contraction_factor(row.real_fraction, row.delta) if row.metric == "rate_w2"
                     else 1 - row.real_fraction)
            sharp = tr.asymptotic_rate(law_1d(), row.real_fraction, row.delta).rate
            summary[f"{row.metric}_a{row.real_fraction}_d{row.delta}"] = [float(row.value), sharp, float(bound)]
    if "a1" in parts:
        claims += rate_claims(table)
    if "a3" in parts:
        claims += annealing_claims(table)
    if "a5" in parts:
        claims += digits_claims(table, config)
    return ExperimentOutput(table=table, figures=figs, summary=summary, claims=claims)


CLAIM = ("Even with a perfect score and exact sampling, stopping the reverse diffusion at delta > 0 makes "
         "recursive retraining drift: the recursion converges geometrically (bounds: W2 rate sqrt(1-a) e^-delta, TV "
         "rate 1-a; sharp asymptotic rate (1-a) e^-n0 delta) to a unique limit, an infinite mixture of smoothed "
         "copies of the data; in Hermite coordinates "
         "retraining is a low-pass filter; annealed schedules delta_k -> 0 remove the bias when a > 0. Summary: "
         "fitted rate, sharp rate and bound per (a, delta).")


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
