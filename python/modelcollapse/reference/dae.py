"""Pure-numpy reference for the high-dimensional DAE (docs/dae.md, "Model and training" and "Generation").

Readable textbook form of the updates: the error vector e = x_1 - f(t, x_t) and the
gradients are formed explicitly, then the SGD rule is applied,

    b <- b - (eta / d^2) d_b loss
    w <- w - eta grad_w loss - (eta lambda / d) w
    v <- v - (eta / d) grad_v loss - (eta lambda / d) v

with loss = mean_t || x_1 - f(t, alpha_t x_0 + beta_t x_1) ||^2 and
f(t, x) = b x + (w / sqrt d) sigma(w^T x / sqrt d + p_t v). One step is vectorised over the d
coordinates; the loop over steps is inherently sequential. This module never imports the
compiled core.
"""
from __future__ import annotations

import numpy as np
from scipy.special import erf as _erf

ACTIVATIONS = ("tanh", "relu", "linear", "erf", "sigmoid")


def activation(name: str, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """sigma(h) and sigma'(h) for the activations of the table (erf is erf(h), not erf(h/sqrt2))."""
    h = np.asarray(h, dtype=float)
    if name == "tanh":
        s = np.tanh(h)
        return s, 1.0 - s * s
    if name == "relu":
        return np.maximum(h, 0.0), (h > 0).astype(float)
    if name == "linear":
        return h.copy(), np.ones_like(h)
    if name == "erf":
        return _erf(h), 2.0 / np.sqrt(np.pi) * np.exp(-h * h)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-h))
        return s, s * (1.0 - s)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {name!r}")


def dae_forward(w: np.ndarray, b: float, v: np.ndarray, x: np.ndarray, p_t: float, act: str) -> np.ndarray:
    """f(t, x) for one point x (d,) or a batch (n, d)."""
    d = w.shape[0]
    h = x @ w / np.sqrt(d) + p_t * v
    s, _ = activation(act, h)
    return b * x + s @ w.T / np.sqrt(d)


def sgd_step(w, b, v, x0, x1, alphas, betas, ps, lr, weight_decay=0.0, train_b=True, act="tanh"):
    """One online-SGD step on the pair (x0, x1), loss averaged over the times (alphas, betas, ps).

    Returns new (w, b, v); inputs are not modified.
    """
    d, r = w.shape
    sd = np.sqrt(d)
    grad_w = np.zeros_like(w)
    grad_b = 0.0
    grad_v = np.zeros(r)
    m = len(alphas)
    for al, be, pt in zip(alphas, betas, ps):
        xt = al * x0 + be * x1
        h = w.T @ xt / sd + pt * v
        s, ds = activation(act, h)
        e = x1 - (b * xt + w @ s / sd)                    # residual, (d,)
        back = ds * (w.T @ e / sd)                        # dloss/dh up to -2, (r,)
        grad_w += -2.0 / sd * (np.outer(e, s) + np.outer(xt, back)) / m
        grad_b += -2.0 * (e @ xt) / m
        grad_v += -2.0 * pt * back / m
    w_new = w - lr * grad_w - lr * weight_decay / d * w
    v_new = v - lr / d * grad_v - lr * weight_decay / d * v
    b_new = b - lr / d**2 * grad_b if train_b else b
    return w_new, b_new, v_new


def train_on_samples(w0, b0, v0, x0s, x1s, ts=None, *, lr, weight_decay=0.0, train_b=True, act="tanh",
                     times=(0.5,), p=(0.0,), p0=0.0, p1=0.0):
    """SGD over the given samples. ``ts`` (n,) selects uniform-time mode (alpha=1-t, beta=t,
    p_t = p0 + p1 t); otherwise the fixed grid ``times`` with alpha=1-t, beta=t, p_t=``p``."""
    w, b, v = np.array(w0, dtype=float), float(b0), np.array(v0, dtype=float)
    times = np.asarray(times, dtype=float)
    for s in range(x0s.shape[0]):
        if ts is not None:
            t = float(ts[s])
            al, be, pp = [1.0 - t], [t], [p0 + p1 * t]
        else:
            al, be, pp = 1.0 - times, times, np.broadcast_to(np.asarray(p, dtype=float), times.shape)
        w, b, v = sgd_step(w, b, v, x0s[s], x1s[s], al, be, pp, lr, weight_decay, train_b, act)
    return w, b, v


def summary_statistics(w, means=None, observe=None):
    """Q = w^T w / d, M (K, r) = mu_c^T w / sqrt d, G (r, R) = w^T E / sqrt d."""
    d = w.shape[0]
    Q = w.T @ w / d
    M = None if means is None else np.asarray(means) @ w / np.sqrt(d)
    G = None if observe is None else w.T @ np.asarray(observe) / np.sqrt(d)
    return Q, M, G


def train(means, scales, weights, w0, b0, v0, n_steps, *, lr, rng, weight_decay=0.0, train_b=True, act="tanh",
          times=(0.5,), p=(0.0,)):
    """Online SGD drawing its own samples with numpy (the benchmark baseline):
    x_0 ~ N(0, I), x_1 = mu_c + scales_c * z with c ~ weights."""
    means = np.asarray(means, dtype=float)
    scales = np.asarray(scales, dtype=float)
    d = means.shape[1]
    cum = np.cumsum(weights) / np.sum(weights)
    times = np.asarray(times, dtype=float)
    al, be, pp = 1.0 - times, times, np.broadcast_to(np.asarray(p, dtype=float), times.shape)
    w, b, v = np.array(w0, dtype=float), float(b0), np.array(v0, dtype=float)
    for _ in range(n_steps):
        c = min(int(np.searchsorted(cum, rng.random(), side="right")), len(cum) - 1)
        x0 = rng.standard_normal(d)
        x1 = means[c] + scales[c] * rng.standard_normal(d)
        w, b, v = sgd_step(w, b, v, x0, x1, al, be, pp, lr, weight_decay, train_b, act)
    return w, b, v


def sample(w, v, act, delta, kappa, kstar, noise, p, noise_array):
    """Euler-Maruyama generative sampler, vectorised over samples, on injected noise
    ``noise_array`` (n, steps + 1, d): slice 0 is X_0, slice k + 1 the increment of step k.

    X <- X + delta_k [kstar_k X + kappa_k (w / sqrt d) sigma(w^T X / sqrt d + p_k v)] + noise_k xi_k.
    """
    d = w.shape[0]
    X = np.array(noise_array[:, 0, :], dtype=float)
    for k in range(len(delta)):
        s, _ = activation(act, X @ w / np.sqrt(d) + p[k] * v)
        X = X + delta[k] * (kstar[k] * X + kappa[k] * s @ w.T / np.sqrt(d)) + noise[k] * noise_array[:, k + 1, :]
    return X


def z_sde(Q, v, act, delta, kappa, kstar, noise, p, z0_noise, increments):
    """The r-dimensional process Z_k = w^T X_k / sqrt d (Result B.1), vectorised over samples:
    Z_0 = Q^{1/2} z0_noise, Z <- Z + delta (kstar Z + kappa Q sigma(Z + p v)) + noise Q^{1/2} xi."""
    evals, evecs = np.linalg.eigh(Q)
    root = evecs @ np.diag(np.sqrt(np.clip(evals, 0.0, None))) @ evecs.T
    Z = z0_noise @ root.T
    for k in range(len(delta)):
        s, _ = activation(act, Z + p[k] * v)
        Z = Z + delta[k] * (kstar[k] * Z + kappa[k] * s @ Q.T) + noise[k] * increments[:, k, :] @ root.T
    return Z
