"""Microbenchmarks of what bounds the kernels that miss a goal of issue 16, as data.

Usage: python bench/bounds.py [--out DIR] [--rounds N]

Each measurement splits a kernel's time into parts timed in the same process, all on one
thread: the normal generator alone (one stream), the public 1-D ``standard_normal`` and
numpy's generator; the reverse sampler with its own noise and with the same noise injected
(reading the injected noise from memory costs nearly as much as drawing it, so that difference
understates the noise), and its compiled step split by leaving out the score, the noise or the
update, or all three (a benchmark hook, ``_core._sampler_parts``); the DAE SGD step; the binned and
exact KDE, the Hermite moments and the empirical score, each as the public call against its
compiled kernel alone (the share outside it: checks, set-up, Python), the exact KDE's grid
kernel (no exp) against the points kernel on the same pairs (one exp each), and the empirical
score at t = 1.0 against t = 0.01 and against its logpdf (no weighted sum); and, in C++
(bench/score_parts.cpp, built here with the extension's flags, needs g++ and Eigen), the
sampler's mixture-score kernel and the empirical score's pass each against copies with one piece
left out (the mixture kernel also against its previous version), the exponential streamed alone,
ymm multiply-adds alone and interleaved with additions (the throughput each pass's instruction
mix can reach) and a dependent add chain (the core's clock, so that times convert to cycles
against the limit's lane-ops, 8 a cycle). The parts are timed
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
        # the split of a step (the compiled call alone, same init and seed): the whole step, then
        # the same loop with one part left out through the benchmark hook _core._sampler_parts
        # (mask: 1 score, 2 noise, 4 update), and with all three left out (what remains: the
        # smoothing per step, the chunks' workspaces, transposes and the loop itself)
        times = mc.sampler.time_grid(1.0, 0.01, steps)
        y0 = _core.normals(1, _core.PURPOSE_INIT_NORMAL, 0, N, d, 0, 1)
        for suffix, mask, what in (("core", 7, "the compiled time loop alone (given init), all parts"),
                                   ("no_score", 6, "the same without the score (s = 0)"),
                                   ("no_noise", 5, "the same without drawing the noise (xi = 0)"),
                                   ("no_update", 3, "the same without the update (y stays at init)"),
                                   ("bare", 0, "the same with none of the three: the loop's bookkeeping")):
            out[f"sampler_d{d}_{suffix}"] = (
                (lambda c_, t_, y_, m_: lambda: _core._sampler_parts(c_, t_, 1, y_, m_, 1))(gm._core(), times, y0, mask),
                N * steps, "ns per sample-step", f"{what}, K=8 d={d} N={N}, {steps} steps, threads=1")
    for d, n_steps in ((1000, 1000), (10_000, 100)):
        tg = _target(d)
        out[f"dae_d{d}"] = ((lambda t_, s_: lambda: dae.train(t_, r=2, n_steps=s_, lr=0.2, threads=1, seed=1,
                                                               record_every=s_))(tg, n_steps),
                            n_steps, "ns per step", f"DAE SGD r=2 tanh d={d}, threads=1 (no helper)")
    # binned KDE (the bench's "kde binned d=1 n=5000 grid=1000^1" and "d=2 n=5000 grid=100^2",
    # on one thread): the whole public call against the compiled kernel alone, same arguments
    from cases_metrics import _data
    from modelcollapse import metrics as M
    from modelcollapse.metrics import _kde
    from modelcollapse.truncation import _hermite_basis as _basis
    try:
        from KDEpy import FFTKDE
    except ImportError:  # an optional peer: the shares below need only the project's parts
        FFTKDE = None
    for d, m_axis in ((1, 1000), (2, 100)):
        x = _data(5000, d)
        grid = M.Grid.regular([x.min() - 3.0] * d, [x.max() + 3.0] * d, m_axis)
        h = float(np.sqrt(np.min(np.diag(M.kde_bandwidth(x)))))
        w = np.full(len(x), 1.0 / len(x))
        H = _kde._bandwidth(x, h, 1.0, w, "samples")
        plan = M.binned_plan(H, grid, None)
        axes = [(float(a[0]), float(st), int(a.size), int(r), int(pd))
                for a, st, r, pd in zip(grid.axes, grid.steps, plan["refine"], plan["pad"], strict=True)]
        out[f"kde_binned_{d}d"] = ((lambda x_, g_, h_: lambda: M.kde(x_, g_, h_, method="binned", tol=None,
                                                                      threads=1))(x, grid, h), 1, "ns per call",
                                   f"kde(method='binned', tol=None), n=5000, {m_axis}^{d} grid, threads=1")
        out[f"kde_binned_{d}d_kernel"] = (
            (lambda x_, w_, H_, a_, r_: lambda: _core.kde_binned(x_, w_, H_, a_, r_, 1))(x, w, H, axes, plan["radius"]),
            1, "ns per call", "the compiled kernel of that call alone (_core.kde_binned, same arguments)")
        if FFTKDE is not None:
            at = grid.axes[0] if d == 1 else grid.points()
            out[f"kdepy_{d}d"] = ((lambda x_, h_, at_: lambda: FFTKDE(kernel="gaussian", bw=h_).fit(x_).evaluate(at_))
                                  (x, h, at), 1, "ns per call",
                                  "KDEpy FFTKDE on the same samples, bandwidth and grid (the peer)")
    # exact KDE on a regular grid (the bench's "kde exact" cases at n = 5000): the public call,
    # its compiled grid kernel (exponential-free recurrences) and the compiled points kernel on
    # the same pairs (one exp per pair)
    for d, n_s, m_axis in ((1, 5000, 1000), (2, 5000, 100)):
        x = _data(n_s, d)
        grid = M.Grid.regular([-5.0] * d, [6.0] * d, m_axis)
        w = np.full(n_s, 1.0 / n_s)
        H = _kde._bandwidth(x, "scott", 1.0, w, "samples")
        gaxes = _kde._exact_grid_axes(grid, H)
        pts = grid.points()
        pairs = n_s * m_axis ** d
        out[f"kde_exact_{d}d"] = ((lambda x_, g_: lambda: M.kde(x_, g_, threads=1))(x, grid), pairs, "ns per pair",
                                  f"kde(x, grid) exact, n={n_s}, {m_axis}^{d} grid, threads=1")
        out[f"kde_exact_{d}d_kernel"] = ((lambda x_, w_, H_, a_: lambda: _core.kde_exact_grid(x_, w_, H_, a_, 1))
                                         (x, w, H, gaxes), pairs, "ns per pair",
                                         "its compiled grid kernel alone (_core.kde_exact_grid, recurrences)")
        out[f"kde_exact_{d}d_points"] = ((lambda x_, w_, H_, p_: lambda: _core.kde_exact(x_, w_, H_, p_, 1))
                                         (x, w, H, pts), pairs, "ns per pair",
                                         "the same pairs through the points kernel (_core.kde_exact, one exp a pair)")
    # the 2-D exact grid KDE with a diagonal bandwidth (Scott's variances, no covariance): the
    # separable kernel (a matrix product of per-axis factors, one multiply-add a pair) against
    # the recurrence kernel on the same kernel (an H whose off-diagonal entry is 1e-300 takes
    # the recurrences; the densities agree to 5e-14), n = 5000, 100^2 grid, paired per round
    x = _data(5000, 2)
    grid = M.Grid.regular([-5.0] * 2, [6.0] * 2, 100)
    w = np.full(5000, 1.0 / 5000)
    Hd = np.diag(np.diag(_kde._bandwidth(x, "scott", 1.0, w, "samples")))
    Hr = Hd.copy()
    Hr[0, 1] = Hr[1, 0] = 1e-300
    gaxes = _kde._exact_grid_axes(grid, Hd)
    out["kde_exact_2d_diag"] = ((lambda x_, g_, H_: lambda: M.kde(x_, g_, H_, threads=1))(x, grid, Hd), 5000 * 10**4,
                                "ns per pair", "kde(x, grid, diagonal H) exact, n=5000, 100^2 grid, threads=1")
    out["kde_exact_2d_diag_kernel"] = (
        (lambda x_, w_, H_, a_: lambda: _core.kde_exact_grid(x_, w_, H_, a_, 1))(x, w, Hd, gaxes), 5000 * 10**4,
        "ns per pair", "its compiled kernel alone (separable: factors and a register-blocked matrix product)")
    out["kde_exact_2d_diag_recurrence"] = (
        (lambda x_, w_, H_, a_: lambda: _core.kde_exact_grid(x_, w_, H_, a_, 1))(x, w, Hr, gaxes), 5000 * 10**4,
        "ns per pair", "the recurrence kernel on the same kernel (off-diagonal 1e-300), one thread")
    # the exact grid kernel's time split into a cost per sample (window, restarts with exact
    # exponentials) and a cost per pair (the recurrence and the accumulator's load and store):
    # the same 5e6 pairs on grids of m points (1-D) or 100 x m1 points (2-D), a kernel wide
    # enough that every pair is kept; 1-D m = 2000 and 16000 (16 KiB and 128 KiB of
    # accumulator: L1 and L2) give the per-pair cost in and out of L1
    gx = np.random.default_rng(2).normal(size=(40_000, 2))
    for m in (250, 2000, 16000):
        n_m = 5_000_000 // m
        x1, w1 = np.ascontiguousarray(gx[:n_m, :1]), np.full(n_m, 1.0 / n_m)
        out[f"kde_grid_1d_m{m}"] = ((lambda x_, w_, a_: lambda: _core.kde_exact_grid(x_, w_, np.eye(1), a_, 1))
                                    (x1, w1, [(-5.0, 11.0 / (m - 1), m)]), n_m * m, "ns per pair",
                                    f"exact grid kernel 1-D, {m} points, n={n_m}, sigma=1 (every pair kept)")
    for m1 in (25, 400):
        n_m = 5_000_000 // (100 * m1)
        x2, w2 = np.ascontiguousarray(gx[:n_m]), np.full(n_m, 1.0 / n_m)
        out[f"kde_grid_2d_m{m1}"] = ((lambda x_, w_, a_: lambda: _core.kde_exact_grid(x_, w_, np.eye(2), a_, 1))
                                     (x2, w2, [(-5.0, 11.0 / 99, 100), (-5.0, 11.0 / (m1 - 1), m1)]), n_m * 100 * m1,
                                     "ns per pair", f"exact grid kernel 2-D, 100 x {m1} points, n={n_m}, H = I")
    # Hermite moments (the bench's hermite_1d_deg30 and hermite_2d_deg10, 1e6 samples): the
    # public call against the compiled kernel alone with the same index table
    from modelcollapse import hermite as hm
    for d, deg in ((1, 30), (2, 10)):
        xs = np.random.default_rng(0).normal(size=(1_000_000, d))
        parent, dim, order = _basis.index_table(_basis.multi_indices(d, deg))
        work = 1_000_000 * len(parent)
        out[f"hermite_{d}d"] = ((lambda x_, k_: lambda: hm.hermite_moments(x_, k_, threads=1))(xs, deg), work,
                                "ns per sample-moment", f"hermite_moments(x, {deg}), 1e6 samples, d={d}, threads=1")
        out[f"hermite_{d}d_kernel"] = ((lambda x_, p_, d_, o_: lambda: _core.hermite_moments(x_, p_, d_, o_, False, 1))
                                       (xs, parent, dim, order), work, "ns per sample-moment",
                                       "its compiled kernel alone (_core.hermite_moments, same index table)")
        if d == 2:  # with the squares' means (std_errors=True): the tiles sum w and w^2 together
            out["hermite_2d_kernel_squares"] = (
                (lambda x_, p_, d_, o_: lambda: _core.hermite_moments(x_, p_, d_, o_, True, 1))(xs, parent, dim, order),
                work, "ns per sample-moment", "the 2-D kernel with the squares' means (standard errors)")
    # the same number of moments (66) through the fused 1-D kernel (degree 65, values kept in
    # registers) that the 2-D case runs through the fused d-D kernel (values written to a
    # block's rows, then register-tiled sums): ns a sample-moment, kernel against kernel
    xs1 = np.random.default_rng(0).normal(size=(1_000_000, 1))
    parent, dim, order = _basis.index_table(_basis.multi_indices(1, 65))
    out["hermite_1d_deg65_kernel"] = ((lambda x_, p_, d_, o_: lambda: _core.hermite_moments(x_, p_, d_, o_, False, 1))
                                      (xs1, parent, dim, order), 1_000_000 * 66, "ns per sample-moment",
                                      "fused 1-D kernel, degree 65 (66 moments, as 2-D degree 10), 1e6 samples")
    # empirical score n = m = 2000, d = 2 (the bench's case has 1e4: 25x the pairs): t = 1.0
    # (missed) against t = 0.01 (met) and against logpdf (the same pairs without the weighted
    # sum of samples), and the public call against the compiled object's
    g2 = np.random.default_rng(5)
    X2, Y2 = g2.standard_normal((2000, 2)), g2.standard_normal((2000, 2))
    es = mc.EmpiricalScore(X2)
    core = es._core()
    for name, call, what in (
            ("emp_score_t1", lambda: es.score(Y2, 1.0, threads=1), "EmpiricalScore.score, t=1.0, threads=1"),
            ("emp_score_t1_kernel", lambda: core.score(Y2, 1.0, 1), "its compiled call alone (EmpiricalScoreCore)"),
            ("emp_score_t001", lambda: es.score(Y2, 0.01, threads=1), "the same at t=0.01"),
            ("emp_logpdf_t1", lambda: es.logpdf(Y2, 1.0, threads=1), "EmpiricalScore.logpdf, t=1.0, threads=1")):
        out[name] = (call, 2000 * 2000, "ns per pair", what + ", n=m=2000 d=2")
    out.update(_normal_split_parts())
    out.update(_score_kernel_parts())
    out.update(_hermite_thread_parts())
    out.update(_normals_kernel_parts())
    return out


SCORE_PARTS_SRC = HERE / "score_parts.cpp"
# the mixture-score variants of bench/score_parts.cpp (its enum Variant) and the calls per part
SCORE_VARIANTS = ("shipped", "copy", "noexp", "logits", "noscore", "previous")
SCORE_REPS = {2: 2000, 64: 100}
# d -> mixture_previous_max_rel(d), filled when the C++ parts are built (_score_kernel_parts)
PREVIOUS_MAX_REL: dict[int, float] = {}


def _compile_score_parts() -> Any:
    """Build and load bench/score_parts.cpp (``_compile_exe``, with Eigen from cmeel); None without
    g++ or Eigen."""
    import ctypes

    try:
        prefix = subprocess.run([sys.executable, "-m", "cmeel", "cmake"], capture_output=True, text=True,
                                timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        prefix = ""
    eigen = Path(prefix) / "include" / "eigen3"
    if not prefix or not eigen.is_dir():
        return None
    lib = _compile_exe(SCORE_PARTS_SRC, [f"-isystem{eigen}"], shared=True)
    if lib is None:
        return None
    dll = ctypes.CDLL(str(lib))
    dll.mc_mixture_score.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long]
    dll.mc_empirical_score.argtypes = [ctypes.c_double, ctypes.c_int]
    dll.mc_add_chain.argtypes = [ctypes.c_long]
    dll.mc_exp_stream.argtypes = [ctypes.c_long]
    dll.mc_fp_peak.argtypes = [ctypes.c_int, ctypes.c_long]
    dll.mc_mixture_last_score.argtypes = [ctypes.c_int]
    dll.mc_mixture_last_score.restype = ctypes.POINTER(ctypes.c_double)
    for f in (dll.mc_mixture_score, dll.mc_empirical_score, dll.mc_add_chain, dll.mc_exp_stream, dll.mc_fp_peak):
        f.restype = None
    return dll


def _score_kernel_parts() -> dict[str, tuple[Callable[[], Any], float, str, str]]:
    """The score kernels split in C++ (bench/score_parts.cpp, one thread): the sampler's mixture
    score on one chunk of 64 points (K = 8, isotropic, d = 2 and 64) as shipped and as a copy
    with one piece left out, and the previous kernel; the empirical score's d = 2 pass (n = m =
    2000, t = 1.0 and 0.1), shipped, copied, and copied without the exponential; the exponential
    streamed alone; ymm multiply-adds alone and paired with additions; and a dependent add chain
    (one add a cycle: the core's clock)."""
    dll = _compile_score_parts()
    if dll is None:
        return {}
    out: dict[str, tuple[Callable[[], Any], float, str, str]] = {}
    what = {"shipped": "the shipped kernel (mixture_eval_batch)", "copy": "its copy in bench/score_parts.cpp",
            "noexp": "the copy without the exponential's polynomial", "logits": "the copy's logits pass alone",
            "noscore": "the copy without the score pass (logits and weights)",
            "previous": "the kernel before this version (logits 2 components x 2 coordinates, score with x - mu)"}
    for d, reps in SCORE_REPS.items():
        rel = mixture_previous_max_rel(d)
        if rel is not None:
            PREVIOUS_MAX_REL[d] = rel
        for v, name in enumerate(SCORE_VARIANTS):
            out[f"mix_d{d}_{name}"] = ((lambda d_, v_, r_: lambda: dll.mc_mixture_score(d_, v_, r_))(d, v, reps),
                                       reps * 64, "ns per point", f"{what[name]}, K=8 isotropic d={d}, 64 points")
    for t, tag in ((1.0, "t1"), (0.1, "t01")):
        for v, name in enumerate(("shipped", "copy", "noexp")):
            out[f"emp_c_{tag}_{name}"] = ((lambda t_, v_: lambda: dll.mc_empirical_score(t_, v_))(t, v),
                                          2000 * 2000, "ns per pair",
                                          f"empirical score d=2 n=m=2000 t={t}: " + ("the shipped kernel", "its copy",
                                                                                   "the copy without the exp")[v])
    out["exp_stream"] = (lambda: dll.mc_exp_stream(400), 400 * 512, "ns per exponential",
                         "exp2_weight4 over 512 independent arguments, nothing else")
    out["add_chain"] = (lambda: dll.mc_add_chain(500_000), 2_000_000, "ns per add",
                        "a chain of dependent integer adds: one a cycle, so 1 / this is the core's clock in GHz")
    out["fp_fma"] = (lambda: dll.mc_fp_peak(0, 250_000), 2_000_000, "ns per multiply-add",
                     "8 independent ymm multiply-adds a round: the core's multiply-add throughput")
    out["fp_pair"] = (lambda: dll.mc_fp_peak(1, 250_000), 1_500_000, "ns per pair",
                      "6 ymm multiply-adds and 6 additions interleaved: a (multiply-add, add) pair's throughput")
    return out


def mixture_previous_max_rel(d: int) -> float | None:
    """Largest relative difference, over the 64 x d scores of the bench chunk, between the shipped
    mixture-score kernel and the previous one (bench/score_parts.cpp, variant `previous`)."""
    import numpy as np

    dll = _compile_score_parts()
    if dll is None:
        return None
    out = []
    for v in (SCORE_VARIANTS.index("shipped"), SCORE_VARIANTS.index("previous")):
        dll.mc_mixture_score(d, v, 1)
        out.append(np.ctypeslib.as_array(dll.mc_mixture_last_score(d), (64 * d,)).copy())
    return float(np.max(np.abs(out[0] - out[1]) / np.abs(out[1])))


def score_kernel_shares(per: dict[str, list[float]]) -> dict[str, tuple[list[float], str]]:
    """Paired per round: the core's clock, each mixture-score piece's share of the copy, the
    copy against the shipped kernel, the previous kernel against the shipped one, each pass in
    cycles, the ymm multiply-add and (multiply-add, add) throughputs; the empirical pass's
    exponential share; cycles per item at the clock of the same round."""
    if "add_chain" not in per:
        return {}
    ghz = [1.0 / a for a in per["add_chain"]]
    out = {"core_clock_ghz": (ghz, "the core's clock (GHz) from a dependent add chain, per round")}
    for d in SCORE_REPS:
        p = {k: per[f"mix_d{d}_{k}"] for k in SCORE_VARIANTS}
        out[f"mix_d{d}_copy_over_shipped"] = ([c / s for c, s in zip(p["copy"], p["shipped"])],
                                              f"the copy's time over the shipped kernel's (d={d}): 1 if faithful")
        out[f"mix_d{d}_exp_share"] = ([(c - e) / c for c, e in zip(p["copy"], p["noexp"])],
                                      f"share of the mixture score (d={d}) that the exponentials' polynomial takes")
        out[f"mix_d{d}_logit_share"] = ([lg / c for lg, c in zip(p["logits"], p["copy"])],
                                        f"share that the logits pass (and their maximum) takes (d={d})")
        out[f"mix_d{d}_score_pass_share"] = ([(c - n) / c for c, n in zip(p["copy"], p["noscore"])],
                                             f"share that the score pass takes (d={d})")
        out[f"mix_d{d}_previous_over_shipped"] = ([g / c for g, c in zip(p["previous"], p["shipped"])],
                                                  f"the previous kernel's time over the shipped one's (d={d})")
        out[f"mix_d{d}_logit_cycles"] = ([lg * f for lg, f in zip(p["logits"], ghz)],
                                         f"cycles a point of the logits pass (and maximum) alone (d={d})")
        out[f"mix_d{d}_score_pass_cycles"] = ([(c - n) * f for c, n, f in zip(p["copy"], p["noscore"], ghz)],
                                              f"cycles a point the score pass adds to the copy (d={d})")
        rel = PREVIOUS_MAX_REL.get(d)
        if rel is not None:
            out[f"mix_d{d}_vs_previous_max_rel"] = ([rel] * len(ghz), f"largest relative difference of the shipped "
                                                   f"kernel's scores from the previous kernel's (d={d}, 64 points)")
        out[f"mix_d{d}_cycles"] = ([s * f for s, f in zip(p["shipped"], ghz)],
                                   f"cycles a point of the shipped kernel at the round's clock (d={d})")
    for tag in ("t1", "t01"):
        c, e = per[f"emp_c_{tag}_copy"], per[f"emp_c_{tag}_noexp"]
        out[f"emp_c_{tag}_exp_share"] = ([(a - b) / a for a, b in zip(c, e)],
                                         f"share of the empirical pass ({tag}) that the exponential takes")
        out[f"emp_c_{tag}_copy_over_shipped"] = ([a / b for a, b in zip(c, per[f"emp_c_{tag}_shipped"])],
                                                 f"the copy's time over the shipped kernel's ({tag})")
        out[f"emp_c_{tag}_cycles"] = ([s * f for s, f in zip(per[f"emp_c_{tag}_shipped"], ghz)],
                                      f"cycles a pair of the shipped empirical kernel at the round's clock ({tag})")
    out["exp_stream_cycles"] = ([s * f for s, f in zip(per["exp_stream"], ghz)],
                                "cycles an exponential (one lane) streamed alone, at the round's clock")
    if "fp_fma" in per:
        out["fp_fma_cycles"] = ([s * f for s, f in zip(per["fp_fma"], ghz)],
                                "cycles a ymm multiply-add at full throughput (8 independent chains)")
        out["fp_pair_cycles"] = ([s * f for s, f in zip(per["fp_pair"], ghz)],
                                 "cycles a (ymm multiply-add, ymm add) pair at full throughput")
    return out


def _normal_split_parts() -> dict[str, tuple[Callable[[], Any], float, str, str]]:
    """The public 1-D standard_normal(seed, 1e7) against the same numbers drawn into a buffer
    that already exists (no page faults) and against one piece of 2^15 numbers whose output
    stays in cache (the kernel alone); and the transform at each instruction-set level the CPU
    has (0 baseline, 3 x86-64-v3, 4 x86-64-v4), one cached piece each."""
    import modelcollapse.random as mc_random
    from modelcollapse import _core

    big, piece, reps = 10**7, 2**15, 32  # reps: a cached piece takes ~0.1 ms, too short to time once
    buf, small = np.empty(big), np.empty(piece)

    def pieces(isa: int) -> Callable[[], None]:
        def call() -> None:
            for _ in range(reps):
                _core.normals(1, 0, 0, 1, piece, 0, 1, isa=isa, out=small)
        return call

    out: dict[str, tuple[Callable[[], Any], float, str, str]] = {
        "normal_1e7_fresh": (lambda: mc_random.standard_normal(1, big, threads=1), big, "ns per normal",
                             "standard_normal(seed, 1e7), threads=1: a new 80 MB array (page faults)"),
        "normal_1e7_into": (lambda: mc_random.standard_normal(1, big, threads=1, out=buf), big, "ns per normal",
                            "the same numbers into an existing array (out=): no page faults"),
        "normal_piece": (pieces(-1), reps * piece, "ns per normal",
                         "one piece of 2^15 numbers into a cached buffer, 32 times: the kernel alone"),
    }
    for isa in (0, 3, 4):
        if isa <= getattr(_core, "NORMALS_ISA_AVAILABLE", 0):
            out[f"normal_isa{isa}"] = (pieces(isa), reps * piece, "ns per normal",
                                       f"the kernel alone with the transform at level {isa} "
                                       "(0 baseline, 3 x86-64-v3, 4 x86-64-v4)")
    return out


def _hermite_thread_parts() -> dict[str, tuple[Callable[[], Any], float, str, str]]:
    """The fused 1-D Hermite kernel (the bench's hermite_1d_deg30, 1e6 samples) on two threads:
    the one part here that is not one thread. Its process CPU time (both threads) against
    ``hermite_1d_kernel`` (one thread, same call) says whether two threads add work (contention
    for cache lines, waits): a ratio near 1 leaves the wall-clock scaling to the second core's
    availability (docs/truncation.md, "Performance")."""
    from modelcollapse import _core
    from modelcollapse.truncation import _hermite_basis as _basis

    xs = np.random.default_rng(0).normal(size=(1_000_000, 1))
    parent, dim, order = _basis.index_table(_basis.multi_indices(1, 30))
    return {"hermite_1d_kernel_2threads": (
        (lambda x_, p_, d_, o_: lambda: _core.hermite_moments(x_, p_, d_, o_, False, 2))(xs, parent, dim, order),
        1_000_000 * 31, "ns per sample-moment",
        "the compiled 1-D kernel on two threads: process CPU time of both (not wall clock)")}


def hermite_thread_shares(per: dict[str, list[float]]) -> dict[str, tuple[list[float], str]]:
    """Paired per round: the two-thread 1-D Hermite kernel's CPU time over the one-thread one's."""
    if "hermite_1d_kernel_2threads" not in per:
        return {}
    return {"hermite_1d_2thread_cpu_over_1thread": (
        [a / b for a, b in zip(per["hermite_1d_kernel_2threads"], per["hermite_1d_kernel"])],
        "CPU time of the 1-D Hermite kernel on two threads (both) over one thread, same call")}


def normal_split_shares(per: dict[str, list[float]]) -> dict[str, tuple[list[float], str]]:
    """Paired per round: what of the public 1e7 call is page faults, what is writing beyond the
    caches and call overhead, and the speed-up of each transform level over the one below."""
    if "normal_1e7_fresh" not in per:
        return {}
    fresh, into, piece = per["normal_1e7_fresh"], per["normal_1e7_into"], per["normal_piece"]
    out = {"normal_1e7_fault_share": ([(a - b) / a for a, b in zip(fresh, into)],
                                      "share of standard_normal(seed, 1e7) that the fresh array's page faults take"),
           "normal_1e7_stream_share": ([(b - c) / a for a, b, c in zip(fresh, into, piece)],
                                       "share of it beyond the kernel on cached pieces (80 MB written to memory, "
                                       "pieces, call)")}
    for lo, hi in ((0, 3), (3, 4)):
        if f"normal_isa{hi}" in per:
            out[f"normal_isa{hi}_over_isa{lo}"] = ([a / b for a, b in zip(per[f"normal_isa{lo}"],
                                                                          per[f"normal_isa{hi}"])],
                                                   f"speed-up of the level-{hi} transform over level {lo}")
    return out


NORMALS_PARTS_SRC = HERE / "normals_parts.cpp"
# the parts of bench/normals_parts.cpp (its enum Part, in order) and what each times
NORMALS_PARTS = {
    "fill": "fill_normals, one stream, 256 normals a call (the shipped bulk call, load-time level)",
    "ars": "the ARS-7 rounds alone (ars_blocks on 128 counters)",
    "transform": "the ziggurat alone (fast path at x86-64-v3, then the slow path), 128 cached blocks",
    "fast": "its fast path alone: a table load, a multiplication and a compare a normal",
    "slow": "its slow path alone: the wedge tests and tail tries of the words the fast path rejected",
}
NORMALS_REPS = 400  # calls of 256 normals: ~0.3 ms a part, long enough for process_time


def _compile_normals_parts() -> Any:
    """Build and load bench/normals_parts.cpp (``_compile_exe``); None without g++."""
    import ctypes

    lib = _compile_exe(NORMALS_PARTS_SRC, [], shared=True)
    if lib is None:
        return None
    dll = ctypes.CDLL(str(lib))
    dll.mc_normals_part.argtypes = [ctypes.c_int, ctypes.c_long]
    dll.mc_normals_add_chain.argtypes = [ctypes.c_long]
    dll.mc_normals_per_call.restype = ctypes.c_long
    dll.mc_normals_slow_share.restype = ctypes.c_double
    for f in (dll.mc_normals_part, dll.mc_normals_add_chain):
        f.restype = None
    return dll


def _normals_kernel_parts() -> dict[str, tuple[Callable[[], Any], float, str, str]]:
    """The normal generator split in C++ (bench/normals_parts.cpp, one thread, batches of 128
    blocks in cache): the bulk call, the ARS rounds, the ziggurat transform, its fast path and
    its slow path alone; and the core's clock."""
    dll = _compile_normals_parts()
    if dll is None:
        return {}
    per_call = dll.mc_normals_per_call()
    out: dict[str, tuple[Callable[[], Any], float, str, str]] = {
        f"np_{name}": ((lambda k_: lambda: dll.mc_normals_part(k_, NORMALS_REPS))(k), NORMALS_REPS * per_call,
                       "ns per normal", what)
        for k, (name, what) in enumerate(NORMALS_PARTS.items())}
    out["np_add_chain"] = (lambda: dll.mc_normals_add_chain(500_000), 2_000_000, "ns per add",
                           "a chain of dependent integer adds: one a cycle (the core's clock)")
    return out


def normals_kernel_shares(per: dict[str, list[float]]) -> dict[str, tuple[list[float], str]]:
    """Paired per round: each part in cycles per normal at the round's clock; the shares of the
    bulk call that the ARS rounds, the ziggurat's fast path and its slow path take."""
    if "np_add_chain" not in per:
        return {}
    clock = per["np_add_chain"]
    out = {f"np_{k}_cycles": ([t / c for t, c in zip(per[f"np_{k}"], clock)],
                              f"cycles per normal: {what}") for k, what in NORMALS_PARTS.items()}
    fill = per["np_fill"]
    out["np_ars_share"] = ([a / f for a, f in zip(per["np_ars"], fill)], "share of the bulk call: the ARS rounds")
    out["np_transform_share"] = ([a / f for a, f in zip(per["np_transform"], fill)],
                                 "share of the bulk call: the ziggurat transform")
    out["np_fast_share"] = ([a / f for a, f in zip(per["np_fast"], fill)],
                            "share of the bulk call: the ziggurat's fast path")
    out["np_slow_share"] = ([a / f for a, f in zip(per["np_slow"], fill)],
                            "share of the bulk call: the ziggurat's slow path (wedge, tail)")
    return out


def empirical_window_share(t: float, n: int = 2000, seed: int = 5) -> float:
    """Share of the (point, centre) pairs that the empirical-score kernel evaluates at time t,
    on the data of ``emp_score_*`` (n = m = 2000, d = 2): centre i enters the pass for point y
    when (y_0 - z_i0)^2 <= D_ref + 2 sigma_t^2 * 50 (kEmpiricalCutoff, empirical.hpp), computed
    here with D_ref = min_i |y - z_i|^2, the smallest the kernel's D_ref can be: a lower bound
    on the share (counted in numpy, not timed)."""
    g2 = np.random.default_rng(seed)
    X, Y = g2.standard_normal((n, 2)), g2.standard_normal((n, 2))
    Z = np.exp(-t) * X
    s2 = -np.expm1(-2.0 * t)
    D = ((Y[:, None, :] - Z[None, :, :]) ** 2).sum(axis=-1)
    d0 = (Y[:, None, 0] - Z[None, :, 0]) ** 2
    return float(np.mean(d0 <= D.min(axis=1, keepdims=True) + 2.0 * s2 * 50.0))


DAE_THREADS_SRC = HERE / "dae_threads.cpp"
# what each field of bench/dae_threads.cpp --json is (shares are of the two-thread run's wall time)
DAE_THREAD_FIELDS = {
    "t1_s": ("s", "one-thread run, wall clock"), "t2_s": ("s", "two-thread run, wall clock"),
    "speedup_wall": ("ratio", "one-thread over two-thread wall clock, paired per round"),
    "t1_rq_share": ("share", "one-thread run: run-queue delay (schedstat) over its wall clock"),
    "sgd_work_share": ("share", "SGD thread: CPU time outside its waits"),
    "sgd_sync_share": ("share", "SGD thread: CPU time spinning for the helper's pieces"),
    "sgd_rq_share": ("share", "SGD thread: run-queue delay (runnable, not on a CPU: preempted)"),
    "sgd_rest_share": ("share", "SGD thread: wall less CPU less run queue (blocked: helper start, join; steal)"),
    "sgd_rq_in_wait_share": ("share", "SGD thread: off a CPU inside its waits for the helper"),
    "sgd_nivcsw": ("count", "SGD thread: involuntary context switches"),
    "sgd_nvcsw": ("count", "SGD thread: voluntary context switches"),
    "helper_work_share": ("share", "helper: CPU time drawing pieces (outside its waits)"),
    "helper_sync_share": ("share", "helper: CPU time spinning for a free buffer"),
    "helper_rq_share": ("share", "helper: run-queue delay"),
    "helper_sleep_share": ("share", "helper: asleep on its condition variable (buffers full)"),
    "helper_outside_share": ("share", "helper: not yet started or already ended"),
    "helper_nivcsw": ("count", "helper: involuntary context switches"),
    "speedup_no_rq": ("ratio", "each run's wall less its calling thread's run-queue delay, one over two threads"),
    "speedup_no_rq_hi": ("ratio", "the same, the SGD thread's spin also less up to the helper's run-queue delay"),
    "work_over_1thread": ("ratio", "CPU time of the two-thread run's work (both threads) over the one-thread run's"),
    "speedup_work_bound": ("ratio", "speed-up that work allows on two idle cores (pieces split to balance)"),
    "helper_piece_share": ("share", "pieces of normals the helper drew"),
    "steal_share": ("share", "steal time (/proc/stat, all two-thread runs) over both CPUs' time"),
}


def _compile_exe(src: Path, flags: list[str], shared: bool = False) -> Path | None:
    """Build a bench C++ program (``shared``: a library for ctypes) against the checkout's headers
    with the extension's flags (-O3 -fno-math-errno -fopenmp-simd, no -march: the same
    target_clones dispatch), once per version of the source, headers and flags (cached in the temp
    folder); None without g++, off Linux, or when it does not build (said on the console)."""
    import hashlib
    import shutil
    import tempfile

    cxx = os.environ.get("CXX") or shutil.which("g++")
    if cxx is None or not sys.platform.startswith("linux"):
        return None
    inc = HERE.parent / "cpp" / "include"
    flags = ["-O3", "-fno-math-errno", "-fopenmp-simd", "-pthread", "-std=c++17", f"-I{inc}", "-Wno-psabi", *flags]
    if shared:
        flags += ["-shared", "-fPIC"]
    h = hashlib.sha256(src.read_bytes() + " ".join([cxx, *flags]).encode())
    for hdr in sorted((inc / "modelcollapse").glob("*.hpp")):
        h.update(hdr.read_bytes())
    suffix = ".so" if shared else ""
    exe = Path(tempfile.gettempdir()) / f"modelcollapse_bench_{src.stem}_{h.hexdigest()[:16]}{suffix}"
    if not exe.exists():
        tmp = exe.with_suffix(f".{os.getpid()}{suffix}")
        res = subprocess.run([cxx, *flags, str(src), "-o", str(tmp)], capture_output=True, text=True)
        if res.returncode != 0:
            print(f"bench/{src.name} did not build (its parts are left out): {res.stderr[-300:]}")
            return None
        os.replace(tmp, exe)
    return exe


def _run_json(exe: Path | None, rounds: int) -> dict[str, Any] | None:
    if exe is None:
        return None
    run = subprocess.run([str(exe), str(rounds), "--json"], capture_output=True, text=True, timeout=1800)
    if run.returncode != 0:
        print(f"{exe.name} failed (its split is left out): {run.stdout[-300:]} {run.stderr[-300:]}")
        return None
    return json.loads(run.stdout)


def dae_thread_split(rounds: int) -> dict[str, dict[str, Any]]:
    """bench/dae_threads.cpp --json (built here with the extension's flags plus
    -DMODELCOLLAPSE_DAE_STATS, Linux only): the two-thread DAE run (d = 1e4, 1e5) against one
    thread, interleaved rounds, each two-thread run's wall time split per thread by the kernel's
    scheduler accounting (/proc/thread-self/schedstat) into work, synchronisation wait and
    run-queue delay (docs/dae.md, "Performance"). {} where it does not build or run."""
    data = _run_json(_compile_exe(DAE_THREADS_SRC, ["-DMODELCOLLAPSE_DAE_STATS"]), rounds)
    if data is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for dkey, fields in data.items():
        if not dkey.startswith("d"):
            continue
        for name, (unit, what) in DAE_THREAD_FIELDS.items():
            if name in fields:
                med, lo, hi = fields[name]
                out[f"dae_threads_{dkey}_{name}"] = {
                    "median": med, "min": lo, "max": hi, "unit": unit,
                    "what": f"DAE d={dkey[1:]} {fields['n_steps']} steps, two threads (bench/dae_threads.cpp, "
                            f"{data['rounds']} rounds): {what}"}
    return out


THREAD_SPLIT_SRC = HERE / "thread_split.cpp"
# what each field of bench/thread_split.cpp --json is (shares are of the two-thread run's wall time)
THREAD_SPLIT_FIELDS = {
    "speedup_wall": ("ratio", "one-thread over two-thread wall clock, paired per round"),
    "work_over_1thread": ("ratio", "CPU time of the two-thread run (workers, the caller's set-up) over one thread's"),
    "outside_workers_share": ("share", "outside the longest worker's life: set-up, thread start, reduction, join"),
    "worker_cpu_share": ("share", "per worker (the caller is one): on a CPU"),
    "worker_rq_share": ("share", "per worker: run-queue delay (preempted, or not yet scheduled)"),
    "worker_blocked_share": ("share", "per worker: neither (blocked on a lock, or steal)"),
    "worker_cpu_max_over_min": ("ratio", "CPU time of the busiest worker over the idlest's (imbalance)"),
    "t1_rq_share": ("share", "one-thread run: run-queue delay over its wall clock"),
    "speedup_no_rq": ("ratio", "each run's wall less its (mean per worker) run-queue delay, one over two threads"),
}


def kde_thread_split(rounds: int) -> dict[str, dict[str, Any]]:
    """bench/thread_split.cpp --json (the extension's flags plus -DMODELCOLLAPSE_THREAD_STATS and
    Eigen): the exact grid KDE's compiled kernel (1-D n = 5000 and 5e4 on 1000 points, 2-D n = 5000
    on 100^2), the 2-D Hermite moments (degree 10, 1e6 samples) and the empirical score's loop
    (n = m = 1e4, d = 2, t = 0.1 and 1.0, log p) on one and two threads,
    interleaved rounds, each two-thread run split per worker by the scheduler's accounting
    (parallel.hpp, SchedSample). {} where it does not build or run."""
    try:
        prefix = subprocess.run([sys.executable, "-m", "cmeel", "cmake"], capture_output=True, text=True,
                                timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {}
    eigen = Path(prefix) / "include" / "eigen3"
    if not prefix or not eigen.is_dir():
        return {}
    data = _run_json(_compile_exe(THREAD_SPLIT_SRC, ["-DMODELCOLLAPSE_THREAD_STATS", f"-isystem{eigen}"]), rounds)
    if data is None:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for key, fields in data.items():
        if not isinstance(fields, dict):
            continue
        for name, (unit, what) in THREAD_SPLIT_FIELDS.items():
            if name in fields:
                med, lo, hi = fields[name]
                out[f"threads_{key}_{name}"] = {
                    "median": med, "min": lo, "max": hi, "unit": unit,
                    "what": f"{key}" + (f" (grid {fields['grid']} a side)" if fields["grid"] else "")
                            + ", compiled kernel on two threads "
                            f"(bench/thread_split.cpp, {data['rounds']} rounds): {what}"}
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
    return {"modelcollapse": mc.__version__, "generator": gen, "transform": _transform(), "commit": source_commit()}


def _transform() -> str:
    """The normal transform of the imported core: "ziggurat" when its normals are the numpy twin's
    (reference/random.py, the ziggurat) bit for bit, else "?" (an older core: Box-Muller)."""
    from modelcollapse import _core
    from modelcollapse.reference import random as ref

    try:
        got = _core.normals(1, 0, 0, 1, 4096, 0, 1)[0]
    except (AttributeError, TypeError):
        return "?"
    return "ziggurat" if np.array_equal(got, ref.normals(1, ref.make_stream(0, 0), 0, 4096)) else "?"


def paired_shares(per: dict[str, list[float]]) -> dict[str, tuple[list[float], str]]:
    """{name: (one value per round, what)}: each share or ratio from the parts of the same round
    (paired), so a slow phase of a shared machine cancels; ``measure`` takes their medians."""
    shares = {f"sampler_d{d}_noise_share": ([(a - b) / a for a, b in zip(per[f"sampler_d{d}"],
                                                                        per[f"sampler_d{d}_injected"])],
                                            f"share of the sampler's time (d={d}) that drawing the noise takes")
              for d in (2, 64)}
    for d in (2, 64):
        if f"sampler_d{d}_core" not in per:  # a run without the split (older or partial)
            continue
        core = per[f"sampler_d{d}_core"]
        for part in ("score", "noise", "update"):
            shares[f"sampler_d{d}_{part}_share"] = (
                [(a - b) / a for a, b in zip(core, per[f"sampler_d{d}_no_{part}"])],
                f"share of the compiled sampler step (d={d}) that the {part} takes (the loop without it, paired)")
        shares[f"sampler_d{d}_bare_share"] = ([b / a for a, b in zip(core, per[f"sampler_d{d}_bare"])],
                                              f"share of the step (d={d}) left with no score, noise or update")
        shares[f"sampler_d{d}_python_share"] = (
            [(a - b) / a for a, b in zip(per[f"sampler_d{d}"], core)],
            f"share of the public sample_reverse (d={d}) outside the compiled loop (checks, init normals, Python)")
    for d in (1000, 10_000):
        shares[f"dae_d{d}_normal_share"] = ([2 * d * z / s_ for z, s_ in zip(per["normal"], per[f"dae_d{d}"])],
                                            f"2d normals (`normal`) over the one-thread DAE step, d={d}")

    def outside(whole: str, kernel: str) -> list[float]:
        return [(a - b) / a for a, b in zip(per[whole], per[kernel])]

    for d in (1, 2):
        shares[f"kde_binned_{d}d_python_share"] = (
            outside(f"kde_binned_{d}d", f"kde_binned_{d}d_kernel"),
            f"share of kde(method='binned') {d}-D spent outside the compiled kernel (checks, plan, Python)")
        shares[f"kde_exact_{d}d_python_share"] = (outside(f"kde_exact_{d}d", f"kde_exact_{d}d_kernel"),
                                                  f"share of the exact {d}-D grid kde() outside its compiled kernel")
        shares[f"kde_exact_{d}d_grid_over_points"] = (
            [a / b for a, b in zip(per[f"kde_exact_{d}d_kernel"], per[f"kde_exact_{d}d_points"])],
            f"grid kernel (no exp) over points kernel (one exp a pair), same pairs, {d}-D")
        shares[f"hermite_{d}d_python_share"] = (outside(f"hermite_{d}d", f"hermite_{d}d_kernel"),
                                                f"share of hermite_moments ({d}-D) outside its compiled kernel")
    if "kde_exact_2d_diag_kernel" in per:
        shares["kde_exact_2d_diag_speedup"] = (
            [b / a for a, b in zip(per["kde_exact_2d_diag_kernel"], per["kde_exact_2d_diag_recurrence"])],
            "recurrence kernel over separable kernel, 2-D diagonal H, same pairs (paired per round)")
        shares["kde_exact_2d_diag_python_share"] = (outside("kde_exact_2d_diag", "kde_exact_2d_diag_kernel"),
                                                    "share of the diagonal-H 2-D grid kde() outside its kernel")
    shares["emp_score_t1_python_share"] = (outside("emp_score_t1", "emp_score_t1_kernel"),
                                           "share of EmpiricalScore.score (t=1.0) outside its compiled call")
    shares["emp_score_t1_over_t001"] = ([a / b for a, b in zip(per["emp_score_t1"], per["emp_score_t001"])],
                                        "time a pair at t=1.0 over t=0.01, same pairs")
    shares["emp_score_t1_sum_share"] = (outside("emp_score_t1", "emp_logpdf_t1"),
                                        "share of score (t=1.0) beyond logpdf: the weighted sum of samples")
    shares.update(normal_split_shares(per))
    shares.update(score_kernel_shares(per))
    shares.update(hermite_thread_shares(per))
    shares.update(normals_kernel_shares(per))
    # the splits below need parts that older bounds.json files and callers may lack
    if "hermite_1d_deg65_kernel" in per:
        shares["hermite_2d_over_fused_1d"] = (
            [a / b for a, b in zip(per["hermite_2d_kernel"], per["hermite_1d_deg65_kernel"])],
            "generic kernel (2-D, degree 10) over the fused 1-D kernel (degree 65), same 66 moments a sample")
    # what depends on t: the share of pairs inside the kernel's window (empirical_window_share);
    # per evaluated pair, t = 1.0 over t = 0.01 (1 where the window explains the whole ratio)
    w1, w001 = empirical_window_share(1.0), empirical_window_share(0.01)
    shares["emp_window_share_t1"] = ([w1] * len(per["emp_score_t1"]), "share of pairs in the kernel's window, t=1.0")
    shares["emp_window_share_t001"] = ([w001] * len(per["emp_score_t1"]),
                                       "share of pairs in the kernel's window, t=0.01 (a lower bound)")
    shares["emp_score_t1_over_t001_per_window_pair"] = (
        [a / b * w001 / w1 for a, b in zip(per["emp_score_t1"], per["emp_score_t001"])],
        "time per evaluated (in-window) pair at t=1.0 over t=0.01")
    if not all(f"kde_grid_{k}" in per for k in ("1d_m250", "1d_m2000", "1d_m16000", "2d_m25", "2d_m400")):
        return shares
    # exact grid kernel: time a sample = a + b m (m grid points); a, b from m = 250 and 2000
    b1 = [(p2 * 2000 - p1 * 250) / (2000 - 250) for p1, p2 in zip(per["kde_grid_1d_m250"], per["kde_grid_1d_m2000"])]
    a1 = [(p1 - b) * 250 for p1, b in zip(per["kde_grid_1d_m250"], b1)]
    shares["kde_grid_1d_pair_ns"] = (b1, "exact grid kernel 1-D: ns a pair beyond the per-sample cost (m=250, 2000)")
    shares["kde_grid_1d_sample_ns"] = (a1, "exact grid kernel 1-D: ns a sample independent of the grid size")
    shares["kde_grid_1d_sample_share_m1000"] = ([a / (a + 1000 * b) for a, b in zip(a1, b1)],
                                                "share of the per-sample cost at m = 1000 (the bench's grid)")
    shares["kde_grid_1d_m16000_over_m2000"] = (
        [a / b for a, b in zip(per["kde_grid_1d_m16000"], per["kde_grid_1d_m2000"])],
        "ns a pair, 128 KiB accumulator (L2) over 16 KiB (L1), 1-D")
    b2 = [(p2 * 400 - p1 * 25) / (400 - 25) for p1, p2 in zip(per["kde_grid_2d_m25"], per["kde_grid_2d_m400"])]
    shares["kde_grid_2d_pair_ns"] = (b2, "exact grid kernel 2-D: ns a pair beyond the per-row cost (m1=25, 400)")
    a2 = [(p1 - b) * 25 for p1, b in zip(per["kde_grid_2d_m25"], b2)]  # ns a (sample, row)
    shares["kde_grid_2d_row_share_m100"] = (
        [a / (a + 100 * b) for a, b in zip(a2, b2)],
        "share of the per-(sample, row) cost on 100-column rows (the bench's 100^2 grid)")
    return shares


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
    shares = paired_shares(per)
    for name, (vals, what) in shares.items():
        res[name] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals),
                     "unit": "ratio" if "_over_" in name else "ns" if name.endswith("_ns") else
                     "GHz" if name.endswith("_ghz") else "cycles" if name.endswith("_cycles") else
                     "relative difference" if name.endswith("_max_rel") else "share",
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
    res.update(dae_thread_split(args.rounds))
    res.update(kde_thread_split(args.rounds))
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
