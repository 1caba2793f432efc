"""Command-line interface: ``modelcollapse info | list | run NAME``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


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


def _cmd_run(args: argparse.Namespace) -> int:
    from .experiments import get

    exp = get(args.name)
    config = exp.make_config(args.preset, _parse_overrides(args.set or []))
    out = Path(args.out) if args.out else Path("results") / args.name
    progress = not args.quiet and sys.stderr.isatty()
    print(f"running {exp.name} (preset {args.preset}) -> {out}")
    result = exp.run(config, out, progress=progress)
    for fig in result.figures:
        print(f"figure: {fig}")
    print(f"table:  {out / (exp.name + '.parquet')} ({len(result.table)} rows)")
    for key, value in result.summary.items():
        print(f"{key}: {value}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from .experiments.report import build_report

    progress = not args.quiet and sys.stderr.isatty()
    res = build_report(args.preset, args.out, progress=progress)
    failed = [s["experiment"] for s in res["sections"] if s["error"]]
    for s in res["sections"]:
        print(f"{s['part']:<12} {s['experiment']:<24} {'FAILED' if s['error'] else 'ok'} ({s['seconds']:.1f} s)")
    print(f"report: {res['html']} and {res['markdown']}")
    if failed:
        print(f"modelcollapse: error: experiments failed: {', '.join(failed)} (see the report)", file=sys.stderr)
        return 1
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from .experiments.sweep import parse_grid, run_sweep, scheduler_security

    out = Path(args.out) if args.out else Path("results") / f"sweep-{args.name}"
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
    parser = argparse.ArgumentParser(prog="modelcollapse", description="Simulate, measure and explain model collapse.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="versions, backend and threads").set_defaults(func=_cmd_info)
    sub.add_parser("list", help="registered experiments").set_defaults(func=_cmd_list)
    run = sub.add_parser("run", help="run a registered experiment")
    run.add_argument("name", help="experiment name (see `modelcollapse list`)")
    run.add_argument("--preset", default="default", choices=["quick", "default", "paper"])
    run.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config value (repeatable)")
    run.add_argument("--out", default=None, help="output folder (default results/NAME)")
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.set_defaults(func=_cmd_run)
    rep = sub.add_parser("report", help="run every part's headline experiment and write an HTML + Markdown report")
    rep.add_argument("--preset", default="quick", choices=["quick", "default", "paper"])
    rep.add_argument("--out", default="results/report", help="output folder (default results/report)")
    rep.add_argument("--quiet", action="store_true", help="no progress bars")
    rep.set_defaults(func=_cmd_report)
    sw = sub.add_parser("sweep", help="run an experiment over a parameter grid and seeds, merged into one table")
    sw.add_argument("name", help="experiment name (see `modelcollapse list`)")
    sw.add_argument("--preset", default="quick", choices=["quick", "default", "paper"])
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


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"modelcollapse: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("modelcollapse: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
