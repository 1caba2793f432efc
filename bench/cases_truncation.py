"""Bench: Hermite moments from samples (compiled kernel vs blocked numpy reference and
numpy.polynomial.hermite_e), N = 10^6: 1-D degrees 0-30 and 2-D total degree <= 10."""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import hermite_e

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
    base = outs["numpy"]
    for k, v in outs.items():
        np.testing.assert_allclose(v, base, rtol=1e-9, atol=1e-9, err_msg=k)


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
                    "numpy_hermite_e": lambda x: _hermite_e_1d(x[:, 0], 30)},
             work=n * 31, unit="sample-moments", check=_check, params={"n": n, "degree": 30, "d": 1}),
        Case(name="hermite_2d_deg10", setup=lambda: x2,
             impls={"cpp": lambda x: hm.hermite_moments(x, 10).values,
                    "cpp_1thread": lambda x: hm.hermite_moments(x, 10, threads=1).values,
                    "numpy": lambda x: ref.hermite_moments(x, idx2)[0]},
             work=n * len(idx2), unit="sample-moments", check=_check, params={"n": n, "degree": 10, "d": 2}),
    ]
