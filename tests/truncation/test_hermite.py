"""Hermite moments: C++ vs numpy reference, analytic vs empirical, Mehler, bad inputs."""
import math

import numpy as np
import pytest
from numpy.polynomial import hermite_e as He

import modelcollapse as mc
from modelcollapse import hermite as hm
from modelcollapse.reference import hermite as ref


def _mix1d():
    return mc.GaussianMixture([0.3, 0.7], [[-1.5], [1.0]], [0.2, 0.5])


def _mix2d(kind):
    means = [[-1.0, 0.5], [1.2, -0.3], [0.0, 1.5]]
    w = [0.3, 0.3, 0.4]
    if kind == "isotropic":
        cov = [0.3, 0.5, 0.2]
    elif kind == "diagonal":
        cov = [[0.3, 0.6], [0.5, 0.2], [0.2, 0.4]]
    else:
        cov = [[[0.4, 0.15], [0.15, 0.3]], [[0.2, -0.05], [-0.05, 0.5]], [[0.6, 0.2], [0.2, 0.25]]]
    return mc.GaussianMixture(w, means, cov)


def test_multi_indices_graded():
    idx = hm.multi_indices(2, 2)
    assert idx.tolist() == [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]]
    assert len(hm.multi_indices(10, 4)) == math.comb(14, 10)
    parent, dim, order = ref.index_table(hm.multi_indices(3, 5))
    assert np.all(parent[1:] < np.arange(1, len(parent)))


def test_recurrence_matches_numpy_hermite_e():
    x = np.linspace(-3, 3, 7)
    h = ref.hermite_functions(x, 12)
    for n in range(13):
        coef = np.zeros(n + 1)
        coef[n] = 1
        np.testing.assert_allclose(h[n], He.hermeval(x, coef) / math.sqrt(math.factorial(n)), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d,degree", [(1, 60), (2, 10), (3, 6), (10, 2)])
def test_cpp_equals_reference(d, degree):
    rng = np.random.default_rng(d)
    x = rng.normal(size=(5003, d)) * 1.3 + 0.2
    a = hm.hermite_moments(x, degree, std_errors=True, backend="cpp")
    b = hm.hermite_moments(x, degree, std_errors=True, backend="numpy")
    scale = np.sqrt(b.std_errors ** 2 * len(x) + b.values ** 2)  # RMS of h_alpha
    assert np.all(np.abs(a.values - b.values) <= 1e-12 * scale + 1e-12 * np.abs(b.values))
    np.testing.assert_allclose(a.std_errors, b.std_errors, rtol=1e-9, atol=1e-14)


def test_thread_count_does_not_change_result():
    x = np.random.default_rng(0).normal(size=(300_001, 2))
    outs = [hm.hermite_moments(x, 8, threads=t).values for t in (1, 2, 3, 7)]
    for o in outs[1:]:
        assert np.array_equal(o, outs[0])


def test_high_degree_is_finite_and_accurate():
    # Under N(0,1) every orthonormal moment of degree >= 1 is 0 with standard error 1/sqrt(n).
    x = np.random.default_rng(1).normal(size=200_000)
    m = hm.hermite_moments(x, 80, std_errors=True)
    assert np.all(np.isfinite(m.values))
    z = m.values[1:] / m.std_errors[1:]
    assert np.max(np.abs(z)) < 5.0
    # Var h_n = 1 under N(0, 1); its sample estimate is heavy-tailed at high n, so check low n.
    np.testing.assert_allclose(m.std_errors[1:5] * math.sqrt(len(x)), 1.0, rtol=0.1)
    # Analytic moments of N(0, 1) are exactly (1, 0, 0, ...).
    a = hm.mixture_moments(mc.GaussianMixture([1.0], [[0.0]], 1.0), 80)
    assert a.values[0] == 1 and np.all(a.values[1:] == 0)


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_mehler_identity_analytic(kind):
    p = _mix2d(kind)
    m0 = hm.mixture_moments(p, 8)
    for t in (0.05, 0.3, 1.0):
        mt = hm.mixture_moments(p.smooth(t), 8)
        np.testing.assert_allclose(mt.values, np.exp(-m0.total_degrees * t) * m0.values, rtol=1e-10, atol=1e-13)


def test_mehler_identity_1d_high_degree():
    p = _mix1d()
    m0 = hm.mixture_moments(p, 60)
    mt = hm.mixture_moments(p.smooth(0.2), 60)
    np.testing.assert_allclose(mt.values, np.exp(-0.2 * np.arange(61)) * m0.values, rtol=1e-8, atol=1e-14)


def test_full_method_agrees_with_product_and_closed_form():
    p = _mix2d("diagonal")
    np.testing.assert_allclose(hm.mixture_moments(p, 7, method="full").values,
                               hm.mixture_moments(p, 7, method="product").values, rtol=1e-11, atol=1e-14)
    # closed-form sum of spec section 2 for one 1-D Gaussian
    m, s2 = 0.7, 0.4
    g = hm.mixture_moments(mc.GaussianMixture([1.0], [[m]], s2), 9).raw()
    for n in range(10):
        c = math.factorial(n) * sum(m ** (n - 2 * j) * ((s2 - 1) / 2) ** j / (math.factorial(n - 2 * j) * math.factorial(j))
                                    for j in range(n // 2 + 1))
        assert abs(g[n] - c) <= 1e-10 * max(1, abs(c))


@pytest.mark.parametrize("kind", ["isotropic", "diagonal", "full"])
def test_empirical_vs_analytic_within_standard_errors(kind):
    p = _mix2d(kind)
    x = p.sample(200_000, seed=3)
    emp = hm.hermite_moments(x, 6, std_errors=True)
    ana = hm.mixture_moments(p, 6)
    z = (emp.values[1:] - ana.values[1:]) / emp.std_errors[1:]
    assert np.max(np.abs(z)) < 4.5, z  # 27 moments: P(max |z| > 4.5) ~ 2e-4
    # and the test has power: moments of a different law are rejected
    other = hm.mixture_moments(p.smooth(0.05), 6)
    assert np.max(np.abs((emp.values[1:] - other.values[1:]) / emp.std_errors[1:])) > 6


def test_energies_closed_form_rotation_invariance_and_parseval():
    # N(m, I) in 3-D: c_alpha = m^alpha, so E_n = sum_{|alpha|=n} m^{2 alpha}/alpha! = |m|^{2n}/n!
    # (multinomial theorem). Kills: grouping by the wrong degree, an extra 1/alpha!, a missing square.
    m = np.array([0.7, -0.4, 1.1])
    e = hm.degree_energies(hm.mixture_moments(mc.GaussianMixture([1.0], [m], 1.0), 8))
    np.testing.assert_allclose(e, [(m @ m) ** n / math.factorial(n) for n in range(9)], rtol=1e-12)
    # Degree-n chaos is rotation invariant: E_n(R p) = E_n(p) for a full-covariance mixture.
    p = _mix2d("full")
    th = 0.7
    R = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    rp = mc.GaussianMixture(p.weights, p.means @ R.T, R @ p.covariances @ R.T)
    np.testing.assert_allclose(hm.mixture_moments(rp, 10).energies(), hm.mixture_moments(p, 10).energies(),
                               rtol=1e-10, atol=1e-14)
    # Parseval: sum_n E_n(p) = int p^2 / phi (1-D, variances < 2 so the integral is finite).
    q = _mix1d()
    x = np.linspace(-12, 12, 24001)
    phi = np.exp(-0.5 * x ** 2) / math.sqrt(2 * math.pi)
    integral = float(np.sum(q.pdf(x[:, None]) ** 2 / phi) * (x[1] - x[0]))
    assert hm.mixture_moments(q, 120).energies().sum() == pytest.approx(integral, rel=1e-6)


def test_gram_charlier_reconstructs_the_density():
    p = _mix1d()
    m = hm.mixture_moments(p, 40)
    grid = np.linspace(-4, 4, 401)
    gc = hm.gram_charlier(m, grid)
    # Gram-Charlier converges in L2(1/phi) for this mixture (variances > 1/2): density error small.
    assert np.max(np.abs(gc - p.pdf(grid[:, None]))) < 0.02
    m2 = hm.mixture_moments(_mix2d("full").smooth(0.4), 12)
    pts = np.random.default_rng(0).normal(size=(50, 2))
    np.testing.assert_allclose(hm.gram_charlier(m2, pts), _mix2d("full").smooth(0.4).pdf(pts), atol=2e-3)


def test_bad_inputs():
    with pytest.raises(ValueError, match="x"):
        hm.hermite_moments(np.array([1.0, np.nan]), 3)
    with pytest.raises(ValueError, match="degree"):
        hm.hermite_moments(np.zeros(3), -1)
    with pytest.raises((TypeError, ValueError), match="degree"):
        hm.hermite_moments(np.zeros(3), 2.5)
    with pytest.raises(ValueError, match="d <= 10"):
        hm.hermite_moments(np.zeros((4, 11)), 2)
    with pytest.raises(ValueError, match="backend"):
        hm.hermite_moments(np.zeros(3), 2, backend="gpu")
    with pytest.raises(ValueError, match="empty"):
        hm.hermite_moments(np.zeros((0, 2)), 2)
    with pytest.raises(TypeError):
        hm.mixture_moments(np.zeros(3), 2)
    with pytest.raises(ValueError, match="product"):
        hm.mixture_moments(_mix2d("full"), 2, method="product")
    from modelcollapse import _core
    with pytest.raises(ValueError, match="graded"):
        _core.hermite_moments(np.zeros((3, 1)), np.array([-1, 1]), np.array([0, 0]), np.array([0, 1]))


def test_overflow_and_sizes_refused_naming_the_argument():
    with pytest.raises(ValueError, match="x too large for degree 3"):
        hm.hermite_moments([1.3e154, 0.0], 3)
    with pytest.raises(ValueError, match="x too large"):
        hm.hermite_moments([1.3e154, 0.0], 3, backend="numpy")
    # C(50, 10) = 1e10 multi-indices: refused at once instead of enumerating for hours.
    with pytest.raises(ValueError, match="degree and d too large"):
        hm.hermite_moments(np.zeros((5, 10)), 40)
    with pytest.raises(ValueError, match="degree and d too large"):
        hm.multi_indices(10**6, 2)
    with pytest.raises(ValueError, match="degree"):
        hm.mixture_moments(mc.GaussianMixture([1.0], [[1e3]], 1.0), 200)
    with pytest.raises(TypeError, match="moments"):
        hm.gram_charlier("x", [0.0])
    with pytest.raises(ValueError, match="values"):
        hm.HermiteMoments(hm.multi_indices(1, 1), np.array([np.nan, 0.0]))


def test_multi_indices_in_many_dimensions_do_not_recurse():
    idx = hm.multi_indices(2000, 1)  # one recursion level per axis hit RecursionError before
    assert idx.shape == (2001, 2000) and idx.sum() == 2000
