"""Foundation kernels: C++ core vs numpy, torch CPU where installed.

Baselines ("numpy" in each case, the ratios are against it):
- normals, mixture score, empirical score: the package's numpy reference
  (modelcollapse.reference), which is vectorised (the empirical one blocked, by the
  |y|^2 + |x|^2 - 2 y.x expansion and a matrix product).
- reverse sampling: hand-written vectorised numpy (whole arrays per step, isotropic or
  full-covariance score by batched matrix products), the code issue 2 describes; the
  package reference sampler (Cholesky solves per point and component, "numpy_ref") is
  much slower and is timed at the --quick sizes only.

Cases (issue 2): normals (Philox + Box-Muller), mixture score K=8 d=2 N=1e5, full reverse
sampling (Euler-Maruyama, 200 steps) for K=8 d=2 N=1e5 and K=8 d=64 N=1e4 (isotropic and
full covariance), empirical (KDE) score n=m=1e4 d=2 at t in {0.01, 0.1, 1}.
"""
from __future__ import annotations

import numpy as np

import modelcollapse as mc
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


def _torch_sampler(gm, n, steps):
    import torch

    torch.set_default_dtype(torch.float64)
    logw = torch.log(torch.as_tensor(gm.weights))
    mu = torch.as_tensor(gm.means)
    var = torch.as_tensor(gm.covariances)
    d = gm.dim

    def run(state):
        g = torch.Generator().manual_seed(1)
        times = ref_sampler.time_grid(1.0, 0.01, steps)
        y = torch.randn(n, d, generator=g)
        for k in range(steps):
            t, h = float(times[k]), float(times[k] - times[k + 1])
            a, s2 = np.exp(-t), -np.expm1(-2.0 * t)
            v = a * a * var + s2
            diff = y[:, None, :] - a * mu[None]
            logits = logw - 0.5 * d * torch.log(v) - 0.5 * (diff * diff).sum(-1) / v
            r = torch.softmax(logits, dim=1)
            s = -torch.einsum("nk,nkd->nd", r / v, diff)
            y = y + h * (y + 2.0 * s) + np.sqrt(2.0 * h) * torch.randn(n, d, generator=g)
        return y.numpy()

    return run


def _have_torch():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


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


def _allclose(rtol):
    def check(outs):
        ref = outs["numpy"]
        for name, out in outs.items():
            err = np.max(np.abs(out - ref)) / np.max(np.abs(ref))
            if err > rtol:
                raise AssertionError(f"{name}: differs from numpy by {err:.3g} (relative) > {rtol}")
    return check


def cases(quick: bool) -> list[Case]:
    out: list[Case] = []
    threads = mc.default_threads()

    # Normals: one long run of one stream (the DAE pattern), 1 thread and all threads
    # (many streams), against the numpy reference of the generator.
    n = 10**5 if quick else 4 * 10**6
    out.append(Case(
        name=f"normals n={n:.0e}", setup=lambda: None, work=n, unit="normals",
        impls={"cpp": lambda s: _core.normals(1, 0, 0, 1, n, 0, 1)[0],
               "cpp_mt": lambda s: _core.normals(1, 0, 0, 64, n // 64, 0, threads).ravel(),
               "numpy": lambda s: ref_rng.normals(1, 0, 0, n)},
        params={"n": n}))
    out[-1].impls["numpy_rng"] = lambda s: np.random.default_rng(1).standard_normal(n)

    # Mixture score K=8, d=2, N=1e5 (isotropic).
    N = 10**4 if quick else 10**5
    gm2 = _mixture(8, 2, "isotropic")
    x2 = np.random.default_rng(3).standard_normal((N, 2)) * 3
    iso = _iso_score_numpy(gm2.weights, gm2.means, gm2.covariances)
    out.append(Case(
        name=f"mixture score K=8 d=2 N={N:.0e}", setup=lambda: x2, work=N, unit="points",
        impls={"cpp": lambda x: gm2.score(x, 0.1), "numpy": lambda x: gm2.score(x, 0.1, backend="numpy"),
               "numpy_iso": lambda x: iso(x, 0.1)},
        check=_allclose(1e-10), params={"K": 8, "d": 2, "N": N, "t": 0.1}))

    # Full reverse sampling, Euler-Maruyama, uniform grid, T=1, delta=0.01.
    steps = 20 if quick else 200
    for K, d, kind, N in [(8, 2, "isotropic", 10**5), (8, 64, "isotropic", 10**4), (8, 64, "full", 10**4)]:
        if quick:
            N //= 10
        gm = _mixture(K, d, kind)
        impls = {"cpp": (lambda g, n_: lambda s: mc.sample_reverse(g, n_, steps=steps, seed=1).samples)(gm, N)}
        if quick:
            # The package reference (Cholesky solves per point and component) is slow: timed
            # at the quick sizes only.
            impls["numpy_ref"] = (lambda g, n_: lambda s: mc.sample_reverse(g, n_, steps=steps, seed=1,
                                                                         backend="numpy").samples)(gm, N)
        if kind == "isotropic":
            impls["numpy"] = _numpy_sampler(_iso_score_numpy(gm.weights, gm.means, gm.covariances), N, d, steps)
            if _have_torch():
                impls["torch"] = _torch_sampler(gm, N, steps)
        else:
            impls["numpy"] = _numpy_sampler(_full_score_numpy(gm.weights, gm.means, gm.full_covariances()), N, d,
                                            steps)
        base = "numpy"
        out.append(Case(
            name=f"reverse EM K={K} d={d} {kind[:4]} N={N:.0e} {steps}st", setup=lambda: None,
            work=N * steps, unit="sample-steps", impls=impls, baseline=base,
            check=_close_moments(),
            params={"K": K, "d": d, "cov": kind, "N": N, "steps": steps, "threads": threads}))

    # Empirical (KDE) score n = m = 1e4, d = 2.
    n_e = 2000 if quick else 10**4
    rng = np.random.default_rng(5)
    X = rng.standard_normal((n_e, 2))
    Y = rng.standard_normal((n_e, 2))
    es = mc.EmpiricalScore(X)
    for t in (0.01, 0.1, 1.0):
        out.append(Case(
            name=f"empirical score n=m={n_e:.0e} d=2 t={t}", setup=lambda: Y, work=n_e * n_e, unit="pairs",
            impls={"cpp": (lambda t_: lambda y: es.score(y, t_))(t),
                   "numpy": (lambda t_: lambda y: ref_emp.score(X, y, t_))(t)},
            check=_allclose(1e-9), params={"n": n_e, "m": n_e, "d": 2, "t": t}))
    return out
