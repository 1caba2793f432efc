"""Generations of the DAE: fit on the samples of the previous generation, sample from the
trained model, and :class:`DaeLearner`, the learner the project's retraining loop drives
(docs/dae.md, "Generations and the retraining loop").
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from .._validation import as_seed, check_bool, check_finite_array, check_positive_int, check_real, check_threads
from ._activations import check_activation
from ._generate import SamplerSchedule, generate, sampler_schedule
from ._targets import empirical_target
from ._train import DaeRun, _time_schedule, train


def fit_generation(samples: Any, *, r: int = 2, lr: float = 0.2, activation: str = "tanh",
                   times: Sequence[float] | str = (0.5,), train_b: bool = True, b0: float = 0.0,
                   observe: Any = None, seed: Any = 0, threads: int = 0, **train_kwargs) -> DaeRun:
    """Per-generation fit: online SGD, one pass in order over ``samples`` (n, d) of the
    previous generation (n steps, tau = 2 lr n / d), from a fresh random initialisation (or
    the weights given as ``init=``; see :func:`train` for the other keywords)."""
    x = check_finite_array(samples, "samples", ndim=2)
    return train(empirical_target(x, sequential=True), r=r, n_steps=x.shape[0], lr=lr, activation=activation,
                 times=times, train_b=train_b, b0=b0, observe=observe, seed=seed, threads=threads, **train_kwargs)


def sample_generation(run: DaeRun, n_samples: int, *, schedule: SamplerSchedule | None = None,
                      activation: str | None = None, seed: Any = 0, threads: int = 0) -> np.ndarray:
    """Per-generation sample: n_samples d-dimensional samples of the trained model (replica 0)."""
    if not isinstance(run, DaeRun):
        raise TypeError(f"run must be a DaeRun (from train or fit_generation), got {type(run).__name__}")
    act = run.config["activation"] if activation is None else activation
    return cast(np.ndarray, generate(run.w[0], float(run.b[0]), run.v[0], n_samples=n_samples, schedule=schedule, activation=act,
                    time_encoding=run.config["time_encoding"], return_full=True, seed=seed, threads=threads).X)


class DaeLearner:
    """:class:`modelcollapse.retraining.Learner` for the project's retraining loop
    (:func:`modelcollapse.retraining.run_retraining`).

    ``fit(data, previous_state, rng)`` runs online SGD with one pass in order over ``data``
    (n, d) (:func:`fit_generation`: n steps, so the number of points sets the training time
    tau = 2 lr n / d) from fresh N(0, init_scale^2) weights w0 drawn from ``rng`` (or from
    ``previous_state["w"]`` when ``warm_start``); the C++ seed is drawn from ``rng`` too, so
    the state is a pure function of (data, rng). It returns a dict of data only (arrays,
    numbers, strings: the loop checkpoints it without pickle):

    - ``w`` (d, r), ``b`` (float), ``v`` (r,): the trained parameters;
    - ``w0`` (d, r), ``b0``, ``v0``: the initial ones, so that the ODE initial statistics
      Q0 = w0^T w0 / d and G0 = w0^T E / sqrt d can be computed afterwards in any basis E;
    - ``tau``, ``n_steps``, ``seed`` and ``config`` (the :class:`DaeRun` config).

    ``sample(state, n, rng)`` runs the compiled d-dimensional sampler (:func:`generate`) on
    ``schedule`` from X_0 ~ N(0, I_d) and returns the (n, d) samples. Results do not depend
    on ``threads``.
    """

    name = "dae"

    def __init__(self, *, r: int = 2, lr: float = 0.2, activation: str = "tanh", times: Any = (0.5,),
                 time_encoding: Sequence[float] = (0.0, 0.0), train_b: bool = True, b0: float = 0.0,
                 weight_decay: float = 0.0, init_scale: float = 1.0, warm_start: bool = False,
                 schedule: SamplerSchedule | None = None, threads: int = 0):
        self.r = check_positive_int(r, "r")
        if self.r > 64:
            raise ValueError(f"r must be <= 64, got {r}")
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.activation = check_activation(activation)
        _time_schedule(times, time_encoding)                     # validates both
        self.times = times if isinstance(times, str) else [float(t) for t in np.atleast_1d(times)]
        self.time_encoding = [float(x) for x in time_encoding]
        self.train_b = check_bool(train_b, "train_b")
        self.b0 = check_real(b0, "b0")
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.init_scale = check_real(init_scale, "init_scale", low=0.0)
        self.warm_start = check_bool(warm_start, "warm_start")
        if schedule is not None and not isinstance(schedule, SamplerSchedule):
            raise TypeError(f"schedule must be a SamplerSchedule (see sampler_schedule), got {type(schedule).__name__}")
        self.schedule = schedule if schedule is not None else sampler_schedule(50, 0.98)
        self.threads = check_threads(threads)

    def config(self) -> dict:
        """JSON-able description (stored with the loop's checkpoints and checked on resume)."""
        return dict(r=self.r, lr=self.lr, activation=self.activation, times=self.times,
                    time_encoding=self.time_encoding, train_b=self.train_b, b0=self.b0,
                    weight_decay=self.weight_decay, init_scale=self.init_scale, warm_start=self.warm_start,
                    schedule_t=self.schedule.t.tolist(), schedule_gamma=self.schedule.gamma.tolist())

    def fit(self, data: Any, previous_state: dict | None, rng: np.random.Generator) -> dict:
        x = check_finite_array(data, "data", ndim=2)
        n, d = x.shape
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if previous_state is not None and (not isinstance(previous_state, dict) or "w" not in previous_state):
            raise TypeError("previous_state must be None or a dict returned by DaeLearner.fit")
        if self.warm_start and previous_state is not None:
            w0 = check_finite_array(previous_state["w"], "previous_state['w']", ndim=2)
            b0 = float(previous_state["b"]) if self.train_b else self.b0
            v0 = check_finite_array(previous_state["v"], "previous_state['v']", ndim=1)
            if w0.shape != (d, self.r):
                raise ValueError(f"previous_state['w'] has shape {w0.shape}, expected ({d}, {self.r})")
        else:
            w0 = self.init_scale * rng.standard_normal((d, self.r))
            b0, v0 = self.b0, np.zeros(self.r)
        seed = as_seed(rng)
        run = fit_generation(x, r=self.r, lr=self.lr, activation=self.activation, times=self.times,
                             time_encoding=self.time_encoding, train_b=self.train_b, b0=b0, v0=v0, init=w0,
                             weight_decay=self.weight_decay, record_every=max(n, 1), seed=seed,
                             threads=self.threads)
        return {"w": run.w[0].copy(), "b": float(run.b[0]), "v": run.v[0].copy(), "w0": w0, "b0": b0, "v0": v0,
                "tau": float(run.tau[-1]), "n_steps": int(run.steps[-1]), "seed": seed, "config": dict(run.config)}

    def sample(self, state: dict, n: int, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(state, dict) or "w" not in state:
            raise TypeError("state must be a dict returned by DaeLearner.fit")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return cast(np.ndarray, generate(state["w"], float(state["b"]), state["v"], n_samples=n, schedule=self.schedule,
                        activation=self.activation, time_encoding=self.time_encoding, return_full=True,
                        seed=as_seed(rng), threads=self.threads).X)

    def parameter_vector(self, state: dict) -> np.ndarray:
        """(w, b, v) flattened (for the loop's parameter-distance metric)."""
        if not isinstance(state, dict) or not {"w", "b", "v"} <= set(state):
            raise TypeError("state must be a dict returned by DaeLearner.fit")
        return np.concatenate([np.ravel(state["w"]), [float(state["b"])], np.ravel(state["v"])])
