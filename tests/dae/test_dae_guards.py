"""Guards for the DAE training ODEs that the other tests leave open (found by the mutation
check, .ci/mutate.py): the weight-decay terms of dQ and dG against SGD with weight decay."""
from __future__ import annotations

import numpy as np

from modelcollapse import dae
from modelcollapse import dae_theory as th


def test_ode_weight_decay_terms_match_simulation():
    """Linear DAE on 1/2 N(mu, I) + 1/2 N(-mu, I), ||mu||^2 = 4, d = 1000, strong weight decay.

    SGD with weight decay lambda shrinks w by lr lambda / d per step, i.e. G by lambda/2 and
    Q by lambda per unit of tau (docs/dae.md, "Theory"). Tolerance: without weight decay the
    same set-up deviates from the ODE by at most 0.016 on Q and 0.014 on M (2 replicas,
    measured; the O(1/sqrt d) fluctuations), so 0.05 is about 3 times that; lambda = 1 moves
    Q and M by 0.16 to 0.18 at tau = 4, so a weight-decay term dropped or doubled in the ODE
    (dQ -= lambda Q, dG -= lambda/2 G) is off by more than 3 times the tolerance.
    """
    T, d, lr, tau, wd = 4.0, 1000, 0.1, 4.0, 1.0
    mu = np.zeros(d)
    mu[0] = np.sqrt(T)
    target = dae.isotropic_mixture(np.stack([mu, -mu]), 1.0)
    w0 = np.zeros((d, 1))
    w0[0, 0] = 0.3 * np.sqrt(d)
    run = dae.train(target, r=1, tau=tau, lr=lr, init=w0, activation="linear", seed=1, observe=np.eye(d)[:, :1],
                    weight_decay=wd, replicas=2, record_every=5000)
    tt = th.theory_target(np.array([[np.sqrt(T)], [-np.sqrt(T)]]), 1.0)
    Q0, G0 = run.Q[:, 0].mean(0), run.G[:, 0].mean(0)
    kw = dict(taus=run.tau, activation="linear", lr=lr, n_nodes=6, dtau=0.05)
    ode = th.integrate_odes(tt, Q0, G0, 0.0, weight_decay=wd, **kw)
    sim_Q, sim_M = run.Q.mean(0)[:, 0, 0], run.M.mean(0)[:, 0, 0]
    assert np.abs(sim_Q - ode["Q"][:, 0, 0]).max() < 0.05
    assert np.abs(sim_M - ode["M"][:, 0, 0]).max() < 0.05
    # the weight decay is visible at this tolerance: the ODE without it misses the simulation
    no_wd = th.integrate_odes(tt, Q0, G0, 0.0, weight_decay=0.0, **kw)
    assert np.abs(sim_Q - no_wd["Q"][:, 0, 0]).max() > 0.15
