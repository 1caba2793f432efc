"""Guards for the Gaussian retraining theory that the other tests leave open (found by the
mutation check, .ci/mutate.py): Theorem 2's bound at small t, where the sum over rounds has
not yet converged to its plateau."""
from __future__ import annotations

import math

import numpy as np

from modelcollapse.retraining import gaussian as g


def test_theorem2_bound_at_small_t_equals_the_stated_sum():
    """Bertrand et al., Theorem 2: (eps_OPT + a/sqrt(n) sqrt(log(b t/delta))) sum_{l=0}^{t} rho^l
    + rho^t ||theta_0 - theta*|| (docs/retraining.md). The sum is written out term by term here;
    at t = 1..4 with rho = 0.5 it differs from its plateau 1/(1 - rho) by 25%..3%, so a sum with
    one term too few or too many is off by far more than rounding (rtol 1e-12)."""
    n, rho, a, b, delta, eps, e0 = 100, 0.5, 1.0, 2.0, 0.05, 0.01, 3.0
    t = np.arange(0, 5)
    got = g.theorem2_bound(t, n=n, rho=rho, a=a, b=b, delta=delta, eps_opt=eps, initial_error=e0)
    assert got[0] == e0
    for k in range(1, 5):
        stat = eps + a / math.sqrt(n) * math.sqrt(math.log(b * k / delta))
        expected = stat * sum(rho ** l for l in range(k + 1)) + rho ** k * e0
        assert abs(got[k] - expected) <= 1e-12 * expected
