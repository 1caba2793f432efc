"""How the retraining loop builds each round's training set: the real-data source (a fixed
array, consecutive blocks of an array, or a sampler) and the workflows
(docs/retraining.md, section "Workflows and budgets").

Training points per round (the ``train_size`` metric of every run):

========================  ==================================================================
``mix``                   n real + floor(lambda n) synthetic (lambda = inf: n synthetic only)
``replace``               m = ``n_synthetic`` synthetic (default n)
``accumulate``            n real + t m synthetic: the whole pool (it grows; m new per round)
``accumulate-subsample``  B = ``train_budget`` (default n) drawn without replacement from the
                          accumulate pool (n real + t m synthetic) each round
``fresh``                 n new real points (``n_real``) + floor(lambda n) synthetic
                          (lambda defaults to 0: fresh real data only)
========================  ==================================================================

So replace (m = B), accumulate-subsample (B), fresh (lambda = 0, n = B) and mix (with
B / (1 + lambda) real points) train on the same B points per round; accumulate is the one
workflow whose training set grows, and ``accumulate-subsample`` is its equal-budget version.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import check_finite_array, check_positive_int
from ._remedies import draw_synthetic

#: The workflows of :func:`~modelcollapse.recursion.run_retraining`.
WORKFLOWS = ("mix", "replace", "accumulate", "accumulate-subsample", "fresh")

# Independent random streams used inside one round (SeedSequence spawn keys).
STREAM_SYNTH, STREAM_FIT, STREAM_EVAL, STREAM_METRIC, STREAM_REAL, STREAM_SUBSAMPLE, STREAM_REMEDY = range(7)


def round_rng(seed: int, round_index: int, stream: int, *sub: int) -> np.random.Generator:
    """The generator of one random stream of one round: a pure function of its arguments."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(round_index, stream, *sub)))


class RealSource:
    """Where a run's real data come from.

    - an ``(N, d)`` array, fixed over the rounds (every workflow but ``fresh``), or, for
      ``fresh``, cut into consecutive blocks of ``n_real`` rows, block t for round t (so it
      needs at least (rounds + 1) n_real rows);
    - a callable ``real_data(n_samples, seed) -> (n_samples, d)`` array, called with
      ``n_real`` and a seed derived from ``(seed, t)``: once (round 0) for a fixed real set,
      every round for ``fresh``.
    """

    def __init__(self, real_data: Any, n_real: int | None, workflow: str, rounds: int, *, seed: int) -> None:
        self.fresh = workflow == "fresh"
        self.seed = seed
        self.sampler: Callable[[int, int], Any] | None = None
        self.array: np.ndarray | None = None
        if callable(real_data) and not isinstance(real_data, np.ndarray):
            if n_real is None:
                raise ValueError("n_real (points per real sample) is required when real_data is a sampler "
                                 "callable(n_samples, seed)")
            self.sampler = real_data
            self.n = check_positive_int(n_real, "n_real", minimum=2)
            self.array = None
            self.base = self._draw(0)
        else:
            arr = check_finite_array(real_data, "real_data", ndim=2)
            if self.fresh:
                if n_real is None:
                    raise ValueError("workflow='fresh' with an array real_data needs n_real: the array is cut "
                                     "into blocks of n_real rows, one per round (or pass a sampler callable)")
                self.n = check_positive_int(n_real, "n_real", minimum=2)
                if len(arr) < (rounds + 1) * self.n:
                    raise ValueError(f"real_data has {len(arr)} rows; workflow='fresh' needs (rounds + 1) x n_real = "
                                     f"{(rounds + 1) * self.n} (one new block per round)")
            elif n_real is not None:
                raise ValueError("n_real is for a real_data sampler or workflow='fresh'; with a fixed array the "
                                 "real set is the whole array")
            else:
                self.n = len(arr)
            if self.n < 2:
                raise ValueError(f"real_data needs at least 2 points, got {self.n}")
            self.array = arr
            self.base = arr[: self.n]
        self.d = self.base.shape[1]

    def _draw(self, t: int) -> np.ndarray:
        key = int(round_rng(self.seed, t, STREAM_REAL).integers(0, 2**63))
        sampler = self.sampler
        if sampler is None:   # only a sampler source draws
            raise TypeError("RealSource._draw needs a real-data sampler")
        out = check_finite_array(sampler(self.n, key), "real_data(n_samples, seed) output", ndim=2)
        if out.shape[0] != self.n or (t > 0 and out.shape[1] != self.d):
            raise ValueError(f"real_data(n_samples, seed) must return ({self.n}, d) arrays, got {out.shape}")
        return out

    def for_round(self, t: int) -> np.ndarray:
        """The real points of round ``t`` (the same set every round unless ``fresh``)."""
        if t == 0 or not self.fresh:
            return self.base
        if self.array is None:
            return self._draw(t)
        return self.array[t * self.n:(t + 1) * self.n]

    def digest_source(self) -> np.ndarray:
        """The data whose digest identifies the source in the stored configuration."""
        return self.array if self.array is not None else self.base


def synthetic_count(workflow: str, n: int, lam: float, n_syn: int) -> int:
    """Synthetic points drawn in a round >= 1."""
    if workflow in ("mix", "fresh"):
        return n if math.isinf(lam) else int(math.floor(lam * n + 1e-9))
    return n_syn


def training_set(plan: Any, t: int, state: Any, synthetic_sets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    """Round ``t``'s training set and the synthetic set drawn for it (None in round 0).

    ``plan`` carries the learner, the real source, the workflow and its sizes; the
    ``accumulate`` workflows append the new synthetic set to ``synthetic_sets``.
    """
    real = plan.source.for_round(t)
    if t == 0:
        return real, None
    d, n = real.shape[1], len(real)
    m = synthetic_count(plan.workflow, n, plan.lam, plan.n_syn)
    remedy_rngs = [round_rng(plan.seed, t, STREAM_REMEDY, i) for i in range(len(plan.remedies))]
    synthetic = draw_synthetic(plan.learner, state, d, m, round_rng(plan.seed, t, STREAM_SYNTH),
                               plan.remedies, remedy_rngs) if m > 0 else np.empty((0, d))
    if plan.workflow in ("mix", "fresh"):
        train = synthetic if math.isinf(plan.lam) else np.concatenate([real, synthetic])
    elif plan.workflow == "replace":
        train = synthetic
    else:
        synthetic_sets.append(synthetic)
        train = np.concatenate([real, *synthetic_sets])
        if plan.workflow == "accumulate-subsample":
            pick = round_rng(plan.seed, t, STREAM_SUBSAMPLE).choice(len(train), size=plan.train_budget, replace=False)
            train = train[np.sort(pick)]
    return train, synthetic


def check_budget(workflow: str, train_budget: Any, n: int, n_syn: int) -> int | None:
    """``train_budget`` B: only for ``accumulate-subsample`` (default n, at most n + n_synthetic,
    the pool of round 1)."""
    if workflow != "accumulate-subsample":
        if train_budget is not None:
            raise ValueError(f"train_budget is for workflow='accumulate-subsample', not {workflow!r}")
        return None
    if train_budget is None:
        return n
    return check_positive_int(train_budget, "train_budget", minimum=2, maximum=n + n_syn)
