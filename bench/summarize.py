"""Write docs/benchmarks.md from bench/results/*.json (the numbers of the last runs).

Usage: python bench/summarize.py [--results DIR] [--out FILE]

Per area: a headline table (per case, the project, its best float64 and float32 peers and
the project's ratio to each, the estimated limit and the project's % of it), then every
implementation timed (skipped peers with the reason). Before the areas, "Where each kernel
stands against its goal": issue 16's goals read from the same JSON (bench/goals.py), with
what bounds each missed goal (bench/bounds.py's microbenchmarks in ``bounds.json``). A full run (``<area>.json``) is
preferred over a quick one (``<area>_quick.json``) of the same area. The limits' derivation
(bench/limits.md) and the import/build times (bench/startup.md) are appended.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "docs" / "benchmarks.md"


def _fmt_s(x: float) -> str:
    return f"{x:.3g}" if x >= 1e-3 else f"{x * 1e3:.3g} ms"


def _load(results: Path) -> list[dict[str, Any]]:
    by_area: dict[str, dict[str, Any]] = {}
    for path in sorted(results.glob("*.json")):
        if path.name in ("bounds.json", "build_compare.json"):  # microbenchmarks, not bench areas
            continue
        data = json.loads(path.read_text())
        area = data["area"]
        if area in by_area and not by_area[area].get("quick") and data.get("quick"):
            continue  # a full run wins over a quick one
        by_area[area] = data
    return [by_area[a] for a in sorted(by_area)]


def case_summary(recs: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline numbers of one case from its records (one per implementation)."""
    ran = [r for r in recs if "skipped" not in r]
    # records of runs before kinds were stored: cpp* is the project, numpy the reference twin
    kind = {r["impl"]: r.get("kind", "project" if r["impl"].startswith("cpp") else
                             "ref" if r["impl"] == "numpy" else "f64") for r in ran}
    projects = [r for r in ran if kind[r["impl"]] == "project"]
    # the rated implementation (Case.project), else "cpp", else the first project variant
    proj = next((r for r in projects if r.get("rated")), None) or next(
        (r for r in projects if r["impl"] == "cpp"), projects[0] if projects else None)
    out: dict[str, Any] = {"project": proj}
    for dt in ("f64", "f32"):
        peers = [r for r in ran if kind[r["impl"]] == dt]
        best = min(peers, key=lambda r: r["median_s"]) if peers else None
        out[f"best_{dt}"] = best
        out[f"ratio_{dt}"] = best["median_s"] / proj["median_s"] if best and proj else None
    limit = proj.get("limit") if proj else None
    out["limit"] = limit
    out["pct_limit"] = 100.0 * proj["throughput"] / limit if proj and limit else None
    return out


def area_lines(data: dict[str, Any]) -> list[str]:
    env = data["environment"]
    vers = ", ".join(f"{k} {env[k]}" for k in ("numpy", "scipy", "jax", "torch", "KDEpy", "POT") if env.get(k))
    # the heading is the area alone, so that links to it (docs/foundation.md, ...) survive a rerun
    lines = [f"## {data['area']}", "",
             f"{'Quick sizes (`--quick`), ' if data.get('quick') else ''}"
             f"{data.get('date', '?')}; {env.get('cpu_count')} cores, load average {env.get('load_average_at_start', '?')} "
             f"at the start; {vers}.", ""]
    load, cores = env.get("load_average_at_start"), env.get("cpu_count") or 1
    if isinstance(load, (int, float)) and load > 1.5 * cores:
        lines += [f"**Load average {load} on {cores} cores: other jobs shared the CPUs during this run. The "
                  "ratios are indicative only and every throughput (so the % of the limit) is understated; "
                  "rerun on a quiet machine.**", ""]
    cases: dict[str, list[dict[str, Any]]] = {}
    for rec in data["records"]:
        cases.setdefault(rec["case"], []).append(rec)
    lines += ["| case | project [s] | project throughput | best f64 peer [s] | project vs it | "
              "best f32 peer [s] | project vs it | limit | project % of limit |",
              "|---|---|---|---|---|---|---|---|---|"]
    for name, recs in cases.items():
        s = case_summary(recs)
        p = s["project"]
        if p is None:
            continue

        def peer(dt: str, s: dict[str, Any] = s) -> tuple[str, str]:
            b = s[f"best_{dt}"]
            if b is None:
                return "-", "-"
            return f"{b['impl']} {_fmt_s(b['median_s'])}", f"{s[f'ratio_{dt}']:.2f}x"

        (b64, r64), (b32, r32) = peer("f64"), peer("f32")
        lim = f"{s['limit']:.3g} {p['unit']}/s" if s["limit"] else "-"
        pct = "-" if s["pct_limit"] is None else (f"{s['pct_limit']:.0f}%" if s["pct_limit"] >= 10
                                                    else f"{s['pct_limit']:.2g}%")
        lines.append(f"| {name} | {p['impl']} {_fmt_s(p['median_s'])} | {p['throughput']:.3g} {p['unit']}/s | "
                     f"{b64} | {r64} | {b32} | {r32} | {lim} | {pct} |")
    lines += ["", "<details><summary>every implementation</summary>", "",
              "| case | implementation | kind | median [s] | throughput | project's speed-up over it |",
              "|---|---|---|---|---|---|"]
    for name, recs in cases.items():
        proj = case_summary(recs)["project"]
        for r in recs:
            kind = r.get("kind", "?")
            if "skipped" in r:
                lines.append(f"| {name} | {r['impl']} | {kind} | skipped: {r['skipped']} | | |")
                continue
            sp = f"{r['median_s'] / proj['median_s']:.2f}x" if proj else "-"
            lines.append(f"| {name} | {r['impl']} | {kind} | {r['median_s']:.4g} | "
                         f"{r['throughput']:.3g} {r['unit']}/s | {sp} |")
    lines += ["", "</details>", ""]
    return lines


def goal_lines(areas: list[dict[str, Any]], bounds: dict[str, Any] | None,
               builds: dict[str, Any] | None = None) -> list[str]:
    """The section "Where each kernel stands against its goal": bench/goals.py's rows."""
    import goals

    lines = ["## Where each kernel stands against its goal", "",
             "The goals of issue 16, read from the runs below (one row per goal and case; a case without a",
             "peer of the kind is not listed). For a goal not met, \"what bounds it\" names the measurement",
             "that shows what limits the kernel (bench/goals.py): the same run, or the microbenchmarks of",
             "`bench/bounds.py`, or \"not explained\" where no measurement splits the time yet. A run on a",
             "shared machine (load above 1.5× the cores) is marked: its ratios and rates are indicative."]
    if bounds:
        b = bounds.get("build", {})
        lines += ["", f"Microbenchmarks (`python bench/bounds.py`): {bounds.get('date', '?')}, load average "
                  f"{bounds.get('load_average_at_start', '?')} → {bounds.get('load_average_at_end', '?')} on "
                  f"{bounds.get('cpu_count', '?')} cores, {b.get('generator', '?')} build {b.get('commit') or ''}, "
                  f"one thread, {bounds.get('rounds', '?')} interleaved rounds, medians. On a shared machine their "
                  "nanoseconds are inflated; the shares (a part over the whole) are what carries over."]
        runs = sorted({a["environment"].get("commit") for a in areas} - {None})
        if b.get("commit") and runs and runs != [b["commit"]]:
            lines += ["", f"**The microbenchmarks ran on build {b['commit']}, the runs on {', '.join(runs)}: "
                      "rerun both (`bench/run.py`, `bench/bounds.py`) on one build before reading the bounds.**"]
    lines += ["", "| goal | case | measured | run | met | what bounds it |", "|---|---|---|---|---|---|"]
    for r in goals.evaluate(areas, bounds, builds):
        met = "not judged" if r.met is None else "met" if r.met else "**not met**"
        lines.append(f"| {r.goal} | {r.case} | {r.measured} | {r.run} | {met} | {r.bound} |")
    return lines + [""]


def float32_lines(areas: list[dict[str, Any]]) -> list[str]:
    """Why the project offers no float32 path, from the runs: its float64 kernels against the
    best float32 peers, and what float32 buys the peers' own code (bench/goals.py, float32 rows)."""
    import goals

    f32 = goals.float32_summary(areas)
    ratios, gains, behind = f32["ratios"], f32["gains"], f32["behind"]
    if not ratios:
        return []
    text = (f"**No float32 path.** Issue 16 asks for one where it pays. In these runs the float64 kernels are "
            f"{min(ratios):.2f}× to {max(ratios):.2f}× the best float32 peer on the {len(ratios)} workloads timed in "
            f"both precisions ({len(ratios) - len(behind)} of them ahead), while float32 speeds the peers' own "
            f"code up by {min(gains):.2f}× to {max(gains):.2f}×, median {sorted(gains)[len(gains) // 2]:.2f}× "
            "(the same JAX, torch or numpy code in both precisions, same run): about the 2× that twice the lanes "
            "per vector allow (section \"Limits\"), more only where a peer's float64 path is itself slow. A "
            "float32 path would therefore buy at most about that factor, "
            "at a relative precision of ~6e-8 instead of ~1e-16 (the bench accepts float32 peers within 2e-4 to "
            "5e-2 of the float64 result: at t = 0.01 the empirical score's logits lose digits), for kernels "
            "already ahead; so none is offered")
    text += (f", except that it would pay on {', '.join(behind)} (behind a float32 peer)." if behind else ".")
    return [text, ""]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    lines = ["# Benchmarks", "",
             "Generated by `python bench/summarize.py` from `bench/results/*.json`, written by",
             "`python bench/run.py --out bench/results [--quick] [--only AREA]`. Every ratio compares",
             "implementations timed in the same run on the same machine (medians of repeated calls,",
             "after a warm-up call that also compiles the JAX and torch.compile peers). The compiled",
             "kernels use all cores (`threads=0`) unless named `_1thread`; numpy, scipy, JAX and torch",
             "run as they do by default.", "",
             "Kinds: *project* (this package; the headline rates `cpp`), *f64* / *f32* peers (what a",
             "user would pick instead: numpy's own generator and the best-vectorised numpy, JAX jit +",
             "lax.scan, torch, a plain C++ loop, scipy, KDEpy, POT; bench/peers.py), *ref* (the",
             "package's numpy twins: checks, not peers). \"project vs it\" is the peer's time over the",
             "project's (above 1: the project is faster). The limit is the estimated hardware limit of",
             "the work on the reference machine (section \"Limits\"); the % is the project's throughput",
             "over it. A peer that is not installed or fails on the machine is listed as skipped.", ""]
    areas = _load(args.results)
    bounds_path = args.results / "bounds.json"
    bounds = json.loads(bounds_path.read_text()) if bounds_path.exists() else None
    builds_path = args.results / "build_compare.json"  # bench/build_compare.py
    builds = json.loads(builds_path.read_text()) if builds_path.exists() else None
    lines += float32_lines(areas)
    lines += goal_lines(areas, bounds, builds)
    for data in areas:
        lines += area_lines(data)
    for extra in ("limits.md", "startup.md"):
        path = HERE / extra
        if path.exists():
            lines += [path.read_text(encoding="utf-8").rstrip(), ""]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
