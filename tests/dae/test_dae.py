"""High-dimensional DAE: C++ vs numpy reference, closed forms, ODE theory vs simulation,
generation theory vs d-dimensional sampler, input validation."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelcollapse import _core, dae
from modelcollapse import dae_theory as th
from modelcollapse.reference import dae as ref

ACTS = list(dae.ACTIVATIONS)


def _options(**fields):
    """A _core.DaeTrainOptions with the given fields (activation by name)."""
    o = _core.DaeTrainOptions()
    for key, value in fields.items():
        setattr(o, key, _core.Activation.__members__[value] if key == "activation" else value)
    return o


def _trimodal(d, norm=3.0):
    ang = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
    m = norm * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    E = np.eye(d)[:, :2]
    return m, E, dae.isotropic_mixture(m @ E.T, 1.0)


# ----------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("uniform", [False, True])
def test_cpp_step_matches_reference_injected(act, uniform):
    rng = np.random.default_rng(1)
    d, r, n = 120, 3, 60
    w0 = rng.standard_normal((d, r))
    v0 = 0.3 * rng.standard_normal(r)
    x0s, x1s, ts = rng.standard_normal((n, d)), rng.standard_normal((n, d)) + 0.5, rng.random(n)
    times = np.array([0.3, 0.6])
    p = np.array([0.2, 0.7])
    for train_b in (True, False):
        opts = _options(lr=0.5, weight_decay=0.1, train_b=train_b, activation=act, uniform=uniform,
                        alpha=1 - times, beta=times, p=p, p0=0.3, p1=0.5)
        w, b, v = _core.dae_train_injected(w0, 0.1, v0, x0s, x1s, ts, opts)
        wr, br, vr = ref.train_on_samples(w0, 0.1, v0, x0s, x1s, ts if uniform else None, lr=0.5,
                                          weight_decay=0.1, train_b=train_b, act=act, times=times, p=p, p0=0.3, p1=0.5)
        assert np.abs(w - wr).max() <= 1e-10 * np.abs(wr).max()
        assert abs(b - br) <= 1e-10 * max(1.0, abs(br))
        assert np.abs(v - vr).max() <= 1e-10 * max(1.0, np.abs(vr).max())
        assert np.abs(w - w0).max() > 0.1  # the steps did something
        assert (b == 0.1) == (not train_b)


@pytest.mark.parametrize("times", [(0.5,), "uniform"])
def test_rng_path_matches_reference(times):
    m, E, tg = _trimodal(60)
    kw = dict(r=2, n_steps=150, lr=0.4, observe=E, replicas=2, seed=7, record_every=50, times=times,
              weight_decay=0.05, time_encoding=(0.1, 0.3))
    a = dae.train(tg, backend="cpp", **kw)
    b = dae.train(tg, backend="numpy", **kw)
    for key in ("w", "b", "v", "Q", "M", "G", "b_hist"):
        x, y = getattr(a, key), getattr(b, key)
        assert np.abs(x - y).max() <= 1e-10 * max(1.0, np.abs(y).max()), key
    np.testing.assert_array_equal(a.steps, [0, 50, 100, 150])


def test_dataset_and_rotated_targets_match_reference():
    rng = np.random.default_rng(3)
    d = 40
    data = rng.standard_normal((25, d))
    kw = dict(r=2, n_steps=80, lr=0.3, seed=2)
    a = dae.train(dae.empirical_target(data), **kw)
    b = dae.train(dae.empirical_target(data), backend="numpy", **kw)
    np.testing.assert_allclose(a.w, b.w, rtol=0, atol=1e-10 * np.abs(b.w).max())
    a = dae.train(dae.empirical_target(data, sequential=True), **kw)
    b = dae.train(dae.empirical_target(data, sequential=True), backend="numpy", **kw)
    np.testing.assert_allclose(a.w, b.w, rtol=0, atol=1e-10 * np.abs(b.w).max())
    x0, x1, _ = _core.dae_draw(np.zeros((0, d)), np.zeros((0, d)), np.zeros(0), data, d, 2, 0, 30, True)
    np.testing.assert_array_equal(x1, np.concatenate([data, data[:5]]))
    A = rng.standard_normal((d, d))
    tg = dae.gaussian_target(covariance=A @ A.T / d)
    w0 = rng.standard_normal((d, 2))
    a = dae.train(tg, init=w0, **kw)
    b = dae.train(tg, init=w0, backend="numpy", **kw)
    np.testing.assert_allclose(a.w, b.w, rtol=0, atol=1e-10 * np.abs(b.w).max())
    # the returned weights live in the original coordinates: Q is rotation invariant
    np.testing.assert_allclose(a.Q[0, -1], a.w[0].T @ a.w[0] / d, atol=1e-12)


def test_replicas_independent_of_threads_and_batch():
    m, E, tg = _trimodal(200)
    kw = dict(r=2, n_steps=400, lr=0.3, observe=E, seed=11)
    one = dae.train(tg, replicas=3, threads=1, **kw)
    two = dae.train(tg, replicas=3, threads=2, **kw)
    np.testing.assert_array_equal(one.w, two.w)
    np.testing.assert_array_equal(one.M, two.M)
    single = dae.train(tg, replicas=1, threads=1, **kw)
    np.testing.assert_array_equal(single.w[0], one.w[0])
    assert not np.allclose(one.w[0], one.w[1])


@pytest.mark.parametrize("replicas", [1, 3])
@pytest.mark.parametrize("target", ["mixture", "data"])
def test_prefetch_helper_thread_is_bit_identical(replicas, target):
    # threads > replicas hands the spare threads to sample-drawing helpers (double-buffered
    # blocks); the numbers drawn, hence every result, must not change. d = 200 gives blocks
    # of 81 steps: 400 steps = 4 full blocks + a partial one, records every 37 steps.
    m, E, tg = _trimodal(200)
    if target == "data":
        tg = dae.empirical_target(np.random.default_rng(5).standard_normal((50, 200)))
    kw = dict(r=2, n_steps=400, lr=0.3, seed=13, replicas=replicas, record_every=37, times="uniform",
              time_encoding=(0.1, 0.2))
    runs = [dae.train(tg, threads=t, **kw) for t in (1, 2, 3)]
    for run in runs[1:]:
        for key in ("w", "b", "v", "steps", "Q", "M", "G", "b_hist", "v_hist"):
            np.testing.assert_array_equal(getattr(run, key), getattr(runs[0], key), err_msg=key)
    assert np.abs(runs[0].w).max() > 0 and np.all(np.isfinite(runs[0].w))


def test_prefetch_shares_the_pieces_of_one_step_blocks():
    # d > 16384: a block is one step, and the two threads split its x1 into pieces of 512
    # numbers (rows are cut); the result must be the one-thread one, bit for bit
    tg = dae.isotropic_mixture(np.zeros((1, 20000)), 1.0)
    kw = dict(r=2, n_steps=5, lr=0.3, seed=3, replicas=1, record_every=2)
    one, two = (dae.train(tg, threads=t, **kw) for t in (1, 2))
    for key in ("w", "b", "v", "Q"):
        np.testing.assert_array_equal(getattr(two, key), getattr(one, key), err_msg=key)


# ----------------------------------------------------------------------------- closed forms
def test_skip_closed_form_matches_simulation():
    d = 2000
    spec = np.linspace(0.1, 2.0, d)          # a covariance spectrum, rho_bar = 1.05
    tg = dae.gaussian_target(spectrum=spec)
    for times in [(0.5,), (0.2, 0.9)]:
        run = dae.train(tg, r=1, tau=3.0, lr=0.5, seed=4, record_every=500, times=times, b0=0.3)
        theory = th.skip_closed_form(run.tau, spec.mean(), times, b0=0.3)
        assert np.abs(run.b_hist[0] - theory).max() < 3e-3
        assert abs(theory[-1] - theory[0]) > 0.2  # b moved
    # frozen b stays put
    run = dae.train(tg, r=1, n_steps=500, lr=0.5, seed=4, train_b=False, b0=0.7)
    assert np.all(run.b_hist == 0.7)


def test_linear_binary_fixed_point():
    T = 4.0
    fp = th.linear_binary_fixed_point(T)
    tt = th.theory_target(np.array([[np.sqrt(T)], [-np.sqrt(T)]]), 1.0)
    # eta -> 0 ODE converges to the closed form (eq. 88)
    res = th.integrate_odes(tt, np.array([[0.5]]), np.array([[0.3]]), 0.0, taus=[40.0], activation="linear",
                            lr=0.0, n_nodes=6, dtau=0.05)
    assert abs(res["Q"][-1, 0, 0] - fp["Q"]) < 1e-6
    assert abs(abs(res["M"][-1, 0, 0]) - fp["M"]) < 1e-6
    assert abs(res["b"][-1] - fp["b"]) < 1e-6
    # simulation at d = 1000, lr = 0.1: matches the ODE with its O(lr) quadratic term, and
    # the closed form up to that O(lr) shift
    d, lr, tau = 1000, 0.1, 8.0
    mu = np.zeros(d)
    mu[0] = np.sqrt(T)
    tg = dae.isotropic_mixture(np.stack([mu, -mu]), 1.0)
    w0 = np.zeros((d, 1))
    w0[0, 0] = 0.3 * np.sqrt(d)
    run = dae.train(tg, r=1, tau=tau, lr=lr, init=w0, activation="linear", seed=1, observe=np.eye(d)[:, :1])
    ode = th.integrate_odes(tt, run.Q[0, 0], run.G[0, 0], 0.0, taus=[tau], activation="linear", lr=lr,
                            n_nodes=6, dtau=0.05)
    Q, M = run.Q[0, -1, 0, 0], abs(run.M[0, -1, 0, 0])
    assert abs(Q - ode["Q"][-1, 0, 0]) < 0.05 and abs(M - abs(ode["M"][-1, 0, 0])) < 0.05
    assert abs(M - fp["M"]) < 0.1 and abs(Q - fp["Q"]) < 0.1
    assert M * M / (T * Q) > 0.9  # w (almost) in span(mu)


# ----------------------------------------------------------------------------- ODE vs simulation
def _warm_start(d, r, seed):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal((d, r))
    w0[:2, :] = np.sqrt(d) * np.array([[0.5, 0.1], [-0.1, 0.4]])
    return w0


def test_ode_matches_simulation_trimodal_and_fluctuations_shrink():
    """Trimodal isotropic mixture, r = 2, tanh, G = {1/2}, warm start with O(1) overlaps.

    Tolerance: replica-to-replica std of M at d = 2000 is about 0.07 (measured), and the
    mean of 3 replicas deviates from the ODE by about 0.04; we allow 0.2 on M and Q (plus
    3e-3 on b, whose fluctuations are O(sqrt(eta)/d)). The mean deviation must shrink by a
    factor >= 1.4 from d = 500 to d = 2000 (1/sqrt d predicts 2).
    """
    m, _, _ = _trimodal(10)
    tt = th.theory_target(m, 1.0)
    lr = 0.4
    devs = {}
    for d in (500, 2000):
        _, E, tg = _trimodal(d)
        run = dae.train(tg, r=2, tau=2.0, lr=lr, observe=E, replicas=3, seed=2, init=_warm_start(d, 2, 0),
                        record_every=int(0.25 * d / (2 * lr)))
        res = th.integrate_odes(tt, run.Q[:, 0].mean(0), run.G[:, 0].mean(0), 0.0, taus=run.tau, lr=lr,
                                n_nodes=8, dtau=0.05)
        dev_M = np.abs(run.M - res["M"][None]).mean()
        dev_Q = np.abs(run.Q - res["Q"][None]).mean()
        devs[d] = dev_M + dev_Q
        if d == 2000:
            assert np.abs(run.M.mean(0) - res["M"]).max() < 0.2
            assert np.abs(run.Q.mean(0) - res["Q"]).max() < 0.2
            assert np.abs(run.b_hist.mean(0) - res["b"]).max() < 3e-3
            assert res["M"][-1].max() > 2 * res["M"][0].max()  # the overlaps grew
    assert devs[500] / devs[2000] > 1.4, devs


def test_ode_quadratic_term_matters_and_multi_time_grid():
    """With a grid of two times and a large learning rate the O(eta) term of dQ is needed."""
    d, lr = 1000, 1.0
    m, E, tg = _trimodal(d)
    tt = th.theory_target(m, 1.0)
    run = dae.train(tg, r=2, tau=1.0, lr=lr, observe=E, replicas=2, seed=3, init=_warm_start(d, 2, 1),
                    times=(0.3, 0.7), record_every=250)
    kw = dict(taus=run.tau, lr=lr, n_nodes=8, dtau=0.05, times=(0.3, 0.7))
    full = th.integrate_odes(tt, run.Q[:, 0].mean(0), run.G[:, 0].mean(0), **kw)
    lin = th.integrate_odes(tt, run.Q[:, 0].mean(0), run.G[:, 0].mean(0), quadratic=False, **kw)
    err_full = np.abs(run.Q.mean(0) - full["Q"]).max()
    err_lin = np.abs(run.Q.mean(0) - lin["Q"]).max()
    assert err_full < 0.15
    assert err_lin > 2 * err_full


def test_ode_weight_decay_term_matches_simulation():
    """The weight-decay terms of the ODEs (dQ -= lambda Q, dG -= lambda G / 2, dv -= lambda v / 2,
    from w <- w - (eta lambda / d) w and tau = 2 eta n / d) against simulation with lambda = 1.5
    (Cui et al., Fig. 2) and a time encoding so that v moves too.

    Measured at d = 1000, 3 replicas, tau = 2: |Q - ODE| 0.04, |M - ODE| 0.08, |v - ODE| 0.004
    (replica std of Q 0.025); with the term dropped 1.66 / 1.64 / 0.34, with lambda doubled
    0.61 / 0.89 / 0.12, halved 0.57 / 0.67 / 0.11. Tolerances 0.15 (Q), 0.25 (M), 0.03 (v) sit
    between: about 4x the measured agreement and a quarter of the smallest mutant's deviation.
    Kills: weight-decay term dropped, its sign flipped, its factor changed (in dQ, dG or dv).
    """
    d, lr, wd = 1000, 0.4, 1.5
    m, E, tg = _trimodal(d)
    v0 = np.array([0.5, -0.3])
    run = dae.train(tg, r=2, tau=2.0, lr=lr, observe=E, replicas=3, seed=2, init=_warm_start(d, 2, 0), v0=v0,
                    weight_decay=wd, time_encoding=(0.3, 0.0), record_every=int(0.5 * d / (2 * lr)))
    res = th.integrate_odes(th.theory_target(m, 1.0), run.Q[:, 0].mean(0), run.G[:, 0].mean(0), 0.0, v0=v0,
                            taus=run.tau, lr=lr, weight_decay=wd, time_encoding=(0.3, 0.0), n_nodes=6, dtau=0.1)
    assert np.abs(run.Q.mean(0) - res.Q).max() < 0.15
    assert np.abs(run.M.mean(0) - res.M).max() < 0.25
    assert np.abs(run.v_hist.mean(0) - res.v).max() < 0.03
    assert np.abs(res.v[-1]).max() < 0.5 * np.abs(v0).max()    # v did move (decay dominates)


# ----------------------------------------------------------------------------- generation
def test_sampler_cpp_matches_reference():
    rng = np.random.default_rng(0)
    d, r, n = 50, 2, 7
    w = rng.standard_normal((d, r))
    sch = dae.sampler_schedule(20, 0.9, gamma=0.3)
    noise = rng.standard_normal((n, len(sch.delta) + 1, d))
    E = np.linalg.qr(rng.standard_normal((d, 3)))[0]
    for act in ACTS:
        a = dae.generate(w, 0.8, 0.1 * np.ones(r), n_samples=n, schedule=sch, noise=noise, return_full=True,
                         observe=E, activation=act, time_encoding=(0.2, 0.4))
        b = dae.generate(w, 0.8, 0.1 * np.ones(r), n_samples=n, schedule=sch, noise=noise, return_full=True,
                         observe=E, activation=act, time_encoding=(0.2, 0.4), backend="numpy")
        for key in ("X", "Z", "proj"):
            assert np.abs(a[key] - b[key]).max() <= 1e-10 * np.abs(b[key]).max()


def test_projected_law_matches_d_dimensional_sampler():
    """Corollary 2.3 / Result B.1 are exact for the discrete sampler at any d: Hellinger
    between KDEs of projected d-dimensional samples and theory samples is at KDE-noise level."""
    from scipy.stats import gaussian_kde

    d, n = 1000, 3000
    m, E, tg = _trimodal(d)
    run = dae.train(tg, r=2, tau=2.0, lr=0.4, observe=E, seed=5, init=_warm_start(d, 2, 2))
    w, b = run.w[0], float(run.b[0])
    sch = dae.sampler_schedule(50, 0.95, gamma=0.0)
    sim = dae.generate(w, b, n_samples=n, schedule=sch, observe=E, seed=1).proj
    Q, G = w.T @ w / d, w.T @ E / np.sqrt(d)
    theo = th.projected_law_samples(Q, G, b, schedule=sch, n_samples=n, seed=2)
    target = tg.sample(n, seed=3) @ E

    def hellinger(a, c):
        lo = np.minimum(a.min(0), c.min(0)) - 1
        hi = np.maximum(a.max(0), c.max(0)) + 1
        g = np.meshgrid(*[np.linspace(lo[j], hi[j], 80) for j in range(2)], indexing="ij")
        pts = np.stack([x.ravel() for x in g])
        cell = np.prod((hi - lo) / 79)
        pa, pc = gaussian_kde(a.T)(pts), gaussian_kde(c.T)(pts)
        return np.sqrt(0.5 * np.sum((np.sqrt(pa) - np.sqrt(pc)) ** 2) * cell)

    h_theory = hellinger(sim, theo)
    h_target = hellinger(sim, target)
    assert h_theory < 0.08, h_theory
    assert h_target > 2 * h_theory  # the generated law differs visibly from the target
    # W-perp variance v_t: the norm of the part of X off W
    full = dae.generate(w, b, n_samples=200, schedule=sch, return_full=True, seed=4).X
    P = w @ np.linalg.pinv(w)
    off = full - full @ P
    vt = sch.v_t(b)[-1]
    assert abs(np.mean(np.sum(off**2, 1)) / (d - 2) / vt - 1) < 0.02


# ----------------------------------------------------------------------------- validation
def test_bad_configurations_rejected():
    m, E, tg = _trimodal(30)
    with pytest.raises(ValueError, match="activation"):
        dae.train(tg, n_steps=10, activation="gelu")
    with pytest.raises(ValueError, match="lr"):
        dae.train(tg, n_steps=10, lr=-1.0)
    with pytest.raises(ValueError, match="n_steps or tau"):
        dae.train(tg, n_steps=10, tau=1.0)
    with pytest.raises(ValueError, match="times"):
        dae.train(tg, n_steps=10, times=(0.5, 1.5))
    with pytest.raises(ValueError, match="orthonormal"):
        dae.train(tg, n_steps=10, observe=2 * E)
    with pytest.raises(ValueError, match="init"):
        dae.train(tg, n_steps=10, init=np.zeros((5, 2)))
    with pytest.raises(ValueError, match="r must be"):
        dae.train(tg, n_steps=10, r=65)
    with pytest.raises(TypeError, match="DaeTarget"):
        dae.train(np.zeros((3, 30)), n_steps=10)
    with pytest.raises(ValueError, match="NaN"):
        dae.isotropic_mixture(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="symmetric"):
        dae.gaussian_target(covariance=np.array([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="t_final"):
        dae.sampler_schedule(10, 1.0)
    with pytest.raises(ValueError, match="means"):
        _core.dae_train(np.zeros((1, 3)), np.ones((1, 3)), np.ones(1), np.zeros((0, 3)), np.zeros((1, 4, 2)),
                        np.zeros(1), np.zeros((1, 2)), np.zeros((4, 0)),
                        _options(n_steps=5, alpha=[0.5], beta=[0.5], p=[0.0]))
    with pytest.raises(ValueError, match="time grid"):
        _core.dae_train(np.zeros((1, 4)), np.ones((1, 4)), np.ones(1), np.zeros((0, 4)), np.zeros((1, 4, 2)),
                        np.zeros(1), np.zeros((1, 2)), np.zeros((4, 0)), _options(n_steps=5))


def _assert_ctrl_c_stops(request, run, after=0.3, within=10.0):
    """Send SIGINT to this process ``after`` seconds into ``run()``: it must raise
    KeyboardInterrupt within ``within`` seconds (the compiled loop polls for signals)."""
    import os
    import signal
    import threading
    import time

    # a runner that starts the suite with SIGINT ignored (a background job, some CI) would
    # swallow the signal: raise KeyboardInterrupt on it for this test, as an interactive shell does
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))
    timer = threading.Timer(after, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.perf_counter()
    with pytest.raises(KeyboardInterrupt):
        run()
    assert time.perf_counter() - t0 < within


def test_ctrl_c_interrupts_training(request):
    tg = _trimodal(2000)[2]
    _assert_ctrl_c_stops(request, lambda: dae.train(tg, r=2, n_steps=10_000_000, lr=0.2, replicas=2,
                                                     seed=0))  # hours if not interrupted


def test_ctrl_c_interrupts_single_replica_with_prefetch_helper(request):
    tg = _trimodal(2000)[2]
    _assert_ctrl_c_stops(request, lambda: dae.train(tg, r=2, n_steps=10_000_000, lr=0.2, replicas=1, threads=2,
                                                     seed=0))
    # the helper thread was joined: a fresh run still works and matches one thread
    kw = dict(r=2, n_steps=50, lr=0.2, seed=0)
    np.testing.assert_array_equal(dae.train(tg, threads=2, **kw).w, dae.train(tg, threads=1, **kw).w)


def test_torch_backend_agrees_in_law():
    pytest.importorskip("torch")
    d = 600
    m, E, tg = _trimodal(d)
    kw = dict(r=2, tau=0.6, lr=0.4, observe=E, replicas=3, init=_warm_start(d, 2, 0), record_every=150)
    a = dae.train(tg, backend="cpp", seed=1, **kw)
    t = dae.train(tg, backend="torch", seed=1, device="cpu", **kw)
    assert t.Q.shape == a.Q.shape and t.M.shape == a.M.shape
    np.testing.assert_allclose(t.b_hist.mean(0), a.b_hist.mean(0), atol=3e-3)
    assert np.abs(t.M.mean(0) - a.M.mean(0)).max() < 0.3
    assert np.abs(t.Q.mean(0) - a.Q.mean(0)).max() < 0.3


# ----------------------------------------------------------------------------- retraining loop
class _Interrupt(Exception):
    pass


def test_dae_learner_in_retraining_loop_resumes_identically(tmp_path):
    from modelcollapse.retraining import Learner, completed_rounds, load_round, round_rng, run_retraining

    d, n = 100, 300
    m, E, tg = _trimodal(d)
    real = tg.sample(n, seed=3)
    learner = dae.DaeLearner(r=2, lr=0.2, schedule=dae.sampler_schedule(10, 0.9))
    assert isinstance(learner, Learner)
    kw = dict(workflow="replace", metrics=("std",), n_eval=50, seed=5, progress=False, keep_samples=True)
    full = run_retraining(learner, real, 2, **kw)

    def boom(ctx):
        if ctx.round == 1:
            raise _Interrupt

    ck = tmp_path / "ck"
    with pytest.raises(_Interrupt):
        run_retraining(learner, real, 2, checkpoint_dir=ck, callback=boom, **kw)
    assert completed_rounds(ck) == [0, 1]
    resumed = run_retraining(learner, real, 2, checkpoint_dir=ck, **kw)
    assert resumed.resumed_from == 1
    pd.testing.assert_frame_equal(full.table, resumed.table)
    for s_full, s_res in zip(full.states, resumed.states):
        for key in ("w", "b", "v", "w0", "b0", "tau", "seed"):
            np.testing.assert_array_equal(s_full[key], s_res[key])
    for a, b in zip(full.samples, resumed.samples):
        np.testing.assert_array_equal(a, b)
    s0, s1 = full.states[0], full.states[1]
    assert not np.array_equal(s0["w"], s1["w"])
    # one pass over n points: tau = 2 lr n / d; round 1 = one pass over n samples of round 0's model
    assert s0["n_steps"] == s1["n_steps"] == n and s0["tau"] == pytest.approx(2 * 0.2 * n / d)
    syn = load_round(ck, 2)["synthetic"]
    np.testing.assert_array_equal(syn, learner.sample(s1, n, round_rng(5, 2, 0)))
    # the stored initial weights give the ODE initial statistics and reproduce the fit exactly
    run = dae.fit_generation(real, r=2, lr=0.2, init=s0["w0"], observe=E, seed=s0["seed"])
    np.testing.assert_allclose(run.Q[0, 0], s0["w0"].T @ s0["w0"] / d, rtol=1e-12)
    np.testing.assert_allclose(run.G[0, 0], s0["w0"].T @ E / np.sqrt(d), rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(run.w[0], s0["w"])
    # fit is a pure function of (data, rng) and leaves the previous state alone
    w_before = s0["w"].copy()
    again = learner.fit(real, s0, round_rng(5, 0, 1))
    np.testing.assert_array_equal(again["w"], s0["w"])
    np.testing.assert_array_equal(s0["w"], w_before)
    assert learner.parameter_vector(s0).shape == (2 * d + 1 + 2,)


# ----------------------------------------------------------------------------- bad input (issue 12)
def test_diverging_training_stops_with_step_and_learning_rate():
    # lr = 2 at d = 1000 blows up within a few hundred steps; the kernel runs to the end,
    # so without the check the run came back as all-NaN weights without a word.
    target = dae.isotropic_mixture(np.zeros((1, 1000)), 1.0)
    with pytest.raises(ValueError, match=r"diverged.*between steps \d+ and \d+ of 20000.*lr=2"):
        dae.train(target, r=2, n_steps=20000, lr=2.0, activation="linear", seed=0, threads=1)
    run = dae.train(target, r=2, n_steps=2000, lr=0.5, activation="linear", seed=0, threads=1)
    assert np.all(np.isfinite(run.w))


def test_projected_hellinger_and_training_steps_reject_bad_sizes():
    x = np.random.default_rng(0).standard_normal(50)
    with pytest.raises(ValueError, match="grid"):
        dae.projected_hellinger(x, x + 1, grid=0)         # was 0.0
    with pytest.raises(ValueError, match="grid"):
        dae.projected_hellinger(x, x + 1, grid=10**12)
    with pytest.raises(ValueError, match="d must be >= 1"):
        dae.training_steps(1.0, -1, 0.1)                  # was -5
    with pytest.raises(ValueError, match="tau"):
        dae.training_steps(1e300, 1000, 1e-300)           # was OverflowError
    assert dae.training_steps(1.0, 100, 0.1) == 500


def test_huge_sizes_refused_before_allocating():
    target = dae.isotropic_mixture([[1.0, 0.0]], 0.5)
    for kwargs in (dict(n_steps=10**12), dict(n_steps=10, replicas=2**40), dict(n_steps=10**9, record_every=1)):
        with pytest.raises(ValueError, match="too large|must be <="):
            dae.train(target, **kwargs)
    with pytest.raises(ValueError, match="n_samples"):
        dae.generate(np.ones((2, 1)), 0.5, n_samples=10**12)
    with pytest.raises(ValueError, match="n_grid"):
        dae.sampler_schedule(2**62)
    with pytest.raises(ValueError, match="n"):
        target.sample(10**12)


# ----------------------------------------------------------------------------- boundary and results
def test_one_list_of_activations():
    # the compiled enum, the library's list and the oracle's own twin name the same activations
    assert tuple(_core.Activation.__members__) == dae.ACTIVATIONS == ref.ACTIVATIONS
    h = np.linspace(-3, 3, 41)
    from modelcollapse.dae._activations import activation
    for act in ACTS:
        for mine, oracle in zip(activation(act, h), ref.activation(act, h)):
            np.testing.assert_array_equal(mine, oracle)
    with pytest.raises(ValueError, match="activation"):
        dae.generate(np.ones((3, 1)), 0.5, activation="gelu")


def test_train_options_are_named_fields():
    o = _core.DaeTrainOptions()
    o.activation = _core.Activation.relu
    o.alpha = [0.5, 0.2]
    assert o.activation == _core.Activation.relu and o.alpha == [0.5, 0.2] and o.lr == 0.2
    with pytest.raises(TypeError):
        o.activation = 1          # an int is not an Activation


def test_results_are_frozen_records_with_theory_names():
    import dataclasses

    m, E, tg = _trimodal(60)
    run = dae.train(tg, r=2, n_steps=90, lr=0.3, observe=E, replicas=2, seed=1, record_every=30)
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.b = None
    assert run["b_hist"] is run.b_hist and "Q" in run
    path = run.path()
    ode = th.integrate_odes(th.theory_target(m, 1.0), path.Q[0], path.G[0], taus=run.tau, n_nodes=5, dtau=0.1)
    assert type(ode) is type(path) and ode.keys() == path.keys()
    np.testing.assert_array_equal(path.b, run.b_hist.mean(0))
    np.testing.assert_array_equal(run.path(1).Q, run.Q[1])
    sim, theory = run.to_frame(), ode.to_frame()
    assert list(sim.columns) == ["replica", "step"] + list(theory.columns)
    assert len(sim) == 2 * len(run.tau) and set(sim.replica) == {0, 1}
    np.testing.assert_array_equal(sim[sim.replica == 1]["Q[0,1]"], run.Q[1, :, 0, 1])
    gen = dae.generate(run.w[0], float(run.b[0]), n_samples=5, observe=E)
    assert gen.X is None and gen["proj"].shape == (5, 2)


def test_projected_hellinger_is_the_metrics_hellinger():
    """The thin wrapper only chooses the box: same value as scipy KDEs on that box (the
    implementation it replaced) to KDE precision."""
    from scipy.stats import gaussian_kde

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 2)), 1.3 * rng.standard_normal((200, 2)) + 0.4
    lo, hi = np.minimum(a.min(0), b.min(0)) - 1.0, np.maximum(a.max(0), b.max(0)) + 1.0
    axes = [np.linspace(lo[j], hi[j], 100) for j in range(2)]
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])

    def kde(x):
        k = gaussian_kde(x.T, bw_method="silverman")
        k.set_bandwidth(k.factor * 1.5)
        return k(pts)

    cell = np.prod((hi - lo) / 99)
    expected = np.sqrt(0.5 * np.sum((np.sqrt(kde(a)) - np.sqrt(kde(b))) ** 2) * cell)
    got = dae.projected_hellinger(a, b, bandwidth_factor=1.5, bw_method="silverman")
    assert abs(got - expected) < 1e-9 * expected
