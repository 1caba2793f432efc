"""The collapse atlas's setup: configuration and presets, the data law, the learners, the
remedies as options of the one retraining loop, and the per-round metrics (docs/atlas.md).

Budgets (docs/atlas.md, section "Budgets"): every remedy trains on B = ``budget`` points per
round, except ``accumulate``, whose training set is the real data plus every synthetic set so
far (B + t B points in round t: it is counted by its *generation* budget, B new synthetic
points per round, and the ``train_size`` metric of the table shows its growth);
``accumulate-subsample`` is its equal-budget version. Every remedy of a seed starts from the
same round-0 model theta_0, fitted on the same B real points (``FixedStart``), so that
differences between remedies are paired by seed.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from ... import metrics as _metrics
from ...mixture import GaussianMixture
from ...recursion import (
    MetricBackend,
    RoundContext,
    metric_hellinger,
    metric_memorization,
    metric_precision_recall,
    metric_variance_ratio,
    metric_w2_auto,
)
from ...retraining import EmpiricalLearner, GaussianLearner, GMMLearner, SamplingBias, SelfCorrection, Verification
from ...truncation import FittedModelLearner

#: Learners (columns of the heatmap), in display order; ``ddpm`` and ``flow`` need torch.
LEARNERS = ("gaussian", "gmm", "empirical", "truncated", "dae", "ddpm", "flow")
#: The torch learners (``neural=True`` adds them when torch is installed).
NEURAL = ("ddpm", "flow")
#: Remedies (rows of the heatmap), in display order; see :func:`remedy_kwargs`.
REMEDIES = ("replace", "mix", "accumulate", "accumulate-subsample", "fresh", "temperature", "correction",
            "verification", "annealed", "fixed-skip")
#: Remedies that change one learner's own sampler or training (:func:`remedy_learner`): they
#: run for that learner only (the annealed truncation schedule of part A, the DAE's fixed skip
#: of part D); the other cells of their row are empty.
LEARNER_REMEDIES = {"annealed": "truncated", "fixed-skip": "dae"}
#: Metrics where smaller is better (the others: precision and recall, variance_ratio near 1).
LOWER_IS_BETTER = ("w2", "hellinger", "moment_error", "memorization")


@dataclasses.dataclass
class AtlasConfig:
    learners: tuple[str, ...] = tuple(lr for lr in LEARNERS if lr not in NEURAL)  # columns of the heatmap
    remedies: tuple[str, ...] = REMEDIES  # the workflows and remedies compared (rows of the heatmap)
    budget: int = 200                 # B: training points per round (the equal budget)
    n_eval: int = 250                 # model samples and held-out real points for each round's metrics
    rounds: int = 10                  # retraining rounds T after round 0
    dim: int = 2                      # dimension of the data law (a 3-mode mixture in the first two coordinates)
    seed: int = 0                     # first seed (every seed's data, fits and draws derive from it)
    seeds: int = 20                   # independent seeds seed, seed+1, ...: the CIs are over these
    mix_real_fraction: float = 0.5    # a: real share of the B points for mix and fresh (lambda = (1-a)/a)
    temperature: float = 0.7          # sampling-bias remedy: generate at temperature tau
    correction_strength: float = 0.1  # self-correction: total Langevin time with the true score
    correction_steps: int = 10        # self-correction: Langevin steps per round
    acceptance: float = 0.7           # verification: share of synthetic candidates kept (highest true likelihood)
    gmm_components: int = 3           # mixture components of the GMM learner (EM, scikit-learn)
    empirical_delta: float = 0.01     # the empirical score model samples S_delta of its training set (memorises)
    empirical_steps: int = 40         # reverse-sampler steps of the empirical score model
    truncation_delta: float = 0.1     # the truncated learner: exact draws of S_delta of its training set
    anneal_gamma: float = 0.7         # annealed remedy: delta_k = truncation_delta gamma^k (sum delta_k finite)
    dae_r: int = 1                    # DAE hidden units (r < dim leaves a direction off W for the fixed-b theory)
    dae_lr: float = 0.05              # DAE SGD step (one pass over the B points: tau = 2 lr B / dim)
    dae_fixed_b: float = -1.0         # fixed-skip remedy's b (< 0: the b whose variance off W is 1, the data's)
    neural: bool = False              # add the torch learners ddpm and flow (skipped when torch is missing)
    neural_samples: int = 20_000      # samples seen per round by a torch learner (optimiser steps x batch)
    w2_method: Literal["exact", "sliced"] = "exact"   # exact optimal transport, or sliced W2 (200 directions)
    hellinger: bool = True            # Hellinger between KDEs of samples and held-out points (d <= 2; rounds 0 and T)
    rank_metric: str = "w2"           # the final-round metric the remedies are ranked by (lower is better)
    theory_chains: int = 80           # Gaussian / truncated chains per seed for the theory overlays
    threads: int = 1                  # threads of the compiled kernels (0 = all cores)

    def __post_init__(self) -> None:
        for name, values, valid in (("learners", self.learners, LEARNERS), ("remedies", self.remedies, REMEDIES)):
            if not values:
                raise ValueError(f"{name} must name at least one of {', '.join(valid)}")
            bad = [v for v in values if v not in valid]
            if bad:
                raise ValueError(f"unknown {name} {bad}; valid: {', '.join(valid)}")
        if self.budget < 10 or self.n_eval < 10:
            raise ValueError(f"budget and n_eval must be >= 10, got {self.budget} and {self.n_eval}")
        if self.rounds < 1 or self.seeds < 1 or self.theory_chains < 2:
            raise ValueError("need rounds >= 1, seeds >= 1 and theory_chains >= 2")
        if self.dim < 2:
            raise ValueError(f"dim must be >= 2 (the modes lie in a plane), got {self.dim}")
        if not 0 < self.mix_real_fraction < 1 or not 2 <= round(self.mix_real_fraction * self.budget) <= self.budget - 1:
            raise ValueError(f"mix_real_fraction must be in (0, 1) with at least 2 real and 1 synthetic point, got "
                             f"{self.mix_real_fraction}")
        if not 0 < self.acceptance <= 1 or not 0 < self.temperature <= 10:
            raise ValueError("acceptance must be in (0, 1] and temperature in (0, 10]")
        if not 0 < self.anneal_gamma <= 1:
            raise ValueError(f"anneal_gamma must be in (0, 1], got {self.anneal_gamma}")
        if not 1 <= self.dae_r < self.dim or not self.dae_lr > 0:
            raise ValueError(f"dae_r must be in [1, dim) and dae_lr > 0, got {self.dae_r} and {self.dae_lr}")
        if self.neural_samples < 1:
            raise ValueError(f"neural_samples must be >= 1, got {self.neural_samples}")
        if self.rank_metric not in LOWER_IS_BETTER:
            raise ValueError(f"rank_metric must be one of {', '.join(LOWER_IS_BETTER)} (lower is better)")
        if self.rank_metric == "hellinger" and not (self.hellinger and self.dim <= 2):
            raise ValueError("rank_metric='hellinger' needs hellinger=true and dim <= 2")


PRESETS: dict[str, dict[str, Any]] = {
    # quick: 3 seeds and 4 rounds, sliced W2 (no optimal-transport import); claims may be underpowered
    "quick": dict(budget=100, n_eval=200, rounds=4, seeds=3, theory_chains=60, empirical_steps=30,
                  w2_method="sliced", hellinger=False),
    "default": {},
    # paper asks for the torch learners too (run only where torch is installed)
    "paper": dict(budget=500, n_eval=1000, rounds=20, seeds=30, theory_chains=1000, empirical_steps=100, neural=True,
                  neural_samples=50_000),
}


def active_learners(config: AtlasConfig) -> tuple[str, ...]:
    """The learners the atlas runs: ``config.learners``, plus ``ddpm`` and ``flow`` when
    ``config.neural`` and torch is installed (a learner named in ``learners`` that needs torch
    raises the ImportError of :func:`modelcollapse._optional.require` instead)."""
    from ... import _optional

    extra = tuple(lr for lr in NEURAL if lr not in config.learners) if config.neural and _optional.has("torch") else ()
    return (*config.learners, *extra)


def runs_for(remedy: str, learner: str) -> bool:
    """Whether the atlas runs ``remedy`` for ``learner`` (:data:`LEARNER_REMEDIES`)."""
    return LEARNER_REMEDIES.get(remedy, learner) == learner


def data_law(dim: int) -> GaussianMixture:
    """The real data law: three Gaussian modes (weights 0.5, 0.3, 0.2, covariance 0.25 I) on a
    circle of radius 2 in the first two coordinates; unequal weights so that a collapse of the
    mode proportions is visible."""
    angles = np.array([0.0, 2.0, 4.0]) * math.pi / 3
    means = np.zeros((3, dim))
    means[:, 0], means[:, 1] = 2 * np.cos(angles), 2 * np.sin(angles)
    return GaussianMixture([0.5, 0.3, 0.2], means, np.stack([0.25 * np.eye(dim)] * 3))


def seed_rng(seed: int, *key: int) -> np.random.Generator:
    """A generator that is a pure function of ``(seed, key)`` (one stream per use)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1000, *key)))


def real_sets(law: GaussianMixture, config: AtlasConfig, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The seed's B real training points and its ``n_eval`` held-out real points."""
    return (law.sample(config.budget, seed=seed_rng(seed, 0)), law.sample(config.n_eval, seed=seed_rng(seed, 1)))


def make_learner(name: str, config: AtlasConfig) -> Any:
    """The learner ``name`` (docs/atlas.md, section "Learners")."""
    if name == "gaussian":
        return GaussianLearner(ddof=1)
    if name == "gmm":
        return GMMLearner(n_components=config.gmm_components)
    if name == "empirical":
        return EmpiricalLearner(T=1.0, delta=config.empirical_delta, steps=config.empirical_steps, grid="log",
                                threads=config.threads)
    if name == "truncated":
        return FittedModelLearner(EmpiricalLearner(), config.truncation_delta, config.rounds, sampler="exact",
                                  threads=config.threads)
    if name == "dae":
        return _dae(config, train_b=True)
    if name in NEURAL:
        from ... import _optional

        _optional.require("torch", f"the atlas's {name!r} learner")
        from ...retraining import torch_learners as tl

        cls = tl.DDPMLearner if name == "ddpm" else tl.FlowMatchingLearner
        return cls(width=64, n_blocks=2, samples_per_round=config.neural_samples, sample_steps=50, device="cpu",
                   dtype="float64", threads=max(config.threads, 1))
    raise ValueError(f"unknown learner {name!r}; valid: {', '.join(LEARNERS)}")


#: Standardised samples beyond this many data scales count as a diverged model (the grid
#: records the run as ``diverged``; the metrics' k-NN and OT code is not meant for them).
MAX_STANDARDIZED = 1e6


class Standardized:
    """A learner fitted on standardised coordinates z = (x - mu*) / s, s^2 = tr Sigma* / d (a
    fixed preprocessing by the data law's moments), whose samples are mapped back: the DAE is
    built for data of unit scale (docs/dae.md), and on the raw atlas data (per-coordinate
    variance 2.1) its trained skip and its sampler diverge within a few rounds."""

    def __init__(self, inner: Any, mean: np.ndarray, scale: float) -> None:
        self.inner, self.mean, self.scale = inner, np.asarray(mean, dtype=np.float64), float(scale)
        self.name = inner.name

    def config(self) -> dict[str, Any]:
        return {**self.inner.config(), "standardized": {"mean": self.mean.tolist(), "scale": self.scale}}

    def fit(self, data: np.ndarray, previous_state: Any, rng: np.random.Generator) -> Any:
        return self.inner.fit((np.asarray(data, dtype=np.float64) - self.mean) / self.scale, previous_state, rng)

    def sample(self, state: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        z = np.asarray(self.inner.sample(state, n, rng), dtype=np.float64)
        if not np.all(np.abs(z) < MAX_STANDARDIZED):
            raise ValueError(f"the {self.name} model diverged: samples beyond {MAX_STANDARDIZED:g} data scales")
        return z * self.scale + self.mean

    def parameter_vector(self, state: Any) -> np.ndarray:
        return np.asarray(self.inner.parameter_vector(state), dtype=np.float64)


def _dae(config: AtlasConfig, train_b: bool) -> Standardized:
    """The DAE (docs/dae.md) on standardised coordinates (:class:`Standardized`), with the
    sampling grid of the D part (50 steps to t_f = 0.98); with ``train_b=False`` its skip is
    fixed at :func:`fixed_skip`."""
    from ... import dae

    law = data_law(config.dim)
    inner = dae.DaeLearner(r=config.dae_r, lr=config.dae_lr, train_b=train_b,
                           b0=0.0 if train_b else fixed_skip(config), schedule=dae_schedule(), threads=config.threads)
    return Standardized(inner, law.mean(), math.sqrt(float(np.trace(law.covariance())) / config.dim))


def dae_schedule() -> Any:
    """The DAE sampler's Euler grid (50 steps up to t_f = 0.98, probability-flow ODE)."""
    from ... import dae

    return dae.sampler_schedule(50, 0.98)


def fixed_skip(config: AtlasConfig) -> float:
    """The fixed-skip remedy's b: ``dae_fixed_b``, or (when < 0) the b whose generated variance
    off the span of w, v_(t_f)(b), is the standardised data's per-coordinate variance 1
    (:func:`modelcollapse.dae_theory.skip_for_variance`, as in ``dae-generations``)."""
    if config.dae_fixed_b >= 0:
        return float(config.dae_fixed_b)
    from ...dae_theory import skip_for_variance

    return skip_for_variance(1.0, dae_schedule())


def anneal_schedule(config: AtlasConfig) -> Any:
    """The annealed remedy's truncation schedule delta_k = ``truncation_delta`` gamma^k
    (docs/truncation.md, section on annealed schedules)."""
    from ...truncation import Schedule

    return Schedule.geometric(config.truncation_delta, config.anneal_gamma)


def remedy_learner(remedy: str, learner: Any, name: str, config: AtlasConfig) -> Any:
    """The learner of rounds >= 1 under ``remedy``: ``learner`` itself, except for the remedies
    that change one learner's own sampler or training (:data:`LEARNER_REMEDIES`): ``annealed``
    samples the truncated learner at delta_k = delta_0 gamma^k (part A), ``fixed-skip`` trains
    the DAE with its skip b frozen at :func:`fixed_skip` (part D). Both keep round 0's model."""
    if not runs_for(remedy, name):
        raise ValueError(f"remedy {remedy!r} is for the {LEARNER_REMEDIES[remedy]!r} learner only, not {name!r}")
    if remedy == "annealed":
        return FittedModelLearner(EmpiricalLearner(), anneal_schedule(config), config.rounds, sampler="exact",
                                  threads=config.threads)
    if remedy == "fixed-skip":
        return _dae(config, train_b=False)
    return learner


def mix_sizes(config: AtlasConfig) -> tuple[int, float]:
    """``(n_real, lambda)`` of mix / fresh: n_real = round(a B) real points and floor(lambda n_real) =
    B - n_real synthetic ones, B in all."""
    n_r = int(round(config.mix_real_fraction * config.budget))
    return n_r, (config.budget - n_r) / n_r


def remedy_kwargs(name: str, config: AtlasConfig, law: GaussianMixture, real: np.ndarray) -> dict[str, Any]:
    """Keyword arguments of :func:`~modelcollapse.recursion.run_retraining` for remedy ``name``.

    ``real`` is the seed's B real points (round 0 is the common theta_0 in every case).
    ``temperature``, ``correction`` and ``verification`` act on the synthetic draw of the fully
    synthetic (``replace``) loop, so their row compares with ``replace``.
    """
    B = config.budget
    if name in ("replace", "annealed", "fixed-skip"):   # the last two change the learner (remedy_learner)
        return dict(real_data=real, workflow="replace", n_synthetic=B)
    if name == "mix":
        n_r, lam = mix_sizes(config)
        return dict(real_data=real[:n_r], workflow="mix", synthetic_ratio=lam)
    if name == "accumulate":
        return dict(real_data=real, workflow="accumulate", n_synthetic=B)
    if name == "accumulate-subsample":
        return dict(real_data=real, workflow="accumulate-subsample", n_synthetic=B, train_budget=B)
    if name == "fresh":
        n_r, lam = mix_sizes(config)

        def fresh_real(n_samples: int, seed: int) -> np.ndarray:
            return law.sample(n_samples, seed=seed)

        return dict(real_data=fresh_real, n_real=n_r, workflow="fresh", synthetic_ratio=lam)
    if name == "temperature":
        return dict(real_data=real, workflow="replace", n_synthetic=B,
                    remedies=[SamplingBias(temperature=config.temperature)])
    if name == "correction":
        return dict(real_data=real, workflow="replace", n_synthetic=B,
                    remedies=[SelfCorrection(law, strength=config.correction_strength,
                                                 steps=config.correction_steps)])
    if name == "verification":
        return dict(real_data=real, workflow="replace", n_synthetic=B,
                    remedies=[Verification(law, acceptance=config.acceptance)])
    raise ValueError(f"unknown remedy {name!r}; valid: {', '.join(REMEDIES)}")


def kde_hellinger(x: np.ndarray, y: np.ndarray) -> float:
    """Hellinger H between the KDEs (Scott's bandwidth) of two sample sets in d <= 2:
    :func:`modelcollapse.metrics.hellinger` on its default grid, or, when that grid is coarser
    than twice a kernel (a collapsed model's cloud is too narrow for a grid spanning the
    held-out data), :func:`narrow_frame_hellinger` (docs/atlas.md, section "Metrics")."""
    try:
        return float(_metrics.hellinger(x, y))
    except ValueError as err:
        if "grid spacing" not in str(err):
            raise
    return narrow_frame_hellinger(x, y)


def narrow_frame_hellinger(x: np.ndarray, y: np.ndarray, pad: float = 6.0, max_points: int = 1001) -> float:
    """H = sqrt(1 - BC), BC = int sqrt(p q), for the KDEs p, q of ``x`` and ``y``, on a grid fitted
    to the narrower KDE.

    Hellinger is invariant under an affine change of coordinates and Scott's kernel covariance
    is proportional to the sample covariance, so both sets are mapped by z = L^-1 (x - c),
    H_n = L L^T the kernel covariance of the narrower set (smaller determinant): there its
    kernel is the identity. sqrt(p q) vanishes where the narrower density does, so BC is summed
    over that set's box widened by ``pad`` kernel deviations (e^(-pad^2/2) of a kernel's mass
    left out per side), with a step of half the smaller kernel deviation of the two. NaN only
    when that needs more than ``max_points`` per axis (kernels of very different shapes)."""
    hx, hy = _metrics.kde_bandwidth(x), _metrics.kde_bandwidth(y)
    (narrow, h_n), (wide, h_w) = sorted(((x, hx), (y, hy)), key=lambda pair: float(np.linalg.det(pair[1])))
    linv = np.linalg.inv(np.linalg.cholesky(h_n))
    c = narrow.mean(axis=0)
    zn, zw = (narrow - c) @ linv.T, (wide - c) @ linv.T
    step = 0.5 * min(1.0, math.sqrt(float(np.linalg.eigvalsh(linv @ h_w @ linv.T).min())))
    lo, hi = zn.min(axis=0) - pad, zn.max(axis=0) + pad
    n = int(math.ceil(float(np.max(hi - lo)) / step)) + 1
    if n > max_points:
        return float("nan")
    grid = _metrics.Grid.regular(lo, hi, n)
    bc = float(np.sum(np.sqrt(_metrics.kde(zn, grid) * _metrics.kde(zw, grid)))) * grid.cell_volume
    return math.sqrt(min(max(1.0 - bc, 0.0), 1.0))


def metric_backend(config: AtlasConfig) -> MetricBackend:
    """The library's distances (Hellinger on a grid fitted to a collapsed cloud, :func:`kde_hellinger`);
    ``w2_method="sliced"`` makes the ``w2_auto`` metric sliced for every set size (exact optimal
    transport only for sets of <= 2 points)."""
    return MetricBackend(exact_max_points=1000 if config.w2_method == "exact" else 2, hellinger=kde_hellinger)


def round_metrics(law: GaussianMixture, config: AtlasConfig) -> Callable[[RoundContext], dict[str, float]]:
    """The atlas's per-round metrics of the model's evaluation samples x (docs/atlas.md,
    section "Metrics"), the library's (:mod:`modelcollapse.recursion`) except ``moment_error``:

    - ``w2``: W2(x, held-out real points), equal sizes (``w2_auto``: exact or sliced);
    - ``precision``, ``recall``: k-NN balls, k = 4;
    - ``variance_ratio``: tr Cov(x) / tr Cov(held-out) (1: no variance lost);
    - ``moment_error``: sqrt(||mean(x) - mu*||^2 + ||Cov(x) - Sigma*||_F^2) against the true
      law's moments: the parameter error of the samples' Gaussian fit, defined for every learner;
    - ``hellinger`` (``config.hellinger`` and d <= 2): H between KDEs of x and the held-out points,
      in the first and the last round only (a KDE on a grid per round would double the cost);
    - ``memorization``: fraction of x within 1/3 of the real data's median nearest-neighbour
      distance of a training point of the round (and ``memorization_threshold``).
    """
    mu, sigma = law.mean(), law.covariance()

    def metric(ctx: RoundContext) -> dict[str, float]:
        x = np.asarray(ctx.samples, dtype=np.float64)
        cov = np.atleast_2d(np.cov(x.T))
        out = {"w2": metric_w2_auto(ctx), **metric_precision_recall(ctx), "variance_ratio": metric_variance_ratio(ctx),
               "moment_error": float(math.sqrt(np.sum((x.mean(0) - mu) ** 2) + np.sum((cov - sigma) ** 2))),
               **metric_memorization(ctx)}
        if config.hellinger and x.shape[1] <= 2 and ctx.round in (0, config.rounds):
            out["hellinger"] = metric_hellinger(ctx)
        return out

    return metric
