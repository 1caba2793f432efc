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

from .._validation import (
    as_seed,
    check_allocation,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _check_n(n: Any, d: int) -> int:
    n = check_positive_int(n, "n", minimum=0)
    check_allocation(3.0 * n * d, "n", "the samples")
    return n


def _check_state(state: Any, keys: tuple[str, ...], learner: str, name: str = "state") -> dict:
    if not isinstance(state, dict) or not set(keys) <= set(state):
        raise TypeError(f"{name} must be a dict returned by {learner}.fit (with keys {', '.join(keys)})")
    return state


def _sqrt_psd(cov: np.ndarray) -> np.ndarray:
    """A factor L with L L^T = cov: Cholesky, or the symmetric square root when cov is
    singular (e.g. after collapse)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


class GaussianLearner:
    """N(mu, Sigma) fitted with the covariance S / (n - ddof), S the scatter matrix of the n points.

    ``ddof=1`` (default): the unbiased covariance of Bertrand et al.'s Proposition 1;
    ``ddof=0``: the maximum-likelihood covariance (divide by n), which also shrinks the
    variance in expectation, by (n-1)/n per fully synthetic round. Closed-form curves for
    both: :func:`modelcollapse.retraining.gaussian.alpha` and
    :func:`~modelcollapse.retraining.gaussian.expected_cov_factor` (docs/retraining.md,
    section "Replace and accumulate").

    State: ``{"mean": (d,), "cov": (d, d)}``. Fitting is closed form, so the previous state
    is not needed (the paper's Gaussian warm-up). Sampling: mu + L z with L the Cholesky
    factor of Sigma.
    """

    name = "gaussian"

    def __init__(self, ddof: int = 1) -> None:
        if isinstance(ddof, bool) or ddof not in (0, 1):
            raise ValueError(f"ddof must be 0 (maximum likelihood) or 1 (unbiased), got {ddof!r}")
        self.ddof = int(ddof)

    def config(self) -> dict[str, Any]:
        # ddof = 1 keeps the historical empty config, so existing checkpoints still resume
        return {} if self.ddof == 1 else {"ddof": self.ddof}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
        x = check_finite_array(data, "data", ndim=2)
        if len(x) < 2:
            raise ValueError("GaussianLearner.fit needs at least 2 points (rows of data)")
        if np.abs(x).max() > 1e150:
            raise ValueError("data has values too large (> 1e150) for a covariance")
        mean = x.mean(axis=0)
        xc = x - mean
        return {"mean": mean, "cov": xc.T @ xc / (len(x) - self.ddof)}

    def sample(self, state: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        mean, cov = self._state(state)
        d = mean.shape[0]
        n = _check_n(n, d)
        z = _check_rng(rng).standard_normal((n, d))
        return mean + z @ _sqrt_psd(cov).T

    def sample_at_temperature(self, state: dict[str, np.ndarray], n: int, rng: np.random.Generator,
                              temperature: float) -> np.ndarray:
        """Samples of the tempered law p^(1/tau) / Z = N(mu, tau Sigma) (the sampling-bias
        remedy, :class:`~modelcollapse.recursion.SamplingBias`; tau = 1 is :meth:`sample`)."""
        tau = check_real(temperature, "temperature", low=0.0, high=10.0, low_open=True)
        mean, cov = self._state(state)
        return self.sample({"mean": mean, "cov": tau * cov}, n, rng)

    def parameter_vector(self, state: dict[str, np.ndarray]) -> np.ndarray:
        mean, cov = self._state(state)
        return np.concatenate([mean, cov.ravel()])

    @staticmethod
    def _state(state: Any) -> tuple[np.ndarray, np.ndarray]:
        _check_state(state, ("mean", "cov"), "GaussianLearner")
        mean = check_finite_array(state["mean"], "state['mean']", ndim=1)
        cov = check_finite_array(state["cov"], "state['cov']", shape=(mean.shape[0], mean.shape[0]))
        if np.abs(cov).max() > 1e150:
            raise ValueError("state['cov'] has entries too large (> 1e150)")
        return mean, cov


class GMMLearner:
    """Gaussian mixture fitted by EM (scikit-learn), warm-started from the previous round.

    Round 0 runs k-means++-initialised EM (``n_init`` restarts); later rounds start EM from
    the previous state's weights, means and precisions (fine-tuning, as in the paper's
    Algorithm 1). State: ``{"weights": (K,), "means": (K, d), "covariances": (K, d, d)}``.
    """

    name = "gmm"

    def __init__(self, n_components: int = 8, covariance_type: str = "full", max_iter: int = 200,
                 tol: float = 1e-4, reg_covar: float = 1e-6, n_init: int = 1) -> None:
        # scikit-learn's EM holds (n_components, d, d) covariances and (n, n_components) responsibilities
        self.n_components = check_positive_int(n_components, "n_components", maximum=10**6)
        check_choice(covariance_type, "covariance_type", ("full",))   # the only one supported
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
        _check_rng(rng)
        if len(x) < self.n_components:
            raise ValueError(f"data needs at least n_components = {self.n_components} rows, got {len(x)}")
        if np.abs(x).max() > 1e150:
            raise ValueError("data has values too large (> 1e150) for EM")
        if previous_state is not None:
            _check_state(previous_state, ("weights", "means", "covariances"), "GMMLearner", "previous_state")
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
        _check_state(state, ("weights", "means", "covariances"), "GMMLearner")
        wts = check_finite_array(state["weights"], "state['weights']", ndim=1)
        means = check_finite_array(state["means"], "state['means']", ndim=2, shape=(len(wts), None))
        d = means.shape[1]
        covs = check_finite_array(state["covariances"], "state['covariances']", shape=(len(wts), d, d))
        if np.any(wts < 0) or not wts.sum() > 0 or np.abs(covs).max() > 1e150 or np.abs(means).max() > 1e150:
            raise ValueError("state must hold non-negative weights with a positive sum, and means and covariances "
                             "below 1e150")
        n = _check_n(n, d)
        state = {"weights": wts, "means": means, "covariances": covs}
        w = state["weights"] / state["weights"].sum()
        comp = _check_rng(rng).choice(len(w), size=n, p=w)
        z = rng.standard_normal((n, d))
        factors = np.stack([_sqrt_psd(c) for c in state["covariances"]])
        return state["means"][comp] + np.einsum("nij,nj->ni", factors[comp], z)

    def sample_at_temperature(self, state: dict[str, np.ndarray], n: int, rng: np.random.Generator,
                              temperature: float) -> np.ndarray:
        """Samples of the mixture tempered per component: weights w_k^(1/tau) (renormalised)
        and covariances tau Sigma_k. For well-separated components this is the tempered law
        p^(1/tau) / Z up to the overlaps (each component's own tempering is N(mu_k, tau
        Sigma_k) and its mass scales as w_k^(1/tau) det(Sigma_k)^((1-tau)/(2 tau)); the
        determinant factor is left out so that equal-weight modes stay equal). The
        sampling-bias remedy (:class:`~modelcollapse.recursion.SamplingBias`) uses it."""
        tau = check_real(temperature, "temperature", low=0.0, high=10.0, low_open=True)
        _check_state(state, ("weights", "means", "covariances"), "GMMLearner")
        w = check_finite_array(state["weights"], "state['weights']", ndim=1)
        if np.any(w < 0) or not w.sum() > 0:
            raise ValueError("state must hold non-negative weights with a positive sum")
        logw = np.where(w > 0, np.log(np.where(w > 0, w, 1.0)), -np.inf) / tau
        tw = np.exp(logw - logw.max())
        tempered = {"weights": tw / tw.sum(), "means": state["means"],
                    "covariances": tau * np.asarray(state["covariances"], dtype=np.float64)}
        return self.sample(tempered, n, rng)

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
                 *, threads: int = 0) -> None:
        self.T = check_real(T, "T", low=0.0, low_open=True)
        self.delta = check_real(delta, "delta", low=0.0, high=self.T, low_open=True, high_open=True)
        self.steps = check_positive_int(steps, "steps", maximum=10**8)   # reverse-SDE steps per sample call
        for value, name in ((integrator, "integrator"), (grid, "grid"), (init, "init")):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be a string (see modelcollapse.sample_reverse), got {type(value).__name__}")
        self.integrator = integrator
        self.grid = grid
        self.init = init
        self.max_train = None if max_train is None else check_positive_int(max_train, "max_train")
        self.threads = check_threads(threads)

    def config(self) -> dict[str, Any]:
        return {"T": self.T, "delta": self.delta, "steps": self.steps, "integrator": self.integrator,
                "grid": self.grid, "init": self.init, "max_train": self.max_train}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, np.ndarray]:
        x = check_finite_array(data, "data", ndim=2)
        _check_rng(rng)
        if self.max_train is not None and len(x) > self.max_train:
            x = x[rng.choice(len(x), size=self.max_train, replace=False)]
        return {"train": x.copy()}

    def sample(self, state: dict[str, np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
        from ..empirical import EmpiricalScore
        from ..sampler import sample_reverse

        _check_state(state, ("train",), "EmpiricalLearner")
        train = check_finite_array(state["train"], "state['train']", ndim=2)
        n = _check_n(n, train.shape[1])
        score = EmpiricalScore(train)
        out = sample_reverse(score, n_samples=n, T=self.T, delta=self.delta, steps=self.steps, grid=self.grid,
                             integrator=self.integrator, init=self.init, seed=as_seed(_check_rng(rng)),
                             threads=self.threads)
        return np.asarray(out.samples, dtype=np.float64)


def _state_digest(state: Any, h: Any = None) -> str:
    """A short sha256 of a data-only state (dicts / lists / tuples of arrays, numbers, strings)."""
    import hashlib

    top = h is None
    h = hashlib.sha256() if top else h
    if isinstance(state, dict):
        for k in sorted(state, key=str):
            h.update(repr(k).encode())
            _state_digest(state[k], h)
    elif isinstance(state, (list, tuple)):
        h.update(f"seq{len(state)}".encode())
        for v in state:
            _state_digest(v, h)
    elif isinstance(state, np.ndarray):
        h.update(str(state.dtype).encode() + str(state.shape).encode())
        h.update(np.ascontiguousarray(state).tobytes())
    else:
        h.update(repr(state).encode())
    return h.hexdigest()[:16] if top else ""


class FixedStart:
    """A learner whose round 0 is a given, already trained state theta_0 (the common start).

    Bertrand et al. train the initial model once on the real data and retrain every lambda
    from that same theta_0; wrapping the learner with its trained state does this in
    :func:`~modelcollapse.retraining.run_retraining`: ``fit(data, None, rng)`` returns (a copy
    of) ``initial_state`` and ignores the data and the generator; later rounds, ``sample`` and
    ``parameter_vector`` are the wrapped learner's. The configuration adds a digest of
    ``initial_state``, so a checkpoint folder made from a different theta_0 is refused on
    resume (docs/retraining.md, section "Neural models").

    Parameters
    ----------
    learner
        The learner that fine-tunes from theta_0 (e.g. ``DDPMLearner(...)``).
    initial_state
        theta_0, a state of that learner (e.g. ``learner.fit(real, None, rng)`` with a
        larger training budget).
    """

    def __init__(self, learner: Any, initial_state: Any) -> None:
        if not (callable(getattr(learner, "fit", None)) and callable(getattr(learner, "sample", None))):
            raise TypeError("learner must have fit(data, previous_state, rng) and sample(state, n, rng) methods")
        if initial_state is None:
            raise TypeError("initial_state must be a state of the learner, got None")
        self.learner = learner
        self.initial_state = initial_state
        self.name = getattr(learner, "name", type(learner).__name__)
        self.digest = _state_digest(initial_state)

    def __getattr__(self, name: str) -> Any:
        # The sampling-bias remedy looks for ``sample_at_temperature`` on the learner it is
        # given: forward it, so that a tempered Gaussian or mixture samples its own tempered
        # law rather than contracting the drawn cloud (docs/retraining.md, section "Remedies").
        if name == "sample_at_temperature" and "learner" in self.__dict__:
            return getattr(self.__dict__["learner"], name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def config(self) -> dict[str, Any]:
        base = self.learner.config() if hasattr(self.learner, "config") else {}
        return {**base, "initial_state_digest": self.digest}

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> Any:
        import copy

        if previous_state is None:
            return copy.deepcopy(self.initial_state)
        return self.learner.fit(data, previous_state, rng)

    def sample(self, state: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.learner.sample(state, n, rng)

    def parameter_vector(self, state: Any) -> np.ndarray:
        return self.learner.parameter_vector(state)


LEARNERS = {"gaussian": GaussianLearner, "gmm": GMMLearner, "empirical": EmpiricalLearner}


def make_learner(name: str, **kwargs: Any):
    """Build a learner by name: ``gaussian``, ``gmm``, ``empirical``, ``ddpm``, ``flow_matching``
    (the last two need torch)."""
    if isinstance(name, str) and name in ("ddpm", "flow_matching"):
        from . import torch_learners

        return {"ddpm": torch_learners.DDPMLearner, "flow_matching": torch_learners.FlowMatchingLearner}[name](**kwargs)
    if not isinstance(name, str) or name not in LEARNERS:
        raise ValueError(f"unknown learner name {name!r}; available: gaussian, gmm, empirical, ddpm, flow_matching")
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
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        if parameter_fn is not None and not callable(parameter_fn):
            raise TypeError(f"parameter_fn must be callable or None, got {type(parameter_fn).__name__}")
        if config is not None and not isinstance(config, dict):
            raise TypeError(f"config must be a dict or None, got {type(config).__name__}")
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


def _is_data(obj: Any) -> bool:
    """Whether ``obj`` can be checkpointed (data only, docs/reliability.md)."""
    from .._checkpoint import encode

    try:
        encode(obj)
    except TypeError:
        return False
    return True


def _jsonable_param(value: Any) -> Any:
    # A configuration is compared on resume: keep plain values, describe the rest by repr.
    if value is None or type(value) in (bool, int, float, str):
        return value
    return repr(value)


class SklearnLearner:
    """Any scikit-learn-style density estimator with ``fit(X)`` and ``sample(n)`` as a
    retraining learner (e.g. ``sklearn.mixture.GaussianMixture``, ``KernelDensity``).

    Each round fits a fresh copy of ``estimator`` (``sklearn.base.clone``; a deep copy for
    objects without ``get_params``), so there is no warm start. Seeding, so that a run is a
    pure function of its seed (docs/retraining.md, section "Bring your own learner"):

    - fitting: when the estimator has a ``random_state`` parameter it is set to an integer
      drawn from the round's generator;
    - sampling: when ``sample`` takes a ``random_state`` argument (``KernelDensity``) it gets
      one drawn from the generator; otherwise, when the estimator has a ``random_state``
      attribute (``GaussianMixture``, whose ``sample`` reads it), a shallow copy with a fresh
      integer ``random_state`` samples, so that two draws from one fitted model are
      independent (an integer ``random_state`` would repeat the same points every call).
      An estimator with neither samples with its own, unseeded randomness.

    ``sample`` may return an array or a tuple whose first item is the samples
    (``GaussianMixture.sample`` returns ``(X, labels)``).

    State: when the fitted attributes (``vars(estimator)`` minus the constructor parameters)
    are data only and an estimator rebuilt from them samples the same points as the fitted
    one (checked once per fit on 4 points), the state is ``{"fitted": {...}, "random_state":
    seed}`` and can be checkpointed (e.g. ``GaussianMixture``); otherwise it is
    ``{"model": estimator}`` (e.g. ``KernelDensity``, whose ``tree_`` is a ``KDTree``) and a
    run with ``checkpoint_dir`` fails with a one-line TypeError naming the key.

    Parameters
    ----------
    estimator
        An unfitted estimator (the prototype; never modified).
    name
        The learner name in result tables (default: the estimator's class name).
    parameter_fn
        ``parameter_fn(fitted_estimator) -> ndarray`` enables the ``param_distance`` metric.
    """

    def __init__(self, estimator: Any, name: str | None = None, parameter_fn: Any = None) -> None:
        if not (callable(getattr(estimator, "fit", None)) and callable(getattr(estimator, "sample", None))):
            raise TypeError("estimator must have fit(X) and sample(n) methods (e.g. sklearn.mixture.GaussianMixture), "
                            f"got {type(estimator).__name__}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"name must be a string or None, got {type(name).__name__}")
        if parameter_fn is not None and not callable(parameter_fn):
            raise TypeError(f"parameter_fn must be callable or None, got {type(parameter_fn).__name__}")
        self.estimator = estimator
        self.name = name or type(estimator).__name__
        self.parameter_fn = parameter_fn
        get = getattr(estimator, "get_params", None)
        # read once: get_params inspects signatures, which costs more than a small fit
        self._params = dict(get(deep=False)) if callable(get) else {}

    def config(self) -> dict[str, Any]:
        cls = type(self.estimator)
        return {"estimator": f"{cls.__module__}.{cls.__qualname__}",
                "params": {k: _jsonable_param(v) for k, v in sorted(self._params.items())}}

    def _fresh(self, seed: int | None) -> Any:
        import copy

        if self._params:
            from sklearn.base import clone

            est = clone(self.estimator)
        else:
            est = copy.deepcopy(self.estimator)
        if seed is not None and "random_state" in self._params:
            est.set_params(random_state=seed)
        return est

    def _rebuild(self, state: dict[str, Any]) -> Any:
        est = self._fresh(state["random_state"])
        for k, v in state["fitted"].items():
            setattr(est, k, v)
        return est

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        x = check_finite_array(data, "data", ndim=2)
        seed = int(_check_rng(rng).integers(0, 2**31 - 1))
        est = self._fresh(seed)
        out = est.fit(x)
        est = out if out is not None and callable(getattr(out, "sample", None)) else est
        fitted = {k: v for k, v in vars(est).items() if k not in self._params}
        state = {"fitted": fitted, "random_state": seed}
        if type(est) is type(self.estimator) and _is_data(state):
            # keep the data-only state only if it samples exactly as the fitted estimator
            probe = np.random.default_rng(seed)
            probe_seed = int(probe.integers(0, 2**31 - 1))
            a = self._draw(est, 4, np.random.default_rng(probe_seed))
            b = self._draw(self._rebuild(state), 4, np.random.default_rng(probe_seed))
            if a.shape == b.shape and np.array_equal(a, b):
                return state
        return {"model": est}

    @staticmethod
    def _draw(est: Any, n: int, rng: np.random.Generator) -> np.ndarray:
        import copy
        import inspect

        seed = int(rng.integers(0, 2**31 - 1))
        try:
            takes_rs = "random_state" in inspect.signature(est.sample).parameters
        except (TypeError, ValueError):
            takes_rs = False
        if takes_rs:
            out = est.sample(n, random_state=seed)
        elif hasattr(est, "random_state"):
            # sample on a shallow copy: the fitted state (shared arrays) is never modified
            est = copy.copy(est)
            est.random_state = seed
            out = est.sample(n)
        else:
            out = est.sample(n)
        if isinstance(out, tuple):   # GaussianMixture.sample -> (X, labels)
            out = out[0]
        return np.asarray(out, dtype=np.float64)

    def _model(self, state: Any) -> Any:
        if isinstance(state, dict) and "model" in state:
            return state["model"]
        _check_state(state, ("fitted", "random_state"), "SklearnLearner")
        return self._rebuild(state)

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        model = self._model(state)
        # refuse absurd sizes before the estimator allocates them (d from the fit when it records it)
        n = _check_n(n, int(getattr(model, "n_features_in_", 1)))
        out = self._draw(model, n, _check_rng(rng))
        if out.ndim == 1:
            out = out[:, None]
        return check_finite_array(out, "estimator.sample output", ndim=2, allow_empty=True)

    def parameter_vector(self, state: dict[str, Any]) -> np.ndarray:
        if self.parameter_fn is None:
            raise TypeError("SklearnLearner needs parameter_fn for the parameter-distance metric")
        return np.asarray(self.parameter_fn(self._model(state)), dtype=np.float64).ravel()
