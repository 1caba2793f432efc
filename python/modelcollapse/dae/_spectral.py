"""Spectral-density closure (Cui et al., App. A.2.3; integrate_spectral_odes). Clusters share a
diagonal eigenbasis. Bulk level l holds a fraction f_l of the d coordinates, on which
cluster c has the eigenvalue rho_{c,l}; spikes are single eigen-directions (eigenvalue
rho_{c,j}) and must be columns of E; the other columns j of E are supported on one level
l(j) (E_l^T E_l = diag(1[l(j) = l]), E_l = rows of E in l); means mu_c = E m_c. State:
q_l = sum_{i in l} w_i w_i^T / d (r x r), G, b, v; then, with G_s the spike columns of G,

    Q = sum_l q_l + G_s G_s^T,   Q_c = sum_l rho_{c,l} q_l + G_s diag(rho_{c,s}) G_s^T,
    M_c = G m_c,   M_c^l = G_{:,l} m_{c,l} (columns of level l).

Derivation: the SGD increment of row i is Delta w_i = (2 eta / sqrt d) <e_{t,i} s_t +
x_{t,i} u_t>_t - (eta lambda / d) w_i, e_{t,i} = x_{1,i} - b x_{t,i} - w_i^T s_t / sqrt d, so
the linear part of Delta q_l involves the level fields lambda_a^l = sum_{i in l} w_i x_{a,i}
/ sqrt d, jointly Gaussian with the fields: Cov(lambda_0^l, lambda_0) = q_l,
Cov(lambda_1^l, lambda_1) = rho_{c,l} q_l. s and u depend on the fields only, hence exactly

    E[lambda_0^l | lambda_0] = q_l Q^+ lambda_0,
    E[lambda_1^l | lambda_1] = M_c^l + rho_{c,l} q_l Q_c^+ (lambda_1 - M_c),
    dq_l/dtau = <A_l + A_l^T> - lambda q_l
                + 2 eta f_l <<s s'^T A_ee + s u'^T A_ex + u s'^T A_xe + u u'^T A_xx>>_{rho = rho_{c,l}},
    A_l = (E[lambda_1^l | .] - b E[lambda_t^l | .]) s^T - q_l s s^T + E[lambda_t^l | .] u^T,

since sum_{i in l} e_{t,i} e_{t',i} / d -> f_l A_ee(rho_{c,l}) etc. (the A's above with
rho_c -> rho_{c,l}; + ||m_{c,l}||^2 / (f_l d) at finite d). G obeys the dG above with
P_c = diag(rho of column j) (Cov(lambda_1, xi_{1,j}) = rho_{c,j} G_{:,j}); b the closed form
with rho_bar = sum_c pi_c sum_l f_l rho_{c,l} (+ (sum of spikes + ||m_c||^2) / d at finite d).
With L = 1 and no spikes the sum over l of dq_l is the isotropic dQ (tested to 1e-16).
A spike must not be a level of one coordinate: a level is an eigenspace of macroscopic
dimension, in which all r hidden units can align at once, so q_l - G_j G_j^T would be an
unstable mode seeded by the O(eta / d) quadratic term; as a column of E its contribution
is G_j G_j^T exactly (its own O(eta / d) quadratic term is dropped).

The isotropic theory is in :mod:`._theory`, the machinery both share in :mod:`._odes`
(docs/dae.md, "Spectral-density closure").
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from .._validation import check_allocation, check_finite_array, check_positive_int, check_real
from ._odes import (
    _check_ode_output,
    _ode_problem,
    _Problem,
    _quadratic_pairs,
    _rhs_tail,
    _rk4_path,
    _sqrtm_psd,
    _time_fields,
)
from ._records import SpectralPath


@dataclasses.dataclass(frozen=True)
class SpectrumBins:
    """A covariance spectrum discretised for the spectral closure.

    ``fractions[l]`` (L,): share of the d coordinates in bulk level l, whose eigenvalue is
    ``levels[l]`` (the mean of its eigenvalues, so rho_bar is preserved); ``spikes`` (S,):
    the eigenvalues kept as spikes (single directions, tracked through their overlaps G);
    ``spike_coords`` (S,): their coordinates; ``index`` (d,): the bulk level of each
    coordinate of the spectrum as given (same order), -1 for spikes. Bulk fractions sum to
    1 - S/d.
    """

    fractions: np.ndarray
    levels: np.ndarray
    index: np.ndarray
    spikes: np.ndarray
    spike_coords: np.ndarray

    @property
    def n_levels(self) -> int:
        return int(len(self.fractions))

    @property
    def d(self) -> int:
        return int(len(self.index))


def bin_spectrum(spectrum: Any, n_levels: int | None = None, *, n_spikes: int = 0, index: Any = None) -> SpectrumBins:
    """Bin a covariance spectrum (e.g. the eigenvalues of a covariance matrix) into levels.

    Parameters
    ----------
    spectrum : (d,) non-negative eigenvalues, any order.
    n_levels : number of quantile bins: the eigenvalues that are not spikes are sorted and
        split into ``n_levels`` groups of (nearly) equal counts.
    n_spikes : the ``n_spikes`` largest eigenvalues are kept as spikes (directions of their
        own): isolated eigenvalues that a bulk level would misrepresent, since a level is an
        eigenspace of macroscopic dimension in which all hidden units can align at once (e.g.
        the leading principal components of an image class, which the DAE learns first).
    index : (d,) explicit bulk level of each eigenvalue (integers 0..L-1, every level used;
        -1 marks a spike), instead of ``n_levels`` / ``n_spikes``: e.g. the exact levels of
        a piecewise-constant spectrum. Levels are numbered as given.

    Returns
    -------
    SpectrumBins; with quantile bins the levels are in decreasing order of eigenvalue and
    the spikes in decreasing order.
    """
    spec = check_finite_array(spectrum, "spectrum", ndim=1)
    if np.any(spec < 0):
        raise ValueError("spectrum must be >= 0 (variances)")
    d = spec.shape[0]
    if index is not None:
        if n_levels is not None or n_spikes:
            raise ValueError("give either index or n_levels (with n_spikes), not both")
        idx = np.asarray(index)
        if idx.shape != (d,) or not np.issubdtype(idx.dtype, np.integer) or idx.min() < -1 or idx.max() < 0:
            raise ValueError(f"index must be ({d},) integers >= -1 (the level of each eigenvalue, -1: spike), "
                             "with at least one bulk level")
        bulk = idx >= 0
        counts = np.bincount(idx[bulk])
        if np.any(counts == 0):
            raise ValueError(f"index leaves level(s) {np.flatnonzero(counts == 0).tolist()} empty")
        levels = np.bincount(idx[bulk], weights=spec[bulk]) / counts
        sc = np.flatnonzero(~bulk)
        return SpectrumBins(counts / d, levels, idx.astype(np.int64), spec[sc].copy(), sc)
    if n_levels is None:
        raise ValueError("give n_levels (number of quantile bins) or index")
    n_levels = check_positive_int(n_levels, "n_levels")
    n_spikes = check_positive_int(n_spikes, "n_spikes", minimum=0)
    if n_spikes + n_levels > d:
        raise ValueError(f"n_spikes + n_levels = {n_spikes + n_levels} exceeds the dimension d = {d}")
    order = np.argsort(-spec, kind="stable")
    groups = np.array_split(order[n_spikes:], n_levels)
    index = np.full(d, -1, dtype=np.int64)
    for l, g in enumerate(groups):
        index[g] = l
    fractions = np.array([len(g) / d for g in groups])
    levels = np.array([spec[g].mean() for g in groups])
    sc = order[:n_spikes].copy()
    return SpectrumBins(fractions, levels, index, spec[sc].copy(), sc)


def level_overlaps(w: Any, index: Any, n_levels: int | None = None) -> np.ndarray:
    """Per-level densities q_l = sum_{i in level l} w_i w_i^T / d of weights ``w`` (d, r) or
    (replicas, d, r) given in the eigenbasis of the spectrum; ``index`` (d,) bulk level of each
    coordinate, -1 for spikes, which are left out (e.g. ``bin_spectrum(...).index``).
    Returns (L, r, r) or (replicas, L, r, r)."""
    ww = check_finite_array(w, "w", ndim=(2, 3))
    d = ww.shape[-2]
    idx = np.asarray(index)
    if idx.shape != (d,) or not np.issubdtype(idx.dtype, np.integer) or idx.min() < -1 or idx.max() < 0:
        raise ValueError(f"index must be ({d},) integers >= -1 (the level of each coordinate, -1: spike; "
                         f"one per row of w, whose shape is {ww.shape})")
    L = int(idx.max()) + 1 if n_levels is None else check_positive_int(n_levels, "n_levels")
    check_allocation(float(d) * L + float(ww.size) / d * L * ww.shape[-1], "n_levels", "the level indicator")
    if idx.max() >= L:
        raise ValueError(f"index has levels up to {idx.max()}, more than n_levels = {L}")
    onehot = np.zeros((d, L))
    bulk = idx >= 0
    onehot[np.flatnonzero(bulk), idx[bulk]] = 1.0
    return np.einsum("...ia,il,...ib->...lab", ww, onehot, ww) / d


@dataclasses.dataclass(frozen=True)
class SpectralTarget:
    """Target whose clusters share a diagonal eigenbasis, for the spectral-density closure.

    Bulk level l holds the fraction ``fractions[l]`` (L,) of the d coordinates; cluster c
    (weight ``weights[c]``) has the eigenvalue ``rho[c, l]`` on them (``rho`` (K, L)). The
    observation basis E (d x R) has columns j that are either supported on the coordinates of
    one bulk level ``obs_levels[j]`` >= 0, or are spikes (``obs_levels[j]`` = -1): single
    eigen-directions with eigenvalue ``dir_rho[c, j]`` in cluster c (``dir_rho`` (K, R), used
    for spikes only). Cluster means are E m_c (``m`` (K, R)). ``d``: finite-d corrections
    (spikes' and means' share of rho_bar, as in :class:`TheoryTarget`); np.inf for d -> inf.
    """

    fractions: np.ndarray
    rho: np.ndarray
    weights: np.ndarray
    m: np.ndarray
    obs_levels: np.ndarray
    dir_rho: np.ndarray
    d: float = np.inf

    @property
    def n_levels(self) -> int:
        return int(len(self.fractions))

    @property
    def spike_mask(self) -> np.ndarray:
        return self.obs_levels < 0

    @property
    def onehot(self) -> np.ndarray:
        """(R, L) indicator of the bulk level of each observation direction (0 rows for spikes)."""
        oh = np.zeros((len(self.obs_levels), self.n_levels))
        bulk = np.flatnonzero(self.obs_levels >= 0)
        oh[bulk, self.obs_levels[bulk]] = 1.0
        return oh

    @property
    def direction_rho(self) -> np.ndarray:
        """(K, R) eigenvalue of each observation direction (its level's, or the spike's)."""
        lv = np.clip(self.obs_levels, 0, None)
        return np.where(self.spike_mask[None, :], self.dir_rho, self.rho[:, lv])

    @property
    def rho_eff(self) -> np.ndarray:
        """(K, L) per-coordinate second moment on bulk level l: rho[c, l] (+ ||m_c on l||^2 /
        (f_l d) at finite d)."""
        if not np.isfinite(self.d):
            return self.rho
        return self.rho + (self.m**2 @ self.onehot) / (self.fractions * self.d)

    @property
    def rho_bar(self) -> float:
        """E_c[tr Sigma_c] / d = sum_c pi_c sum_l f_l rho[c, l] (+ (spike eigenvalues +
        ||mu_c||^2) / d at finite d)."""
        per = self.rho_eff @ self.fractions
        if np.isfinite(self.d):
            spk = self.spike_mask
            per = per + (self.dir_rho[:, spk].sum(axis=1) + np.sum(self.m[:, spk] ** 2, axis=1)) / self.d
        return float(self.weights @ per)


def spectral_target(levels: Any, fractions: Any, means: Any = None, observe_levels: Any = None,
                    spikes: Any = None, weights: Any = None, d: float | None = None) -> SpectralTarget:
    """Validated :class:`SpectralTarget`.

    Parameters
    ----------
    levels : (L,) bulk eigenvalues shared by all clusters, or (K, L) per cluster.
    fractions : (L,) positive shares of the coordinates in each bulk level. They sum to 1,
        or to 1 - S/d when ``d`` is given and there are S spikes (``bin_spectrum`` output).
    means : (K, R) cluster means in the coordinates of the observation basis E; default
        zeros (K, R) (R = 0 when ``observe_levels`` is not given either).
    observe_levels : (R,) bulk level of each column of E, or -1 for a spike direction.
        Required when R > 0. Exact when column j is supported on its level's coordinates.
    spikes : (S,) or (K, S) eigenvalues of the spike directions (the -1 entries of
        ``observe_levels``, in order); required when there are spikes.
    weights : (K,) mixture weights (default uniform).
    d : keep O(1/d) parts (spikes and mean energy in rho_bar and rho_eff); None = d -> inf.
    """
    lv = check_finite_array(levels, "levels", ndim=(1, 2))
    L = lv.shape[-1]
    ff = check_finite_array(fractions, "fractions", ndim=1)
    if ff.shape != (L,):
        raise ValueError(f"fractions must have shape ({L},) like the last axis of levels, got {ff.shape}")
    if np.any(lv < 0):
        raise ValueError("levels must be >= 0 (covariance eigenvalues)")
    dd = np.inf if d is None else check_real(d, "d", low=1.0)
    K = lv.shape[0] if lv.ndim == 2 else 1
    if means is not None:
        mm = check_finite_array(means, "means", ndim=2, allow_empty=True)
        if mm.shape[0] == 0:
            raise ValueError("means must have at least one row (one per cluster)")
        if lv.ndim == 2 and lv.shape[0] != mm.shape[0]:
            raise ValueError(f"levels has {lv.shape[0]} rows but there are {mm.shape[0]} clusters (rows of means)")
        K = mm.shape[0]
    if observe_levels is None:
        ol = np.zeros(0, dtype=np.int64)
    else:
        ol = np.atleast_1d(np.asarray(observe_levels))
        if ol.size and (ol.ndim != 1 or not np.issubdtype(ol.dtype, np.integer) or ol.min() < -1 or ol.max() >= L):
            raise ValueError(f"observe_levels must be a 1-d array of integers in [-1, {L}) (-1: spike), "
                             f"got {observe_levels!r}")
        ol = ol.astype(np.int64)
    R = len(ol)
    if means is None:
        mm = np.zeros((K, R))
    elif mm.shape[1] != R:
        raise ValueError(f"means has {mm.shape[1]} columns but observe_levels gives {R} observation directions "
                         "(observe_levels is required when means has columns)")
    rho = np.broadcast_to(lv, (K, L)).astype(float)
    S = int(np.sum(ol < 0))
    dir_rho = np.zeros((K, R))
    if S:
        if spikes is None:
            raise ValueError(f"observe_levels marks {S} spike direction(s) (-1): give their eigenvalues in spikes")
        sp = check_finite_array(spikes, "spikes", ndim=(1, 2))
        if sp.shape[-1] != S or (sp.ndim == 2 and sp.shape[0] != K):
            raise ValueError(f"spikes must have shape ({S},) or ({K}, {S}), got {sp.shape}")
        if np.any(sp < 0):
            raise ValueError("spikes must be >= 0 (covariance eigenvalues)")
        dir_rho[:, ol < 0] = np.broadcast_to(sp, (K, S))
    elif spikes is not None and np.size(spikes) > 0:
        raise ValueError("spikes given but observe_levels marks no spike direction (-1)")
    total = ff.sum() + (S / dd if np.isfinite(dd) else 0.0)
    if np.any(ff <= 0) or abs(total - 1.0) > 1e-8 * max(1, S):
        raise ValueError(f"fractions must be positive and sum to 1 (1 - S/d with S spikes and d given), "
                         f"got sum {ff.sum():.10g}" + (f" + S/d = {total:.10g}" if S and np.isfinite(dd) else ""))
    ww = np.full(K, 1.0 / K) if weights is None else check_finite_array(weights, "weights", ndim=1, shape=(K,))
    if np.any(ww < 0) or ww.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return SpectralTarget(ff, rho, ww / ww.sum(), mm, ol, dir_rho, dd)


def spectral_ode_rhs(q: np.ndarray, G: np.ndarray, b: float, v: np.ndarray, pb: _Problem):
    """Right-hand side (dq, dG, db, dv) of the spectral-density ODEs (module docstring);
    ``q`` (L, r, r) bulk densities, ``pb.target`` a :class:`SpectralTarget`."""
    tg = cast(SpectralTarget, pb.target)
    L, r = q.shape[0], q.shape[1]
    R = G.shape[1]
    spk = tg.spike_mask
    Gs = G[:, spk]
    Q = q.sum(axis=0) + Gs @ Gs.T
    oh = tg.onehot
    prho = tg.direction_rho
    g0, g1 = pb.nodes[:, :r], pb.nodes[:, r:]
    lam0 = g0 @ _sqrtm_psd(Q).T
    Qp = np.linalg.pinv(Q, rcond=1e-10, hermitian=True)
    K0 = q @ Qp                                                          # E[lam0_l | lam0] = K0_l lam0
    xi0 = lam0 @ (Qp @ G)
    dq = np.zeros((L, r, r))
    dG = np.zeros((r, R))
    dv = np.zeros(r)
    net_b = 0.0
    rho_eff = tg.rho_eff
    for c in range(len(tg.weights)):
        pc = tg.weights[c]
        if pc == 0:
            continue
        rc = tg.rho[c]
        Qc = np.einsum("l,lab->ab", rc, q) + (Gs * prho[c, spk]) @ Gs.T
        Qcp = np.linalg.pinv(Qc, rcond=1e-10, hermitian=True)
        Mc = G @ tg.m[c]
        Ml = ((G * tg.m[c]) @ oh).T                                       # (L, r) M_c^{(l)}, bulk columns
        K1 = rc[:, None, None] * (q @ Qcp)                                # E[lam1_l | lam1] = a_l + K1_l lam1
        a = Ml - K1 @ Mc
        lam1 = Mc + g1 @ _sqrtm_psd(Qc).T
        xi1 = tg.m[c] + ((lam1 - Mc) @ (Qcp @ G)) * prho[c]
        S, U, XT = [], [], []
        for t, wt in zip(pb.ts, pb.tw):
            al, be, pt, lt, s, le, u, xt = _time_fields(pb, t, lam0, lam1, xi0, xi1, b, v, Q)
            wn = pb.node_w * (pc * wt)
            sw, uw = s * wn[:, None], u * wn[:, None]
            dG += sw.T @ (xi1 - b * xt) - (sw.T @ s) @ G + uw.T @ xt
            Es, Eu = sw.sum(axis=0), uw.sum(axis=0)
            SS = sw.T @ s
            L0S, L1S = lam0.T @ sw, lam1.T @ sw                           # E[lam s^T]
            L0U, L1U = lam0.T @ uw, lam1.T @ uw
            A = ((1 - b * be) * (a[:, :, None] * Es + K1 @ L1S) - b * al * (K0 @ L0S) - q @ SS
                 + al * (K0 @ L0U) + be * (a[:, :, None] * Eu + K1 @ L1U))
            dq += A + A.transpose(0, 2, 1)
            dv += pt * Eu
            net_b += float(np.sum(sw * lt))
            S.append(s)
            U.append(u)
            XT.append((al, be))
        if pb.quadratic and pb.lr > 0:
            rho = rho_eff[c]                                              # (L,)
            co = 2.0 * pb.lr * tg.fractions
            for Aee, Aex, Axe, Axx, si, ui, j in _quadratic_pairs(pb, pc, b, rho, S, U, XT):
                SSm, SUm, USm, UUm = si.T @ S[j], si.T @ U[j], ui.T @ S[j], ui.T @ U[j]
                dq += ((co * Aee)[:, None, None] * SSm + (co * Aex)[:, None, None] * SUm
                       + (co * Axe)[:, None, None] * USm + (co * Axx)[:, None, None] * UUm)
    return _rhs_tail(pb, q, dq, G, dG, b, v, dv, net_b)


def integrate_spectral_odes(target: SpectralTarget, q0: Any, G0: Any = None, b0: float = 0.0, v0: Any = None, *,
                            taus: Any, activation: str = "tanh", lr: float = 0.2, weight_decay: float = 0.0,
                            times: Sequence[float] | str = (0.5,), time_encoding: Sequence[float] = (0.0, 0.0),
                            train_b: bool = True, quadratic: bool = True, n_nodes: int | None = None,
                            dtau: float = 0.02, n_uniform: int = 12) -> SpectralPath:
    """Integrate the spectral-density training ODEs (RK4, step <= ``dtau``), report at ``taus``.

    Parameters
    ----------
    target : SpectralTarget (see :func:`spectral_target`, :func:`bin_spectrum`).
    q0 : (L, r, r) initial bulk densities (e.g. :func:`level_overlaps` of the initial
        weights in the eigenbasis), or (r, r) Q0 spread as q_l = f_l Q0 / sum(f) (the
        d -> infinity limit of an isotropic random initialisation).
    G0 : (r, R) initial overlaps with the observation basis (default 0; note that M = 0 and
        a vanishing spike overlap are fixed points).
    Other arguments as in :func:`integrate_odes`.

    Returns
    -------
    SpectralPath (a :class:`TrainingPath` plus q and Qc) with tau (n,), q (n, L, r, r) bulk
    densities, Q (n, r, r) = sum_l q_l + spike part G_s G_s^T,
    Qc (n, K, r, r) = sum_l rho[c, l] q_l + G_s diag(spikes_c) G_s^T, G (n, r, R),
    M (n, K, r), b (n,), v (n, r).
    """
    if not isinstance(target, SpectralTarget):
        raise TypeError("target must be a SpectralTarget (see spectral_target)")
    L = target.n_levels
    q0 = check_finite_array(q0, "q0", ndim=(2, 3))
    if q0.ndim == 2:
        q0 = (target.fractions / target.fractions.sum())[:, None, None] * q0[None]
    r = q0.shape[-1]
    if q0.shape != (L, r, r):
        raise ValueError(f"q0 must have shape ({L}, r, r) or (r, r), got {q0.shape}")
    if not np.allclose(q0, q0.transpose(0, 2, 1), atol=1e-10 * max(1.0, float(np.abs(q0).max()))):
        raise ValueError("q0 must be symmetric (per level)")
    if np.any(np.linalg.eigvalsh(q0) < -1e-10 * max(1.0, float(np.abs(q0).max()))):
        raise ValueError("q0 must be positive semi-definite (per level)")
    R = target.m.shape[1]
    G = np.zeros((r, R)) if G0 is None else check_finite_array(G0, "G0", ndim=2, shape=(r, R), allow_empty=True)
    v = np.zeros(r) if v0 is None else check_finite_array(v0, "v0", ndim=1, shape=(r,))
    taus, dtau, pb = _ode_problem(target, r, taus, activation, lr, weight_decay, times, time_encoding, train_b,
                                  quadratic, n_nodes, dtau, n_uniform)

    def f(state):
        qs, Gs, bs, vs = state
        return spectral_ode_rhs(0.5 * (qs + qs.transpose(0, 2, 1)), Gs, bs, vs, pb)

    with np.errstate(over="ignore", invalid="ignore"):
        out = _rk4_path(f, (q0.copy(), G, float(check_real(b0, "b0")), v), ("q", "G", "b", "v"), taus, dtau)
    res = {k: np.array(v_) for k, v_ in out.items()}
    _check_ode_output(res)
    spk = target.spike_mask
    Gs = res["G"][:, :, spk]
    return SpectralPath(tau=taus, Q=res["q"].sum(axis=1) + np.einsum("nas,nbs->nab", Gs, Gs), G=res["G"],
                        M=np.einsum("nrR,kR->nkr", res["G"], target.m), b=res["b"], v=res["v"], q=res["q"],
                        Qc=(np.einsum("kl,nlab->nkab", target.rho, res["q"])
                            + np.einsum("nas,ks,nbs->nkab", Gs, target.dir_rho[:, spk], Gs)))
