"""Foundation kernels: C++ core vs the peers a user would pick (bench/peers.py), timed in the
same run: numpy's own generator and the best-vectorised numpy, JAX (jit + lax.scan) and torch
(hand-written score; torch.compile for the samplers, full sizes only), float64 and float32.

References that are no peer (``refs``, shown but not rated against): the package's numpy
twins (the ARS-7 normals in numpy, the Cholesky-per-point reference sampler "numpy_ref").
The "numpy (n,K,d)" forms are the broadcast isotropic code of issue 2, kept for the record.

Cases (issue 2 and 16): normals (one stream; many streams on all threads; the public
``standard_normal(seed, n)``), mixture score K=8 d=2 N=1e5, full reverse sampling
(Euler-Maruyama, 200 steps) for K=8 d=2 N=1e5 and K=8 d=64 N=1e4 (isotropic and full
covariance), empirical (KDE) score n=m=1e4 d=2 at t in {0.01, 0.1, 1}. Limits: bench/limits.py.
"""
from __future__ import annotations

import warnings

import numpy as np

import limits
import modelcollapse as mc
import modelcollapse.random as mc_random
import peers
from modelcollapse import _core
from modelcollapse.reference import empirical as ref_emp
from modelcollapse.reference import random as ref_rng
from modelcollapse.reference import sampler as ref_sampler
from run import Case


def _mixture(K, d, kind, seed=0):
    rng = np.random.default_rng(seed)
    w = np.full(K, 1.0 / K)
    mu = 3.0 * rng.standard_normal((K, d))
    if kind == "isotropic":
        cov = 0.3 + rng.random(K)
    else:
        A = rng.standard_normal((K, d, d))
        cov = A @ A.transpose(0, 2, 1) / d + 0.3 * np.eye(d)
    return mc.GaussianMixture(w, mu, cov)


def _iso_score_numpy(w, mu, var):
    """Hand-written vectorised score of an isotropic mixture (the baseline of issue 2)."""
    logw = np.log(w)
    d = mu.shape[1]

    def score(x, t):
        a, s2 = np.exp(-t), -np.expm1(-2.0 * t)
        m = a * mu
        v = a * a * var + s2  # (K,)
        diff = x[:, None, :] - m[None]  # (n, K, d)
        logits = logw - 0.5 * d * np.log(v) - 0.5 * np.einsum("nkd,nkd->nk", diff, diff) / v
        logits -= logits.max(axis=1, keepdims=True)
        r = np.exp(logits)
        r /= r.sum(axis=1, keepdims=True)
        return -np.einsum("nk,nkd->nd", r / v, diff)

    return score


def _full_score_numpy(w, mu, cov):
    """Hand-written vectorised score of a full-covariance mixture: per time, K precision
    matrices; per step one batched matmul (K, n, d) @ (K, d, d)."""
    logw = np.log(w)
    d = mu.shape[1]

    def score(x, t):
        a, s2 = np.exp(-t), -np.expm1(-2.0 * t)
        C = a * a * cov + s2 * np.eye(d)
        P = np.linalg.inv(C)
        logdet = np.linalg.slogdet(C)[1]
        diff = x[None, :, :] - (a * mu)[:, None, :]  # (K, n, d)
        g = diff @ P  # (K, n, d) = C_k^{-1} (x - mu_k) (P symmetric)
        logits = (logw - 0.5 * logdet)[:, None] - 0.5 * np.einsum("knd,knd->kn", diff, g)
        logits -= logits.max(axis=0, keepdims=True)
        r = np.exp(logits)
        r /= r.sum(axis=0, keepdims=True)
        return -np.einsum("kn,knd->nd", r, g)

    return score


def _numpy_sampler(score, n, d, steps):
    def run(state):
        rng = np.random.default_rng(1)
        times = ref_sampler.time_grid(1.0, 0.01, steps)
        y = rng.standard_normal((n, d))
        for k in range(steps):
            h = times[k] - times[k + 1]
            y = y + h * (y + 2.0 * score(y, times[k])) + np.sqrt(2.0 * h) * rng.standard_normal(y.shape)
        return y

    return run


def _close_moments():
    def check(outs):
        ref = next(iter(outs.values()))
        for name, out in outs.items():
            out = np.asarray(out)
            if not np.all(np.isfinite(out)):
                raise AssertionError(f"{name}: non-finite output")
            # Independent noise: sample means differ by O(std / sqrt(n)); 6 sigma, worst coordinate.
            tol = 6.0 * np.asarray(ref).std(0).max() * np.sqrt(2.0 / len(out))
            err = np.abs(out.mean(0) - np.asarray(ref).mean(0)).max()
            if err > tol:
                raise AssertionError(f"{name}: sample mean differs by {err:.3g} > {tol}")
    return check


def _allclose(rtol, rtol_f32=2e-4, ref="cpp"):
    """Every output within rtol (float32 peers: rtol_f32) of ``ref``, relative to its largest value."""
    def check(outs):
        base = np.asarray(outs[ref], dtype=float)
        for name, out in outs.items():
            err = np.max(np.abs(np.asarray(out, dtype=float) - base)) / np.max(np.abs(base))
            tol = rtol_f32 if "f32" in name else rtol
            if not err <= tol:
                raise AssertionError(f"{name}: differs from {ref} by {err:.3g} (relative) > {tol}")
    return check


def _normal_moments(outs):
    """Independent generators agree in law: mean 0 and variance 1 within 6 standard errors."""
    for name, out in outs.items():
        z = np.asarray(out, dtype=float).ravel()
        se = 1.0 / np.sqrt(z.size)
        if abs(z.mean()) > 6 * se or abs(z.var() - 1.0) > 6 * np.sqrt(2.0) * se:
            raise AssertionError(f"{name}: mean {z.mean():.3g}, variance {z.var():.4g} for {z.size} normals")


def cases(quick: bool) -> list[Case]:
    # The fixed sizes (uniform grid, 200 steps; 20 at --quick) are coarse for these
    # laws: the sampler says so once per call. Timings, not accuracy, are measured here.
    warnings.filterwarnings("ignore", category=mc.sampler.DiscretisationWarning)
    out: list[Case] = []
    threads = mc.default_threads()

    # Normals: one long stream on one thread (the DAE pattern); many streams on all threads
    # (4096 streams; rows are cut into pieces of 2^15 numbers that the threads share, so
    # short rows are grouped and one long row is threaded too); the public 1-D call; against numpy's own generator (the peer)
    # and the package's numpy twin of the ARS-7 generator (a reference).
    n = 10**5 if quick else 10**7
    streams = 4096
    impls = {"cpp": lambda s: _core.normals(1, 0, 0, 1, n, 0, 1)[0],
             "cpp_mt": lambda s: _core.normals(1, 0, 0, streams, n // streams, 0, threads).ravel(),
             "cpp standard_normal(seed, n)": lambda s: mc_random.standard_normal(1, n),
             "cpp_1thread": lambda s: mc_random.standard_normal(1, n, threads=1),
             "numpy": lambda s: ref_rng.normals(1, 0, 0, n)}
    for dt in ("f64", "f32"):
        impls[f"numpy default_rng {dt}"] = peers.normals_numpy(n, dt)
        impls[f"jax {dt}"] = peers.normals_jax(n, dt)
        impls[f"torch {dt}"] = peers.normals_torch(n, dt)
    out.append(Case(
        name=f"normals n={n:.0e}", setup=lambda: None, work=n, unit="normals", impls=impls,
        refs=("numpy",), check=_normal_moments, limit=limits.normals(), project="cpp standard_normal(seed, n)",
        params={"n": n, "cpp_mt streams": streams, "threads": threads}))

    # Mixture score K=8, d=2, N=1e5 (isotropic).
    N = 10**4 if quick else 10**5
    gm2 = _mixture(8, 2, "isotropic")
    x2 = np.random.default_rng(3).standard_normal((N, 2)) * 3
    iso = _iso_score_numpy(gm2.weights, gm2.means, gm2.covariances)
    impls = {"cpp": lambda x: gm2.score(x, 0.1), "cpp_1thread": lambda x: gm2.score(x, 0.1, threads=1),
             "numpy": lambda x: gm2.score(x, 0.1, backend="numpy"),
             "numpy (n,K,d) f64": lambda x: iso(x, 0.1)}
    for dt in ("f64", "f32"):
        gemm = peers.iso_score_numpy(gm2.weights, gm2.means, gm2.covariances, dt)
        impls[f"numpy gemm {dt}"] = (lambda f, dt_: lambda x: f(x.astype(dt_), 0.1))(gemm, np.dtype(dt.replace("f", "float")))
        impls[f"jax {dt}"] = peers.mixture_score_jax(gm2, dt)
        impls[f"torch {dt}"] = peers.mixture_score_torch(gm2, dt)
    out.append(Case(
        name=f"mixture score K=8 d=2 N={N:.0e}", setup=lambda: x2, work=N, unit="points", impls=impls,
        refs=("numpy",), check=_allclose(1e-10), limit=limits.mixture_score(8, 2),
        params={"K": 8, "d": 2, "N": N, "t": 0.1}))

    # Full reverse sampling, Euler-Maruyama, uniform grid, T=1, delta=0.01.
    steps = 20 if quick else 200
    for K, d, kind, N in [(8, 2, "isotropic", 10**5), (8, 64, "isotropic", 10**4), (8, 64, "full", 10**4)]:
        if quick:
            N //= 10
        gm = _mixture(K, d, kind)
        impls = {"cpp": (lambda g, n_: lambda s: mc.sample_reverse(g, n_, steps=steps, seed=1).samples)(gm, N),
                 "cpp_1thread": (lambda g, n_: lambda s: mc.sample_reverse(g, n_, steps=steps, seed=1,
                                                                          threads=1).samples)(gm, N)}
        if quick and d == 2:
            # The package reference (Cholesky solves per point and component) is slow: timed
            # at the quick sizes, d = 2 only (a minute at d = 64).
            impls["numpy_ref"] = (lambda g, n_: lambda s: mc.sample_reverse(g, n_, steps=steps, seed=1,
                                                                         backend="numpy").samples)(gm, N)
        if kind == "isotropic":
            impls["numpy (n,K,d) f64"] = _numpy_sampler(_iso_score_numpy(gm.weights, gm.means, gm.covariances),
                                                        N, d, steps)
            for dt in ("f64", "f32"):
                impls[f"numpy gemm {dt}"] = peers.sampler_numpy(gm, N, steps, dt)
                impls[f"jax {dt}"] = peers.sampler_jax(gm, N, steps, dt)
                impls[f"torch {dt}"] = peers.sampler_torch(gm, N, steps, dt)
            if not quick:  # compiling costs tens of seconds; the full run only
                impls["torch.compile f32"] = peers.sampler_torch(gm, N, steps, "f32", compile=True)
            base = "numpy gemm f64"
        else:
            impls["numpy"] = _numpy_sampler(_full_score_numpy(gm.weights, gm.means, gm.full_covariances()), N, d,
                                            steps)
            base = "numpy"
        out.append(Case(
            name=f"reverse EM K={K} d={d} {kind[:4]} N={N:.0e} {steps}st", setup=lambda: None,
            work=N * steps, unit="sample-steps", impls=impls, baseline=base, refs=("numpy_ref",),
            check=_close_moments(), limit=limits.reverse_em(K, d) if kind == "isotropic" else None,
            params={"K": K, "d": d, "cov": kind, "N": N, "steps": steps, "threads": threads}))

    # Empirical (KDE) score n = m = 1e4, d = 2. The numpy form (blocked, GEMM expansion) is
    # the package's reference and also the best-vectorised numpy: a peer.
    n_e = 2000 if quick else 10**4
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n_e, 2))
    Y = rng.standard_normal((n_e, 2))
    es = mc.EmpiricalScore(X)
    for t in (0.01, 0.1, 1.0):
        impls = {"cpp": (lambda t_: lambda y: es.score(y, t_))(t),
                 "cpp_1thread": (lambda t_: lambda y: es.score(y, t_, threads=1))(t),
                 "numpy": (lambda t_: lambda y: ref_emp.score(X, y, t_))(t)}
        for dt in ("f64", "f32"):
            impls[f"jax {dt}"] = peers.empirical_score_jax(X, t, dt)
            impls[f"torch {dt}"] = peers.empirical_score_torch(X, t, dt)
        # float32 at t = 0.01: logits ~ |y - x|^2 / 0.04 lose digits in the GEMM expansion
        out.append(Case(
            name=f"empirical score n=m={n_e:.0e} d=2 t={t}", setup=lambda: Y, work=n_e * n_e, unit="pairs",
            impls=impls, check=_allclose(1e-9, rtol_f32=5e-2 if t < 0.05 else 2e-3), limit=limits.empirical_score(2),
            refs=(),
            params={"n": n_e, "m": n_e, "d": 2, "t": t}))
    return out
