"""Per-round metrics of the retraining loop against independent computations."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import wasserstein_distance

from modelcollapse.retraining import metrics as M


def test_w1_w2_match_sorted_1d():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(300, 1)), rng.normal(1.0, 2.0, size=(300, 1))
    assert M.wasserstein(x, y, 1) == pytest.approx(wasserstein_distance(x[:, 0], y[:, 0]), rel=1e-9)
    w2 = np.sqrt(np.mean((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2))
    assert M.wasserstein(x, y, 2) == pytest.approx(w2, rel=1e-9)  # W2, not W2^2


def test_precision_recall_matches_brute_force():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(150, 2))
    fake = rng.normal(0.7, 1.3, size=(120, 2))

    def brute(a, b, k):  # fraction of b inside the k-NN balls of a
        da = np.linalg.norm(a[:, None] - a[None], axis=-1)
        r = np.sort(da, axis=1)[:, k]
        dab = np.linalg.norm(b[:, None] - a[None], axis=-1)
        return np.mean(np.any(dab <= r[None, :], axis=1))

    p, r = M.precision_recall(real, fake, 4)
    assert p == pytest.approx(brute(real, fake, 4))
    assert r == pytest.approx(brute(fake, real, 4))
    assert M.precision_recall(real, real, 4) == (1.0, 1.0)


def test_backend_can_be_repointed():
    old = dict(M.BACKEND)
    try:
        M.set_metric_backend(wasserstein=lambda x, y, p: 42.0)
        assert M.wasserstein(np.zeros((2, 1)), np.ones((2, 1)), 2) == 42.0
    finally:
        M.BACKEND.update(old)
