"""Remedies of the retraining loop: transformations of each round's synthetic draw, composable
with every workflow (``run_retraining(remedies=[...])``, docs/retraining.md, section
"Remedies").

A remedy turns a *source* (a callable ``source(k) -> (k, d)`` array: the previous round's
model, possibly already wrapped by earlier remedies; it draws from its own random stream)
into the round's ``n`` synthetic points with ``remedy.draw(source, n, rng)``, ``rng`` being
the remedy's own stream (e.g. for Langevin noise). Remedies are applied in the order given; each one wraps the source built
by the previous ones, so ``[SamplingBias(...), SelfCorrection(...), Verification(...)]``
samples at reduced temperature, corrects, then filters.

- :class:`SamplingBias`: reduced diversity at generation (temperature tau <= 1 and / or
  truncation to the most typical fraction q): the quality-diversity trade-off.
- :class:`SelfCorrection`: a few unadjusted Langevin steps with the *true* score applied to
  every synthetic point before training, after Gillman et al. ("Self-correcting
  self-consuming loops for generative model training").
- :class:`Verification`: keep only the synthetic points a verifier accepts (log-likelihood
  under the true law), at a given acceptance rate or above a threshold, refilled to ``n``.

The evaluation samples the per-round metrics see are drawn from the plain learned model
(``learner.sample``), never through the remedies: the metrics measure what was *learned*.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .._validation import check_finite_array, check_positive_int, check_real

Source = Callable[[int], np.ndarray]


class LearnerSource:
    """The unwrapped source of a round: ``learner.sample(state, k, rng)`` with the round's
    synthetic stream ``rng``."""

    def __init__(self, learner: Any, state: Any, d: int, rng: np.random.Generator) -> None:
        self.learner = learner
        self.state = state
        self.d = d
        self.rng = rng

    def __call__(self, k: int) -> np.ndarray:
        out = self.learner.sample(self.state, k, self.rng)
        return check_finite_array(out, "learner.sample output", ndim=2, shape=(None, self.d), allow_empty=True)


def _shrink(x: np.ndarray, factor: float) -> np.ndarray:
    """Contract a point cloud towards its mean by ``factor``."""
    if len(x) == 0:
        return x
    mu = x.mean(axis=0)
    return mu + factor * (x - mu)


def _mahalanobis_sq(x: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances of the rows of x to their mean, under their covariance
    (pseudo-inverse: a collapsed cloud has a singular covariance)."""
    xc = x - x.mean(axis=0)
    cov = np.atleast_2d(xc.T @ xc / max(len(x) - 1, 1))
    return np.einsum("ni,ij,nj->n", xc, np.linalg.pinv(cov, hermitian=True), xc)


class SamplingBias:
    """Generate with reduced diversity: temperature and / or truncation of the sampler.

    - ``temperature`` tau: a learner with ``sample_at_temperature(state, n, rng,
      temperature)`` samples its own tempered law (``GaussianLearner``: N(mu, tau Sigma);
      ``GMMLearner``: weights ~ w_k^(1/tau) and covariances tau Sigma_k). For any other learner
      (or when this remedy is not the first of the list) the drawn cloud is contracted
      towards its mean by sqrt(tau): exact for a Gaussian, a global contraction (not a
      per-mode sharpening) for a multimodal law.
    - ``truncation`` q: draw ceil(n / q) candidates and keep the n with the smallest
      Mahalanobis distance to the candidates' mean (under their covariance): the
      "truncation trick" (for a Gaussian model the same as truncating the latent norm).

    Parameters
    ----------
    temperature
        tau in (0, 10]; 1 leaves the sampler unchanged, tau < 1 reduces diversity.
    truncation
        q in (0, 1]: the fraction of candidates kept; 1 keeps all.
    """

    name = "sampling_bias"

    def __init__(self, temperature: float = 1.0, truncation: float = 1.0) -> None:
        self.temperature = check_real(temperature, "temperature", low=0.0, high=10.0, low_open=True)
        self.truncation = check_real(truncation, "truncation", low=0.0, high=1.0, low_open=True)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "temperature": self.temperature, "truncation": self.truncation}

    def label(self) -> str:
        return f"bias(tau={self.temperature:g},q={self.truncation:g})"

    def __repr__(self) -> str:
        # the label, so that sweep's checkpoint folder names are the same in every process
        return self.label()

    def _tempered(self, source: Source, k: int) -> np.ndarray:
        tau = self.temperature
        if tau == 1.0:
            return source(k)
        if isinstance(source, LearnerSource) and callable(getattr(source.learner, "sample_at_temperature", None)):
            out = source.learner.sample_at_temperature(source.state, k, source.rng, tau)
            return check_finite_array(out, "learner.sample_at_temperature output", ndim=2, shape=(None, source.d),
                                      allow_empty=True)
        return _shrink(source(k), math.sqrt(tau))

    def draw(self, source: Source, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of ``source`` drawn at the remedy's temperature and truncation (``rng``
        is unused: the remedy is deterministic given its candidates)."""
        if self.truncation == 1.0 or n == 0:
            return self._tempered(source, n)
        k = max(int(math.ceil(n / self.truncation - 1e-9)), n)
        cand = self._tempered(source, k)
        keep = np.argsort(_mahalanobis_sq(cand), kind="stable")[:n]
        return cand[np.sort(keep)]


def _as_field(obj: Any, method: str, name: str) -> Callable[[np.ndarray], np.ndarray]:
    """``obj.method(x)`` when the object has that method (e.g. a GaussianMixture), else ``obj(x)``."""
    fn = getattr(obj, method, None)
    if callable(fn):
        return lambda x: np.asarray(fn(x), dtype=np.float64)
    if callable(obj):
        return lambda x: np.asarray(obj(x), dtype=np.float64)
    raise TypeError(f"{name} must be callable(x) or have a {method}(x) method (e.g. a GaussianMixture), "
                    f"got {type(obj).__name__}")


class SelfCorrection:
    """Self-correction (Gillman et al.): move every synthetic point towards the true law with
    ``steps`` unadjusted Langevin steps of the *true* score before training,

        x <- x + h s*(x) + sqrt(2 h) z,   h = strength / steps,  z ~ N(0, I).

    ``strength`` is the total Langevin time: 0 leaves the samples unchanged; as it grows
    the corrected points approach the true law (its stationary law, up to the O(h) bias
    of the unadjusted scheme). For a true law N(mu*, sigma*^2) each step contracts the mean
    deviation exactly by (1 - h / sigma*^2).

    Parameters
    ----------
    score
        The true score: a callable ``score(x) -> (n, d)`` or an object with a ``score(x)``
        method (e.g. ``GaussianMixture``, whose ``score(x)`` is at t = 0).
    strength
        Total Langevin time s >= 0 (the correction strength).
    steps
        Number of Langevin steps (>= 1).
    """

    name = "self_correction"

    def __init__(self, score: Any, strength: float, steps: int = 10) -> None:
        self._score = _as_field(score, "score", "score")
        self.score_name = type(score).__name__
        self.strength = check_real(strength, "strength", low=0.0, high=1e6)
        self.steps = check_positive_int(steps, "steps", maximum=10**6)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "strength": self.strength, "steps": self.steps, "score": self.score_name}

    def label(self) -> str:
        return f"correct(s={self.strength:g})"

    def __repr__(self) -> str:
        # the label, so that sweep's checkpoint folder names are the same in every process
        return self.label()

    def correct(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """The corrected copy of the points ``x`` (n, d)."""
        x = np.array(x, dtype=np.float64)
        if self.strength == 0.0 or len(x) == 0:
            return x
        h = self.strength / self.steps
        for _ in range(self.steps):
            s = self._score(x)
            if s.shape != x.shape or not np.all(np.isfinite(s)):
                raise ValueError(f"score must return finite values of shape {x.shape}, got shape {s.shape}")
            x = x + h * s + math.sqrt(2.0 * h) * rng.standard_normal(x.shape)
        return x

    def draw(self, source: Source, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points of ``source``, corrected."""
        return self.correct(source(n), rng)


class Verification:
    """Verification / filtering: keep the synthetic points a verifier accepts, refilled to n.

    The verifier scores each candidate by its log-likelihood under the true law. Exactly one
    of:

    - ``acceptance`` r in (0, 1]: draw ceil(n / r) candidates, keep the n with the highest
      log-likelihood (the threshold is the candidates' (1 - r) quantile: the acceptance rate
      is r by construction);
    - ``threshold`` ell: keep candidates with log-likelihood >= ell, drawing further batches
      until n are accepted (at most ``max_candidates_factor`` x n candidates in all, else a
      RuntimeError naming ``threshold``).

    Parameters
    ----------
    logpdf
        The verifier: a callable ``logpdf(x) -> (n,)`` or an object with a ``logpdf(x)``
        method (e.g. the true ``GaussianMixture``).
    acceptance, threshold
        See above.
    max_candidates_factor
        Cap on candidates per accepted point for ``threshold`` (default 100).
    """

    name = "verification"

    def __init__(self, logpdf: Any, acceptance: float | None = None, threshold: float | None = None,
                 max_candidates_factor: int = 100) -> None:
        self._logpdf = _as_field(logpdf, "logpdf", "logpdf")
        self.logpdf_name = type(logpdf).__name__
        if (acceptance is None) == (threshold is None):
            raise ValueError("Verification needs exactly one of acceptance (a rate in (0, 1]) or threshold "
                             "(a log-likelihood)")
        self.acceptance = None if acceptance is None else check_real(acceptance, "acceptance", low=0.0, high=1.0,
                                                                     low_open=True)
        self.threshold = None if threshold is None else check_real(threshold, "threshold")
        self.max_candidates_factor = check_positive_int(max_candidates_factor, "max_candidates_factor")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "acceptance": self.acceptance, "threshold": self.threshold,
                "max_candidates_factor": self.max_candidates_factor, "logpdf": self.logpdf_name}

    def label(self) -> str:
        return f"verify(r={self.acceptance:g})" if self.acceptance is not None else f"verify(ll>={self.threshold:g})"

    def __repr__(self) -> str:
        # the label, so that sweep's checkpoint folder names are the same in every process
        return self.label()

    def _scores(self, x: np.ndarray) -> np.ndarray:
        ll = self._logpdf(x).reshape(-1)
        if ll.shape != (len(x),) or np.any(np.isnan(ll)):
            raise ValueError(f"logpdf must return {len(x)} log-likelihoods (no NaN), got shape {ll.shape}")
        return ll

    def draw(self, source: Source, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` accepted points of ``source``."""
        if n == 0:
            return source(0)
        if self.acceptance is not None:
            k = max(int(math.ceil(n / self.acceptance - 1e-9)), n)
            cand = source(k)
            keep = np.argsort(-self._scores(cand), kind="stable")[:n]
            return cand[np.sort(keep)]
        kept: list[np.ndarray] = []
        got = drawn = 0
        batch = n
        while got < n:
            if drawn >= self.max_candidates_factor * n:
                raise RuntimeError(f"Verification accepted {got} of {drawn} candidates, fewer than n = {n}: "
                                   f"threshold = {self.threshold:g} is too strict for this model")
            cand = source(batch)
            drawn += batch
            acc = cand[self._scores(cand) >= self.threshold]
            kept.append(acc)
            got += len(acc)
            # the next batch aims at the missing points at the acceptance rate seen so far
            rate = max(got / drawn, 1.0 / (self.max_candidates_factor * n))
            batch = int(min(max(math.ceil((n - got) / rate), 1), self.max_candidates_factor * n))
        return np.concatenate(kept)[:n]


REMEDY_TYPES = (SamplingBias, SelfCorrection, Verification)


def check_remedies(remedies: Any) -> tuple[Any, ...]:
    """Validate ``run_retraining(remedies=...)``: None, one remedy or a sequence of them."""
    if remedies is None:
        return ()
    if not isinstance(remedies, Sequence) or isinstance(remedies, str):
        remedies = (remedies,)
    out = tuple(remedies)
    for i, r in enumerate(out):
        if not (callable(getattr(r, "draw", None)) and callable(getattr(r, "config", None))):
            raise TypeError(f"remedies[{i}] must be a remedy (SamplingBias, SelfCorrection, Verification or an "
                            f"object with draw(source, n, rng) and config()), got {type(r).__name__}")
    return out


def remedy_label(remedies: Sequence[Any]) -> str:
    """The ``remedy`` column of the result table: the labels joined by ``+`` (``none`` without)."""
    if not remedies:
        return "none"
    return "+".join(r.label() if callable(getattr(r, "label", None)) else getattr(r, "name", type(r).__name__)
                    for r in remedies)


def draw_synthetic(learner: Any, state: Any, d: int, n: int, source_rng: np.random.Generator,
                   remedies: Sequence[Any], rngs: Sequence[np.random.Generator]) -> np.ndarray:
    """The round's ``n`` synthetic points: the learner's samples passed through the remedies.

    ``source_rng`` drives the learner's own sampling (so a run without remedies draws exactly
    what it drew before remedies existed); ``rngs[i]`` is remedy i's own stream.
    """
    source: Source = LearnerSource(learner, state, d, source_rng)
    if not remedies:
        return source(n)
    for remedy, rng in zip(remedies[:-1], rngs):
        source = _bind(remedy, source, rng)
    out = remedies[-1].draw(source, n, rngs[len(remedies) - 1])
    return check_finite_array(out, "remedy output", ndim=2, shape=(n, d), allow_empty=True)


def _bind(remedy: Any, source: Source, rng: np.random.Generator) -> Source:
    return lambda k: remedy.draw(source, k, rng)
