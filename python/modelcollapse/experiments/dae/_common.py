"""DAE experiments: the test mixtures, figure helpers and the Hellinger distances of Cui et al., App. D."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ... import dae
from .._plotting import pyplot, save_figure


def _basis(d: int, k: int = 2) -> np.ndarray:
    """The first k canonical basis vectors as a (d, k) array (without a d x d identity)."""
    E = np.zeros((d, k))
    E[np.arange(k), np.arange(k)] = 1.0
    return E


def _trimodal(d: int, norm: float):
    ang = np.array([0.0, 2 * np.pi / 3, 4 * np.pi / 3])
    m = norm * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    E = _basis(d)
    return m, E, dae.isotropic_mixture(m @ E.T, 1.0)


def _levels(z: np.ndarray, n: int = 5) -> np.ndarray:
    """Contour levels relative to the maximum (avoids artefacts at vanishing densities)."""
    return z.max() * np.linspace(0.1, 0.9, n)


def _panels_figure(panels, table: pd.DataFrame, xcol: str, title, lim: float, target: np.ndarray, suptitle: str,
                   path: Path, log_y: bool) -> Path:
    """Two rows (variants) of projected-density panels (histogram of d-dim samples, blue theory
    contours, green target contours) plus a column of generated/target variance ratios."""
    from scipy.stats import gaussian_kde

    plt = pyplot()
    per_row = len(panels) // 2
    fig, axes = plt.subplots(2, per_row + 1, figsize=(3.0 * (per_row + 1), 6.0))
    xs = np.linspace(-lim, lim, 70)
    X_, Y_ = np.meshgrid(xs, xs, indexing="ij")
    pts = np.stack([X_.ravel(), Y_.ravel()])
    kt = gaussian_kde(target.T)(pts).reshape(X_.shape)
    for idx, (variant, x, proj, theo) in enumerate(panels):
        ax = axes[idx // per_row, idx % per_row]
        ax.hist2d(proj[:, 0], proj[:, 1], bins=45, range=[[-lim, lim], [-lim, lim]], cmap="Oranges", cmin=1)
        zt = gaussian_kde(theo.T)(pts).reshape(X_.shape)
        ax.contour(X_, Y_, zt, levels=_levels(zt, 4), colors="tab:blue", linewidths=0.8)
        ax.contour(X_, Y_, kt, levels=_levels(kt, 4), colors="tab:green", linewidths=0.6)
        ax.set_title(title(variant, x), fontsize=8)
    for row, variant in enumerate(table.variant.unique()):
        ax = axes[row, -1]
        sub = table[table.variant == variant]
        for metric in ("total_variance_ratio", "var_pc1_ratio", "var_pc2_ratio"):
            s = sub[sub.metric == metric]
            (ax.semilogy if log_y else ax.plot)(s[xcol], s.value, "o-", label=metric)
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_xlabel(xcol)
        ax.set_title(f"generated / target variance ({variant})", fontsize=8)
        ax.legend(fontsize=6)
    fig.suptitle(suptitle, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def _warm(d: int, r: int, G0: np.ndarray, seed: int) -> np.ndarray:
    """Random N(0, 1) weights whose first R coordinates are replaced so that G = G0 (r, R)."""
    w = np.random.default_rng(seed).standard_normal((d, r))
    w[: G0.shape[1], :] = np.sqrt(d) * G0.T
    return w


# ============================================================================ D1


def _cui_hellinger(a: np.ndarray, b: np.ndarray) -> float:
    """Cui et al.'s Hellinger (App. D, eq. 108): int (sqrt p - sqrt q)^2 = 2 H^2, between 1-D KDEs
    (1.5 x Silverman) of the projections on span(mu), on a 1000-point grid."""
    return 2.0 * dae.projected_hellinger(a, b, grid=1000, bandwidth_factor=1.5, bw_method="silverman") ** 2




def _hellinger(a: np.ndarray, b: np.ndarray) -> float:
    """H on the 2-D projections, KDE bandwidth 1.5 x Silverman as in Cui et al., App. D."""
    return dae.projected_hellinger(a, b, bandwidth_factor=1.5, bw_method="silverman")


