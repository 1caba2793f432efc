"""Command-line interface: ``modelcollapse info | list | show NAME | run NAME | report | claims DIR | sweep NAME``.

Every preset option defaults to ``quick`` (seconds to a minute); errors are one line on
stderr with exit code 2, ``--debug`` shows the traceback (docs/cli.md).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_PRESET = "quick"   # one rule for run, show, report and sweep (docs/cli.md, section "Presets")
PRESET_HELP = f"size of the run: quick (seconds to a minute), default (minutes), paper (hours); default {DEFAULT_PRESET}"
# Optional extras named in one-line errors when their import fails: module -> extra.
_EXTRAS = {"torch": "torch", "distributed": "dask", "dask": "dask"}


def _preset_note(preset: str) -> str:
    return f"preset {preset}, the default; --preset default for the full-size run" if preset == DEFAULT_PRESET \
        else f"preset {preset}"


class _RunHelp(argparse.Action):
    """``run NAME --help``: the options, then NAME's settings (as ``show NAME``)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        parser.print_help()
        name = getattr(namespace, "name", None)
        if name:
            print()
            try:
                _cmd_show(argparse.Namespace(name=name, preset=getattr(namespace, "preset", DEFAULT_PRESET)))
            except ValueError as exc:
                print(f"modelcollapse: error: {exc}", file=sys.stderr)
                parser.exit(2)
        parser.exit()


class CLIError(Exception):
    """An error the user can fix from the command line: printed as one line, exit code 2."""


def _cmd_info(args: argparse.Namespace) -> int:
    from . import default_threads
    from .results import versions

    for key, value in versions().items():
        print(f"{key:>14}: {value if value is not None else '-'}")
    print(f"{'backend':>14}: cpp (compiled modelcollapse._core), numpy reference available")
    print(f"{'threads':>14}: {default_threads()} (threads=0 uses all of them)")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from .experiments import load_all

    for name, exp in sorted(load_all().items()):
        print(f"{name:<24} {exp.description}  [presets: {', '.join(exp.presets)}]")
    return 0


def _parse_overrides(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise ValueError(f"--set expects key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out[key.strip()] = value.strip()
    return out


def _cmd_show(args: argparse.Namespace) -> int:
    from .experiments import get

    exp = get(args.name)
    rows = exp.describe(args.preset)
    print(f"{exp.name}: {exp.description}")
    print(f"presets: {', '.join(exp.presets)}; value: with --preset {args.preset}; field default: where it differs")
    table = [("key", "type", f"value ({args.preset})", "field default", "help")]
    table += [(r["key"], r["type"], _fmt(r["value"]), "" if _fmt(r["value"]) == _fmt(r["default"]) else _fmt(r["default"]),
               r["help"]) for r in rows]   # default column: only where the preset changes it
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print(("  " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row[:4], widths)) + "  " + row[4]).rstrip())
    print(f"override with --set KEY=VALUE (tuples as a,b,c) or --config FILE; "
          f"e.g. modelcollapse run {exp.name} --preset {args.preset} --set {rows[0]['key']}={_fmt(rows[0]['value'])}")
    return 0


def _fmt(value: Any) -> str:
    """A value as it is written after --set (tuples as a,b,c)."""
    if isinstance(value, (tuple, list)):
        return ",".join(_fmt(v) for v in value)
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _read_config_file(path: str) -> dict[str, Any]:
    """The flat ``key = value`` table of a TOML (``.toml``) or YAML (``.yaml``/``.yml``) file."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".toml":
        try:   # tomllib from Python 3.11; tomli (a dependency on 3.10) has the same API
            tomllib = importlib.import_module("tomllib" if sys.version_info >= (3, 11) else "tomli")
        except ImportError:
            raise CLIError('reading TOML on Python 3.10 needs tomli: pip install "tomli>=2"') from None
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise CLIError(f"--config {path}: not valid TOML ({exc})") from None
    elif suffix in (".yaml", ".yml"):
        try:
            yaml = importlib.import_module("yaml")   # optional: PyYAML is not a dependency
        except ImportError:
            raise CLIError('--config: YAML files need PyYAML (pip install pyyaml); or write the file as TOML') from None
        try:
            data = yaml.safe_load(p.read_text(encoding="utf-8"))   # safe_load: data only, no Python objects
        except yaml.YAMLError as exc:
            raise CLIError(f"--config {path}: not valid YAML ({' '.join(str(exc).split())})") from None
    else:
        raise CLIError(f"--config {path}: give a .toml, .yaml or .yml file")
    if data is None:
        return {}
    if not isinstance(data, dict) or any(isinstance(v, dict) for v in data.values()):
        raise CLIError(f"--config {path}: expected a flat table of key = value (the keys of `modelcollapse show NAME`)")
    return data


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {out} is a file, not a folder: give a folder (it is created if missing)")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise CLIError(f"--out {out}: {parent} is a file, not a folder: give a folder path")


def _check_device(config: Any) -> None:
    """Fail before running when the config asks for a device this torch cannot use."""
    device = getattr(config, "device", None)
    if not isinstance(device, str) or device in ("auto", "cpu"):
        return
    from ._optional import torch_device

    try:
        torch_device(device, argument="--set device")
    except (ValueError, TypeError) as exc:
        raise CLIError(str(exc)) from None


def _cmd_run(args: argparse.Namespace) -> int:
    from .experiments import get

    sidecar: dict[str, Any] | None = None
    if args.rerun:
        sidecar = _read_sidecar(args.rerun)
        if args.name is not None and args.name != sidecar["name"]:
            raise CLIError(f"--from {args.rerun} holds experiment {sidecar['name']!r}, not {args.name!r}: "
                           f"drop the name")
        args.name = sidecar["name"]
    if args.name is None:
        raise CLIError("give an experiment NAME (see `modelcollapse list`) or --from SIDECAR.json")
    exp = get(args.name)
    # Precedence: preset < sidecar or config file < --set; make_config validates every key and type.
    overrides: dict[str, Any] = {}
    if sidecar is not None:
        overrides.update(sidecar["config"])
    if args.config:
        overrides.update(_read_config_file(args.config))
    overrides.update(_parse_overrides(args.set or []))
    config = exp.make_config(args.preset, overrides)
    _check_device(config)
    if args.out:
        out = Path(args.out)
    else:
        out = Path("results") / (f"{args.name}-rerun" if sidecar is not None else args.name)
    _check_out(out)
    progress = not args.quiet and sys.stderr.isatty()
    if sidecar is not None:
        print(f"running {exp.name} with the config saved in {args.rerun} -> {out}")
        _print_version_drift(sidecar)
    else:
        print(f"running {exp.name} ({_preset_note(args.preset)}) -> {out}")
    from .experiments._units import UnitCache

    units = UnitCache(out, exp.name, config)
    if units.not_reused():
        print(f"{units.not_reused()} finished units in {units.folder.parent} are of another configuration or "
              "code version: not reused")
    if units.finished():
        print(f"resuming: {units.finished()} finished units in {units.folder}")
    try:
        result = exp.run(config, out, progress=progress)
    except KeyboardInterrupt:
        print(f"modelcollapse: interrupted; {units.finished()} finished units are saved in {units.folder}: "
              "rerun the same command to resume", file=sys.stderr)
        return 130
    if result.units.get("reused") or result.units.get("computed"):
        print(f"units:  {result.units['reused']} reused, {result.units['computed']} computed ({units.folder})")
    for fig in result.figures:
        print(f"figure: {fig}")
    print(f"table:  {out / (exp.name + '.parquet')} ({len(result.table)} rows)")
    from .experiments.report import summary_text

    for line in summary_text(result.summary):  # tables, rounded (docs/cli.md); the sidecar has full precision
        print(line)
    _print_claims(result.claims)
    return 0


def _read_sidecar(path: str) -> dict[str, Any]:
    """The experiment name and config of a results sidecar (strict JSON, data only)."""
    from .results import load_sidecar

    try:
        data = load_sidecar(path)
    except ValueError as exc:   # json.JSONDecodeError
        raise CLIError(f"--from {path}: not a JSON sidecar ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or not isinstance(data.get("config"), dict):
        raise CLIError(f"--from {path}: not a results sidecar (needs \"name\" and \"config\"; "
                       f"give the NAME.json that `modelcollapse run` wrote)")
    return data


def _print_version_drift(sidecar: dict[str, Any]) -> None:
    from .results import versions

    saved = sidecar.get("versions") or {}
    now = versions()
    drift = [f"{k} {saved[k]} -> {now.get(k)}" for k in sorted(saved) if saved.get(k) != now.get(k)]
    if drift:
        print(f"note: versions differ from the saved run ({'; '.join(drift)}): numbers may differ")


def _print_claims(claims: list) -> None:
    """One line per claim, verdict first, then the verdict counts (docs/claims.md)."""
    from .experiments._claims import format_claim, verdict_counts

    if not claims:
        print("claims: none declared")
        return
    print(f"claims ({', '.join(f'{n} {v}' for v, n in verdict_counts(claims).items())}):")
    for c in claims:
        print(f"  {format_claim(c)}")


def _cmd_claims(args: argparse.Namespace) -> int:
    from .experiments._claims import load_claims

    found = load_claims(args.path)
    if not found:
        print(f"no claims under {args.path}")
        return 1 if args.strict else 0
    everything = []
    for path, claims in found.items():
        print(f"{path}:")
        _print_claims(claims)
        everything += claims
    if args.strict and any(c.verdict == "fails" for c in everything):
        print("modelcollapse: error: some claims fail", file=sys.stderr)
        return 1
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .experiments.report import build_report

    progress = not args.quiet and sys.stderr.isatty()
    _check_out(Path(args.out))
    print(f"report ({_preset_note(args.preset)}) -> {args.out}")
    res = build_report(args.preset, args.out, progress=progress)
    failed = [s["experiment"] for s in res["sections"] if s["error"]]
    for s in res["sections"]:
        verdicts = [c["verdict"] for c in s["claims"]]
        counts = ", ".join(f"{verdicts.count(v)} {v}" for v in ("holds", "fails", "underpowered") if v in verdicts)
        print(f"{s['part']:<12} {s['experiment']:<24} {'FAILED' if s['error'] else 'ok'} ({s['seconds']:.1f} s)"
              f"  claims: {counts or 'none'}")
    c = res["counts"]
    print(f"claims: {c['holds']} hold, {c['fails']} fail, {c['underpowered']} underpowered")
    for item in res["left_out"]:   # e.g. D4 at quick: say so here too, not only in the report's header
        print(f"not in this report: {item['experiment']} ({item['part']}); `{item['report']}` includes it, "
              f"`{item['run']}` runs it alone")
    print(f"report: {res['html']} and {res['markdown']}")
    if failed:
        print(f"modelcollapse: error: experiments failed: {', '.join(failed)} (see the report)", file=sys.stderr)
        return 1
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .experiments.sweep import parse_grid, run_sweep, scheduler_security

    out = Path(args.out) if args.out else Path("results") / f"sweep-{args.name}"
    _check_out(out)
    print(f"sweep {args.name} ({_preset_note(args.preset)}) -> {out}")
    security = scheduler_security(args.tls_ca_file, args.tls_cert, args.tls_key)
    try:
        run_sweep(args.name, args.preset, parse_grid(args.grid), args.seeds, out, scheduler=args.scheduler,
                  jobs=args.jobs, security=security, connect_timeout=args.connect_timeout)
    except KeyboardInterrupt:
        print("modelcollapse: interrupted; finished cells are saved: rerun the same command to resume",
              file=sys.stderr)
        return 130
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ._version import version

    parser = argparse.ArgumentParser(prog="modelcollapse", description="Simulate, measure and explain model collapse. "
                                     f"Every --preset defaults to {DEFAULT_PRESET}.")
    parser.add_argument("--version", action="version", version=f"modelcollapse {version}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    # --debug is also accepted after the command; SUPPRESS keeps it from resetting the value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, backend and threads", parents=[common]).set_defaults(func=_cmd_info)
    sub.add_parser("list", help="registered experiments", parents=[common]).set_defaults(func=_cmd_list)
    show = sub.add_parser("show", parents=[common],
                          help="an experiment's settings: keys, types, defaults, the preset's values, help")
    show.add_argument("name", help="experiment name (see `modelcollapse list`)")
    show.add_argument("--preset", default=DEFAULT_PRESET, choices=["quick", "default", "paper"], help=PRESET_HELP)
    show.set_defaults(func=_cmd_show)
    run = sub.add_parser("run", help="run a registered experiment", parents=[common], add_help=False,
                         description="Run an experiment. Settings: preset < --config FILE (or --from SIDECAR) < --set; "
                                     "`modelcollapse show NAME` (or `run NAME --help`) lists them.")
    run.add_argument("-h", "--help", action=_RunHelp, help="show this help and NAME's settings, then exit")
    run.add_argument("name", nargs="?", default=None, help="experiment name (see `modelcollapse list`); "
                     "optional with --from")
    run.add_argument("--preset", default=DEFAULT_PRESET, choices=["quick", "default", "paper"], help=PRESET_HELP)
    run.add_argument("--config", default=None, metavar="FILE",
                     help="settings file: TOML (.toml), or YAML (.yaml/.yml, needs PyYAML), flat key = value")
    run.add_argument("--from", dest="rerun", default=None, metavar="SIDECAR",
                     help="re-run the experiment and config saved in a results sidecar (results/NAME/NAME.json); "
                          "default --out results/NAME-rerun")
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    run.add_argument("--out", default=None, help="output folder (default results/NAME)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_cmd_run)
    rep = sub.add_parser("report", parents=[common],
                         help="run every part's report experiments and write an HTML + Markdown report "
                              "of their claims, figures and numbers")
    rep.add_argument("--preset", default=DEFAULT_PRESET, choices=["quick", "default", "paper"], help=PRESET_HELP)
    rep.add_argument("--out", default="results/report", help="output folder (default results/report)")
    rep.add_argument("--quiet", action="store_true", help="no progress bars")
    rep.set_defaults(func=_cmd_report)
    cl = sub.add_parser("claims", help="print the claims saved in a results folder (nothing is run)", parents=[common])
    cl.add_argument("path", help="a results folder (searched recursively), a *_claims.parquet or a JSON sidecar")
    cl.add_argument("--strict", action="store_true", help="exit 1 when a claim fails (or none is found)")
    cl.set_defaults(func=_cmd_claims)
    sw = sub.add_parser("sweep", help="run an experiment over a parameter grid and seeds, merged into one table",
                        parents=[common])
    sw.add_argument("name", help="experiment name (see `modelcollapse list`)")
    sw.add_argument("--preset", default=DEFAULT_PRESET, choices=["quick", "default", "paper"], help=PRESET_HELP)
    sw.add_argument("--grid", action="append", metavar="KEY=V1,V2", help="a grid axis (repeatable)")
    sw.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per grid point")
    sw.add_argument("--jobs", type=int, default=-1, help="local worker processes (-1 = all cores)")
    sw.add_argument("--scheduler", default=None,
                    help="'local' for a Dask LocalCluster of --jobs workers, or a Dask scheduler address "
                         "(needs modelcollapse[dask]); only one you trust: tls://HOST:PORT with --tls-* across a network")
    sw.add_argument("--tls-ca-file", default=None, help="CA certificate for a tls:// scheduler")
    sw.add_argument("--tls-cert", default=None, help="client certificate for a tls:// scheduler")
    sw.add_argument("--tls-key", default=None, help="client private key (if not inside --tls-cert)")
    sw.add_argument("--connect-timeout", type=float, default=10.0,
                    help="seconds to wait for the scheduler (default 10)")
    sw.add_argument("--out", default=None, help="output folder (default results/sweep-NAME)")
    sw.set_defaults(func=_cmd_sweep)
    return parser


def _one_line(exc: BaseException) -> str:
    """The error as one line that says what to do."""
    if isinstance(exc, ImportError) and not isinstance(exc, ModuleNotFoundError) and "pip install" in str(exc):
        msg = str(exc)
    elif isinstance(exc, ImportError):
        top = (exc.name or "").split(".")[0]
        extra = _EXTRAS.get(top)
        msg = (f"this needs {top}, which is not installed: pip install \".[{extra}]\" (or \"modelcollapse[{extra}]\")"
               if extra else f"missing module {exc.name or exc}: {exc}")
    elif isinstance(exc, OSError) and exc.filename is not None:
        msg = f"{exc.strerror or exc}: {exc.filename}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(msg.split())


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:   # output piped into e.g. `head`, which closed it: not an error
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps Python's exit-time flush quiet
        return 0
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        if args.debug:
            raise
        print(f"modelcollapse: error: {_one_line(exc)} (--debug shows the traceback)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("modelcollapse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
