"""Score of a Gaussian-smoothed training set, (1/n) sum_i N(e^{-t} x_i, sigma_t^2 I), in
blocked numpy: queries are processed in blocks so memory stays O(block * n)."""
from __future__ import annotations

import numpy as np

LOG_2PI = np.log(2.0 * np.pi)


def _blocks(m: int, n: int, budget: int = 2**22):
    step = max(1, budget // max(n, 1))
    for start in range(0, m, step):
        yield slice(start, min(m, start + step))


def logpdf_and_score(samples: np.ndarray, y: np.ndarray, t: float, want_score: bool = True):
    """Log density and score of the smoothed empirical law at the rows of y."""
    n, d = samples.shape
    a = np.exp(-t)
    s2 = -np.expm1(-2.0 * t)
    centres = a * samples
    c_sq = np.sum(centres * centres, axis=1)
    logp = np.empty(len(y))
    scores = np.empty_like(y) if want_score else None
    for blk in _blocks(len(y), n):
        yb = y[blk]
        # Squared distances |y - a x_i|^2 by the expansion, clipped at 0 against round-off.
        d2 = np.maximum(np.sum(yb * yb, axis=1)[:, None] + c_sq[None, :] - 2.0 * yb @ centres.T, 0.0)
        logits = -0.5 * d2 / s2
        top = logits.max(axis=1, keepdims=True)
        w = np.exp(logits - top)
        total = w.sum(axis=1)
        logp[blk] = top[:, 0] + np.log(total) - np.log(n) - 0.5 * d * (LOG_2PI + np.log(s2))
        if want_score:
            assert scores is not None  # allocated above when want_score
            scores[blk] = ((w @ centres) / total[:, None] - yb) / s2
    return logp, scores


def score(samples: np.ndarray, y: np.ndarray, t: float) -> np.ndarray:
    return logpdf_and_score(samples, y, t, True)[1]


def logpdf(samples: np.ndarray, y: np.ndarray, t: float) -> np.ndarray:
    return logpdf_and_score(samples, y, t, False)[0]
