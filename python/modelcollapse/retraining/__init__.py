"""Iterative retraining of generative models on their own samples (Bertrand et al.).

- :func:`run_retraining`: the project's one generic loop (workflows ``mix`` with
  ``synthetic_ratio`` or ``real_fraction``, ``replace``, ``accumulate``; per-round metrics;
  per-round checkpoints with exact resume; progress bar; tidy results).
- Learners: :class:`GaussianLearner`, :class:`GMMLearner`, :class:`EmpiricalLearner`, and
  (torch) ``DDPMLearner`` / ``FlowMatchingLearner`` in :mod:`.torch_learners`.
- Gaussian theory and Monte Carlo chains: :mod:`.gaussian`.
- Per-round metrics: :mod:`.metrics`.
"""
from __future__ import annotations

from .learners import EmpiricalLearner, GaussianLearner, GMMLearner, make_learner
from .loop import (WORKFLOWS, Learner, RetrainingResult, RoundContext, completed_rounds, load_round,
                   resolve_mixing, round_rng, run_retraining, sweep)
from .metrics import METRICS, default_metrics, set_metric_backend

__all__ = ["WORKFLOWS", "Learner", "RetrainingResult", "RoundContext", "run_retraining", "sweep",
           "resolve_mixing", "round_rng", "completed_rounds", "load_round", "GaussianLearner", "GMMLearner",
           "EmpiricalLearner", "make_learner", "METRICS", "default_metrics", "set_metric_backend"]


def __getattr__(name: str):
    # Lazy: the Gaussian theory module imports the compiled core; torch learners need torch.
    if name == "gaussian":
        from . import gaussian

        return gaussian
    if name in ("DDPMLearner", "FlowMatchingLearner", "torch_learners"):
        from . import torch_learners

        return torch_learners if name == "torch_learners" else getattr(torch_learners, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
