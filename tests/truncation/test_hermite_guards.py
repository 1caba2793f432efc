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


def test_fused_one_dimensional_kernel_matches_reference_and_generic_path():
    # 1-D tables (h_0 .. h_D) run the fused kernel: 16 samples per pass and a padded tail
    # (n = 5000 + 7), with squares; the generic kernel is reached through the same table
    # embedded in d = 2 (second coordinate never used). Both against the numpy reference.
    from modelcollapse import _core
    from modelcollapse.reference import hermite as ref_h
    from modelcollapse.truncation._hermite_basis import index_table

    x = np.random.default_rng(8).normal(0.3, 1.2, size=(5007, 1))
    idx = np.arange(31)[:, None]
    parent, dim, order = index_table(idx)
    mean, sq = _core.hermite_moments(x, parent, dim, order, True, 1)
    want_mean, want_sq = ref_h.hermite_moments(x, idx, with_squares=True)
    np.testing.assert_allclose(mean, want_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sq, want_sq, rtol=1e-10, atol=1e-12)
    x2 = np.hstack([x, np.zeros_like(x)])
    g_mean, g_sq = _core.hermite_moments(x2, parent, dim, order, True, 1)
    np.testing.assert_allclose(mean, g_mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sq, g_sq, rtol=1e-12, atol=1e-14)
    for threads in (2, 3):
        np.testing.assert_array_equal(_core.hermite_moments(x, parent, dim, order, True, threads)[0], mean)
