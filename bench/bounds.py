"""Microbenchmarks of what bounds the kernels that miss a goal of issue 16, as data.

Usage: python bench/bounds.py [--out DIR] [--rounds N]

Each measurement splits a kernel's time into parts timed in the same process, all on one
thread: the normal generator alone (one stream), the public 1-D ``standard_normal`` and
numpy's generator; the reverse sampler with its own noise and with the same noise injected
(the difference is what drawing the noise costs inside it); the DAE SGD step. The parts are timed
interleaved (round r times every part once, in a fixed order) and each part's number is the
median over the rounds, so slow phases of a shared machine hit every part alike. Times are
the process's CPU time (``time.process_time``), which leaves out the time other jobs hold
the core; caches and memory bandwidth are still shared, so the *shares* (a part over the
whole) are what carries over to a quiet machine, the absolute nanoseconds are those of the
machine and load of the run. The JSON (``bounds.json``) keeps
the date, the load average before and after, the build (the generator the compiled core
uses) and, per measurement, median, min and max over the rounds.

bench/goals.py reads it to fill "what bounds it" in docs/benchmarks.md ("Where each kernel
stands against its goal"); ``python bench/summarize.py`` shows the date and load with it.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


def _parts() -> dict[str, tuple[Callable[[], Any], float, str, str]]:
    """{name: (call, items per call, unit, what)}: every part runs on one thread."""
    import modelcollapse as mc
    import modelcollapse.random as mc_random
    from cases_dae import _target
    from cases_foundation import _mixture
    from modelcollapse import _core, dae

    warnings.filterwarnings("ignore", category=mc.sampler.DiscretisationWarning)
    n = 2**18
    g = np.random.default_rng(1)
    out: dict[str, tuple[Callable[[], Any], float, str, str]] = {
        "normal": (lambda: _core.normals(1, 0, 0, 1, n, 0, 1), n, "ns per normal",
                   "one stream of standard normals, one thread (_core.normals)"),
        "standard_normal_1d": (lambda: mc_random.standard_normal(1, n, threads=1), n, "ns per normal",
                               "the public standard_normal(seed, n), 1-D shape, threads=1"),
        "numpy_normal": (lambda: g.standard_normal(n), n, "ns per normal",
                         "numpy default_rng().standard_normal(n) (ziggurat), the peer"),
    }
    steps = 20
    for d, N in ((2, 20_000), (64, 1_000)):
        gm = _mixture(8, d, "isotropic")
        noise = mc_random.sampler_noise(1, N, steps, d, threads=1)
        out[f"sampler_d{d}"] = ((lambda g_, n_: lambda: mc.sample_reverse(g_, n_, steps=steps, seed=1, threads=1))(gm, N),
                                N * steps, "ns per sample-step",
                                f"reverse Euler-Maruyama K=8 d={d}, {steps} steps, threads=1")
        # the same run with the step noise injected (read from memory, not drawn): the
        # difference is what drawing the noise costs inside the sampler
        out[f"sampler_d{d}_injected"] = (
            (lambda g_, n_, z_: lambda: mc.sample_reverse(g_, n_, steps=steps, seed=1, threads=1, noise=z_))(gm, N, noise),
            N * steps, "ns per sample-step", "the same with the step noise injected (sampler_noise), threads=1")
    for d, n_steps in ((1000, 1000), (10_000, 100)):
        tg = _target(d)
        out[f"dae_d{d}"] = ((lambda t_, s_: lambda: dae.train(t_, r=2, n_steps=s_, lr=0.2, threads=1, seed=1,
                                                               record_every=s_))(tg, n_steps),
                            n_steps, "ns per step", f"DAE SGD r=2 tanh d={d}, threads=1 (no helper)")
    # binned KDE, 1-D (the bench's "kde binned d=1 n=5000 grid=1000^1", on one thread): the
    # whole public call against the compiled kernel alone with the same arguments
    from cases_metrics import _data
    from modelcollapse import metrics as M
    from modelcollapse.metrics import _kde
    x = _data(5000, 1)
    grid = M.Grid.regular([x.min() - 3.0], [x.max() + 3.0], 1000)
    h = float(np.sqrt(M.kde_bandwidth(x)[0, 0]))
    w = np.full(len(x), 1.0 / len(x))
    H = _kde._bandwidth(x, h, 1.0, w, "samples")
    plan = M.binned_plan(H, grid, None)
    axes = [(float(a[0]), float(st), int(a.size), int(r), int(pd))
            for a, st, r, pd in zip(grid.axes, grid.steps, plan["refine"], plan["pad"], strict=True)]
    out["kde_binned_1d"] = (lambda: M.kde(x, grid, h, method="binned", tol=None, threads=1), 1, "ns per call",
                            "kde(method='binned', tol=None), n=5000, 1000-point 1-D grid, threads=1")
    out["kde_binned_1d_kernel"] = (lambda: _core.kde_binned(x, w, H, axes, plan["radius"], 1), 1, "ns per call",
                                   "the compiled kernel of that call alone (_core.kde_binned, same arguments)")
    try:
        from KDEpy import FFTKDE

        out["kdepy_1d"] = (lambda: FFTKDE(kernel="gaussian", bw=h).fit(x).evaluate(grid.axes[0]), 1, "ns per call",
                           "KDEpy FFTKDE on the same samples, bandwidth and grid (the peer)")
    except ImportError:  # an optional peer: the share below needs only the project's parts
        pass
    return out


def source_commit() -> str | None:
    """The git commit of the checkout the imported modelcollapse comes from (None outside a
    checkout): the build both bench/run.py and this script measured."""
    import modelcollapse as mc

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(mc.__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10)
    except OSError:
        return None
    return out.stdout.strip() or None


def _build() -> dict[str, Any]:
    import modelcollapse as mc
    from modelcollapse import _core

    gen = "ARS-7" if hasattr(_core, "ars_block") else "Philox4x32-10" if hasattr(_core, "philox4x32_10") else "?"
    return {"modelcollapse": mc.__version__, "generator": gen, "commit": source_commit()}


def measure(rounds: int) -> dict[str, Any]:
    """Time every part ``rounds`` times, interleaved; median, min, max per part."""
    parts = _parts()
    for call, *_ in parts.values():
        call()  # warm-up: page faults, thread pools, lazy imports
    times: dict[str, list[float]] = {k: [] for k in parts}
    for _ in range(rounds):
        for name, (call, *_rest) in parts.items():
            # CPU time of this process, not wall time: every part runs on one thread, and on a
            # shared machine the wall clock also counts the time other jobs hold the core
            t0 = time.process_time()
            call()
            times[name].append(time.process_time() - t0)
    res = {}
    per: dict[str, list[float]] = {}
    for name, (_call, items, unit, what) in parts.items():
        per[name] = [t / items * 1e9 for t in times[name]]
        res[name] = {"median": statistics.median(per[name]), "min": min(per[name]), "max": max(per[name]),
                     "unit": unit, "what": what}
    # shares from the parts of the same round (paired), median over the rounds
    shares = {f"sampler_d{d}_noise_share": ([(a - b) / a for a, b in zip(per[f"sampler_d{d}"],
                                                                        per[f"sampler_d{d}_injected"])],
                                            f"share of the sampler's time (d={d}) that drawing the noise takes")
              for d in (2, 64)}
    for d in (1000, 10_000):
        shares[f"dae_d{d}_normal_share"] = ([2 * d * z / s_ for z, s_ in zip(per["normal"], per[f"dae_d{d}"])],
                                            f"2d normals (`normal`) over the one-thread DAE step, d={d}")
    shares["kde_binned_1d_python_share"] = (
        [(a - b) / a for a, b in zip(per["kde_binned_1d"], per["kde_binned_1d_kernel"])],
        "share of kde(method='binned') 1-D spent outside the compiled kernel (checks, plan, Python)")
    for name, (vals, what) in shares.items():
        res[name] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals), "unit": "share",
                     "what": what}
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "results" / "local",
                        help="folder for bounds.json (default bench/results/local; bench/results: the record)")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args(argv)
    load0 = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    res = measure(args.rounds)
    load1 = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    data = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "cpu_count": os.cpu_count(), "rounds": args.rounds,
            "clock": "process CPU time",
            "load_average_at_start": load0, "load_average_at_end": load1, "build": _build(), "measurements": res}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "bounds.json").write_text(json.dumps(data, indent=1))
    for name, m in res.items():
        print(f"{name:<24} {m['median']:>10.4g} {m['unit']:<20} (min {m['min']:.4g}, max {m['max']:.4g})")
    print(f"load average {load0} -> {load1}; wrote {args.out / 'bounds.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
