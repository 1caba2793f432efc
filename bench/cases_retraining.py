"""Gaussian retraining chains: C++ kernel (ARS-7, threaded) vs its numpy reference twin (same
ARS-7 streams in numpy) vs the vectorised numpy loop a user would write (numpy's own
generator, batched over chains), and the generic loop with GaussianLearner (one chain per
run, what `run_retraining` costs per round)."""
from __future__ import annotations

import math

import numpy as np

from modelcollapse.reference import retraining as ref
from modelcollapse.retraining import GaussianLearner, gaussian, run_retraining
from run import Case


def _user_numpy(n, T, C, d, lam, seed=0):
    """Vectorised over chains with numpy's generator: what one writes without the library."""
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((C, n, d))
    m = n if math.isinf(lam) else int(lam * n)
    mu, cov = ref.fit_gaussian(real)
    out = np.empty((C, T + 1, d, d))
    out[:, 0] = cov
    for t in range(1, T + 1):
        L = np.linalg.cholesky(cov)
        synth = np.einsum("cij,cmj->cmi", L, rng.standard_normal((C, m, d))) + mu[:, None]
        pool = synth if math.isinf(lam) else np.concatenate([real, synth], axis=1)
        mu, cov = ref.fit_gaussian(pool)
        out[:, t] = cov
    return out


def _check(tol):
    def check(outs):
        a, b = outs["cpp"], outs["numpy"]
        err = np.max(np.abs(a - b)) / np.max(np.abs(b))
        if err > tol:
            raise AssertionError(f"cpp and numpy reference differ: {err:.3g}")
    return check


def cases(quick: bool) -> list[Case]:
    out = []
    for d, lam in ((1, math.inf), (2, 1.0)):
        n, T, C = (20, 20, 500) if quick else (20, 100, 4000)
        m = n if math.isinf(lam) else int(lam * n)
        work = C * T * (m + (0 if math.isinf(lam) else n))
        args = dict(data_mean=np.zeros(d), data_cov=np.eye(d), n=n, rounds=T, n_chains=C, synthetic_ratio=lam, seed=1)
        out.append(Case(
            name=f"gaussian_chains d={d} lam={lam:g} C={C} T={T}",
            setup=lambda args=args: args,
            impls={
                "cpp": lambda a: gaussian.simulate_chains(**a, threads=0).covs,
                "cpp_1t": lambda a: gaussian.simulate_chains(**a, threads=1).covs,
                "numpy": lambda a: gaussian.simulate_chains(**a, backend="numpy").covs,
                "numpy_user": lambda a, n=n, T=T, C=C, d=d, lam=lam: _user_numpy(n, T, C, d, lam),
            },
            work=work, unit="sample-rounds", baseline="numpy", check=_check(1e-9),
            params=dict(n=n, rounds=T, n_chains=C, d=d, synthetic_ratio=lam),
        ))
    # the generic loop: one chain, per-round overhead (checkpoint-free, no metrics)
    real = np.random.default_rng(0).standard_normal((200, 2))
    T = 20 if quick else 100
    out.append(Case(
        name=f"run_retraining gaussian n=200 T={T} (1 chain)",
        setup=lambda: real,
        impls={"loop": lambda r: run_retraining(GaussianLearner(), r, T, synthetic_ratio=1.0, metrics=(),
                                                progress=False, keep_states=False).table},
        work=T, unit="rounds", baseline="loop", project="loop",
    ))
    return out
