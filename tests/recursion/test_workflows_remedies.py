"""The atlas options of the retraining loop: workflows accumulate-subsample and fresh, the real
data sampler, and the remedies (sampling bias, self-correction, verification)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from modelcollapse.mixture import GaussianMixture
from modelcollapse.recursion import SamplingBias, SelfCorrection, Verification, resolve_mixing, run_retraining
from modelcollapse.retraining import FixedStart, GaussianLearner, GMMLearner


def _real(n=200, d=2, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) * [1.0, 2.0] + [1.0, -1.0]


def _sizes(res):
    return res.table[res.table.metric == "train_size"].sort_values("round").value.astype(int).tolist()


class _Collect:
    """A callback keeping each round's training set."""

    def __init__(self):
        self.train = {}

    def __call__(self, ctx):
        self.train[ctx.round] = ctx.train_data.copy()


class _PlainGaussian:
    """A Gaussian learner without sample_at_temperature (the remedies' generic path)."""

    name = "plain-gaussian"

    def __init__(self):
        self.inner = GaussianLearner()

    def fit(self, data, previous_state, rng):
        return self.inner.fit(data, previous_state, rng)

    def sample(self, state, n, rng):
        return self.inner.sample(state, n, rng)


# ----------------------------------------------------------------------------- workflows

def test_accumulate_subsample_draws_a_fixed_budget_from_the_whole_pool():
    # kills: subsample from the real data only, or from the newest synthetic set only
    real = _real(100)
    cb = _Collect()
    res = run_retraining(GaussianLearner(), real, 3, workflow="accumulate-subsample", train_budget=120,
                         n_synthetic=60, seed=2, progress=False, callback=cb, keep_states=False,
                         checkpoint_dir=None)
    assert _sizes(res) == [100, 120, 120, 120]
    t3 = cb.train[3]
    from_real = np.isin(t3.view([("", t3.dtype)] * 2), real.view([("", real.dtype)] * 2)).ravel()
    # the pool at round 3 is 100 real + 180 synthetic: the budget draws from both, in proportion
    k = int(from_real.sum())
    assert 0 < k < 120
    lo, hi = stats.hypergeom(280, 100, 120).ppf([1e-5, 1 - 1e-5])
    assert lo <= k <= hi
    assert len(np.unique(t3, axis=0)) == 120     # without replacement


def test_fresh_array_uses_a_new_block_every_round():
    # kills: fresh reusing round 0's block
    blocks = np.random.default_rng(1).normal(size=(4 * 50, 2))
    res = run_retraining(GaussianLearner(), blocks, 3, workflow="fresh", n_real=50, seed=0, progress=False)
    assert _sizes(res) == [50, 50, 50, 50]
    for t, st in enumerate(res.states):      # lambda = 0: every round is the fit of its block
        np.testing.assert_allclose(st["mean"], blocks[50 * t:50 * (t + 1)].mean(0), rtol=1e-12)
    res2 = run_retraining(GaussianLearner(), blocks[:150], 2, workflow="fresh", n_real=50, synthetic_ratio=0.5,
                          seed=0, progress=False)
    assert _sizes(res2) == [50, 75, 75]


def test_real_data_sampler_is_called_with_n_real_and_a_seed_per_round():
    calls = []

    def sampler(n, seed):
        calls.append((n, seed))
        return np.random.default_rng(seed).normal(size=(n, 2))

    res = run_retraining(GaussianLearner(), sampler, 3, workflow="fresh", n_real=30, seed=5, progress=False)
    assert [c[0] for c in calls] == [30, 30, 30, 30]
    assert len({c[1] for c in calls}) == 4
    # a fixed-real workflow calls it once, and round 0 is the same set as for fresh
    calls.clear()
    res_mix = run_retraining(GaussianLearner(), sampler, 2, synthetic_ratio=1.0, n_real=30, seed=5, progress=False)
    assert len(calls) == 1
    np.testing.assert_array_equal(res.states[0]["mean"], res_mix.states[0]["mean"])


@pytest.mark.parametrize("kw", [
    {"workflow": "fresh", "n_real": 40, "synthetic_ratio": 1.0},
    {"workflow": "accumulate-subsample", "train_budget": 50},
])
def test_new_workflows_resume_exactly(tmp_path, kw):
    real = np.random.default_rng(3).normal(size=(200, 2))
    if kw["workflow"] == "fresh":
        def real_in(n, seed):
            return np.random.default_rng(seed).normal(size=(n, 2))
    else:
        real_in = real
    remedies = [SamplingBias(temperature=0.8),
                Verification(GaussianMixture([1.0], np.zeros((1, 2)), np.eye(2)[None]), acceptance=0.7)]
    full = run_retraining(GaussianLearner(), real_in, 4, seed=7, progress=False, remedies=remedies,
                          checkpoint_dir=tmp_path / "a", **kw)

    def stop(ctx):
        if ctx.round == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_retraining(GaussianLearner(), real_in, 4, seed=7, progress=False, remedies=remedies,
                       checkpoint_dir=tmp_path / "b", callback=stop, **kw)
    resumed = run_retraining(GaussianLearner(), real_in, 4, seed=7, progress=False, remedies=remedies,
                             checkpoint_dir=tmp_path / "b", **kw)
    assert resumed.resumed_from == 2   # the callback runs after round 2 was saved
    pd.testing.assert_frame_equal(full.table, resumed.table)


def test_workflow_validation():
    real = _real(50)
    g = GaussianLearner()
    with pytest.raises(ValueError, match="n_real"):
        run_retraining(g, lambda n, s: real[:n], 2, synthetic_ratio=1.0, progress=False)
    with pytest.raises(ValueError, match="n_real"):
        run_retraining(g, real, 2, workflow="fresh", progress=False)
    with pytest.raises(ValueError, match="n_real"):
        run_retraining(g, real, 2, workflow="replace", n_real=10, progress=False)
    with pytest.raises(ValueError, match="real_data"):
        run_retraining(g, real, 4, workflow="fresh", n_real=20, progress=False)   # needs 5 x 20 rows
    with pytest.raises(ValueError, match="train_budget"):
        run_retraining(g, real, 2, workflow="accumulate", train_budget=10, progress=False)
    with pytest.raises(ValueError, match="train_budget"):
        run_retraining(g, real, 2, workflow="accumulate-subsample", train_budget=101, progress=False)
    with pytest.raises(ValueError, match="finite synthetic_ratio"):
        resolve_mixing("fresh", synthetic_ratio=math.inf)
    with pytest.raises(ValueError, match="n_synthetic"):
        run_retraining(g, real, 2, workflow="fresh", n_real=10, n_synthetic=5, progress=False)
    with pytest.raises(ValueError, match="takes no"):
        resolve_mixing("accumulate-subsample", synthetic_ratio=1.0)
    with pytest.raises(ValueError, match=r"real_data\(n_samples, seed\)"):
        run_retraining(g, lambda n, s: real[:n - 1], 2, workflow="fresh", n_real=10, progress=False)
    with pytest.raises(TypeError, match="remedies"):
        run_retraining(g, real, 2, workflow="replace", remedies=[object()], progress=False)
    assert resolve_mixing("fresh") == (0.0, 1.0)
    assert resolve_mixing("fresh", real_fraction=0.25) == (3.0, 0.25)


# ----------------------------------------------------------------------------- remedies

def test_no_remedy_and_identity_remedies_draw_the_same_points():
    # remedies draw from their own streams: an identity remedy changes nothing (kills a
    # remedy that consumes the learner's synthetic stream)
    a = run_retraining(GaussianLearner(), _real(), 3, workflow="replace", seed=4, progress=False)
    b = run_retraining(GaussianLearner(), _real(), 3, workflow="replace", seed=4, progress=False,
                       remedies=[SamplingBias(), SelfCorrection(lambda x: -x, strength=0.0)])
    for sa, sb in zip(a.states, b.states):
        np.testing.assert_array_equal(sa["cov"], sb["cov"])
    assert set(b.table.remedy) == {"bias(tau=1,q=1)+correct(s=0)"}
    assert "remedy" not in a.table.columns


@pytest.mark.parametrize("learner", [GaussianLearner(), _PlainGaussian()])
def test_temperature_scales_the_synthetic_variance_by_tau(learner):
    # native N(mu, tau Sigma) and the generic contraction by sqrt(tau) both give Var = tau Sigma;
    # n = 4000: the refitted variance ratio has sd sqrt(2/4000) = 2.2 %, tolerance 4.5 sd
    # (kills temperature ignored, or applied as sqrt(tau) to the variance)
    real = np.random.default_rng(0).normal(size=(4000, 1)) * 2.0
    res = run_retraining(learner, real, 1, workflow="replace", seed=1, progress=False, metrics=(),
                         remedies=SamplingBias(temperature=0.5))
    ratio = res.states[1]["cov"][0, 0] / res.states[0]["cov"][0, 0]
    assert abs(ratio - 0.5) < 4.5 * 0.5 * math.sqrt(2 / 4000)


def test_truncation_keeps_the_central_fraction():
    # a 1-D Gaussian truncated to its central half: Var = 1 - 2 z phi(z) / q with z = Phi^-1(3/4)
    # (kills keeping the farthest candidates or ignoring q)
    q = 0.5
    z = stats.norm.ppf(0.5 + q / 2)
    var_trunc = 1 - 2 * z * stats.norm.pdf(z) / q
    real = np.random.default_rng(0).normal(size=(6000, 1))
    res = run_retraining(GaussianLearner(), real, 1, workflow="replace", seed=1, progress=False, metrics=(),
                         remedies=SamplingBias(truncation=q))
    ratio = res.states[1]["cov"][0, 0] / res.states[0]["cov"][0, 0]
    # variance of a truncated-normal sample variance: sd ~ sqrt((mu4 - var^2)/n) / var, about 2 %
    assert abs(ratio - var_trunc) < 4.5 * 0.03 * var_trunc


def test_gmm_temperature_sharpens_weights_and_components():
    g = GMMLearner(2)
    state = {"weights": np.array([0.8, 0.2]), "means": np.array([[-5.0], [5.0]]),
             "covariances": np.array([[[1.0]], [[1.0]]])}
    x = g.sample_at_temperature(state, 20000, np.random.default_rng(0), 0.5)
    left = x[:, 0] < 0
    # weights 0.8^2 : 0.2^2 = 0.941 : 0.059; component variance 0.5
    assert abs(left.mean() - 0.64 / 0.68) < 4.5 * math.sqrt(0.06 / 20000)
    assert abs(x[left, 0].var() - 0.5) < 4.5 * 0.5 * math.sqrt(2 / left.sum())


def test_fixed_start_tempers_the_wrapped_model_not_its_cloud():
    """A common start (FixedStart) must not hide the learner's own tempered sampler: under
    SamplingBias a GMM at T = 0.5 sharpens its weights (0.941 : 0.059) rather than shrinking
    the cloud towards its mean (which would keep 0.8 : 0.2)."""
    g = GMMLearner(2)
    state = {"weights": np.array([0.8, 0.2]), "means": np.array([[-5.0], [5.0]]),
             "covariances": np.array([[[1.0]], [[1.0]]])}
    wrapped = FixedStart(g, state)
    x = wrapped.sample_at_temperature(state, 20000, np.random.default_rng(0), 0.5)
    assert abs((x[:, 0] < 0).mean() - 0.64 / 0.68) < 4.5 * math.sqrt(0.06 / 20000)
    with pytest.raises(AttributeError):
        wrapped.no_such_method  # noqa: B018 (other names are not forwarded)


def test_self_correction_langevin_contracts_the_mean_exactly():
    # true law N(0, 1), score -x: each ULA step maps the mean m -> (1 - h) m and the variance
    # v -> (1 - h)^2 v + 2 h; points from N(3, 0.25), strength 1, 4 steps (h = 0.25)
    corr = SelfCorrection(lambda x: -x, strength=1.0, steps=4)
    x0 = 3.0 + 0.5 * np.random.default_rng(0).standard_normal((40000, 1))
    x = corr.correct(x0, np.random.default_rng(1))
    m, v = x0.mean(), x0.var()
    for _ in range(4):
        m, v = 0.75 * m, 0.75 ** 2 * v + 0.5
    assert abs(x.mean() - m) < 4.5 * math.sqrt(v / 40000)
    assert abs(x.var() - v) < 4.5 * v * math.sqrt(2 / 40000)
    # an object with a score(x) method (the true GaussianMixture) works the same
    law = GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    y = SelfCorrection(law, strength=1.0, steps=4).correct(x0, np.random.default_rng(1))
    np.testing.assert_allclose(y, x, rtol=1e-10, atol=1e-12)


def test_self_correction_in_the_loop_pulls_back_to_the_true_law():
    # replace + a strong correction with the true score: the variance no longer collapses
    real = np.random.default_rng(0).normal(size=(20, 1))
    law = GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    plain = run_retraining(GaussianLearner(), real, 30, workflow="replace", seed=3, progress=False, metrics=())
    fixed = run_retraining(GaussianLearner(), real, 30, workflow="replace", seed=3, progress=False, metrics=(),
                           remedies=SelfCorrection(law, strength=5.0, steps=50))
    # corrected synthetic points are (nearly) exact draws of N(0, 1): round 30 refits 20 of them,
    # so sigma^2 ~ chi2_19/19 (sd 0.32); uncorrected, the mean has random-walked by sd sqrt(31/20)
    assert abs(fixed.states[-1]["cov"][0, 0] - 1.0) < 4.5 * math.sqrt(2 / 19)
    assert abs(fixed.states[-1]["mean"][0]) < 4.5 * math.sqrt(1 / 20)
    assert plain.states[-1]["mean"][0] != fixed.states[-1]["mean"][0]


def test_verification_keeps_the_most_likely_candidates():
    law = GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    ver = Verification(law, acceptance=0.5)
    src_rng = np.random.default_rng(0)
    drawn = []

    def source(k):
        x = src_rng.standard_normal((k, 1))
        drawn.append(x)
        return x

    out = ver.draw(source, 1000, np.random.default_rng(1))
    cand = drawn[0]
    assert len(cand) == 2000 and out.shape == (1000, 1)
    # everything kept is more likely than everything rejected
    rejected = np.setdiff1d(cand[:, 0], out[:, 0])
    assert np.abs(out).max() <= np.abs(rejected).min()
    # threshold: every accepted point passes it, refilled to n
    thr = float(law.logpdf(np.array([[1.0]]))[0])
    out2 = Verification(law, threshold=thr).draw(source, 500, np.random.default_rng(2))
    assert out2.shape == (500, 1) and np.all(np.abs(out2) <= 1.0 + 1e-12)
    with pytest.raises(RuntimeError, match="threshold"):
        Verification(law, threshold=thr + 50.0, max_candidates_factor=3).draw(source, 10, np.random.default_rng(3))


def test_verification_in_the_loop_reduces_the_variance():
    # keeping the most likely half of each synthetic draw shrinks the refitted variance to the
    # truncated-normal value (the verifier's own quality-diversity trade-off)
    real = np.random.default_rng(0).normal(size=(6000, 1))
    law = GaussianMixture([1.0], [[0.0]], [[[1.0]]])
    res = run_retraining(GaussianLearner(), real, 1, workflow="replace", seed=1, progress=False, metrics=(),
                         remedies=Verification(law, acceptance=0.5))
    z = stats.norm.ppf(0.75)
    assert abs(res.states[1]["cov"][0, 0] - (1 - 2 * z * stats.norm.pdf(z) / 0.5)) < 0.03


def test_remedy_validation():
    with pytest.raises(ValueError, match="temperature"):
        SamplingBias(temperature=0.0)
    with pytest.raises(ValueError, match="truncation"):
        SamplingBias(truncation=1.5)
    with pytest.raises(ValueError, match="strength"):
        SelfCorrection(lambda x: -x, strength=-1.0)
    with pytest.raises(ValueError, match="steps"):
        SelfCorrection(lambda x: -x, strength=1.0, steps=0)
    with pytest.raises(TypeError, match="score"):
        SelfCorrection(3.0, strength=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        Verification(lambda x: -x[:, 0], acceptance=0.5, threshold=0.0)
    with pytest.raises(ValueError, match="exactly one"):
        Verification(lambda x: -x[:, 0])
    with pytest.raises(ValueError, match="acceptance"):
        Verification(lambda x: -x[:, 0], acceptance=0.0)
    with pytest.raises(ValueError, match="score must return"):
        SelfCorrection(lambda x: x[:, :1], strength=1.0).correct(np.zeros((3, 2)), np.random.default_rng(0))


def test_fixed_skip_of_the_dae_is_reached_through_the_learner():
    # the DAE's part-specific remedy (docs/retraining.md, "Remedies"): b stays b0 every round
    from modelcollapse.dae import DaeLearner

    x = np.random.default_rng(0).normal(size=(200, 2))
    fixed = run_retraining(DaeLearner(train_b=False, b0=0.7, threads=1), x, 2, workflow="replace", seed=1,
                           progress=False, metrics=())
    assert [float(s["b"]) for s in fixed.states] == [0.7, 0.7, 0.7]
    free = run_retraining(DaeLearner(train_b=True, b0=0.7, threads=1), x, 1, workflow="replace", seed=1,
                          progress=False, metrics=())
    assert float(free.states[-1]["b"]) != 0.7
    assert repr(SamplingBias(0.5)) == "bias(tau=0.5,q=1)"
