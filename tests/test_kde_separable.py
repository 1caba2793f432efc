"""Exact grid KDE in 2-D with a diagonal bandwidth: the separable (matrix product) kernel of
kde.hpp against the numpy twin (modelcollapse.reference), its thread invariance, and its
fallbacks (coarse grids, samples outside the grid, kernels much narrower than the grid)."""
from __future__ import annotations

import numpy as np
import pytest

from modelcollapse import _core
from modelcollapse import metrics as M
from modelcollapse.reference import metrics as R


def _case(n, seed, spread=1.5):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, 2)) * spread + 0.3
    w = g.random(n)
    w[::7] = 0.0  # zero weights are skipped
    return x, w / w.sum()


# (grid per axis, diagonal H): the kernel resolved by the grid (the factor tables, h <= 1);
# a coarse axis (h > 1: direct exponentials); a kernel so narrow that a sample's window
# covers a few of the 6-row micro-blocks (the skipped samples); axis sizes not multiples of
# the 6 x 8 micro-tiles, and samples outside the grid (spread 1.5 over [-3, 4] x [-2, 5]).
# The last entry: the smallest density compared, relative to the kernel's peak, must be below it
# (so that the comparison reaches the tails each case has).
CASES = [
    (((-3.0, 4.0, 37), (-2.0, 5.0, 29)), np.diag([0.3 ** 2, 0.7 ** 2]), 1e-6),
    (((-3.0, 4.0, 13), (-2.0, 5.0, 61)), np.diag([0.2 ** 2, 0.15 ** 2]), 1e-30),
    (((-3.0, 4.0, 151), (-2.0, 5.0, 83)), np.diag([0.015 ** 2, 0.05 ** 2]), 1e-250),
]


@pytest.mark.parametrize("axes,H,deepest", CASES)
def test_separable_grid_matches_the_numpy_twin(axes, H, deepest):
    """The shipped kernel vs the reference's all-pairs sum at the same points: 1e-11 relative
    wherever the reference exceeds 1e-280 times the kernel's peak. Budget: moving the grid to
    an exact arithmetic progression changes a kept term by <= 1e-12 (metrics/_kde.py,
    _exact_grid_axes), and an exponent near the cutoff (690) carries ~690 x 4 ulp = 6e-13 of
    rounding in each implementation; measured: 1.4e-12 at 1e-280 of the peak, 4e-15 where
    the density is large. Terms below e^-690 of the peak are dropped (kde.hpp). A swapped
    bandwidth (hx for hy) or a factor table off by one grid step fails by orders of magnitude."""
    x, w = _case(400, 1)
    grid = M.Grid.regular([a[0] for a in axes], [a[1] for a in axes], [a[2] for a in axes])
    got = M.kde(x, grid, H, weights=w, threads=1)
    ref = R.kde_exact(x, w, H, grid.points()).reshape(grid.shape)
    norm = 1.0 / (2 * np.pi * np.sqrt(np.linalg.det(H)))
    keep = ref >= 1e-280 * norm
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-11, atol=0)
    assert np.all(got[~keep] <= 1e-270 * norm)
    assert np.min(ref[keep]) < deepest * norm  # the tails are really compared


@pytest.mark.parametrize("axes,H,deepest", CASES)
def test_separable_grid_is_identical_for_any_thread_count(axes, H, deepest):
    """Each output element sums the samples in order in one accumulator, whatever rows a
    worker takes: 1, 2 and 3 threads give the same bits (a worker writing its rows at a wrong
    offset, or summing a different sample order, breaks this)."""
    x, w = _case(3000, 2)
    spec = [(a[0], (a[1] - a[0]) / (a[2] - 1), a[2]) for a in axes]
    one = _core.kde_exact_grid(x, w, H, spec, 1)
    for t in (2, 3):
        assert np.array_equal(one, _core.kde_exact_grid(x, w, H, spec, t))


def test_diagonal_and_full_bandwidth_kernels_agree():
    """A diagonal H takes the separable kernel, an H with a 1e-300 off-diagonal entry the
    recurrence kernel: the same density to 1e-12 relative (they share no code past the
    window), so each checks the other on a larger case than the reference can afford."""
    x, w = _case(20000, 3, spread=1.0)
    H = np.diag([0.25 ** 2, 0.4 ** 2])
    Hr = H.copy()
    Hr[0, 1] = Hr[1, 0] = 1e-300
    spec = [(-4.0, 8.0 / 99, 100), (-4.0, 8.0 / 119, 120)]
    a = _core.kde_exact_grid(x, w, H, spec, 0)
    b = _core.kde_exact_grid(x, w, Hr, spec, 0)
    keep = b >= 1e-280 * b.max()
    np.testing.assert_allclose(a[keep], b[keep], rtol=1e-12, atol=0)
