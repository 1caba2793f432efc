"""Per-round metrics of the retraining loop against independent computations, the metric
backend passed explicitly, and the package layout of modelcollapse.recursion (no cycle, no
global state, the old import paths still work)."""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

import modelcollapse.recursion as R
from modelcollapse.retraining import GaussianLearner


def test_w1_w2_match_sorted_1d():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 1)), rng.normal(1.0, 2.0, size=(300, 1))
    backend = R.MetricBackend()
    assert backend.wasserstein(x, y, 1) == pytest.approx(wasserstein_distance(x[:, 0], y[:, 0]), rel=1e-9)
    w2 = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert backend.wasserstein(x, y, 2) == pytest.approx(w2, rel=1e-9)  # W2, not W2^2
    assert R.exact_wasserstein(x, y, 2) == backend.wasserstein(x, y, 2)


def test_precision_recall_matches_brute_force():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(150, 2))
    fake = rng.normal(0.7, 1.3, size=(120, 2))

    def brute(a, b, k):  # fraction of b inside the k-NN balls of a
        da = np.linalg.norm(a[:, None] - a[None], axis=-1)
        r = np.sort(da, axis=1)[:, k]
        dab = np.linalg.norm(b[:, None] - a[None], axis=-1)
        return np.mean(np.any(dab <= r[None, :], axis=1))

    p, r = R.MetricBackend().precision_recall(real, fake, 4)
    assert p == pytest.approx(brute(real, fake, 4))
    assert r == pytest.approx(brute(fake, real, 4))
    assert R.knn_precision_recall(real, real, 4) == (1.0, 1.0)


def test_metric_backend_is_passed_explicitly():
    """A run's distances come from its own MetricBackend; other runs are unaffected."""
    real = np.random.default_rng(2).normal(size=(60, 2))
    fake = R.MetricBackend(wasserstein=lambda x, y, p: 42.0 + p, precision_recall=lambda r, f, k: (0.25, 0.75))
    res = R.run_retraining(GaussianLearner(), real, 1, synthetic_ratio=1.0, metrics=("w1", "w2", "precision_recall"),
                           progress=False, metric_backend=fake)
    w = res.wide()
    assert list(w["w1"]) == [43.0, 43.0] and list(w["w2"]) == [44.0, 44.0]
    assert list(w["precision"]) == [0.25, 0.25] and list(w["recall"]) == [0.75, 0.75]
    plain = R.run_retraining(GaussianLearner(), real, 1, synthetic_ratio=1.0, metrics=("w2",), progress=False).wide()
    assert np.all(plain["w2"] < 5.0)
    # the backend does not enter the stored configuration (resume does not depend on it)
    assert res.config == R.run_retraining(GaussianLearner(), real, 1, synthetic_ratio=1.0,
                                          metrics=("w1", "w2", "precision_recall"), progress=False).config
    with pytest.raises(TypeError, match="metric_backend must be a MetricBackend"):
        R.run_retraining(GaussianLearner(), real, 1, synthetic_ratio=1.0, progress=False, metric_backend=max)
    with pytest.raises(TypeError, match="MetricBackend.wasserstein must be callable"):
        R.MetricBackend(wasserstein=3.0)


def test_round_context_defaults_to_the_exact_distances():
    x = np.zeros((3, 1))
    ctx = R.RoundContext(round=0, state=None, initial_state=None, samples=x, eval_data=x + 1.0, real_data=x,
                         train_data=x, learner=None, rng=np.random.default_rng(0))
    assert ctx.metric_backend == R.MetricBackend()
    assert R.get_metric("w1")(ctx) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown metric"):
        R.get_metric("w3")


_PKG = Path(R.__file__).parent


def _relative_imports(module: str) -> set[str]:
    """The sibling modules a module of the package imports (at any level of the file)."""
    tree = ast.parse((_PKG / f"{module}.py").read_text(encoding="utf-8"))
    return {node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_package_layers_have_no_cycle_and_no_mutable_backend_global():
    assert _relative_imports("_context") == set()
    assert _relative_imports("_checkpoints") == set()
    assert _relative_imports("_metrics") == {"_context"}
    assert _relative_imports("_remedies") == set()
    assert _relative_imports("_workflows") == {"_remedies"}
    assert _relative_imports("_loop") == {"_checkpoints", "_context", "_metrics", "_remedies", "_workflows"}
    for name in ("_context", "_metrics", "_loop", "_checkpoints", "_remedies", "_workflows"):
        mod = importlib.import_module(f"modelcollapse.recursion.{name}")
        assert not hasattr(mod, "BACKEND") and not hasattr(mod, "set_metric_backend")


def test_public_names_are_reexported():
    import modelcollapse.retraining as rt

    for name in R.__all__:
        assert getattr(R, name) is not None
    for name in ("run_retraining", "sweep", "RoundContext", "Learner", "RetrainingResult", "WORKFLOWS",
                 "resolve_mixing", "round_rng", "completed_rounds", "load_round", "METRICS", "default_metrics"):
        assert getattr(rt, name) is getattr(R, name), name
