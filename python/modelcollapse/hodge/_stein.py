"""Gradient-part estimator in Stein form with a finite basis (Hermite polynomials, compiled;
or random Fourier features): E|grad phi|^2 = sup_psi 2E[s.grad psi + lap psi] - E|grad psi|^2
from samples and the model score only (docs/hodge.md "Gradient-part estimator")."""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from .. import _core
from .._types import BACKENDS, SeedLike
from .._validation import (
    as_generator,
    check_allocation,
    check_bool,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from ..reference import hodge as _refh
from ._common import _vector
from ._estimate import RIDGE_GRID, GradientPartEstimate, _solve
from ._network import _network_options, gradient_part_network


def _hermite_system(x, s, loc, scale, degree, threads, backend):
    if backend == "cpp":
        return _core.hermite_stein_system(x, s, loc, scale, degree, threads)
    return _refh.hermite_stein_system(x, s, loc, scale, degree)


def _hermite_eval(x, s, loc, scale, degree, beta, threads, backend):
    if backend == "cpp":
        return _core.hermite_stein_eval(x, s, loc, scale, degree, beta, threads)
    return _refh.hermite_stein_eval(x, s, loc, scale, degree, beta)


def hermite_stein_system(x: Any, score: Any, degree: int, loc: Any = None, scale: Any = None, *, threads: int = 0,
                         backend: str = "cpp") -> tuple[np.ndarray, np.ndarray]:
    """(b, G) for the normalised Hermite basis of total degree <= ``degree``.

    b_k = mean_n [s_n . grad psi_k(x_n) + lap psi_k(x_n)], G_kl = mean_n [grad psi_k . grad psi_l],
    psi_a(x) = prod_i He_{a_i}(z_i) / sqrt(a_i!), z = (x - loc) / scale (defaults: sample mean
    and standard deviation). Order of the basis: :func:`hermite_multi_indices`.
    """
    x = check_finite_array(x, "x", ndim=2)
    s = check_finite_array(score, "score", shape=x.shape)
    degree = check_positive_int(degree, "degree")
    check_choice(backend, "backend", BACKENDS)
    loc = x.mean(axis=0) if loc is None else _vector(loc, x.shape[1], "loc")
    scale = x.std(axis=0) if scale is None else _vector(scale, x.shape[1], "scale")
    if np.any(scale <= 0):
        raise ValueError("scale must be > 0 (are the samples degenerate?)")
    check_allocation(float(math.comb(degree + x.shape[1], x.shape[1])) ** 2 + x.size * 4.0, "degree", "the Gram matrix")
    with np.errstate(over="ignore", invalid="ignore"):
        b, G = _hermite_system(x, s, loc, scale, degree, check_threads(threads), backend)
    if not (np.all(np.isfinite(b)) and np.all(np.isfinite(G))):
        raise ValueError("the Hermite system overflows: x, score, loc or scale too large (or degree too high)")
    return b, G


def hermite_multi_indices(d: int, degree: int) -> np.ndarray:
    """Multi-indices of the Hermite basis (1 <= |a| <= degree), in the kernel's order."""
    d = check_positive_int(d, "d")
    degree = check_positive_int(degree, "degree")
    check_allocation(float(math.comb(degree + d, d)) * d, "d and degree", "the multi-indices")
    return _refh.hermite_multi_indices(d, degree)


def _rff(x, s, loc, scale, omega, phase):
    """Per-sample gradients (n, K, d) and Laplacians (n, K) of psi_k = sqrt(2/K) cos(w_k.z + b_k)."""
    z = (x - loc) / scale
    K = len(phase)
    arg = z @ omega.T + phase
    w = omega / scale  # d/dx of w.z
    amp = np.sqrt(2.0 / K)
    grads = -amp * np.sin(arg)[:, :, None] * w[None]
    lap = -amp * np.cos(arg) * np.sum(w * w, axis=1)[None]
    return grads, lap



@dataclasses.dataclass(frozen=True)
class _Basis:
    """A finite basis psi_1..psi_K on fixed samples (x, s).

    system(idx) -> (b, G) averaged over the rows idx; per_sample(idx, beta) -> per row of idx,
    (s.grad psi + lap psi, |grad psi|^2) for psi = sum_k beta_k psi_k.
    """

    size: int
    system: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
    per_sample: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _hermite_basis(x: np.ndarray, s: np.ndarray, loc: np.ndarray, scale: np.ndarray, degree: Any, threads: int,
                   backend: str) -> _Basis:
    n, d = x.shape
    degree = check_positive_int(degree, "degree")
    K = math.comb(degree + d, d) - 1
    check_allocation(float(K) * K * 4 + float(K) * n, "degree", "the Gram matrices")

    def system(idx):
        return _hermite_system(x[idx], s[idx], loc, scale, degree, threads, backend)

    def per_sample(idx, beta):
        return _hermite_eval(x[idx], s[idx], loc, scale, degree, beta, threads, backend)

    return _Basis(K, system, per_sample)


def _rff_basis(x: np.ndarray, s: np.ndarray, loc: np.ndarray, scale: np.ndarray, n_features: Any, bandwidth: Any,
               seed: SeedLike) -> _Basis:
    n, d = x.shape
    K = check_positive_int(n_features, "n_features")
    check_allocation(float(K) * K * 4 + 3.0 * K * n * d, "n_features", "the features and Gram matrices")
    bw = check_real(bandwidth, "bandwidth", low=1e-150, high=1e150)
    rng = as_generator(seed)
    omega = rng.standard_normal((K, d)) / bw
    phase = rng.uniform(0, 2 * np.pi, K)

    def system(idx):
        g, lap = _rff(x[idx], s[idx], loc, scale, omega, phase)
        m = len(idx)
        flat = g.transpose(0, 2, 1).reshape(-1, K)
        return (np.einsum("nkd,nd->k", g, s[idx]) + lap.sum(0)) / m, flat.T @ flat / m

    def per_sample(idx, beta):
        g, lap = _rff(x[idx], s[idx], loc, scale, omega, phase)
        gb = np.einsum("nkd,k->nd", g, beta)
        return np.sum(s[idx] * gb, axis=1) + lap @ beta, np.sum(gb * gb, axis=1)

    return _Basis(K, system, per_sample)


def _choose_ridge(basis: _Basis, idx: np.ndarray) -> float:
    """The ridge of :data:`RIDGE_GRID` with the best 2-fold cross-fitted objective on the rows
    idx (a split inside the fitting half: the evaluation half stays untouched)."""
    m = len(idx)
    parts = (idx[: m // 2], idx[m // 2:])
    systems = [basis.system(q) for q in parts]
    scores = []
    for r in RIDGE_GRID:
        val = 0.0
        for (bA, GA), (bB, GB) in ((systems[0], systems[1]), (systems[1], systems[0])):
            beta = _solve(GA, bA, r)
            val += 2 * beta @ bB - beta @ GB @ beta
        scores.append(val)
    return RIDGE_GRID[int(np.argmax(scores))]


@dataclasses.dataclass(frozen=True)
class _CrossFit:
    value: float        # held-out value + correction
    se: float           # of value: held-out noise and correction in quadrature
    lower: float        # held-out value alone
    correction: float   # (beta_A - beta_B)^T G (beta_A - beta_B) / 2
    ridge: float


def _cross_fit(basis: _Basis, n: int, ridge: float | None) -> _CrossFit:
    """Fit beta on one half, evaluate 2 (s.grad psi + lap psi) - |grad psi|^2 per sample on the
    other, both ways; then undo the fit noise's bias. ``ridge`` None: chosen inside each fitting half.

    Why the correction: the objective J(beta) = 2 beta.b - beta^T G beta is quadratic, so for a
    beta_A fitted on half A the held-out value has mean exactly
    J(beta_A) = J(beta_bar) - (beta_A - beta_bar)^T G (beta_A - beta_bar) + 2 (b - G beta_bar).(beta_A - beta_bar),
    beta_bar = E beta_A. With an unregularised or mildly regularised fit the last term is second
    order; the middle one, the fit noise, is first order (about K E|e|^2 / n, negative whatever the
    truth: with truth 0 every held-out value is below 0). beta_A and beta_B are independent
    copies, so E (beta_A - beta_B)^T G (beta_A - beta_B) / 2 is exactly that penalty's mean."""
    all_idx = np.arange(n)
    halves = (all_idx[: n // 2], all_idx[n // 2:])
    vals, vars_, ridges, betas = [], [], [], []
    for fit, ev in (halves, halves[::-1]):
        r = _choose_ridge(basis, fit) if ridge is None else ridge
        ridges.append(r)
        bA, GA = basis.system(fit)
        beta = _solve(GA, bA, r)
        betas.append(beta)
        stein, sq = basis.per_sample(ev, beta)
        f = 2 * stein - sq
        vals.append(f.mean())
        vars_.append(f.var(ddof=1) / len(ev))
    _, G = basis.system(all_idx)
    diff = betas[0] - betas[1]
    correction = max(0.0, 0.5 * float(diff @ G @ diff))
    lower = float(np.mean(vals))
    se_lower = float(0.5 * np.sqrt(vars_[0] + vars_[1]))
    return _CrossFit(value=lower + correction, se=float(np.hypot(se_lower, correction)), lower=lower,
                     correction=correction, ridge=float(np.sqrt(ridges[0] * ridges[1])))


def gradient_part_estimate(x: Any, score: Any, *, basis: str = "hermite", degree: int = 6, n_features: int = 200,
                           bandwidth: float = 1.0, ridge: float | str = "auto", cross_fit: bool = True,
                           truncation: bool = True, seed: SeedLike = 0, threads: int = 0,
                           backend: str = "cpp", network: dict[str, Any] | None = None) -> GradientPartEstimate:
    """Estimate E_p|grad phi|^2 = sup_psi 2E[e.grad psi] - E|grad psi|^2 from samples x ~ p and
    the model score s at x only (Stein: E[e.grad psi] = E[s.grad psi + lap psi]).

    Parameters
    ----------
    x, score : (n, d) arrays
        Samples of p_t and the model score s_theta(t, x) at them (never the true score).
    basis : {"hermite", "rff", "network"}
        Hermite polynomials of the standardised x up to total ``degree`` (compiled
        accumulation), ``n_features`` random Fourier features cos(w.z + b),
        w ~ N(0, I / bandwidth^2), or a small torch MLP psi trained on the variational
        objective (optional extra ``modelcollapse[torch]``; see
        :func:`gradient_part_network`, whose keyword options go in ``network``).
    network : dict, optional
        Options of :func:`gradient_part_network` (width, depth, steps, lr, device, ...);
        only with ``basis="network"``. ``seed`` and ``cross_fit`` are passed on; ``threads``
        and ``backend`` here concern the compiled bases (the network's torch threads are
        ``network={"threads": ...}``).
    ridge : float or "auto"
        eps = ridge * tr(G) / K added to G. "auto" picks it from :data:`RIDGE_GRID` by a
        2-fold split *inside* the fitting half (so the evaluation half stays untouched).
        "auto" maximises the uncorrected held-out value, so it shrinks ``value``: with the
        correction, a ~0 ridge (1e-8) is unbiased and, at degree 4, more accurate (docs/hodge.md,
        section "Ridge and coverage").
    cross_fit : bool
        Fit beta on one half, evaluate 2 beta.b - beta^T G beta on the other, both ways
        (``lower``: a lower bound up to noise, biased down by the fit noise by about
        (basis size) * E|e|^2 / n), then add the unbiased estimate of that bias from the
        two half fits (``correction``): ``value`` = ``lower`` + ``correction`` and ``se``
        covers the correction (docs/hodge.md, section "Bias and error bar").
    truncation : bool
        Also estimate at the next smaller basis (Hermite degree - 2, or half the random
        features) and report the change |value - smaller value| as ``truncation``, the
        allowance for what the basis misses or the ridge shrinks away (``ci_high`` adds
        it). Only with ``cross_fit``.

    Returns
    -------
    GradientPartEstimate
        ``value``, ``se``, ``ci_low``, ``ci_high``, ``lower``, ``correction``,
        ``truncation``, ``plugin``.
    """
    check_choice(basis, "basis", ("hermite", "rff", "network"))
    if basis == "network":
        return gradient_part_network(x, score, cross_fit=cross_fit, seed=seed, **_network_options(network))
    if network is not None:
        raise ValueError("network options are only used with basis='network'")
    x = check_finite_array(x, "x", ndim=2)
    s = check_finite_array(score, "score", shape=x.shape)
    check_choice(backend, "backend", BACKENDS)
    cross_fit = check_bool(cross_fit, "cross_fit")
    auto = isinstance(ridge, str)
    if auto:
        check_choice(ridge, "ridge", ("auto",))
    else:
        ridge = check_real(ridge, "ridge", low=0.0)
    threads = check_threads(threads)
    n, d = x.shape
    if n < 4:
        raise ValueError("need at least 4 samples")
    loc, scale = x.mean(axis=0), x.std(axis=0)
    if np.any(scale <= 0):
        raise ValueError("samples are degenerate (zero spread along an axis)")
    def make(size: Any) -> _Basis:
        return (_hermite_basis(x, s, loc, scale, size, threads, backend) if basis == "hermite"
                else _rff_basis(x, s, loc, scale, size, bandwidth, seed))

    size = degree if basis == "hermite" else n_features
    fns = make(size)
    b, G = fns.system(np.arange(n))
    # in-sample value: with "auto", the smallest ridge of the grid
    plugin_ridge = RIDGE_GRID[0] if auto else cast(float, ridge)
    plugin = float(b @ _solve(G, b, plugin_ridge))
    if not cross_fit:
        return GradientPartEstimate(value=plugin, se=float("nan"), plugin=plugin, basis_size=fns.size, basis=basis,
                                    n=n, ridge=plugin_ridge)
    cf = _cross_fit(fns, n, None if auto else cast(float, ridge))
    trunc = 0.0
    if check_bool(truncation, "truncation"):
        smaller = size - 2 if basis == "hermite" else size // 2
        # the empty basis (degree 0) has value 0
        low = _cross_fit(make(smaller), n, None if auto else cast(float, ridge)).value if smaller >= 1 else 0.0
        # both biases left are downward: a finite basis falls short, and a value that drops as the
        # basis grows is the ridge shrinking an ill-conditioned fit; so the change counts either way
        trunc = abs(cf.value - low)
    return GradientPartEstimate(value=cf.value, se=cf.se, plugin=plugin, basis_size=fns.size, basis=basis, n=n,
                                ridge=cf.ridge, lower=cf.lower, correction=cf.correction, truncation=trunc)
