"""True KL on a 2D grid: the reverse-time Fokker-Planck equation of the sampler with a given
score, solved with Scharfetter-Gummel finite volumes (docs/hodge.md "Ground truth")."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .._validation import check_finite_array, check_positive_int, check_real
from ..results import Record
from ..sampler import time_grid
from ._common import ScoreFn, _check_box, _check_callable
from ._grid import _check_cells, _StaggeredGrid


@dataclasses.dataclass(frozen=True)
class FokkerPlanckKL(Record):
    """Result of :func:`fokker_planck_kl_2d`.

    kl : KL(p_delta || q_delta) on the grid.
    q, p : (n, n) densities of the sampler's law and of the target on the cells.
    xc, yc : (n,) cell centres.
    """

    kl: float
    q: np.ndarray
    p: np.ndarray
    xc: np.ndarray
    yc: np.ndarray


def _bernoulli(z: np.ndarray) -> np.ndarray:
    """B(z) = z / (e^z - 1), stable near 0."""
    out = np.ones_like(z)
    nz = np.abs(z) > 1e-8
    out[nz] = z[nz] / np.expm1(z[nz])
    out[~nz] = 1 - z[~nz] / 2
    return out


def _drift_operator(grid: _StaggeredGrid, score: ScoreFn, t: float) -> scipy.sparse.csr_matrix:
    """q -> -div(q b) + lap q with b(y) = y + 2 s(t, y): Scharfetter-Gummel fluxes (unit
    diffusion), zero flux on the boundary."""
    xf, yf, hx, hy = grid.xf, grid.yf, grid.hx, grid.hy
    L_, R_, B_, U_ = grid.left, grid.right, grid.below, grid.above
    bx = xf[:, 0] + 2 * check_finite_array(score(xf, t), "score(x, t)", shape=(len(xf), 2))[:, 0]
    by = yf[:, 1] + 2 * check_finite_array(score(yf, t), "score(x, t)", shape=(len(yf), 2))[:, 1]
    # flux L->R: (B(-z) q_L - B(z) q_R) / h with z = b h (unit diffusion)
    zx, zy = bx * hx, by * hy
    aL, aR = _bernoulli(-zx) / hx**2, _bernoulli(zx) / hx**2
    aB, aU = _bernoulli(-zy) / hy**2, _bernoulli(zy) / hy**2
    rows = np.concatenate([L_, L_, R_, R_, B_, B_, U_, U_])
    cols = np.concatenate([L_, R_, L_, R_, B_, U_, B_, U_])
    vals = np.concatenate([-aL, aR, aL, -aR, -aB, aU, aB, -aU])
    return grid.sparse(vals, rows, cols)


def fokker_planck_kl_2d(score: ScoreFn, target_logpdf: Callable[[np.ndarray], np.ndarray], T: float, delta: float,
                        box: Sequence[float], n: int = 96, steps: int = 200) -> FokkerPlanckKL:
    """KL(p_delta || q_delta) with q the law of the continuous reverse SDE from N(0, I).

    Solves dq/dtau = -div(q b) + lap q, b(tau, y) = y + 2 s(T - tau, y), on a box with zero
    flux: Scharfetter-Gummel finite volumes (positive, mass-conserving for any drift) and
    implicit Euler on a quadratic time grid (dense near delta). The discretisation floor is
    measured by running the exact score through the same solver.

    Parameters
    ----------
    score : callable (x (m, 2), t) -> (m, 2)
        The model score.
    target_logpdf : callable x -> (m,)
        log p_delta (up to a constant).
    T, delta : float
        Horizon and early-stopping time.
    box : (xmin, xmax, ymin, ymax)
    n : int
        Cells per axis.
    steps : int
        Implicit Euler steps.
    """
    _check_callable(score, "score")
    _check_callable(target_logpdf, "target_logpdf")
    T = check_real(T, "T", low=0.0, low_open=True)
    delta = check_real(delta, "delta", low=0.0, low_open=True, high=T, high_open=True)
    box = _check_box(box)
    n = check_positive_int(n, "n", minimum=4)
    _check_cells(float(n) * n, "n")
    steps = check_positive_int(steps, "steps")
    _check_cells(float(n) * n * steps / 1000.0, "steps")   # steps sparse solves of n^2 cells
    grid = _StaggeredGrid.build(box, n, n)
    hx, hy, centres, N = grid.hx, grid.hy, grid.centres, grid.n_cells
    times = time_grid(T, delta, steps, "quadratic")
    q = np.exp(-0.5 * np.sum(centres**2, axis=1))
    q /= q.sum() * hx * hy
    eye = scipy.sparse.identity(N, format="csr")
    for k in range(steps):
        h = times[k] - times[k + 1]
        A = (eye - h * _drift_operator(grid, score, times[k + 1])).tocsc()
        q = scipy.sparse.linalg.spsolve(A, q)
    q = np.maximum(q, 1e-300)
    q /= q.sum() * hx * hy
    lp = check_finite_array(target_logpdf(centres), "target_logpdf(x)", shape=(N,))
    p = np.exp(lp - lp.max())
    p /= p.sum() * hx * hy
    mask = p > 0
    kl = float(np.sum(p[mask] * (np.log(p[mask]) - np.log(q[mask]))) * hx * hy)
    if not np.isfinite(kl) or not np.all(np.isfinite(q)):
        raise ValueError("the Fokker-Planck solve overflowed: the score is too large on the box (or box too large)")
    return FokkerPlanckKL(kl=kl, q=q.reshape(n, n), p=p.reshape(n, n), xc=grid.xc, yc=grid.yc)
