"""Per-round checkpoints of the retraining loop: writing and reading rounds, and opening a
checkpoint folder for a run (resume or move an earlier run aside).

A round is two files: ``round_XXXX.npz`` (the state, the round's synthetic set and
evaluation samples, data only: see :mod:`modelcollapse._checkpoint`) and
``round_XXXX.json`` (its metrics, strict JSON), written atomically, the JSON last so that its
presence marks a completed round. ``config.json`` holds the run's configuration; a resumed
run must match it. Pickle checkpoints of older versions (``round_*.pkl``) are never loaded,
and an earlier run's files are moved to ``stale-<timestamp>/``, never deleted.
"""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .. import _checkpoint

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


# Warnings point at the caller of run_retraining: run_retraining -> open_checkpoint_dir -> here.
_STACKLEVEL = 4


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
                  stacklevel=_STACKLEVEL)
    return stale


def _warn_pickles(ckpt: Path) -> None:
    pickles = sorted(p.name for p in ckpt.glob("*.pkl"))
    if pickles:
        more = f" and {len(pickles) - 1} more" if len(pickles) > 1 else ""
        warnings.warn(f"checkpoint_dir {ckpt}: ignored {pickles[0]}{more}: pickle checkpoints are never loaded "
                      "because pickles can execute code; their rounds are recomputed", stacklevel=_STACKLEVEL)


def _check_stored_config(ckpt: Path, cfg_path: Path, jcfg: dict[str, Any]) -> None:
    """Refuse to resume a folder whose config.json is unreadable or differs from this run's."""
    try:
        # strict_json also normalises files of older versions (Infinity -> "inf")
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


def open_checkpoint_dir(ckpt: Path, config: dict[str, Any], resume: bool, rounds: int) -> list[int]:
    """Prepare ``ckpt`` for a run with ``config`` and return the completed rounds to load.

    With ``resume`` and a ``config.json`` there, the stored configuration must equal this
    run's and the completed rounds up to ``rounds`` are returned; otherwise the files of an
    earlier run are moved aside and nothing is loaded. The run's ``config.json`` is written
    (atomically) in both cases.
    """
    ckpt.mkdir(parents=True, exist_ok=True)
    cfg_path = ckpt / "config.json"
    jcfg = json.loads(_checkpoint.dumps_strict(config))
    done: list[int] = []
    if cfg_path.exists() and resume:
        _warn_pickles(ckpt)
        _check_stored_config(ckpt, cfg_path, jcfg)
        done = [t for t in completed_rounds(ckpt) if t <= rounds]
    else:
        old = sorted(p for p in ckpt.glob("round_*.*") if p.suffix in (".npz", ".json", ".pkl"))
        if cfg_path.exists():
            old.append(cfg_path)
        _move_aside(ckpt, old, "an earlier run is not resumed (resume=False)" if not resume
                    else "round files without a config.json")
    _checkpoint.atomic_write_text(cfg_path, json.dumps(jcfg, indent=1, allow_nan=False))
    return done
