"""The peers the bench times the compiled kernels against: what a user would pick instead.

JAX (``jit`` + ``lax.scan``, float64 and float32), torch (manual gradients, ``torch.compile``
where it works on CPU), the best-vectorised numpy forms, and a plain C++ loop for the DAE
(compiled by the bench with ``g++ -O3 -march=native`` into a shared library loaded with
ctypes). Each factory imports its package lazily: a peer that is not installed raises
ImportError when the bench first calls it, and run.py skips it with a note.

Dtype: every factory takes ``dtype`` "f64" or "f32"; the f32 peers are shown because a
user who accepts float32 accuracy would run them (docs/benchmarks.md, "Peers").
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- JAX set-up
def _jax():
    """jax with float64 enabled (f32 peers pass float32 arrays explicitly)."""
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _np_dtype(dtype: str):
    return {"f64": np.float64, "f32": np.float32}[dtype]


def _torch_dtype(dtype: str):
    import torch

    return {"f64": torch.float64, "f32": torch.float32}[dtype]


# ----------------------------------------------------------------------------- normals
def normals_jax(n: int, dtype: str):
    jax = _jax()
    import jax.numpy as jnp

    f = jax.jit(lambda key: jax.random.normal(key, (n,), dtype=jnp.dtype(_np_dtype(dtype))))
    return lambda s: np.asarray(f(jax.random.key(1)).block_until_ready())


def normals_torch(n: int, dtype: str):
    import torch

    dt = _torch_dtype(dtype)
    return lambda s: torch.randn(n, dtype=dt, generator=torch.Generator().manual_seed(1)).numpy()


def normals_numpy(n: int, dtype: str):
    return lambda s: np.random.default_rng(1).standard_normal(n, dtype=_np_dtype(dtype))


# ----------------------------------------------------------------------------- mixture score
# The isotropic mixture's score in GEMM form: |x - a mu_k|^2 = |x|^2 - 2 a x.mu_k + a^2 |mu_k|^2,
# score = -(x sum_k r_k / v_k - a sum_k (r_k / v_k) mu_k). One (n, K) matrix product each way
# instead of an (n, K, d) difference array: the best-vectorised form for any d.
def iso_score_numpy(w, mu, var, dtype: str = "f64"):
    dt = _np_dtype(dtype)
    logw, mu, var = np.log(w).astype(dt), mu.astype(dt), var.astype(dt)
    d = mu.shape[1]
    mu2 = np.sum(mu * mu, axis=1)

    def score(x, t):
        a, s2 = np.exp(-t), -np.expm1(-2.0 * t)
        v = (a * a * var + s2).astype(dt)
        sq = np.sum(x * x, axis=1, keepdims=True) - (2.0 * a) * (x @ mu.T) + (a * a) * mu2
        logits = logw - 0.5 * d * np.log(v) - 0.5 * sq / v
        logits -= logits.max(axis=1, keepdims=True)
        r = np.exp(logits)
        rv = r / (r.sum(axis=1, keepdims=True) * v)
        return a * (rv @ mu) - x * rv.sum(axis=1, keepdims=True)

    return score


def _iso_score_jax(jnp, logw, mu, var, d):
    mu2 = jnp.sum(mu * mu, axis=1)

    def score(x, t):
        a, s2 = jnp.exp(-t), -jnp.expm1(-2.0 * t)
        v = a * a * var + s2
        sq = jnp.sum(x * x, axis=1, keepdims=True) - (2.0 * a) * (x @ mu.T) + (a * a) * mu2
        logits = logw - 0.5 * d * jnp.log(v) - 0.5 * sq / v
        r = jnp.exp(logits - logits.max(axis=1, keepdims=True))
        rv = r / (r.sum(axis=1, keepdims=True) * v)
        return a * (rv @ mu) - x * rv.sum(axis=1, keepdims=True)

    return score


def mixture_score_jax(gm, dtype: str):
    jax = _jax()
    import jax.numpy as jnp

    dt = _np_dtype(dtype)
    sc = _iso_score_jax(jnp, jnp.asarray(np.log(gm.weights), dt), jnp.asarray(gm.means, dt),
                        jnp.asarray(gm.covariances, dt), gm.dim)
    f = jax.jit(sc)
    return lambda x: np.asarray(f(jnp.asarray(x, dt), dt(0.1)).block_until_ready())


def mixture_score_torch(gm, dtype: str):
    import torch

    dt = _torch_dtype(dtype)
    logw = torch.log(torch.as_tensor(gm.weights, dtype=dt))
    mu = torch.as_tensor(gm.means, dtype=dt)
    var = torch.as_tensor(gm.covariances, dtype=dt)
    mu2 = (mu * mu).sum(1)
    a, s2 = float(np.exp(-0.1)), float(-np.expm1(-0.2))
    v = a * a * var + s2

    def score(x):
        x = torch.as_tensor(x, dtype=dt)
        sq = (x * x).sum(1, keepdim=True) - (2.0 * a) * (x @ mu.T) + (a * a) * mu2
        r = torch.softmax(logw - 0.5 * gm.dim * torch.log(v) - 0.5 * sq / v, dim=1) / v
        return (a * (r @ mu) - x * r.sum(1, keepdim=True)).numpy()

    return score


# ----------------------------------------------------------------------------- reverse EM sampler
def _grid(steps):
    from modelcollapse.reference import sampler as ref_sampler

    times = ref_sampler.time_grid(1.0, 0.01, steps)
    return times[:-1], times[:-1] - times[1:]


def sampler_numpy(gm, n: int, steps: int, dtype: str = "f64"):
    """Euler-Maruyama on the isotropic score in GEMM form, numpy's own generator."""
    dt = _np_dtype(dtype)
    score = iso_score_numpy(gm.weights, gm.means, gm.covariances, dtype)
    ts, hs = _grid(steps)

    def run(state):
        rng = np.random.default_rng(1)
        y = rng.standard_normal((n, gm.dim), dtype=dt)
        for t, h in zip(ts, hs, strict=True):
            y = (y + dt(h) * (y + 2.0 * score(y, t)) + dt(np.sqrt(2.0 * h)) * rng.standard_normal(y.shape, dtype=dt))
        return y

    return run


def sampler_jax(gm, n: int, steps: int, dtype: str):
    """jit + lax.scan over the steps; noise from jax.random inside the scan."""
    jax = _jax()
    import jax.numpy as jnp

    dt = _np_dtype(dtype)
    score = _iso_score_jax(jnp, jnp.asarray(np.log(gm.weights), dt), jnp.asarray(gm.means, dt),
                           jnp.asarray(gm.covariances, dt), gm.dim)
    ts, hs = _grid(steps)
    ts, hs = jnp.asarray(ts, dt), jnp.asarray(hs, dt)

    @jax.jit
    def run_jax(key):
        k0, k1 = jax.random.split(key)
        y0 = jax.random.normal(k0, (n, gm.dim), dtype=dt)

        def step(y, inp):
            t, h, k = inp
            y = y + h * (y + 2.0 * score(y, t)) + jnp.sqrt(2.0 * h) * jax.random.normal(k, y.shape, dtype=dt)
            return y, None

        return jax.lax.scan(step, y0, (ts, hs, jax.random.split(k1, steps)))[0]

    return lambda s: np.asarray(run_jax(jax.random.key(1)).block_until_ready())


def sampler_torch(gm, n: int, steps: int, dtype: str, compile: bool = False):
    """torch, hand-written score (no autograd); ``compile``: the step under torch.compile,
    with the time and step size passed as 0-d tensors (Python floats would recompile the
    graph at every step)."""
    import torch

    dt = _torch_dtype(dtype)
    logw = torch.log(torch.as_tensor(gm.weights, dtype=dt))
    mu = torch.as_tensor(gm.means, dtype=dt)
    var = torch.as_tensor(gm.covariances, dtype=dt)
    mu2 = (mu * mu).sum(1)
    d = gm.dim
    ts, hs = _grid(steps)

    def step(y, noise, t, h):
        a, s2 = torch.exp(-t), -torch.expm1(-2.0 * t)
        v = a * a * var + s2
        sq = (y * y).sum(1, keepdim=True) - (2.0 * a) * (y @ mu.T) + (a * a) * mu2
        r = torch.softmax(logw - 0.5 * d * torch.log(v) - 0.5 * sq / v, dim=1) / v
        s = a * (r @ mu) - y * r.sum(1, keepdim=True)
        return y + h * (y + 2.0 * s) + torch.sqrt(2.0 * h) * noise

    if compile:
        step = torch.compile(step)
    tt = [torch.tensor(t, dtype=dt) for t in ts]
    hh = [torch.tensor(h, dtype=dt) for h in hs]

    def run(state):
        g = torch.Generator().manual_seed(1)
        y = torch.randn(n, d, dtype=dt, generator=g)
        with torch.no_grad():
            for t, h in zip(tt, hh, strict=True):
                y = step(y, torch.randn(n, d, dtype=dt, generator=g), t, h)
        return y.numpy()

    return run


# ----------------------------------------------------------------------------- empirical score
def empirical_score_jax(X, t: float, dtype: str, block: int = 1000):
    """Blocked over queries (lax.map), GEMM expansion of the squared distances."""
    jax = _jax()
    import jax.numpy as jnp

    dt = _np_dtype(dtype)
    a, s2 = float(np.exp(-t)), float(-np.expm1(-2.0 * t))
    c = jnp.asarray(a * X, dt)
    c2 = jnp.sum(c * c, axis=1)

    def blk(yb):
        d2 = jnp.maximum(jnp.sum(yb * yb, axis=1)[:, None] + c2[None, :] - 2.0 * yb @ c.T, 0.0)
        logits = -0.5 * d2 / s2
        w = jnp.exp(logits - logits.max(axis=1, keepdims=True))
        return ((w @ c) / w.sum(axis=1)[:, None] - yb) / s2

    @jax.jit
    def f(y):
        m, d = y.shape
        return jax.lax.map(blk, y.reshape(m // block, block, d)).reshape(m, d)

    return lambda y: np.asarray(f(jnp.asarray(y, dt)).block_until_ready())


def empirical_score_torch(X, t: float, dtype: str, block: int = 1000):
    import torch

    dt = _torch_dtype(dtype)
    a, s2 = float(np.exp(-t)), float(-np.expm1(-2.0 * t))
    c = torch.as_tensor(a * X, dtype=dt)
    c2 = (c * c).sum(1)

    def f(y):
        y = torch.as_tensor(y, dtype=dt)
        out = torch.empty_like(y)
        for b in range(0, len(y), block):
            yb = y[b:b + block]
            d2 = torch.clamp((yb * yb).sum(1)[:, None] + c2[None, :] - 2.0 * yb @ c.T, min=0.0)
            w = torch.softmax(-0.5 * d2 / s2, dim=1)
            out[b:b + block] = (w @ c - yb) / s2
        return out.numpy()

    return f


# ----------------------------------------------------------------------------- Hermite moments
def hermite_rolling_numpy(x: np.ndarray, degree: int, block: int = 1 << 16) -> np.ndarray:
    """Normalised probabilists' Hermite moments (1/N) sum_i He_n(x_i) / sqrt(n!) by the
    three-term recurrence rolled over whole blocks (two live arrays, one sum per degree):
    h_{n+1} = (x h_n - sqrt(n) h_{n-1}) / sqrt(n + 1)."""
    x = np.ravel(x)
    out = np.zeros(degree + 1)
    for b in range(0, len(x), block):
        xb = x[b:b + block]
        prev, cur = np.zeros_like(xb), np.ones_like(xb)
        out[0] += len(xb)
        for k in range(degree):
            prev, cur = cur, (xb * cur - np.sqrt(k) * prev) / np.sqrt(k + 1.0)
            out[k + 1] += cur.sum()
    return out / len(x)


def hermite_jax(degree: int, dtype: str):
    jax = _jax()
    import jax.numpy as jnp

    dt = _np_dtype(dtype)
    ks = jnp.arange(degree, dtype=dt)

    @jax.jit
    def f(x):
        def step(carry, k):
            prev, cur = carry
            nxt = (x * cur - jnp.sqrt(k) * prev) / jnp.sqrt(k + 1.0)
            return (cur, nxt), nxt.mean()

        _, sums = jax.lax.scan(step, (jnp.zeros_like(x), jnp.ones_like(x)), ks)
        return jnp.concatenate([jnp.ones(1, dt), sums])

    return lambda x: np.asarray(f(jnp.asarray(np.ravel(x), dt)).block_until_ready(), dtype=float)


# ----------------------------------------------------------------------------- DAE SGD
# One online-SGD step of the r = 2, tanh DAE (docs/dae.md, "Model and training"; the numpy
# twin is modelcollapse.reference.dae.sgd_step): x0 ~ N(0, I), x1 = mu_c + z, xt = (x0 + x1)/2,
# h = w^T xt / sqrt d, e = x1 - b xt - w tanh(h) / sqrt d, then
# w -= lr * (-2/sqrt d)(e s^T + xt back^T), back = (1 - s^2) w^T e / sqrt d; b -= lr/d^2 (-2 e.xt).
def dae_jax(means: np.ndarray, n_steps: int, lr: float, dtype: str):
    jax = _jax()
    import jax.numpy as jnp

    dt = _np_dtype(dtype)
    K, d = means.shape
    mu = jnp.asarray(means, dt)
    sd = float(np.sqrt(d))

    @jax.jit
    def run(key):
        kw, ks = jax.random.split(key)
        w0 = jax.random.normal(kw, (d, 2), dtype=dt)

        def step(carry, k):
            w, b = carry
            kc, k0, k1 = jax.random.split(k, 3)
            c = jax.random.randint(kc, (), 0, K)
            x0 = jax.random.normal(k0, (d,), dtype=dt)
            x1 = mu[c] + jax.random.normal(k1, (d,), dtype=dt)
            xt = 0.5 * x0 + 0.5 * x1
            s = jnp.tanh(w.T @ xt / sd)
            e = x1 - b * xt - w @ s / sd
            back = (1.0 - s * s) * (w.T @ e / sd)
            w = w + (2.0 * lr / sd) * (jnp.outer(e, s) + jnp.outer(xt, back))
            b = b + (2.0 * lr / d**2) * (e @ xt)
            return (w, b), None

        return jax.lax.scan(step, (w0, jnp.zeros((), dt)), jax.random.split(ks, n_steps))[0][0]

    return lambda s: np.asarray(run(jax.random.key(1)).block_until_ready(), dtype=float)


def dae_torch(means: np.ndarray, n_steps: int, lr: float, dtype: str):
    """Manual gradients (no autograd), one step per Python iteration."""
    import torch

    dt = _torch_dtype(dtype)
    K, d = means.shape
    mu = torch.as_tensor(means, dtype=dt)
    sd = float(np.sqrt(d))

    def run(state):
        g = torch.Generator().manual_seed(1)
        w = torch.randn(d, 2, dtype=dt, generator=g)
        b = 0.0
        cs = torch.randint(0, K, (n_steps,), generator=g).tolist()
        for c in cs:
            x0 = torch.randn(d, dtype=dt, generator=g)
            x1 = mu[c] + torch.randn(d, dtype=dt, generator=g)
            xt = 0.5 * (x0 + x1)
            s = torch.tanh(w.T @ xt / sd)
            e = x1 - b * xt - w @ s / sd
            back = (1.0 - s * s) * (w.T @ e / sd)
            w += (2.0 * lr / sd) * (torch.outer(e, s) + torch.outer(xt, back))
            b += (2.0 * lr / d**2) * float(e @ xt)
        return w.numpy().astype(float)

    return run


_DAE_LOOP_SRC = HERE / "dae_loop.cpp"


def _compile_dae_loop() -> ctypes.CDLL:
    """Build bench/dae_loop.cpp with g++ -O3 -march=native once per source version (cached in
    the temp folder); ImportError (a skip with a note) when there is no compiler."""
    cxx = os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        raise ImportError("no C++ compiler (g++) for the plain C++ DAE loop", name="g++")
    src = _DAE_LOOP_SRC.read_bytes()
    flags = ["-O3", "-march=native", "-shared", "-fPIC", "-std=c++17"]
    tag = hashlib.sha256(src + " ".join([cxx, *flags]).encode()).hexdigest()[:16]
    lib = Path(tempfile.gettempdir()) / f"modelcollapse_bench_dae_loop_{tag}.so"
    if not lib.exists():
        tmp = lib.with_suffix(f".{os.getpid()}.so")
        res = subprocess.run([cxx, *flags, str(_DAE_LOOP_SRC), "-o", str(tmp)], capture_output=True, text=True)
        if res.returncode != 0:
            raise ImportError(f"g++ failed on bench/dae_loop.cpp: {res.stderr[-300:]}", name="g++")
        os.replace(tmp, lib)
    dll = ctypes.CDLL(str(lib))
    dll.dae_loop.restype = None
    dll.dae_loop.argtypes = [ctypes.c_int, ctypes.c_long, ctypes.c_double, ctypes.c_int,
                             ctypes.c_void_p, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]
    return dll


def dae_cpp_loop(means: np.ndarray, n_steps: int, lr: float):
    """The plain C++ loop (xoshiro256+ and Marsaglia's polar method, one thread)."""
    state: dict[str, Any] = {}

    def run(s):
        if "dll" not in state:
            state["dll"] = _compile_dae_loop()
        K, d = means.shape
        mu = np.ascontiguousarray(means, dtype=float)
        w = np.empty((d, 2))
        b = np.zeros(1)
        state["dll"].dae_loop(d, n_steps, lr, K, mu.ctypes.data, 1, w.ctypes.data, b.ctypes.data)
        return w

    return run
