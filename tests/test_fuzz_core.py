"""Fuzz test of the core modules' public entry points (issue 12): every public callable of
mixture, empirical, sampler, random, metrics, hermite and truncation gets one bad argument
at a time (the others valid) and must keep the contract of ``tests/fuzz_support.py``: a
ValueError/TypeError naming the argument, or only finite floats. Size arguments given
10**12, 2**64 or 2**70 must be refused at once, before anything is allocated.

The public callables are walked programmatically; each must have a row in ``CASES`` (valid
arguments) or in ``SKIPPED`` (with the reason), so a new public function cannot escape.
"""
from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import modelcollapse as mc
from fuzz_support import assert_contract, bad_values
from modelcollapse import empirical, hermite, metrics, mixture, random, sampler, truncation

MODULES = (mixture, empirical, sampler, random, metrics, hermite, truncation)

# ---------------------------------------------------------------------------- valid arguments
_rng = np.random.default_rng(0)
GM2 = mc.GaussianMixture([0.5, 0.5], [[-1.0, 0.0], [1.0, 0.0]], 0.5)
GM1 = mc.GaussianMixture([0.3, 0.7], [[-1.0], [1.0]], [0.5, 1.0])
EMP = mc.EmpiricalScore(_rng.normal(size=(20, 2)))
X2 = _rng.normal(size=(30, 2))
Y2 = _rng.normal(size=(25, 2)) + 0.5
X1 = _rng.normal(size=30)
GRID1 = metrics.Grid.regular([-4.0], [4.0], 65)
MOM = hermite.hermite_moments(X1, 4)
SCHED = truncation.Schedule.geometric(0.1, 0.5)
LAW = truncation.SmoothedLaw(GM1, np.array([0.5, 0.5]), np.array([0.0, 0.2]))
EXACT = truncation.exact_recursion(GM1, 2, 0.5, 0.1)
COMP = truncation.compounding_recursion(GM1, 2, 0.5, 0.1, 0.1)
PQ = (np.full((3, 3), 0.1), np.full((3, 3), 0.12))


def _case(fn: Callable[..., Any], /, **kwargs: Any) -> tuple[Callable[..., Any], dict[str, Any]]:
    return fn, kwargs


# name -> (callable, valid keyword arguments). Each argument is replaced by bad values in turn.
CASES: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    # mixture
    "mixture.GaussianMixture": _case(mc.GaussianMixture, weights=[0.5, 0.5], means=[[-1.0, 0.0], [1.0, 0.0]],
                                     covariances=0.5),
    "mixture.GaussianMixture.from_dict": _case(mc.GaussianMixture.from_dict, data=GM2.to_dict()),
    "mixture.GaussianMixture.smooth": _case(GM2.smooth, t=0.3),
    "mixture.GaussianMixture.mix": _case(GM2.mix, other=GM2.smooth(0.5), weight=0.4),
    "mixture.GaussianMixture.logpdf": _case(GM2.logpdf, x=X2, t=0.1, threads=1, backend="cpp"),
    "mixture.GaussianMixture.pdf": _case(GM2.pdf, x=X2, t=0.1, threads=1, backend="cpp"),
    "mixture.GaussianMixture.score": _case(GM2.score, x=X2, t=0.1, threads=1, backend="cpp"),
    "mixture.GaussianMixture.__call__": _case(GM2, x=X2, t=0.1),
    "mixture.GaussianMixture.sample": _case(GM2.sample, n_samples=10, seed=1, t=0.1, threads=1, backend="cpp"),
    "mixture.GaussianMixture.sample_smoothed": _case(GM2.sample_smoothed, n_samples=10, t=0.1, seed=1, threads=1),
    # empirical
    "empirical.EmpiricalScore": _case(mc.EmpiricalScore, samples=X2),
    "empirical.EmpiricalScore.score": _case(EMP.score, x=X2, t=0.1, threads=1, backend="cpp"),
    "empirical.EmpiricalScore.logpdf": _case(EMP.logpdf, x=X2, t=0.1, threads=1, backend="cpp"),
    "empirical.EmpiricalScore.__call__": _case(EMP, x=X2, t=0.1),
    "empirical.EmpiricalScore.sample_smoothed": _case(EMP.sample_smoothed, n_samples=10, t=0.1, seed=1, threads=1),
    # sampler
    "sampler.time_grid": _case(sampler.time_grid, T=1.0, delta=0.01, steps=10, grid="uniform"),
    "sampler.describe_score": _case(sampler.describe_score, score_model=GM2),
    "sampler.sample_reverse": _case(sampler.sample_reverse, score_model=GM2, n_samples=8, T=1.0, delta=0.05,
                                    steps=5, grid="uniform", integrator="euler_maruyama", init="standard_normal",
                                    seed=1, threads=1, backend="cpp", noise=None, trajectory_times=None),
    # random
    "random.standard_normal": _case(random.standard_normal, seed=1, shape=(4, 3), threads=1),
    "random.sampler_noise": _case(random.sampler_noise, seed=1, n_samples=4, steps=3, dim=2, threads=1),
    # metrics
    "metrics.as_samples": _case(metrics.as_samples, x=X2, name="x"),
    "metrics.Grid": _case(metrics.Grid, axes=(np.linspace(-1, 1, 5),)),
    "metrics.Grid.regular": _case(metrics.Grid.regular, lower=[-1.0], upper=[1.0], n=9),
    "metrics.auto_grid": _case(lambda sample_sets, **kw: metrics.auto_grid(sample_sets, **kw), sample_sets=X1,
                               bandwidths=[np.eye(1) * 0.1], n=33, pad=3.0),
    "metrics.kde": _case(metrics.kde, samples=X1, grid=GRID1, bandwidth="scott", factor=1.0, weights=None,
                         method="exact", tol=1e-3, threads=1, backend="cpp"),
    "metrics.kde_bandwidth": _case(metrics.kde_bandwidth, samples=X2, bandwidth="scott", factor=1.0, weights=None),
    "metrics.binned_error_bound": _case(metrics.binned_error_bound, bandwidth=np.eye(1) * 0.04, spacing=[0.1],
                                        radius=4.0, n_t=11),
    "metrics.binned_plan": _case(metrics.binned_plan, bandwidth=np.eye(1) * 0.04, grid=GRID1, tol=1e-2),
    "metrics.hellinger": _case(metrics.hellinger, p=X1, q=X1 + 0.3, grid=None, kind="H", bandwidth="scott",
                               factor=1.0, method="exact", tol=1e-3, n_grid=257, threads=1, backend="cpp"),
    "metrics.hellinger_grid": _case(metrics.hellinger_grid, p=PQ[0], q=PQ[1], cell_volume=0.5, kind="H"),
    "metrics.kl_grid": _case(metrics.kl_grid, p=PQ[0], q=PQ[1], cell_volume=0.5),
    "metrics.tv_grid": _case(metrics.tv_grid, p=PQ[0], q=PQ[1], cell_volume=0.5),
    "metrics.wasserstein": _case(metrics.wasserstein, x=X2, y=Y2, p=2, method="sliced", n_projections=8, seed=1,
                                 threads=1, backend="cpp"),
    "metrics.sliced_projections": _case(metrics.sliced_projections, n_projections=4, d=2, seed=1),
    "metrics.gaussian_w2": _case(metrics.gaussian_w2, mean1=[0.0, 1.0], cov1=np.eye(2), mean2=[1.0, 0.0],
                                 cov2=[[2.0, 0.3], [0.3, 1.0]]),
    "metrics.gaussian_kl": _case(metrics.gaussian_kl, mean1=[0.0, 1.0], cov1=np.eye(2), mean2=[1.0, 0.0],
                                 cov2=[[2.0, 0.3], [0.3, 1.0]]),
    "metrics.precision_recall": _case(metrics.precision_recall, real=X2, fake=Y2, k=3, backend="scipy"),
    # hermite
    "hermite.HermiteMoments": _case(hermite.HermiteMoments, indices=MOM.indices, values=MOM.values,
                                    std_errors=None, n_samples=30),
    "hermite.hermite_moments": _case(hermite.hermite_moments, x=X2, degree=3, std_errors=True, threads=1,
                                     backend="cpp"),
    "hermite.mixture_moments": _case(hermite.mixture_moments, mixture=GM2, degree=3, method="auto"),
    "hermite.degree_energies": _case(hermite.degree_energies, moments=MOM),
    "hermite.HermiteMoments.energies": _case(MOM.energies, unbiased=False),
    "hermite.gram_charlier": _case(hermite.gram_charlier, moments=MOM, points=np.linspace(-3, 3, 7)),
    "hermite.multi_indices": _case(hermite.multi_indices, d=2, degree=3),
    # truncation
    "truncation.Schedule.constant": _case(truncation.Schedule.constant, delta=0.1),
    "truncation.Schedule.geometric": _case(truncation.Schedule.geometric, delta0=0.1, gamma=0.5),
    "truncation.Schedule.polynomial": _case(truncation.Schedule.polynomial, delta0=0.1, beta=1.0),
    "truncation.Schedule.from_array": _case(truncation.Schedule.from_array, values=[0.1, 0.2, 0.3]),
    "truncation.Schedule.from_callable": _case(truncation.Schedule.from_callable, fn=lambda k: 0.1),
    "truncation.Schedule.__call__": _case(SCHED, k=3),
    "truncation.Schedule.values": _case(SCHED.values, n=5),
    "truncation.as_schedule": _case(truncation.as_schedule, schedule=0.1),
    "truncation.SmoothedLaw": _case(truncation.SmoothedLaw, base=GM1, weights=np.array([0.5, 0.5]),
                                    times=np.array([0.0, 0.2])),
    "truncation.SmoothedLaw.smooth": _case(LAW.smooth, t=0.1),
    "truncation.SmoothedLaw.mix_with_base": _case(LAW.mix_with_base, real_fraction=0.3),
    "truncation.SmoothedLaw.hermite_factor": _case(LAW.hermite_factor, n=np.arange(4)),
    "truncation.ExactRecursion.output_mixture": _case(EXACT.output_mixture, k=1),
    "truncation.exact_recursion": _case(truncation.exact_recursion, data_law=GM1, rounds=3, real_fraction=0.5,
                                        schedule=0.1),
    "truncation.limit_law": _case(truncation.limit_law, data_law=GM1, real_fraction=0.5, delta=0.1, law="output",
                                  tol=1e-6, max_terms=1000),
    "truncation.transfer_function": _case(truncation.transfer_function, n=np.arange(5), real_fraction=0.5,
                                          delta=0.1, law="output"),
    "truncation.bias_factors": _case(truncation.bias_factors, degrees=np.arange(4), rounds=3, real_fraction=0.5,
                                     schedule=0.1),
    "truncation.contraction_factor": _case(truncation.contraction_factor, real_fraction=0.5, delta=0.1),
    "truncation.asymptotic_rate": _case(truncation.asymptotic_rate, data_law=GM1, real_fraction=0.5, delta=0.1,
                                        max_degree=10, tol=1e-9),
    "truncation.robustness_radius": _case(truncation.robustness_radius, epsilon=0.01, real_fraction=0.5, delta=0.1),
    "truncation.robustness_bound": _case(truncation.robustness_bound, k=np.arange(5), initial_distance=1.0,
                                         epsilon=0.01, real_fraction=0.5, delta=0.1),
    "truncation.mixture_quantiles_1d": _case(truncation.mixture_quantiles_1d, law=GM1, u=[0.1, 0.5, 0.9]),
    "truncation.w2_1d": _case(truncation.w2_1d, x=X1, y=X1[:20] + 1.0),
    "truncation.w2_1d_to_law": _case(truncation.w2_1d_to_law, x=X1, law=GM1),
    "truncation.w2_1d_laws": _case(truncation.w2_1d_laws, p=GM1, q=GM1.smooth(0.3), n_levels=200),
    "truncation.sliced_w2": _case(truncation.sliced_w2, x=X2, y=Y2, n_projections=8, seed=1),
    "truncation.grid_distances": _case(truncation.grid_distances, p=GM1, q=GM1.smooth(0.3), lim=6.0, n=401),
    "truncation.IndependentDrawLearner": _case(truncation.IndependentDrawLearner, data_law=GM1, real_fraction=0.5,
                                               schedule=0.1, rounds=2, T=1.0, steps=5, integrator="exponential",
                                               grid="quadratic", perturbation=0.0, threads=1),
    "truncation.FittedModelLearner": _case(truncation.FittedModelLearner, inner=mc.retraining.EmpiricalLearner(),
                                           schedule=0.1, rounds=2, T=1.0, steps=5, integrator="exponential",
                                           grid="quadratic", perturbation=0.1, sampler="exact", threads=1),
    "truncation.simulate_recursion": _case(truncation.simulate_recursion, data_law=GM1, rounds=1, n_samples=20,
                                           real_fraction=0.5, schedule=0.1, model="independent", T=1.0, steps=4,
                                           integrator="exponential", grid="quadratic", n_components=None,
                                           perturbation=0.0, sampler="reverse", hermite_degree=2, seed=1, threads=1,
                                           labels=None),
    "truncation.affine_score_error": _case(truncation.affine_score_error, law=GM1, eta=0.1),
    "truncation.compounding_recursion": _case(truncation.compounding_recursion, data_law=GM1, rounds=2,
                                              real_fraction=0.5, schedule=0.1, eta=0.1),
    "truncation.CompoundingRecursion.ideal_step": _case(COMP.ideal_step, k=1),
    "truncation.expected_moment_sd": _case(truncation.expected_moment_sd, data_law=GM1, rounds=2, real_fraction=0.5,
                                           schedule=0.1, degree=3, n_real=100, n_eval=50, model="empirical"),
    "truncation.hermite_variances_1d": _case(truncation.hermite_variances_1d, law=GM1, degree=4),
}

# Public callables not fuzzed, with the reason.
SKIPPED: dict[str, str] = {
    "sampler.ReverseSamples": "plain record of a sampler run (built by sample_reverse; holds what it is given)",
    "sampler.NonFiniteSamplesError": "exception class",
    "sampler.DiscretisationWarning": "warning class",
    "truncation.AsymptoticRate": "record returned by asymptotic_rate",
    "metrics.PrecisionRecall": "NamedTuple record returned by precision_recall",
    "truncation.ExactRecursion": "record built by exact_recursion (its method output_mixture is fuzzed)",
    "truncation.SimulationResult": "record built by simulate_recursion",
    "truncation.Schedule": "low-level constructor (fn, description); the classmethods and as_schedule are fuzzed",
    "truncation.CompoundingRecursion": "record built by compounding_recursion (its methods are fuzzed)",
    "truncation.IndependentDrawLearner.fit": "learner protocol: called by run_retraining with states it made",
    "truncation.IndependentDrawLearner.sample": "learner protocol: called by run_retraining with states it made",
    "truncation.IndependentDrawLearner.score_model": "learner protocol: called by run_retraining with states it made",
    "truncation.IndependentDrawLearner.config": "no arguments",
    "truncation.FittedModelLearner.fit": "learner protocol: called by run_retraining with states it made",
    "truncation.FittedModelLearner.sample": "learner protocol: called by run_retraining with states it made",
    "truncation.FittedModelLearner.score_model": "learner protocol: called by run_retraining with states it made",
    "truncation.FittedModelLearner.config": "no arguments",
}
# Arguments not fuzzed: flags that accept any truthy value, free-form names, output folders.
SKIPPED_ARGS = {"simulate_recursion": {"checkpoint_dir", "resume", "progress"}, "as_samples": {"name"}}
# Argument -> other names an error may use for it (the name the message says to fix).
ALIASES = {
    "values": ("values", "schedule"), "schedule": ("schedule", "delta"), "axes": ("axes", "grid axis"),
    "sample_sets": ("sample_sets",), "fn": ("fn", "schedule"), "covariances": ("covariances",),
    "grid": ("grid", "points"), "initial_distance": ("initial_distance",),
}
# Size arguments that must refuse 10**12, 2**64 and 2**70 at once.
SIZE_ARGS = [
    ("mixture.GaussianMixture.sample", "n_samples"), ("mixture.GaussianMixture.sample_smoothed", "n_samples"),
    ("empirical.EmpiricalScore.sample_smoothed", "n_samples"), ("sampler.time_grid", "steps"),
    ("sampler.sample_reverse", "n_samples"), ("sampler.sample_reverse", "steps"),
    ("random.standard_normal", "shape"), ("random.sampler_noise", "n_samples"), ("random.sampler_noise", "steps"),
    ("random.sampler_noise", "dim"), ("metrics.Grid.regular", "n"), ("metrics.auto_grid", "n"),
    ("metrics.binned_error_bound", "n_t"), ("metrics.hellinger", "n_grid"), ("metrics.wasserstein", "n_projections"),
    ("metrics.sliced_projections", "n_projections"), ("metrics.sliced_projections", "d"),
    ("metrics.precision_recall", "k"), ("hermite.hermite_moments", "degree"), ("hermite.mixture_moments", "degree"),
    ("hermite.multi_indices", "d"), ("hermite.multi_indices", "degree"), ("truncation.Schedule.values", "n"),
    ("truncation.exact_recursion", "rounds"),
    ("truncation.limit_law", "max_terms"), ("truncation.bias_factors", "rounds"),
    ("truncation.w2_1d_laws", "n_levels"), ("truncation.sliced_w2", "n_projections"),
    ("truncation.grid_distances", "n"), ("truncation.IndependentDrawLearner", "rounds"),
    ("truncation.IndependentDrawLearner", "steps"), ("truncation.compounding_recursion", "rounds"),
    ("truncation.expected_moment_sd", "rounds"), ("truncation.expected_moment_sd", "degree"),
    ("truncation.simulate_recursion", "rounds"),
    ("truncation.simulate_recursion", "n_samples"), ("truncation.simulate_recursion", "steps"),
    ("truncation.simulate_recursion", "hermite_degree"), ("truncation.ExactRecursion.output_mixture", "k"),
]


# Alias modules: the module whose code they re-export.
ALIASED = {"modelcollapse.hermite": "modelcollapse.truncation._hermite"}


def _public_callables() -> set[str]:
    """module.Name and module.Class.method for everything public defined in the core modules."""
    names = set()
    for mod in MODULES:
        short = mod.__name__.rsplit(".", 1)[1]
        public = getattr(mod, "__all__", None) or [n for n in vars(mod) if not n.startswith("_")]
        for name in public:
            obj = getattr(mod, name)
            # defined in the module, or (a package or an alias module) in one of its private modules
            owner = getattr(obj, "__module__", None) or ""
            if not callable(obj) or not (owner == mod.__name__ or owner.startswith(mod.__name__ + ".")
                                         or owner == ALIASED.get(mod.__name__)):
                continue
            names.add(f"{short}.{name}")
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for meth, fn in vars(obj).items():
                    if isinstance(fn, (classmethod, staticmethod)):
                        fn = fn.__func__
                    if (not meth.startswith("_") or meth == "__call__") and callable(fn) \
                            and inspect.signature(fn).parameters.keys() - {"self", "cls"}:
                        names.add(f"{short}.{name}.{meth}")
    return names


def test_every_public_callable_is_fuzzed_or_skipped_with_a_reason():
    missing = _public_callables() - set(CASES) - set(SKIPPED)
    assert not missing, f"public callables with no fuzz case and no reason to skip: {sorted(missing)}"
    assert mc.__all__  # the package's exports are the modules' own names (walked above)


PAIRS = [(name, arg) for name, (_, kw) in CASES.items() for arg in kw
         if arg not in SKIPPED_ARGS.get(name.rsplit(".", 1)[-1], ())]


@pytest.mark.parametrize("name, arg", PAIRS, ids=[f"{n}:{a}" for n, a in PAIRS])
def test_one_bad_argument_keeps_the_contract(name, arg):
    fn, kwargs = CASES[name]
    n_calls = 0

    @settings(max_examples=12, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(bad=bad_values)
    def run(bad):
        nonlocal n_calls
        n_calls += 1
        call = functools.partial(fn, **{**kwargs, arg: bad})  # (kwargs may hold a "fn" of their own)
        call.__qualname__ = name
        assert_contract(call, ALIASES.get(arg, arg))

    run()
    assert n_calls > 0


@pytest.mark.parametrize("name, arg", SIZE_ARGS, ids=[f"{n}:{a}" for n, a in SIZE_ARGS])
@pytest.mark.parametrize("size", [10**12, 2**64, 2**70])
def test_huge_sizes_are_refused_at_once(name, arg, size):
    fn, kwargs = CASES[name]
    value = (size, 2) if arg == "shape" else size
    start = time.perf_counter()
    with pytest.raises((ValueError, TypeError), match=arg):
        fn(**{**kwargs, arg: value})
    assert time.perf_counter() - start < 2.0, "a huge size must be refused before any work starts"
