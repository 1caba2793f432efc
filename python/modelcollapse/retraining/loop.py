"""Former home of the retraining loop, kept so that ``modelcollapse.retraining.loop`` still
imports: the loop lives in :mod:`modelcollapse.recursion` (docs/retraining.md)."""
from ..recursion import (
    WORKFLOWS,
    Learner,
    RetrainingResult,
    RoundContext,
    completed_rounds,
    load_round,
    resolve_mixing,
    round_rng,
    run_retraining,
    save_round,
    sweep,
)

__all__ = ["WORKFLOWS", "Learner", "RoundContext", "RetrainingResult", "run_retraining", "sweep", "resolve_mixing",
           "round_rng", "completed_rounds", "load_round", "save_round"]
