"""The weighted Poisson equation div(p grad phi) = div(p e) on a 2D grid: finite volumes on a
staggered grid (the ground truth of the Hodge split for 2D mixtures, docs/hodge.md "Ground
truth"), and a divergence check of constructed solenoidal fields."""
from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from .._validation import check_allocation, check_finite_array, check_positive_int, check_real
from ..mixture import GaussianMixture
from ..results import Record
from ._common import _check_box, _check_callable
from ._model import PerturbedScore, _check_model


@dataclasses.dataclass(frozen=True)
class GridDecomposition(Record):
    """Hodge split of e on a 2D grid (finite volumes, zero-flux boundary).

    Cell-centred arrays have shape (nx, ny) ((nx, ny, 2) for vectors); ``xc``, ``yc`` are
    the cell centres. Energies are expectations under p normalised on the grid, computed on
    the staggered faces (x-components on x-faces, y-components on y-faces), where the
    discrete split is exact: ``total_energy = gradient_energy + solenoidal_energy + 2 cross``
    with ``cross`` (= E[grad phi . r]) zero up to the linear solver's rounding.
    ``div_residual`` is max |div(p r)| / max |div(p e)| over the cells.
    """

    xc: np.ndarray
    yc: np.ndarray
    density: np.ndarray
    phi: np.ndarray
    grad_phi: np.ndarray
    error: np.ndarray
    r: np.ndarray
    total_energy: float
    gradient_energy: float
    solenoidal_energy: float
    cross: float
    div_residual: float


def _default_box(base: GaussianMixture, t: float, pad: float = 6.0) -> tuple[float, float, float, float]:
    pt = base.smooth(t)
    sd = np.sqrt(np.max(np.linalg.eigvalsh(pt.full_covariances()), axis=1))
    lo = np.min(pt.means - pad * sd[:, None], axis=0)
    hi = np.max(pt.means + pad * sd[:, None], axis=0)
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


# Largest 2D grid (cells) of the sparse solvers: beyond this spsolve takes minutes to hours.
_MAX_CELLS = 4_000_000


def _check_cells(cells: float, name: str) -> None:
    if cells > _MAX_CELLS:
        raise ValueError(f"{name} too large: {cells:.3g} grid cells (at most {_MAX_CELLS:.0e} for the sparse solver)")


@dataclasses.dataclass(frozen=True)
class _StaggeredGrid:
    """Finite-volume cells of a 2D box and the interior faces between them.

    Cells are numbered i * ny + j (i along x). x-face k separates cells ``left[k]`` = (i, j)
    and ``right[k]`` = (i + 1, j) and lies at ``xf[k]`` (x = x0 + (i + 1) hx); y-face k
    separates ``below[k]`` and ``above[k]`` at ``yf[k]``. The box boundary has no faces:
    zero flux.
    """

    nx: int
    ny: int
    hx: float
    hy: float
    xc: np.ndarray
    yc: np.ndarray
    centres: np.ndarray
    xf: np.ndarray
    yf: np.ndarray
    left: np.ndarray
    right: np.ndarray
    below: np.ndarray
    above: np.ndarray

    @classmethod
    def build(cls, box: tuple[float, float, float, float], nx: int, ny: int) -> _StaggeredGrid:
        x0, x1, y0, y1 = box
        hx, hy = (x1 - x0) / nx, (y1 - y0) / ny
        xc = x0 + hx * (np.arange(nx) + 0.5)
        yc = y0 + hy * (np.arange(ny) + 0.5)
        XC, YC = np.meshgrid(xc, yc, indexing="ij")
        idx = np.arange(nx * ny).reshape(nx, ny)
        return cls(nx=nx, ny=ny, hx=hx, hy=hy, xc=xc, yc=yc, centres=np.column_stack([XC.ravel(), YC.ravel()]),
                   xf=np.column_stack([(XC[:-1] + hx / 2).ravel(), YC[:-1].ravel()]),
                   yf=np.column_stack([XC[:, :-1].ravel(), (YC[:, :-1] + hy / 2).ravel()]),
                   left=idx[:-1].ravel(), right=idx[1:].ravel(), below=idx[:, :-1].ravel(), above=idx[:, 1:].ravel())

    @property
    def n_cells(self) -> int:
        return self.nx * self.ny

    def sparse(self, vals: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> scipy.sparse.csr_matrix:
        """An (n_cells, n_cells) CSR matrix from COO triplets."""
        N = self.n_cells
        return scipy.sparse.csr_matrix((vals, (rows, cols)), shape=(N, N))

    def net_outflow(self, fx: np.ndarray, fy: np.ndarray) -> np.ndarray:
        """Per cell, the sum of the fluxes leaving it, given the fluxes ``fx`` (left -> right)
        through the x-faces and ``fy`` (below -> above) through the y-faces."""
        out = np.zeros(self.n_cells)
        np.add.at(out, self.left, fx)
        np.add.at(out, self.right, -fx)
        np.add.at(out, self.below, fy)
        np.add.at(out, self.above, -fy)
        return out

    def cell_average(self, gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
        """(nx, ny, 2) cell-centred field from face components (mean of the two faces of each
        cell; the boundary faces count as 0)."""
        nx, ny = self.nx, self.ny
        G = np.zeros((nx, ny, 2))
        gxf = np.zeros((nx + 1, ny))
        gxf[1:-1] = gx.reshape(nx - 1, ny)
        gyf = np.zeros((nx, ny + 1))
        gyf[:, 1:-1] = gy.reshape(nx, ny - 1)
        G[..., 0] = 0.5 * (gxf[:-1] + gxf[1:])
        G[..., 1] = 0.5 * (gyf[:, :-1] + gyf[:, 1:])
        return G


def _face_densities(grid: _StaggeredGrid, logpdf: Callable[[np.ndarray], np.ndarray], floor: float
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """p (up to a constant) at the cell centres, x-faces and y-faces; face values floored."""
    lc, lx, ly = (check_finite_array(logpdf(p), "logpdf(x)", shape=(len(p),))
                  for p in (grid.centres, grid.xf, grid.yf))
    shift = max(lc.max(), lx.max(), ly.max())
    pc, px, py = np.exp(lc - shift), np.exp(lx - shift), np.exp(ly - shift)
    pmax = max(pc.max(), px.max(), py.max())
    return pc, np.maximum(px, floor * pmax), np.maximum(py, floor * pmax)


def _weighted_laplacian(grid: _StaggeredGrid, px: np.ndarray, py: np.ndarray) -> scipy.sparse.csr_matrix:
    """The finite-volume operator phi -> -div(p grad phi) times the cell area (two-point fluxes)."""
    L_, R_, B_, U_ = grid.left, grid.right, grid.below, grid.above
    wx = px * grid.hy / grid.hx
    wy = py * grid.hx / grid.hy
    rows = np.concatenate([L_, R_, L_, R_, B_, U_, B_, U_])
    cols = np.concatenate([L_, R_, R_, L_, B_, U_, U_, B_])
    vals = np.concatenate([-wx, -wx, wx, wx, -wy, -wy, wy, wy])
    return grid.sparse(vals, rows, cols)


def _solve_pinned(A: scipy.sparse.csr_matrix, rhs: np.ndarray, pc: np.ndarray) -> np.ndarray:
    """Solve A phi = rhs with phi pinned at the cell of largest density (the operator has the
    constants in its kernel), then centred to E_p[phi] = 0."""
    N = len(rhs)
    pin = int(np.argmax(pc))
    keep = np.ones(N, bool)
    keep[pin] = False
    Ar = A[keep][:, keep].tocsc()
    phi = np.zeros(N)
    phi[keep] = scipy.sparse.linalg.spsolve(Ar, rhs[keep])
    return phi - (pc @ phi) / pc.sum()


def solve_weighted_poisson_2d(logpdf: Callable[[np.ndarray], np.ndarray], error: Callable[[np.ndarray], np.ndarray],
                              box: Sequence[float], n: int | tuple[int, int] = 160,
                              floor: float = 1e-12) -> GridDecomposition:
    """Solve div(p grad phi) = div(p e) on a box with zero flux (finite volumes, scipy.sparse).

    Parameters
    ----------
    logpdf, error : callables of an (m, 2) array
        log p (up to a constant) and the error field e.
    box : (xmin, xmax, ymin, ymax)
        Must hold essentially all the mass of p.
    n : int or (nx, ny)
        Cells per axis.
    floor : float
        Face densities below floor * max p are raised to it (regions of negligible mass).

    Returns
    -------
    GridDecomposition
    """
    _check_callable(logpdf, "logpdf")
    _check_callable(error, "error")
    box = _check_box(box)
    if isinstance(n, (tuple, list)) and len(n) == 2:
        nx, ny = n
    else:
        nx = ny = n
    nx, ny = check_positive_int(nx, "n", 4), check_positive_int(ny, "n", 4)
    _check_cells(float(nx) * ny, "n")
    floor = check_real(floor, "floor", low=0.0, high=1.0)
    grid = _StaggeredGrid.build(box, nx, ny)
    hx, hy = grid.hx, grid.hy
    pc, px, py = _face_densities(grid, logpdf, floor)
    ex = check_finite_array(error(grid.xf), "error(x)", shape=(len(grid.xf), 2))[:, 0]
    ey = check_finite_array(error(grid.yf), "error(x)", shape=(len(grid.yf), 2))[:, 1]
    # rhs: discrete div(p e) times cell area = sum of outward fluxes p e.n * face length
    rhs = grid.net_outflow(px * ex * hy, py * ey * hx)
    phi = _solve_pinned(_weighted_laplacian(grid, px, py), rhs, pc)
    gx = (phi[grid.right] - phi[grid.left]) / hx
    gy = (phi[grid.above] - phi[grid.below]) / hy
    rx, ry = ex - gx, ey - gy
    # energies on the faces, where the discrete split is exact
    mass, cell = pc.sum(), hx * hy
    norm = mass * cell
    wxf, wyf = px * cell / norm, py * cell / norm
    total = float(wxf @ (ex * ex) + wyf @ (ey * ey))
    grad = float(wxf @ (gx * gx) + wyf @ (gy * gy))
    sol = float(wxf @ (rx * rx) + wyf @ (ry * ry))
    cross = float(wxf @ (gx * rx) + wyf @ (gy * ry))
    div_r = grid.net_outflow(px * rx * hy, py * ry * hx)
    div_res = float(np.abs(div_r).max() / max(np.abs(rhs).max(), 1e-300))
    G = grid.cell_average(gx, gy)
    Ec = check_finite_array(error(grid.centres), "error(x)", shape=(nx * ny, 2)).reshape(nx, ny, 2)
    if not all(np.isfinite(v) for v in (total, grad, sol, cross, div_res)) or not np.all(np.isfinite(phi)):
        raise ValueError("the weighted Poisson solve overflowed: the error field is too large on the box")
    return GridDecomposition(xc=grid.xc, yc=grid.yc, density=(pc / norm).reshape(nx, ny), phi=phi.reshape(nx, ny),
                             grad_phi=G, error=Ec, r=Ec - G, total_energy=total, gradient_energy=grad,
                             solenoidal_energy=sol, cross=cross, div_residual=div_res)


def decompose_on_grid(model: PerturbedScore, t: float, n: int = 160, box: Sequence[float] | None = None,
                      mask: Sequence[bool] | None = None) -> GridDecomposition:
    """:func:`solve_weighted_poisson_2d` for a 2D :class:`PerturbedScore` at time t.

    ``n`` cells per axis on ``box`` (default: 6 standard deviations around the modes of
    p_t); ``mask`` selects the terms whose error is split (default: all).
    """
    _check_model(model)
    if model.dim != 2:
        raise ValueError("the grid solver is two-dimensional (model must have dim 2)")
    t = check_real(t, "t", low=0.0)
    box = _default_box(model.base, t) if box is None else box
    return solve_weighted_poisson_2d(lambda x: model.logpdf(x, t), lambda x: model.error(x, t, mask), box, n)


@dataclasses.dataclass(frozen=True)
class DivergenceResidual(Record):
    """Result of :func:`divergence_residual_2d`.

    max_divergence : max |div(p_t e)| over the interior nodes.
    max_flux : max |p_t e| over the grid.
    """

    max_divergence: float
    max_flux: float

    @property
    def ratio(self) -> float:
        """max_divergence / max_flux: O(h^2) for a solenoidal field, O(1) otherwise."""
        return self.max_divergence / self.max_flux


def divergence_residual_2d(model: PerturbedScore, t: float, mask: Sequence[bool] | None = None, n: int = 200,
                           box: Sequence[float] | None = None) -> DivergenceResidual:
    """max |div(p_t e)| and max |p_t e| with e the selected terms: central differences of the
    node-centred flux p_t e on an n x n grid (second order). Solenoidal fields give a ratio
    O(h^2), others O(1).

    Parameters
    ----------
    model : PerturbedScore
        A 2D model.
    t : float
        Diffusion time.
    mask : sequence of bool, optional
        Terms whose error is checked (default: all).
    n : int
        Nodes per axis.
    box : (xmin, xmax, ymin, ymax), optional
        Default: 6 standard deviations around the modes of p_t.
    """
    _check_model(model)
    if model.dim != 2:
        raise ValueError("the grid is two-dimensional (model must have dim 2)")
    t = check_real(t, "t", low=0.0)
    n = check_positive_int(n, "n", minimum=5)
    check_allocation(12.0 * n * n, "n", "the grid")
    x0, x1, y0, y1 = _check_box(_default_box(model.base, t) if box is None else box)
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    hx, hy = xs[1] - xs[0], ys[1] - ys[0]
    X, Y = np.meshgrid(xs, ys, indexing="ij")
    pts = np.column_stack([X.ravel(), Y.ravel()])
    p = model.base.pdf(pts, t).reshape(n, n)
    e = model.error(pts, t, mask).reshape(n, n, 2)
    F = p[..., None] * e
    div = np.gradient(F[..., 0], hx, axis=0) + np.gradient(F[..., 1], hy, axis=1)
    if not (np.all(np.isfinite(div)) and np.all(np.isfinite(F))):
        raise ValueError("p e overflows on the grid: the model's error terms are too large")
    return DivergenceResidual(max_divergence=float(np.abs(div[2:-2, 2:-2]).max()), max_flux=float(np.abs(F).max()))

