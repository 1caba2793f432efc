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
from ._distances import sliced_w2, w2_1d_to_law
from ._hermite import hermite_moments, mixture_moments
from ._laws import MAX_ROUNDS, ExactRecursion, Schedule, _check_law, as_schedule, exact_recursion

MODELS = ("exact", "empirical", "gmm")


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


class ExactLawLearner(_ScheduledSampler):
    """Perfect learning of the population law: the state of round k is the training law
    q_k (a GaussianMixture: q_0 = p, q_k = a p + (1 - a) S_{delta_{k-1}} q_{k-1}); the data
    passed to ``fit`` is ignored. Sampling runs the reverse sampler with q_k's exact score."""

    name = "exact"

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
        """The score model sampled: q_k, or (perturbation eta > 0) q_k with every covariance
        scaled by (1 + eta) and means shifted by eta (a controlled score error)."""
        law = GaussianMixture.from_dict(state["law"])
        if self.perturbation == 0.0:
            return law
        eta = self.perturbation
        return GaussianMixture(law.weights, law.means + eta, law.covariances * (1.0 + eta))

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return self._sample(self.score_model(state), state["round"], n, rng)


class FittedModelLearner(_ScheduledSampler):
    """Wraps a retraining learner (``GMMLearner`` or ``EmpiricalLearner``) for fitting and
    samples the fitted model with the reverse sampler (exact score of the fitted model,
    exact initial law) at truncation delta_k."""

    def __init__(self, inner: Any, schedule: Any, rounds: int, *, T: float = 2.0, steps: int = 200,
                 integrator: str = "exponential", grid: str = "quadratic", threads: int = 0) -> None:
        if not (callable(getattr(inner, "fit", None)) and hasattr(inner, "name")):
            raise TypeError("inner must be a retraining learner (GMMLearner or EmpiricalLearner: fit() and a name), "
                            f"got {type(inner).__name__}")
        super().__init__(as_schedule(schedule), T, steps, integrator, grid, "exact", threads)
        self.inner = inner
        self.name = inner.name
        self.rounds = check_positive_int(rounds, "rounds", minimum=0, maximum=MAX_ROUNDS)

    def config(self) -> dict[str, Any]:
        inner = self.inner.config() if hasattr(self.inner, "config") else {}
        return {"inner": inner, **self._config(self.rounds)}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        k = 0 if previous_state is None else previous_state["round"] + 1
        prev = None if previous_state is None else previous_state["model"]
        return {"round": k, "model": self.inner.fit(data, prev, rng)}

    def score_model(self, state: dict[str, Any]) -> Any:
        from ..empirical import EmpiricalScore

        m = state["model"]
        if "train" in m:
            return EmpiricalScore(m["train"])
        return GaussianMixture(m["weights"] / m["weights"].sum(), m["means"], m["covariances"])

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return self._sample(self.score_model(state), state["round"], n, rng)


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


def _round_metric(exact: ExactRecursion, hermite_degree: int, seed: int) -> Callable[[Any], dict[str, float]]:
    """The per-round metric of :func:`simulate_recursion`: mean, variance, W2 to the exact
    p_hat_k and Hermite moments (measured, standard errors, exact)."""
    d = exact.data_law.dim
    rounds = len(exact.outputs) - 1
    exact_moments = [mixture_moments(exact.output_mixture(k), hermite_degree) for k in range(rounds + 1)]

    def metric(ctx: Any) -> dict[str, float]:
        k = ctx.round
        x = ctx.samples
        law_k = exact.output_mixture(k)
        out = {"mean_0": float(x[:, 0].mean()), "var_trace": float(np.trace(np.atleast_2d(np.cov(x.T)))),
               "exact_mean_0": float(law_k.mean()[0]), "exact_var_trace": float(np.trace(law_k.covariance()))}
        if d == 1:
            out["w2_to_exact"] = w2_1d_to_law(x[:, 0], law_k)
        else:
            ref = law_k.sample(len(x), seed=np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k, 77))))
            out["w2_to_exact"] = sliced_w2(x, ref, seed=seed + k)
        hm = hermite_moments(x, hermite_degree, std_errors=True)
        em = exact_moments[k]
        for i, alpha in enumerate(hm.indices):
            if alpha.sum() == 0:
                continue
            tag = "".join(str(v) for v in alpha) if d > 1 else str(alpha[0])
            out[f"g_{tag}"] = float(hm.values[i])
            out[f"g_{tag}_se"] = float(hm.std_errors[i])
            out[f"g_{tag}_exact"] = float(em.values[i])
        return out

    return metric


def simulate_recursion(data_law: GaussianMixture, rounds: int, n_samples: int, real_fraction: float,
                       schedule: Any, *, model: str = "exact", T: float = 2.0, steps: int = 200,
                       integrator: str = "exponential", grid: str = "quadratic", n_components: int | None = None,
                       perturbation: float = 0.0, hermite_degree: int = 6, seed: int = 0,
                       checkpoint_dir: str | Path | None = None, resume: bool = True, progress: bool = True,
                       threads: int = 0, labels: dict[str, Any] | None = None) -> SimulationResult:
    """Simulate the truncated-diffusion recursion with samples, through
    :func:`modelcollapse.recursion.run_retraining` (workflow ``mix`` with this real_fraction).

    Each round's model is sampled with the compiled reverse sampler (exact score of the
    model, exact initial law, ``steps`` steps of ``integrator`` on ``grid`` from T down to
    delta_k). The next model is ``exact`` (the population law q_k: the ideal recursion),
    ``empirical`` (KDE score of the n_samples-point training set: perfect learning of
    finite data) or ``gmm`` (EM fit, warm-started, ``n_components`` default K of p).
    Per round the table holds: mean, variance (trace), W2 to the exact p_hat_k (1-D: sample
    quantiles vs exact quantiles; d >= 2: sliced W2 against a sample of p_hat_k), and the
    orthonormal Hermite moments up to ``hermite_degree`` (measured and exact). Checkpoints
    and resume as in ``run_retraining``.
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
    if labels is not None and not isinstance(labels, dict):
        raise TypeError(f"labels must be a dict of column values, got {type(labels).__name__}")
    if checkpoint_dir is not None and not isinstance(checkpoint_dir, (str, Path)):
        raise TypeError(f"checkpoint_dir must be a path (str or Path), got {type(checkpoint_dir).__name__}")
    # Every round's samples are kept (keep_samples): n_samples x d per round.
    check_allocation(float(n_samples) * data_law.dim * (rounds + 2) * 2, "n_samples and rounds",
                     "the samples of every round")
    exact = exact_recursion(data_law, rounds, a, sched)
    kw = dict(T=T, steps=steps, integrator=integrator, grid=grid, threads=threads)
    if model == "exact":
        learner: Any = ExactLawLearner(data_law, a, sched, rounds, perturbation=perturbation, **kw)
        n_train = 2  # the exact learner ignores its training data; keep the loop's synthetic draws tiny
    else:
        if perturbation:
            raise ValueError("perturbation is only for model='exact'")
        inner = (EmpiricalLearner() if model == "empirical"
                 else GMMLearner(n_components or data_law.n_components))
        learner = FittedModelLearner(inner, sched, rounds, **kw)
        n_train = n_samples
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(9_999,)))
    real = data_law.sample(n_train, seed=rng)
    eval_data = data_law.sample(min(n_samples, 2000), seed=rng)
    metric = _round_metric(exact, hermite_degree, seed)
    res = run_retraining(learner, real, rounds, workflow="mix", real_fraction=a, eval_data=eval_data,
                         n_eval=n_samples, metrics={"truncation": metric}, seed=seed, checkpoint_dir=checkpoint_dir,
                         resume=resume, keep_states=True, keep_samples=True, progress=progress,
                         labels={"model": model, "schedule": sched.description, **(labels or {})})
    return SimulationResult(table=res.table, samples=res.samples, states=res.states, exact=exact, retraining=res)
