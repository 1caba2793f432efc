"""Torch learners in the retraining loop: exact resume, the DDPM sampler against Ho et al.'s
ancestral update, and the neural experiment's common theta_0 and claims (tiny configuration;
the measured claims are in docs/retraining.md)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from modelcollapse.experiments import get  # noqa: E402
from modelcollapse.retraining import run_retraining  # noqa: E402
from modelcollapse.retraining.datasets import eight_gaussians, two_moons  # noqa: E402
from modelcollapse.retraining.torch_learners import DDPMLearner, FlowMatchingLearner  # noqa: E402


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("make, data", [
    (lambda: DDPMLearner(width=32, n_blocks=1, batch_size=64, samples_per_round=640, sample_steps=10), eight_gaussians),
    (lambda: FlowMatchingLearner(width=32, n_blocks=1, batch_size=64, samples_per_round=640, sample_steps=4),
     two_moons),
])
def test_torch_learner_resume_is_identical(tmp_path, make, data):
    real = data(200, seed=0)
    kw = dict(synthetic_ratio=1.0, seed=3, metrics=("w2", "param_distance"), progress=False)
    full = run_retraining(make(), real, 3, **kw)

    def boom(ctx):
        if ctx.round == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        run_retraining(make(), real, 3, checkpoint_dir=tmp_path, callback=boom, **kw)
    resumed = run_retraining(make(), real, 3, checkpoint_dir=tmp_path, **kw)
    assert resumed.resumed_from == 1
    pd.testing.assert_frame_equal(full.table, resumed.table)
    # the global torch RNG is left untouched by the learners
    torch.manual_seed(0)
    a = torch.rand(3)
    torch.manual_seed(0)
    make().fit(real, None, np.random.default_rng(0))
    np.testing.assert_array_equal(a.numpy(), torch.rand(3).numpy())


class _GaussianEps(torch.nn.Module):
    """The exact epsilon predictor of data N(0, s^2 I): E[eps | x_k] = sqrt(1 - abar_k) x / (abar_k s^2 + 1 - abar_k)."""

    def __init__(self, abar, s2):
        super().__init__()
        self.abar, self.s2 = abar, s2

    def forward(self, x, k):
        a = self.abar[k.long()][:, None]
        return (1 - a).sqrt() * x / (a * self.s2 + 1 - a)


def test_ddpm_sampler_with_all_levels_is_ancestral_ddpm():
    # DDIM with eta = 1 over all levels must be Ho et al.'s ancestral sampler:
    # x_{k-1} = (x_k - beta_k / sqrt(1 - abar_k) eps) / sqrt(alpha_k) + sqrt(beta~_k) z, no noise at k = 0,
    # beta~_k = beta_k (1 - abar_{k-1}) / (1 - abar_k). Same torch seed -> same normals in the same order.
    N, n, s2 = 40, 500, 2.0
    lr = DDPMLearner(n_levels=N, sample_steps=N, eta=1.0, dtype="float64", device="cpu")
    betas = torch.linspace(1e-4, 0.02, N, dtype=torch.float64)   # Ho et al.'s schedule, rebuilt here
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    model = _GaussianEps(abar, s2)
    with torch.random.fork_rng():
        torch.manual_seed(7)
        got = lr._sample(model, n, 2)
        torch.manual_seed(7)
        x = torch.randn(n, 2, dtype=torch.float64)
        for k in range(N - 1, -1, -1):
            eps = model(x, torch.full((n,), float(k), dtype=torch.float64))
            x = (x - betas[k] / (1 - abar[k]).sqrt() * eps) / alphas[k].sqrt()
            if k > 0:
                x = x + (betas[k] * (1 - abar[k - 1]) / (1 - abar[k])).sqrt() * torch.randn_like(x)
    np.testing.assert_allclose(got.numpy(), x.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.slow
def test_neural_experiment_trains_theta0_once_and_states_claims(tmp_path, monkeypatch):
    # a tiny configuration (structure, not quality): theta_0 is trained once and shared by every
    # lambda and seed (Bertrand et al.'s common start), and the claims carry one value per seed
    from modelcollapse.experiments import retraining_neural as rn

    calls = []
    orig = DDPMLearner.fit

    def counting_fit(self, data, previous_state, rng):
        if previous_state is None:
            calls.append(len(data))
        return orig(self, data, previous_state, rng)

    monkeypatch.setattr(DDPMLearner, "fit", counting_fit)
    monkeypatch.setattr(rn, "_THETA0", {})
    exp = get("retraining-ddpm")
    cfg = exp.make_config("quick", dict(width=16, n_blocks=1, batch_size=64, n_real=120, n_eval=60, rounds=1,
                                        seeds=(0, 1), samples_per_round=128, initial_samples=256, sample_steps=4,
                                        checkpoints=False, density_rounds=(0, 1)))
    out = exp.run(cfg, tmp_path, progress=False)
    assert calls == [120]
    t = out.table
    # round 0 is the same model for every lambda: same seed -> same evaluation samples -> same W2
    r0 = t[(t["round"] == 0) & (t.metric == "w2")].pivot(index="seed", columns="synthetic_ratio", values="value")
    np.testing.assert_array_equal(r0[0.5].to_numpy(), r0[math.inf].to_numpy())
    names = {c.name for c in out.claims}
    assert {"rd.synthetic_drifts", "rd.synthetic_concentrates_on_modes", "rd.synthetic_worse_than_lam0.5",
            "rd.stable_lam0.5"} == names
    assert all(c.n == 2 for c in out.claims)
    assert (tmp_path / "retraining-ddpm.parquet").exists()
    assert all(p.exists() for p in out.figures)
