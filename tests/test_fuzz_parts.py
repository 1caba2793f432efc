"""Fuzz test of the bad-input contract (tests/fuzz_support.py) for dae, dae_theory and the
retraining package (gaussian, learners, metrics, datasets, torch learners); the hodge
package has its own, tests/hodge/test_hodge_fuzz.py.

Every public callable of these modules is either in ``CASES`` (valid defaults, tiny so that a
call takes milliseconds) or in ``SKIPPED`` with the reason; ``test_every_public_callable_is_covered``
walks the modules so that a new public name cannot slip through. Each case substitutes one
argument at a time with a bad value (hypothesis, derandomized); size arguments are also
given 10**12 and 2**64, which must be refused before any allocation or long loop.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_support import assert_contract, assert_huge_sizes_refused, draw_one_bad_argument
from modelcollapse import dae
from modelcollapse import dae_theory as th
from modelcollapse.recursion import RoundContext
from modelcollapse.recursion import _metrics as RM
from modelcollapse.retraining import datasets
from modelcollapse.retraining import gaussian as G
from modelcollapse.retraining import learners as L

MODULES = ["modelcollapse.dae", "modelcollapse.dae_theory", "modelcollapse.retraining.gaussian",
           "modelcollapse.retraining.learners", "modelcollapse.recursion._metrics",
           "modelcollapse.retraining.datasets", "modelcollapse.retraining.torch_learners"]

# --------------------------------------------------------------------------- valid objects
RNG = np.random.default_rng(0)
X2 = RNG.standard_normal((40, 2))
X1 = RNG.standard_normal(30)
TGT = dae.isotropic_mixture([[1.0, 0.0, 0.0, 0.0], [-1.0, 0.0, 0.0, 0.0]], 0.5)
SCH = dae.sampler_schedule(5, 0.9)
W4 = RNG.standard_normal((4, 2))
RUN = dae.train(TGT, r=2, n_steps=20, lr=0.1, seed=0, threads=1)
LEARNER = dae.DaeLearner(r=1, schedule=SCH, threads=1)
DSTATE = LEARNER.fit(RNG.standard_normal((10, 4)), None, np.random.default_rng(0))
TT = th.theory_target([[1.0], [-1.0]], 0.5)
ST = th.spectral_target([1.0, 0.5], [0.5, 0.5])
CTX = RoundContext(round=1, state={"mean": np.zeros(2), "cov": np.eye(2)}, initial_state={"mean": np.ones(2), "cov": np.eye(2)},
                   samples=X2, eval_data=X2 + 0.1, real_data=X2, train_data=X2, learner=L.GaussianLearner(),
                   rng=np.random.default_rng(0))
GSTATE = {"mean": np.zeros(2), "cov": np.eye(2)}
from sklearn.mixture import GaussianMixture as _SkGMM  # noqa: E402  (the SklearnLearner cases)


def _gen():
    return np.random.default_rng(1)


def _finite_d(fn):
    """The target builders store d = inf as the documented marker of the d -> infinity limit."""
    def call(**kw):
        out = fn(**kw)
        return dataclasses.replace(out, d=0.0) if out.d == np.inf else out
    return call


# name -> (callable, valid keyword arguments, size arguments)
CASES: dict[str, tuple] = {
    # dae
    "dae.DaeTarget.train_coords": (TGT.train_coords, dict(x=X2), ()),
    "dae.DaeTarget.sample": (TGT.sample, dict(n_samples=5, seed=0), ("n_samples",)),
    "dae.isotropic_mixture": (dae.isotropic_mixture, dict(means=[[1.0, 0.0], [-1.0, 0.0]], variances=0.5, weights=None), ()),
    "dae.diagonal_mixture": (dae.diagonal_mixture, dict(means=[[1.0, 0.0]], spectrum=[1.0, 0.5], weights=None), ()),
    "dae.gaussian_target": (dae.gaussian_target, dict(spectrum=None, covariance=np.eye(2), mean=None), ()),
    "dae.digits_covariance": (dae.digits_covariance, dict(digit=7, side=8, scale=300.0), ("side",)),
    "dae.digits_target": (dae.digits_target, dict(digit=7, side=8, scale=300.0), ("side",)),
    "dae.empirical_target": (dae.empirical_target, dict(samples=X2, sequential=False), ()),
    "dae.training_steps": (dae.training_steps, dict(tau=1.0, d=100, lr=0.1), ("d",)),
    "dae.train": (dae.train, dict(target=TGT, r=2, n_steps=10, tau=None, lr=0.1, weight_decay=0.0, activation="tanh",
                                  times=(0.5,), time_encoding=(0.0, 0.0), train_b=True, b0=0.0, v0=None, init="random",
                                  init_scale=1.0, record_every=None, observe=None, replicas=1, seed=0, threads=1,
                                  backend="cpp"), ("r", "n_steps", "replicas")),
    "dae.SamplerSchedule.kstar": (SCH.kstar, dict(b=0.5), ()),
    "dae.SamplerSchedule.p": (SCH.p, dict(time_encoding=(0.1, 0.2)), ()),
    "dae.SamplerSchedule.v_t": (SCH.v_t, dict(b=0.5), ()),
    "dae.sampler_schedule": (dae.sampler_schedule, dict(n_grid=5, t_final=0.9, gamma=0.1), ("n_grid",)),
    "dae.generate": (dae.generate, dict(w=W4, b=0.5, v=None, n_samples=5, schedule=SCH, activation="tanh",
                                        time_encoding=(0.0, 0.0), observe=None, return_full=True, seed=0, noise=None,
                                        threads=1, backend="cpp"), ("n_samples",)),
    "dae.projected_hellinger": (dae.projected_hellinger, dict(a=X1, b=X1 + 0.3, grid=20, bandwidth_factor=1.0,
                                                              bw_method="scott", pad=1.0), ("grid",)),
    "dae.fit_generation": (dae.fit_generation, dict(samples=RNG.standard_normal((10, 4)), r=1, lr=0.1, activation="tanh",
                                                    times=(0.5,), train_b=True, b0=0.0, observe=None, seed=0, threads=1),
                           ("r",)),
    "dae.sample_generation": (dae.sample_generation, dict(run=RUN, n_samples=5, schedule=SCH, activation=None, seed=0,
                                                          threads=1), ("n_samples",)),
    "dae.DaeLearner": (dae.DaeLearner, dict(r=1, lr=0.2, activation="tanh", times=(0.5,), time_encoding=(0.0, 0.0),
                                            train_b=True, b0=0.0, weight_decay=0.0, init_scale=1.0, warm_start=False,
                                            schedule=SCH, threads=1), ("r",)),
    "dae.DaeLearner.fit": (LEARNER.fit, dict(data=RNG.standard_normal((10, 4)), previous_state=None, rng=_gen()), ()),
    "dae.DaeLearner.sample": (LEARNER.sample, dict(state=DSTATE, n=5, rng=_gen()), ("n",)),
    "dae.DaeLearner.parameter_vector": (LEARNER.parameter_vector, dict(state=DSTATE), ()),
    # dae_theory
    "dae_theory.time_moments": (th.time_moments, dict(times=(0.5,)), ()),
    "dae_theory.skip_closed_form": (th.skip_closed_form, dict(tau=[0.0, 1.0], rho_bar=1.0, times=(0.5,), b0=0.0), ()),
    "dae_theory.linear_binary_fixed_point": (th.linear_binary_fixed_point, dict(mu_norm2=2.0, times=(0.5,)), ()),
    "dae_theory.skip_for_variance": (th.skip_for_variance, dict(variance=float(SCH.v_t(10.0)[-1]), schedule=SCH,
                                                                b_max=10.0), ()),
    "dae_theory.theory_target": (_finite_d(th.theory_target), dict(m=[[1.0], [-1.0]], rho=0.5, weights=None, D=None, d=None), ()),
    "dae_theory.integrate_odes": (th.integrate_odes, dict(target=TT, Q0=[[1.0]], G0=[[0.1]], b0=0.0, v0=None,
                                                          taus=[0.0, 0.1], activation="tanh", lr=0.2, weight_decay=0.0,
                                                          times=(0.5,), time_encoding=(0.0, 0.0), train_b=True,
                                                          quadratic=True, n_nodes=4, dtau=0.05, n_uniform=4),
                                  ("n_nodes", "n_uniform")),
    "dae_theory.bin_spectrum": (th.bin_spectrum, dict(spectrum=[3.0, 2.0, 1.0, 0.5], n_levels=2, n_spikes=1, index=None),
                                ("n_levels", "n_spikes")),
    "dae_theory.level_overlaps": (th.level_overlaps, dict(w=W4, index=[0, 0, 1, -1], n_levels=None), ("n_levels",)),
    "dae_theory.spectral_target": (_finite_d(th.spectral_target), dict(levels=[1.0, 0.5], fractions=[0.5, 0.5], means=None,
                                                            observe_levels=None, spikes=None, weights=None, d=None), ()),
    "dae_theory.integrate_spectral_odes": (th.integrate_spectral_odes,
                                           dict(target=ST, q0=[[0.5]], G0=None, b0=0.0, v0=None, taus=[0.0, 0.1],
                                                activation="tanh", lr=0.2, weight_decay=0.0, times=(0.5,),
                                                time_encoding=(0.0, 0.0), train_b=True, quadratic=True, n_nodes=4,
                                                dtau=0.05, n_uniform=4), ("n_nodes", "n_uniform")),
    "dae_theory.z_sde_samples": (th.z_sde_samples, dict(Q=[[1.0]], b=0.5, v=None, schedule=SCH, n_samples=20,
                                                        activation="tanh", time_encoding=(0.0, 0.0), seed=0), ("n_samples",)),
    "dae_theory.projected_law_samples": (th.projected_law_samples,
                                         dict(Q=[[1.0]], G=[[0.5]], b=0.5, v=None, schedule=SCH, n_samples=20,
                                              activation="tanh", time_encoding=(0.0, 0.0), seed=0), ("n_samples",)),
    "dae_theory.generation_target": (th.generation_target, dict(Q=[[1.0]], G=[[0.5]], b=0.5, v=None, schedule=SCH,
                                                                n_samples=50, grid=4, activation="tanh",
                                                                bandwidth_factor=1.5, seed=0, method="mixture",
                                                                n_atoms=4), ("n_samples", "grid")),
    # retraining.gaussian
    "gaussian.expected_sqrt_chi2": (G.expected_sqrt_chi2, dict(k=[1.0, 2.0]), ()),
    "gaussian.alpha": (G.alpha, dict(n=10), ()),
    "gaussian.expected_std": (G.expected_std, dict(sigma0=1.0, n=10, t=[0, 1, 2]), ()),
    "gaussian.log_std_moments": (G.log_std_moments, dict(n=10, t=[0, 1, 2]), ()),
    "gaussian.std_moment_ratio": (G.std_moment_ratio, dict(n=10, t=[0, 1, 2]), ()),
    "gaussian.expected_cov_factor": (G.expected_cov_factor, dict(workflow="accumulate", n=10, t=[0, 1, 2]), ()),
    "gaussian.sqrt_cov_bound": (G.sqrt_cov_bound, dict(cov0=np.eye(2), n=10, t=3), ()),
    "gaussian.sqrt_det_rate": (G.sqrt_det_rate, dict(n=10, d=2), ("d",)),
    "gaussian.sqrtm_psd": (G.sqrtm_psd, dict(cov=np.eye(2)), ()),
    "gaussian.contraction_rate": (G.contraction_rate, dict(synthetic_ratio=0.5), ()),
    "gaussian.mixed_map": (G.mixed_map, dict(mean=[0.0, 0.0], cov=np.eye(2), data_mean=[1.0, 0.0], data_cov=np.eye(2),
                                             synthetic_ratio=0.5), ()),
    "gaussian.iterate_mixed_map": (G.iterate_mixed_map, dict(mean0=[0.0, 0.0], cov0=np.eye(2), data_mean=[1.0, 0.0],
                                                             data_cov=np.eye(2), synthetic_ratio=0.5, rounds=3), ("rounds",)),
    "gaussian.mixed_map_expected": (G.mixed_map_expected, dict(mean=[0.0, 0.0], cov=np.eye(2), real_mean=[1.0, 0.0],
                                                               real_cov=np.eye(2), n_real=10, n_synthetic=5), ()),
    "gaussian.theorem1_condition": (G.theorem1_condition, dict(synthetic_ratio=0.2, alpha_curv=1.0, eps=0.1,
                                                               lipschitz=1.0), ()),
    "gaussian.theorem1_rate": (G.theorem1_rate, dict(synthetic_ratio=0.2, alpha_curv=1.0, eps=0.1, lipschitz=1.0), ()),
    "gaussian.theorem2_bound": (G.theorem2_bound, dict(t=[0, 1, 5], n=100, rho=0.5, a=1.0, b=1.0, delta=0.05, eps_opt=0.0,
                                                       initial_error=1.0), ()),
    "gaussian.theorem2_plateau": (G.theorem2_plateau, dict(n=100, rho=0.5, a=1.0, b=1.0, delta=0.05, eps_opt=0.0, t=1.0), ()),
    "gaussian.simulate_chains": (G.simulate_chains, dict(data_mean=[0.0], data_cov=[[1.0]], n=5, rounds=3, n_chains=4,
                                                         synthetic_ratio=0.5, real_fraction=None, n_synthetic=None,
                                                         init_mean=None, init_cov=None, seed=0, threads=1, backend="cpp",
                                                         noise_real=None, noise_synth=None),
                                 ("n", "rounds", "n_chains", "n_synthetic")),
    # retraining.learners
    "learners.GaussianLearner.fit": (L.GaussianLearner().fit, dict(data=X2, previous_state=None, rng=_gen()), ()),
    "learners.GaussianLearner.sample": (L.GaussianLearner().sample, dict(state=GSTATE, n=5, rng=_gen()), ("n",)),
    "learners.GaussianLearner.parameter_vector": (L.GaussianLearner().parameter_vector, dict(state=GSTATE), ()),
    "learners.GMMLearner": (L.GMMLearner, dict(n_components=2, covariance_type="full", max_iter=5), ("n_components",)),
    "learners.GMMLearner.fit": (L.GMMLearner(n_components=2, max_iter=5).fit, dict(data=X2, previous_state=None, rng=_gen()), ()),
    "learners.GMMLearner.sample": (L.GMMLearner(n_components=1).sample,
                                   dict(state={"weights": np.ones(1), "means": np.zeros((1, 2)), "covariances": np.eye(2)[None]},
                                        n=5, rng=_gen()), ("n",)),
    "learners.EmpiricalLearner": (L.EmpiricalLearner, dict(T=1.0, delta=0.05, steps=5, integrator="euler_maruyama",
                                                           grid="uniform", init="standard_normal", max_train=None,
                                                           threads=1), ("steps",)),
    "learners.EmpiricalLearner.fit": (L.EmpiricalLearner(steps=5).fit, dict(data=X2, previous_state=None, rng=_gen()), ()),
    "learners.EmpiricalLearner.sample": (L.EmpiricalLearner(steps=5, threads=1).sample,
                                         dict(state={"train": X2}, n=5, rng=_gen()), ("n",)),
    "learners.make_learner": (L.make_learner, dict(name="gaussian"), ()),
    "learners.FitSampleAdapter": (L.FitSampleAdapter, dict(prototype=LEARNER, name=None, parameter_fn=None, config=None), ()),
    "learners.FixedStart": (L.FixedStart, dict(learner=L.GaussianLearner(), initial_state=GSTATE), ()),
    "learners.SklearnLearner": (L.SklearnLearner, dict(estimator=_SkGMM(1), name=None, parameter_fn=None), ()),
    "learners.SklearnLearner.fit": (L.SklearnLearner(_SkGMM(1)).fit, dict(data=X2, previous_state=None, rng=_gen()), ()),
    "learners.SklearnLearner.sample": (L.SklearnLearner(_SkGMM(1)).sample,
                                       dict(state=L.SklearnLearner(_SkGMM(1)).fit(X2, None, _gen()), n=5, rng=_gen()),
                                       ("n",)),
    # recursion metrics
    "_metrics.metric_w1": (RM.metric_w1, dict(ctx=CTX), ()),
    "_metrics.metric_w2": (RM.metric_w2, dict(ctx=CTX), ()),
    "_metrics.metric_precision_recall": (RM.metric_precision_recall, dict(ctx=CTX, k=3), ("k",)),
    "_metrics.metric_std": (RM.metric_std, dict(ctx=CTX), ()),
    "_metrics.metric_mean": (RM.metric_mean, dict(ctx=CTX), ()),
    "_metrics.metric_param_distance": (RM.metric_param_distance, dict(ctx=CTX), ()),
    "_metrics.metric_w2_auto": (RM.metric_w2_auto, dict(ctx=CTX), ()),
    "_metrics.metric_hellinger": (RM.metric_hellinger, dict(ctx=CTX), ()),
    "_metrics.metric_variance_ratio": (RM.metric_variance_ratio, dict(ctx=CTX), ()),
    "_metrics.metric_memorization": (RM.metric_memorization, dict(ctx=CTX), ()),
    "_metrics.memorization_fraction": (RM.memorization_fraction,
                                       dict(samples=X2, train=X2 + 0.1, reference=X2, kappa=0.3), ()),
    "_metrics.param_error": (RM.param_error, dict(reference_state=GSTATE), ()),
    "_metrics.get_metric": (RM.get_metric, dict(name="w1"), ()),
    "_metrics.default_metrics": (RM.default_metrics, dict(neural=False), ()),
    # retraining.datasets
    "datasets.eight_gaussians": (datasets.eight_gaussians,
                                 dict(n_samples=10, seed=0, radius=4.0, std=0.5, scale=0.7), ("n_samples",)),
    "datasets.eight_gaussians_centres": (datasets.eight_gaussians_centres, dict(radius=4.0, scale=0.7), ()),
    "datasets.two_moons": (datasets.two_moons, dict(n_samples=10, seed=0, noise=0.1), ("n_samples",)),
}

TORCH_CASES = {
    "torch_learners.resolve_device": ("resolve_device", dict(device="cpu"), ()),
    "torch_learners.DDPMLearner": ("DDPMLearner", dict(n_levels=10, beta_start=1e-4, beta_end=0.02, sample_steps=5, eta=1.0,
                                                      batch_size=8, weight_decay=0.0, width=4, n_blocks=1, lr=1e-3,
                                                      samples_per_round=16, device="cpu", threads=1),
                                   ("n_levels", "sample_steps", "batch_size", "width", "n_blocks", "samples_per_round")),
    "torch_learners.FlowMatchingLearner": ("FlowMatchingLearner", dict(sigma=0.0, sample_steps=2, ot_coupling=True,
                                                                      batch_size=8, width=4, n_blocks=1,
                                                                      samples_per_round=16, device="cpu", threads=1),
                                           ("sample_steps", "batch_size", "width", "samples_per_round")),
    "torch_learners.DDPMLearner.fit": ("DDPMLearner.fit", dict(data=X2, previous_state=None, rng=_gen()), ()),
    "torch_learners.DDPMLearner.sample": ("DDPMLearner.sample", dict(state=None, n=5, rng=_gen()), ("n",)),
}

# Public callables not fuzzed here, and why.
SKIPPED = {
    # plain records: built by the validated functions above, no behaviour of their own
    "dae.DaeRun": "result record",
    "dae.TrainingPath": "result record", "dae.GeneratedSamples": "result record",
    "dae_theory.TrainingPath": "result record", "dae_theory.SpectralPath": "result record",
    "dae.DaeTarget": "record; built by isotropic_mixture, gaussian_target, ... (fuzzed)",
    "dae.SamplerSchedule": "record; built by sampler_schedule (fuzzed)",
    "dae_theory.TheoryTarget": "record; built by theory_target (fuzzed)",
    "dae_theory.SpectrumBins": "record; built by bin_spectrum (fuzzed)",
    "dae_theory.SpectralTarget": "record; built by spectral_target (fuzzed)",
    "dae_theory.ode_rhs": "internal right-hand side on a validated _Problem (fuzzed through integrate_odes)",
    "dae_theory.spectral_ode_rhs": "internal right-hand side (fuzzed through integrate_spectral_odes)",
    "gaussian.GaussianChains": "result record of simulate_chains; its methods take no arguments",
    "learners.GaussianLearner": "constructor takes no arguments",
    "torch_learners.SinusoidalEmbedding": "torch building block (tensors in, built only by the learners)",
    "torch_learners.ResidualBlock": "torch building block (tensors in, built only by the learners)",
    "torch_learners.TimeMLP": "torch building block (tensors in, built only by the learners)",
}
# Methods named in CASES as "module.Class.method" count as covering the class too.


def _public(modname: str) -> list[str]:
    """Functions and classes defined in ``modname``, or in a private module (``_name``) and
    exported through ``modname.__all__`` (a package's ``__init__`` or an alias module)."""
    mod = importlib.import_module(modname)
    short = modname.split(".")[-1]
    exported = set(getattr(mod, "__all__", ()))

    def owned(n, o):
        home = getattr(o, "__module__", "") or ""
        private = any(part.startswith("_") for part in home.split(".")[1:])
        return home == modname or (n in exported and private and home.startswith("modelcollapse."))

    return [f"{short}.{n}" for n, o in vars(mod).items()
            if not n.startswith("_") and (inspect.isfunction(o) or inspect.isclass(o)) and owned(n, o)]


def test_every_public_callable_is_covered():
    try:
        import torch  # noqa: F401
        mods = MODULES
    except ImportError:
        mods = MODULES[:-1]
    covered = set(SKIPPED) | {k.split("+")[0] for k in CASES} | set(TORCH_CASES)
    covered |= {".".join(k.split(".")[:2]) for k in list(CASES) + list(TORCH_CASES)}
    missing = [n for m in mods for n in _public(m) if n not in covered]
    assert not missing, f"public callables neither fuzzed nor listed in SKIPPED: {missing}"


def _torch_case(name):
    tl = pytest.importorskip("modelcollapse.retraining.torch_learners")
    attr, kwargs, sizes = TORCH_CASES[name]
    if attr == "resolve_device":
        return tl.resolve_device, kwargs, sizes
    if attr.startswith("DDPMLearner."):
        learner = tl.DDPMLearner(**TORCH_CASES["torch_learners.DDPMLearner"][1])
        kwargs = dict(kwargs)
        if attr.endswith(".sample"):
            kwargs["state"] = learner.fit(X2, None, _gen())
        return getattr(learner, attr.split(".")[1]), kwargs, sizes
    return getattr(tl, attr), kwargs, sizes


def _resolve(name):
    if name in TORCH_CASES:
        return _torch_case(name)
    return CASES[name]


ALL = list(CASES) + list(TORCH_CASES)


@pytest.mark.parametrize("name", ALL)
def test_valid_defaults_work(name):
    fn, kwargs, _ = _resolve(name)
    assert_contract(fn, "(valid call)", **kwargs)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_one_bad_argument(name, data):
    fn, kwargs, _ = _resolve(name)
    draw_one_bad_argument(data, fn, kwargs)



@pytest.mark.parametrize("name", [n for n in ALL if (CASES.get(n) or TORCH_CASES.get(n))[2]])
def test_huge_sizes_refused_quickly(name):
    fn, kwargs, sizes = _resolve(name)
    assert_huge_sizes_refused(name, fn, kwargs, sizes)
