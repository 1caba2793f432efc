"""Learners for the retraining loop: Gaussian MLE, Gaussian mixture (EM), empirical (KDE)
score model. The torch learners (DDPM, flow matching) live in
:mod:`modelcollapse.retraining.torch_learners` (optional extra ``modelcollapse[torch]``).

A learner's state is a plain dict of numpy arrays: data only, so the loop's checkpoints
(``.npz`` read without pickle) store it exactly.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .._validation import as_seed, check_finite_array, check_positive_int, check_real


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """A factor L with L L^T = cov: Cholesky, or the symmetric square root when cov is
    singular (e.g. after collapse)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


class GaussianLearner:
    """N(mu, Sigma) fitted by maximum likelihood with the unbiased covariance (divide by n - 1).

    State: ``{"mean": (d,), "cov": (d, d)}``. Fitting is closed form, so the previous state
    is not needed (the paper's Gaussian warm-up). Sampling: mu + L z with L the Cholesky
    factor of Sigma.
    """

    name = "gaussian"

    def config(self) -> dict[str, Any]:
        return {}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
        x = check_finite_array(data, "data", ndim=2)
        if len(x) < 2:
            raise ValueError("GaussianLearner.fit needs at least 2 points")
        mean = x.mean(axis=0)
        xc = x - mean
        return {"mean": mean, "cov": xc.T @ xc / (len(x) - 1)}

    def sample(self, state: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        d = state["mean"].shape[0]
        z = rng.standard_normal((n, d))
        return state["mean"] + z @ _sqrt_psd(state["cov"]).T

    def parameter_vector(self, state: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([state["mean"], state["cov"].ravel()])


class GMMLearner:
    """Gaussian mixture fitted by EM (scikit-learn), warm-started from the previous round.

    Round 0 runs k-means++-initialised EM (``n_init`` restarts); later rounds start EM from
    the previous state's weights, means and precisions (fine-tuning, as in the paper's
    Algorithm 1). State: ``{"weights": (K,), "means": (K, d), "covariances": (K, d, d)}``.
    """

    name = "gmm"

    def __init__(self, n_components: int = 8, covariance_type: str = "full", max_iter: int = 200,
                 tol: float = 1e-4, reg_covar: float = 1e-6, n_init: int = 1) -> None:
        self.n_components = check_positive_int(n_components, "n_components")
        if covariance_type != "full":
            raise ValueError("GMMLearner supports covariance_type='full' only")
        self.covariance_type = covariance_type
        self.max_iter = check_positive_int(max_iter, "max_iter")
        self.tol = check_real(tol, "tol", low=0.0, low_open=True)
        self.reg_covar = check_real(reg_covar, "reg_covar", low=0.0)
        self.n_init = check_positive_int(n_init, "n_init")

    def config(self) -> dict[str, Any]:
        return {"n_components": self.n_components, "covariance_type": self.covariance_type,
                "max_iter": self.max_iter, "tol": self.tol, "reg_covar": self.reg_covar, "n_init": self.n_init}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.mixture import GaussianMixture as SkGMM

        x = check_finite_array(data, "data", ndim=2)
        kw: dict[str, Any] = dict(n_components=self.n_components, covariance_type="full", max_iter=self.max_iter,
                                  tol=self.tol, reg_covar=self.reg_covar,
                                  random_state=int(rng.integers(0, 2**31 - 1)))
        if previous_state is not None:
            cov = previous_state["covariances"] + self.reg_covar * np.eye(x.shape[1])
            kw.update(weights_init=previous_state["weights"], means_init=previous_state["means"],
                      precisions_init=np.linalg.inv(cov), n_init=1)
        else:
            kw.update(n_init=self.n_init)
        gm = SkGMM(**kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(x)
        return {"weights": gm.weights_.copy(), "means": gm.means_.copy(), "covariances": gm.covariances_.copy()}

    def sample(self, state: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        w = state["weights"] / state["weights"].sum()
        comp = rng.choice(len(w), size=n, p=w)
        d = state["means"].shape[1]
        z = rng.standard_normal((n, d))
        factors = np.stack([_sqrt_psd(c) for c in state["covariances"]])
        return state["means"][comp] + np.einsum("nij,nj->ni", factors[comp], z)

    def parameter_vector(self, state: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([state["weights"], state["means"].ravel(), state["covariances"].ravel()])


class EmpiricalLearner:
    """The perfect-learner diffusion model of a finite training set: its state is the
    training set itself, and sampling runs the truncated reverse sampler with the
    empirical (KDE) score of that set (``modelcollapse.EmpiricalScore``).

    With ``delta`` > 0 the samples follow (approximately, up to discretisation) the
    training set smoothed to time delta, i.e. S_delta of the empirical law.

    ``max_train`` subsamples the training set to at most that many points (uniformly,
    with the fit's rng) to bound the cost of accumulate workflows; ``None`` keeps all.
    """

    name = "empirical"

    def __init__(self, T: float = 1.0, delta: float = 0.05, steps: int = 100, integrator: str = "euler_maruyama",
                 grid: str = "uniform", init: str = "standard_normal", max_train: int | None = None,
                 threads: int = 0) -> None:
        self.T = check_real(T, "T", low=0.0, low_open=True)
        self.delta = check_real(delta, "delta", low=0.0, high=self.T, low_open=True, high_open=True)
        self.steps = check_positive_int(steps, "steps")
        self.integrator = integrator
        self.grid = grid
        self.init = init
        self.max_train = None if max_train is None else check_positive_int(max_train, "max_train")
        self.threads = threads

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "delta": self.delta, "steps": self.steps, "integrator": self.integrator,
                "grid": self.grid, "init": self.init, "max_train": self.max_train}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
        x = check_finite_array(data, "data", ndim=2)
        if self.max_train is not None and len(x) > self.max_train:
            x = x[rng.choice(len(x), size=self.max_train, replace=False)]
        return {"train": x.copy()}

    def sample(self, state: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        from ..empirical import EmpiricalScore
        from ..sampler import sample_reverse

        score = EmpiricalScore(state["train"])
        out = sample_reverse(score, n_samples=n, T=self.T, delta=self.delta, steps=self.steps, grid=self.grid,
                             integrator=self.integrator, init=self.init, seed=as_seed(rng),
                             threads=self.threads)
        return np.asarray(out.samples, dtype=np.float64)


LEARNERS = {"gaussian": GaussianLearner, "gmm": GMMLearner, "empirical": EmpiricalLearner}


def make_learner(name: str, **kwargs: Any):
    """Build a learner by name: ``gaussian``, ``gmm``, ``empirical``, ``ddpm``, ``flow_matching``
    (the last two need torch)."""
    if name in ("ddpm", "flow_matching"):
        from . import torch_learners

        return {"ddpm": torch_learners.DDPMLearner, "flow_matching": torch_learners.FlowMatchingLearner}[name](**kwargs)
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}; available: gaussian, gmm, empirical, ddpm, flow_matching")
    return LEARNERS[name](**kwargs)


class FitSampleAdapter:
    """Adapts a stateful model with ``fit(samples, seed)`` and ``sample(n, seed)`` methods (e.g.
    ``modelcollapse.dae.DaeLearner``) to the :class:`~modelcollapse.retraining.Learner` protocol.

    Each fit works on a deep copy of the prototype (fresh, no warm start unless the model
    itself keeps one), and the state is that fitted copy (``{"model": obj}``). Checkpoints hold
    data only (never pickles, which can execute code when loaded), so such a state cannot be
    checkpointed: run it without ``checkpoint_dir`` (saving raises a TypeError naming the key).
    ``parameter_fn(obj) -> ndarray`` enables the parameter-distance metric.
    """

    def __init__(self, prototype: Any, name: str | None = None, parameter_fn: Any = None,
                 config: dict[str, Any] | None = None) -> None:
        if not (callable(getattr(prototype, "fit", None)) and callable(getattr(prototype, "sample", None))):
            raise TypeError("prototype must have fit(samples, seed) and sample(n, seed) methods")
        self.prototype = prototype
        self.name = name or type(prototype).__name__
        self.parameter_fn = parameter_fn
        self._config = dict(config or {})

    def config(self) -> dict[str, Any]:
        return self._config

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        import copy

        obj = copy.deepcopy(self.prototype)
        out = obj.fit(data, seed=as_seed(rng))
        return {"model": out if out is not None and hasattr(out, "sample") else obj}

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        return np.asarray(state["model"].sample(n, seed=as_seed(rng)), dtype=np.float64)

    def parameter_vector(self, state: dict[str, Any]) -> np.ndarray:
        if self.parameter_fn is None:
            raise TypeError("FitSampleAdapter needs parameter_fn for the parameter-distance metric")
        return np.asarray(self.parameter_fn(state["model"]), dtype=np.float64).ravel()
