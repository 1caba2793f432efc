"""DAE experiments: the test mixtures, figure helpers and the Hellinger distances of Cui et al., App. D."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ... import dae
from .._plotting import save_figure


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


def _density_panel(ax, proj: np.ndarray, theo: np.ndarray, target: np.ndarray, lim: float, norm,
                   labels: tuple[str, str] = ("projection on PC 1", "projection on PC 2"), bins: int = 45):
    """One projected-density panel: 2-D histogram of the d-dim samples (counts, shared ``norm``),
    theory contours (blue) and target contours (green), with labeled axes and a legend."""
    from matplotlib.lines import Line2D
    from scipy.stats import gaussian_kde

    xs = np.linspace(-lim, lim, 70)
    X_, Y_ = np.meshgrid(xs, xs, indexing="ij")
    pts = np.stack([X_.ravel(), Y_.ravel()])
    *_, image = ax.hist2d(proj[:, 0], proj[:, 1], bins=bins, range=[[-lim, lim], [-lim, lim]], cmap="Oranges",
                          cmin=1, norm=norm)
    zt = gaussian_kde(theo.T)(pts).reshape(X_.shape)
    kt = gaussian_kde(target.T)(pts).reshape(X_.shape)
    ax.contour(X_, Y_, zt, levels=_levels(zt, 4), colors="tab:blue", linewidths=0.9)
    ax.contour(X_, Y_, kt, levels=_levels(kt, 4), colors="tab:green", linewidths=0.7)
    ax.set(xlabel=labels[0], ylabel=labels[1])
    ax.set_aspect("equal")
    ax.legend([Line2D([], [], color="tab:blue"), Line2D([], [], color="tab:green")], ["theory", "target"],
              loc="upper right", fontsize=7)
    return image


def _panels_figure(panels, table: pd.DataFrame, xcol: str, title, lim: float, target: np.ndarray, suptitle: str,
                   path: Path, log_y: bool) -> Path:
    """Per variant: projected-density panels (2-D histogram of the d-dim samples on the top-2
    PCs with one shared colour scale, blue theory contours, green target contours) and a panel
    of generated/target variance ratios over ``xcol``; wrapped to at most three panels per row."""
    from matplotlib.colors import LogNorm

    from .._plotting import panels as make_panels

    variants = list(table.variant.unique())
    fig, axes = make_panels(len(panels) + len(variants), ncols=min(3, len(panels) // len(variants) + 1),
                            size=(3.6, 3.2), title=suptitle)
    vmax = max(np.histogram2d(proj[:, 0], proj[:, 1], bins=45, range=[[-lim, lim], [-lim, lim]])[0].max()
               for _, _, proj, _ in panels)
    norm = LogNorm(1, max(vmax, 2))
    order = iter(axes)
    image = None
    for variant in variants:
        for v, x, proj, theo in panels:
            if v != variant:
                continue
            ax = next(order)
            image = _density_panel(ax, proj, theo, target, lim, norm)
            ax.set_title(title(v, x))
        ax = next(order)
        sub = table[table.variant == variant]
        for metric, label in (("total_variance_ratio", "total"), ("var_pc1_ratio", "along PC 1"),
                              ("var_pc2_ratio", "along PC 2")):
            s = sub[sub.metric == metric]
            (ax.semilogy if log_y else ax.plot)(s[xcol], s.value, "o-", label=label)
        ax.axhline(1.0, color="k", lw=0.5)
        if xcol == "generation":
            ax.set_xticks(sorted(sub[xcol].unique()))
        ax.set(xlabel={"tau": "training time tau"}.get(xcol, xcol), ylabel="generated / target variance")
        ax.set_title(f"variance ratios ({variant})")
        ax.legend(fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axes, label="d-dim samples per bin (density panels)", shrink=0.6)
    save_figure(fig, path)
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


