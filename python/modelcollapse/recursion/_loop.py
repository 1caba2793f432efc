"""The project's one generic iterative-retraining loop (Bertrand et al., Algorithm 1).

A *learner* fits a model state to data (warm-started from the previous round's state) and
samples from a state. The loop builds each round's training set from the real data and the
previous model's samples according to a *workflow* (``docs/retraining.md``, sections "The
generic loop" and "Workflows and budgets"; the sizes are in :mod:`._workflows`):

- ``mix``: all n real points plus ``floor(synthetic_ratio * n)`` synthetic ones; give either
  ``synthetic_ratio`` (lambda >= 0, ``inf`` = fully synthetic: n synthetic points and no real
  data) or ``real_fraction`` a in [0, 1] (a = 1 / (1 + lambda); a = 0 is fully synthetic);
- ``replace``: fully synthetic, n (or ``n_synthetic``) fresh samples of the previous model;
- ``accumulate``: the real data plus every synthetic set generated so far
  (``n_synthetic`` per round, default n);
- ``accumulate-subsample``: the accumulate pool, of which a fixed budget ``train_budget``
  (default n) is drawn without replacement each round;
- ``fresh``: a new real sample every round (Alemohammad et al.'s "fresh data loop"), plus
  ``floor(synthetic_ratio * n)`` synthetic points (lambda defaults to 0).

*Remedies* (:mod:`._remedies`: sampling bias, self-correction, verification) transform each
round's synthetic draw and compose with every workflow (``remedies=[...]``).

Round 0 fits the real data alone (theta_0 = A(D_real)). Every round is checkpointed
(``round_XXXX.npz``: the state, the round's synthetic set and evaluation samples in a
data-only format; ``round_XXXX.json``: its metrics), so a run that is interrupted resumes
from its last completed round and gives exactly the same results as an uninterrupted run
with the same seed: round t's randomness is a pure function of ``(seed, t)``, never of what
ran before in the process.

Checkpoints hold data only (numpy arrays read with ``allow_pickle=False``, and JSON; see
:mod:`modelcollapse._checkpoint`), so resuming from a folder someone else wrote can never
run code. Pickle checkpoints of older versions (``round_*.pkl``) are never loaded: they are
ignored with a warning and their rounds are recomputed. Files are written atomically, the
JSON files are strict JSON (non-finite floats as the strings ``"inf"``, ``"-inf"``,
``"nan"``), and checkpoints of an earlier run that is not resumed are moved aside to
``checkpoint_dir/stale-<timestamp>/``, never deleted (:mod:`._checkpoints`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import as_seed, check_choice, check_finite_array, check_positive_int, check_real
from ._checkpoints import load_round, open_checkpoint_dir, save_round
from ._context import Learner, MetricBackend, MetricFn, RoundContext
from ._metrics import get_metric
from ._remedies import check_remedies, remedy_label
from ._workflows import (
    STREAM_EVAL,
    STREAM_FIT,
    STREAM_METRIC,
    WORKFLOWS,
    RealSource,
    check_budget,
    round_rng,
    training_set,
)


@dataclasses.dataclass
class RetrainingResult:
    """Outcome of :func:`run_retraining`.

    ``table`` is tidy (one row per round x metric) with the run's settings as columns;
    ``states[t]`` is round t's model state and ``samples[t]`` the evaluation samples of round
    t (both kept in memory only when ``keep_states`` / ``keep_samples``; the checkpoint folder
    always has them); ``resumed_from`` is the last round found on disk (-1: fresh run).
    """

    table: pd.DataFrame
    states: list[Any]
    samples: list[np.ndarray]
    config: dict[str, Any]
    resumed_from: int = -1
    checkpoint_dir: Path | None = None

    def to_frame(self) -> pd.DataFrame:
        """The tidy table (one row per round x metric, the run's settings as columns): a copy
        of :attr:`table`, named as the other results' ``to_frame``."""
        return self.table.copy()

    def wide(self) -> pd.DataFrame:
        """One row per round, one column per metric."""
        return self.table.pivot_table(index="round", columns="metric", values="value").reset_index()


def resolve_mixing(workflow: str, synthetic_ratio: float | None = None,
                   real_fraction: float | None = None) -> tuple[float, float]:
    """Normalise the mixing parameters of a workflow to ``(synthetic_ratio, real_fraction)``.

    ``mix`` needs exactly one of them (a = 1 / (1 + lambda)); ``replace`` is lambda = inf,
    a = 0; ``accumulate`` and ``accumulate-subsample`` report lambda = nan (their ratio
    grows with the rounds); ``fresh`` takes at most one, finite (default lambda = 0: fresh
    real data only).
    """
    check_choice(workflow, "workflow", WORKFLOWS)
    if workflow == "fresh":
        if synthetic_ratio is None and real_fraction is None:
            return 0.0, 1.0
        lam, a = resolve_mixing("mix", synthetic_ratio, real_fraction)
        if math.isinf(lam):
            raise ValueError("workflow='fresh' needs a finite synthetic_ratio (real_fraction > 0): fully synthetic "
                             "retraining is workflow='replace'")
        return lam, a
    if workflow == "mix":
        if (synthetic_ratio is None) == (real_fraction is None):
            raise ValueError("workflow='mix' needs exactly one of synthetic_ratio (lambda >= 0, inf = "
                             "fully synthetic) or real_fraction (a in [0, 1])")
        if synthetic_ratio is not None:
            if isinstance(synthetic_ratio, bool) or not isinstance(synthetic_ratio, (int, float, np.floating, np.integer)):
                raise TypeError(f"synthetic_ratio must be a real number >= 0 or inf, got {type(synthetic_ratio).__name__}")
            lam = float(synthetic_ratio)
            if math.isnan(lam) or lam < 0:
                raise ValueError(f"synthetic_ratio must be >= 0 (or inf for fully synthetic), got {lam}")
            return lam, (0.0 if math.isinf(lam) else 1.0 / (1.0 + lam))
        a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
        return (math.inf if a == 0.0 else (1.0 - a) / a), a
    if synthetic_ratio is not None or real_fraction is not None:
        raise ValueError(f"workflow={workflow!r} takes no synthetic_ratio / real_fraction "
                         "(replace is fully synthetic; the accumulate workflows keep every synthetic set)")
    if workflow == "replace":
        return math.inf, 0.0
    return math.nan, math.nan


def _data_digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes() + str(x.shape).encode()).hexdigest()[:16]


def _learner_config(learner: Any) -> dict[str, Any]:
    cfg = learner.config() if hasattr(learner, "config") else {}
    return {"name": getattr(learner, "name", type(learner).__name__), **cfg}


def _resolve_metrics(metrics: Mapping[str, MetricFn] | Sequence[str] | None) -> dict[str, MetricFn]:
    if metrics is None:
        return {}
    if isinstance(metrics, Mapping):
        out = {}
        for key, fn in metrics.items():
            out[str(key)] = get_metric(fn) if isinstance(fn, str) else fn
            if not callable(out[str(key)]):
                raise TypeError(f"metric {key!r} must be callable or a metric name")
        return out
    return {str(name): get_metric(name) for name in metrics}


def _evaluate(metrics: dict[str, MetricFn], ctx: RoundContext) -> list[tuple[str, float]]:
    values: list[tuple[str, float]] = []
    for key, fn in metrics.items():
        out = fn(ctx)
        if isinstance(out, Mapping):
            values.extend((str(k), float(v)) for k, v in out.items())
        else:
            values.append((key, float(out)))
    return values


@dataclasses.dataclass
class _Plan:
    """A run's validated settings, its stored configuration and its constant table columns."""

    learner: Any
    source: RealSource
    rounds: int
    workflow: str
    lam: float
    a: float
    n_syn: int
    ev: np.ndarray
    n_ev: int
    seed: int
    train_budget: int | None
    remedies: tuple[Any, ...]
    metric_fns: dict[str, MetricFn]
    metric_backend: MetricBackend
    config: dict[str, Any]
    base_cols: dict[str, Any]

    @property
    def learner_name(self) -> str:
        return self.config["learner"]["name"]

    @property
    def real(self) -> np.ndarray:
        """Round 0's real set (the fixed real data of every workflow but ``fresh``)."""
        return self.source.base


def _plan(learner: Any, real_data: Any, rounds: int, workflow: str, synthetic_ratio: float | None,
          real_fraction: float | None, n_synthetic: int | None, eval_data: Any, n_eval: int | None,
          metrics: Mapping[str, MetricFn] | Sequence[str] | None, seed: int,
          metric_backend: MetricBackend | None, labels: Mapping[str, Any] | None, n_real: int | None = None,
          train_budget: int | None = None, remedies: Any = None) -> _Plan:
    """Validate the arguments of :func:`run_retraining` (in the order of its errors)."""
    check_choice(workflow, "workflow", WORKFLOWS)
    rounds = check_positive_int(rounds, "rounds", minimum=0)
    seed = as_seed(seed)
    source = RealSource(real_data, n_real, workflow, rounds, seed=seed)
    real = source.base
    n, d = real.shape
    lam, a = resolve_mixing(workflow, synthetic_ratio, real_fraction)
    n_syn = n if n_synthetic is None else check_positive_int(n_synthetic, "n_synthetic")
    if workflow in ("mix", "fresh") and n_synthetic is not None:
        raise ValueError(f"n_synthetic is for workflow='replace'/'accumulate'/'accumulate-subsample'; {workflow!r} "
                         "uses floor(synthetic_ratio * n)")
    budget = check_budget(workflow, train_budget, n, n_syn)
    remedies = check_remedies(remedies)
    ev = real if eval_data is None else check_finite_array(eval_data, "eval_data", ndim=2, shape=(None, d))
    n_ev = len(ev) if n_eval is None else check_positive_int(n_eval, "n_eval")
    if not isinstance(learner, Learner):
        raise TypeError("learner must have fit(data, previous_state, rng), sample(state, n, rng) and a name")
    metric_fns = _resolve_metrics(metrics)
    if metric_backend is None:
        metric_backend = MetricBackend()
    elif not isinstance(metric_backend, MetricBackend):
        raise TypeError(f"metric_backend must be a MetricBackend, got {type(metric_backend).__name__}")

    config = {"learner": _learner_config(learner), "workflow": workflow,
              # NaN (accumulate) is stored as None so that configurations compare equal
              "synthetic_ratio": None if math.isnan(lam) else lam,
              "real_fraction": None if math.isnan(a) else a, "n_real": n, "dim": d, "n_synthetic": n_syn, "n_eval": n_ev,
              "seed": seed, "metrics": sorted(metric_fns), "real_digest": _data_digest(source.digest_source()),
              "eval_digest": _data_digest(ev)}
    # keys added after the first release appear only when used, so older checkpoints still resume
    if budget is not None:
        config["train_budget"] = budget
    if source.sampler is not None:
        config["real_source"] = "sampler"
    if remedies:
        config["remedies"] = [r.config() for r in remedies]
    base_cols = {"learner": config["learner"]["name"], "workflow": workflow, "synthetic_ratio": lam,
                 "real_fraction": a, "seed": seed}
    if remedies:
        base_cols["remedy"] = remedy_label(remedies)
    base_cols.update(dict(labels) if labels else {})
    return _Plan(learner, source, rounds, workflow, lam, a, n_syn, ev, n_ev, seed, budget, remedies, metric_fns,
                 metric_backend, config, base_cols)


@dataclasses.dataclass
class _Record:
    """What a run accumulates round after round."""

    keep_states: bool
    keep_samples: bool
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    states: list[Any] = dataclasses.field(default_factory=list)
    samples: list[np.ndarray] = dataclasses.field(default_factory=list)
    synthetic_sets: list[np.ndarray] = dataclasses.field(default_factory=list)
    state: Any = None    # the latest round's state
    state0: Any = None   # round 0's state (theta_0)

    def keep(self, state: Any, eval_samples: np.ndarray) -> None:
        if self.keep_states:
            self.states.append(state)
        if self.keep_samples:
            self.samples.append(eval_samples)


def _load_completed(plan: _Plan, ckpt: Path, done: list[int], record: _Record) -> None:
    """Replay the completed rounds ``done`` of a checkpoint folder into ``record``."""
    for t in done:
        payload = load_round(ckpt, t)
        record.state = payload["state"]
        if t == 0:
            record.state0 = record.state
        if payload["synthetic"] is not None:
            record.synthetic_sets.append(payload["synthetic"])
        # the stored values; the constant columns from this call (the configuration matched)
        record.rows.extend({**plan.base_cols, "round": r["round"], "metric": r["metric"], "value": float(r["value"])}
                           for r in payload["rows"])
        record.keep(record.state, payload["eval_samples"])


def _run_round(plan: _Plan, t: int, record: _Record, ckpt: Path | None) -> tuple[RoundContext, list[tuple[str, float]]]:
    """Fit round ``t``, sample its evaluation set, evaluate the metrics, record and checkpoint it."""
    learner, seed = plan.learner, plan.seed
    t0 = time.perf_counter()
    train, synthetic = training_set(plan, t, record.state, record.synthetic_sets)
    new_state = learner.fit(train, record.state, round_rng(seed, t, STREAM_FIT))
    if t == 0:
        record.state0 = new_state
    record.state = state = new_state
    ev_samples = np.asarray(learner.sample(state, plan.n_ev, round_rng(seed, t, STREAM_EVAL)), dtype=np.float64)
    ctx = RoundContext(round=t, state=state, initial_state=record.state0, samples=ev_samples, eval_data=plan.ev,
                       real_data=plan.real, train_data=train, learner=learner,
                       rng=round_rng(seed, t, STREAM_METRIC), metric_backend=plan.metric_backend,
                       config=plan.config)
    values = _evaluate(plan.metric_fns, ctx)
    # the callback sees the values the table gets (after the metrics ran, so no metric depends on them)
    ctx.metrics = {**dict(values), "train_size": float(len(train))}
    fit_s = time.perf_counter() - t0
    new_rows = [{**plan.base_cols, "round": t, "metric": k, "value": v} for k, v in values]
    new_rows.append({**plan.base_cols, "round": t, "metric": "train_size", "value": float(len(train))})
    record.rows.extend(new_rows)
    if ckpt is not None:
        save_round(ckpt, t, state, synthetic, ev_samples, new_rows, {"wall_s": fit_s}, learner_name=plan.learner_name)
    record.keep(state, ev_samples)
    return ctx, values


def _progress_bar(plan: _Plan, start: int) -> Any:
    from tqdm.auto import tqdm

    desc = f"retrain {plan.learner_name} {plan.workflow}" + ("" if plan.workflow != "mix" else f" lambda={plan.lam:g}")
    return tqdm(total=plan.rounds + 1, initial=start, desc=desc, leave=False)


def run_retraining(learner: Learner, real_data: Any, rounds: int, *, workflow: str = "mix",
                   synthetic_ratio: float | None = None, real_fraction: float | None = None,
                   n_synthetic: int | None = None, eval_data: Any = None, n_eval: int | None = None,
                   metrics: Mapping[str, MetricFn] | Sequence[str] | None = ("std",),
                   seed: int = 0, checkpoint_dir: str | Path | None = None, resume: bool = True,
                   keep_states: bool = True, keep_samples: bool = False, progress: bool = True,
                   callback: Callable[[RoundContext], None] | None = None,
                   labels: Mapping[str, Any] | None = None,
                   metric_backend: MetricBackend | None = None, n_real: int | None = None,
                   train_budget: int | None = None, remedies: Any = None) -> RetrainingResult:
    """Iteratively retrain ``learner`` on real data mixed with its own samples.

    Parameters
    ----------
    learner
        A :class:`Learner` (e.g. ``GaussianLearner()``, ``GMMLearner(8)``, ``DDPMLearner()``).
    real_data
        ``(n, d)`` real training set D_real (kept fixed over the rounds), or a sampler
        ``real_data(n_samples, seed) -> (n_samples, d)`` (then ``n_real`` is required: round 0
        draws D_real with it, and ``fresh`` draws a new set every round). For ``fresh`` an
        array is cut into consecutive blocks of ``n_real`` rows, block t for round t.
    rounds
        Number of retraining rounds T after the initial fit (round 0 fits D_real alone).
    workflow
        ``"mix"``, ``"replace"``, ``"accumulate"``, ``"accumulate-subsample"`` or ``"fresh"``
        (see the module docstring and ``docs/retraining.md``, section "Workflows and
        budgets", which lists the training points per round of each).
    synthetic_ratio, real_fraction
        Mixing for ``workflow="mix"``: exactly one of lambda >= 0 (``math.inf`` = fully
        synthetic) or a in [0, 1]; for ``"fresh"`` at most one, finite (default lambda = 0).
    n_synthetic
        Synthetic samples per round for ``replace`` / ``accumulate`` /
        ``accumulate-subsample`` (default n).
    eval_data
        Held-out real data the metrics compare with (default: ``real_data``).
    n_eval
        Model samples drawn each round for the metrics (default ``len(eval_data)``).
    metrics
        Names (``"std"``, ``"w1"``, ``"w2"``, ``"precision_recall"``, ``"param_distance"``,
        ``"mean"``) or a mapping name -> callable(:class:`RoundContext`) returning a float or
        a dict of floats.
    seed
        Round t's randomness is derived from ``(seed, t)``; results do not depend on whether
        the run was interrupted and resumed.
    checkpoint_dir
        Folder for per-round checkpoints (data only: ``.npz`` read without pickle, and
        strict JSON; written atomically). With ``resume=True`` completed rounds found there
        are loaded instead of recomputed (the stored configuration must match; ``rounds``
        may grow). With ``resume=False`` the files of an earlier run are moved to
        ``checkpoint_dir/stale-<timestamp>/`` (with a warning), not deleted. Pickle files
        (``*.pkl``, older versions) are never loaded. The learner's states must be data only
        (see :class:`Learner`). ``None``: no checkpoints.
    keep_states, keep_samples
        Keep each round's state / evaluation samples in the returned object.
    progress
        Show a tqdm progress bar over rounds.
    callback
        Called with the :class:`RoundContext` after each computed round (e.g. for plots);
        its ``metrics`` hold the round's values and ``config`` the run's configuration, so
        a tracking callback (:class:`~modelcollapse.recursion.TensorBoardCallback`,
        :class:`~modelcollapse.recursion.MLflowCallback`) can log
        them. Rounds loaded from checkpoints are not passed to it.
    labels
        Extra constant columns for the result table (e.g. ``{"experiment": "fig7"}``).
    metric_backend
        The sample distances the built-in metrics use (:class:`MetricBackend`; default exact
        W_p and k-NN precision/recall from :mod:`modelcollapse.metrics`). It reaches every
        metric through :attr:`RoundContext.metric_backend` and is not part of the stored
        configuration.
    n_real
        Real points per real sample: required with a sampler ``real_data`` and with
        ``workflow="fresh"`` (the block size of an array); not allowed otherwise.
    train_budget
        ``workflow="accumulate-subsample"`` only: the points B drawn without replacement from
        the pool (real + every synthetic set so far) each round; default n, at most
        n + n_synthetic.
    remedies
        A remedy or a sequence of them (:class:`~modelcollapse.recursion.SamplingBias`,
        :class:`~modelcollapse.recursion.SelfCorrection`,
        :class:`~modelcollapse.recursion.Verification`), applied in order to every round's
        synthetic draw (each from its own random stream). The evaluation samples of the
        metrics come from the plain model. The table gets a ``remedy`` column
        (docs/retraining.md, section "Remedies").

    Returns
    -------
    RetrainingResult
    """
    plan = _plan(learner, real_data, rounds, workflow, synthetic_ratio, real_fraction, n_synthetic, eval_data,
                 n_eval, metrics, seed, metric_backend, labels, n_real, train_budget, remedies)
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    record = _Record(keep_states=keep_states, keep_samples=keep_samples)
    done: list[int] = []
    if ckpt is not None:
        done = open_checkpoint_dir(ckpt, plan.config, resume, plan.rounds)
        _load_completed(plan, ckpt, done, record)
    start = len(done)

    bar = _progress_bar(plan, start) if progress else None
    try:
        for t in range(start, plan.rounds + 1):
            ctx, values = _run_round(plan, t, record, ckpt)
            if callback is not None:
                callback(ctx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in values[:3]})
    finally:
        if bar is not None:
            bar.close()
    table = pd.DataFrame(record.rows, columns=[*plan.base_cols, "round", "metric", "value"])
    return RetrainingResult(table=table, states=record.states, samples=record.samples, config=plan.config,
                            resumed_from=start - 1, checkpoint_dir=ckpt)


def sweep(learner_factory: Callable[[], Learner], real_data_fn: Callable[[int], tuple[np.ndarray, np.ndarray | None]],
          settings: Sequence[Mapping[str, Any]], seeds: Sequence[int], rounds: int, *,
          checkpoint_root: str | Path | None = None, progress: bool = True, **kwargs: Any) -> pd.DataFrame:
    """Run :func:`run_retraining` for every setting x seed and concatenate the tables.

    ``settings`` are keyword sets such as ``{"workflow": "mix", "synthetic_ratio": 0.5}``;
    ``real_data_fn(seed)`` returns ``(real_data, eval_data_or_None)``; a fresh learner is built
    for every run. With ``checkpoint_root`` each run checkpoints to its own sub-folder, so an
    interrupted sweep resumes where it stopped.
    """
    tables = []
    for setting in settings:
        for s in seeds:
            real, ev = real_data_fn(int(s))
            tag = "_".join(f"{k}-{v}" for k, v in sorted(setting.items()))
            ck = None if checkpoint_root is None else Path(checkpoint_root) / f"{tag}_seed-{s}"
            res = run_retraining(learner_factory(), real, rounds, eval_data=ev, seed=int(s), checkpoint_dir=ck,
                                 progress=progress, keep_states=False, **{**kwargs, **setting})
            tables.append(res.table)
    return pd.concat(tables, ignore_index=True)
