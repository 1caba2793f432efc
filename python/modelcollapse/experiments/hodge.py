"""Experiment ``hodge``: only the gradient part of a score error is observed (docs/hodge.md,
"Experiment ``hodge``").

Three studies on a 2-D Gaussian mixture p (and a 2-D Gaussian for closed forms):

1. correlation: random perturbed models s = grad log p_t + u grad V_t + c (solenoidal
   field) + a (random Fourier field); per model the integrated L2 error, the integrated
   gradient-part estimate (samples + model score only), the exact gradient part (term
   types or the grid solver), and the sample quality after reverse sampling
   (:func:`modelcollapse.metrics.hellinger` of a KDE against p_delta on a grid, sliced W2
   by :func:`modelcollapse.metrics.wasserstein`). Spearman correlations with quality.
2. impossibility: (I + cA) grad log p_t for growing c: L2 error grows like c^2 while
   quality stays flat once the sampler takes enough steps (with few steps it does not).
3. bounds: Girsanov and marginal KL bounds against the true KL (closed form for a
   Gaussian; reverse Fokker-Planck on a grid for the mixture).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.stats
from tqdm.auto import tqdm

from .. import GaussianMixture, metrics, sample_reverse
from .. import hodge as H
from ..hodge._common import _time_nodes
from ..hodge._grid import _default_box
from ._plotting import pyplot, save_figure
from ._registry import ExperimentOutput, register

# Random directions of the sliced W2 quality metric.
SLICED_DIRECTIONS = 64


@dataclasses.dataclass
class HodgeConfig:
    n_models: int = 40
    T: float = 2.0
    delta: float = 0.05
    n_est: int = 20_000        # samples of p_t per time node (L2 error and estimator)
    n_times: int = 8           # Gauss-Legendre nodes in log t
    degree: int = 6            # Hermite total degree of the estimator
    estimator_basis: str = "hermite"   # "hermite" or "network" (torch MLP psi; needs modelcollapse[torch], slower)
    n_sample: int = 10_000     # reverse samples per model
    steps: int = 400           # sampler steps (large: discretisation negligible)
    steps_small: int = 12      # few steps, for the impossibility demo
    u_max: float = 0.8
    c_max: float = 3.0
    a_max: float = 0.4
    c_grid: str = "0,0.5,1,2,4"
    kde_grid: int = 60
    grid_n: int = 80           # finite-volume grid for the exact gradient part of mixed models
    fp_n: int = 64             # Fokker-Planck grid (0: skip the mixture true-KL study)
    fp_steps: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_models < 3:
            raise ValueError("n_models must be >= 3 (Spearman correlations)")
        if not 0 < self.delta < self.T:
            raise ValueError("need 0 < delta < T")
        for name in ("n_est", "n_times", "degree", "n_sample", "steps", "steps_small", "kde_grid"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.estimator_basis not in ("hermite", "network"):
            raise ValueError(f"estimator_basis must be 'hermite' or 'network', got {self.estimator_basis!r}")

    @property
    def cs(self) -> list[float]:
        return [float(v) for v in self.c_grid.split(",") if v.strip()]


PRESETS = {
    "quick": dict(n_models=8, n_est=3000, n_times=4, degree=4, n_sample=2000, steps=100, steps_small=8,
                  c_grid="0,1,3", kde_grid=40, grid_n=48, fp_n=0),
    "default": dict(),
    "paper": dict(n_models=100, n_est=50_000, n_times=12, degree=8, n_sample=20_000, steps=1000,
                  c_grid="0,0.5,1,2,4,8", kde_grid=80, grid_n=120, fp_n=96, fp_steps=200),
}


def data_law() -> GaussianMixture:
    return GaussianMixture([0.45, 0.35, 0.2], [[-1.5, -0.5], [1.5, -0.3], [0.0, 1.6]],
                           np.array([[0.3, 0.3], [0.5, 0.2], [0.25, 0.4]]))


def gaussian_law() -> GaussianMixture:
    return GaussianMixture([1.0], [[1.0, -0.5]], np.array([[[1.0, 0.4], [0.4, 0.3]]]))


def _quality(x: np.ndarray, target: GaussianMixture, ref: np.ndarray, axes: tuple[np.ndarray, np.ndarray]
             ) -> dict[str, float]:
    """Sample quality: Hellinger between the KDE of x and p_delta on the grid ``axes``, and the
    sliced W2 between x and exact samples ``ref`` of p_delta."""
    return {"hellinger": metrics.hellinger(x, target, axes),
            "sliced_w2": metrics.wasserstein(x, ref, 2, method="sliced", n_projections=SLICED_DIRECTIONS, seed=0)}


def random_model(p: GaussianMixture, rng: np.random.Generator, cfg: HodgeConfig) -> tuple[H.PerturbedScore, dict]:
    d = p.dim
    A = H.antisymmetric(d)
    terms = []
    u = float(rng.uniform(-cfg.u_max, cfg.u_max))
    grad_shape = str(rng.choice(["bump", "quadratic"]))
    if grad_shape == "bump":
        terms.append(H.GradientTerm(u, H.GaussianBump(rng.uniform(-1.5, 1.5, d), float(rng.uniform(0.5, 1.2)))))
    else:
        B = rng.normal(size=(d, d))
        Q = B @ B.T / d
        terms.append(H.GradientTerm(0.3 * u, H.QuadraticPotential(Q, rng.uniform(-1, 1, d))))
    c = float(rng.uniform(0, cfg.c_max))
    sol_shape = str(rng.choice(["rotation", "bump"]))
    bump = None if sol_shape == "rotation" else H.GaussianBump(rng.uniform(-1.5, 1.5, d), float(rng.uniform(0.6, 1.5)))
    terms.append(H.SolenoidalTerm(A, c if sol_shape == "rotation" else 2 * c, bump))
    a = float(rng.uniform(0, cfg.a_max)) if rng.uniform() < 0.5 else 0.0
    if a > 0:
        terms.append(H.FourierTerm.random(d, 6, amplitude=a, seed=rng))
    return H.PerturbedScore(p, terms), dict(u=u, c=c, a=a, grad_shape=grad_shape, sol_shape=sol_shape)


def _integrated_l2_and_exact(model: H.PerturbedScore, cfg: HodgeConfig, seed: int) -> tuple[float, float]:
    times, weights = _time_nodes(cfg.T, cfg.delta, cfg.n_times)
    l2, gr = np.empty(len(times)), np.empty(len(times))
    for i, t in enumerate(times):
        l2[i] = H.l2_error(model, t, cfg.n_est, seed=seed + i).value
        if model.known_gradient_part:
            gr[i] = H.exact_gradient_energy(model, t, cfg.n_est, seed=seed + i).value
        else:
            gr[i] = H.decompose_on_grid(model, t, n=cfg.grid_n).gradient_energy
    return float(weights @ l2), float(weights @ gr)


def _sample(model, cfg: HodgeConfig, steps: int, seed: int) -> np.ndarray:
    return sample_reverse(model, cfg.n_sample, T=cfg.T, delta=cfg.delta, steps=steps, grid="quadratic",
                          integrator="exponential", init="standard_normal", seed=seed).samples


@dataclasses.dataclass
class _Setting:
    """What every study of the experiment shares: the data law, p_delta and the quality metric."""

    cfg: HodgeConfig
    p: GaussianMixture
    target: GaussianMixture
    ref: np.ndarray
    axes: tuple[np.ndarray, np.ndarray]
    progress: bool

    def quality(self, x: np.ndarray) -> dict[str, float]:
        return _quality(x, self.target, self.ref, self.axes)


def _setting(cfg: HodgeConfig, progress: bool) -> _Setting:
    p = data_law()
    target = p.smooth(cfg.delta)
    box = _default_box(p, cfg.delta, pad=4.0)
    axes = (np.linspace(box[0], box[1], cfg.kde_grid), np.linspace(box[2], box[3], cfg.kde_grid))
    return _Setting(cfg, p, target, target.sample(cfg.n_sample, seed=cfg.seed + 999), axes, progress)


def _correlation_study(st: _Setting, rows: list[dict]) -> pd.DataFrame:
    """Random models: integrated L2 error, gradient part (estimated and exact), quality."""
    cfg = st.cfg
    rng = np.random.default_rng(cfg.seed)
    estimator_kwargs = (dict(degree=cfg.degree) if cfg.estimator_basis == "hermite"
                        else dict(basis="network"))
    corr = []
    for i in tqdm(range(cfg.n_models), desc="hodge models", disable=not st.progress):
        model, params = random_model(st.p, rng, cfg)
        l2, exact_grad = _integrated_l2_and_exact(model, cfg, cfg.seed + 100 * i)
        est = H.integrated_gradient_part(model, st.p, cfg.T, cfg.delta, n_times=cfg.n_times, n_samples=cfg.n_est,
                                         seed=cfg.seed + 100 * i + 50, **estimator_kwargs)
        q = st.quality(_sample(model, cfg, cfg.steps, cfg.seed + i))
        rec = dict(l2_error=l2, gradient_estimate=est.integral, gradient_estimate_se=est.se,
                   gradient_exact=exact_grad, **q)
        corr.append({**params, **rec})
        for metric, value in rec.items():
            rows.append(dict(study="correlation", model=i, **params, steps=cfg.steps, metric=metric, value=value))
    return pd.DataFrame(corr)


def _correlations(cdf: pd.DataFrame, summary: dict, rows: list[dict]) -> None:
    for qname in ("hellinger", "sliced_w2"):
        for measure in ("l2_error", "gradient_estimate", "gradient_exact"):
            rho = scipy.stats.spearmanr(cdf[measure], cdf[qname]).statistic
            summary[f"spearman_{measure}_vs_{qname}"] = float(rho)
            rows.append(dict(study="correlation_summary", metric=f"spearman_{measure}_vs_{qname}", value=float(rho)))


def _impossibility_study(st: _Setting, A: np.ndarray, rows: list[dict]) -> pd.DataFrame:
    """(I + cA) grad log p_t for growing c, sampled with few and with many steps."""
    cfg = st.cfg
    imp = []
    for j, c in enumerate(tqdm(cfg.cs, desc="impossibility", disable=not st.progress)):
        model = H.PerturbedScore(st.p, [H.SolenoidalTerm(A, c)])
        l2, _ = _integrated_l2_and_exact(model, cfg, cfg.seed + 5000 + j)
        for steps in (cfg.steps_small, cfg.steps):
            q = st.quality(_sample(model, cfg, steps, cfg.seed + 6000 + j))
            imp.append(dict(c=c, steps=steps, l2_error=l2, **q))
            for metric, value in dict(l2_error=l2, **q).items():
                rows.append(dict(study="impossibility", c=c, steps=steps, metric=metric, value=value))
    return pd.DataFrame(imp)


def _bounds_row(bnd: list[dict], rows: list[dict], law: str, c: float, u: float, true_kl: float,
                kb: H.KLBounds) -> None:
    rec = dict(true_kl=true_kl, marginal_bound=kb.marginal, girsanov_bound=kb.girsanov)
    bnd.append(dict(law=law, c=c, u=u, **rec))
    for metric, value in rec.items():
        rows.append(dict(study="bounds", law=law, c=c, u=u, metric=metric, value=value))


def _bounds_study(st: _Setting, A: np.ndarray, rows: list[dict]) -> pd.DataFrame:
    """Girsanov and marginal bounds against the true KL: closed form for a Gaussian, reverse
    Fokker-Planck on a grid for the mixture (when ``fp_n`` > 0)."""
    cfg, p = st.cfg, st.p
    g = gaussian_law()
    bnd: list[dict] = []
    for c in cfg.cs:
        for u in (0.0, 0.3):
            model = H.PerturbedScore(g, [H.SolenoidalTerm(A, c),
                                         H.GradientTerm(u, H.QuadraticPotential(np.eye(2), g.means[0]))])
            kb = H.kl_bounds(model, cfg.T, cfg.delta, n_times=24)
            _bounds_row(bnd, rows, "gaussian", c, u, H.true_kl_gaussian(model, cfg.T, cfg.delta), kb)
    if cfg.fp_n > 0:
        fbox = _default_box(p, cfg.delta, pad=5.0)
        for c in (0.0, 2.0):
            for u in (0.0, 0.5):
                model = H.PerturbedScore(p, [H.SolenoidalTerm(A, c), H.GradientTerm(u, H.GaussianBump([0, 0.5], 0.8))])
                fp = H.fokker_planck_kl_2d(model.score, lambda x: p.logpdf(x, cfg.delta), cfg.T, cfg.delta, fbox,
                                           n=cfg.fp_n, steps=cfg.fp_steps)
                kb = H.kl_bounds(model, cfg.T, cfg.delta, n_times=cfg.n_times, n_samples=cfg.n_est, method="exact")
                _bounds_row(bnd, rows, "mixture", c, u, fp.kl, kb)
    return pd.DataFrame(bnd)


def _bounds_summary(bdf: pd.DataFrame, summary: dict) -> None:
    # Gaussian: exact true KL, strict check. Mixture: the Fokker-Planck KL carries a grid error,
    # measured on the u = 0 models (pure solenoidal error: their true KL equals the exact-score
    # one, <= KL(p_T || pi)), and the check allows it.
    gb = bdf[bdf.law == "gaussian"]
    summary["bounds_hold_gaussian"] = bool(np.all(gb.true_kl <= gb.marginal_bound * (1 + 1e-6))
                                           and np.all(gb.marginal_bound <= gb.girsanov_bound * (1 + 1e-9)))
    mb = bdf[bdf.law == "mixture"]
    if len(mb):
        grid_err = float(mb[mb.u == 0].true_kl.max())
        summary["fokker_planck_grid_error"] = grid_err
        summary["bounds_hold_mixture_within_grid_error"] = bool(
            np.all(mb.true_kl <= mb.marginal_bound + grid_err) and np.all(mb.marginal_bound <= mb.girsanov_bound))
    summary["bounds_hold"] = summary["bounds_hold_gaussian"] and summary.get("bounds_hold_mixture_within_grid_error",
                                                                           True)


def _figures(cfg: HodgeConfig, cdf: pd.DataFrame, idf: pd.DataFrame, bdf: pd.DataFrame, summary: dict,
             exact_q: dict[str, float], out_dir: Path) -> list[Path]:
    plt = pyplot()

    figs = []
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, measure, label in zip(axes, ("l2_error", "gradient_estimate", "gradient_exact"),
                                  ("integrated L2 error", "integrated gradient part (estimate)",
                                   "integrated gradient part (exact)")):
        sc = ax.scatter(cdf[measure], cdf.hellinger, c=cdf.c, cmap="viridis", s=18)
        rho = summary[f"spearman_{measure}_vs_hellinger"]
        ax.set_xlabel(label)
        ax.set_title(f"Spearman rho = {rho:.2f}")
        if measure == "l2_error":
            ax.set_xscale("log")
    axes[0].set_ylabel("Hellinger(KDE of samples, p_delta)")
    fig.colorbar(sc, ax=axes, label="solenoidal amplitude c")
    path = out_dir / "hodge_correlation.png"
    save_figure(fig, path, dpi=110, tight=True)
    figs.append(path)

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    for steps, sub in idf.groupby("steps"):
        ax[0].plot(sub.c, sub.hellinger, "o-", label=f"{steps} steps")
    ax[0].axhline(exact_q["hellinger"], color="k", ls=":", label="exact score")
    ax[0].set_xlabel("c in (I + cA) grad log p_t")
    ax[0].set_ylabel("Hellinger to p_delta")
    ax[0].legend()
    sub = idf[idf.steps == cfg.steps]
    ax[1].plot(sub.c, sub.l2_error, "s-", color="C3")
    ax[1].set_yscale("symlog", linthresh=1e-2)
    ax[1].set_xlabel("c")
    ax[1].set_ylabel("integrated L2 score error")
    fig.suptitle("Impossibility: L2 error grows, quality does not")
    path = out_dir / "hodge_impossibility.png"
    save_figure(fig, path, dpi=110, tight=True)
    figs.append(path)

    fig, axes = plt.subplots(1, 2 if cfg.fp_n > 0 else 1, figsize=(11 if cfg.fp_n > 0 else 6, 4), squeeze=False)
    for ax, law in zip(axes[0], ("gaussian", "mixture")):
        sub = bdf[bdf.law == law]
        for u, s2 in sub.groupby("u"):
            ax.plot(s2.c, s2.girsanov_bound, "^--", label=f"Girsanov, u={u}")
            ax.plot(s2.c, s2.marginal_bound, "s-", label=f"marginal, u={u}")
            ax.plot(s2.c, s2.true_kl, "o:", label=f"true KL, u={u}")
        ax.set_yscale("log")
        ax.set_xlabel("solenoidal amplitude c")
        ax.set_title(f"{law}: KL(p_delta || q_delta)")
        ax.legend(fontsize=7)
    path = out_dir / "hodge_bounds.png"
    save_figure(fig, path, dpi=110, tight=True)
    figs.append(path)
    return figs


@register("hodge", "score errors: L2 vs gradient part (Helmholtz-Hodge), impossibility, KL bounds",
          HodgeConfig, PRESETS, part="hodge", headline=True,
          claim="A diffusion sampler only sees the gradient part of its score error: a solenoidal error "
                "(I + cA) grad log p_t leaves the marginals unchanged however large the L2 error. Sample quality "
                "therefore correlates with the gradient part, estimated from samples and the model score (Stein "
                "form), not with the L2 error; the marginal KL bound is tighter than Girsanov's.")
def run(config: HodgeConfig, out_dir: Path, progress: bool = True) -> ExperimentOutput:
    """The three studies (module docstring), their summary and figures."""
    cfg = config
    st = _setting(cfg, progress)
    rows: list[dict] = []
    # floor of the quality metrics: exact score
    exact_q = st.quality(_sample(H.PerturbedScore(st.p), cfg, cfg.steps, cfg.seed + 7))
    cdf = _correlation_study(st, rows)
    summary: dict = {"quality_floor_exact_score": exact_q, "estimator_basis": cfg.estimator_basis}
    _correlations(cdf, summary, rows)
    A = H.antisymmetric(2)
    idf = _impossibility_study(st, A, rows)
    bdf = _bounds_study(st, A, rows)
    _bounds_summary(bdf, summary)
    figs = _figures(cfg, cdf, idf, bdf, summary, exact_q, Path(out_dir))
    table = pd.DataFrame(rows)
    table["seed"] = cfg.seed
    return ExperimentOutput(table=table, figures=figs, summary=summary)
