"""Reverse sampler: compiled vs numpy with injected noise, recovery of S_delta p, weak
order of Euler-Maruyama, reproducibility, trajectories, validation, Ctrl-C."""
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from scipy import stats

import modelcollapse as mc
from modelcollapse.random import sampler_noise


def injected(n, steps, d, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.normal(size=(n, steps, d))


@pytest.mark.parametrize("integrator", ["euler_maruyama", "exponential", "ode"])
@pytest.mark.parametrize("grid", ["uniform", "quadratic", "log"])
def test_cpp_equals_numpy_with_injected_noise(any_mixture, integrator, grid):
    n, steps = 200, 40
    init, noise = injected(n, steps, any_mixture.dim)
    kw = dict(T=1.5, delta=0.02, steps=steps, grid=grid, integrator=integrator, init=init, noise=noise,
              trajectory_times=[1.5, 0.7, 0.02])
    a = mc.sample_reverse(any_mixture, n, backend="cpp", **kw)
    b = mc.sample_reverse(any_mixture, n, backend="numpy", **kw)
    assert a.backend == "cpp" and b.backend == "numpy" and a.score == repr(any_mixture)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.trajectory, b.trajectory, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(a.trajectory[0], init)


@pytest.mark.parametrize("K, d, kind", [(3, 5, "isotropic"), (5, 4, "diagonal"), (4, 64, "isotropic"),
                                        (5, 7, "isotropic")])
def test_logits_four_components_at_a_time_equal_numpy(K, d, kind):
    # the batched kernel's logits pass takes components four at a time (mixture.hpp,
    # tile_logits<4>), the rest one at a time (K = 3, 5); each component's own mean and variance
    # must enter. The isotropic score pass takes coordinates four at a time (tile_score_iso<4>),
    # the rest one at a time (d = 5, 7), with the weights' inv_k and lambda_k folded in (lc2f, lam)
    rng = np.random.default_rng(K + d)
    cov = 0.3 + rng.random(K) if kind == "isotropic" else 0.3 + rng.random((K, d))
    gm = mc.GaussianMixture(rng.dirichlet(np.ones(K)), 2 * rng.normal(size=(K, d)), cov)
    n, steps = 67, 10
    init, noise = injected(n, steps, d, seed=d)
    kw = dict(T=1.0, delta=0.02, steps=steps, init=init, noise=noise)
    a = mc.sample_reverse(gm, n, backend="cpp", threads=1, **kw)
    b = mc.sample_reverse(gm, n, backend="numpy", **kw)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("d", [4, 6, 9])
def test_full_covariance_blocked_product_equals_numpy(d):
    # d >= 4 takes the register-blocked precision product (4 rows x 4 samples, with row and
    # sample tails: d = 6, 9 and n = 67 = 64 + 3 leave both); checked against the reference
    rng = np.random.default_rng(d)
    A = rng.normal(size=(3, d, d))
    gm = mc.GaussianMixture([0.5, 0.3, 0.2], 2 * rng.normal(size=(3, d)),
                            A @ A.transpose(0, 2, 1) / d + 0.3 * np.eye(d))
    n, steps = 67, 15
    init, noise = injected(n, steps, d, seed=d)
    kw = dict(T=1.0, delta=0.02, steps=steps, init=init, noise=noise)
    a = mc.sample_reverse(gm, n, backend="cpp", threads=1, **kw)
    b = mc.sample_reverse(gm, n, backend="numpy", **kw)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-10, atol=1e-10)


def test_empirical_and_callable_paths_agree():
    train = np.random.default_rng(3).normal(size=(400, 2))
    e = mc.EmpiricalScore(train)
    n, steps = 150, 30
    init, noise = injected(n, steps, 2, seed=1)
    kw = dict(T=1.0, delta=0.05, steps=steps, init=init, noise=noise)
    a = mc.sample_reverse(e, n, **kw)
    b = mc.sample_reverse(e, n, backend="numpy", **kw)
    c = mc.sample_reverse(lambda x, t: e.score(x, t), n, **kw)
    assert c.backend == "python-callable"
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.samples, c.samples, rtol=1e-12, atol=1e-12)


def test_exact_score_and_init_recover_smoothed_law():
    """Many exponential-integrator steps: samples ~ S_delta p. Tolerances are 5 standard
    errors of the sample mean and covariance at this sample size."""
    p = mc.GaussianMixture([0.3, 0.7], [[-2.0, 1.0], [1.5, -0.5]], [[[0.5, 0.2], [0.2, 0.3]], [[0.2, 0.0], [0.0, 0.6]]])
    n, delta = 40_000, 0.05
    out = mc.sample_reverse(p, n, T=2.0, delta=delta, steps=800, integrator="exponential", init="exact", seed=3)
    q = p.smooth(delta)
    cov = q.covariance()
    x = out.samples
    assert np.all(np.abs(x.mean(0) - q.mean()) < 5 * np.sqrt(np.diag(cov) / n))
    se_cov = np.sqrt((np.outer(np.diag(cov), np.diag(cov)) + cov**2) / n) * 3  # x3: mixture kurtosis
    assert np.all(np.abs(np.cov(x.T) - cov) < 5 * se_cov)
    # mean log-likelihood under the target vs its exact expectation (by a large exact sample)
    ref = q.sample(400_000, seed=4)
    ll, ll_ref = q.logpdf(x), q.logpdf(ref)
    assert abs(ll.mean() - ll_ref.mean()) < 5 * np.sqrt(ll_ref.var() / n + ll_ref.var() / len(ref))


def test_recovery_ks_1d():
    p = mc.GaussianMixture([0.4, 0.6], [[-1.5], [2.0]], [0.1, 0.3])
    delta = 0.02
    x = mc.sample_reverse(p, 30_000, T=3.0, delta=delta, steps=600, integrator="exponential", init="exact",
                          seed=8).samples[:, 0]
    q = p.smooth(delta)
    sd = np.sqrt(q.covariances)

    def cdf(v):
        return sum(w * stats.norm.cdf(v, m[0], s) for w, m, s in zip(q.weights, q.means, sd))

    assert stats.kstest(x, cdf).pvalue > 1e-3


def euler_gaussian_variance(m0, v0, T, delta, steps):
    """Exact mean/variance after the Euler-Maruyama chain for p = N(m0, v0) in 1-D with
    exact init: the update is linear, so moments propagate in closed form."""
    times = mc.time_grid(T, delta, steps)
    a_T, s2_T = np.exp(-T), -np.expm1(-2 * T)
    mu, var = a_T * m0, a_T**2 * v0 + s2_T
    for k in range(steps):
        t, h = times[k], times[k] - times[k + 1]
        mt, vt = np.exp(-t) * m0, np.exp(-2 * t) * v0 - np.expm1(-2 * t)
        A = 1 + h - 2 * h / vt
        mu, var = A * mu + 2 * h * mt / vt, A**2 * var + 2 * h
    return mu, var


def test_euler_maruyama_weak_order_one():
    m0, v0, T, delta = 1.5, 0.1, 1.0, 0.05
    target_var = np.exp(-2 * delta) * v0 - np.expm1(-2 * delta)
    errors = []
    p = mc.GaussianMixture([1.0], [[m0]], [v0])
    n = 200_000
    for steps in (8, 16, 32):
        _, var_theory = euler_gaussian_variance(m0, v0, T, delta, steps)
        x = mc.sample_reverse(p, n, T=T, delta=delta, steps=steps, init="exact", seed=steps).samples[:, 0]
        # the sampler reproduces the discrete-time prediction within sampling error
        assert abs(x.var() - var_theory) < 5 * var_theory * np.sqrt(2 / n)
        errors.append(abs(x.var() - target_var))
    slope = np.polyfit(np.log([1 / 8, 1 / 16, 1 / 32]), np.log(errors), 1)[0]
    assert 0.7 < slope < 1.3, (errors, slope)


def test_reproducible_for_any_thread_count(mixture_full):
    kw = dict(T=1.0, delta=0.01, steps=30, init="exact", seed=2024)
    ref = mc.sample_reverse(mixture_full, 1000, threads=1, **kw).samples
    for threads in (2, 3, 5):
        np.testing.assert_array_equal(ref, mc.sample_reverse(mixture_full, 1000, threads=threads, **kw).samples)


def test_standard_normal_init_uses_documented_streams(mixture_iso):
    n, steps = 100, 10
    a = mc.sample_reverse(mixture_iso, n, steps=steps, seed=5)
    init = mc._core.normals(5, mc._core.PURPOSE_INIT_NORMAL, 0, n, 2, 0, 1)
    b = mc.sample_reverse(mixture_iso, n, steps=steps, init=init, noise=sampler_noise(5, n, steps, 2))
    np.testing.assert_array_equal(a.samples, b.samples)


def test_trajectory_times_snap_to_grid(mixture_iso):
    out = mc.sample_reverse(mixture_iso, 10, T=1.0, delta=0.0, steps=10, trajectory_times=[1.0, 0.52, 0.0])
    np.testing.assert_allclose(out.trajectory_times, [1.0, 0.5, 0.0])
    np.testing.assert_array_equal(out.trajectory[-1], out.samples)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(delta=1.0, T=1.0), ValueError, "delta"),
    (dict(delta=-0.1), ValueError, "delta must be >= 0"),
    (dict(T=-1.0), ValueError, "T must be > 0"),
    (dict(steps=0), ValueError, "steps must be >= 1"),
    (dict(grid="cubic"), ValueError, "grid must be one of"),
    (dict(integrator="rk4"), ValueError, "integrator must be one of"),
    (dict(init="uniform"), ValueError, "init must be one of"),
    (dict(init=np.zeros((5, 2))), ValueError, "init must have shape"),
    (dict(noise=np.zeros((10, 3, 2))), ValueError, "noise must have shape"),
    (dict(noise=np.full((10, 200, 2), np.nan)), ValueError, "noise contains"),
    (dict(trajectory_times=[2.0]), ValueError, "trajectory_times"),
    (dict(threads=-1), ValueError, "threads"),
    (dict(backend="gpu"), ValueError, "backend"),
    (dict(delta=0.0, grid="log"), ValueError, "log"),
])
def test_bad_inputs_rejected(mixture_iso, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        mc.sample_reverse(mixture_iso, 10, **kwargs)


def test_bad_score_models_rejected():
    with pytest.raises(TypeError, match="score_model"):
        mc.sample_reverse("not a model", 10)
    with pytest.raises(ValueError, match="init"):
        mc.sample_reverse(lambda x, t: -x, 10)
    with pytest.raises(ValueError, match="delta must be > 0"):
        mc.sample_reverse(mc.EmpiricalScore(np.zeros((3, 2))), 10, delta=0.0)
    with pytest.raises(FloatingPointError, match="non-finite"):
        mc.sample_reverse(lambda x, t: np.full_like(x, np.nan), 4, init=np.zeros((4, 2)))


def test_ctrl_c_interrupts_a_long_compiled_run():
    script = textwrap.dedent("""
        import sys, time
        import modelcollapse as mc
        p = mc.GaussianMixture([0.5, 0.5], [[-1.0] * 8, [1.0] * 8], [0.5, 0.5])
        print("ready", flush=True)
        t0 = time.time()
        try:
            mc.sample_reverse(p, 2_000_000, steps=2000, seed=1)
        except KeyboardInterrupt:
            print(f"interrupted after {time.time() - t0:.2f}s", flush=True)
            sys.exit(0)
        print("finished", flush=True)
        sys.exit(3)
    """)
    # the child gets the default SIGINT even when this runner ignores it (a background job)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, (out, err)
    assert "interrupted" in out


def test_sizes_and_divergence_refused_naming_the_arguments():
    p = mc.GaussianMixture([1.0], [[0.0]], 1.0)
    with pytest.raises(ValueError, match="n_samples too large"):
        mc.sample_reverse(p, 10**12)
    with pytest.raises(ValueError, match="steps too large"):
        mc.sample_reverse(p, 10, steps=10**12)
    with pytest.raises(ValueError, match="init must have 2 dimension"):
        mc.sample_reverse(lambda x, t: -x, 10, init=None)
    # A step of 5e305 overflows: still a FloatingPointError, now also a ValueError naming T and steps.
    with pytest.raises(ValueError, match=r"T - delta\) / steps"):
        mc.sample_reverse(p, 10, T=1e308)


def _within_mode_variance_error(law, x):
    """Mean over modes of (variance of the points nearest that mode) / (its variance) - 1."""
    mu = law.means[:, 0]
    lab = np.argmin(np.abs(x[:, None] - mu[None]), axis=1)
    return float(np.mean([np.var(x[lab == j]) / law.covariances[j] - 1 for j in range(len(mu))]))


def test_coarse_uniform_grid_at_small_delta_warns_and_log_grid_is_accurate():
    # Modes of variance 0.01 at delta = 1e-4, 400 steps from T = 1: the uniform step 0.0025 is
    # 0.25 of the variance -> within-mode variance ~ +27% (predicted 1.1 h / sigma^2); the log
    # grid is within the 2% noise of 30 000 points. Kills: no warning, a wrong narrowest
    # variance (missing the smoothing to delta), a threshold off by 10x.
    import warnings

    from modelcollapse.sampler import DiscretisationWarning

    p = mc.GaussianMixture([0.5, 0.5], [[-1.0], [1.0]], [1e-2, 1e-2])
    kw = dict(T=1.0, delta=1e-4, steps=400, init="exact", seed=1, threads=1)
    with pytest.warns(DiscretisationWarning, match=r"about 27% too large.*grid='log'"):
        xu = mc.sample_reverse(p, 30_000, grid="uniform", **kw).samples[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DiscretisationWarning)
        xl = mc.sample_reverse(p, 30_000, grid="log", **kw).samples[:, 0]
        # a smooth law (variances 0.1, 0.2) on the same uniform grid: h / sigma^2 = 0.025, no warning
        mc.sample_reverse(mc.GaussianMixture([0.5, 0.5], [[-2.0], [1.5]], [0.1, 0.2]), 10, grid="uniform", **kw)
    target = p.smooth(1e-4)
    assert 0.27 / 1.5 < _within_mode_variance_error(target, xu) < 0.27 * 1.5
    assert abs(_within_mode_variance_error(target, xl)) < 0.04
    with pytest.warns(DiscretisationWarning):   # narrow at delta: an empirical score's points, 2 delta = 2e-3
        mc.sample_reverse(mc.EmpiricalScore(np.array([[-1.0], [1.0]])), 10, T=1.0, delta=1e-3, steps=100, seed=1)


@pytest.mark.parametrize("d,cov", [(1, "iso"), (2, "iso"), (5, "diag")])
def test_padded_chunks_equal_numpy(d, cov):
    # n = 67 = 64 + 3: the second chunk holds 3 samples padded to the kernel's 8-sample
    # tile; d = 1, 2 take the compile-time-dimension kernels, d = 5 the run-time one.
    # The tolerance 1e-10 is ~1e5 ulp: the kernels' FMA contraction and base-2 weights
    # change each score by a few ulp per step (40 steps). Kills: padding lanes leaking
    # into real ones, a tile offset off by 4, a dropped component in either pass.
    rng = np.random.default_rng(d)
    K = 4
    c = 0.2 + rng.random(K) if cov == "iso" else 0.2 + rng.random((K, d))
    w = rng.random(K) + 0.1
    gm = mc.GaussianMixture(w / w.sum(), 2 * rng.normal(size=(K, d)), c)
    n, steps = 67, 40
    init, noise = injected(n, steps, d, seed=d)
    kw = dict(T=1.0, delta=0.02, steps=steps, init=init, noise=noise, trajectory_times=[1.0, 0.5, 0.02])
    a = mc.sample_reverse(gm, n, backend="cpp", threads=2, **kw)
    b = mc.sample_reverse(gm, n, backend="numpy", **kw)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(a.trajectory, b.trajectory, rtol=1e-10, atol=1e-10)


def test_empirical_sampler_over_several_parallel_regions():
    # 5000 training points in 2-D take 160 kB per smoothed step, so 60 steps span three
    # parallel regions of the compiled sampler (4 MiB of smoothed models each): the state,
    # the recorded trajectory and the step noise must carry across region boundaries.
    # Kills: a region that restarts from init, a smoothed model offset by one step, the final
    # state recorded from the wrong region, noise counters restarting per region.
    train = np.random.default_rng(4).normal(size=(5000, 2))
    e = mc.EmpiricalScore(train)
    n, steps = 70, 60
    init, noise = injected(n, steps, 2, seed=4)
    kw = dict(T=1.0, delta=0.05, steps=steps, init=init, trajectory_times=[1.0, 0.6, 0.3, 0.05])
    a = mc.sample_reverse(e, n, noise=noise, threads=2, **kw)
    b = mc.sample_reverse(e, n, noise=noise, backend="numpy", **kw)
    np.testing.assert_allclose(a.samples, b.samples, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(a.trajectory, b.trajectory, rtol=1e-9, atol=1e-9)
    drawn = [mc.sample_reverse(e, n, seed=9, threads=t, **kw) for t in (1, 3)]
    np.testing.assert_array_equal(drawn[0].samples, drawn[1].samples)
    np.testing.assert_array_equal(drawn[0].trajectory, drawn[1].trajectory)
    # the internal noise is the documented stream: equal to injecting sampler_noise
    c = mc.sample_reverse(e, n, noise=sampler_noise(9, n, steps, 2), **kw)
    np.testing.assert_array_equal(drawn[0].samples, c.samples)
