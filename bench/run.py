"""Benchmark harness: every compiled kernel against its numpy reference (and the library a
user would otherwise reach for), timed in the same run.

Usage::

    python bench/run.py [--quick] [--only AREA ...] [--repeat N]

Each ``bench/cases_<area>.py`` module defines ``cases(quick: bool) -> list[Case]``.
Results go to ``bench/results/local/<area>.json`` (git-ignored) and a table of medians and
ratios is printed; ``--out bench/results`` refreshes the committed record that
docs/benchmarks.md summarises. The peers (KDEpy, POT, torch, ...) come with
``pip install ".[bench]"``; a peer that is not installed is skipped with a note.
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
    "numpy", "torch", "scipy", ...) to a callable taking the setup's result. ``work`` is
    the number of work items (e.g. sample-steps) one call performs, ``unit`` their name,
    so that throughputs can be reported. ``baseline`` names the implementation the
    ratios are taken against. ``check`` (optional) receives ``{impl: output}`` and raises
    if the implementations disagree, so a fast but wrong kernel cannot win.
    """

    name: str
    setup: Callable[[], Any]
    impls: dict[str, Callable[[Any], Any]]
    work: float = 1.0
    unit: str = "calls"
    baseline: str = "numpy"
    check: Callable[[dict[str, Any]], None] | None = None
    params: dict[str, Any] = dataclasses.field(default_factory=dict)


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
        env["threads"] = modelcollapse.default_threads()
    except Exception as exc:  # pragma: no cover - reported, not fatal
        env["modelcollapse"] = f"unavailable: {exc}"
    try:
        import torch

        env["torch"] = torch.__version__
        env["torch_threads"] = torch.get_num_threads()
    except ImportError:
        env["torch"] = None
    return env


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
    header = f"{'case':<44} {'impl':<8} {'median [s]':>11} {'throughput':>16} {'speed-up':>9}"
    print(header)
    print("-" * len(header))
    for path in areas:
        area = path.stem[len("cases_"):]
        module = load_area(path)
        records = []
        for case in module.cases(args.quick):
            state = case.setup()
            outputs, medians = {}, {}
            skipped = []
            for impl, fn in case.impls.items():
                try:
                    times, out = time_impl(fn, state, repeat, min_time)
                except ImportError as exc:  # an optional peer: say so, keep going
                    skipped.append(impl)
                    print(f"{case.name:<44} {impl:<8} skipped: {exc.name or exc} is not installed "
                          "(pip install '.[bench]')")
                    continue
                outputs[impl] = out
                medians[impl] = statistics.median(times)
                records.append(
                    {
                        "case": case.name,
                        "impl": impl,
                        "params": case.params,
                        "times_s": times,
                        "median_s": medians[impl],
                        "work": case.work,
                        "unit": case.unit,
                        "throughput": case.work / medians[impl],
                    }
                )
            if case.check is not None and not skipped:
                case.check(outputs)
            base = medians.get(case.baseline)
            for rec in records[-len(outputs):] if outputs else []:
                rec["speedup_vs_" + case.baseline] = base / rec["median_s"] if base else None
                ratio = rec["speedup_vs_" + case.baseline]
                print(
                    f"{case.name:<44} {rec['impl']:<8} {rec['median_s']:>11.4g} "
                    f"{rec['throughput']:>11.3g} {case.unit[:4]:<4} "
                    f"{(f'{ratio:.1f}x' if ratio else '-'):>9}"
                )
            del state, outputs
        result = {"area": area, "quick": args.quick, "environment": env, "records": records,
                  "date": time.strftime("%Y-%m-%d %H:%M:%S")}
        (args.out / f"{area}{'_quick' if args.quick else ''}.json").write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
