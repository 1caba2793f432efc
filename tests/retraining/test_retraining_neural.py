"""Torch learners in the retraining loop: exact resume, and the quick presets' ordering
(fully synthetic worse than lambda = 0.5 after a few rounds, fixed seed)."""
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


def test_ddpm_sampler_with_all_levels_is_ancestral_ddpm():
    # eta = 1 over all levels: sigma_k^2 = beta_k (1 - abar_{k-1}) / (1 - abar_k), the DDPM posterior variance
    lr = DDPMLearner(n_levels=50, sample_steps=50)
    abar = lr._abar.numpy()
    betas = 1 - abar[1:] / abar[:-1]
    post = betas * (1 - abar[:-1]) / (1 - abar[1:])
    sig2 = (1 - abar[:-1]) / (1 - abar[1:]) * (1 - abar[1:] / abar[:-1])
    np.testing.assert_allclose(sig2, post, rtol=1e-12)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["retraining-ddpm", "retraining-flow"])
def test_quick_preset_fully_synthetic_worse_than_half(tmp_path, name):
    exp = get(name)
    cfg = exp.make_config("quick", {"checkpoints": False})
    out = exp.run(cfg, tmp_path, progress=False)
    t = out.table
    final = t[(t["round"] == cfg.rounds) & (t.metric == "w2")].set_index("synthetic_ratio").value
    # mean W2 over the last rounds: fully synthetic drifts, lambda = 0.5 stays anchored
    late = t[(t["round"] >= 2) & (t.metric == "w2")].groupby("synthetic_ratio").value.mean()
    assert late[math.inf] > late[0.5]
    assert final[math.inf] > final[0.5]
    assert (tmp_path / f"{name}.parquet").exists()
    assert all(p.exists() for p in out.figures)
