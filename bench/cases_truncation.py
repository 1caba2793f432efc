"""Bench: Hermite moments from samples (compiled kernel vs blocked numpy reference and
numpy.polynomial.hermite_e), N = 10^6: 1-D degrees 0-30 and 2-D total degree <= 10.

Peers (bench/peers.py): the rolling three-term recurrence in numpy (two live arrays per
block, the best-vectorised numpy), and the same recurrence under JAX (jit + lax.scan over
degrees), float64 and float32. 'numpy' (the package's blocked reference) is a reference."""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import hermite_e

import limits
import peers
from modelcollapse import hermite as hm
from modelcollapse.reference import hermite as ref
from run import Case


def _hermite_e_1d(x, degree):
    # what a user would write with numpy's Hermite_e module (Vandermonde, blocked), normalised
    out = np.zeros(degree + 1)
    for b in range(0, len(x), 65536):
        out += hermite_e.hermevander(x[b:b + 65536], degree).sum(axis=0)
    fact = np.array([math.sqrt(math.factorial(n)) for n in range(degree + 1)])
    return out / len(x) / fact


def _check(outs):
    # float32 peers: 1e-7 relative per recurrence step over 30 degrees of |He_n| / sqrt(n!)
    # values up to ~1e3 at |x| ~ 6 gives ~1e-3 in the largest moments
    base = outs["numpy"]
    for k, v in outs.items():
        tol = 3e-3 if "f32" in k else 1e-9
        np.testing.assert_allclose(v, base, rtol=tol, atol=tol, err_msg=k)


def cases(quick: bool) -> list[Case]:
    n = 100_000 if quick else 1_000_000
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(n, 1)) * 1.2 + 0.3
    x2 = rng.normal(size=(n, 2))
    idx1 = hm.multi_indices(1, 30)
    idx2 = hm.multi_indices(2, 10)
    return [
        Case(name="hermite_1d_deg30", setup=lambda: x1,
             impls={"cpp": lambda x: hm.hermite_moments(x, 30).values,
                    "cpp_1thread": lambda x: hm.hermite_moments(x, 30, threads=1).values,
                    "numpy": lambda x: ref.hermite_moments(x, idx1)[0],
                    "numpy_hermite_e f64": lambda x: _hermite_e_1d(x[:, 0], 30),
                    "numpy rolling f64": lambda x: peers.hermite_rolling_numpy(x, 30),
                    "numpy rolling f32": lambda x: peers.hermite_rolling_numpy(x.astype(np.float32), 30),
                    "jax f64": peers.hermite_jax(30, "f64"),
                    "jax f32": peers.hermite_jax(30, "f32")},
             work=n * 31, unit="sample-moments", check=_check, refs=("numpy",), limit=limits.hermite(),
             params={"n": n, "degree": 30, "d": 1}),
        Case(name="hermite_2d_deg10", setup=lambda: x2,
             impls={"cpp": lambda x: hm.hermite_moments(x, 10).values,
                    "cpp_1thread": lambda x: hm.hermite_moments(x, 10, threads=1).values,
                    "numpy": lambda x: ref.hermite_moments(x, idx2)[0]},
             work=n * len(idx2), unit="sample-moments", check=_check, refs=("numpy",),
             limit=limits.hermite_2d(10), params={"n": n, "degree": 10, "d": 2}),
    ]
