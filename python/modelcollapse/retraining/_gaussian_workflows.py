"""Closed-form error curves of a Gaussian model under every workflow of the retraining loop
(docs/retraining.md, section "Gaussian theory of the workflows").

The learner is ``GaussianLearner(ddof)`` (mean and covariance S / (N - ddof) of its N
training points) and the data law N(mu*, Sigma*) in any dimension d. Everything below is an
identity of expectations over the real data *and* the synthetic draws, exact for finite n
(no large-n approximation), and scale-free: the curves are

    e_t = E||mu_t - mu*||^2 / tr Sigma*   and   c_t = E[Sigma_t] / Sigma*  (a scalar factor).

Round 0 fits n real points: e_0 = 1/n, c_0 = (n - 1)/(n - ddof). In round t >= 1, with m
synthetic points drawn from N(mu_{t-1}, Sigma_{t-1}), ybar their mean (ybar = mu_{t-1} + xi,
E[xi xi^T | past] = Sigma_{t-1}/m):

- ``replace`` (train on the m points): mu_t = ybar, a random walk:
  e_t = e_{t-1} + c_{t-1}/m, c_t = c_{t-1} (m - 1)/(m - ddof). For ddof = 1, m = n:
  e_t = (1 + t)/n, linear growth (the mean's random walk; Shumailov et al.'s drift).
- ``accumulate`` (pool of N_t = n + t m points): mu_t - mu_{t-1} = (m/N_t) xi, martingale
  increments, so e_t = 1/n + sum_{s<=t} m c_{s-1}/N_s^2; the pool's scatter grows by
  E[S_t - S_{t-1}] = (m - 1 + N_{t-1}/N_t) Sigma_{t-1} and c_t = E[S_t] / ((N_t - ddof) tr Sigma*)
  (the same curve as :func:`~modelcollapse.retraining.gaussian.expected_cov_factor`). For m = n, ddof = 1,
  c_t <= 1 gives e_t <= (1/n) sum_{k=1}^{t+1} 1/k^2 < (pi^2/6)/n for every t
  (:func:`accumulate_mean_error_bound`): the Gaussian instance of the pi^2/6 bound of
  Gerstgrasser et al. ("Is model collapse inevitable?").
- ``mix`` (n fixed real points with mean m_r, m = floor(lambda n) synthetic, N = n + m,
  rho = m/N): mu_t - m_r = rho (mu_{t-1} - m_r) + rho xi, so E[mu_t - m_r] = rho^t (mu_0 - m_r)
  (the contraction lambda/(1+lambda) of the deviation, :func:`mix_mean_contraction`), and with
  v_t = E||mu_t - m_r||^2 / tr Sigma*, D = m_r - mu_{t-1}:
  v_t = rho^2 v_{t-1} + m c_{t-1}/N^2,
  c_t = [(n - 1) + (m - 1 + n/N) c_{t-1} + (n m/N) v_{t-1}] / (N - ddof), e_t = 1/n + v_t.
- ``fresh`` (n *new* real points each round + m synthetic): the same pooled-scatter identity
  with a real mean independent of the past:
  e_t = n/N^2 + rho^2 e_{t-1} + m c_{t-1}/N^2,
  c_t = [(n - 1) + (m - 1 + n/N) c_{t-1} + (n m/N)(1/n + e_{t-1})] / (N - ddof),
  converging geometrically to a stationary error (:func:`stationary_error`); lambda = 0
  gives e_t = 1/n, c_t = c_0 for every t.

- ``accumulate-subsample`` (the accumulate pool P_t of N_t = n + t m points, of which B are
  drawn without replacement; round 0 fits the n real points): the model is the subsample's fit,
  so the pool's mean Pbar_t and scatter S_t are tracked next to it, p_t = E||Pbar_t - mu*||^2 /
  tr Sigma*, s_t = E[S_t] / Sigma*. Simple random sampling without replacement gives
  E[mu_t | P_t] = Pbar_t, Cov(mu_t | P_t) = S_t (N_t - B) / (B N_t (N_t - 1)) and
  E[subsample scatter | P_t] = (B - 1) S_t / (N_t - 1), so
  e_t = p_t + s_t (N_t - B) / (B N_t (N_t - 1)),  c_t = (B - 1) s_t / ((N_t - 1)(B - ddof)),
  and the new synthetic set (mean ybar = mu_t + xi, scatter S_Y) moves the pool as
  p_{t+1} = [(N_t^2 + 2 N_t m) p_t + m^2 e_t + m c_t] / N_{t+1}^2,
  s_{t+1} = s_t + (m - 1) c_t + (N_t m / N_{t+1}) (e_t - p_t + c_t / m)
  (E<Pbar_t - mu*, mu_t - Pbar_t> = 0 removes the cross terms). B = N_t would give accumulate.

Sampling bias (``temperature`` tau, synthetic draws from N(mu_{t-1}, tau Sigma_{t-1})) multiplies
every synthetic covariance term by tau: Sigma_{t-1} -> tau Sigma_{t-1} in E[S_Y] and in E[xi xi^T].
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .._validation import check_allocation, check_choice, check_positive_int, check_real

#: The workflows with a closed-form curve.
THEORY_WORKFLOWS = ("replace", "accumulate", "accumulate-subsample", "mix", "fresh")


@dataclasses.dataclass(frozen=True)
class WorkflowCurves:
    """e_t = E||mu_t - mu*||^2 / tr Sigma* (``mean_sq_error``) and c_t = E[Sigma_t] / Sigma*
    (``cov_factor``) for t = 0..rounds, with the settings that produced them."""

    workflow: str
    n: int
    n_synthetic: int
    synthetic_ratio: float
    ddof: float
    mean_sq_error: np.ndarray
    cov_factor: np.ndarray
    temperature: float = 1.0

    @property
    def rounds(self) -> np.ndarray:
        return np.arange(len(self.mean_sq_error))


def _sizes(workflow: str, n: int, n_synthetic: Any, synthetic_ratio: Any) -> tuple[int, float]:
    if workflow in ("mix", "fresh"):
        if n_synthetic is not None:
            raise ValueError(f"n_synthetic is for replace/accumulate; {workflow!r} uses floor(synthetic_ratio * n)")
        if synthetic_ratio is None:
            if workflow == "mix":
                raise ValueError("workflow='mix' needs synthetic_ratio (lambda >= 0, finite; inf is 'replace')")
            synthetic_ratio = 0.0
        lam = check_real(synthetic_ratio, "synthetic_ratio", low=0.0, high=1e12)
        return int(math.floor(lam * n + 1e-9)), lam
    if synthetic_ratio is not None:
        raise ValueError(f"synthetic_ratio is for mix/fresh, not {workflow!r}")
    m = n if n_synthetic is None else check_positive_int(n_synthetic, "n_synthetic", minimum=2)
    return m, math.nan


def _budget(workflow: str, train_budget: Any, n: int, m: int) -> int:
    """B of ``accumulate-subsample`` (default n, at most the round-1 pool n + m, as in the loop)."""
    if workflow != "accumulate-subsample":
        if train_budget is not None:
            raise ValueError(f"train_budget is for workflow='accumulate-subsample', not {workflow!r}")
        return 0
    return n if train_budget is None else check_positive_int(train_budget, "train_budget", minimum=2, maximum=n + m)


def workflow_curves(workflow: str, n: int, rounds: int, *, n_synthetic: int | None = None,
                    synthetic_ratio: float | None = None, ddof: float = 1.0,
                    temperature: float = 1.0, correction_strength: float = 0.0,
                    correction_steps: int = 1, train_budget: int | None = None) -> WorkflowCurves:
    """Exact E||mu_t - mu*||^2 / tr Sigma* and E[Sigma_t] / Sigma* of a Gaussian model under a
    retraining workflow (module docstring; docs/retraining.md, section "Gaussian theory of the
    workflows").

    Parameters
    ----------
    workflow
        ``"replace"``, ``"accumulate"``, ``"accumulate-subsample"``, ``"mix"`` or ``"fresh"``, as in
        :func:`~modelcollapse.recursion.run_retraining` with ``GaussianLearner(ddof)``.
    n
        Real points (round 0, and per round for ``mix`` / ``fresh``).
    rounds
        Last round T (the curves have T + 1 entries).
    n_synthetic
        m for ``replace`` / ``accumulate`` / ``accumulate-subsample`` (default n).
    synthetic_ratio
        lambda for ``mix`` (required, finite) and ``fresh`` (default 0); m = floor(lambda n).
    ddof
        The learner's ddof (0 or 1; any value in [0, 1] is accepted).
    temperature
        tau of the sampling-bias remedy (``SamplingBias(temperature=tau)``: the synthetic
        points are drawn from N(mu_{t-1}, tau Sigma_{t-1}), ``GaussianLearner``'s
        ``sample_at_temperature``): every synthetic covariance term above is multiplied by tau.
    correction_strength, correction_steps
        The self-correction remedy ``SelfCorrection(true_law, strength=s, steps=k)`` with an
        isotropic true law N(mu*, sigma*^2 I), s given in units of sigma*^2 (s / sigma*^2):
        k unadjusted Langevin steps map the synthetic law N(mu, tau Sigma) exactly to
        N(mu* + g (mu - mu*), g^2 tau Sigma + nu sigma*^2 I), g = (1 - s/k)^k,
        nu = 2 (s/k) (1 - g^2) / (1 - (1 - s/k)^2). ``replace``, ``accumulate`` and
        ``accumulate-subsample`` and ``fresh`` only (for ``mix`` the pull towards mu*, not the real mean, needs one more
        moment). s = 0: no correction.
    train_budget
        B of ``accumulate-subsample`` (default n; at most n + m): the points drawn without
        replacement from the pool each round.

    Returns
    -------
    WorkflowCurves
    """
    check_choice(workflow, "workflow", THEORY_WORKFLOWS)
    n = check_positive_int(n, "n", minimum=2)
    rounds = check_positive_int(rounds, "rounds", minimum=0)
    check_allocation(2.0 * (rounds + 1), "rounds", "the curves")
    ddof = check_real(ddof, "ddof", low=0.0, high=1.0)
    tau = check_real(temperature, "temperature", low=0.0, high=10.0, low_open=True)
    m, lam = _sizes(workflow, n, n_synthetic, synthetic_ratio)
    budget = _budget(workflow, train_budget, n, m)
    e = np.empty(rounds + 1)
    c = np.empty(rounds + 1)
    e[0], c[0] = 1.0 / n, (n - 1) / (n - ddof)
    g, noise = _correction(correction_strength, correction_steps, workflow)
    if workflow == "accumulate":
        scatter = n - 1.0    # E[S_t] / tr Sigma*, S_t the pool's scatter matrix
        for t in range(1, rounds + 1):
            prev, pool = n + (t - 1) * m, n + t * m
            w = g ** 2 * tau * c[t - 1] + noise     # the synthetic points' covariance factor
            scatter += (m - 1 + prev / pool) * w + (prev * m / pool) * (1 - g) ** 2 * e[t - 1]
            c[t] = scatter / (pool - ddof)
            e[t] = ((prev + m * g) / pool) ** 2 * e[t - 1] + m * w / pool ** 2
    elif workflow == "accumulate-subsample":
        p, s = 1.0 / n, n - 1.0     # the pool's mean error and scatter (module docstring)
        for t in range(1, rounds + 1):
            prev, pool = n + (t - 1) * m, n + t * m
            w = g ** 2 * tau * c[t - 1] + noise     # the synthetic points' covariance factor
            # the new set's mean is mu* + g (mu_{t-1} - mu*) + xi, E||xi||^2 = w / m
            s += (m - 1) * w + (prev * m / pool) * (g ** 2 * e[t - 1] - 2 * g * p + p + w / m)
            p = ((prev ** 2 + 2 * prev * m * g) * p + m ** 2 * g ** 2 * e[t - 1] + m * w) / pool ** 2
            e[t] = p + s * (pool - budget) / (budget * pool * (pool - 1))
            c[t] = (budget - 1) * s / ((pool - 1) * (budget - ddof))
    elif workflow == "replace":
        for t in range(1, rounds + 1):
            w = g ** 2 * tau * c[t - 1] + noise
            e[t] = g ** 2 * e[t - 1] + w / m
            c[t] = w * (m - 1) / (m - ddof)
    elif workflow == "fresh":
        N = n + m
        for t in range(1, rounds + 1):
            w = g ** 2 * tau * c[t - 1] + noise
            c[t] = ((n - 1) + (m - 1 + n / N) * w + (n * m / N) * (1.0 / n + g ** 2 * e[t - 1])) / (N - ddof)
            e[t] = n / N ** 2 + (m * g / N) ** 2 * e[t - 1] + m * w / N ** 2
    else:
        N = n + m
        rho = m / N
        v = 0.0   # mix: E||mu_t - m_r||^2 / tr Sigma*
        for t in range(1, rounds + 1):
            c[t] = ((n - 1) + tau * (m - 1 + n / N) * c[t - 1] + (n * m / N) * v) / (N - ddof)
            v = rho ** 2 * v + tau * m * c[t - 1] / N ** 2
            e[t] = 1.0 / n + v
    return WorkflowCurves(workflow, n, m, lam, ddof, e, c, tau)


def _correction(strength: Any, steps: Any, workflow: str) -> tuple[float, float]:
    """(g, nu): the mean factor and the added covariance factor of k ULA steps of total time s
    (units of sigma*^2) with the true score of N(mu*, sigma*^2 I) (docstring of
    :func:`workflow_curves`)."""
    s = check_real(strength, "correction_strength", low=0.0, high=1e6)
    k = check_positive_int(steps, "correction_steps", maximum=10**6)
    if s == 0.0:
        return 1.0, 0.0
    if workflow == "mix":
        raise ValueError("correction_strength > 0 has no closed form for workflow='mix' here "
                         "(replace, accumulate and fresh only)")
    h = s / k
    if not h < 2.0:
        raise ValueError(f"correction_strength / correction_steps = {h:g} must be < 2 (the Langevin step is unstable)")
    a2 = (1.0 - h) ** 2
    g = (1.0 - h) ** k
    nu = 2.0 * h * k if a2 == 1.0 else 2.0 * h * (1.0 - g ** 2) / (1.0 - a2)
    return g, nu


def mix_mean_contraction(n: int, synthetic_ratio: float) -> float:
    """rho = m / (n + m), m = floor(lambda n): E[mu_t - m_r] = rho^t (mu_0 - m_r) for ``mix``
    (m_r the real data's mean, mu_0 any start, e.g. through ``FixedStart``); it equals the
    infinite-sample rate lambda/(1+lambda) (:func:`~modelcollapse.retraining.gaussian.contraction_rate`)
    whenever lambda n is a whole number."""
    n = check_positive_int(n, "n", minimum=1)
    lam = check_real(synthetic_ratio, "synthetic_ratio", low=0.0, high=1e12)
    m = int(math.floor(lam * n + 1e-9))
    return m / (n + m)


def accumulate_mean_error_bound(n: int) -> float:
    """(pi^2/6) / n: for ``accumulate`` with n_synthetic = n and ddof = 1,
    E||mu_t - mu*||^2 <= (pi^2/6) tr Sigma* / n for every round t (module docstring), whereas
    ``replace`` grows as (1 + t) tr Sigma* / n."""
    n = check_positive_int(n, "n", minimum=2)
    return math.pi ** 2 / 6.0 / n


def stationary_error(workflow: str, n: int, synthetic_ratio: float, ddof: float = 1.0,
                     temperature: float = 1.0) -> tuple[float, float]:
    """The limits (e_inf, c_inf) of :func:`workflow_curves` for ``mix`` and ``fresh`` (the
    fixed point of their linear recursion, solved exactly; same arguments).

    For ``mix`` e_inf = 1/n + v_inf; for ``fresh`` e_inf is the stationary error of the fresh
    data loop (lambda = 0: (1/n, (n-1)/(n-ddof))).
    """
    check_choice(workflow, "workflow", ("mix", "fresh"))
    n = check_positive_int(n, "n", minimum=2)
    ddof = check_real(ddof, "ddof", low=0.0, high=1.0)
    tau = check_real(temperature, "temperature", low=0.0, high=10.0, low_open=True)
    m, _ = _sizes(workflow, n, None, synthetic_ratio)
    N = n + m
    rho = m / N
    a = tau * (m - 1 + n / N) / (N - ddof)
    b = (n * m / N) / (N - ddof)
    # x = (e or v, c):  x_e = rho^2 x_e + (m/N^2) c + k_e,  c = a c + b x_e + k_c
    k_e = 0.0 if workflow == "mix" else n / N ** 2
    k_c = (n - 1) / (N - ddof) + (0.0 if workflow == "mix" else b / n)
    A = np.array([[1.0 - rho ** 2, -tau * m / N ** 2], [-b, 1.0 - a]])
    x_e, c_inf = np.linalg.solve(A, np.array([k_e, k_c]))
    return (float(1.0 / n + x_e) if workflow == "mix" else float(x_e)), float(c_inf)
