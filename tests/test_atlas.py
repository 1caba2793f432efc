"""The collapse atlas (docs/atlas.md): a reduced quick run produces the tidy table, the claims
and the figures; budgets are equal; a broken theory makes its overlay claim fail; the ranking
claim names the best remedy and says when its lead is not significant."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from modelcollapse.experiments import get
from modelcollapse.experiments.atlas import COLUMNS, REMEDIES, _grid, _theory
from modelcollapse.experiments.atlas._setup import LEARNER_REMEDIES, AtlasConfig, data_law

# a small grid: the three cheapest learners, every remedy, 2 rounds, 2 seeds
SMALL = dict(learners=("gaussian", "truncated", "dae"), budget=40, n_eval=60, rounds=2, seeds=2, theory_chains=8,
             mix_real_fraction=0.25)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    exp = get("atlas")
    out = tmp_path_factory.mktemp("atlas")
    config = exp.make_config("quick", SMALL)
    return exp.run(config, out, progress=False), out, config


def test_small_run_writes_table_claims_and_figures(small_run):
    res, out, config = small_run
    assert list(res.table.columns) == COLUMNS
    grid = res.table[res.table["section"] == "grid"]
    # every remedy x learner x round has every metric, with a CI over the 2 seeds
    cells = grid.groupby(["remedy", "learner", "round"])["metric"].apply(set)
    # the part-specific remedies (annealed, fixed-skip) run for their own learner only
    pairs = {(r, lr) for r, lr, _ in cells.index}
    assert pairs == {(r, lr) for r in REMEDIES for lr in SMALL["learners"] if LEARNER_REMEDIES.get(r, lr) == lr}
    assert len(cells) == len(pairs) * (config.rounds + 1)
    for metrics in cells:
        assert {"w2", "precision", "recall", "variance_ratio", "moment_error", "memorization",
                "train_size"} <= metrics
    assert (grid["n"] == 2).all() and (grid["ci_low"] <= grid["mean"]).all()
    theory = res.table[res.table["section"] == "theory"]
    assert np.isfinite(theory["theory"]).all() and {"gaussian", "truncated"} <= set(theory["learner"])
    names = {c.name for c in res.claims}
    assert {"atlas.replace_det_rate", "atlas.replace_mean_error", "atlas.accumulate_mean_error", "atlas.accumulate_cov",
            "atlas.mix_contraction_lam3", "atlas.mix_mean_error_lam3", "atlas.fresh_mean_error_lam3",
            "atlas.temperature_cov_tau0.7", "atlas.truncated_variance", "atlas.best_gaussian",
            "atlas.best_truncated", "atlas.best_dae", "atlas.subsample_error", "atlas.subsample_cov",
            "atlas.annealed_variance", "atlas.fixed_skip_variance"} <= names
    assert (out / "atlas.parquet").exists() and (out / "atlas_claims.parquet").exists()
    assert all(p.exists() for p in res.figures) and len(res.figures) == 3


def test_budgets_are_equal_except_accumulate(small_run):
    """mix and fresh train on a B real + (1 - a) B synthetic = B points (kills: lambda inverted,
    which with a = 1/4 gives 10 + 3 points), accumulate on B (t + 1), every other remedy on B."""
    res, _, config = small_run
    size = res.table[(res.table["metric"] == "train_size") & (res.table["round"] == config.rounds)]
    size = size.groupby("remedy")["mean"].first()
    B = config.budget
    assert size["accumulate"] == B * (config.rounds + 1)
    assert all(size[r] == B for r in size.index if r != "accumulate"), size
    assert set(size.index) == set(REMEDIES)


def _mix_claim(monkeypatch=None, broken=False):
    # gamma = 0.2 and b = 0.9: an annealed schedule far from the constant delta, a fixed b whose
    # variance off W (0.49) is not the trivial 1 of b = 1
    config = AtlasConfig(learners=("gaussian",), remedies=("replace",), budget=60, rounds=2, seeds=5, theory_chains=12,
                         anneal_gamma=0.2, dae_fixed_b=0.9)
    if broken:   # the contraction of the mixed loop taken as lambda instead of lambda / (1 + lambda)
        monkeypatch.setattr(_theory.rt, "mix_mean_contraction", lambda n, lam: lam)
    _, claims = _theory.run_theory(config, data_law(2), list(range(5)))
    return {c.name: c for c in claims}


def test_theory_overlays_hold_and_a_broken_contraction_fails(monkeypatch):
    """With the right theory every overlay holds (5 seeds); with the contraction rate lambda
    (= 1 here, instead of 1/2) the mix overlay fails, and only it changes. The holding
    overlays kill (.ci/mutate.py): the fixed-skip remedy training b (atlas.fixed_skip_variance
    fails: 0.005), the annealed remedy sampling at the constant delta (atlas.annealed_variance
    0.92, not holding), a wrong accumulate-subsample curve."""
    good = _mix_claim()
    assert all(c.verdict == "holds" for c in good.values()), [c for c in good.values() if c.verdict != "holds"]
    bad = _mix_claim(monkeypatch, broken=True)
    assert bad["atlas.mix_contraction_lam1"].verdict == "fails"
    assert all(bad[k].verdict == "holds" for k in bad if not k.startswith("atlas.mix"))


def _runs(values: dict[str, list[float]]) -> pd.DataFrame:
    rows = [dict(remedy=r, learner="gaussian", seed=s, round=3, metric="w2", value=v)
            for r, vals in values.items() for s, v in enumerate(vals)]
    return pd.DataFrame(rows)


def test_ranking_names_the_best_remedy_and_tests_its_lead():
    """Kills: ranking by the largest W2, or an unpaired / wrong-sign difference."""
    config = AtlasConfig(learners=("gaussian",), remedies=("replace", "mix", "accumulate"))
    noise = [0.01, -0.02, 0.015, -0.005, 0.0]
    clear = _runs({"replace": [1.0 + e for e in noise], "mix": [0.5 + e for e in noise],
                   "accumulate": [0.6 + 2 * e for e in noise]})
    order, claims = _grid.ranking(clear, config)
    assert [r for r, _ in order["gaussian"]] == ["mix", "accumulate", "replace"]
    (c,) = claims
    assert c.name == "atlas.best_gaussian" and "(mix," in c.statement and c.verdict == "holds"
    assert c.estimate == pytest.approx(0.1)
    close = _runs({"replace": [1.0, 1.0, 1.0, 1.0, 1.0], "mix": [0.50, 0.70, 0.40, 0.62, 0.55],
                   "accumulate": [0.62, 0.50, 0.60, 0.49, 0.62]})
    (c,) = _grid.ranking(close, config)[1]
    assert c.verdict == "underpowered"


def test_rerun_reuses_every_seed_learner_block(small_run, monkeypatch):
    """Each (seed, learner) block, each seed's theory chains and the figures are units: a rerun
    into the same folder recomputes none of them (kills: the overlays' chains or the figures
    computed outside a unit, counted by their calls), writes a deleted figure back and gives
    the same table and claims (docs/cli.md, "Interrupting and resuming")."""
    from modelcollapse.experiments.atlas import _experiment

    res, out, config = small_run
    calls = []
    for mod, name in ((_theory, "_chain_stats"), (_experiment, "_figures")):
        real = getattr(mod, name)
        monkeypatch.setattr(mod, name, lambda *a, real=real: calls.append(a) or real(*a))
    drawn = (out / "atlas_heatmap.png").read_bytes()
    (out / "atlas_heatmap.png").unlink()
    again = get("atlas").run(config, out, progress=False)
    n_blocks = config.seeds * len(config.learners)
    assert calls == [] and again.units["computed"] == 0
    assert again.units["reused"] == n_blocks + config.seeds + 1        # + the figures
    assert (out / "atlas_heatmap.png").read_bytes() == drawn           # written back from the unit
    pd.testing.assert_frame_equal(again.table, res.table)
    assert [c.to_dict() for c in again.claims] == [c.to_dict() for c in res.claims]


def _hellinger_by_sampling(x, y, n=40_000):
    """H = sqrt(1 - BC) with BC = E_(z ~ p)[sqrt(q(z)/p(z))] over draws of the KDE p of x (an
    independent estimate: no grid), and the standard error of BC."""
    from modelcollapse import metrics
    from modelcollapse.mixture import GaussianMixture

    def as_mixture(s):
        h = metrics.kde_bandwidth(s)
        return GaussianMixture(np.full(len(s), 1.0 / len(s)), s, np.stack([h] * len(s)))

    p, q = as_mixture(x), as_mixture(y)
    z = p.sample(n, seed=11)
    r = np.exp(0.5 * (q.logpdf(z) - p.logpdf(z)))
    return float(np.sqrt(1 - r.mean())), float(r.std() / np.sqrt(n))


@pytest.mark.parametrize("sd", [0.05, 2e-3])
def test_hellinger_of_a_collapsed_cloud_is_a_number(sd):
    """A cloud too narrow for the library's default grid (which raises) gets its Hellinger on
    the grid fitted to it, equal to an independent importance-sampling estimate within 4 SE.
    Kills: the cell volume dropped, the box padded by 1 kernel deviation instead of 6."""
    from modelcollapse import metrics
    from modelcollapse.experiments.atlas._setup import kde_hellinger

    held_out = data_law(2).sample(250, seed=1)
    rng = np.random.default_rng(0)
    x = np.array([0.9, 0.3]) + sd * rng.standard_normal((250, 2)) @ np.array([[1.0, 0.3], [0.0, 0.5]])
    with pytest.raises(ValueError, match="grid spacing"):
        metrics.hellinger(x, held_out)
    h = kde_hellinger(x, held_out)
    ref, se_bc = _hellinger_by_sampling(x, held_out)
    # dH = dBC / (2 H)
    assert abs(h - ref) < 4 * se_bc / (2 * ref), (h, ref, se_bc)
    # where the default grid resolves both, the two computations agree
    wide = np.array([0.9, 0.3]) + 0.5 * rng.standard_normal((250, 2))
    from modelcollapse.experiments.atlas._setup import narrow_frame_hellinger

    assert narrow_frame_hellinger(wide, held_out) == pytest.approx(metrics.hellinger(wide, held_out), abs=2e-4)


def test_a_diverging_run_is_counted_not_raised(monkeypatch):
    """A model that blows up (the loop raises 'diverged') leaves a diverged = 1 row and no
    values; the other remedies of the block run (kills: the error propagating, or every
    error swallowed: a different ValueError still raises)."""
    config = AtlasConfig(learners=("gaussian",), remedies=("replace", "mix"), budget=20, n_eval=20, rounds=1, seeds=1)
    law = data_law(2)
    real_run = _grid.run_retraining

    def run(learner, **kw):
        if kw["workflow"] == "mix":
            raise ValueError(message)
        return real_run(learner, **kw)

    monkeypatch.setattr(_grid, "run_retraining", run)
    message = "training diverged: the weights became NaN/inf"
    block = _grid._learner_block(law, config, _grid.round_metrics(law, config), _grid.metric_backend(config), 0, 0,
                                 "gaussian", None)
    flags = block[block["metric"] == "diverged"].set_index("remedy")["value"]
    assert flags.to_dict() == {"replace": 0.0, "mix": 1.0}
    assert set(block[block["remedy"] == "mix"]["metric"]) == {"diverged"}
    message = "real_data needs at least 2 points"
    with pytest.raises(ValueError, match="at least 2"):
        _grid._learner_block(law, config, _grid.round_metrics(law, config), _grid.metric_backend(config), 0, 0,
                             "gaussian", None)


def test_torch_learners_only_when_asked_and_installed(monkeypatch):
    """quick and default never run the torch learners; ``neural=True`` adds them only where
    torch imports, and naming one without torch says how to install it."""
    from modelcollapse import _optional
    from modelcollapse.experiments.atlas import PRESETS
    from modelcollapse.experiments.atlas._setup import NEURAL, active_learners, make_learner

    for preset in ("quick", "default"):
        assert not set(NEURAL) & set(active_learners(AtlasConfig(**PRESETS[preset])))
    assert PRESETS["paper"]["neural"] is True
    monkeypatch.setattr(_optional, "has", lambda name: False)
    assert active_learners(AtlasConfig(neural=True)) == AtlasConfig().learners
    monkeypatch.setattr(_optional, "has", lambda name: True)
    assert active_learners(AtlasConfig(neural=True))[-2:] == NEURAL
    monkeypatch.undo()
    if not _optional.has("torch"):
        with pytest.raises(ImportError, match="modelcollapse\\[torch\\]"):
            make_learner("ddpm", AtlasConfig())


def test_torch_learners_run_in_the_grid(tmp_path):
    """With torch, ``neural=True`` puts DDPM and flow matching in the grid: each gets its
    budget of training points every round and finite metrics (a wiring test: the paper preset's
    training sizes are not run here, docs/atlas.md, section "Learners")."""
    pytest.importorskip("torch")
    exp = get("atlas")
    config = exp.make_config("quick", dict(learners=("gaussian",), remedies=("replace",), budget=40, n_eval=60,
                                           rounds=1, seeds=2, theory_chains=8, neural=True, neural_samples=400))
    res = exp.run(config, tmp_path, progress=False)
    grid = res.table[(res.table["section"] == "grid") & (res.table["round"] == 1)]
    for learner in ("ddpm", "flow"):
        cell = grid[grid["learner"] == learner].set_index("metric")["mean"]
        assert cell["train_size"] == 40 and cell["diverged"] == 0
        assert np.isfinite(cell[["w2", "variance_ratio", "precision", "recall"]]).all()


def test_heatmap_colours_rank_within_learner_with_metric_direction():
    # one runaway remedy must not flatten the others' colours, and "better" follows the metric:
    # lower for w2, closest to 1 for the variance ratio, higher for recall
    from modelcollapse.experiments.atlas._figures import badness, column_ranks

    w2 = np.array([[0.1, 5.0], [0.2, 1.0], [1e6, 3.0]])
    assert np.array_equal(column_ranks(badness("w2", w2)), [[0, 1], [0.5, 0], [1, 0.5]])
    ratio = np.array([[0.5], [1.1], [3.0], [np.nan]])
    np.testing.assert_array_equal(column_ranks(badness("variance_ratio", ratio)), [[0.5], [0], [1], [np.nan]])
    recall = np.array([[0.5], [0.9], [0.1]])
    assert np.array_equal(column_ranks(badness("recall", recall)), [[0.5], [0], [1]])
