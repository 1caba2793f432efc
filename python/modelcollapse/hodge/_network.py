"""Gradient-part estimator with a small torch network psi (optional extra "torch"): the
variational objective 2E[s.grad psi + lap psi] - E|grad psi|^2 maximised over an MLP, with
grad psi and lap psi propagated forward through the layers (docs/hodge.md "Network basis").

torch is imported only when a network is fitted (``modelcollapse._optional.require``): the
rest of :mod:`modelcollapse.hodge` works without it.
"""
from __future__ import annotations

import contextlib
import inspect
import math
import time
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np

from .._optional import require, torch_device
from .._types import SeedLike
from .._validation import (
    as_seed,
    check_allocation,
    check_bool,
    check_choice,
    check_finite_array,
    check_positive_int,
    check_real,
    check_threads,
)
from ._estimate import RIDGE_GRID, GradientPartEstimate, _solve

NETWORK_ACTIVATIONS = ("tanh", "softplus")
NETWORK_LAPLACIANS = ("exact", "hutchinson")
# Rows per chunk of the evaluation passes (bounds the memory of the per-sample Jacobians).
_CHUNK = 8192


def _require_torch() -> ModuleType:
    return require("torch", "the network gradient-part estimator (basis='network', gradient_part_network)")


def _network_options(network: dict[str, Any] | None) -> dict[str, Any]:
    """The options of :func:`gradient_part_network` passed through ``network=`` (checked names)."""
    opts = {} if network is None else network
    if not isinstance(opts, dict):
        raise TypeError(f"network must be a dict of gradient_part_network options, got {type(opts).__name__}")
    allowed = [k for k, p in inspect.signature(gradient_part_network).parameters.items()
               if p.kind == p.KEYWORD_ONLY and k not in ("cross_fit", "seed")]
    bad = sorted(set(opts) - set(allowed))
    if bad:
        raise ValueError(f"unknown network option(s) {bad}; allowed: {allowed} "
                         "(seed and cross_fit are arguments of gradient_part_estimate)")
    return dict(opts)


def _mlp_init(torch, d: int, width: int, depth: int, gen, dev):
    """Weights of psi(z) = w_out . [h_L, z], h_l = act(W_l h_{l-1} + c_l) (the output sees the
    last hidden layer and, as a linear skip, z itself): N(0, 1/fan_in) hidden layers, zero
    output layer (psi = 0 at the start: the objective starts at 0)."""
    params, fan_in = [], d
    for _ in range(depth):
        W = torch.randn(width, fan_in, generator=gen, dtype=torch.float64) / math.sqrt(fan_in)
        c = 0.1 * torch.randn(width, generator=gen, dtype=torch.float64)
        params += [W.to(dev).requires_grad_(), c.to(dev).requires_grad_()]
        fan_in = width
    params.append(torch.zeros(width + d, dtype=torch.float64, device=dev).requires_grad_())
    return params


def _act(torch, a, activation: str):
    """(act, act', act'') at a."""
    if activation == "tanh":
        h = torch.tanh(a)
        d1 = 1 - h * h
        return h, d1, -2 * h * d1
    h = torch.nn.functional.softplus(a)
    d1 = torch.sigmoid(a)
    return h, d1, d1 * (1 - d1)


def _mlp_features(torch, params, x, loc, scale, activation: str):
    """Output features [h, z] (n, w + d) -- the last hidden layer h and the linear skip z --, their
    x-Jacobian (n, d, w + d) and x-Laplacian (n, w + d). Propagated
    forward through the layers (exact; one pass, differentiable in the weights):
    a = W h + c: J_a = J_h W^T, lap_a = lap_h W^T; h' = act(a): J = act'(a) J_a,
    lap = act''(a) |J_a|^2 + act'(a) lap_a (sum over the d input directions)."""
    z = (x - loc) / scale
    h = z
    J: Any = None  # (n, d, fan_in); None means diag(1 / scale) for the input layer
    lap: Any = None
    for W, c in zip(params[:-1:2], params[1:-1:2]):
        a = h @ W.T + c
        if J is None:
            Ja = ((W / scale[None, :]).T)[None]            # (1, d, w), same for all samples
            lap_a = None
        else:
            Ja = J @ W.T
            lap_a = lap @ W.T
        h, d1, d2 = _act(torch, a, activation)
        J = d1[:, None, :] * Ja
        lap = d2 * (Ja * Ja).sum(1) + (0 if lap_a is None else d1 * lap_a)
    n, d = x.shape
    Jz = torch.diag(1 / scale).expand(n, d, d)
    return (torch.cat([h, z], 1), torch.cat([J, Jz], 2),
            torch.cat([lap, torch.zeros(n, d, dtype=lap.dtype, device=lap.device)], 1))


def _mlp_grad_lap(torch, params, x, loc, scale, activation: str):
    """(grad psi (n, d), lap psi (n,)), exact."""
    _, J, lap = _mlp_features(torch, params, x, loc, scale, activation)
    w = params[-1]
    return J @ w, lap @ w


def _mlp_grad_hutchinson(torch, params, x, loc, scale, activation: str, n_probes: int, gen):
    """(grad psi (n, d) by backward autograd, Hutchinson estimate of lap psi (n,)): mean over
    Rademacher probes v of v^T H v, the second directional derivative propagated forward
    (cost independent of d, unbiased)."""
    xg = x.detach().requires_grad_(True)
    n, d = x.shape
    v = (torch.randint(0, 2, (n, n_probes, d), generator=gen, dtype=torch.float64, device="cpu") * 2 - 1).to(x.device)
    h = (xg - loc) / scale
    hv = v / scale          # (n, P, fan_in): first directional derivative
    hvv = None              # second directional derivative
    for W, c in zip(params[:-1:2], params[1:-1:2]):
        a = h @ W.T + c
        av = hv @ W.T
        avv = None if hvv is None else hvv @ W.T
        h, d1, d2 = _act(torch, a, activation)
        hv = d1[:, None, :] * av
        hvv = d2[:, None, :] * av * av + (0 if avv is None else d1[:, None, :] * avv)
    w = params[-1][: h.shape[1]]
    psi = h @ w + ((xg - loc) / scale) @ params[-1][h.shape[1]:]   # the linear skip has no Laplacian
    lap = (hvv @ w).mean(1)
    grad = torch.autograd.grad(psi.sum(), xg, create_graph=True)[0]
    return grad, lap


def _network_objective(torch, params, x, s, loc, scale, activation):
    """Per-sample 2 (s.grad psi + lap psi) - |grad psi|^2 (exact Laplacian, no autograd graph),
    in chunks of rows, as a numpy array."""
    out = []
    with torch.no_grad():
        for i in range(0, x.shape[0], _CHUNK):
            xx, ss = x[i:i + _CHUNK], s[i:i + _CHUNK]
            g, lp = _mlp_grad_lap(torch, params, xx, loc, scale, activation)
            out.append((2 * ((ss * g).sum(1) + lp) - (g * g).sum(1)).cpu().numpy())
    return np.concatenate(out)


def _network_feature_system(torch, params, x, s, loc, scale, activation):
    """(b, G) of the finite-basis problem over the output features [h, z] (for the refit)."""
    k = params[-1].shape[0]
    b = torch.zeros(k, dtype=torch.float64, device=x.device)
    G = torch.zeros(k, k, dtype=torch.float64, device=x.device)
    with torch.no_grad():
        for i in range(0, x.shape[0], _CHUNK):
            xx, ss = x[i:i + _CHUNK], s[i:i + _CHUNK]
            _, J, lp = _mlp_features(torch, params, xx, loc, scale, activation)
            b += torch.einsum("nd,ndw->w", ss, J) + lp.sum(0)
            G += torch.einsum("ndw,ndv->wv", J, J)
    return (b / x.shape[0]).cpu().numpy(), (G / x.shape[0]).cpu().numpy()


def _network_fit_half(torch, x, s, loc, scale, *, width, depth, activation, steps, lr, penalty, batch_size,
                      laplacian, n_probes, val_fraction, eval_every, refit_output, gen, dev, progress, desc):
    """Train psi on (x, s) (a fitting half): Adam on -(2 mean(s.grad psi + lap psi) - mean|grad psi|^2)
    + lambda mean(lap psi^2) over minibatches of the first 1 - val_fraction of the rows, cosine learning-rate decay,
    the parameters with the best objective on the last val_fraction rows kept (early
    stopping); then optionally the output layer refitted in closed form on the training rows
    (beta = (G + eps I)^{-1} b over the learned features, eps from RIDGE_GRID) and kept if
    significantly better on the validation rows (:func:`_refit_output_layer`)."""
    from tqdm.auto import tqdm

    n = x.shape[0]
    n_val = max(2, int(round(val_fraction * n)))
    xt, st, xv, sv = x[: n - n_val], s[: n - n_val], x[n - n_val:], s[n - n_val:]
    m = xt.shape[0]
    params = _mlp_init(torch, x.shape[1], width, depth, gen, dev)
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)

    def objective(xx, ss, ps):
        return float(_network_objective(torch, ps, xx, ss, loc, scale, activation).mean())

    best_val, best_step = objective(xv, sv, params), 0
    best = [p.detach().clone() for p in params]
    bs = min(batch_size, m)
    lam = penalty * float((scale * scale).mean())   # penalty in standardised units (lap scales like 1/length^2)
    for step in tqdm(range(1, steps + 1), desc=desc, disable=not progress, leave=False):
        idx = torch.randint(0, m, (bs,), generator=gen).to(dev)
        xb, sb = xt[idx], st[idx]
        if laplacian == "exact":
            g, lp = _mlp_grad_lap(torch, params, xb, loc, scale, activation)
        else:
            g, lp = _mlp_grad_hutchinson(torch, params, xb, loc, scale, activation, n_probes, gen)
        loss = -(2 * ((sb * g).sum(1) + lp) - (g * g).sum(1)).mean()
        if penalty > 0:   # curvature penalty: the empirical objective alone is unbounded (see docstring)
            loss = loss + lam * (lp * lp).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            val = objective(xv, sv, params)
            if not math.isfinite(val):
                raise FloatingPointError(f"network training diverged at step {step} (try a smaller lr)")
            if val > best_val:
                best_val, best_step = val, step
                best = [p.detach().clone() for p in params]
    params = best
    refit_kept, refit_ridge = False, None   # None: no refit kept
    if refit_output:
        params, val, refit_ridge = _refit_output_layer(torch, params, xt, st, xv, sv, loc, scale, activation, dev)
        if refit_ridge is not None:
            refit_kept, best_val = True, val
    return params, {"best_step": best_step, "val_objective": best_val, "refit_kept": refit_kept,
                    "refit_ridge": refit_ridge}


def _refit_output_layer(torch: ModuleType, params: list, xt: Any, st: Any, xv: Any, sv: Any, loc: Any, scale: Any,
                        activation: str, dev: Any) -> tuple[list, float, float | None]:
    """Refit the output layer in closed form over the learned features on the training rows
    (beta = (G + eps I)^{-1} b, eps from RIDGE_GRID); returns (params, held-out objective,
    ridge kept or None). Conservative: a refit replaces the current output layer only when
    its gain on the held-out rows exceeds 2 standard errors of the paired per-sample
    difference."""
    bT, GT = _network_feature_system(torch, params, xt, st, loc, scale, activation)
    hidden = params[:-1]
    cur = _network_objective(torch, params, xv, sv, loc, scale, activation)
    kept_val, kept_ridge = float("nan"), None
    for r in RIDGE_GRID:
        cand = hidden + [torch.as_tensor(_solve(GT, bT, r), dtype=torch.float64, device=dev)]
        new = _network_objective(torch, cand, xv, sv, loc, scale, activation)
        diff = new - cur
        if diff.mean() > 2 * diff.std(ddof=1) / math.sqrt(len(diff)):
            cur, params, kept_ridge = new, cand, r
            kept_val = float(new.mean())
    return params, kept_val, kept_ridge


def gradient_part_network(x: Any, score: Any, *, width: int = 32, depth: int = 2, activation: str = "tanh",
                          steps: int = 400, lr: float = 1e-2, penalty: float = 1.0, batch_size: int = 512,
                          laplacian: str = "exact", n_probes: int = 2, val_fraction: float = 0.2, eval_every: int = 25,
                          refit_output: bool = True, cross_fit: bool = True,
                          seed: SeedLike = 0, device: str = "cpu", threads: int = 1,
                          progress: bool = False) -> GradientPartEstimate:
    """Estimate E_p|grad phi|^2 with a small MLP psi: R^d -> R trained on the variational
    objective J(psi) = 2 E[s.grad psi + lap psi] - E|grad psi|^2 (Stein form: samples x ~ p
    and the model score s at x only). Needs torch (``pip install 'modelcollapse[torch]'``).

    psi(x) = w . [h(z), z], z = (x - mean) / std of the samples, h the last of ``depth``
    hidden layers of ``width`` tanh (or softplus) units, plus a linear skip; float64. grad psi
    and lap psi are propagated forward through the layers with the activations' first and
    second derivatives (exact, one pass, differentiable in the weights; checked against
    nested autograd in the tests). ``laplacian="hutchinson"`` trains with an unbiased
    ``n_probes``-probe Rademacher estimate v^T (Hess psi) v instead (second directional
    derivative propagated forward, grad psi by backward autograd: cost independent of d, for
    large d); the evaluation always uses the exact Laplacian.

    Why a penalty: on a finite sample the objective is unbounded above over flexible
    functions (psi can put positive curvature at the sample points with small gradients
    there: mean lap psi grows without bound), and an unpenalised network does exactly that
    (training objective -> infinity, held-out objective -> -infinity). Training therefore
    maximises J_n(psi) - lambda mean((lap psi)^2), lambda = ``penalty`` * mean(std^2)
    (the penalty is in standardised units). The penalty only changes which psi is found: the
    evaluated value is always the unpenalised J on held-out samples, so it stays a lower
    bound up to noise.

    Training (per fitting half): Adam (``lr``, cosine decay to 0) for ``steps`` minibatches of
    ``batch_size`` rows drawn from the first 1 - ``val_fraction`` of the half; the weights
    with the best (unpenalised) objective on the held-out rest, checked every ``eval_every``
    steps, are kept (psi = 0, objective 0, is the starting point: a field with no resolvable
    gradient part gives exactly 0); with ``refit_output`` the output layer is then refitted in
    closed form over the learned features (beta = (G + eps I)^{-1} b, eps from
    :data:`RIDGE_GRID`) and kept only if better on the held-out rows by more than 2 standard
    errors of the paired difference.

    Cross-fitting (as for the other bases): train on one half, evaluate J per sample on the
    other, both ways; ``value`` is the mean (an unbiased estimate of J(psi_hat) <= E|grad phi|^2,
    a lower bound up to noise), ``se`` its standard error, ``plugin`` the mean objective on
    the fitting halves (biased up). ``cross_fit=False`` trains on all samples and returns the
    in-sample value (``se`` NaN). Reproducible for a given ``seed`` on CPU (a torch.Generator
    for the initialisation, minibatches and probes; the global torch RNG is not touched).

    Parameters
    ----------
    x, score : (n, d) arrays
        Samples of p_t and the model score at them.
    width, depth, activation : network shape ("tanh" or "softplus").
    steps, lr, batch_size, penalty : training (defaults: 400 Adam steps of 512 rows, lr 1e-2,
        penalty 1).
    laplacian : {"exact", "hutchinson"}; n_probes : probes per sample for "hutchinson".
    val_fraction, eval_every : early stopping on the held-out part of each fitting half.
    refit_output : closed-form refit of the output layer after training.
    seed : int or numpy Generator.
    device : str
        "cpu" (default), "cuda" (raises if CUDA is not available) or "auto".
    threads : int
        torch CPU threads during the fit (restored afterwards; default 1, which is fastest
        for these small networks and makes results independent of the machine); 0 keeps
        torch's setting.
    progress : bool
        tqdm progress bar over the training steps.

    Cost: steps x batch_size x O(depth width^2 d) for training, O(n depth width^2 d) for the
    evaluation; about 2-3 s per fit on one CPU core for d = 2 with the defaults
    (``info["fit_seconds"]`` reports it).
    """
    torch = _require_torch()
    x = check_finite_array(x, "x", ndim=2)
    s = check_finite_array(score, "score", shape=x.shape)
    n, d = x.shape
    train = _check_training(n, d, width=width, depth=depth, activation=activation, steps=steps, lr=lr,
                            penalty=penalty, batch_size=batch_size, laplacian=laplacian, n_probes=n_probes,
                            val_fraction=val_fraction, eval_every=eval_every)
    threads = check_threads(threads)
    check_allocation(float(train["width"]) * (train["width"] * train["depth"] + d + 2)
                     + 4.0 * min(n, _CHUNK) * d * (train["width"] + d) * train["depth"]
                     + 4.0 * min(train["batch_size"], n) * train["n_probes"] * d, "width/depth/batch_size/n_probes",
                     "the network and its Jacobians")   # parameters, and per-sample Jacobians of each layer
    train["refit_output"] = check_bool(refit_output, "refit_output")
    cross_fit = check_bool(cross_fit, "cross_fit")
    train["progress"] = check_bool(progress, "progress")
    dev = _resolve_device(torch, device)
    min_n = 8 if cross_fit else 4
    if n < min_n or (cross_fit and int(round(train["val_fraction"] * (n // 2))) < 2):
        raise ValueError(f"need more samples for the network estimator (got n = {n})")
    loc_np, scale_np = x.mean(axis=0), x.std(axis=0)
    if np.any(scale_np <= 0):
        raise ValueError("samples are degenerate (zero spread along an axis)")
    gen = torch.Generator(device="cpu").manual_seed(as_seed(seed) % (2**63))
    f64 = dict(dtype=torch.float64, device=dev)
    X, S = torch.as_tensor(x, **f64), torch.as_tensor(s, **f64)
    loc, scale = torch.as_tensor(loc_np, **f64), torch.as_tensor(scale_np, **f64)
    t0 = time.perf_counter()
    with _torch_threads(torch, threads):
        vals, vars_, plugins, infos = _cross_fit_network(torch, X, S, loc, scale, cross_fit=cross_fit, gen=gen,
                                                         dev=dev, **train)
    width, depth = train["width"], train["depth"]
    n_params = width * d + width + (depth - 1) * (width * width + width) + width + d
    plugin = float(np.mean(plugins))
    info = {"halves": infos, "fit_seconds": time.perf_counter() - t0, "device": str(dev), "width": width,
            "depth": depth, "activation": activation, "steps": train["steps"], "laplacian": laplacian}
    if not cross_fit:
        return GradientPartEstimate(value=plugin, se=float("nan"), plugin=plugin, basis_size=n_params,
                                    basis="network", n=n, ridge=0.0, info=info)
    value = float(np.mean(vals))
    return GradientPartEstimate(value=value, se=float(0.5 * np.sqrt(vars_[0] + vars_[1])),
                                plugin=plugin, basis_size=n_params, basis="network", n=n, ridge=0.0, info=info,
                                lower=value)


def _check_training(n: int, d: int, *, width: Any, depth: Any, activation: Any, steps: Any, lr: Any, penalty: Any,
                    batch_size: Any, laplacian: Any, n_probes: Any, val_fraction: Any, eval_every: Any
                    ) -> dict[str, Any]:
    """The checked training options of :func:`_network_fit_half`."""
    out: dict[str, Any] = {"width": check_positive_int(width, "width"), "depth": check_positive_int(depth, "depth")}
    check_choice(activation, "activation", NETWORK_ACTIVATIONS)
    out["activation"] = activation
    out["steps"] = check_positive_int(steps, "steps", maximum=10**8)
    out["lr"] = check_real(lr, "lr", low=0.0, low_open=True)
    out["penalty"] = check_real(penalty, "penalty", low=0.0)
    out["batch_size"] = check_positive_int(batch_size, "batch_size", 2)
    check_choice(laplacian, "laplacian", NETWORK_LAPLACIANS)
    out["laplacian"] = laplacian
    out["n_probes"] = check_positive_int(n_probes, "n_probes")
    out["val_fraction"] = check_real(val_fraction, "val_fraction", low=0.0, high=0.5, low_open=True)
    out["eval_every"] = check_positive_int(eval_every, "eval_every")
    return out


def _resolve_device(torch: ModuleType, device: Any) -> Any:
    """torch.device for "cpu", "cuda" (must be available) or "auto"."""
    check_choice(device, "device", ("cpu", "cuda", "auto"))
    return torch_device(device)


@contextlib.contextmanager
def _torch_threads(torch: ModuleType, threads: int) -> Iterator[None]:
    """torch CPU threads set to ``threads`` (0: unchanged) inside the block, restored after."""
    old = torch.get_num_threads()
    if threads > 0:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        if threads > 0:
            torch.set_num_threads(old)


def _cross_fit_network(torch: ModuleType, X: Any, S: Any, loc: Any, scale: Any, *, cross_fit: bool, activation: str,
                       **train: Any) -> tuple[list[float], list[float], list[float], list[dict[str, Any]]]:
    """Train psi on each fitting half (or on all rows) and evaluate the objective per sample on
    the other half: (means, variances of the means, in-sample means, training infos)."""
    n = X.shape[0]
    all_idx = np.arange(n)
    halves = (all_idx[: n // 2], all_idx[n // 2:]) if cross_fit else (all_idx,)
    vals, vars_, plugins, infos = [], [], [], []
    for k, fit in enumerate(halves):
        ev = halves[1 - k] if cross_fit else fit
        params, info = _network_fit_half(torch, X[fit], S[fit], loc, scale, activation=activation,
                                         desc=f"psi network, half {k + 1}", **train)
        plugins.append(float(_network_objective(torch, params, X[fit], S[fit], loc, scale, activation).mean()))
        f = _network_objective(torch, params, X[ev], S[ev], loc, scale, activation)
        vals.append(float(f.mean()))
        vars_.append(float(f.var(ddof=1) / len(ev)))
        infos.append(info)
    return vals, vars_, plugins, infos
