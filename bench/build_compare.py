"""The shipped (portable, load-time clones) build against a native (-march=native) build, as data.

Usage: python bench/build_compare.py --native PATH/_core*.so [--shipped PATH] [--rounds N] [--out DIR]

Issue 16 asks for a deliberate choice between bit-identical portable results and speed. This
script measures the cost of the choice on the main kernels: normals, the DAE SGD step, the
reverse sampler (d = 2 and d = 64), the empirical score, the exact KDE and the Hermite moments,
each on one thread with the same inputs in both builds. The two extensions cannot live in one
process (both are ``modelcollapse._core``), so two worker processes, one per build, each load
their extension and time every kernel once per round when asked; the rounds alternate between
the builds (interleaved), times are each process's CPU time, and each kernel's number is the
median over the rounds. The workers also save one output of every kernel, so the JSON states
how far the two builds' results are apart (largest relative difference), next to the speed-up.

Build the native extension in a separate folder (docs/foundation.md, "Build"):
    cmake -S . -B build/native -G Ninja -DMODELCOLLAPSE_NATIVE=ON ... && cmake --build build/native
Writes bench/results/build_compare.json (``--out``); bench/goals.py reads it for the row
"portable vs vectorised builds".
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _kernels() -> dict[str, tuple[Any, float, str]]:
    """{name: (call returning an array, items per call, unit)}: one thread, fixed inputs."""
    import warnings

    import modelcollapse as mc
    from cases_dae import _target
    from cases_foundation import _mixture
    from cases_metrics import _data
    from modelcollapse import _core, dae
    from modelcollapse import hermite as hm
    from modelcollapse import metrics as M

    warnings.filterwarnings("ignore", category=mc.sampler.DiscretisationWarning)
    out: dict[str, tuple[Any, float, str]] = {
        "normals": (lambda: _core.normals(1, 0, 0, 1, 2**18, 0, 1), 2**18, "ns per normal")}
    tg = _target(1000)
    out["dae_d1000"] = (lambda: np.asarray(dae.train(tg, r=2, n_steps=1000, lr=0.2, threads=1, seed=1,
                                                     record_every=1000).w), 1000, "ns per step")
    steps = 20
    for d, N in ((2, 20_000), (64, 1_000)):
        gm = _mixture(8, d, "isotropic")
        out[f"reverse_em_d{d}"] = ((lambda g_, n_: lambda: mc.sample_reverse(g_, n_, steps=steps, seed=1,
                                                                           threads=1).samples)(gm, N),
                                   N * steps, "ns per sample-step")
    g2 = np.random.default_rng(5)
    X2, Y2 = g2.standard_normal((2000, 2)), g2.standard_normal((2000, 2))
    es = mc.EmpiricalScore(X2)
    out["empirical_score"] = (lambda: es.score(Y2, 0.1, threads=1), 2000 * 2000, "ns per pair")
    x = _data(5000, 2)
    grid = M.Grid.regular([-5.0] * 2, [6.0] * 2, 100)
    out["kde_exact_2d"] = (lambda: M.kde(x, grid, threads=1), 5000 * 100**2, "ns per pair")
    xs = np.random.default_rng(0).normal(size=(1_000_000, 1))
    out["hermite_1d_deg30"] = (lambda: hm.hermite_moments(xs, 30, threads=1).values, 1_000_000 * 31,
                               "ns per sample-moment")
    return out


def _worker(so: str) -> None:
    """Load the extension at ``so`` as modelcollapse._core, then serve: 'time' (one round,
    JSON times on stdout), 'save PATH' (one output per kernel, npz), 'quit'."""
    import importlib.machinery
    import importlib.util

    loader = importlib.machinery.ExtensionFileLoader("modelcollapse._core", so)
    spec = importlib.util.spec_from_file_location("modelcollapse._core", so, loader=loader)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["modelcollapse._core"] = mod
    loader.exec_module(mod)
    sys.path[:0] = [str(ROOT / "python"), str(HERE)]
    kernels = _kernels()
    for call, *_ in kernels.values():
        call()  # warm-up
    print(json.dumps({"ready": True, "isa": getattr(mod, "NORMALS_ISA", None)}), flush=True)
    for line in sys.stdin:
        cmd = line.split()
        if not cmd or cmd[0] == "quit":
            break
        if cmd[0] == "time":
            res = {}
            for name, (call, items, _unit) in kernels.items():
                t0 = time.process_time()
                call()
                res[name] = (time.process_time() - t0) / items * 1e9
            print(json.dumps(res), flush=True)
        elif cmd[0] == "save":
            np.savez(cmd[1], **{name: np.asarray(call(), dtype=float).ravel()
                                for name, (call, *_r) in kernels.items()})
            print(json.dumps({"saved": cmd[1]}), flush=True)


def _default_shipped() -> str:
    import modelcollapse._core as core  # noqa: PLC0415

    return core.__file__


def compare(shipped: str, native: str, rounds: int) -> dict[str, Any]:
    procs = {}
    env = dict(os.environ, PYTHONPATH=str(ROOT / "python"))
    for label, so in (("shipped", shipped), ("native", native)):
        p = subprocess.Popen([sys.executable, __file__, "--worker", so], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
        procs[label] = (p, json.loads(p.stdout.readline()))
    times: dict[str, dict[str, list[float]]] = {k: {} for k in procs}

    def ask(label: str, cmd: str) -> dict[str, Any]:
        p = procs[label][0]
        p.stdin.write(cmd + "\n")
        p.stdin.flush()
        return json.loads(p.stdout.readline())

    for r in range(rounds):
        order = ("shipped", "native") if r % 2 == 0 else ("native", "shipped")
        for label in order:
            for name, t in ask(label, "time").items():
                times[label].setdefault(name, []).append(t)
    with tempfile.TemporaryDirectory() as tmp:
        outs = {}
        for label in procs:
            path = os.path.join(tmp, f"{label}.npz")
            ask(label, f"save {path}")
            outs[label] = dict(np.load(path))
    for p, _ in procs.values():
        p.stdin.write("quit\n")
        p.stdin.close()
        p.wait(timeout=60)
    res = {}
    for name, vals in times["shipped"].items():
        nat = times["native"][name]
        ratios = [a / b for a, b in zip(vals, nat, strict=True)]  # paired by round
        a, b = outs["shipped"][name], outs["native"][name]
        scale = np.maximum(np.abs(a), 1.0)
        res[name] = {"shipped_ns": statistics.median(vals), "native_ns": statistics.median(nat),
                     "speedup_median": statistics.median(ratios), "speedup_min": min(ratios),
                     "speedup_max": max(ratios),
                     "max_rel_diff": float(np.max(np.abs(a - b) / scale)) if a.size else 0.0,
                     "bit_identical": bool(np.array_equal(a, b))}
    return {"isa": {k: v[1].get("isa") for k, v in procs.items()}, "kernels": res}


def main(argv: list[str] | None = None) -> int:
    if argv is None and len(sys.argv) > 2 and sys.argv[1] == "--worker":
        _worker(sys.argv[2])
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--native", required=True, help="the -march=native build's _core*.so")
    parser.add_argument("--shipped", default=None, help="the portable build's _core*.so (default: the imported one)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args(argv)
    shipped = args.shipped or _default_shipped()
    load0 = round(os.getloadavg()[0], 2)
    res = compare(shipped, args.native, args.rounds)
    load1 = round(os.getloadavg()[0], 2)
    cpu = ""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = set()
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split())
    except (OSError, StopIteration):
        pass
    data = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu": cpu, "cpu_count": os.cpu_count(),
            "avx512f": "avx512f" in flags, "rounds": args.rounds, "clock": "process CPU time, one thread",
            "load_average_at_start": load0, "load_average_at_end": load1, **res}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "build_compare.json").write_text(json.dumps(data, indent=1))
    for name, m in res["kernels"].items():
        print(f"{name:<18} shipped {m['shipped_ns']:9.4g}  native {m['native_ns']:9.4g}  "
              f"speed-up {m['speedup_median']:.2f}x ({m['speedup_min']:.2f}-{m['speedup_max']:.2f})  "
              f"max rel diff {m['max_rel_diff']:.2g}")
    print(f"load {load0} -> {load1}; wrote {args.out / 'build_compare.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
