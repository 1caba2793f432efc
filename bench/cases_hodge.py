"""Bench: Helmholtz-Hodge kernels against their numpy twins.

* Stein/Hermite accumulation of (b, G) for the gradient-part estimator (N = 1e5, d = 2,
  total degree 8; target >= 5x the vectorised numpy reference, which builds the per-sample
  gradient array and uses a BLAS matrix product for G);
* perturbed score evaluation (mixture score + rotation + gradient bump + solenoidal bump);
* the reverse sampler with a perturbed score (whole loop compiled vs numpy per step).
"""
from __future__ import annotations

import numpy as np

import modelcollapse as mc
from modelcollapse import _core
from modelcollapse import hodge as H
from modelcollapse.reference import hodge as R
from run import Case


def _close(outs, rtol=1e-8):
    vals = list(outs.values())
    for v in vals[1:]:
        for a, b in zip(np.atleast_1d(vals[0]) if not isinstance(vals[0], tuple) else vals[0],
                        np.atleast_1d(v) if not isinstance(v, tuple) else v, strict=True):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * np.abs(b).max())


def _model():
    p = mc.GaussianMixture([0.45, 0.35, 0.2], [[-1.5, -0.5], [1.5, -0.3], [0.0, 1.6]],
                           np.array([[0.3, 0.3], [0.5, 0.2], [0.25, 0.4]]))
    A = H.antisymmetric(2)
    return H.PerturbedScore(p, [H.SolenoidalTerm(A, 2.0), H.GradientTerm(0.5, H.GaussianBump([0, 0.5], 0.7)),
                                H.SolenoidalTerm(A, 1.5, H.GaussianBump([1, 0], 0.8))])


def cases(quick: bool) -> list[Case]:
    n = 20_000 if quick else 100_000
    degree = 8

    def setup_hermite():
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, 2)) * [1.0, 0.7] + [0.2, -0.1]
        s = rng.standard_normal((n, 2))
        return x, s, x.mean(0), x.std(0)

    hermite = Case(
        name=f"hermite_stein_system_n{n}_d2_deg{degree}", setup=setup_hermite,
        impls={"cpp": lambda st: _core.hermite_stein_system(*st, degree, 0),
               "cpp_1thread": lambda st: _core.hermite_stein_system(*st, degree, 1),
               "numpy": lambda st: R.hermite_stein_system(*st, degree)},
        work=n, unit="samples", check=lambda outs: _close(outs, 1e-8), params=dict(n=n, d=2, degree=degree))

    m = 20_000 if quick else 200_000
    model = _model()

    def setup_fields():
        return model, model.sample(m, seed=1, t=0.2)

    fields = Case(
        name=f"perturbed_score_fields_m{m}", setup=setup_fields,
        impls={"cpp": lambda st: st[0].fields(st[1], 0.2),
               "numpy": lambda st: st[0].fields(st[1], 0.2, backend="numpy")},
        work=m, unit="points", check=lambda outs: _close(outs, 1e-10), params=dict(m=m, K=3, terms=3))

    ns, steps = (2_000, 50) if quick else (10_000, 200)

    def setup_sampler():
        rng = np.random.default_rng(2)
        return model, rng.standard_normal((ns, 2)), rng.standard_normal((ns, steps, 2))

    def run_sampler(st, backend):
        return mc.sample_reverse(st[0], ns, T=2.0, delta=0.05, steps=steps, integrator="exponential",
                                 init=st[1], noise=st[2], backend=backend).samples

    sampler = Case(
        name=f"reverse_sampler_perturbed_n{ns}_steps{steps}", setup=setup_sampler,
        impls={"cpp": lambda st: run_sampler(st, "cpp"), "numpy": lambda st: run_sampler(st, "numpy")},
        work=ns * steps, unit="sample-steps", check=lambda outs: _close(outs, 1e-9), params=dict(n=ns, steps=steps))
    return [hermite, fields, sampler]
