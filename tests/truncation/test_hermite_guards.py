"""Guards for the Hermite moments that the other tests leave open (found by the mutation
check, .ci/mutate.py): the standard errors are those of the sample mean of h_alpha."""
from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.polynomial import hermite_e as He

from modelcollapse import hermite as hm


@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_standard_errors_are_the_sample_std_over_sqrt_n(backend):
    """SE_alpha = std(h_alpha(x_i), ddof=1) / sqrt(n), with h_alpha built here from numpy's
    HermiteE (He_m / sqrt(m!), products over coordinates). The law N((1, -0.5), diag(0.25, 0.5))
    is far from N(0, I), so the moments are large (|g| up to 0.9) and an SE taken from the
    uncentred E[h^2] would be off by up to a factor 2; rtol 1e-9 is rounding of sums of
    2000 terms."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2000, 2)) * np.sqrt([0.25, 0.5]) + [1.0, -0.5]
    m = hm.hermite_moments(x, 4, std_errors=True, backend=backend)
    h = np.ones((len(m.indices), len(x)))
    for i in range(2):
        for k, alpha in enumerate(m.indices):
            c = np.zeros(alpha[i] + 1)
            c[-1] = 1.0 / math.sqrt(math.factorial(int(alpha[i])))
            h[k] *= He.hermeval(x[:, i], c)
    np.testing.assert_allclose(m.values, h.mean(axis=1), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(m.std_errors, h.std(axis=1, ddof=1) / math.sqrt(len(x)), rtol=1e-9, atol=1e-15)
    assert np.max(np.abs(m.values[1:])) > 0.5  # far from N(0, I): centring matters here
