"""Benchmark harness: every compiled kernel against its numpy reference (and the library a
user would otherwise reach for), timed in the same run.

Usage::

    python bench/run.py [--quick] [--only AREA ...] [--repeat N]

Each ``bench/cases_<area>.py`` module defines ``cases(quick: bool) -> list[Case]``.
Results go to ``bench/results/local/<area>.json`` (git-ignored) and a table of medians and
ratios is printed; ``--out bench/results`` refreshes the committed record that
docs/benchmarks.md summarises (``python bench/summarize.py``). The peers (JAX, KDEpy,
POT, ...) come with ``pip install ".[bench]"`` (torch with ``".[torch]"``); a peer that is
not installed, or fails on this machine (torch.compile without a compiler, the plain C++
DAE loop without g++), is skipped with a note, recorded in the JSON.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


@dataclasses.dataclass
class Case:
    """One benchmark: several implementations of the same computation.

    ``setup()`` builds the inputs once; ``impls`` maps an implementation name ("cpp",
    "numpy", "jax f32", "torch.compile f32", ...) to a callable taking the setup's result.
    ``work`` is the number of work items (e.g. sample-steps) one call performs, ``unit``
    their name, so that throughputs can be reported. ``baseline`` names the implementation
    the historical speed-up column is taken against. ``check`` (optional) receives
    ``{impl: output}`` for the implementations that ran and raises if they disagree, so a
    fast but wrong kernel cannot win.

    Kinds (``kind_of``): ``project`` is the implementation the summary rates (default
    "cpp"; other names starting with "cpp" are project variants); names in ``refs`` are
    references that are no peer (the package's numpy twins, the RNG alone); every other
    implementation is a peer, float32 when its name contains "f32", float64 otherwise.
    "numpy" is a reference by default (the package's numpy twin): a case whose "numpy" is
    the best numpy a user would write says ``refs=()``.
    ``limit`` is the estimated limit of this work on the reference machine in ``unit``/s
    (bench/limits.py), from which the summary computes the project's % of it.
    """

    name: str
    setup: Callable[[], Any]
    impls: dict[str, Callable[[Any], Any]]
    work: float = 1.0
    unit: str = "calls"
    baseline: str = "numpy"
    check: Callable[[dict[str, Any]], None] | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    limit: float | None = None
    project: str = "cpp"
    refs: tuple[str, ...] = ("numpy",)

    def kind_of(self, impl: str) -> str:
        if impl == self.project or impl.startswith("cpp"):
            return "project"
        if impl in self.refs:
            return "ref"
        return "f32" if "f32" in impl else "f64"


def time_impl(fn: Callable[[Any], Any], state: Any, repeat: int, min_time: float) -> tuple[list[float], Any]:
    out = fn(state)  # warm-up (and the output for the cross-check)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn(state)
        times.append(time.perf_counter() - t0)
    return times, out


def load_area(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(HERE))
    spec.loader.exec_module(module)
    return module


def environment() -> dict[str, Any]:
    import numpy

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "numpy": numpy.__version__,
    }
    try:
        import modelcollapse

        env["modelcollapse"] = modelcollapse.__version__
        from bounds import source_commit

        env["commit"] = source_commit()  # bench/goals.py checks bounds.json came from the same build
        env["threads"] = modelcollapse.default_threads()
    except Exception as exc:  # pragma: no cover - reported, not fatal
        env["modelcollapse"] = f"unavailable: {exc}"
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        env["torch"] = None
    from importlib import metadata

    for pkg in ("jax", "scipy", "KDEpy", "POT"):
        try:
            env[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            env[pkg] = None
    if hasattr(os, "getloadavg"):
        env["load_average_at_start"] = round(os.getloadavg()[0], 2)
    return env


def _why(exc: Exception) -> str:
    if isinstance(exc, ImportError) and exc.name and "not installed" not in str(exc) and "compiler" not in str(exc):
        return f"{exc.name} is not installed"
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:160] if text else ''}"


def _check_peers(case: Case, outputs: dict[str, Any]) -> dict[str, str]:
    """Run ``case.check``; when it fails, find the peers it fails on (each checked with the
    project and reference implementations alone) and return {peer: reason}. The project
    failing raises: a fast but wrong kernel must stop the run."""
    if case.check is None:
        return {}
    try:
        case.check(outputs)
        return {}
    except AssertionError:
        pass
    core = {k: v for k, v in outputs.items() if case.kind_of(k) in ("project", "ref") or k == case.baseline}
    case.check(core)  # raises if the project disagrees with its references
    bad = {}
    for k, v in outputs.items():
        if k in core:
            continue
        try:
            case.check({**core, k: v})
        except AssertionError as exc:
            bad[k] = "disagrees with the project: " + str(exc).strip().splitlines()[0][:160]
    return bad


def run_case(case: Case, repeat: int, min_time: float) -> list[dict[str, Any]]:
    """Time every implementation of ``case``; records in the order of ``case.impls``. A peer
    that raises (not installed, fails on this machine) or disagrees with the project is
    recorded as skipped with the reason; the project raising stops the run."""
    state = case.setup()
    outputs: dict[str, Any] = {}
    by_impl: dict[str, dict[str, Any]] = {}
    for impl, fn in case.impls.items():
        kind = case.kind_of(impl)
        try:
            times, out = time_impl(fn, state, repeat, min_time)
        except Exception as exc:  # a peer that is not installed or fails here: say so, keep going
            if kind == "project":
                raise
            by_impl[impl] = {"case": case.name, "impl": impl, "kind": kind, "params": case.params, "skipped": _why(exc)}
            continue
        outputs[impl] = out
        med = statistics.median(times)
        by_impl[impl] = {"case": case.name, "impl": impl, "kind": kind, "rated": impl == case.project,
                         "params": case.params, "times_s": times,
                         "median_s": med, "work": case.work, "unit": case.unit, "throughput": case.work / med,
                         "limit": case.limit}
    for impl, why in _check_peers(case, outputs).items():
        by_impl[impl] = {k: v for k, v in by_impl[impl].items() if k in ("case", "impl", "kind", "params")}
        by_impl[impl]["skipped"] = why
    records = [by_impl[k] for k in case.impls]
    base = by_impl.get(case.baseline, {}).get("median_s")
    for rec in records:
        if "skipped" in rec:
            print(f"{case.name:<44} {rec['impl']:<16} skipped: {rec['skipped']}")
            continue
        ratio = rec["speedup_vs_" + case.baseline] = base / rec["median_s"] if base else None
        print(f"{case.name:<44} {rec['impl']:<16} {rec['median_s']:>11.4g} {rec['throughput']:>11.3g} "
              f"{case.unit[:4]:<4} {(f'{ratio:.1f}x' if ratio else '-'):>9}")
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, few repeats (seconds)")
    parser.add_argument("--only", nargs="*", default=None, help="areas to run (default: all)")
    parser.add_argument("--repeat", type=int, default=None, help="timed repeats per implementation")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "local",
                        help="folder for the JSON results (default bench/results/local, git-ignored; "
                             "--out bench/results refreshes the committed record)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (2 if args.quick else 5)
    min_time = 0.0 if args.quick else 1.0
    args.out.mkdir(parents=True, exist_ok=True)

    areas = sorted(HERE.glob("cases_*.py"))
    if args.only:
        areas = [p for p in areas if p.stem[len("cases_"):] in args.only]
    env = environment()
    header = f"{'case':<44} {'impl':<16} {'median [s]':>11} {'throughput':>16} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    for path in areas:
        area = path.stem[len("cases_"):]
        module = load_area(path)
        records: list[dict[str, Any]] = []
        for case in module.cases(args.quick):
            records += run_case(case, repeat, min_time)
        result = {"area": area, "quick": args.quick, "environment": env, "records": records,
                  "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        (args.out / f"{area}{'_quick' if args.quick else ''}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
