"""The truncated-diffusion recursion simulated with samples: learners that fit a model and
sample it with the reverse sampler truncated at delta_k, and :func:`simulate_recursion`,
which runs them through the project's one retraining loop (:mod:`modelcollapse.recursion`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import as_seed, check_allocation, check_choice, check_positive_int, check_real, check_threads
from ..mixture import GaussianMixture
from ..recursion import run_retraining
from ._distances import sliced_w2, w2_1d, w2_1d_to_law
from ._hermite import hermite_moments, mixture_moments
from ._laws import MAX_ROUNDS, ExactRecursion, Schedule, _check_law, affine_score_error, as_schedule, exact_recursion

#: ``independent``: every round draws afresh from the exact law q_k (no learning from
#: samples); ``empirical`` / ``gmm``: truly recursive, each round's model is fitted to the
#: training set built from the previous round's samples.
MODELS = ("independent", "empirical", "gmm")
#: ``reverse``: the compiled reverse sampler (discretisation error); ``exact``: draws of
#: S_{delta_k}(model) itself (the idealised perfect sampler of the theory).
SAMPLERS = ("reverse", "exact")


class _ScheduledSampler:
    """Samples the round's model with the compiled reverse sampler at truncation delta_k."""

    def __init__(self, schedule: Schedule, T: float, steps: int, integrator: str, grid: str, init: str,
                 threads: int) -> None:
        from ..sampler import GRIDS, INTEGRATORS

        self.schedule = schedule
        self.T = check_real(T, "T", low=0.0, low_open=True)
        self.steps = check_positive_int(steps, "steps", maximum=10**9)
        self.integrator = check_choice(integrator, "integrator", INTEGRATORS)
        self.grid = check_choice(grid, "grid", GRIDS)
        self.init = init
        self.threads = check_threads(threads)

    def _sample(self, score_model: Any, k: int, n: int, rng: np.random.Generator) -> np.ndarray:
        from ..sampler import sample_reverse

        delta = self.schedule(k)
        if not delta < self.T:
            raise ValueError(f"delta_{k} = {delta} must be < T = {self.T}")
        out = sample_reverse(score_model, n_samples=n, T=self.T, delta=delta, steps=self.steps, grid=self.grid,
                             integrator=self.integrator, init=self.init, seed=as_seed(rng), threads=self.threads)
        return np.asarray(out.samples, dtype=np.float64)

    def _config(self, rounds: int) -> dict[str, Any]:
        return {"schedule": self.schedule.values(rounds + 1).tolist(), "T": self.T, "steps": self.steps,
                "integrator": self.integrator, "grid": self.grid, "init": self.init}


class IndependentDrawLearner(_ScheduledSampler):
    """Independent draws from the exact laws (not a recursive simulation): the state of round
    k is the exact training law q_k (a GaussianMixture: q_0 = p, q_k = a p + (1 - a)
    S_{delta_{k-1}} q_{k-1}) computed from the previous *state*; the samples passed to
    ``fit`` are ignored, so sampling errors never propagate from one round to the next.
    Sampling runs the reverse sampler with the exact score of q_k, or (``perturbation`` eta
    > 0) of A_eta # q_k (:func:`~modelcollapse.truncation.affine_score_error`): one round of
    error on top of the ideal law (docs/truncation.md, section "Compounding errors")."""

    name = "independent"

    def __init__(self, data_law: GaussianMixture, real_fraction: float, schedule: Any, rounds: int, *,
                 T: float = 2.0, steps: int = 200, integrator: str = "exponential", grid: str = "quadratic",
                 perturbation: float = 0.0, threads: int = 0) -> None:
        super().__init__(as_schedule(schedule), T, steps, integrator, grid, "exact", threads)
        self.data_law = _check_law(data_law, "data_law")
        self.a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
        self.rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)
        # A relative error: beyond 1e6 the sampled law has nothing to do with q_k (and overflows).
        self.perturbation = check_real(perturbation, "perturbation", low=0.0, high=1e6)

    def config(self) -> dict[str, Any]:
        return {"real_fraction": self.a, "perturbation": self.perturbation, **self._config(self.rounds)}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        if previous_state is None:
            return {"round": 0, "law": self.data_law.to_dict()}
        k = previous_state["round"] + 1
        prev = GaussianMixture.from_dict(previous_state["law"]).smooth(self.schedule(k - 1))
        law = prev if self.a == 0 else self.data_law.mix(prev, self.a)
        return {"round": k, "law": law.to_dict()}

    def score_model(self, state: dict[str, Any]) -> GaussianMixture:
        """The score model sampled: q_k, or A_eta # q_k (the controlled score error eta)."""
        return affine_score_error(GaussianMixture.from_dict(state["law"]), self.perturbation)

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return self._sample(self.score_model(state), state["round"], n, rng)


#: Former name of :class:`IndependentDrawLearner` (it never learned from its samples).
ExactLawLearner = IndependentDrawLearner


class FittedModelLearner(_ScheduledSampler):
    """Wraps a retraining learner (``GMMLearner`` or ``EmpiricalLearner``) for fitting and
    samples the fitted model at truncation delta_k: a truly recursive simulation, since each
    round's model is fitted to a training set built from the previous round's samples.

    ``sampler="reverse"``: the reverse sampler (exact score of the fitted model, exact
    initial law); ``sampler="exact"``: draws of S_{delta_k}(model) (for the empirical model
    e^{-delta} x_J + sigma Z with J uniform on the training set), the theory's perfect
    sampler. ``perturbation`` eta > 0 samples A_eta # model instead
    (:func:`~modelcollapse.truncation.affine_score_error`): the controlled score error, now
    applied to a model fitted to imperfect samples, so it compounds."""

    def __init__(self, inner: Any, schedule: Any, rounds: int, *, T: float = 2.0, steps: int = 200,
                 integrator: str = "exponential", grid: str = "quadratic", perturbation: float = 0.0,
                 sampler: str = "reverse", threads: int = 0) -> None:
        if not (callable(getattr(inner, "fit", None)) and hasattr(inner, "name")):
            raise TypeError("inner must be a retraining learner (GMMLearner or EmpiricalLearner: fit() and a name), "
                            f"got {type(inner).__name__}")
        super().__init__(as_schedule(schedule), T, steps, integrator, grid, "exact", threads)
        self.inner = inner
        self.name = inner.name
        self.rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)
        self.perturbation = check_real(perturbation, "perturbation", low=0.0, high=1e6)
        self.sampler = check_choice(sampler, "sampler", SAMPLERS)

    def config(self) -> dict[str, Any]:
        inner = self.inner.config() if hasattr(self.inner, "config") else {}
        return {"inner": inner, "perturbation": self.perturbation, "sampler": self.sampler, **self._config(self.rounds)}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        k = 0 if previous_state is None else previous_state["round"] + 1
        prev = None if previous_state is None else previous_state["model"]
        return {"round": k, "model": self.inner.fit(data, prev, rng)}

    def score_model(self, state: dict[str, Any]) -> Any:
        from ..empirical import EmpiricalScore

        m = state["model"]
        eta = self.perturbation
        if "train" in m:
            # A_eta acts on points: the empirical law of the mapped training set
            return EmpiricalScore(m["train"] if eta == 0.0 else np.sqrt(1.0 + eta) * m["train"] + eta)
        law = GaussianMixture(m["weights"] / m["weights"].sum(), m["means"], m["covariances"])
        return affine_score_error(law, eta)

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        model = self.score_model(state)
        if self.sampler == "reverse":
            return self._sample(model, state["round"], n, rng)
        delta = self.schedule(state["round"])
        if isinstance(model, GaussianMixture):
            return model.sample(n, seed=as_seed(rng), t=delta)
        return _smoothed_empirical_sample(model.samples, delta, n, rng)


def _smoothed_empirical_sample(points: np.ndarray, delta: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """n exact draws of S_delta of the empirical law of ``points``: e^{-delta} x_J + sigma Z,
    J uniform, sigma^2 = 1 - e^{-2 delta}."""
    j = rng.integers(0, len(points), size=n)
    return np.exp(-delta) * points[j] + np.sqrt(-np.expm1(-2.0 * delta)) * rng.standard_normal((n, points.shape[1]))


@dataclasses.dataclass
class SimulationResult:
    """Output of :func:`simulate_recursion`: tidy ``table`` (round x metric), each round's
    output ``samples``, the model ``states``, the ``exact`` recursion for comparison, and the
    underlying :class:`~modelcollapse.recursion.RetrainingResult`."""

    table: pd.DataFrame
    samples: list[np.ndarray]
    states: list[Any]
    exact: ExactRecursion
    retraining: Any

    def to_frame(self) -> pd.DataFrame:
        """The tidy table (one row per round x metric): a copy of :attr:`table`."""
        return self.table.copy()


def _round_metric(exact: ExactRecursion, hermite_degree: int, seed: int, recursive: bool
                  ) -> Callable[[Any], dict[str, float]]:
    """The per-round metric of :func:`simulate_recursion`: mean, variance, W2 to the exact
    p_hat_k, Hermite moments (measured, standard errors, exact), and the round's own error:
    ``eps_w2`` = W2(samples_k, S_{delta_k} of the round's training law) and the training
    law's moments ``g_*_train`` (so eps_{n,k} = |g_n(samples_k) - e^{-n delta_k} g_n(train_k)|,
    Mehler). The training law is the round's training set for a recursive model and the exact
    q_k for ``independent`` draws (whose training data is ignored)."""
    d = exact.data_law.dim
    rounds = len(exact.outputs) - 1
    exact_moments = [mixture_moments(exact.output_mixture(k), hermite_degree) for k in range(rounds + 1)]
    train_moments = [mixture_moments(exact.training[k].to_mixture(), hermite_degree) for k in range(rounds + 1)]

    def distance(x: np.ndarray, y: np.ndarray | None, law: GaussianMixture, k: int) -> float:
        if d == 1:
            return w2_1d(x[:, 0], y[:, 0]) if y is not None else w2_1d_to_law(x[:, 0], law)
        if y is None:
            y = law.sample(len(x), seed=np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, 77))))
        return sliced_w2(x, y, seed=seed + k)

    def metric(ctx: Any) -> dict[str, float]:
        k = ctx.round
        x = ctx.samples
        law_k = exact.output_mixture(k)
        out = {"mean_0": float(x[:, 0].mean()), "var_trace": float(np.trace(np.atleast_2d(np.cov(x.T)))),
               "exact_mean_0": float(law_k.mean()[0]), "exact_var_trace": float(np.trace(law_k.covariance()))}
        out["w2_to_exact"] = distance(x, None, law_k, k)
        if recursive:
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, 78)))
            ideal = _smoothed_empirical_sample(np.asarray(ctx.train_data), exact.deltas[k], len(x), rng)
            out["eps_w2"] = distance(x, ideal, law_k, k)
            tm = hermite_moments(np.asarray(ctx.train_data), hermite_degree).values
        else:
            out["eps_w2"] = out["w2_to_exact"]
            tm = train_moments[k].values
        hm = hermite_moments(x, hermite_degree, std_errors=True)
        assert hm.std_errors is not None  # std_errors=True fills them
        em = exact_moments[k]
        for i, alpha in enumerate(hm.indices):
            if alpha.sum() == 0:
                continue
            tag = "".join(str(v) for v in alpha) if d > 1 else str(alpha[0])
            out[f"g_{tag}"] = float(hm.values[i])
            out[f"g_{tag}_se"] = float(hm.std_errors[i])
            out[f"g_{tag}_exact"] = float(em.values[i])
            out[f"g_{tag}_train"] = float(tm[i])
        return out

    return metric


def simulate_recursion(data_law: GaussianMixture, rounds: int, n_samples: int, real_fraction: float,
                       schedule: Any, *, model: str = "independent", T: float = 2.0, steps: int = 200,
                       integrator: str = "exponential", grid: str = "quadratic", n_components: int | None = None,
                       perturbation: float = 0.0, sampler: str = "reverse", hermite_degree: int = 6, seed: int = 0,
                       checkpoint_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
                       threads: int = 0, labels: dict[str, Any] | None = None) -> SimulationResult:
    """Simulate the truncated-diffusion recursion with samples, through
    :func:`modelcollapse.recursion.run_retraining` (workflow ``mix`` with this real_fraction).

    Each round's model is sampled with the compiled reverse sampler (exact score of the
    model, exact initial law, ``steps`` steps of ``integrator`` on ``grid`` from T down to
    delta_k), or with ``sampler="exact"`` (recursive models only) by exact draws of
    S_{delta_k}(model). The model is ``independent`` (each round draws afresh from the exact
    law q_k: not a recursion of samples, errors never propagate), or truly recursive,
    fitted to the training set of the n_samples real points plus the previous round's
    samples: ``empirical`` (KDE score of the training set: perfect learning of finite data)
    or ``gmm`` (EM fit, warm-started, ``n_components`` default K of p). ``perturbation`` eta
    samples A_eta # model (:func:`~modelcollapse.truncation.affine_score_error`).
    Per round the table holds: mean, variance (trace), W2 to the exact p_hat_k (1-D: sample
    quantiles vs exact quantiles; d >= 2: sliced W2 against a sample of p_hat_k), the
    round's own error ``eps_w2``, and the orthonormal Hermite moments up to
    ``hermite_degree`` (measured, exact and of the training law). The expected deviation of
    the moments from the exact ones is :func:`expected_moment_sd`. Checkpoints and resume as
    in ``run_retraining``.
    """
    # the retraining part's learners (GMM, empirical/KDE), wrapped by FittedModelLearner
    from ..retraining import EmpiricalLearner, GMMLearner

    if not isinstance(data_law, GaussianMixture):
        raise TypeError("data_law must be a modelcollapse.GaussianMixture")
    check_choice(model, "model", MODELS)
    rounds = check_positive_int(rounds, "rounds", minimum=0)
    n_samples = check_positive_int(n_samples, "n_samples", minimum=2)
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    sched = as_schedule(schedule)
    seed = as_seed(seed)
    hermite_degree = check_positive_int(hermite_degree, "hermite_degree", minimum=0, maximum=200)
    if n_components is not None:
        n_components = check_positive_int(n_components, "n_components", maximum=10**6)
    perturbation = check_real(perturbation, "perturbation", low=0.0, high=1e6)
    check_choice(sampler, "sampler", SAMPLERS)
    if labels is not None and not isinstance(labels, dict):
        raise TypeError(f"labels must be a dict of column values, got {type(labels).__name__}")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, Path)):
        raise TypeError(f"checkpoint_dir must be a path (str or Path), got {type(checkpoint_dir).__name__}")
    # Every round's samples are kept (keep_samples): n_samples x d per round.
    check_allocation(float(n_samples) * data_law.dim * (rounds + 2) * 2, "n_samples and rounds",
                     "the samples of every round")
    exact = exact_recursion(data_law, rounds, a, sched)
    kw: dict[str, Any] = dict(T=T, steps=steps, integrator=integrator, grid=grid, threads=threads)
    if model == "independent":
        if sampler != "reverse":
            raise ValueError("sampler='exact' is for the recursive models; model='independent' would just "
                             "draw the exact laws")
        learner: Any = IndependentDrawLearner(data_law, a, sched, rounds, perturbation=perturbation, **kw)
        n_train = 2  # this learner ignores its training data; keep the loop's synthetic draws tiny
    else:
        inner = (EmpiricalLearner() if model == "empirical"
                 else GMMLearner(n_components or data_law.n_components))
        learner = FittedModelLearner(inner, sched, rounds, perturbation=perturbation, sampler=sampler, **kw)
        n_train = n_samples
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(9_999,)))
    real = data_law.sample(n_train, seed=rng)
    eval_data = data_law.sample(min(n_samples, 2000), seed=rng)
    metric = _round_metric(exact, hermite_degree, seed, recursive=model != "independent")
    res = run_retraining(learner, real, rounds, workflow="mix", real_fraction=a, eval_data=eval_data,
                         n_eval=n_samples, metrics={"truncation": metric}, seed=seed, checkpoint_dir=checkpoint_dir,
                         resume=resume, keep_states=True, keep_samples=True, progress=progress,
                         labels={"model": model, "schedule": sched.description, **(labels or {})})
    return SimulationResult(table=res.table, samples=res.samples, states=res.states, exact=exact, retraining=res)


def hermite_variances_1d(law: GaussianMixture, degree: int) -> np.ndarray:
    """Var_law(h_n(X)) for n = 0..degree, h_n = He_n / sqrt(n!) (1-D law).

    Gauss-Hermite quadrature per component with degree + 30 nodes, exact for the polynomials
    h_n and h_n^2 (degree <= 2 degree)."""
    _check_law(law, "law")
    if law.dim != 1:
        raise ValueError(f"law must be one-dimensional, got dim = {law.dim}")
    degree = check_positive_int(degree, "degree", minimum=0, maximum=200)
    nodes, wq = np.polynomial.hermite_e.hermegauss(degree + 30)
    wq = wq / np.sqrt(2.0 * np.pi)
    x = law.means[:, 0][:, None] + np.sqrt(law.full_covariances()[:, 0, 0])[:, None] * nodes[None, :]
    h = np.empty((degree + 1,) + x.shape)
    h[0] = 1.0
    if degree >= 1:
        h[1] = x
    for m in range(1, degree):  # normalised recurrence (docs/truncation.md, "Hermite kernel")
        h[m + 1] = (x * h[m] - np.sqrt(m) * h[m - 1]) / np.sqrt(m + 1.0)
    first = (h * wq).sum(-1) @ law.weights
    second = (h * h * wq).sum(-1) @ law.weights
    return np.maximum(second - first ** 2, 0.0)


def expected_moment_sd(data_law: GaussianMixture, rounds: int, real_fraction: float, schedule: Any, degree: int,
                       n_real: int, n_eval: int | None = None, model: str = "empirical") -> np.ndarray:
    """Predicted standard deviation of g_n(samples_k) - B_{n,k} g_n(p), shape (rounds + 1, degree + 1).

    For :func:`simulate_recursion` on a 1-D law with ``n_samples = n_real`` (the evaluation
    sample has ``n_eval``, default n_real, points). ``model="independent"``: sigma_{n,k} /
    sqrt(n_eval), sigma_{n,k}^2 = Var_{p_hat_k}(h_n). ``model="empirical"`` with
    ``sampler="exact"`` (truly recursive, perfect sampling): the moments stay unbiased (the
    one-point law of every round is p_hat_k), but the finite training sets compound. With
    u = g_n(real set) - g_n(p) and xi_k the noise of round k's m synthetic training points,
    the conditional mean M_k of round k's moment error obeys
    M_0 = e^{-n delta_0} u, M_k = e^{-n delta_k} (a u + (1 - a)(M_{k-1} + xi_k)), so

        Var = B_{n,k}^2 sigma_{n,p}^2 / n_real + W_k + sigma_{n,k}^2 / n_eval,
        W_k = e^{-2 n delta_k} (1 - a)^2 (W_{k-1} + sigma_{n,k-1}^2 / m),  W_0 = 0,

    m = floor((1 - a) n_real / a) synthetic points (n_real when a = 0), as in the ``mix``
    workflow (docs/truncation.md, section "Independent draws and recursive simulation").
    Conditional variances are replaced by population ones (relative error O(1/n_real)).
    """
    _check_law(data_law, "data_law")
    check_choice(model, "model", ("independent", "empirical"))
    rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=10_000)
    a = check_real(real_fraction, "real_fraction", 0.0, 1.0)
    degree = check_positive_int(degree, "degree", minimum=0, maximum=200)
    n_real = check_positive_int(n_real, "n_real", minimum=1)
    n_eval = n_real if n_eval is None else check_positive_int(n_eval, "n_eval", minimum=1)
    exact = exact_recursion(data_law, rounds, a, schedule)
    sig2 = np.array([hermite_variances_1d(exact.output_mixture(k), degree) for k in range(rounds + 1)])
    if model == "independent":
        return np.sqrt(sig2 / n_eval)
    n = np.arange(degree + 1)
    m_syn = n_real if a == 0.0 else int(np.floor((1.0 - a) / a * n_real + 1e-9))
    sig2_p = hermite_variances_1d(data_law, degree)
    B = np.empty((rounds + 1, degree + 1))
    W = np.zeros((rounds + 1, degree + 1))
    for k in range(rounds + 1):
        e = np.exp(-n * exact.deltas[k])
        B[k] = e if k == 0 else e * (a + (1 - a) * B[k - 1])
        if k > 0 and m_syn > 0:
            W[k] = e ** 2 * (1 - a) ** 2 * (W[k - 1] + sig2[k - 1] / m_syn)
    return np.sqrt(B ** 2 * sig2_p / n_real + W + sig2 / n_eval)
