"""Guards for the KL bounds that the other tests leave open (found by the mutation check,
.ci/mutate.py): the bounds' time integrals have their stated values, not just the right order."""
from __future__ import annotations

import numpy as np
from scipy import integrate

import modelcollapse as mc
from modelcollapse import hodge as H


def test_kl_bound_integrals_equal_an_independent_quadrature():
    """girsanov = KL(p_T || N(0, I)) + int_delta^T E|e_t|^2 dt and marginal = the same with
    E|grad phi_t|^2 (docs/hodge.md, "Formulas"). The integrals are checked against scipy's
    adaptive quadrature in t of the closed-form integrands (Gaussian base, affine terms): both
    integrands are smooth, so 24 Gauss-Legendre nodes in log t and quad agree to about 1e-8;
    rtol 1e-6 leaves room and still sees a missing factor or Jacobian by orders of magnitude."""
    T, delta = 3.0, 0.05
    p = mc.GaussianMixture([1.0], [[1.0, -0.5]], np.array([[1.0, 0.4], [0.4, 0.3]])[None])
    m = H.PerturbedScore(p, [H.SolenoidalTerm(H.antisymmetric(2), 1.0),
                             H.GradientTerm(0.3, H.QuadraticPotential(np.eye(2), [1.0, -0.5]))])
    kb = H.kl_bounds(m, T, delta)
    assert kb.method == "gaussian"
    l2 = integrate.quad(lambda t: H.gaussian_error_energies(m, t).total, delta, T, epsabs=0, epsrel=1e-10)[0]
    gr = integrate.quad(lambda t: H.gaussian_error_energies(m, t).gradient, delta, T, epsabs=0, epsrel=1e-10)[0]
    assert abs(kb.l2_integral / l2 - 1) < 1e-6
    assert abs(kb.gradient_integral / gr - 1) < 1e-6
    init = H.kl_to_standard_normal(p, T)
    assert abs(kb.girsanov - (init + l2)) < 1e-6 * kb.girsanov
    assert abs(kb.marginal - (init + gr)) < 1e-6 * kb.marginal
    assert gr > 0.01 and l2 > 2 * gr  # both parts present, the solenoidal one large
