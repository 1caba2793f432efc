"""Machinery shared by the training ODEs of :mod:`._theory` and :mod:`._spectral`: time
nodes, the Gauss-Hermite rule, the fields at one loss time, the O(eta) pair coefficients,
the common tail of the right-hand sides, RK4 and the validated problem (docs/dae.md,
"Theory").
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.polynomial.hermite_e import hermegauss

from .._validation import check_allocation, check_bool, check_choice, check_finite_array, check_positive_int, check_real
from ._activations import activation as _activation
from ._activations import check_activation

if TYPE_CHECKING:  # _theory imports this module: the name is only needed for the annotation
    from ._theory import TheoryTarget

# RK4 steps beyond this take hours (each step evaluates the right-hand side 4 times).
_MAX_RK4_STEPS = 1e7


def _time_nodes(times: Any, n_uniform: int = 16) -> tuple[np.ndarray, np.ndarray, bool]:
    """Times and weights: the grid G (equal weights) or Gauss-Legendre nodes on [0, 1]."""
    if isinstance(times, str):
        check_choice(times, "times", ("uniform",))
        x, w = np.polynomial.legendre.leggauss(n_uniform)
        return 0.5 * (x + 1.0), 0.5 * w, True
    ts = check_finite_array(np.atleast_1d(times), "times", ndim=1)
    if np.any(ts < 0) or np.any(ts > 1):
        raise ValueError(f"times must lie in [0, 1], got {ts}")
    return ts, np.full(len(ts), 1.0 / len(ts)), False



def _check_Q(Q: Any) -> np.ndarray:
    Q = check_finite_array(Q, "Q", ndim=2)
    if Q.shape[0] != Q.shape[1] or not np.allclose(Q, Q.T, rtol=1e-10, atol=1e-12 * np.abs(Q).max()):
        raise ValueError(f"Q must be a symmetric (r, r) matrix, got shape {Q.shape}")
    ev = np.linalg.eigvalsh(Q)
    if ev.min() < -1e-10 * max(1.0, ev.max()) or ev.max() > 1e150:
        raise ValueError("Q must be positive semi-definite with eigenvalues below 1e150 (an overlap matrix)")
    return Q



def _sqrtm_psd(A: np.ndarray) -> np.ndarray:
    ev, U = np.linalg.eigh(0.5 * (A + A.T))
    return (U * np.sqrt(np.clip(ev, 0.0, None))) @ U.T


@dataclasses.dataclass
class _Problem:
    target: TheoryTarget
    act: str
    lr: float
    weight_decay: float
    train_b: bool
    ts: np.ndarray
    tw: np.ndarray
    uniform: bool
    p0: float
    p1: float
    nodes: np.ndarray      # (N, 2r) standard normal nodes
    node_w: np.ndarray     # (N,)
    quadratic: bool


def _gh_grid(dim: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = hermegauss(n)
    w = w / np.sqrt(2.0 * np.pi)
    grids = np.meshgrid(*([x] * dim), indexing="ij")
    wgrids = np.meshgrid(*([w] * dim), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1)
    weights = np.prod(np.stack([g.ravel() for g in wgrids], axis=1), axis=1)
    keep = weights > 1e-14 * weights.max()
    return nodes[keep], weights[keep]


def _time_fields(pb: _Problem, t: float, lam0, lam1, xi0, xi1, b: float, v, Q):
    """Fields at loss time t on the quadrature nodes: alpha, beta, p_t, lambda_t, s = sigma(h_t),
    lambda_e = lambda_1 - b lambda_t - Q s, u = sigma'(h_t) lambda_e, xi_t."""
    al, be, pt = 1.0 - t, t, pb.p0 + pb.p1 * t
    lt = al * lam0 + be * lam1
    s, ds = _activation(pb.act, lt + pt * v)
    le = lam1 - b * lt - s @ Q
    return al, be, pt, lt, s, le, ds * le, al * xi0 + be * xi1



def _quadratic_pairs(pb: _Problem, pc: float, b: float, rho, S: list, U: list,
                     XT: list) -> Iterator[tuple[Any, Any, Any, Any, np.ndarray, np.ndarray, int]]:
    """The pairs (t, t') of the O(eta) term of dQ (one t per step in uniform mode), each as
    (A_ee, A_ex, A_xe, A_xx, s_t w, u_t w, index of t'): the concentrated inner products
    e_t^T e_t' / d, ... at second moment ``rho`` (a number, or one per level), and the
    fields at t weighted by the node weights times pi_c ``pc`` times the pair's weight."""
    nt = len(pb.ts)
    pairs = [(i, i) for i in range(nt)] if pb.uniform else [(i, j) for i in range(nt) for j in range(nt)]
    for i, j in pairs:
        (a1, b1), (a2, b2) = XT[i], XT[j]
        wij = pb.tw[i] if pb.uniform else pb.tw[i] * pb.tw[j]
        Aee = (1 - b * b1) * (1 - b * b2) * rho + b * b * a1 * a2
        Aex = (1 - b * b1) * b2 * rho - b * a1 * a2
        Axe = (1 - b * b2) * b1 * rho - b * a1 * a2
        Axx = a1 * a2 + b1 * b2 * rho
        wn = pb.node_w * (pc * wij)
        yield Aee, Aex, Axe, Axx, S[i] * wn[:, None], U[i] * wn[:, None], j


def _rhs_tail(pb: _Problem, Q: np.ndarray, dQ: np.ndarray, G: np.ndarray, dG: np.ndarray, b: float,
              v: np.ndarray, dv: np.ndarray, net_b: float) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    """Weight decay on (Q or q, G, v) and the skip connection's db; returns (dQ, dG, db, dv)."""
    tg = pb.target
    dQ -= pb.weight_decay * Q
    dG -= 0.5 * pb.weight_decay * G
    dv -= 0.5 * pb.weight_decay * v
    if pb.train_b:
        rb = tg.rho_bar
        db = float(pb.tw @ (pb.ts * rb - b * (pb.ts**2 * rb + (1 - pb.ts) ** 2)))
        if np.isfinite(tg.d):
            db -= net_b / tg.d          # e contains -w s / sqrt d: O(1/d), kept at finite d
    else:
        db = 0.0
    return dQ, dG, db, dv


def _rk4_path(f, state: tuple, keys: Sequence[str], taus: np.ndarray, dtau: float) -> dict:
    """Classical RK4 on a tuple state from tau = 0, steps <= ``dtau``, recorded at ``taus``."""
    out: dict[str, list] = {k: [] for k in keys}
    tau = 0.0

    def axpy(st, k, h):
        return tuple(s + h * ks for s, ks in zip(st, k))

    for target_tau in taus:
        span = target_tau - tau
        if span > 0:
            n = int(np.ceil(span / dtau - 1e-9))
            h = span / n
            for _ in range(n):
                k1 = f(state)
                k2 = f(axpy(state, k1, h / 2))
                k3 = f(axpy(state, k2, h / 2))
                k4 = f(axpy(state, k3, h))
                state = tuple(s + h / 6 * (a + 2 * bb + 2 * c + dd) for s, a, bb, c, dd in zip(state, k1, k2, k3, k4))
            tau = target_tau
        for key, val in zip(keys, state):
            out[key].append(np.array(val, dtype=float))
    return out



def _ode_problem(target, r: int, taus, activation, lr, weight_decay, times, time_encoding, train_b, quadratic,
                 n_nodes, dtau, n_uniform):
    """Validated (taus, dtau, _Problem) shared by integrate_odes and integrate_spectral_odes."""
    taus = check_finite_array(np.atleast_1d(taus), "taus", ndim=1)
    if np.any(np.diff(taus) < 0) or taus[0] < 0:
        raise ValueError("taus must be non-negative and non-decreasing")
    check_activation(activation)
    dtau = check_real(dtau, "dtau", low=0.0, low_open=True)
    if taus[-1] / dtau + len(taus) > _MAX_RK4_STEPS:
        raise ValueError(f"taus[-1] / dtau = {taus[-1] / dtau:.3g} RK4 steps (at most {_MAX_RK4_STEPS:.0e}); "
                         "increase dtau or reduce taus")
    n_uniform = check_positive_int(n_uniform, "n_uniform", maximum=1000)
    if n_nodes is None:
        n_nodes = int(min(60, max(3, round(2e4 ** (1.0 / (2 * r))))))
    n_nodes = check_positive_int(n_nodes, "n_nodes")
    check_allocation(float(n_nodes) ** (2 * r) * (2 * r + 2) * 4, "n_nodes", f"the {2 * r}-dimensional quadrature grid")
    ts, tw, uniform = _time_nodes(times, n_uniform)
    enc = check_finite_array(time_encoding, "time_encoding", ndim=1, shape=(2,))
    nodes, node_w = _gh_grid(2 * r, n_nodes)
    pb = _Problem(target, activation, check_real(lr, "lr", low=0.0), check_real(weight_decay, "weight_decay", low=0.0),
                  check_bool(train_b, "train_b"), ts, tw, uniform, float(enc[0]), float(enc[1]), nodes, node_w,
                  check_bool(quadratic, "quadratic"))
    return taus, dtau, pb


def _check_ode_output(res: dict) -> None:
    if not all(np.all(np.isfinite(v)) for v in res.values()):
        raise ValueError("the ODE solution blew up (NaN/inf): reduce dtau, or lr, or the initial Q0/q0, G0, b0, v0")
