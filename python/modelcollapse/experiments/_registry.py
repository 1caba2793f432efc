"""Registry of reproducible experiments: typed configs, presets, overrides, saved results.

An experiment module defines a dataclass config and a ``run(config, out_dir, progress)``
function returning an :class:`ExperimentOutput`, and registers both with :func:`register`.
"""
from __future__ import annotations

import dataclasses
import inspect
import io
import math
import numbers
import textwrap
import time
import tokenize
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from .._checkpoint import atomic_file
from ..results import save_results
from ._claims import Claim, claims_frame
from ._units import EXPERIMENT_MODULES, UnitCache, active

PRESETS = ("quick", "default", "paper")


@dataclasses.dataclass
class ExperimentOutput:
    """What an experiment produced: a tidy table, figure files, headline numbers and the
    checked claims (docs/claims.md), each with its estimate, CI and verdict."""

    table: pd.DataFrame
    figures: list[Path] = dataclasses.field(default_factory=list)
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)
    claims: list[Claim] = dataclasses.field(default_factory=list)
    #: finished units reused / computed by this run and their folder (set by Experiment.run)
    units: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Experiment:
    name: str
    description: str
    config_cls: type
    presets: dict[str, dict[str, Any]]
    run_fn: Callable[[Any, Path, bool], ExperimentOutput]
    part: str = "foundation"
    headline: bool = False
    claim: str = ""
    report: bool = False
    #: the presets at which ``modelcollapse report`` runs it (``report`` True); the report's
    #: header names it at the others
    report_presets: tuple[str, ...] = PRESETS

    def fields(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self.config_cls)]

    def make_config(self, preset: str = "default", overrides: dict[str, Any] | None = None) -> Any:
        """The preset's config with ``overrides`` (strings are parsed by field type)."""
        if preset not in self.presets:
            raise ValueError(f"unknown preset {preset!r} for {self.name}; valid: {', '.join(self.presets)}")
        fields = {f.name: f for f in dataclasses.fields(self.config_cls)}
        hints = typing.get_type_hints(self.config_cls)
        values = dict(self.presets[preset])
        for key, raw in (overrides or {}).items():
            if key not in fields:
                raise ValueError(f"unknown key {key!r} for {self.name}; valid keys: {', '.join(fields)}")
            values[key] = parse_value(raw, hints[key], key) if isinstance(raw, str) else coerce_value(raw, hints[key], key)
        return self.config_cls(**values)

    def describe(self, preset: str = "quick") -> list[dict[str, Any]]:
        """One row per config field: ``key``, ``type``, ``default`` (the dataclass default),
        ``value`` (the value under ``preset``) and ``help`` (the field's ``metadata["help"]``,
        else the comment on or just above its line in the source; "" when there is none)."""
        config = self.make_config(preset)
        helps = field_help(self.config_cls)
        hints = typing.get_type_hints(self.config_cls)
        rows = []
        for f in dataclasses.fields(self.config_cls):
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = "(required)"
            rows.append({"key": f.name, "type": type_name(hints[f.name]), "default": default,
                         "value": getattr(config, f.name), "help": helps.get(f.name, "")})
        return rows

    def run(self, config: Any, out_dir: str | Path, progress: bool = True) -> ExperimentOutput:
        """Run, then save ``<name>.parquet`` + ``<name>.json`` next to the figures, and the
        claims as ``<name>_claims.parquet`` (also listed in the JSON sidecar).

        Finished units are kept under ``<out_dir>/.units/<name>/`` and reused by a later run
        with the same configuration and code (:mod:`._units`; docs/cli.md, section
        "Interrupting and resuming"); ``result.units`` counts them."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        cache = UnitCache(out, self.name, config, self.run_fn.__module__)
        with active(cache):
            result = self.run_fn(config, out, progress)
        result.units = cache.counts()
        wall = time.perf_counter() - start
        if result.claims:
            with atomic_file(out / f"{self.name}_claims.parquet", "wb") as fh:
                claims_frame(result.claims).to_parquet(fh, index=False)
        save_results(result.table, out, self.name, config, wall_time_s=wall,
                     extra={"figures": [str(p.name) for p in result.figures], "summary": result.summary,
                            "claims": [c.to_dict() for c in result.claims], "units": result.units})
        return result


def _parse_scalar(raw: str, typ: Any, key: str) -> Any:
    if typ is bool:
        low = raw.strip().lower()
        if low in ("1", "true", "yes", "on"):
            return True
        if low in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{key} must be true or false, got {raw!r}")
    if typ in (int, float):
        try:
            return typ(float(raw)) if typ is int and float(raw).is_integer() else typ(raw)
        except ValueError:
            raise ValueError(f"{key} must be {typ.__name__}, got {raw!r}") from None
    return raw


def parse_value(raw: str, typ: Any, key: str) -> Any:
    """Parse a command-line string for a config field of type ``typ``."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (tuple, list):
        inner = args[0] if args else str
        items = [s for s in raw.split(",") if s.strip()]
        parsed = [_parse_scalar(s.strip(), inner, key) for s in items]
        return tuple(parsed) if origin is tuple else parsed
    if origin is typing.Union:  # Optional[X]
        if raw.strip().lower() == "none":
            return None
        return parse_value(raw, next(a for a in args if a is not type(None)), key)
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"{key} must be one of {', '.join(map(str, args))}, got {raw!r}")
        return raw
    return _parse_scalar(raw, typ, key)


def coerce_value(raw: Any, typ: Any, key: str) -> Any:
    """Check an already-typed value (from a TOML/YAML config file, a JSON sidecar or Python)
    against the field type ``typ``: lists become tuples for tuple fields, an integral float is
    accepted for an int field, an int for a float field; anything else of the wrong type is a
    TypeError naming ``key``. Types other than bool/int/float/str/tuple/Optional/Literal pass
    through unchecked."""
    origin = typing.get_origin(typ)
    args = typing.get_args(typ)
    if origin in (tuple, list):
        if isinstance(raw, (str, bytes)) or not isinstance(raw, (list, tuple)):
            raise TypeError(f"{key} must be a list of {type_name(args[0]) if args else 'values'}, got {raw!r}")
        inner = args[0] if args else Any
        items = [coerce_value(v, inner, key) for v in raw]
        return tuple(items) if origin is tuple else items
    if origin is typing.Union:
        if raw is None and type(None) in args:
            return None
        return coerce_value(raw, next(a for a in args if a is not type(None)), key)
    if origin is typing.Literal:
        if raw not in args:
            raise ValueError(f"{key} must be one of {', '.join(map(str, args))}, got {raw!r}")
        return raw
    if typ is bool:
        if not isinstance(raw, bool):
            raise TypeError(f"{key} must be true or false, got {raw!r}")
        return raw
    if typ is int:
        if isinstance(raw, numbers.Integral) and not isinstance(raw, bool):
            return int(raw)
        if isinstance(raw, numbers.Real) and not isinstance(raw, bool) and math.isfinite(raw) and float(raw).is_integer():
            return int(float(raw))
        raise TypeError(f"{key} must be int, got {raw!r}")
    if typ is float:
        if isinstance(raw, numbers.Real) and not isinstance(raw, bool):
            return float(raw)
        raise TypeError(f"{key} must be float, got {raw!r}")
    if typ is str and not isinstance(raw, str):
        raise TypeError(f"{key} must be a string, got {raw!r}")
    return raw


def type_name(typ: Any) -> str:
    """``int``, ``tuple[float, ...]``, ``Literal['a', 'b']``: a field type as a user writes it."""
    if isinstance(typ, type) and not typing.get_args(typ):
        return typ.__name__
    return str(typ).replace("typing.", "")


def field_help(config_cls: type) -> dict[str, str]:
    """Help text per field of a config dataclass: ``metadata["help"]`` when given, else the
    ``# comment`` at the end of the field's line, else the full-line comments just above it.

    Read from the class's source with :mod:`tokenize` (comments are not kept at run time);
    when the source is not available (e.g. a frozen install) the fields have no help.
    """
    out = {f.name: str(f.metadata["help"]) for f in dataclasses.fields(config_cls) if "help" in f.metadata}
    try:
        source = textwrap.dedent(inspect.getsource(config_cls))
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, tokenize.TokenError, IndentationError):
        return out
    names = {f.name for f in dataclasses.fields(config_cls)}
    comments: dict[int, tuple[str, bool]] = {}   # line -> (text, alone on its line)
    starts: dict[str, tuple[int, int]] = {}       # field -> (first line, last line) of its statement
    code_lines: set[int] = set()
    first = -1                                    # index of the first token of the current logical line
    for i, tok in enumerate(tokens):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.string.lstrip("#").strip(), tok.start[0] not in code_lines)
        elif tok.type == tokenize.NEWLINE:
            if first >= 0 and tokens[first].string in names and tokens[first + 1].string == ":":
                starts.setdefault(tokens[first].string, (tokens[first].start[0], tok.start[0]))
            first = -1
        elif tok.type not in (tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER):
            code_lines.add(tok.start[0])
            if first < 0:
                first = i
    for name, (lo, hi) in starts.items():
        if name in out:
            continue
        trailing = [comments[ln][0] for ln in range(lo, hi + 1) if ln in comments and not comments[ln][1]]
        above: list[str] = []
        ln = lo - 1
        while ln in comments and comments[ln][1]:   # the comment block right above the field
            above.insert(0, comments[ln][0])
            ln -= 1
        text = " ".join(trailing or above)
        if text:
            out[name] = text
    return out


REGISTRY: dict[str, Experiment] = {}


def register(name: str, description: str, config_cls: type, presets: dict[str, dict[str, Any]], *,
             part: str = "foundation", headline: bool = False, claim: str = "",
             report: bool | tuple[str, ...] | None = None):
    """Decorator registering ``run(config, out_dir, progress) -> ExperimentOutput``.

    ``part`` groups experiments by paper (``truncation``, ``hodge``, ``retraining``,
    ``dae``, ``foundation``); the ``headline`` experiment of each part goes into
    ``modelcollapse report`` with its one-paragraph ``claim`` (a summary in words; the
    checked statements are the :class:`Claim` objects the run returns). ``report=True`` puts
    a further experiment of the part into the report, with its claims (default: only the
    headline; docs/claims.md, section "Reading the report"); a tuple of presets, e.g.
    ``report=("default", "paper")``, puts it in the reports of those presets only (one whose
    ``quick`` run would slow the quick report too much), and the others name it in their header.
    """
    missing = [p for p in PRESETS if p not in presets]
    if missing:
        raise ValueError(f"experiment {name} lacks presets {missing}")
    if isinstance(report, tuple):
        unknown = [p for p in report if p not in PRESETS]
        if unknown or not report:
            raise ValueError(f"report of {name} must be a bool or a non-empty tuple of presets "
                             f"({', '.join(PRESETS)}), got {report!r}")
        in_report, report_presets = True, tuple(p for p in PRESETS if p in report)
    elif report is None or isinstance(report, bool):
        in_report, report_presets = headline if report is None else report, PRESETS
    else:
        raise TypeError(f"report of {name} must be a bool or a tuple of presets, got {report!r}")

    def deco(fn: Callable[[Any, Path, bool], ExperimentOutput]):
        REGISTRY[name] = Experiment(name, description, config_cls, presets, fn, part, headline, claim,
                                    in_report, report_presets)
        EXPERIMENT_MODULES[name] = fn.__module__   # whose code the run key hashes
        return fn

    return deco
