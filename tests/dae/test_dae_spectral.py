"""Spectral-density closure of the DAE training ODEs (dae_theory.integrate_spectral_odes):
reduction to the isotropic ODE, level-splitting invariance, theory vs simulation on a
two-level spectrum (zero mean and a mixture with means in both levels), the skip's closed
form with rho_bar from the spectrum, binning, and input validation."""
import numpy as np
import pytest

from modelcollapse import dae
from modelcollapse import dae_theory as th

D, R_HID, LR = 2000, 2, 0.2
N_TOP = D // 10                       # 10% of the coordinates with eigenvalue 4, 90% with 0.25
TAUS = np.array([0.5, 1.0, 2.0, 4.0])
ODE = dict(lr=LR, n_nodes=8, dtau=0.05)
N_SPIKE_SEEDS = 5                     # seeds of the spikes test (a statistic over seeds, see there)


def _two_level():
    spec = np.full(D, 0.25)
    spec[:N_TOP] = 4.0
    idx = (np.arange(D) >= N_TOP).astype(np.int64)
    return spec, th.bin_spectrum(spec, index=idx)


# ----------------------------------------------------------------------------- exact reductions
def test_single_level_equals_isotropic_ode():
    ang = np.deg2rad([90, 210, 330])
    m = 3.0 * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    Q0 = np.array([[1.0, 0.1], [0.1, 0.8]])
    G0 = np.array([[0.5, -0.1], [0.1, 0.4]])
    kw = dict(taus=[0.3, 0.6], lr=1.0, weight_decay=0.1, times=(0.3, 0.7), time_encoding=(0.5, 1.0),
              n_nodes=6, dtau=0.1)
    iso = th.theory_target(m, rho=[1.0, 0.5, 2.0], d=D)
    spc = th.spectral_target([[1.0], [0.5], [2.0]], [1.0], means=m, observe_levels=[0, 0], d=D)
    a = th.integrate_odes(iso, Q0, G0, 0.1, np.array([0.2, -0.1]), **kw)
    b = th.integrate_spectral_odes(spc, Q0[None], G0, 0.1, np.array([0.2, -0.1]), **kw)
    assert np.abs(a["Q"][-1] - Q0).max() > 0.05                      # the statistics do move
    for key in ("Q", "G", "M", "b", "v"):
        scale = max(np.abs(a[key]).max(), 1e-300)
        assert np.abs(a[key] - b[key]).max() <= 1e-10 * scale, key
    np.testing.assert_allclose(b["Qc"], np.array([1.0, 0.5, 2.0])[None, :, None, None] * b["Q"][:, None], rtol=1e-12)


def test_equal_levels_split_like_one_level():
    # splitting a level into two with the same eigenvalue changes nothing (Q = q_0 + q_1)
    m = np.array([[2.0, 0.5], [-2.0, -0.5]])
    q0 = np.array([[[0.3, 0.05], [0.05, 0.2]], [[0.7, -0.02], [-0.02, 0.9]]])
    G0 = np.array([[0.4, 0.1], [-0.2, 0.3]])
    kw = dict(taus=[0.5], lr=0.5, times="uniform", n_uniform=4, n_nodes=6, dtau=0.1, activation="erf")
    one = th.integrate_spectral_odes(th.spectral_target([0.7], [1.0], m, [0, 0]), q0.sum(0), G0, **kw)
    two = th.integrate_spectral_odes(th.spectral_target([0.7, 0.7], [0.3, 0.7], m, [1, 0]), q0, G0, **kw)
    for key in ("Q", "G", "M", "b"):
        np.testing.assert_allclose(two[key], one[key], rtol=1e-10, atol=1e-12, err_msg=key)


# ----------------------------------------------------------------------------- theory vs simulation
@pytest.fixture(scope="module")
def zero_mean_runs():
    """Zero-mean Gaussian with the two-level spectrum, random init, 2 seeds; w measured at
    TAUS by training in chunks (warm start, fresh sample streams per chunk)."""
    spec, bins = _two_level()
    tg = dae.gaussian_target(spectrum=spec)
    runs = []
    for seed in range(2):
        w = np.random.default_rng(seed).standard_normal((D, R_HID))
        q0, qs, bs, b, prev = th.level_overlaps(w, bins.index), [], [], 0.0, 0.0
        for k, tau in enumerate(TAUS):
            run = dae.train(tg, r=R_HID, tau=tau - prev, lr=LR, init=w, b0=b, seed=100 * seed + k, threads=1)
            w, b, prev = run.w[0], float(run.b[0]), tau
            qs.append(th.level_overlaps(w, bins.index))
            bs.append(b)
        runs.append((q0, np.array(qs), np.array(bs)))
    return spec, bins, runs


def test_spectral_ode_matches_simulation_zero_mean(zero_mean_runs):
    spec, bins, runs = zero_mean_runs
    st = th.spectral_target(bins.levels, bins.fractions, d=D)
    iso = th.spectral_target([spec.mean()], [1.0], d=D)             # the isotropic theory with the same rho_bar
    for q0, qs, _ in runs:
        o = th.integrate_spectral_odes(st, q0, taus=TAUS, **ODE)
        Qs = qs.sum(axis=1)
        Qcs = np.einsum("l,nlab->nab", bins.levels, qs)              # w^T Sigma w / d from w and the known spectrum
        err_Q = np.abs(Qs - o["Q"]).max(axis=(1, 2)) / np.abs(o["Q"]).max(axis=(1, 2))
        err_Qc = np.abs(Qcs - o["Qc"][:, 0]).max(axis=(1, 2)) / np.abs(o["Qc"][:, 0]).max(axis=(1, 2))
        # measured at d = 2000 (these 2 seeds, tau <= 4): <= 4.8% (Q), <= 4.9% (Qc); q_top sums
        # d f_top = 200 coordinates, so O(1/sqrt(200)) = 7% fluctuations are expected. Tolerance 8%.
        assert err_Q.max() < 0.08 and err_Qc.max() < 0.08, (err_Q, err_Qc)
        assert abs(o["Q"][-1, 0, 0] - q0.sum(0)[0, 0]) > 0.5              # Q moves by O(1): not trivially close
        oi = th.integrate_spectral_odes(iso, q0.sum(0), taus=TAUS, **ODE)
        err_iso = np.abs(Qcs - oi["Qc"][:, 0]).max(axis=(1, 2)) / np.abs(Qcs).max(axis=(1, 2))
        assert err_iso.max() > 0.5                                      # the spectrum matters


def test_skip_closed_form_from_spectrum(zero_mean_runs):
    spec, bins, runs = zero_mean_runs
    rho_bar = spec.mean()
    assert th.spectral_target(bins.levels, bins.fractions).rho_bar == pytest.approx(rho_bar, rel=1e-14)
    closed = th.skip_closed_form(TAUS, rho_bar)
    o = th.integrate_spectral_odes(th.spectral_target(bins.levels, bins.fractions), runs[0][0], taus=TAUS, **ODE)
    np.testing.assert_allclose(o["b"], closed, rtol=1e-8)               # RK4 on a linear ODE
    of = th.integrate_spectral_odes(th.spectral_target(bins.levels, bins.fractions, d=D), runs[0][0], taus=TAUS, **ODE)
    for _, _, bs in runs:
        # simulation: |b - closed form| <= 2.5e-3 measured (the O(1/d) network term); the
        # finite-d ODE removes it (<= 4e-4 measured)
        assert np.abs(bs - closed).max() < 4e-3
        assert np.abs(bs - of["b"]).max() < 1.2e-3


def test_spectral_ode_matches_simulation_means_in_two_levels():
    # +-mu with mu = 2 e_0 (top level) + 1.5 e_{d-1} (bottom level); E = [e_0, e_{d-1}]
    spec, bins = _two_level()
    mu = np.zeros((2, D))
    mu[0, 0], mu[0, D - 1] = 2.0, 1.5
    mu[1] = -mu[0]
    E = np.zeros((D, 2))
    E[0, 0] = E[D - 1, 1] = 1.0
    tg = dae.diagonal_mixture(mu, spec)
    st = th.spectral_target(bins.levels, bins.fractions, means=mu @ E, observe_levels=[0, 1], d=D)
    iso = th.spectral_target([tg.rho_bar], [1.0], means=mu @ E, observe_levels=[0, 0], d=D)
    G0 = np.array([[0.5, 0.1], [-0.1, 0.4]])
    taus = TAUS[:3]
    for seed in range(2):
        w = np.random.default_rng(seed).standard_normal((D, R_HID))
        w[0], w[D - 1] = np.sqrt(D) * G0[:, 0], np.sqrt(D) * G0[:, 1]  # warm start: M = 0 is a fixed point
        run = dae.train(tg, r=R_HID, tau=taus[-1], lr=LR, init=w, seed=seed, threads=1, observe=E,
                        record_every=int(round(taus[0] * D / (2 * LR))))
        sel = [int(np.argmin(np.abs(run.tau - t))) for t in taus]
        Gi = w.T @ E / np.sqrt(D)
        o = th.integrate_spectral_odes(st, th.level_overlaps(w, bins.index), Gi, taus=taus, **ODE)
        oi = th.integrate_spectral_odes(iso, w.T @ w / D, Gi, taus=taus, **ODE)
        dM = np.abs(run.M[0, sel] - o["M"]).max()
        dQ = np.abs(run.Q[0, sel] - o["Q"]).max()
        dM_iso = np.abs(run.M[0, sel] - oi["M"]).max()
        dQ_iso = np.abs(run.Q[0, sel] - oi["Q"]).max()
        # measured at d = 2000 (4 seeds): |dM|, |dQ| <= 0.21 (M ~ 4.6, Q ~ 4.1); the mean
        # deviation over 4 seeds shrinks from <= 0.074 to <= 0.035 at d = 8000 (no bias).
        # The isotropic theory with the same rho_bar is off by 0.59 (M) and 1.09 (Q) here.
        assert dM < 0.35 and dQ < 0.35, (dM, dQ)
        assert dM_iso > 2 * dM and dQ_iso > 2 * dQ, (dM_iso, dQ_iso, dM, dQ)


def test_spikes_match_simulation_and_are_not_levels():
    # 3 spikes (5, 2.5, 1.5) on coordinates 0-2, 10% bulk at 0.5, the rest at 0.05; random init
    spec = np.full(D, 0.05)
    spec[3:203] = 0.5
    spec[:3] = [5.0, 2.5, 1.5]
    idx = np.where(np.arange(D) < 3, -1, (np.arange(D) >= 203).astype(np.int64))
    bins = th.bin_spectrum(spec, index=idx)
    st = th.spectral_target(bins.levels, bins.fractions, observe_levels=[-1, -1, -1], spikes=bins.spikes, d=D)
    assert st.rho_bar == pytest.approx(spec.mean(), rel=1e-12)
    # the wrong closure: each spike as a bulk level of one coordinate (f = 1/d), which lets
    # every hidden unit align with it at once
    as_levels = th.spectral_target(np.r_[bins.spikes, bins.levels], np.r_[np.full(3, 1 / D), bins.fractions],
                                   observe_levels=[0, 1, 2], d=D)
    E = np.zeros((D, 3))
    E[[0, 1, 2], [0, 1, 2]] = 1.0
    tg = dae.gaussian_target(spectrum=spec)
    taus = np.array([1.0, 2.0, 3.0, 4.0])
    err, err_wrong, g2, db = [], [], [], []
    for seed in range(N_SPIKE_SEEDS):
        w = np.random.default_rng(seed).standard_normal((D, R_HID))
        run = dae.train(tg, r=R_HID, tau=taus[-1], lr=LR, init=w, seed=seed, threads=1, observe=E,
                        record_every=int(round(taus[0] * D / (2 * LR))))
        sel = [int(np.argmin(np.abs(run.tau - t))) for t in taus]
        G0 = w.T @ E / np.sqrt(D)
        o = th.integrate_spectral_odes(st, th.level_overlaps(w, idx), G0, taus=taus, **ODE)
        ow = th.integrate_spectral_odes(as_levels, th.level_overlaps(w, np.where(idx < 0, np.arange(D), idx + 3)),
                                        G0, taus=taus, **ODE)
        trQ = np.trace(run.Q[0, sel], axis1=1, axis2=2)
        err.append((np.abs(np.trace(o["Q"], axis1=1, axis2=2) - trQ) / trQ).max())
        err_wrong.append((np.abs(np.trace(ow["Q"], axis1=1, axis2=2) - trQ) / trQ).max())
        g2.append(np.abs((run.G[0, sel] ** 2).sum(axis=1) - (o["G"] ** 2).sum(axis=1)).max())
        db.append(np.abs(run.b_hist[0, sel] - o["b"]).max())
    # One seed is not a test here: which hidden unit wins spike 2 (r = 2 units, 3 spikes) is
    # decided by the SGD noise, so per-seed deviations have a heavy tail. Seed study (48 seeds,
    # 24 with the generator before ARS-7 and 24 with ARS-7, same preset; the two distributions
    # agree, Mann-Whitney p = 0.25 and 0.11): the max over tau of |tr Q_ode - tr Q_sim| / tr Q_sim
    # has median 0.050 (90%: 0.135, max 0.35) and max |G_j|^2 deviation median 0.16 (90%:
    # 0.56, max 0.97; |G_1|^2 ~ 3); the mean signed deviation is within its standard error at
    # every tau (no bias). The bounds are the 99.9% quantiles of the median of 5 seeds drawn
    # from those 48 values (bootstrap): 0.16 and 0.72. The spikes-as-levels closure is off by
    # a median 0.58 (min 0.24) in tr Q; b is within 3e-4 on all 48 seeds.
    assert np.median(err) < 0.16 and np.median(g2) < 0.72, (err, g2)
    assert np.median(err_wrong) > 3 * np.median(err), (err_wrong, err)
    assert max(db) < 1e-3, db


# ----------------------------------------------------------------------------- binning, validation
def test_bin_spectrum_and_level_overlaps():
    rng = np.random.default_rng(0)
    spec = rng.exponential(size=101) ** 2
    bins = th.bin_spectrum(spec, 4, n_spikes=3)
    assert bins.n_levels == 4 and bins.d == 101
    np.testing.assert_array_equal(bins.spikes, np.sort(spec)[::-1][:3])
    np.testing.assert_array_equal(spec[bins.spike_coords], bins.spikes)
    assert np.all(bins.index[bins.spike_coords] == -1) and np.sum(bins.index == -1) == 3
    assert bins.fractions.sum() == pytest.approx(1.0 - 3 / 101)
    assert np.all(np.diff(bins.levels) <= 0)
    tgt = th.spectral_target(bins.levels, bins.fractions, observe_levels=[-1, -1, -1], spikes=bins.spikes, d=101)
    assert tgt.rho_bar == pytest.approx(spec.mean(), rel=1e-12)                # rho_bar preserved
    counts = np.bincount(bins.index[bins.index >= 0])
    assert counts.max() - counts.min() <= 1
    for l in range(bins.n_levels):                                        # each bin holds a quantile range
        assert spec[bins.index == l].mean() == pytest.approx(bins.levels[l])
    for l in range(bins.n_levels - 1):
        assert spec[bins.index == l].min() >= spec[bins.index == l + 1].max()
    w = rng.standard_normal((3, 101, 2))
    q = th.level_overlaps(w, bins.index)
    assert q.shape == (3, 4, 2, 2)
    ws = w[:, bins.spike_coords]                                          # spikes: Q = sum_l q_l + G_s G_s^T
    np.testing.assert_allclose(q.sum(axis=1) + np.einsum("kia,kib->kab", ws, ws) / 101,
                               np.einsum("kia,kib->kab", w, w) / 101, rtol=1e-12)
    again = th.bin_spectrum(spec, index=bins.index)
    np.testing.assert_allclose(again.levels, bins.levels, rtol=1e-14)
    np.testing.assert_array_equal(again.spike_coords, np.sort(bins.spike_coords))


def test_bad_inputs_rejected():
    with pytest.raises(ValueError, match="fractions"):
        th.spectral_target([1.0, 2.0], [0.5, 0.6])
    with pytest.raises(ValueError, match="fractions"):
        th.spectral_target([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="levels"):
        th.spectral_target([-1.0, 2.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="observe_levels"):
        th.spectral_target([1.0, 2.0], [0.5, 0.5], means=[[1.0]])
    with pytest.raises(ValueError, match="observe_levels"):
        th.spectral_target([1.0, 2.0], [0.5, 0.5], means=[[1.0]], observe_levels=[2])
    with pytest.raises(ValueError, match="clusters"):
        th.spectral_target([[1.0, 2.0]] * 3, [0.5, 0.5], means=[[1.0], [2.0]], observe_levels=[0])
    with pytest.raises(ValueError, match="NaN"):
        th.spectral_target([np.nan, 2.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="spikes"):
        th.spectral_target([1.0], [1.0], observe_levels=[-1, 0])                # spike without eigenvalue
    with pytest.raises(ValueError, match="spikes"):
        th.spectral_target([1.0], [1.0], observe_levels=[-1, 0], spikes=[2.0, 3.0])
    with pytest.raises(ValueError, match="spikes"):
        th.spectral_target([1.0], [1.0], observe_levels=[0], spikes=[2.0])
    with pytest.raises(ValueError, match="1 - S/d"):
        th.spectral_target([1.0], [1.0], observe_levels=[-1], spikes=[2.0], d=10)   # bulk share must be 0.9
    st = th.spectral_target([1.0], [0.9], observe_levels=[-1], spikes=[2.0], d=10)
    assert st.rho_bar == pytest.approx(0.9 + 2.0 / 10)
    st = th.spectral_target([1.0, 2.0], [0.5, 0.5])
    with pytest.raises(ValueError, match="q0"):
        th.integrate_spectral_odes(st, np.eye(2)[None], taus=[1.0])           # one level given, two needed
    with pytest.raises(ValueError, match="positive semi-definite"):
        th.integrate_spectral_odes(st, -np.eye(2), taus=[1.0])
    with pytest.raises(ValueError, match="taus"):
        th.integrate_spectral_odes(st, np.eye(2), taus=[1.0, 0.5])
    with pytest.raises(TypeError, match="SpectralTarget"):
        th.integrate_spectral_odes(th.theory_target([[1.0]]), np.eye(1), taus=[1.0])
    with pytest.raises(ValueError, match="d = 3"):
        th.bin_spectrum([1.0, 2.0, 3.0], 4)
    with pytest.raises(ValueError, match="empty"):
        th.bin_spectrum([1.0, 2.0, 3.0], index=[0, 2, 2])
    with pytest.raises(ValueError, match="not both"):
        th.bin_spectrum([1.0, 2.0, 3.0], 2, index=[0, 1, 1])
    with pytest.raises(ValueError, match="spectrum"):
        th.bin_spectrum([1.0, -2.0, 3.0], 2)
    with pytest.raises(ValueError, match="index"):
        th.level_overlaps(np.ones((3, 2)), [0, 1])
