"""Finished units of an experiment, kept on disk so that an interrupted run resumes
(docs/cli.md, section "Interrupting and resuming").

An experiment wraps each expensive, self-contained piece of work (a part, a seed, a model, a
setting) in :func:`unit`: ``value = unit("seed-3", lambda: compute(3))``. While
:meth:`~modelcollapse.experiments._registry.Experiment.run` runs it, a finished unit is saved
as ``<out_dir>/.units/<experiment>/<run key>/<unit key>.npz`` and a later run with the same
run key loads it instead of computing it again. Outside such a run (a part function called
directly) :func:`unit` just calls the function.

- The run key is a hash of the experiment's name, its configuration and the code a unit can
  depend on (:func:`code_files`: the modelcollapse version, the library's sources and compiled
  extension, the shared experiment helpers and the experiment's own modules; not the CLI,
  the report or another experiment): another configuration or other code never reuses a
  unit (its files stay where they are).
- A unit file holds data only: the :mod:`modelcollapse._checkpoint` format (``np.load`` with
  ``allow_pickle=False``), tables as Parquet bytes, claims as their fields, figures as their
  image bytes. Loading a folder from someone else never runs code; a file that is not a
  valid unit of this run (corrupt, tampered with, of another run) is recomputed, with a
  one-line warning.
- Each unit is written atomically when it finishes, so Ctrl-C keeps every finished unit
  and an interrupted write never leaves a file that is later trusted.
- A fresh run returns the unit as read back from its file, so a resumed run and an
  uninterrupted one see the same values, bit for bit, and the same warnings: the warnings a
  unit raised are kept with it (category, message, location) and raised again, once per run,
  at their own location, or at the line that called :func:`unit` where they pointed into
  this module.
"""
from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import functools
import hashlib
import io
import json
import re
import sys
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


#: Modules of the package that no unit's result can depend on: the command line (it only calls
#: experiments) and ``python -m modelcollapse``.
_NOT_CODE = ("cli.py", "__main__.py")


def _package_root() -> Path:
    return Path(__file__).resolve().parents[1]


def _module_file(name: str, root: Path) -> Path | None:
    """The source file of module ``name`` (``modelcollapse.x.y``) under ``root``, or None."""
    parts = name.split(".")
    if parts[0] != root.name:
        return None
    base = root.joinpath(*parts[1:])
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _module_name(f: Path, root: Path) -> str:
    rel = f.relative_to(root).with_suffix("").parts
    return ".".join((root.name, *(rel[:-1] if rel[-1] == "__init__" else rel)))


def _imports(f: Path, root: Path) -> set[Path]:
    """The package modules ``f`` imports anywhere in its body (module level or inside a
    function; ``from . import x`` names module ``x``, ``from .m import x`` module ``m``),
    read from its syntax tree: nothing is imported or run."""
    name = _module_name(f, root)
    package = name if f.name == "__init__.py" else name.rpartition(".")[0]
    found: set[Path] = set()
    for node in ast.walk(ast.parse(f.read_bytes())):
        if isinstance(node, ast.Import):
            bases = [a.name for a in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                up = package.split(".")
                up = up[: len(up) - (node.level - 1)]
                bases = [".".join([*up, *([node.module] if node.module else [])])]
            else:
                bases = [node.module or ""]
            names = [a.name for a in node.names]
        else:
            continue
        for base in bases:
            for cand in (base, *(f"{base}.{n}" for n in names)):
                g = _module_file(cand, root)
                if g is not None:
                    found.add(g)
    return found


def code_files(module: str | None = None, root: str | Path | None = None) -> list[Path]:
    """The source files a unit of the experiment defined in ``module`` can depend on (its run key
    hashes them; docs/cli.md, section "Interrupting and resuming").

    Every module of the library (the package outside ``experiments/``, but not the command line
    ``cli.py`` / ``__main__.py``) and its compiled extension; the shared experiment helpers
    (``experiments/_*.py``, ``experiments/__init__.py``); the experiment's module, every
    experiment module it imports (anywhere in its body), directly or through others, and the
    ``__init__.py`` of the packages these live in. Editing another experiment, the report, the
    sweep, the CLI or the docs leaves the run key alone. ``module`` None, or a module outside
    ``experiments/`` (e.g. an experiment registered by a test): every experiment module (when
    in doubt, include).

    Parameters
    ----------
    module : str, optional
        Dotted name of the module that registers the experiment (``Experiment.run_fn.__module__``).
    root : path, optional
        The package folder (default: this installed package; tests pass a copy).
    """
    root = _package_root() if root is None else Path(root).resolve()
    exp_dir = root / "experiments"
    files = {f for f in root.rglob("*.py") if exp_dir not in f.parents and f.relative_to(root).as_posix() not in _NOT_CODE}
    files |= {f for pattern in ("_core*.so", "_core*.pyd") for f in root.glob(pattern)}
    files |= {f for f in exp_dir.glob("*.py") if f.name.startswith("_")}
    start = _module_file(module, root) if module else None
    if start is None or exp_dir not in start.parents:
        return sorted(files | set(exp_dir.rglob("*.py")))
    todo, seen = [start], set()
    while todo:
        f = todo.pop()
        if f in seen:
            continue
        seen.add(f)
        todo += [g for g in _imports(f, root) if exp_dir in g.parents]
    for f in list(seen):
        seen |= {p / "__init__.py" for p in f.parents
                 if (exp_dir == p or exp_dir in p.parents) and (p / "__init__.py").is_file()}
    return sorted(files | seen)


@functools.cache
def code_fingerprint(module: str | None = None) -> str:
    """Hash of the modelcollapse version and of the files of :func:`code_files` (their paths
    and bytes): a unit computed by other code is not reused."""
    from .._version import version

    root = _package_root()
    h = hashlib.sha256(version.encode())
    for f in code_files(module, root):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def run_key(experiment: str, config: Any, module: str | None = None) -> str:
    """The hash naming a run's unit folder: experiment name, configuration, code
    (:func:`code_fingerprint` of the experiment's ``module``)."""
    cfg = dataclasses.asdict(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else config
    ident = {"experiment": experiment, "config": json.loads(_checkpoint.dumps_strict(cfg)),
             "code": code_fingerprint(module)}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


#: experiment name -> the module that registers it (filled by ``_registry.register``)
EXPERIMENT_MODULES: dict[str, str] = {}


def experiment_module(experiment: str) -> str | None:
    """The module that registers ``experiment`` (None when it is not registered)."""
    return EXPERIMENT_MODULES.get(experiment)


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
    module : str, optional
        The module that registers the experiment, whose code the run key hashes
        (:func:`code_files`); default: looked up in the registry by ``experiment``.
    """

    def __init__(self, out_dir: str | Path, experiment: str, config: Any, module: str | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.experiment = experiment
        self.key = run_key(experiment, config, experiment_module(experiment) if module is None else module)
        self.folder = self.out_dir / UNITS_DIR / experiment / self.key
        self.reused = 0
        self.computed = 0
        self._shown: set[tuple[str, str, str, int]] = set()

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

    def _load(self, path: Path, key: str) -> tuple[Any, list[dict[str, Any]]]:
        payload = _checkpoint.load_data(path)   # never unpickles; ValueError naming the file
        if not (isinstance(payload, dict) and payload.get("format") == _FORMAT and "value" in payload
                and payload.get("experiment") == self.experiment and payload.get("run") == self.key
                and payload.get("unit") == key and _valid_notes(payload.get("warnings", []))):
            raise ValueError(f"{path} is not unit {key!r} of this run")
        try:
            return _unpack(payload["value"], self.out_dir), payload.get("warnings", [])
        except Exception as exc:   # e.g. a broken Parquet blob: whatever the parser raises, not trusted
            raise ValueError(f"{path} holds a malformed unit ({_checkpoint._first_line(exc)})") from None

    def get(self, key: str, fn: Callable[[], Any], keep: Sequence[str] | None = None,
            caller: Location | None = None) -> Any:
        """The unit ``key``: loaded when this run finished it before, else ``fn()`` saved.

        ``keep``: store only these attributes of ``fn()``'s result (a result object that is
        not data, e.g. a simulation result), returned as a :class:`types.SimpleNamespace`.
        ``caller``: (file, line, module globals) of the code that asked for the unit: the
        warnings ``fn()`` raised are saved with the unit and raised again (by a fresh run and a
        reused unit alike) at their own location, or at ``caller`` where they pointed into this
        module (``fn`` a ``functools.partial``: a ``stacklevel=2`` warning of the function lands
        on the line that called it, here).
        """
        path = self.path(key)
        if path.is_file():
            try:
                value, notes = self._load(path, key)
            except ValueError as exc:
                msg = f"unit not reused, recomputed: {_checkpoint._first_line(exc)}"
                if caller is None:
                    warnings.warn(msg, stacklevel=2)
                else:   # at the line that asked for the unit
                    warnings.warn_explicit(msg, UserWarning, caller[0], caller[1], module_globals=caller[2])
            else:
                self.reused += 1
                self._reemit(notes, caller)
                return value
        # the caller's filters apply inside: an ignored warning is not kept, an "error" still raises
        with warnings.catch_warnings(record=True) as caught:
            value = fn()
        if keep is not None:
            value = SimpleNamespace(**{k: getattr(value, k) for k in keep})
        self.folder.mkdir(parents=True, exist_ok=True)
        payload = {"format": _FORMAT, "experiment": self.experiment, "run": self.key, "unit": key,
                   "value": _pack(value, self.out_dir), "warnings": _notes(caught)}
        _checkpoint.save_data(path, payload, what=f"unit {key!r} of {self.experiment}")
        self.computed += 1
        # what a resumed run would see: the same values (bit for bit) and the same warnings
        value, notes = self._load(path, key)
        self._reemit(notes, caller)
        return value

    def _reemit(self, notes: list[dict[str, Any]], caller: Location | None) -> None:
        """Raise the saved warnings again, each once per run (as Python's "default" action shows
        a warning once per location)."""
        for n in notes:
            filename, lineno, module_globals = n["filename"], n["lineno"], None
            if caller is not None and _is_this_module(filename):
                filename, lineno, module_globals = caller
            ident = (n["category"], n["message"], filename, lineno)
            if ident in self._shown:
                continue
            self._shown.add(ident)
            warnings.warn_explicit(n["message"], _category(n["category"]), filename, lineno,
                                   module_globals=module_globals)

    def counts(self) -> dict[str, Any]:
        return {"reused": self.reused, "computed": self.computed, "folder": str(self.folder)}


#: Where a unit was asked for: (file name, line, the module's globals).
Location = tuple[str, int, dict[str, Any]]
_NOTE_FIELDS = {"category": str, "message": str, "filename": str, "lineno": int}


def _is_this_module(filename: str) -> bool:
    try:
        return Path(filename).resolve() == Path(__file__).resolve()
    except (OSError, ValueError):
        return False


def _notes(caught: Sequence[warnings.WarningMessage]) -> list[dict[str, Any]]:
    """The caught warnings as data (category by its qualified name), each once."""
    out: list[dict[str, Any]] = []
    for w in caught:
        note = {"category": f"{w.category.__module__}.{w.category.__qualname__}", "message": str(w.message),
                "filename": str(w.filename), "lineno": int(w.lineno or 0)}
        if note not in out:
            out.append(note)
    return out


def _valid_notes(notes: Any) -> bool:
    return isinstance(notes, list) and all(
        isinstance(n, dict) and set(n) == set(_NOTE_FIELDS) and all(type(n[k]) is t for k, t in _NOTE_FIELDS.items())
        for n in notes)


def _category(name: str) -> type[Warning]:
    """The warning class named ``module.qualname`` when its module is already imported (a unit
    file never makes anything import), else UserWarning."""
    module, _, qualname = name.rpartition(".")
    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        obj = getattr(obj, part, None) if obj is not None else None
    return obj if isinstance(obj, type) and issubclass(obj, Warning) else UserWarning


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
        frame = sys._getframe(1)
        return cache.get(key, fn, keep, (frame.f_code.co_filename, frame.f_lineno, frame.f_globals))
    value = fn()
    return SimpleNamespace(**{k: getattr(value, k) for k in keep}) if keep is not None else value
