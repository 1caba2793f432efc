"""The project's one generic iterative-retraining loop (Bertrand et al., Algorithm 1).

A *learner* fits a model state to data (warm-started from the previous round's state) and
samples from a state. The loop builds each round's training set from the real data and the
previous model's samples according to a *workflow* (``conventions.md`` section 4):

- ``mix``: all n real points plus ``floor(synthetic_ratio * n)`` synthetic ones; give either
  ``synthetic_ratio`` (lambda >= 0, ``inf`` = fully synthetic: n synthetic points and no real
  data) or ``real_fraction`` a in [0, 1] (a = 1 / (1 + lambda); a = 0 is fully synthetic);
- ``replace``: fully synthetic, n (or ``n_synthetic``) fresh samples of the previous model;
- ``accumulate``: the real data plus every synthetic set generated so far
  (``n_synthetic`` per round, default n).

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
``checkpoint_dir/stale-<timestamp>/``, never deleted.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence, runtime_checkable

import numpy as np
import pandas as pd

from .. import _checkpoint
from .._validation import as_seed, check_choice, check_finite_array, check_positive_int, check_real

WORKFLOWS = ("mix", "replace", "accumulate")

# Independent random streams used inside one round (SeedSequence spawn keys).
_STREAM_SYNTH, _STREAM_FIT, _STREAM_EVAL, _STREAM_METRIC = 0, 1, 2, 3


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


@dataclasses.dataclass
class RoundContext:
    """Everything a metric callback may look at after round ``round`` was fitted.

    ``samples`` are ``n_eval`` fresh samples of the current model (the same array for every
    metric of the round), ``eval_data`` the held-out real data (or the training real data
    when none was given), ``train_data`` the set the round was fitted on.
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


MetricFn = Callable[[RoundContext], "float | Mapping[str, float]"]


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

    def wide(self) -> pd.DataFrame:
        """One row per round, one column per metric."""
        return self.table.pivot_table(index="round", columns="metric", values="value").reset_index()


def resolve_mixing(workflow: str, synthetic_ratio: float | None = None,
                   real_fraction: float | None = None) -> tuple[float, float]:
    """Normalise the mixing parameters of a workflow to ``(synthetic_ratio, real_fraction)``.

    ``mix`` needs exactly one of them (a = 1 / (1 + lambda)); ``replace`` is lambda = inf,
    a = 0; ``accumulate`` reports lambda = nan (its ratio grows with the rounds).
    """
    check_choice(workflow, "workflow", WORKFLOWS)
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
                         "(replace is fully synthetic; accumulate keeps every synthetic set)")
    if workflow == "replace":
        return math.inf, 0.0
    return math.nan, math.nan


def round_rng(seed: int, round_index: int, stream: int) -> np.random.Generator:
    """The generator of one random stream of one round: a pure function of its arguments."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(round_index, stream)))


def _data_digest(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x).tobytes() + str(x.shape).encode()).hexdigest()[:16]


def _learner_config(learner: Any) -> dict[str, Any]:
    cfg = learner.config() if hasattr(learner, "config") else {}
    return {"name": getattr(learner, "name", type(learner).__name__), **cfg}


_FLOAT_COLUMNS = ("synthetic_ratio", "real_fraction", "value")


def _round_paths(directory: Path, t: int) -> tuple[Path, Path]:
    return directory / f"round_{t:04d}.npz", directory / f"round_{t:04d}.json"


def save_round(directory: Path, t: int, state: Any, synthetic: np.ndarray | None,
               eval_samples: np.ndarray, rows: list[dict[str, Any]], extra: dict[str, Any], *,
               learner_name: str = "learner") -> None:
    """Checkpoint round ``t``: state + synthetic set + eval samples (``round_XXXX.npz``, data
    only), metrics (``round_XXXX.json``, strict JSON). Both are written atomically.

    The JSON file is written last, so its presence marks a completed round. A state that is
    not data only raises TypeError (naming ``learner_name`` and the key) before anything is
    written.
    """
    npz, js = _round_paths(directory, t)
    payload = {"round": t, "state": state, "synthetic": synthetic, "eval_samples": eval_samples}
    try:
        _checkpoint.save_data(npz, payload, what=f"the state of learner {learner_name!r} (round {t})")
    except TypeError as exc:
        raise TypeError(f"{exc}; run without checkpoint_dir to keep such states in memory only") from None
    _checkpoint.atomic_write_text(js, _checkpoint.dumps_strict({"round": t, "rows": rows, **extra}, indent=1))


def _read_rows(js: Path) -> list[dict[str, Any]]:
    rows = json.loads(js.read_text(encoding="utf-8"))["rows"]
    return [{k: (_checkpoint.from_strict_json(v) if k in _FLOAT_COLUMNS else v) for k, v in r.items()} for r in rows]


def load_round(directory: str | Path, t: int) -> dict[str, Any]:
    """Read back round ``t`` of a checkpoint folder: keys round, state, synthetic,
    eval_samples, rows.

    Only the data-only files are read (never a pickle): a file that is not one raises
    ValueError naming it.
    """
    directory = Path(directory)
    npz, js = _round_paths(directory, t)
    if not npz.exists() and (directory / f"round_{t:04d}.pkl").exists():
        raise ValueError(f"{directory / f'round_{t:04d}.pkl'} is a pickle checkpoint of an older version: "
                         "not loaded because pickles can execute code; rerun the round to recompute it")
    payload = _checkpoint.load_data(npz)
    if not (isinstance(payload, dict) and {"round", "state", "synthetic", "eval_samples"} <= set(payload)
            and payload["round"] == t):
        raise ValueError(f"{npz} is not a checkpoint of round {t}; it was not loaded")
    payload["rows"] = _read_rows(js)
    return payload


def completed_rounds(directory: str | Path) -> list[int]:
    """Rounds of a checkpoint folder whose ``.npz`` and JSON files are both present and the
    JSON readable, in order, stopping at the first gap (pickle files are ignored)."""
    directory = Path(directory)
    done: list[int] = []
    t = 0
    while True:
        npz, js = _round_paths(directory, t)
        if not (npz.exists() and js.exists()):
            break
        try:
            json.loads(js.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            break
        done.append(t)
        t += 1
    return done


def _move_aside(ckpt: Path, files: list[Path], why: str) -> Path | None:
    """Move an earlier run's checkpoint files to a new ``ckpt/stale-<timestamp>/`` folder
    (never delete them: they may be the only copy of hours of training)."""
    if not files:
        return None
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stale = ckpt / f"stale-{stamp}"
    i = 1
    while stale.exists():
        stale = ckpt / f"stale-{stamp}-{i}"
        i += 1
    stale.mkdir()
    for f in files:
        f.replace(stale / f.name)
    warnings.warn(f"checkpoint_dir {ckpt}: {why}; moved its {len(files)} files to {stale} (kept, not deleted)",
                  stacklevel=3)
    return stale


def _warn_pickles(ckpt: Path) -> None:
    pickles = sorted(p.name for p in ckpt.glob("*.pkl"))
    if pickles:
        more = f" and {len(pickles) - 1} more" if len(pickles) > 1 else ""
        warnings.warn(f"checkpoint_dir {ckpt}: ignored {pickles[0]}{more}: pickle checkpoints are never loaded "
                      "because pickles can execute code; their rounds are recomputed", stacklevel=3)


def _resolve_metrics(metrics: Mapping[str, MetricFn] | Sequence[str] | None) -> dict[str, MetricFn]:
    from .metrics import get_metric

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


def run_retraining(learner: Learner, real_data: Any, rounds: int, *, workflow: str = "mix",
                   synthetic_ratio: float | None = None, real_fraction: float | None = None,
                   n_synthetic: int | None = None, eval_data: Any = None, n_eval: int | None = None,
                   metrics: Mapping[str, MetricFn] | Sequence[str] | None = ("std",),
                   seed: int = 0, checkpoint_dir: str | Path | None = None, resume: bool = True,
                   keep_states: bool = True, keep_samples: bool = False, progress: bool = True,
                   callback: Callable[[RoundContext], None] | None = None,
                   labels: Mapping[str, Any] | None = None) -> RetrainingResult:
    """Iteratively retrain ``learner`` on real data mixed with its own samples.

    Parameters
    ----------
    learner
        A :class:`Learner` (e.g. ``GaussianLearner()``, ``GMMLearner(8)``, ``DDPMLearner()``).
    real_data
        ``(n, d)`` real training set D_real (kept fixed over the rounds).
    rounds
        Number of retraining rounds T after the initial fit (round 0 fits D_real alone).
    workflow
        ``"mix"``, ``"replace"`` or ``"accumulate"`` (see the module docstring).
    synthetic_ratio, real_fraction
        Mixing for ``workflow="mix"``: exactly one of lambda >= 0 (``math.inf`` = fully
        synthetic) or a in [0, 1].
    n_synthetic
        Synthetic samples per round for ``replace`` / ``accumulate`` (default n).
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
        Called with the :class:`RoundContext` after each computed round (e.g. for plots).
    labels
        Extra constant columns for the result table (e.g. ``{"experiment": "fig7"}``).

    Returns
    -------
    RetrainingResult
    """
    real = check_finite_array(real_data, "real_data", ndim=2)
    n, d = real.shape
    if n < 2:
        raise ValueError(f"real_data needs at least 2 points, got {n}")
    rounds = check_positive_int(rounds, "rounds", minimum=0)
    lam, a = resolve_mixing(workflow, synthetic_ratio, real_fraction)
    n_syn = n if n_synthetic is None else check_positive_int(n_synthetic, "n_synthetic")
    if workflow == "mix" and n_synthetic is not None:
        raise ValueError("n_synthetic is for workflow='replace'/'accumulate'; 'mix' uses floor(synthetic_ratio * n)")
    ev = real if eval_data is None else check_finite_array(eval_data, "eval_data", ndim=2, shape=(None, d))
    n_ev = len(ev) if n_eval is None else check_positive_int(n_eval, "n_eval")
    seed = as_seed(seed)
    if not isinstance(learner, Learner):
        raise TypeError("learner must have fit(data, previous_state, rng), sample(state, n, rng) and a name")
    metric_fns = _resolve_metrics(metrics)

    config = {"learner": _learner_config(learner), "workflow": workflow,
              # NaN (accumulate) is stored as None so that configurations compare equal
              "synthetic_ratio": None if math.isnan(lam) else lam,
              "real_fraction": None if math.isnan(a) else a, "n_real": n, "dim": d, "n_synthetic": n_syn, "n_eval": n_ev,
              "seed": seed, "metrics": sorted(metric_fns), "real_digest": _data_digest(real),
              "eval_digest": _data_digest(ev)}
    base_cols = {"learner": config["learner"]["name"], "workflow": workflow, "synthetic_ratio": lam,
                 "real_fraction": a, "seed": seed, **(dict(labels) if labels else {})}

    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    done: list[int] = []
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        cfg_path = ckpt / "config.json"
        jcfg = json.loads(_checkpoint.dumps_strict(config))
        if cfg_path.exists() and resume:
            # strict_json also normalises files of older versions (Infinity -> "inf")
            _warn_pickles(ckpt)
            try:
                stored = _checkpoint.strict_json(json.loads(cfg_path.read_text(encoding="utf-8")))
            except (OSError, UnicodeDecodeError, ValueError) as exc:
                raise ValueError(f"checkpoint_dir {ckpt}: config.json is unreadable ({type(exc).__name__}); "
                                 "use another folder or resume=False (which moves the old files aside)") from None
            if not isinstance(stored, dict):
                stored = {"config.json": stored}
            if stored != jcfg:
                diff = sorted(k for k in set(stored) | set(jcfg) if stored.get(k) != jcfg.get(k))
                raise ValueError(f"checkpoint_dir {ckpt} holds a run with a different configuration "
                                 f"(differs in: {', '.join(diff)}); use another folder or resume=False "
                                 "(which moves the old files aside)")
            done = [t for t in completed_rounds(ckpt) if t <= rounds]
        else:
            old = sorted(p for p in ckpt.glob("round_*.*") if p.suffix in (".npz", ".json", ".pkl"))
            if cfg_path.exists():
                old.append(cfg_path)
            _move_aside(ckpt, old, "an earlier run is not resumed (resume=False)" if not resume
                        else "round files without a config.json")
        _checkpoint.atomic_write_text(cfg_path, json.dumps(jcfg, indent=1, allow_nan=False))

    rows: list[dict[str, Any]] = []
    states: list[Any] = []
    samples_kept: list[np.ndarray] = []
    synthetic_sets: list[np.ndarray] = []
    state0 = state = None
    for t in done:
        payload = load_round(ckpt, t)
        state = payload["state"]
        if t == 0:
            state0 = state
        if payload["synthetic"] is not None:
            synthetic_sets.append(payload["synthetic"])
        # the stored values; the constant columns from this call (the configuration matched)
        rows.extend({**base_cols, "round": r["round"], "metric": r["metric"], "value": float(r["value"])}
                    for r in payload["rows"])
        if keep_states:
            states.append(state)
        if keep_samples:
            samples_kept.append(payload["eval_samples"])
    start = len(done)

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=rounds + 1, initial=start, desc=f"retrain {config['learner']['name']} {workflow}"
                   + ("" if workflow != "mix" else f" lambda={lam:g}"), leave=False)
    try:
        for t in range(start, rounds + 1):
            t0 = time.perf_counter()
            synthetic = None
            if t == 0:
                train = real
            else:
                rs = round_rng(seed, t, _STREAM_SYNTH)
                if workflow == "mix":
                    m = n if math.isinf(lam) else int(math.floor(lam * n + 1e-9))
                    synthetic = learner.sample(state, m, rs) if m > 0 else np.empty((0, d))
                    train = synthetic if math.isinf(lam) else np.concatenate([real, synthetic])
                elif workflow == "replace":
                    synthetic = learner.sample(state, n_syn, rs)
                    train = synthetic
                else:
                    synthetic = learner.sample(state, n_syn, rs)
                    synthetic_sets.append(synthetic)
                    train = np.concatenate([real, *synthetic_sets])
                synthetic = check_finite_array(synthetic, "learner.sample output", ndim=2, shape=(None, d),
                                               allow_empty=True)
            new_state = learner.fit(train, state, round_rng(seed, t, _STREAM_FIT))
            if t == 0:
                state0 = new_state
            state = new_state
            ev_samples = np.asarray(learner.sample(state, n_ev, round_rng(seed, t, _STREAM_EVAL)), dtype=np.float64)
            ctx = RoundContext(round=t, state=state, initial_state=state0, samples=ev_samples, eval_data=ev,
                               real_data=real, train_data=train, learner=learner,
                               rng=round_rng(seed, t, _STREAM_METRIC))
            values = _evaluate(metric_fns, ctx)
            fit_s = time.perf_counter() - t0
            new_rows = [{**base_cols, "round": t, "metric": k, "value": v} for k, v in values]
            new_rows.append({**base_cols, "round": t, "metric": "train_size", "value": float(len(train))})
            rows.extend(new_rows)
            if ckpt is not None:
                save_round(ckpt, t, state, synthetic, ev_samples, new_rows, {"wall_s": fit_s},
                           learner_name=config["learner"]["name"])
            if keep_states:
                states.append(state)
            if keep_samples:
                samples_kept.append(ev_samples)
            if callback is not None:
                callback(ctx)
            if bar is not None:
                bar.update(1)
                bar.set_postfix({k: f"{v:.3g}" for k, v in values[:3]})
    finally:
        if bar is not None:
            bar.close()
    table = pd.DataFrame(rows, columns=[*base_cols, "round", "metric", "value"])
    return RetrainingResult(table=table, states=states, samples=samples_kept, config=config,
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
