"""What the retraining loop and its metrics share: the :class:`Learner` protocol, the
:class:`RoundContext` a metric sees, and the :class:`MetricBackend` of sample distances.

Both the loop (``_loop``) and the metric registry (``_metrics``) import this module and
never each other's internals the other way round, so the package has no import cycle.
The distances are passed explicitly (``run_retraining(metric_backend=...)`` puts them on
every round's context) instead of through a mutable module global.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .. import metrics as _metrics


@runtime_checkable
class Learner(Protocol):
    """What the retraining loop needs from a generative model.

    ``fit`` returns a new state (never mutates ``previous_state``; ``None`` in round 0);
    ``sample`` returns an ``(n, d)`` float64 array. To be checkpointed a state must be data
    only: numpy arrays (not of dtype object), numpy scalars, Python numbers, strings, bools,
    ``None`` and dicts (str / int keys) / lists / tuples of them; torch learners store their
    ``state_dict`` tensors converted to numpy. Any other value raises a TypeError naming the
    learner and the key when the round is saved (run without ``checkpoint_dir`` then).
    Neural learners train on a fixed number of samples seen per round (their
    ``samples_per_round``), whatever the training-set size.

    Optional: ``config() -> dict`` (JSON-able description, stored with checkpoints and
    checked on resume) and ``parameter_vector(state) -> ndarray`` (for the parameter-distance
    metric).
    """

    name: str

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> Any: ...

    def sample(self, state: Any, n: int, rng: np.random.Generator) -> np.ndarray: ...


def exact_wasserstein(x: np.ndarray, y: np.ndarray, p: int = 2) -> float:
    """W_p (not W_p^p) by exact optimal transport (:func:`modelcollapse.metrics.wasserstein`,
    ``method="exact"``: POT's ``ot.emd2``)."""
    return float(_metrics.wasserstein(x, y, p=p, method="exact"))


def sliced_wasserstein(x: np.ndarray, y: np.ndarray, p: int = 2) -> float:
    """Sliced W_p over 200 fixed random directions (:func:`modelcollapse.metrics.wasserstein`,
    ``method="sliced"``, ``seed=0``: the same directions every round)."""
    return float(_metrics.wasserstein(x, y, p=p, method="sliced", n_projections=200, seed=0))


def kde_hellinger(x: np.ndarray, y: np.ndarray) -> float:
    """Hellinger distance H in [0, 1] between the Gaussian KDEs (Scott's bandwidth) of two
    sample sets in d <= 2 (:func:`modelcollapse.metrics.hellinger`)."""
    return float(_metrics.hellinger(x, y))


def knn_precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 4) -> tuple[float, float]:
    """Improved precision and recall with k-NN balls (:func:`modelcollapse.metrics.precision_recall`)."""
    pr = _metrics.precision_recall(real, fake, k=k)
    return float(pr.precision), float(pr.recall)


@dataclasses.dataclass(frozen=True)
class MetricBackend:
    """The sample distances the built-in metrics call.

    Pass one to :func:`run_retraining` as its ``metric_backend``; the loop hands it to every
    metric through :attr:`RoundContext.metric_backend`.

    Parameters
    ----------
    wasserstein : callable
        Called as ``wasserstein(x, y, p)``, returns W_p (a float) between two ``(n, d)``
        sample sets (default exact optimal transport; e.g. a sliced distance for large sets).
    precision_recall : callable
        Called as ``precision_recall(real, fake, k)``, returns ``(precision, recall)``
        (default k-NN balls).
    sliced_wasserstein : callable
        Called as ``sliced_wasserstein(x, y, p)``: the large-set W_p of the ``w2_auto``
        metric (default sliced W_p, 200 fixed directions).
    exact_max_points : int
        ``w2_auto`` uses ``wasserstein`` up to this many points per set (default 1000: exact
        OT on 1000 x 1000 points takes about a second), ``sliced_wasserstein`` beyond.
    hellinger : callable
        Called as ``hellinger(x, y)`` on two sample sets of dimension <= 2 (default KDE
        Hellinger).
    """

    wasserstein: Callable[[np.ndarray, np.ndarray, int], float] = exact_wasserstein
    precision_recall: Callable[[np.ndarray, np.ndarray, int], tuple[float, float]] = knn_precision_recall
    sliced_wasserstein: Callable[[np.ndarray, np.ndarray, int], float] = sliced_wasserstein
    exact_max_points: int = 1000
    hellinger: Callable[[np.ndarray, np.ndarray], float] = kde_hellinger

    def __post_init__(self) -> None:
        for field in ("wasserstein", "precision_recall", "sliced_wasserstein", "hellinger"):
            if not callable(getattr(self, field)):
                raise TypeError(f"MetricBackend.{field} must be callable, got {type(getattr(self, field)).__name__}")
        m = self.exact_max_points
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 2:
            raise ValueError(f"MetricBackend.exact_max_points must be an int >= 2, got {m!r}")


@dataclasses.dataclass
class RoundContext:
    """Everything a metric callback may look at after round ``round`` was fitted.

    ``samples`` are ``n_eval`` fresh samples of the current model (the same array for every
    metric of the round), ``eval_data`` the held-out real data (or the training real data
    when none was given), ``train_data`` the set the round was fitted on, ``metric_backend``
    the sample distances of the run. For the ``callback`` of
    :func:`~modelcollapse.recursion.run_retraining` the context also carries ``metrics``,
    the round's metric values by name (with ``train_size``; empty while the metrics are
    being evaluated), and ``config``, the run's stored configuration (e.g. for the tracking
    callbacks, docs/retraining.md, section "Tracking runs").
    """

    round: int
    state: Any
    initial_state: Any
    samples: np.ndarray
    eval_data: np.ndarray
    real_data: np.ndarray
    train_data: np.ndarray
    learner: Any
    rng: np.random.Generator
    metric_backend: MetricBackend = dataclasses.field(default_factory=MetricBackend)
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    config: dict[str, Any] = dataclasses.field(default_factory=dict)


MetricFn = Callable[[RoundContext], "float | Mapping[str, float]"]
