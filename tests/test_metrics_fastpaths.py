"""The shortcuts that keep Python out of the kernels' way (issue 16, "the Python around the
kernels") give what the long way gives: the public binned KDE equals its compiled kernel
called with binned_plan's plan bit for bit, the plan's bound is the bound at its final
refinement, the finiteness check still refuses every NaN and inf (and still accepts finite
entries whose sum overflows), the scalar checks of a diagonal kernel covariance refuse what
the Cholesky checks refuse, and the cached Hermite index tables are per (d, degree) and
cannot be changed through a result."""
from __future__ import annotations

import numpy as np
import pytest

from modelcollapse import _core, hermite
from modelcollapse import metrics as M
from modelcollapse._validation import check_finite_array
from modelcollapse.metrics._kde import _check_kernel


def _axes(grid, plan):
    return [(float(ax[0]), float(s), int(ax.size), int(r), int(p))
            for ax, s, r, p in zip(grid.axes, grid.steps, plan["refine"], plan["pad"], strict=True)]


@pytest.mark.parametrize("d", [1, 2])
@pytest.mark.parametrize("tol", [None, 1e-3])
def test_public_binned_kde_is_its_kernel_with_the_documented_plan(d, tol):
    # kde() builds its plan without the error bound and without re-checking H; the values must
    # be those of the compiled kernel run on binned_plan's refinement, padding and radius.
    # 1-D 301 points (not a multiple of the kernel's 16 outputs a block: a tail), 2-D unequal axes.
    g = np.random.default_rng(8)
    x = g.normal(size=(1500, d)) * np.array([1.0, 0.6][:d])
    grid = M.Grid.regular([-5.0, -3.5][:d], [5.0, 3.0][:d], [301, 53][:d])
    h = 0.07 if tol is not None else 0.3  # refinement needed at tol=1e-3 (the test checks it)
    H = np.eye(d) * h * h
    plan = M.binned_plan(H, grid, tol)
    if tol is not None:
        assert np.all(plan["refine"] > 1)
    w = np.full(len(x), 1.0 / len(x))
    want = _core.kde_binned(x, w, H, _axes(grid, plan), plan["radius"], 1)
    got = M.kde(x, grid, h, method="binned", tol=tol, threads=1)
    assert np.array_equal(got, want)
    # the outputs are computed in blocks along the grid; threads split them in fixed chunks
    assert np.array_equal(got, M.kde(x, grid, h, method="binned", tol=tol, threads=2))
    # the plan's bound is the bound at the final refinement (reused from the loop)
    assert plan["bound"] == M.binned_error_bound(H, plan["fine_step"], plan["radius"])


def test_finiteness_check_refuses_every_nan_and_inf_and_accepts_an_overflowing_sum():
    big = np.full(4, 1e308)  # finite entries whose sum overflows: must pass
    assert np.array_equal(check_finite_array(big, "x"), big)
    for bad, count in (([1.0, np.nan, 2.0], 1), ([np.inf, -np.inf, 0.0], 2), ([1e308, 1e308, np.inf], 1),
                       ([[0.0, -np.inf]], 1)):
        with pytest.raises(ValueError, match=f"x contains {count} NaN or infinite"):
            check_finite_array(bad, "x")


@pytest.mark.parametrize("diag,match", [
    ([0.04], None), ([1e-298], None), ([0.04, 2.0], None),
    ([np.inf], "inf"), ([np.nan], "inf"), ([0.04, np.inf], "inf"),
    ([0.0], "not positive definite"), ([-1.0], "not positive definite"), ([0.04, -1e-300], "not positive definite"),
    ([1e-302], "too close to singular"), ([1.0, 4e-301], "too close to singular")])
def test_diagonal_kernel_checks_match_the_cholesky_checks(diag, match):
    # The scalar checks of a diagonal H (d <= 2) against the Cholesky checks of the same
    # diagonal padded with ones to 3 x 3 (d > 2 always takes the Cholesky path): the same
    # verdict and the same message.
    H = np.diag(diag)
    general = np.diag(diag + [1.0] * (3 - len(diag)))
    outcomes = []
    for mat in (H, general):
        try:
            _check_kernel(mat, "b")
            outcomes.append(None)
        except ValueError as exc:
            outcomes.append(str(exc))
    assert outcomes[0] == outcomes[1]
    if match is None:
        assert outcomes[0] is None
    else:
        assert outcomes[0] is not None and match in outcomes[0]


def test_hermite_tables_are_per_dimension_and_degree_and_not_shared_with_results():
    x = np.random.default_rng(2).normal(size=(400, 2))
    one = hermite.hermite_moments(x[:, 0], 4, threads=1)
    two = hermite.hermite_moments(x, 4, threads=1)  # same degree, other d: other tables
    assert one.indices.shape == (5, 1) and two.indices.shape == (15, 2)
    np.testing.assert_allclose(two.values, hermite.hermite_moments(x, 4, backend="numpy").values,
                               rtol=1e-12, atol=1e-12)
    two.indices[1, 0] = 7  # a user's change to a result must not reach the next call
    again = hermite.hermite_moments(x, 4, threads=1)
    assert again.indices[1, 0] == 1 and np.array_equal(again.values, two.values)


@pytest.mark.parametrize("degree", [0, 1, 6])
@pytest.mark.parametrize("backend", ["cpp", "numpy"])
def test_hermite_moments_refuse_a_nan_or_inf_sample_after_the_kernel(degree, backend):
    # the samples' finiteness is checked after the compiled kernel (its degree-1 moments show a
    # bad sample), before it at degree 0 and for the numpy backend: the same error every way
    x = np.random.default_rng(3).normal(size=(300, 2))
    for bad in (np.nan, np.inf, -np.inf):
        y = x.copy()
        y[17, 1] = bad
        with pytest.raises(ValueError, match="x contains 1 NaN or infinite"):
            hermite.hermite_moments(y, degree, threads=1, backend=backend)
    # finite samples whose moments overflow keep their own error
    with pytest.raises(ValueError, match="x too large for degree"):
        hermite.hermite_moments(np.full(10, 1e300), 3, threads=1)


def test_binned_kde_large_grid_takes_the_threaded_path_with_the_same_numbers():
    # below ~4e6 multiply-adds the binned kernel runs on one thread (kde.hpp, `binned`); this
    # grid (20001 points x thousands of taps) is above it, so threads=2 really splits the chunks
    x = np.random.default_rng(3).normal(size=2000)
    grid = M.Grid.regular([-5.0], [5.0], [20001])
    plan = M.binned_plan(np.eye(1) * 0.09, grid, None)
    assert grid.axes[0].size * (2 * plan["pad"][0] + 1) > 4e6
    one = M.kde(x, grid, 0.3, method="binned", tol=None, threads=1)
    assert np.array_equal(one, M.kde(x, grid, 0.3, method="binned", tol=None, threads=2))
