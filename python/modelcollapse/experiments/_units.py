"""Finished units of an experiment, kept on disk so that an interrupted run resumes
(docs/cli.md, section "Interrupting and resuming").

An experiment wraps each expensive, self-contained piece of work (a part, a seed, a model, a
setting) in :func:`unit`: ``value = unit("seed-3", lambda: compute(3))``. While
:meth:`~modelcollapse.experiments._registry.Experiment.run` runs it, a finished unit is saved
as ``<out_dir>/.units/<experiment>/<run key>/<unit key>.npz`` and a later run with the same
run key loads it instead of computing it again. Outside such a run (a part function called
directly) :func:`unit` just calls the function.

- The run key is a hash of the experiment's name, its configuration and the code (the
  modelcollapse version and the bytes of its Python sources): another configuration or
  another version never reuses a unit (its files stay where they are).
- A unit file holds data only: the :mod:`modelcollapse._checkpoint` format (``np.load`` with
  ``allow_pickle=False``), tables as Parquet bytes, claims as their fields, figures as their
  image bytes. Loading a folder from someone else never runs code; a file that is not a
  valid unit of this run (corrupt, tampered with, of another run) is recomputed, with a
  one-line warning.
- Each unit is written atomically when it finishes, so Ctrl-C keeps every finished unit
  and an interrupted write never leaves a file that is later trusted.
- A fresh run returns the unit as read back from its file, so a resumed run and an
  uninterrupted one see the same values, bit for bit.
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import io
import json
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from .. import _checkpoint
from ._claims import Claim, claim_from_dict

UNITS_DIR = ".units"
_FORMAT = "modelcollapse-unit"
_TAG = "__unit__"
_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]{0,150}")
_FIGURE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+-]{0,150}\.(png|pdf|svg)")


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Hash of the modelcollapse version and of every Python source file of the package
    (their paths and bytes): a unit computed by other code is not reused."""
    from .._version import version

    root = Path(__file__).resolve().parents[1]
    h = hashlib.sha256(version.encode())
    for f in sorted(root.rglob("*.py")):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def run_key(experiment: str, config: Any) -> str:
    """The hash naming a run's unit folder: experiment name, configuration, code."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else config
    ident = {"experiment": experiment, "config": json.loads(_checkpoint.dumps_strict(cfg)),
             "code": code_fingerprint()}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


# ----------------------------------------------------------------------------- packing
def _pack(obj: Any, out_dir: Path) -> Any:
    """Turn tables, claims and figure paths into data the checkpoint codec accepts."""
    if isinstance(obj, pd.DataFrame):
        buf = io.BytesIO()
        obj.to_parquet(buf, index=True)
        return {_TAG: "frame", "parquet": np.frombuffer(buf.getvalue(), dtype=np.uint8)}
    if isinstance(obj, Claim):
        return {_TAG: "claim", "fields": obj.to_dict()}
    if isinstance(obj, Path):
        if obj.parent.resolve() != out_dir.resolve() or not _FIGURE.fullmatch(obj.name):
            raise TypeError(f"a unit can keep figure files of the output folder only, got {obj}")
        return {_TAG: "figure", "name": obj.name, "bytes": np.frombuffer(obj.read_bytes(), dtype=np.uint8)}
    if isinstance(obj, SimpleNamespace):
        return {_TAG: "fields", "v": {k: _pack(v, out_dir) for k, v in vars(obj).items()}}
    if isinstance(obj, dict):
        if _TAG in obj:
            raise TypeError(f"a unit's dict may not use the key {_TAG!r}")
        return {k: _pack(v, out_dir) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_pack(v, out_dir) for v in obj)
    return obj


def _unpack(obj: Any, out_dir: Path) -> Any:
    if isinstance(obj, dict) and _TAG in obj:
        kind = obj[_TAG]
        if kind == "frame" and isinstance(obj.get("parquet"), np.ndarray) and obj["parquet"].dtype == np.uint8:
            return pd.read_parquet(io.BytesIO(obj["parquet"].tobytes()))
        if kind == "claim" and isinstance(obj.get("fields"), dict):
            return claim_from_dict(obj["fields"])
        if kind == "figure" and isinstance(obj.get("name"), str) and _FIGURE.fullmatch(obj["name"]) \
                and isinstance(obj.get("bytes"), np.ndarray) and obj["bytes"].dtype == np.uint8:
            path = out_dir / obj["name"]
            data = obj["bytes"].tobytes()
            if not (path.is_file() and path.read_bytes() == data):
                _checkpoint.atomic_write_bytes(path, data)
            return path
        if kind == "fields" and isinstance(obj.get("v"), dict):
            return SimpleNamespace(**{str(k): _unpack(v, out_dir) for k, v in obj["v"].items()})
        raise ValueError(f"malformed {kind!r} entry")
    if isinstance(obj, dict):
        return {k: _unpack(v, out_dir) for k, v in obj.items()}
    if type(obj) in (list, tuple):
        return type(obj)(_unpack(v, out_dir) for v in obj)
    return obj


# ----------------------------------------------------------------------------- the cache
class UnitCache:
    """The finished units of one run of ``experiment`` with ``config`` into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        The run's output folder; units live under ``out_dir/.units/<experiment>/<run key>``.
    experiment : str
        The experiment's registered name.
    config : dataclass
        The run's configuration (part of the run key).
    """

    def __init__(self, out_dir: str | Path, experiment: str, config: Any) -> None:
        self.out_dir = Path(out_dir)
        self.experiment = experiment
        self.key = run_key(experiment, config)
        self.folder = self.out_dir / UNITS_DIR / experiment / self.key
        self.reused = 0
        self.computed = 0

    def path(self, key: str) -> Path:
        if not isinstance(key, str) or not _KEY.fullmatch(key):
            raise ValueError(f"unit key must be letters, digits and . _ = + - (at most 151), got {key!r}")
        return self.folder / f"{key}.npz"

    def finished(self) -> int:
        """Unit files of this run on disk."""
        return len(list(self.folder.glob("*.npz"))) if self.folder.is_dir() else 0

    def not_reused(self) -> int:
        """Unit files of other runs (another configuration or code) of this experiment here."""
        root = self.folder.parent
        if not root.is_dir():
            return 0
        return sum(1 for f in root.glob("*/*.npz") if f.parent != self.folder)

    def _load(self, path: Path, key: str) -> Any:
        payload = _checkpoint.load_data(path)   # never unpickles; ValueError naming the file
        if not (isinstance(payload, dict) and payload.get("format") == _FORMAT and "value" in payload
                and payload.get("experiment") == self.experiment and payload.get("run") == self.key
                and payload.get("unit") == key):
            raise ValueError(f"{path} is not unit {key!r} of this run")
        try:
            return _unpack(payload["value"], self.out_dir)
        except Exception as exc:   # e.g. a broken Parquet blob: whatever the parser raises, not trusted
            raise ValueError(f"{path} holds a malformed unit ({_checkpoint._first_line(exc)})") from None

    def get(self, key: str, fn: Callable[[], Any], keep: Sequence[str] | None = None) -> Any:
        """The unit ``key``: loaded when this run finished it before, else ``fn()`` saved.

        ``keep``: store only these attributes of ``fn()``'s result (a result object that is
        not data, e.g. a simulation result), returned as a :class:`types.SimpleNamespace`.
        """
        path = self.path(key)
        if path.is_file():
            try:
                value = self._load(path, key)
            except ValueError as exc:
                warnings.warn(f"unit not reused, recomputed: {_checkpoint._first_line(exc)}", stacklevel=3)
            else:
                self.reused += 1
                return value
        value = fn()
        if keep is not None:
            value = SimpleNamespace(**{k: getattr(value, k) for k in keep})
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"format": _FORMAT, "experiment": self.experiment, "run": self.key, "unit": key,
                   "value": _pack(value, self.out_dir)}
        _checkpoint.save_data(path, payload, what=f"unit {key!r} of {self.experiment}")
        self.computed += 1
        # what a resumed run would see: the same values, bit for bit
        return self._load(path, key)

    def counts(self) -> dict[str, Any]:
        return {"reused": self.reused, "computed": self.computed, "folder": str(self.folder)}


_ACTIVE: contextvars.ContextVar[UnitCache | None] = contextvars.ContextVar("modelcollapse_units", default=None)


@contextlib.contextmanager
def active(cache: UnitCache) -> Iterator[UnitCache]:
    """Make ``cache`` the one :func:`unit` uses while the block runs."""
    token = _ACTIVE.set(cache)
    try:
        yield cache
    finally:
        _ACTIVE.reset(token)


def unit(key: str, fn: Callable[[], Any], keep: Sequence[str] | None = None) -> Any:
    """Run ``fn()`` as the unit ``key`` of the current experiment run (module docstring).

    Parameters
    ----------
    key : str
        Unique within the experiment: letters, digits and ``. _ = + -``.
    fn : callable
        Computes the unit; its result (or the ``keep`` attributes of it) must be data:
        numpy arrays, numbers, strings, None, DataFrames, claims, figure paths of the
        output folder, and dicts / lists / tuples of these.
    keep : sequence of str, optional
        Keep only these attributes of the result, returned as a SimpleNamespace.
    """
    cache = _ACTIVE.get()
    if cache is not None:
        return cache.get(key, fn, keep)
    value = fn()
    return SimpleNamespace(**{k: getattr(value, k) for k in keep}) if keep is not None else value
