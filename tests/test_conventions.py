"""The public API keeps its conventions (CONTRIBUTING.md, "Conventions"): every public
callable is walked with ``inspect.signature``.

- ``seed``, ``threads`` and ``backend`` are keyword-only, so that a call never passes a seed
  where a size was meant (``sample(1000, 0)`` reads as a size and a seed, or two sizes);
- a draw count is called ``n_samples`` in the methods that draw (``sample``,
  ``sample_smoothed``) and in Monte Carlo estimators, never ``n_mc``, ``num_samples`` or
  ``n_draws``;
- one seed policy: every ``seed`` parameter defaults to 0 (the same numbers on every call;
  ``seed=None`` asks for fresh entropy, a ``numpy.random.Generator`` continues a stream);
- results are frozen records (``results.Record``), not dicts or tuples, for the record
  types listed below.
"""
from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil

import pytest

import modelcollapse

KEYWORD_ONLY = ("seed", "threads", "backend")
FORBIDDEN_SIZE_NAMES = ("n_mc", "num_samples", "n_draws", "nsamples")
# Callables whose subject is the seed itself (it comes first by design), and the Learner
# protocol ``sample(state, n, rng)`` whose arguments the retraining loop passes by position.
EXEMPT = {
    "modelcollapse._validation.as_seed", "modelcollapse._validation.as_generator",
    "modelcollapse._validation.check_threads", "modelcollapse.recursion._workflows.round_rng",
    "modelcollapse.random.standard_normal", "modelcollapse.random.sampler_noise",
}


def _public_modules() -> list[str]:
    names = ["modelcollapse"]
    for info in pkgutil.walk_packages(modelcollapse.__path__, "modelcollapse."):
        parts = info.name.split(".")
        if parts[1] in ("reference", "experiments", "cli", "__main__"):
            continue
        names.append(info.name)
    return names


def _callables():
    """(qualified name, callable) for every function, class and method defined in the package."""
    seen = set()
    for modname in _public_modules():
        mod = importlib.import_module(modname)
        for name, obj in vars(mod).items():
            if name.startswith("_") and name != "__init__":
                continue
            home = getattr(obj, "__module__", "") or ""
            if not home.startswith("modelcollapse") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            key = f"{home}.{obj.__qualname__}"
            if key in seen:
                continue
            seen.add(key)
            if inspect.isclass(obj):
                if dataclasses.is_dataclass(obj):  # records: their fields are data, not options
                    continue
                yield key, obj
                for mname, member in vars(obj).items():
                    fn = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                    if not mname.startswith("_") and inspect.isfunction(fn):
                        yield f"{key}.{mname}", fn
            else:
                yield key, obj


CALLABLES = dict(_callables())


def test_the_walk_finds_the_api():
    # guards the walk itself: these must be among what the conventions are checked on
    for name in ("modelcollapse.sampler.sample_reverse", "modelcollapse.mixture.GaussianMixture.sample",
                 "modelcollapse.metrics._wasserstein.wasserstein", "modelcollapse.hodge._model.l2_error",
                 "modelcollapse.dae._train.train"):
        assert name in CALLABLES, name
    assert len(CALLABLES) > 150


def _params(fn):
    try:
        return inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return ()


def test_seed_threads_backend_are_keyword_only():
    wrong = [f"{name}: {p.name}" for name, fn in CALLABLES.items() if name not in EXEMPT
             for p in _params(fn) if p.name in KEYWORD_ONLY and p.kind is not inspect.Parameter.KEYWORD_ONLY]
    assert not wrong, "make these keyword-only (put them after *):\n" + "\n".join(sorted(wrong))


def test_every_seed_defaults_to_zero():
    wrong = [f"{name}: seed={p.default!r}" for name, fn in CALLABLES.items() if name not in EXEMPT
             for p in _params(fn) if p.name == "seed" and p.default is not inspect.Parameter.empty and p.default != 0]
    assert not wrong, "the seed policy is seed=0 by default (CONTRIBUTING.md, Conventions):\n" + "\n".join(sorted(wrong))


def test_default_seed_repeats_and_none_is_fresh():
    p = modelcollapse.GaussianMixture([1.0], [[0.0]], 1.0)
    assert (p.sample(3) == p.sample(3)).all() and (p.sample(3) == p.sample(3, seed=0)).all()
    assert (modelcollapse.EmpiricalScore(p.sample(5)).sample_smoothed(4, 0.1) ==
            modelcollapse.EmpiricalScore(p.sample(5)).sample_smoothed(4, 0.1, seed=0)).all()
    assert not (p.sample(3, seed=None) == p.sample(3, seed=None)).all()


def test_draw_counts_are_n_samples():
    wrong = []
    for name, fn in CALLABLES.items():
        params = [p.name for p in _params(fn)]
        wrong += [f"{name}: {p}" for p in params if p in FORBIDDEN_SIZE_NAMES]
        if name.rsplit(".", 1)[-1] in ("sample", "sample_smoothed") and "state" not in params and "n" in params:
            wrong.append(f"{name}: n (call it n_samples)")
    assert not wrong, "draw counts are called n_samples:\n" + "\n".join(sorted(wrong))


@pytest.mark.parametrize("name", [
    "modelcollapse.sampler.ReverseSamples", "modelcollapse.metrics.PrecisionRecall",
    "modelcollapse.dae.DaeRun", "modelcollapse.dae.TrainingPath", "modelcollapse.hodge.KLBounds",
    "modelcollapse.hodge.EnergyEstimate", "modelcollapse.hodge.GridDecomposition",
])
def test_results_are_frozen_records(name):
    from modelcollapse.results import Record

    modname, cls = name.rsplit(".", 1)
    obj = getattr(importlib.import_module(modname), cls)
    assert issubclass(obj, Record), f"{name} should derive from results.Record"
    assert obj.__dataclass_params__.frozen, f"{name} should be a frozen dataclass"
