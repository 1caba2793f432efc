"""The three compiled Hermite-moment kernels against the numpy twin (modelcollapse.reference):
the fused 1-D chain (the sequence h_0..h_D), the fused d-D kernel (products of one value per
coordinate: per block of 128 samples the values, then the sums in register tiles) and the generic two-pass kernel (index tables
beyond the fused kernel's size); each bit-identical for any thread count.

Tolerance (as tests/truncation/test_hermite.py): |cpp - numpy| <= 1e-12 RMS(h_alpha) + 1e-12 |numpy|
(RMS from the twin's own mean of h_alpha^2): both sum the same n terms in different orders and
with different recurrences (scaled monic in the fused kernels, orthonormal in the twin), ~n eps
relative to the terms' size at worst; the squares' means to rtol 1e-9."""
from __future__ import annotations

import numpy as np
import pytest

from modelcollapse import hermite as hm
from modelcollapse.reference import hermite as ref

# the largest table the fused d-D kernel takes (kHermFusedMaxMoments, cpp hermite.hpp): beyond,
# the generic kernel
FUSED_MAX_MOMENTS = 8192


def _check_against_twin(x: np.ndarray, degree: int) -> None:
    """Means without and with the squares (the kernels have a loop for each), then the SEs."""
    a = hm.hermite_moments(x, degree, backend="cpp")
    a_se = hm.hermite_moments(x, degree, std_errors=True, backend="cpp")
    mean, sq = ref.hermite_moments(x, a.indices, with_squares=True)
    rms = np.sqrt(sq)
    for v in (a.values, a_se.values):
        assert np.all(np.abs(v - mean) <= 1e-12 * rms + 1e-12 * np.abs(mean)), np.max(np.abs(v - mean) / rms)
    b = hm.hermite_moments(x, degree, std_errors=True, backend="numpy")
    np.testing.assert_allclose(a_se.std_errors, b.std_errors, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("d,degree", [(2, 1), (2, 4), (2, 10), (2, 30), (4, 5)])
def test_fused_kernel_equals_the_twin(d, degree):
    """2-D at several degrees (30: the scaled values are rescaled on the way, T = 24 bits), 4-D;
    n = 1037 leaves a tail of 13 samples that the kernel pads with zeros. A law off N(0, I) so
    that no moment is near 0 by symmetry. Kills a dropped lane or term in the fused sums, a
    wrong monic coefficient, a missing rescale of g_{k-1}, a wrong scale factor."""
    rng = np.random.default_rng(d * 100 + degree)
    x = rng.normal(size=(1037, d)) * 1.1 + np.linspace(-0.4, 0.5, d)
    assert len(hm.multi_indices(d, degree)) <= FUSED_MAX_MOMENTS
    _check_against_twin(x, degree)


def test_fused_kernel_partial_block_equals_the_twin():
    """3-D degree 6: prefixes that are products of two coordinates' values, register tiles whose
    rows have runs of different lengths (28 prefixes, runs 1 to 7 long), and n = 3 x 128 + 45: a
    last block of two full 16-sample groups and a padded one. Kills a tile that writes past a
    prefix's run or drops a column, a block that sums past its samples, a wrong product row."""
    x = np.random.default_rng(5).normal(size=(3 * 128 + 45, 3)) * 1.05 + [0.3, -0.2, 0.1]
    _check_against_twin(x, 6)


def test_fused_1d_chain_high_degree_equals_the_twin():
    """1-D degree 150: the scaled monic recurrence rescales g_k and g_{k-1} by powers of two
    every ~20 degrees (T = 32); each rescale and scale factor enters the comparison."""
    x = np.random.default_rng(3).normal(size=(2051, 1)) * 1.2 + 0.3
    _check_against_twin(x, 150)


def test_generic_kernel_beyond_the_fused_size_equals_the_twin():
    """d = 2, degree 127: 8256 multi-indices, more than the fused kernel takes, so the generic
    two-pass kernel (orthonormal recurrence, values buffer) runs: it stays checked."""
    assert len(hm.multi_indices(2, 127)) > FUSED_MAX_MOMENTS
    x = np.random.default_rng(4).normal(size=(67, 2)) * 0.9 + [0.2, -0.1]
    _check_against_twin(x, 127)


@pytest.mark.parametrize("d,degree", [(1, 40), (2, 12), (3, 5)])
def test_thread_count_does_not_change_any_kernel(d, degree):
    """Chunks depend on n only and their sums are added in chunk order: bit-identical means and
    squares for 1, 2 and 3 threads (n = 150_011: 64 chunks and a tail)."""
    x = np.random.default_rng(d).normal(size=(150_011, d))
    outs = [hm.hermite_moments(x, degree, std_errors=True, threads=t) for t in (1, 2, 3)]
    for o in outs[1:]:
        assert np.array_equal(o.values, outs[0].values)
        assert np.array_equal(o.std_errors, outs[0].std_errors)
