"""DAE online SGD and generative sampler: C++ kernel vs numpy reference vs torch (CPU,
single-sample steps with autograd, as a user would write it), plus the RNG-bound limit
(drawing the 2 d normals of each step alone, rng::fill_normals, one thread).

The single-replica 'cpp' cases use the default threads=0: with more threads than replicas
the spare thread shares the drawing of the normals and runs a block ahead of the SGD thread
(dae::BlockPrefetcher), which is what they measure; 'cpp_1thread' is the same run without
the helper (bench/dae_threads.cpp splits the two-thread run: who drew what, who waited).

Peers (bench/peers.py): a plain C++ loop (xoshiro256+ and the polar method, g++ -O3
-march=native, one thread), JAX (jit + lax.scan over steps, f64 and f32) and torch with
hand-written gradients (f64, f32); the autograd torch loop of before is kept as "torch
autograd f64". 'numpy' (the package's reference loop) and 'rng_only' are references."""
from __future__ import annotations

import numpy as np

import limits
import peers
from modelcollapse import _core, dae
from modelcollapse.reference import dae as ref
from run import Case


def _target(d):
    means = np.zeros((3, d))
    ang = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
    means[:, 0], means[:, 1] = 3 * np.cos(ang), 3 * np.sin(ang)
    return dae.isotropic_mixture(means, 1.0)


def _cpp(tg, n, replicas=1, threads=0):
    return lambda s: dae.train(tg, r=2, n_steps=n, lr=0.2, replicas=replicas, threads=threads, seed=1,
                               record_every=n).Q[:, -1]


def _numpy(tg, n):
    def fn(s):
        d = tg.d
        w0 = np.random.default_rng(0).standard_normal((d, 2))
        return ref.train(tg.means, tg.scales, tg.weights, w0, 0.0, np.zeros(2), n, lr=0.2,
                         rng=np.random.default_rng(1))
    return fn


def _rng_only(d, n):
    return lambda s: _core.normals(1, 0, 0, 1, 2 * d * n, 0, 1)


def _torch(tg, n):
    import torch

    torch.set_num_threads(1)
    d = tg.d
    means = torch.tensor(tg.means)
    cum = np.cumsum(tg.weights)

    def fn(s):
        g = torch.Generator().manual_seed(1)
        w = torch.randn(d, 2, dtype=torch.float64, generator=g).requires_grad_(True)
        b = torch.zeros((), dtype=torch.float64, requires_grad=True)
        lr, sd = 0.2, d**0.5
        rng = np.random.default_rng(2)
        for _ in range(n):
            c = int(np.searchsorted(cum, rng.random(), side="right"))
            x0 = torch.randn(d, dtype=torch.float64, generator=g)
            x1 = means[min(c, 2)] + torch.randn(d, dtype=torch.float64, generator=g)
            xt = 0.5 * x0 + 0.5 * x1
            f = b * xt + w @ torch.tanh(w.T @ xt / sd) / sd
            loss = ((x1 - f) ** 2).sum()
            gw, gb = torch.autograd.grad(loss, (w, b))
            with torch.no_grad():
                w -= lr * gw
                b -= lr / d**2 * gb
        return w.detach().numpy()

    return fn


def _peers(tg, n, with_torch=True):
    impls = {"C++ loop f64": peers.dae_cpp_loop(tg.means, n, 0.2)}
    for dt in ("f64", "f32"):
        impls[f"jax {dt}"] = peers.dae_jax(tg.means, n, 0.2, dt)
        if with_torch:
            impls[f"torch {dt}"] = peers.dae_torch(tg.means, n, 0.2, dt)
    return impls


def _same_scale(outs):
    """The runs draw different samples: compare what SGD has learnt in law only. Each
    output is w (d, 2) or Q = w^T w / d: every implementation must give a finite Q whose
    trace is within a factor 2 of the project's (starting from Q ~ I, 4000 steps at lr 0.2
    move it by O(1); a wrong sign or scale in the update diverges or collapses it)."""
    def trace(o):
        o = np.asarray(o, dtype=float)
        if o.ndim == 2 and o.shape[1] == 2 and o.shape[0] > 2:  # w (d, 2)
            return float(np.trace(o.T @ o) / o.shape[0])
        return float(np.trace(o.reshape(-1, 2, 2)[0]))  # Q (replicas, 2, 2)
    ref = trace(outs["cpp"]) if "cpp" in outs else None
    for k, v in outs.items():
        tr = trace(v)
        if not np.isfinite(tr) or (ref and not 0.5 * ref <= tr <= 2.0 * ref):
            raise AssertionError(f"{k}: trace of Q {tr:.4g}, project {ref}")


def cases(quick: bool) -> list[Case]:
    out = []
    n1 = 500 if quick else 4000
    tg = _target(1000)
    impls = {"numpy": _numpy(tg, n1), "cpp": _cpp(tg, n1), "cpp_1thread": _cpp(tg, n1, threads=1),
             "rng_only": _rng_only(1000, n1), **_peers(tg, n1)}
    impls["torch autograd f64"] = _torch(tg, n1)

    def check1(o):
        np.testing.assert_array_equal(o["cpp"], o["cpp_1thread"])
        _same_scale({k: v for k, v in o.items() if k not in ("numpy", "rng_only", "cpp_1thread")})

    out.append(Case("dae_sgd d=1000 r=2 tanh", lambda: None, impls, work=n1, unit="steps", check=check1,
                    refs=("numpy", "rng_only"), limit=limits.dae_sgd(1000),
                    params={"d": 1000, "r": 2, "steps": n1, "threads": "cpp: 0 (auto), others: 1"}))
    for d, n in ((10_000, 100 if quick else 600), (100_000, 20 if quick else 60)):
        tg = _target(d)
        out.append(Case(f"dae_sgd d={d} r=2 tanh", lambda: None,
                        {"numpy": _numpy(tg, n), "cpp": _cpp(tg, n), "cpp_1thread": _cpp(tg, n, threads=1),
                         "rng_only": _rng_only(d, n), **_peers(tg, n, with_torch=d <= 10_000)},
                        work=n, unit="steps", refs=("numpy", "rng_only"), limit=limits.dae_sgd(d),
                        params={"d": d, "r": 2, "steps": n, "threads": "cpp: 0 (auto), others: 1"}))
    reps, n = 8, (300 if quick else 3000)
    tg = _target(1000)
    out.append(Case("dae_sgd replicas=8 d=1000: 2 threads vs 1", lambda: None,
                    {"cpp_1thread": _cpp(tg, n, reps, 1), "cpp_2thread": _cpp(tg, n, reps, 2)},
                    work=reps * n, unit="steps", baseline="cpp_1thread", project="cpp_2thread",
                    limit=limits.dae_sgd(1000),
                    check=lambda o: np.testing.assert_array_equal(o["cpp_1thread"], o["cpp_2thread"]),
                    params={"d": 1000, "r": 2, "replicas": reps, "steps": n}))
    # generative sampler, injected noise so that both implementations agree
    d, ns = 1000, (100 if quick else 400)
    sch = dae.sampler_schedule(50, 0.95, gamma=0.1)
    rng = np.random.default_rng(0)
    w = rng.standard_normal((d, 2))

    def setup():
        return rng.standard_normal((ns, len(sch.delta) + 1, d))

    def gen(backend):
        return lambda noise: dae.generate(w, 0.9, n_samples=ns, schedule=sch, noise=noise, return_full=True,
                                          threads=1, backend=backend)["X"]

    out.append(Case("dae_sampler d=1000 r=2 50 steps", setup, {"numpy": gen("numpy"), "cpp": gen("cpp")},
                    work=ns * len(sch.delta), unit="sample-steps",
                    check=lambda o: np.testing.assert_allclose(o["cpp"], o["numpy"], rtol=1e-9, atol=1e-9),
                    params={"d": d, "samples": ns, "threads": 1, "noise": "injected (n, steps + 1, d) array"}))

    # as a user runs it: each implementation draws its own noise (numpy's generator vs the
    # in-kernel ARS-7), so the outputs agree in law only: compare the mean of |Z|^2
    def gen_own(backend):
        return lambda s: dae.generate(w, 0.9, n_samples=ns, schedule=sch, seed=3, threads=1,
                                      backend=backend)["Z"]

    def same_law(o):
        m = {k: float(np.mean(np.sum(z**2, axis=1))) for k, z in o.items()}
        assert abs(m["cpp"] / m["numpy"] - 1) < 0.2, m

    out.append(Case("dae_sampler d=1000 r=2 50 steps, own noise", lambda: None,
                    {"numpy": gen_own("numpy"), "cpp": gen_own("cpp")},
                    work=ns * len(sch.delta), unit="sample-steps", check=same_law,
                    params={"d": d, "samples": ns, "threads": 1, "noise": "drawn inside"}))
    return out
