"""Metrics: KDE vs scipy, binned vs exact within the stated bound, Hellinger/KL/TV against
closed forms, Wasserstein (exact, 1-D, sliced) vs POT and Gaussian closed forms,
precision/recall on constructed cases, property tests and bad inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.stats import gaussian_kde

from modelcollapse import _core
from modelcollapse import metrics as M
from modelcollapse.reference import metrics as R


def rng(seed=0):
    return np.random.default_rng(seed)


# ----------------------------------------------------------------------------- exact KDE
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("rule", ["scott", "silverman"])
@pytest.mark.parametrize("weighted", [False, True])
def test_exact_kde_matches_scipy(d, rule, weighted):
    g = rng(d)
    x = g.normal(size=(400, d)) @ (np.eye(d) + 0.3 * np.tri(d, k=-1))
    w = g.random(400) if weighted else None
    ref = gaussian_kde(x.T, bw_method=rule, weights=w)
    pts = g.normal(size=(300, d)) * 2.5
    expected = ref(pts.T)
    for backend in ("cpp", "numpy"):
        got = M.kde(x, pts, rule, weights=w, backend=backend)
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=0)
    np.testing.assert_allclose(M.kde_bandwidth(x, rule, weights=w), ref.covariance, rtol=1e-12)


def test_exact_kde_factor_and_grid_shapes():
    g = rng(1)
    x = g.normal(size=(300, 2))
    ref = gaussian_kde(x.T, bw_method=lambda k: 1.5 * k.silverman_factor())
    grid = M.Grid.regular([-3, -2], [3, 2], [31, 21])
    got = M.kde(x, grid, "silverman", factor=1.5)
    assert got.shape == (31, 21)
    np.testing.assert_allclose(got.ravel(), ref(grid.points().T), rtol=1e-10)
    # A tuple of axes is the same grid; a float bandwidth is an isotropic kernel std.
    np.testing.assert_allclose(M.kde(x, grid.axes, "silverman", factor=1.5), got, rtol=0, atol=0)
    iso = M.kde(x, grid, 0.4)
    np.testing.assert_allclose(iso, M.kde(x, grid, np.eye(2) * 0.16), rtol=1e-14)


def test_exact_kde_thread_count_does_not_matter():
    g = rng(2)
    x = g.normal(size=(2000, 2))
    pts = g.normal(size=(500, 2))
    assert np.array_equal(M.kde(x, pts, threads=1), M.kde(x, pts, threads=3))


def _assert_matches_scipy_with_tails(got, ref, norm):
    """1e-10 relative wherever f / norm >= 1e-285 (kde.hpp's cutoff leaves 1.8e-300 of
    slack), and the grid must reach far tails, so that they are really checked."""
    got, ref = np.ravel(got), np.ravel(ref)
    keep = ref >= 1e-285 * norm
    np.testing.assert_allclose(got[keep], ref[keep], rtol=1e-10, atol=0)
    assert np.min(ref[keep]) < 1e-150 * norm  # far tails are in the comparison
    assert np.all(got[~keep] <= 1e-280 * norm)


@pytest.mark.parametrize("weighted", [False, True])
def test_exact_kde_grid_1d_matches_scipy_far_tails(weighted):
    # 1-D grid path: > 512 points per sample run (restarts), tails down to ~1e-280.
    g = rng(11)
    x = np.concatenate([g.normal(-1, 0.4, 700), g.normal(2, 1.0, 500)])
    w = g.random(x.size) if weighted else None
    for rule, lo, hi, m in (("scott", -14.0, 16.0, 3001), ("silverman", -16.0, 18.0, 257)):
        ref = gaussian_kde(x, bw_method=rule, weights=w)
        grid = M.Grid.regular(lo, hi, m)
        got = M.kde(x, grid, rule, weights=w)
        norm = 1.0 / math.sqrt(2 * math.pi * ref.covariance[0, 0])
        _assert_matches_scipy_with_tails(got, ref(grid.axes[0]), norm)


@pytest.mark.parametrize("corr", [0.0, 0.6, 0.97])
def test_exact_kde_grid_2d_matches_scipy_far_tails(corr):
    # 2-D grid path (full bandwidth: rows are shifted 1-D Gaussians), > 64 rows (restarts),
    # strong correlation (many columns enter the window on each row), weights, far tails.
    g = rng(12)
    C = np.array([[1.0, corr], [corr, 1.0]]) * np.array([[1.0], [0.7]]) * np.array([1.0, 0.7])
    x = g.multivariate_normal([0.5, -0.3], C, size=600)
    w = g.random(600)
    ref = gaussian_kde(x.T, bw_method="scott", weights=w)
    grid = M.Grid.regular([-12.0, -10.0], [13.0, 9.0], [131, 83])
    got = M.kde(x, grid, "scott", weights=w)
    assert got.shape == (131, 83)
    norm = 1.0 / (2 * math.pi * math.sqrt(np.linalg.det(ref.covariance)))
    _assert_matches_scipy_with_tails(got, ref(grid.points().T), norm)
    # the points path (one exp per pair) gives the same values
    _assert_matches_scipy_with_tails(got, M.kde(x, grid.points(), "scott", weights=w), norm)


def test_exact_kde_grid_thread_count_and_fallback():
    g = rng(13)
    x = g.normal(size=(5000, 2)) * [1.0, 0.5]
    grid = M.Grid.regular([-4, -3], [4, 3], [60, 50])
    a = M.kde(x, grid, threads=1)
    assert np.array_equal(a, M.kde(x, grid, threads=3))  # fixed sample parts, fixed reduction order
    x1 = x[:, 0]
    axis = np.linspace(-5, 5, 700)
    assert np.array_equal(M.kde(x1, axis, threads=1), M.kde(x1, axis, threads=2))
    # an axis that is not an exact arithmetic progression takes the points path
    bumpy = axis.copy()
    bumpy[1:-1] += 1e-9
    ref = gaussian_kde(x1)
    np.testing.assert_allclose(M.kde(x1, bumpy), ref(bumpy), rtol=1e-10)
    assert M._exact_grid_axes(M.Grid((bumpy,)), ref.covariance) is None
    assert M._exact_grid_axes(M.Grid((axis,)), ref.covariance) is not None


# ----------------------------------------------------------------------------- binned KDE
@pytest.mark.parametrize("case", ["1d", "2d-diag", "2d-full"])
def test_binned_within_stated_bound_and_matches_reference(case):
    g = rng(3)
    if case == "1d":
        x = np.concatenate([g.normal(-2, 0.5, 1500), g.normal(1, 1.0, 1500)])
        grid = M.Grid.regular(-6, 6, 400)
        bw = "scott"
    else:
        x = g.normal(size=(2000, 2)) @ np.array([[1.0, 0.0], [0.6, 0.5]])
        grid = M.Grid.regular([-5, -4], [5, 4], [81, 61])
        bw = "scott" if case == "2d-full" else 0.3
    H = M.kde_bandwidth(x, bw)
    plan = M.binned_plan(H, grid, 1e-3)
    assert plan["bound"] <= 1e-3
    exact = M.kde(x, grid, bw)
    binned = M.kde(x, grid, bw, method="binned")
    h = M.hellinger_grid(exact, binned, grid.cell_volume)
    assert h <= plan["bound"]
    assert h > 0  # binning does change the estimate
    ref = M.kde(x, grid, bw, method="binned", backend="numpy")
    np.testing.assert_allclose(binned, ref, rtol=0, atol=1e-12 * binned.max())


def test_binned_full_bandwidth_fft_equals_direct_sum_and_stays_within_bound():
    # A full H takes the FFT path (metrics/_kde.py): it must equal the C++ direct 2-D sum
    # over the ellipse (an independent implementation) up to FFT rounding, ~1e-15 of the peak
    # (1e-12 leaves room for the log of the transform length), and stay within the stated
    # Hellinger bound of the exact KDE. Unequal axes (counts, steps, refinements, variances)
    # so that swapping axes or residues anywhere shows.
    g = rng(21)
    x = g.normal(size=(3000, 2)) @ np.array([[1.0, 0.0], [0.6, 0.7]])
    grid = M.Grid.regular([-4.5, -4.0], [4.5, 4.0], [37, 51])
    H = M.kde_bandwidth(x)
    plan = M.binned_plan(H, grid, 1e-3)
    assert plan["refine"][0] != plan["refine"][1] and H[0, 0] != H[1, 1]
    axes = [(float(ax[0]), float(s), int(ax.size), int(r), int(p))
            for ax, s, r, p in zip(grid.axes, grid.steps, plan["refine"], plan["pad"], strict=True)]
    w = np.full(len(x), 1.0 / len(x))
    fft = M.kde(x, grid, H, method="binned", threads=1)
    direct = _core.kde_binned(x, w, H, axes, plan["radius"], 1)
    np.testing.assert_allclose(fft, direct, rtol=0, atol=1e-12 * direct.max())
    assert np.array_equal(fft, M.kde(x, grid, H, method="binned", threads=2))
    h = M.hellinger_grid(M.kde(x, grid, H), fft, grid.cell_volume)
    assert h <= plan["bound"]


def test_binned_bound_is_tight_enough_to_mean_something():
    # On a coarse grid (no refinement) the bound must exceed the observed error, and the
    # observed error must be a fair fraction of it (the bound is not vacuous).
    g = rng(4)
    x = g.normal(size=3000)
    grid = M.Grid.regular(-6, 6, 61)
    H = M.kde_bandwidth(x)
    plan = M.binned_plan(H, grid, None)
    h = M.hellinger_grid(M.kde(x, grid), M.kde(x, grid, method="binned", tol=None), grid.cell_volume)
    assert h <= plan["bound"]
    assert h >= 0.01 * plan["bound"]


def test_binned_error_bound_decreases_with_spacing():
    H = np.array([[1.0]])
    b = [M.binned_error_bound(H, [s], 6.0) for s in (0.4, 0.2, 0.1)]
    assert b[0] > b[1] > b[2]
    # leading order: chi^2 ~ s^4 / 32 at t = 1/2, so the bound scales like s^2
    assert 3.0 < b[1] / b[2] < 4.5


# ----------------------------------------------------------------------------- Hellinger & co.
def test_hellinger_identical_and_disjoint():
    g = rng(5)
    x = g.normal(size=(1000, 2))
    assert M.hellinger(x, x) == pytest.approx(0.0, abs=1e-7)
    far = x + 20.0
    assert M.hellinger(x, far) == pytest.approx(1.0, abs=1e-6)
    assert M.hellinger(x, far, kind="cui") == pytest.approx(2.0, abs=1e-5)
    assert M.hellinger(x, far, method="binned") == pytest.approx(1.0, abs=1e-6)


def test_hellinger_symmetric():
    g = rng(6)
    x, y = g.normal(size=800), g.normal(0.5, 1.3, size=600)
    assert M.hellinger(x, y) == pytest.approx(M.hellinger(y, x), rel=1e-12)


class _Normal:
    """A known density with the logpdf(points) protocol."""

    def __init__(self, mean, cov):
        self.dist = stats.multivariate_normal(mean, cov)

    def logpdf(self, x):
        return self.dist.logpdf(x)


def _gauss_h2(m1, C1, m2, C2):
    m1, m2 = np.atleast_1d(m1), np.atleast_1d(m2)
    C1, C2 = np.atleast_2d(C1), np.atleast_2d(C2)
    C = 0.5 * (C1 + C2)
    dm = m1 - m2
    bc = (np.linalg.det(C1) ** 0.25 * np.linalg.det(C2) ** 0.25 / np.linalg.det(C) ** 0.5
          * np.exp(-0.125 * dm @ np.linalg.solve(C, dm)))
    return 1.0 - bc


def test_hellinger_densities_closed_form():
    p = _Normal([0.0, 0.0], [[1.0, 0.3], [0.3, 0.5]])
    q = _Normal([0.7, -0.2], [[0.6, 0.0], [0.0, 0.9]])
    grid = M.Grid.regular([-7, -7], [7, 7], 281)
    h2 = M.hellinger(p, q, grid, kind="H2")
    assert h2 == pytest.approx(_gauss_h2([0, 0], [[1, 0.3], [0.3, 0.5]], [0.7, -0.2], np.diag([0.6, 0.9])), rel=1e-6)


def test_hellinger_samples_against_known_density():
    # KDE of N(0,1) samples vs N(0,1): the KDE law is N(0, 1 + h^2) (in expectation), so
    # the estimate must sit near that closed form.
    g = rng(7)
    x = g.normal(size=20000)
    h2 = M.hellinger(x, _Normal([0.0], [[1.0]]), kind="H2")
    hs = M.kde_bandwidth(x)[0, 0]
    assert h2 == pytest.approx(_gauss_h2(0, 1 + hs, 0, 1), abs=2e-4)
    assert 0 < h2 < 0.01


def test_hellinger_two_gaussian_sample_sets_near_closed_form():
    g = rng(8)
    x, y = g.normal(0, 1, size=20000), g.normal(1, 1, size=20000)
    h2 = M.hellinger(x, y, kind="H2", method="binned")
    hs = M.kde_bandwidth(x)[0, 0]
    assert h2 == pytest.approx(_gauss_h2(0, 1 + hs, 1, 1 + hs), abs=0.01)


def test_kl_and_tv_grid_closed_forms():
    grid = M.Grid.regular(-12, 12, 4001)
    z = grid.axes[0]
    p, q = stats.norm(0, 1).pdf(z), stats.norm(1, 2).pdf(z)
    assert M.kl_grid(p, q, grid.cell_volume) == pytest.approx(M.gaussian_kl(0, 1, 1, 4), rel=1e-6)
    assert M.tv_grid(p, p, grid.cell_volume) == 0.0
    a = stats.norm(0, 1).pdf(z)
    b = stats.norm(0.5, 1).pdf(z)
    assert M.tv_grid(a, b, grid.cell_volume) == pytest.approx(2 * stats.norm.cdf(0.25) - 1, rel=1e-6)
    assert M.kl_grid(p, np.where(z > 0, q, 0.0), grid.cell_volume) == math.inf


# ----------------------------------------------------------------------------- Wasserstein
def test_wasserstein_1d_matches_pot_and_reference():
    import ot

    g = rng(9)
    x, y = g.normal(size=300), g.exponential(size=170)
    for p in (1, 2):
        expected = ot.wasserstein_1d(x, y, p=p) ** (1 / p)
        assert M.wasserstein(x, y, p, method="1d") == pytest.approx(expected, rel=1e-10)
        assert M.wasserstein(x, y, p, method="1d", backend="numpy") == pytest.approx(expected, rel=1e-10)
        assert M.wasserstein(x, y, p, method="exact") == pytest.approx(expected, rel=1e-8)


def test_exact_and_sliced_w2_vs_gaussian_closed_form():
    g = rng(10)
    n = 1500
    m1, m2 = np.array([0.0, 0.0]), np.array([2.0, -1.0])
    x = g.normal(size=(n, 2)) + m1
    y = g.normal(size=(n, 2)) + m2
    w2 = M.gaussian_w2(m1, 1.0, m2, 1.0)
    assert w2 == pytest.approx(math.sqrt(5.0), rel=1e-12)
    assert M.wasserstein(x, y, 2, method="exact") == pytest.approx(w2, rel=0.05)
    # Sliced W2 between isotropic Gaussians differing by a shift: SW2^2 = |dm|^2 / d.
    sw = M.wasserstein(x, y, 2, method="sliced", n_projections=500, seed=1)
    assert sw == pytest.approx(math.sqrt(5.0 / 2.0), rel=0.05)


def test_sliced_cpp_equals_reference_with_same_projections():
    g = rng(11)
    x, y = g.normal(size=(700, 3)), g.normal(size=(500, 3)) * 1.5
    theta = M.sliced_projections(40, 3, seed=5)
    np.testing.assert_allclose(np.linalg.norm(theta, axis=1), 1.0, rtol=1e-14)
    from modelcollapse import _core

    got = _core.sliced_wp_pow(x, y, theta, 2.0, 2)
    np.testing.assert_allclose(got, R.sliced_wp_pow(x, y, theta, 2), rtol=1e-10)
    assert M.wasserstein(x, y, method="sliced", n_projections=40, seed=5) == pytest.approx(
        M.wasserstein(x, y, method="sliced", n_projections=40, seed=5, backend="numpy"), rel=1e-12)
    one = M.wasserstein(x, y, method="sliced", seed=5, threads=1)
    assert one == M.wasserstein(x, y, method="sliced", seed=5, threads=2)


def test_gaussian_kl_closed_form_properties():
    C1 = np.array([[1.0, 0.2], [0.2, 0.7]])
    assert M.gaussian_kl([0, 0], C1, [0, 0], C1) == pytest.approx(0.0, abs=1e-14)
    assert M.gaussian_kl(0.0, 1.0, 1.0, 1.0) == pytest.approx(0.5)
    assert M.gaussian_kl(0.0, 1.0, 0.0, 2.0) == pytest.approx(0.5 * (0.5 - 1 + math.log(2)))
    assert M.gaussian_w2([0, 0], C1, [0, 0], C1) == pytest.approx(0.0, abs=1e-7)
    assert M.gaussian_w2(0.0, 1.0, 0.0, 4.0) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- precision/recall
def test_precision_recall_constructed_cases():
    g = rng(12)
    x = g.normal(size=(800, 3))
    assert tuple(M.precision_recall(x, x)) == (1.0, 1.0)
    assert tuple(M.precision_recall(x, x + 50.0)) == (0.0, 0.0)
    # A fake set concentrated on half of the real support: high precision, low recall.
    half = x[x[:, 0] > 0.5]
    pr = M.precision_recall(x, half)
    assert pr.precision > 0.95 and pr.recall < 0.6


def test_precision_recall_kdtree_equals_bruteforce():
    g = rng(13)
    real, fake = g.normal(size=(600, 2)), g.normal(0.7, 1.4, size=(500, 2))
    assert M.precision_recall(real, fake, k=4) == M.precision_recall(real, fake, k=4, backend="numpy")


def test_precision_recall_far_away_samples_are_outside_or_a_clear_error():
    x = rng(14).normal(size=(200, 2))
    # 1e120 away: far, but distances stay finite: every fake point is outside, no error.
    assert tuple(M.precision_recall(x, x + 1e120)) == (0.0, 0.0)
    mixed = np.vstack([x[:100], x[100:] + 1e120])
    assert M.precision_recall(x, mixed).precision == 0.5
    # 1e200: squared distances overflow (cKDTree then reports index n); a named error instead.
    with pytest.raises(ValueError, match="fake has coordinates larger than 1e\\+150"):
        M.precision_recall(x, x * 1e200)


# ----------------------------------------------------------------------------- properties
arrays_1d = st.integers(min_value=3, max_value=60).flatmap(
    lambda n: st.lists(st.floats(-50, 50, allow_nan=False, allow_infinity=False), min_size=n, max_size=n))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays_1d, arrays_1d, st.sampled_from(["scott", "silverman"]))
def test_property_hellinger_range_symmetry(xs, ys, rule):
    x, y = np.array(xs), np.array(ys)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        # degenerate sample sets are rejected with a message, never a silent number
        with pytest.raises(ValueError, match="singular|bandwidth"):
            M.hellinger(x, y, bandwidth=rule, n_grid=513)
        return
    try:
        h = M.hellinger(x, y, bandwidth=rule, n_grid=513)
    except ValueError as exc:  # nearly degenerate, or a kernel narrower than the grid cells: must say so
        assert "grid spacing" in str(exc) or "singular" in str(exc)
        return
    assert 0.0 <= h <= 1.0 and not math.isnan(h)
    assert h == pytest.approx(M.hellinger(y, x, bandwidth=rule, n_grid=513), abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(arrays_1d, arrays_1d, st.sampled_from([1, 2]))
def test_property_wasserstein_1d(xs, ys, p):
    x, y = np.array(xs), np.array(ys)
    w = M.wasserstein(x, y, p, method="1d")
    assert w >= 0 and not math.isnan(w)
    assert w == pytest.approx(M.wasserstein(y, x, p, method="1d"), rel=1e-12, abs=1e-12)
    assert w == pytest.approx(M.wasserstein(x, y, p, method="1d", backend="numpy"), rel=1e-9, abs=1e-9)
    assert M.wasserstein(x, x, p, method="1d") == 0.0


@settings(max_examples=25, deadline=None)
@given(st.integers(5, 80), st.integers(5, 80), st.integers(1, 4), st.integers(0, 2**32))
def test_property_kde_nonnegative_and_precision_recall_range(n, m, k, seed):
    g = rng(seed)
    x, y = g.normal(size=(n, 2)), g.normal(size=(m, 2)) * 2
    vals = M.kde(x, y)
    assert np.all(vals >= 0) and np.all(np.isfinite(vals))
    pr = M.precision_recall(x, y, k=k)
    assert 0 <= pr.precision <= 1 and 0 <= pr.recall <= 1


# ----------------------------------------------------------------------------- bad inputs
def test_bad_inputs_rejected_with_clear_messages():
    x = rng(14).normal(size=(50, 2))
    with pytest.raises(ValueError, match="samples must not be empty"):
        M.kde(np.empty((0, 2)), x)
    with pytest.raises(ValueError, match="2 columns"):
        M.kde(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        M.kde(np.array([[0.0, np.nan]] * 3), x)
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        M.kde(x, x, bandwidth=-1.0)
    with pytest.raises(ValueError, match="positive definite"):
        M.kde(x, x, bandwidth=np.array([[1.0, 0.0], [0.0, -1.0]]))
    with pytest.raises(ValueError, match="factor"):
        M.kde(x, x, factor=0.0)
    with pytest.raises(ValueError, match="bandwidth must be one of"):
        M.kde(x, x, bandwidth="scot")
    with pytest.raises(ValueError, match="singular"):
        M.kde(np.ones((10, 2)), x)
    with pytest.raises(ValueError, match="regular grid"):
        M.kde(x, x, method="binned")
    with pytest.raises(ValueError, match="weights"):
        M.kde(x, x, weights=np.ones(3))
    with pytest.raises(ValueError, match="same dimension"):
        M.wasserstein(x, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        M.wasserstein(x, x, p=3)
    with pytest.raises(ValueError, match="one-dimensional"):
        M.wasserstein(x, x, method="1d")
    with pytest.raises(ValueError, match="y must not be empty"):
        M.wasserstein(x, np.empty((0, 2)))
    with pytest.raises(ValueError, match="same dimension"):
        M.hellinger(x, np.zeros((5, 1)))
    with pytest.raises(ValueError, match="grid is required"):
        M.hellinger(_Normal([0], [[1]]), _Normal([1], [[1]]))
    with pytest.raises(ValueError, match="d = 1 or 2"):
        M.hellinger(np.zeros((10, 3)) + rng(0).normal(size=(10, 3)), rng(1).normal(size=(10, 3)))
    with pytest.raises(ValueError, match="more than k"):
        M.precision_recall(x[:3], x, k=4)
    with pytest.raises(ValueError, match="non-negative"):
        M.kl_grid(np.array([-1.0, 1.0]), np.array([1.0, 1.0]), 1.0)
    with pytest.raises(ValueError, match="kind must be one of"):
        M.hellinger(x, x, kind="h")


def test_hellinger_rejects_kernels_narrower_than_the_grid():
    with pytest.raises(ValueError, match="grid spacing"):
        M.hellinger([0.0, 0.0, 1.0], [0.0, 0.0, 1e-51], n_grid=513)


def test_issue12_cases_refused_or_computed_stably():
    x = rng(3).normal(size=10)
    with pytest.raises(ValueError, match="cov1 must be symmetric"):
        M.gaussian_w2([0, 0], [[1, 0.5], [0, 1]], [0, 0], np.eye(2))
    with pytest.raises(ValueError, match="cov2 must be symmetric"):
        M.gaussian_kl([0, 0], np.eye(2), [0, 0], [[1, 0.5], [0, 1]])
    # W2 is homogeneous: huge covariances are rescaled instead of squaring to inf (NaN before).
    w = M.gaussian_w2([0.0], [[3e205]], [0.0], [[4 * 3e205]])
    assert w == pytest.approx(math.sqrt(3e205), rel=1e-12)
    with pytest.raises(ValueError, match="bandwidth=1e-300"):
        M.kde(x, np.linspace(-1, 1, 5), bandwidth=1e-300)
    with pytest.raises(ValueError, match="singular"):
        M.hellinger(x, x + 1e300)
    assert M.wasserstein(np.array([1e300, -1e300]), np.array([0.0, 1.0]), method="1d") == pytest.approx(1e300)
    with pytest.raises(ValueError, match="p must be 1 or 2"):
        M.wasserstein(x, x, p=np.array([np.nan, 0.0]))
    with pytest.raises(TypeError, match="axes"):
        M.Grid(None)
    with pytest.raises(ValueError, match="n must be <="):
        M.Grid.regular([0.0], [1.0], 2**64)
