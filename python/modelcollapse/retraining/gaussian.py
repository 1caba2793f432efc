"""Gaussian retraining: closed-form theory (Bertrand et al.) and Monte Carlo chains.

Theory
------
- Proposition 1 (fully synthetic collapse, unbiased covariance): in 1D
  sigma_{t+1} = sigma_t sqrt(S_t / (n - 1)), S_t ~ chi2_{n-1}, hence
  E[sigma_t] = alpha(n)^t sigma_0 with alpha(n) = sqrt(2/(n-1)) Gamma(n/2) / Gamma((n-1)/2) < 1
  (:func:`alpha`, :func:`expected_std`). In d dimensions E[Sigma_t^{1/2}] <= alpha^t Sigma_0^{1/2}
  (Loewner order, :func:`sqrt_cov_bound`); two exact multivariate facts are also provided:
  E[tr Sigma_t] = tr Sigma_0 (the variance does not collapse in expectation) and
  E[det(Sigma_t)^{1/2}] = kappa(n, d)^t det(Sigma_0)^{1/2} with
  kappa = prod_{i=1..d} E sqrt(chi2_{n-i}) / (n-1)^{d/2} (Bartlett decomposition; :func:`sqrt_det_rate`).
- Mixed data, infinite samples (:func:`mixed_map`): fitting (1/(1+lam)) p_data + (lam/(1+lam)) N(mu_t, Sigma_t)
  gives mu_{t+1} = (mu* + lam mu_t)/(1+lam),
  Sigma_{t+1} = (Sigma* + lam Sigma_t)/(1+lam) + lam/(1+lam)^2 (mu* - mu_t)(mu* - mu_t)^T,
  a contraction to theta* at rate lam/(1+lam) (:func:`contraction_rate`).
- Finite samples, exact conditional expectation (:func:`mixed_map_expected`): with n real
  points (mean m_r, unbiased covariance C_r) and m synthetic ones, N = n + m,
  E[mu'] = (n m_r + m mu)/N, E[Sigma'] = (n-1)/(N-1) C_r + (m/N) Sigma + n m/(N (N-1)) D D^T, D = m_r - mu.
- Theorem 1 (:func:`theorem1_rate`) and Theorem 2 (:func:`theorem2_bound`, :func:`theorem2_plateau`).

Simulation
----------
:func:`simulate_chains` runs thousands of independent chains (C++ kernel, threaded, ARS-7
streams; ``backend="numpy"`` runs the reference twin).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from .._types import BACKENDS
from .._validation import (
    as_seed,
    check_allocation,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from ..recursion import resolve_mixing

_MAX_DRAWS = 1e13   # simulate_chains: normal draws beyond this take hours


# --------------------------------------------------------------------------- theory

def expected_sqrt_chi2(k: Any) -> np.ndarray:
    """E[sqrt(X)] for X ~ chi2_k: sqrt(2) Gamma((k+1)/2) / Gamma(k/2)."""
    k = check_finite_array(k, "k", allow_empty=True)
    if np.any(k <= 0):
        raise ValueError("degrees of freedom k must be > 0")
    return np.sqrt(2.0) * np.exp(gammaln((k + 1) / 2) - gammaln(k / 2))


def _check_ddof(ddof: Any, n_min: Any) -> float:
    """ddof in {0, 1} (or any real in [0, 1]); the smallest sample size must exceed it."""
    ddof = check_real(ddof, "ddof", low=0.0, high=1.0)
    if np.any(np.asarray(n_min) <= ddof):
        raise ValueError(f"n must be > ddof ({ddof:g}), got {n_min}")
    return ddof


def alpha(n: Any, ddof: float = 1.0) -> np.ndarray | float:
    """Proposition 1's collapse rate: E[sigma_{t+1} | sigma_t] = alpha(n) sigma_t.

    A 1D Gaussian refitted on n of its own samples with the variance estimator
    S / (n - ddof) (S the centred sum of squares, S / sigma_t^2 ~ chi2_{n-1}) has
    sigma_{t+1} = sigma_t sqrt(S_t / (n - ddof)), hence

        alpha(n, ddof) = E sqrt(chi2_{n-1}) / sqrt(n - ddof)
                       = sqrt(2 / (n - ddof)) Gamma(n/2) / Gamma((n-1)/2).

    ``ddof=1`` (default, the unbiased variance of Bertrand et al.'s Proposition 1):
    alpha ~ 1 - 1/(4n); ``ddof=0`` (maximum likelihood): alpha(n, 0) = alpha(n, 1)
    sqrt((n-1)/n) ~ 1 - 3/(4n). Both < 1 (docs/retraining.md, section "Gaussian theory").
    The per-round ratios sigma_{t+1}/sigma_t are i.i.d. with this mean, so a Monte Carlo
    check of alpha pools all chains and rounds (the experiment's claim
    ``rg.collapse_step_ratio``); the mean of sigma_t itself is heavy-tailed for large t
    (:func:`std_moment_ratio`).
    """
    n_arr = check_finite_array(n, "n", allow_empty=True)
    if np.any(n_arr < 2):
        raise ValueError(f"n must be >= 2 (samples per round), got {n}")
    # Beyond 1e12 the log-gamma difference loses every digit (alpha = 1 - 1/(4n) to 1e-13).
    if np.any(n_arr > 1e12):
        raise ValueError(f"n must be <= 1e12 (alpha(n) = 1 - 1/(4n) to double precision beyond), got {n}")
    ddof = _check_ddof(ddof, n_arr.min() if n_arr.size else 2)
    out = np.sqrt(2.0 / (n_arr - ddof)) * np.exp(gammaln(n_arr / 2) - gammaln((n_arr - 1) / 2))
    return float(out) if np.ndim(out) == 0 else out


def expected_std(sigma0: float, n: int, t: Any, ddof: float = 1.0) -> np.ndarray | float:
    """E[sigma_t] = alpha(n, ddof)^t sigma_0 for fully synthetic 1D retraining started at sigma_0.

    An identity of expectations (sigma_t = sigma_0 prod of t i.i.d. factors of mean alpha);
    a Monte Carlo mean of sigma_t converges to it slowly for large t because sigma_t is
    heavy-tailed (:func:`std_moment_ratio`, :func:`log_std_moments`).
    """
    t = check_finite_array(t, "t", allow_empty=True)
    if np.any(t < 0):
        raise ValueError("t must be >= 0 (rounds)")
    out = alpha(n, ddof) ** t * check_real(sigma0, "sigma0", low=0.0)
    return float(out) if np.ndim(out) == 0 else out


def log_std_moments(n: int, t: Any, ddof: float = 1.0) -> tuple[np.ndarray | float, np.ndarray | float]:
    """Mean and variance of log(sigma_t / sigma_0) for fully synthetic 1D retraining.

    log sigma_t - log sigma_0 = (1/2) sum_{s<t} log(S_s / (n - ddof)), S_s i.i.d. chi2_{n-1}, and
    E log chi2_k = psi(k/2) + log 2, Var log chi2_k = psi'(k/2); so

        E = (t/2) (psi((n-1)/2) + log(2 / (n - ddof))),   Var = (t/4) psi'((n-1)/2).

    The typical (median) chain shrinks at rate exp(E/t) per round, faster than the mean's
    alpha(n): e.g. n = 5, ddof = 1: exp(-0.1352) = 0.8736 vs alpha = 0.9400
    (docs/retraining.md, section "Heavy tails").
    """
    n = check_positive_int(n, "n", minimum=2)
    ddof = _check_ddof(ddof, n)
    t = check_finite_array(t, "t", allow_empty=True)
    if np.any(t < 0):
        raise ValueError("t must be >= 0 (rounds)")
    k = n - 1
    mean = 0.5 * t * (digamma(k / 2) + math.log(2.0 / (n - ddof)))
    var = 0.25 * t * float(polygamma(1, k / 2))
    if np.ndim(mean) == 0:
        return float(mean), float(var)
    return mean, var


def std_moment_ratio(n: int, t: Any) -> np.ndarray | float:
    """The kurtosis-type ratio E[sigma_t^4] / E[sigma_t^2]^2 = (1 + 2/(n-1))^t (fully synthetic, 1D).

    For fully synthetic 1D retraining, E[(S/k)^2] = 1 + 2/k for S ~ chi2_k (k = n - 1), so
    the ratio grows geometrically (it does not depend on ddof). The Monte Carlo standard
    error of a mean of sigma_t over C chains is itself estimated reliably only while this
    ratio is small compared with C; beyond, the sample mean sits below E[sigma_t] in most
    runs (right-skewed: rare large chains carry the expectation) and its estimated SE is
    too small. The experiment compares means with alpha(n)^t only at rounds with ratio
    <= C / 100 (docs/retraining.md, section "Heavy tails").
    """
    n = check_positive_int(n, "n", minimum=2)
    t = check_finite_array(t, "t", allow_empty=True)
    if np.any(t < 0):
        raise ValueError("t must be >= 0 (rounds)")
    out = (1.0 + 2.0 / (n - 1)) ** t
    return float(out) if np.ndim(out) == 0 else out


def expected_cov_factor(workflow: str, n: int, t: Any, *, n_synthetic: int | None = None,
                        ddof: float = 1.0) -> np.ndarray | float:
    """E[Sigma_t] / Sigma* for the loop's ``replace`` and ``accumulate`` workflows (closed form).

    Round 0 fits n real points from N(mu*, Sigma*); round t >= 1 draws ``n_synthetic`` = m
    points (default n) from the round t-1 model and refits mean and covariance S / (N - ddof)
    (S the scatter matrix of the N training points), as ``GaussianLearner(ddof=ddof)`` in
    :func:`~modelcollapse.retraining.run_retraining`. Any dimension d.

    ``replace`` (train on the m new points only):
        E[Sigma_t] = (n-1)/(n-ddof) ((m-1)/(m-ddof))^t Sigma*: constant for ddof = 1,
        geometric decay (1 - 1/m)^t for the maximum-likelihood ddof = 0.
    ``accumulate`` (real data + every synthetic set so far, N_t = n + t m):
        with Y the new set, S_t = S_{t-1} + S_Y + (N_{t-1} m / N_t)(ybar - mu_{t-1})(...)^T and
        E[S_Y] = (m-1) Sigma_{t-1}, E[(ybar - mu)(...)^T] = Sigma_{t-1}/m, so
        E[S_t] = E[S_{t-1}] (1 + (m - 1 + N_{t-1}/N_t) / (N_{t-1} - ddof)), E[S_0] = (n-1) Sigma*,
        and E[Sigma_t] = E[S_t] / (N_t - ddof). For ddof = 1 the factor tends to a positive
        constant (prod_s (1 - m/(N_s (N_s - 1))) > 0): accumulating does not collapse.

    Returns the scalar factor c_t with E[Sigma_t] = c_t Sigma* (docs/retraining.md, section
    "Replace and accumulate").
    """
    check_choice(workflow, "workflow", ("replace", "accumulate"))
    n = check_positive_int(n, "n", minimum=2)
    m = n if n_synthetic is None else check_positive_int(n_synthetic, "n_synthetic", minimum=2)
    ddof = _check_ddof(ddof, min(n, m))
    t_arr = check_finite_array(t, "t", allow_empty=True)
    if np.any(t_arr < 0) or np.any(t_arr != np.round(t_arr)):
        raise ValueError("t must be whole rounds >= 0")
    t_max = int(t_arr.max()) if t_arr.size else 0
    check_allocation(float(t_max + 1), "t", "the curve")
    c0 = (n - 1) / (n - ddof)
    if workflow == "replace":
        curve = c0 * ((m - 1) / (m - ddof)) ** np.arange(t_max + 1, dtype=float)
    else:
        N = n + m * np.arange(t_max + 1, dtype=float)
        steps = 1.0 + (m - 1 + N[:-1] / N[1:]) / (N[:-1] - ddof)
        scatter = (n - 1) * np.concatenate([[1.0], np.cumprod(steps)])
        curve = scatter / (N - ddof)
    out = curve[t_arr.astype(int)]
    return float(out) if np.ndim(out) == 0 else out


def sqrt_cov_bound(cov0: Any, n: int, t: float) -> np.ndarray:
    """alpha(n)^t Sigma_0^{1/2}: Proposition 1's upper bound (Loewner order) on E[Sigma_t^{1/2}]."""
    t = check_real(t, "t", low=0.0)
    return alpha(check_real(n, "n")) ** t * sqrtm_psd(cov0, "cov0")


def sqrt_det_rate(n: int, d: int) -> float:
    """kappa(n, d) with E[det(Sigma_t)^{1/2}] = kappa^t det(Sigma_0)^{1/2} (fully synthetic, exact).

    kappa(n, 1) = alpha(n).
    """
    n = check_positive_int(n, "n", minimum=2)
    d = check_positive_int(d, "d")
    if n - d < 1:
        raise ValueError(f"need n > d for a non-degenerate fit, got n={n}, d={d}")
    k = n - np.arange(1, d + 1)
    return float(np.exp(np.sum(np.log(expected_sqrt_chi2(k)))) / (n - 1) ** (d / 2))


def sqrtm_psd(cov: Any, name: str = "cov") -> np.ndarray:
    """Symmetric PSD square root (batched over leading axes)."""
    c = check_finite_array(cov, name)
    if c.ndim < 2 or c.shape[-1] != c.shape[-2]:
        raise ValueError(f"{name} must be a (..., d, d) stack of square matrices, got shape {c.shape}")
    if np.abs(c).max() > 1e300:
        raise ValueError(f"{name} has entries too large for an eigendecomposition (|values| > 1e300)")
    w, v = np.linalg.eigh(c)
    return (v * np.sqrt(np.clip(w, 0.0, None))[..., None, :]) @ np.swapaxes(v, -1, -2)


def contraction_rate(synthetic_ratio: float) -> float:
    """lambda / (1 + lambda): the rate at which the infinite-sample mixed map contracts to theta*."""
    lam = check_real(synthetic_ratio, "synthetic_ratio", low=0.0)
    return lam / (1.0 + lam)


def _moments(m0, c0, m0_name, c0_name, m1, c1, m1_name, c1_name):
    """Two (mean, covariance) pairs of one dimension d: (d,) means and (d, d) covariances."""
    out = []
    for m, c, mn, cn in ((m0, c0, m0_name, c0_name), (m1, c1, m1_name, c1_name)):
        mm = check_finite_array(m, mn, ndim=1)
        d = mm.shape[0]
        cc = check_finite_array(c, cn, shape=(d, d))
        out += [mm, cc]
    if out[0].shape != out[2].shape:
        raise ValueError(f"{m0_name} and {m1_name} must have the same dimension, got {out[0].shape} and {out[2].shape}")
    return out


def _finite_theta(mu, cov, names):
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(cov))):
        raise ValueError(f"the parameters overflow: {names} too large")
    return mu, cov


def mixed_map(mean: Any, cov: Any, data_mean: Any, data_cov: Any, synthetic_ratio: float) -> tuple[np.ndarray, np.ndarray]:
    """One step of the infinite-sample mixed retraining map of a Gaussian model.

    The maximum-likelihood Gaussian of (1/(1+lam)) N(mu*, Sigma*)-data + (lam/(1+lam)) N(mu, Sigma)
    (only the first two moments of the data matter).
    """
    lam = check_real(synthetic_ratio, "synthetic_ratio", low=0.0)
    mu, c, mus, data_c = _moments(mean, cov, "mean", "cov", data_mean, data_cov, "data_mean", "data_cov")
    diff = mus - mu
    with np.errstate(over="ignore", invalid="ignore"):
        new_mu = (mus + lam * mu) / (1 + lam)
        new_cov = ((data_c + lam * c) / (1 + lam)
                   + lam / (1 + lam) ** 2 * np.einsum("...i,...j->...ij", diff, diff))
    return _finite_theta(new_mu, new_cov, "mean, cov, data_mean, data_cov or synthetic_ratio")


def iterate_mixed_map(mean0: Any, cov0: Any, data_mean: Any, data_cov: Any, synthetic_ratio: float,
                      rounds: int) -> tuple[np.ndarray, np.ndarray]:
    """theta_0 .. theta_T of the infinite-sample mixed map: means (T+1, d), covs (T+1, d, d)."""
    rounds = check_positive_int(rounds, "rounds", minimum=0)
    mu, cov, _, _ = _moments(mean0, cov0, "mean0", "cov0", data_mean, data_cov, "data_mean", "data_cov")
    check_allocation(float(rounds + 1) * (mu.size + cov.size), "rounds", "the trajectory")
    mus, covs = [mu], [cov]
    for _ in range(rounds):
        mu, cov = mixed_map(mu, cov, data_mean, data_cov, synthetic_ratio)
        mus.append(mu)
        covs.append(cov)
    return np.stack(mus), np.stack(covs)


def mixed_map_expected(mean: Any, cov: Any, real_mean: Any, real_cov: Any, n_real: int,
                       n_synthetic: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact E[theta_{t+1} | theta_t, real data] for one finite-sample round.

    The n real points have mean ``real_mean`` and unbiased covariance ``real_cov``; m synthetic
    points are drawn from N(mean, cov); the refit uses the pooled unbiased covariance.
    As n, m -> inf with m/n = lam this tends to :func:`mixed_map`.
    """
    n = check_positive_int(n_real, "n_real", minimum=1)
    m = check_positive_int(n_synthetic, "n_synthetic", minimum=0)
    N = n + m
    if N < 2:
        raise ValueError("n_real + n_synthetic must be >= 2 (an unbiased covariance)")
    mu, c, mr, rc = _moments(mean, cov, "mean", "cov", real_mean, real_cov, "real_mean", "real_cov")
    D = mr - mu
    with np.errstate(over="ignore", invalid="ignore"):
        e_mu = (n * mr + m * mu) / N
        e_cov = ((n - 1) / (N - 1) * rc + m / N * c + n * m / (N * (N - 1)) * np.einsum("...i,...j->...ij", D, D))
    return _finite_theta(e_mu, e_cov, "mean, cov, real_mean or real_cov")


def theorem1_condition(synthetic_ratio: float, alpha_curv: float, eps: float, lipschitz: float) -> bool:
    """Theorem 1's sufficient condition lambda (1 + L eps / alpha) < 1/2."""
    synthetic_ratio = check_real(synthetic_ratio, "synthetic_ratio", low=0.0)
    alpha_curv = check_real(alpha_curv, "alpha_curv", low=0.0, low_open=True)
    eps = check_real(eps, "eps", low=0.0)
    lipschitz = check_real(lipschitz, "lipschitz", low=0.0)
    return synthetic_ratio * (1 + lipschitz * eps / alpha_curv) < 0.5


def theorem1_rate(synthetic_ratio: float, alpha_curv: float = 1.0, eps: float = 0.0, lipschitz: float = 1.0) -> float:
    """Theorem 1's bound on the Jacobian norm at theta*: lam (alpha + eps L) / (alpha - lam (alpha + eps L)).

    ``alpha_curv`` is the strong-concavity constant of the expected log-likelihood (Assumption
    2, not Proposition 1's alpha(n)), ``eps`` the Wasserstein distance between p_theta* and
    p_data, ``lipschitz`` the constant L of Assumption 1. Raises ValueError when the
    sufficient condition lambda (1 + L eps / alpha) < 1/2 fails (the bound is then >= 1).
    """
    lam = check_real(synthetic_ratio, "synthetic_ratio", low=0.0)
    a = check_real(alpha_curv, "alpha_curv", low=0.0, low_open=True)
    e = check_real(eps, "eps", low=0.0)
    L = check_real(lipschitz, "lipschitz", low=0.0)
    if not theorem1_condition(lam, a, e, L):
        raise ValueError(f"Theorem 1 needs lambda (1 + L eps / alpha) < 1/2 (synthetic_ratio, lipschitz, eps, "
                         f"alpha_curv), got {lam * (1 + L * e / a):.4g}")
    k = lam * (a + e * L)
    return k / (a - k)


def _bound_constants(a, b, delta, eps_opt, initial_error):
    return (check_real(a, "a", low=0.0, high=1e150), check_real(b, "b", low=0.0, low_open=True, high=1e150),
            check_real(delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True),
            check_real(eps_opt, "eps_opt", low=0.0, high=1e150), check_real(initial_error, "initial_error", low=0.0,
                                                                            high=1e150))


def theorem2_bound(t: Any, n: int, rho: float, a: float, b: float = 1.0, delta: float = 0.05,
                   eps_opt: float = 0.0, initial_error: float = 0.0) -> np.ndarray:
    """Theorem 2: (eps_OPT + a/sqrt(n) sqrt(log(b t / delta))) sum_{l<=t} rho^l + rho^t ||theta_0 - theta*||.

    Holds with probability 1 - delta for t > 0 (at t = 0 the bound is the initial error).
    """
    t = check_finite_array(t, "t", allow_empty=True)
    if np.any(t < 0):
        raise ValueError("t must be >= 0 (rounds)")
    rho = check_real(rho, "rho", 0.0, 1.0, high_open=True)
    n = check_positive_int(n, "n")
    a, b, delta, eps_opt, initial_error = _bound_constants(a, b, delta, eps_opt, initial_error)
    stat = a / np.sqrt(n) * np.sqrt(np.log(np.maximum(b * np.maximum(t, 1.0) / delta, 1.0)))
    geom = (1 - rho ** (t + 1)) / (1 - rho)
    with np.errstate(over="ignore", invalid="ignore"):
        out = np.where(t > 0, (eps_opt + stat) * geom + rho ** t * initial_error, initial_error)
    if not np.all(np.isfinite(out)):
        raise ValueError("the bound overflows: a, eps_opt or initial_error too large")
    return out


def theorem2_plateau(n: int, rho: float, a: float, b: float = 1.0, delta: float = 0.05, eps_opt: float = 0.0,
                     t: float = 1.0) -> float:
    """The level (eps_OPT + a/sqrt(n) sqrt(log(b t/delta))) / (1 - rho) the error settles at: ~ 1/sqrt(n)."""
    rho = check_real(rho, "rho", 0.0, 1.0, high_open=True)
    n = check_positive_int(n, "n")
    t = check_real(t, "t", low=0.0, high=1e150)
    a, b, delta, eps_opt, _ = _bound_constants(a, b, delta, eps_opt, 0.0)
    return float((eps_opt + a / math.sqrt(n) * math.sqrt(max(math.log(b * t / delta), 0.0))) / (1 - rho))


# --------------------------------------------------------------------------- simulation

@dataclasses.dataclass
class GaussianChains:
    """Trajectories of independent Gaussian retraining chains.

    ``means`` (C, T+1, d), ``covs`` (C, T+1, d, d); round 0 is the initial fit (or the given
    init). ``n_real`` real points per chain (fixed over rounds), ``n_synthetic`` synthetic
    points per round.
    """

    means: np.ndarray
    covs: np.ndarray
    data_mean: np.ndarray
    data_cov: np.ndarray
    n_real: int
    n_synthetic: int
    synthetic_ratio: float
    seed: int
    backend: str

    @property
    def n_chains(self) -> int:
        return self.means.shape[0]

    @property
    def rounds(self) -> int:
        return self.means.shape[1] - 1

    def to_frame(self) -> Any:
        """Tidy table, one row per chain and round: ``chain``, ``round``, ``mean[i]``,
        ``cov[i,j]``, ``std`` (:meth:`std`) and ``param_error`` (:meth:`param_error`), with
        ``n_real``, ``n_synthetic``, ``synthetic_ratio`` and ``seed`` as constant columns."""
        import pandas as pd

        c, t1, d = self.means.shape
        cols: dict[str, Any] = {"chain": np.repeat(np.arange(c), t1), "round": np.tile(np.arange(t1), c)}
        for i in range(d):
            cols[f"mean[{i}]"] = self.means[..., i].ravel()
        for i in range(d):
            for j in range(d):
                cols[f"cov[{i},{j}]"] = self.covs[..., i, j].ravel()
        cols["std"] = self.std().ravel()
        cols["param_error"] = self.param_error().ravel()
        for key in ("n_real", "n_synthetic", "synthetic_ratio", "seed"):
            cols[key] = getattr(self, key)
        return pd.DataFrame(cols)

    def std(self) -> np.ndarray:
        """sigma_t per chain and round (C, T+1); 1D models only (else the RMS of the
        per-coordinate standard deviations)."""
        var = np.einsum("ctii->cti", self.covs)
        return np.sqrt(var[..., 0]) if self.covs.shape[-1] == 1 else np.sqrt(var.mean(-1))

    def sqrt_cov(self) -> np.ndarray:
        """Sigma_t^{1/2} per chain and round (C, T+1, d, d)."""
        return sqrtm_psd(self.covs)

    def param_error(self) -> np.ndarray:
        """||theta_t - theta*|| with theta = (mu, vec Sigma) and theta* the data law (C, T+1)."""
        dm = self.means - self.data_mean
        dc = (self.covs - self.data_cov).reshape(*self.covs.shape[:2], -1)
        return np.sqrt((dm ** 2).sum(-1) + (dc ** 2).sum(-1))


def simulate_chains(data_mean: Any, data_cov: Any, n: int, rounds: int, n_chains: int, *,
                    synthetic_ratio: float | None = None, real_fraction: float | None = None,
                    n_synthetic: int | None = None, init_mean: Any = None, init_cov: Any = None,
                    seed: int = 0, threads: int = 0, backend: str = "cpp", noise_real: Any = None,
                    noise_synth: Any = None) -> GaussianChains:
    """Run ``n_chains`` independent Gaussian retraining chains.

    Each chain draws its own n real points from N(data_mean, data_cov) once; round 0 fits
    them (or starts at ``init_mean, init_cov``); round t >= 1 draws synthetic points from the
    current model and refits mean and unbiased covariance on the real + synthetic pool.

    Parameters
    ----------
    data_mean, data_cov
        The data law N(mu*, Sigma*) (d,) and (d, d) (SPD).
    n
        Real points per chain (and synthetic points per round when fully synthetic).
    rounds, n_chains
        Number of retraining rounds T and of independent chains C.
    synthetic_ratio, real_fraction
        The mixing (exactly one; see :func:`~modelcollapse.retraining.resolve_mixing`):
        lambda = inf / a = 0 is fully synthetic (Proposition 1); otherwise
        floor(lambda n) synthetic points join the n real ones each round.
    n_synthetic
        Override the number of synthetic points per round.
    init_mean, init_cov
        theta_0 (both or neither); default: the fit on the chain's real points.
    seed, threads
        ARS-7 key (the compiled result does not depend on ``threads``).
    backend
        ``"cpp"`` (compiled kernel) or ``"numpy"`` (:mod:`modelcollapse.reference.retraining`,
        same streams, same results up to rounding).
    noise_real, noise_synth
        Injected standard normals (C, n, d) and (C, T, m, d) replacing the generator.
    """
    mu = check_finite_array(data_mean, "data_mean", ndim=1)
    d = mu.shape[0]
    cov = check_finite_array(data_cov, "data_cov", shape=(d, d))
    if not np.allclose(cov, cov.T, rtol=1e-12, atol=0):
        raise ValueError("data_cov must be symmetric")
    try:
        factor = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("data_cov must be positive definite") from None
    n = check_positive_int(n, "n", minimum=2)
    rounds = check_positive_int(rounds, "rounds", minimum=0)
    n_chains = check_positive_int(n_chains, "n_chains")
    check_allocation(float(n_chains) * (rounds + 1) * (d + d * d), "n_chains/rounds", "the trajectories")
    check_choice(backend, "backend", BACKENDS)
    threads = check_threads(threads)
    lam, _ = resolve_mixing("mix", synthetic_ratio, real_fraction)
    fully = math.isinf(lam)
    m = (n if fully else int(math.floor(lam * n + 1e-9))) if n_synthetic is None else \
        check_positive_int(n_synthetic, "n_synthetic", minimum=0)
    check_allocation(float(threads or 256) * (n + m) * d, "n/n_synthetic", "the per-thread samples")
    if float(n_chains) * rounds * (n + m) * d > _MAX_DRAWS:
        raise ValueError(f"n_chains x rounds x (n + n_synthetic) x d = {float(n_chains) * rounds * (n + m) * d:.3g} "
                         f"draws (at most {_MAX_DRAWS:.0e}, hours); reduce n, n_synthetic, rounds or n_chains")
    if fully and m < 2:
        raise ValueError("fully synthetic retraining needs n_synthetic >= 2")
    if (init_mean is None) != (init_cov is None):
        raise ValueError("give both init_mean and init_cov, or neither")
    im = ic = None
    if init_mean is not None:
        im = check_finite_array(init_mean, "init_mean", shape=(d,))
        ic = check_finite_array(init_cov, "init_cov", shape=(d, d))
    key = as_seed(seed)
    need_real = not (fully and im is not None)
    nr = ns = None
    if noise_real is not None and need_real:
        nr = check_finite_array(noise_real, "noise_real", shape=(n_chains, n, d))
    if noise_synth is not None:
        ns = check_finite_array(noise_synth, "noise_synth", shape=(n_chains, rounds, m, d), allow_empty=True)
    if backend == "cpp":
        from .. import _core

        means, covs = _core.gaussian_chains(mu, factor, im, ic, n if need_real else 0, m, rounds, n_chains, fully,
                                            key, threads, nr, ns)
    else:
        from ..reference import retraining as ref

        means, covs = ref.gaussian_chains(mu, factor, im, ic, n, m, rounds, n_chains, fully, key, nr, ns)
    return GaussianChains(means=np.asarray(means), covs=np.asarray(covs), data_mean=mu, data_cov=cov, n_real=n,
                          n_synthetic=m, synthetic_ratio=lam, seed=key, backend=backend)
