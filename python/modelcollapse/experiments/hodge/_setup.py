"""The hodge experiment's configuration, presets, data laws, random score models and sampling."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from ... import GaussianMixture, metrics, sample_reverse
from ... import hodge as H
from ...hodge._common import _time_nodes
from ...hodge._grid import _default_box

SLICED_DIRECTIONS = 64


@dataclasses.dataclass
class HodgeConfig:
    n_models: int = 12         # mixed-family models per replicate
    n_seeds: int = 5           # independent replicates of the correlation study and the impossibility demo
    n_control: int = 8         # control-family models (c = 0, a = 0) per replicate
    n_null: int = 4            # null-family models (u = 0, a = 0; estimate only) per replicate
    n_boot: int = 2000         # bootstrap resamples of the correlation claims
    T: float = 2.0  # diffusion horizon: sampling starts at t = T
    delta: float = 0.05  # truncation time: sampling stops at t = delta, quality is measured against p_delta
    n_est: int = 20_000        # samples of p_t per time node (L2 error and estimator)
    n_times: int = 8           # Gauss-Legendre nodes in log t
    degree: int = 4            # Hermite total degree of the estimator (docs/hodge.md, "Bias and error bar")
    ridge: float = 1e-8        # relative ridge of the estimator: ~0, the fit-noise correction replaces shrinkage
    estimator_basis: str = "hermite"   # "hermite" or "network" (torch MLP psi; needs modelcollapse[torch], slower)
    n_sample: int = 10_000     # reverse samples per model
    # sampler steps of the correlation study: at 800 the rotation's discretisation residue at the
    # study's largest c (c_max) is 0.0096 +- 0.0013 in Hellinger, under the flatness tolerance
    # 0.017; at 400 it was 0.0155 +- 0.0025 (docs/hodge.md, "Impossibility")
    steps: int = 800
    steps_small: int = 12      # few steps, for the impossibility demo
    steps_many: int = 1600     # many steps: the impossibility demo's flat curve
    u_max: float = 0.8  # largest amplitude |u| of a random model's gradient error
    c_max: float = 3.0  # largest amplitude c of a random model's solenoidal error
    a_max: float = 0.4  # largest amplitude of a random model's Fourier error term
    c_grid: str = "0,0.5,1,2,3,4"  # solenoidal amplitudes c of the impossibility and bounds studies (comma-separated)
    interaction_u: str = "-0.5,0,0.3,0.5"  # gradient-error amplitudes u of the interaction study (comma-separated)
    kde_grid: int = 60  # grid points per axis of the KDE behind the Hellinger quality metric
    grid_n: int = 80           # finite-volume grid for the exact gradient part of mixed models
    fp_n: int = 64             # Fokker-Planck grid (0: skip the mixture true-KL study)
    fp_steps: int = 100  # time steps of the reverse Fokker-Planck solver (true KL of the mixture)
    seed: int = 0  # first seed of every study

    def __post_init__(self) -> None:
        if self.n_models < 3:
            raise ValueError("n_models must be >= 3 (Spearman correlations)")
        if not 0 < self.delta < self.T:
            raise ValueError("need 0 < delta < T")
        if self.n_seeds < 1 or self.n_control < 3 or self.n_null < 0 or self.n_boot < 10:
            raise ValueError("need n_seeds >= 1, n_control >= 3, n_null >= 0, n_boot >= 10")
        for name in ("n_est", "n_times", "degree", "n_sample", "steps", "steps_small", "steps_many", "kde_grid"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.estimator_basis not in ("hermite", "network"):
            raise ValueError(f"estimator_basis must be 'hermite' or 'network', got {self.estimator_basis!r}")

    @property
    def estimator_kwargs(self) -> dict[str, Any]:
        """Options of :func:`modelcollapse.hodge.gradient_part_estimate` for the study."""
        return dict(degree=self.degree, ridge=self.ridge) if self.estimator_basis == "hermite" else dict(basis="network")

    @property
    def cs(self) -> list[float]:
        return [float(v) for v in self.c_grid.split(",") if v.strip()]

    @property
    def us(self) -> list[float]:
        return [float(v) for v in self.interaction_u.split(",") if v.strip()]


# The quick preset keeps the sampler accurate (400 steps; 100 steps left a first-order
# rotation residue that decorrelated quality from the gradient part, docs/hodge.md).
PRESETS = {
    "quick": dict(n_models=8, n_control=6, n_null=3, n_est=3000, n_times=4, degree=4, n_sample=2000, steps=400,
                  steps_small=8, steps_many=1600, c_grid="0,1,3", kde_grid=40, grid_n=48, fp_n=0),
    "default": dict(),
    "paper": dict(n_models=30, n_control=15, n_null=8, n_est=50_000, n_times=12, degree=6, n_sample=20_000,
                  steps=1000, steps_many=4000, c_grid="0,0.5,1,2,4,8", kde_grid=80, grid_n=120, fp_n=96,
                  fp_steps=200),
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


def random_model(p: GaussianMixture, rng: np.random.Generator, cfg: HodgeConfig, family: str = "mixed"
                 ) -> tuple[H.PerturbedScore, dict]:
    """A random perturbed model. ``family``: "mixed" (gradient + solenoidal + sometimes Fourier),
    "control" (c = 0, a = 0: the L2 error is all gradient), "null" (u = 0, a = 0: all solenoidal)."""
    d = p.dim
    A = H.antisymmetric(d)
    terms: list[H.GradientTerm | H.SolenoidalTerm | H.FourierTerm] = []
    u = float(rng.uniform(-cfg.u_max, cfg.u_max)) if family != "null" else 0.0
    grad_shape = str(rng.choice(["bump", "quadratic"]))
    if grad_shape == "bump":
        terms.append(H.GradientTerm(u, H.GaussianBump(rng.uniform(-1.5, 1.5, d), float(rng.uniform(0.5, 1.2)))))
    else:
        B = rng.normal(size=(d, d))
        Q = B @ B.T / d
        terms.append(H.GradientTerm(0.3 * u, H.QuadraticPotential(Q, rng.uniform(-1, 1, d))))
    c = float(rng.uniform(0, cfg.c_max)) if family != "control" else 0.0
    if family == "null":
        c = float(rng.uniform(0.3, cfg.c_max))
    sol_shape = str(rng.choice(["rotation", "bump"]))
    bump = None if sol_shape == "rotation" else H.GaussianBump(rng.uniform(-1.5, 1.5, d), float(rng.uniform(0.6, 1.5)))
    terms.append(H.SolenoidalTerm(A, c if sol_shape == "rotation" else 2 * c, bump))
    a = float(rng.uniform(0, cfg.a_max)) if rng.uniform() < 0.5 else 0.0
    if family != "mixed":
        a = 0.0
    if a > 0:
        terms.append(H.FourierTerm.random(d, 6, amplitude=a, seed=rng))
    if family == "null":
        terms = terms[1:]     # no gradient term at all
    return H.PerturbedScore(p, terms), dict(family=family, u=u, c=c, a=a, grad_shape=grad_shape,
                                            sol_shape=sol_shape)


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

    def sample_quality(self, model, steps: int, seed: int) -> dict[str, float]:
        return self.quality(_sample(model, self.cfg, steps, seed))


def _setting(cfg: HodgeConfig, progress: bool) -> _Setting:
    p = data_law()
    target = p.smooth(cfg.delta)
    box = _default_box(p, cfg.delta, pad=4.0)
    axes = (np.linspace(box[0], box[1], cfg.kde_grid), np.linspace(box[2], box[3], cfg.kde_grid))
    return _Setting(cfg, p, target, target.sample(cfg.n_sample, seed=cfg.seed + 999), axes, progress)


