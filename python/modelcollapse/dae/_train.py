"""Two-layer denoising auto-encoder trained by online SGD in high dimension (Cui et al.).

The model (docs/dae.md, "Model and training") is the tied DAE with trainable skip connection

    f(t, x) = b x + (w / sqrt d) sigma(w^T x / sqrt d + p_t v),     w in R^{d x r},

trained with one fresh pair (x_0 ~ N(0, I_d), x_1 ~ target) per step on the loss
mean_{t in G} ||x_1 - f(t, (1 - t) x_0 + t x_1)||^2 (or one t ~ U(0, 1) per step). The
training time is tau = 2 eta n / d. The whole loop runs in C++ (``backend="cpp"``), samples
are drawn inside from counter-based streams so that a replica's trajectory does not depend
on the number of threads; ``backend="numpy"`` runs the step-by-step reference on the same
samples (slow; for checks).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .. import _core
from .._optional import require, torch_device
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
from ..reference import dae as _ref
from ..results import Record
from ._activations import check_activation, core_activation
from ._records import TrainingPath
from ._targets import DaeTarget

# Refuse runs that cannot finish: more SGD steps than this, or more than _MAX_WORK
# multiply-adds (about a day of one core), is a typo, not an experiment.
_MAX_STEPS = 1e12
_MAX_WORK = 1e14
_STEP_OVERHEAD = 200    # per-step cost besides the d r multiply-adds (sampling, bookkeeping)


@dataclasses.dataclass(frozen=True)
class DaeRun(Record):
    """Result of :func:`train` for ``replicas`` independent runs.

    ``w`` (replicas, d, r), ``b`` (replicas,), ``v`` (replicas, r) are the final parameters
    in the original coordinates. The history, recorded every ``record_every`` steps (step 0
    and the last step included), has ``steps`` (n_rec,), ``tau`` = 2 eta steps / d,
    ``Q`` (replicas, n_rec, r, r), ``M`` (replicas, n_rec, K, r), ``G`` (replicas, n_rec, r, R)
    for the observation basis E, ``b_hist`` (replicas, n_rec), ``v_hist`` (replicas, n_rec, r).

    :meth:`path` gives the history of one replica (or the replica mean) as a
    :class:`TrainingPath`, whose fields ``tau, Q, G, M, b, v`` are named as in the theory's
    :func:`modelcollapse.dae_theory.integrate_odes`; :meth:`to_frame` stacks them for all
    replicas (docs/dae.md, "Results").
    """

    w: np.ndarray
    b: np.ndarray
    v: np.ndarray
    steps: np.ndarray
    tau: np.ndarray
    Q: np.ndarray
    M: np.ndarray
    G: np.ndarray
    b_hist: np.ndarray
    v_hist: np.ndarray
    config: dict

    @property
    def replicas(self) -> int:
        return int(self.w.shape[0])

    def path(self, replica: int | None = None) -> TrainingPath:
        """The recorded history of ``replica`` (0..replicas-1), or its mean over the replicas
        when None, under the field names of the theory."""
        if replica is None:
            pick = lambda a: np.asarray(a).mean(axis=0)  # noqa: E731
        else:
            k = check_positive_int(replica, "replica", minimum=0, maximum=self.replicas - 1)
            pick = lambda a: np.asarray(a)[k]  # noqa: E731
        return TrainingPath(tau=self.tau, Q=pick(self.Q), G=pick(self.G), M=pick(self.M), b=pick(self.b_hist),
                            v=pick(self.v_hist))

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the histories: one row per replica and record, with the columns
        ``replica``, ``step`` and those of :meth:`TrainingPath.to_frame` (``tau``, ``Q[i,j]``,
        ``G[i,j]``, ``M[c,j]``, ``b``, ``v[j]``)."""
        frames = []
        for k in range(self.replicas):
            f = self.path(k).to_frame()
            f.insert(0, "step", np.asarray(self.steps))
            f.insert(0, "replica", k)
            frames.append(f)
        return pd.concat(frames, ignore_index=True)


def training_steps(tau: float, d: int, lr: float) -> int:
    """Number of SGD steps n = round(tau d / (2 eta)) reaching training time tau."""
    tau = check_real(tau, "tau", low=0.0)
    d = check_positive_int(d, "d")
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    n = tau * d / (2.0 * lr)
    if not n <= _MAX_STEPS:  # also catches an overflow to inf
        raise ValueError(f"tau too large for lr: tau d / (2 lr) = {n:.3g} steps (at most {_MAX_STEPS:.0e}); "
                         "reduce tau or increase lr")
    return int(round(n))


def _time_schedule(times: Any, time_encoding: Any):
    """(uniform, alpha, beta, p, p0, p1) from ``times`` ("uniform" or a sequence in [0, 1])
    and ``time_encoding`` (p0, p1): p_t = p0 + p1 t."""
    enc = check_finite_array(time_encoding, "time_encoding", ndim=1, shape=(2,))
    p0, p1 = float(enc[0]), float(enc[1])
    if isinstance(times, str):
        check_choice(times, "times", ("uniform",))
        return True, np.zeros(0), np.zeros(0), np.zeros(0), p0, p1
    ts = check_finite_array(np.atleast_1d(times), "times", ndim=1)
    if np.any(ts < 0) or np.any(ts > 1):
        raise ValueError(f"times must lie in [0, 1], got {ts}")
    return False, 1.0 - ts, ts.copy(), p0 + p1 * ts, p0, p1


def train(target: DaeTarget, *, r: int = 2, n_steps: int | None = None, tau: float | None = None,
          lr: float = 0.2, weight_decay: float = 0.0, activation: str = "tanh",
          times: Sequence[float] | str = (0.5,), time_encoding: Sequence[float] = (0.0, 0.0),
          train_b: bool = True, b0: float = 0.0, v0: Any = None, init: Any = "random",
          init_scale: float = 1.0, record_every: int | None = None, observe: Any = None,
          replicas: int = 1, seed: Any = 0, threads: int = 0, backend: str = "cpp",
          device: str | None = None) -> DaeRun:
    """Online SGD of the tied DAE on ``target`` (docs/dae.md, "Model and training").

    Parameters
    ----------
    target : DaeTarget
    r : hidden units (1-64; compiled fast paths for 1-8).
    n_steps, tau : number of steps, or training time tau = 2 eta n / d (give one).
    lr, weight_decay : eta and lambda of the SGD rule.
    activation : "tanh", "relu", "linear", "erf" (erf(h)) or "sigmoid".
    times : time grid G in [0, 1] (loss averaged over it each step) or "uniform" (one
        t ~ U(0, 1) per step). Interpolant alpha_t = 1 - t, beta_t = t.
    time_encoding : (p0, p1), p_t = p0 + p1 t (default 0: no time encoding).
    train_b : False freezes the skip connection at ``b0`` (the mode-collapse remedy).
    v0 : initial time-encoding weights (r,), default 0.
    init : "random" (i.i.d. N(0, init_scale^2) entries, drawn per replica in C++) or a
        warm start (d, r) or (replicas, d, r) array.
    record_every : record statistics every k steps (default: about 200 records).
    observe : (d, R) orthonormal basis E of the observation space for G = w^T E / sqrt d.
    replicas : independent runs (streams 0..replicas-1 of ``seed``), spread over ``threads``.
    backend : "cpp", "numpy" (reference, same samples, one replica at a time; slow) or
        "torch" (optional dependency: replicas batched on ``device``, default CUDA when
        available; its own random numbers, so it agrees with the others in law only).
    """
    if not isinstance(target, DaeTarget):
        raise TypeError(f"target must be a DaeTarget (see isotropic_mixture, gaussian_target, ...), got {type(target).__name__}")
    d = target.d
    r = check_positive_int(r, "r")
    if r > 64:
        raise ValueError(f"r must be <= 64, got {r}")
    lr = check_real(lr, "lr", low=0.0, low_open=True)
    weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
    check_activation(activation)
    check_choice(backend, "backend", ("cpp", "numpy", "torch"))
    if backend == "torch":
        device = torch_device("auto" if device is None else device)  # fail before any work
    if (n_steps is None) == (tau is None):
        raise ValueError("give exactly one of n_steps or tau (training time 2 lr n / d)")
    n = training_steps(tau, d, lr) if tau is not None else check_positive_int(n_steps, "n_steps", minimum=0,
                                                                             maximum=int(_MAX_STEPS))
    replicas = check_positive_int(replicas, "replicas")
    n_times = 1 if isinstance(times, str) else max(1, int(np.size(times)))
    work = float(n) * replicas * (n_times * d * r + _STEP_OVERHEAD)
    if work > _MAX_WORK:
        raise ValueError(f"n_steps/tau and replicas too large: {work:.3g} operations (at most {_MAX_WORK:.0e}, "
                         "hours of compute); reduce n_steps (or tau) or replicas")
    threads = check_threads(threads)
    train_b = check_bool(train_b, "train_b")
    b0 = check_real(b0, "b0")
    init_scale = check_real(init_scale, "init_scale", low=0.0)
    every = max(1, n // 200) if record_every is None else check_positive_int(record_every, "record_every")
    v_init = np.zeros(r) if v0 is None else check_finite_array(v0, "v0", ndim=1, shape=(r,))
    uniform, alpha, beta, p, p0, p1 = _time_schedule(times, time_encoding)
    seed_ = as_seed(seed)
    if observe is None:
        E = np.zeros((d, 0))
    else:
        E = check_finite_array(observe, "observe", ndim=2)
        if E.shape[0] != d:
            raise ValueError(f"observe must have shape (d={d}, R), got {E.shape}")
        if not np.allclose(E.T @ E, np.eye(E.shape[1]), atol=1e-8):
            raise ValueError("observe must have orthonormal columns (use numpy.linalg.qr)")
    n_rec = n // every + 2
    check_allocation(float(replicas) * (2 * d * r + n_rec * (r * r + target.means.shape[0] * r + r * E.shape[1] + r + 1))
                     + (2.0 * n * d if backend != "cpp" else 0.0),
                     "n_steps/record_every/replicas", "the weights and the recorded history")
    E_tr = target.train_coords(E.T).T if target.basis is not None else E
    means_tr = target.train_coords(target.means) if target.means.shape[0] else target.means
    random_init = isinstance(init, str)
    if random_init:
        check_choice(init, "init", ("random",))
        w_start = np.zeros((replicas, d, r))
    else:
        w_start = check_finite_array(init, "init", ndim=(2, 3))
        if w_start.ndim == 2:
            w_start = np.broadcast_to(w_start, (replicas,) + w_start.shape)
        if w_start.shape != (replicas, d, r):
            raise ValueError(f"init must have shape ({d}, {r}) or ({replicas}, {d}, {r}), got {np.shape(init)}")
        if target.basis is not None:
            w_start = np.einsum("ij,kil->kjl", target.basis, w_start)
        w_start = np.ascontiguousarray(w_start)
    data = target.data if target.data is not None else np.zeros((0, d))
    config = dict(d=d, r=r, n_steps=n, lr=lr, weight_decay=weight_decay, activation=activation,
                  times=times if isinstance(times, str) else list(np.atleast_1d(times).astype(float)),
                  time_encoding=[p0, p1], train_b=bool(train_b), b0=b0, init="random" if random_init else "warm",
                  init_scale=init_scale, record_every=every, replicas=replicas, seed=seed_, backend=backend)
    if backend == "cpp":
        opts = _core.DaeTrainOptions()
        opts.lr, opts.weight_decay, opts.train_b = lr, weight_decay, bool(train_b)
        opts.activation = core_activation(activation)
        opts.uniform, opts.alpha, opts.beta, opts.p, opts.p0, opts.p1 = uniform, alpha, beta, p, p0, p1
        opts.seed, opts.n_steps, opts.record_every = seed_, n, every
        opts.random_init, opts.init_scale = random_init, init_scale
        opts.sequential, opts.threads = bool(target.sequential), threads
        out = _core.dae_train(means_tr, target.scales, target.weights, data, w_start, np.full(replicas, b0),
                              np.tile(v_init, (replicas, 1)), np.ascontiguousarray(E_tr), opts)
    elif backend == "torch":
        out = _train_torch(target, means_tr, data, w_start, random_init, init_scale, b0, v_init, seed_, n, every,
                           lr, weight_decay, bool(train_b), activation, uniform, beta, p, p0, p1, E_tr, device)
    else:
        out = _train_numpy(target, means_tr, data, w_start, random_init, init_scale, b0, v_init, seed_, n, every,
                           lr, weight_decay, bool(train_b), activation, uniform, beta, p, p0, p1, E_tr)
    steps = np.asarray(out["steps"], dtype=np.int64)
    _check_diverged(out, steps, n, lr, d)
    w = out["w"]
    if target.basis is not None:
        w = np.einsum("ij,kjl->kil", target.basis, w)
    return DaeRun(w=w, b=np.asarray(out["b"]), v=np.asarray(out["v"]), steps=steps, tau=2.0 * lr * steps / d,
                  Q=out["Q"], M=out["M"], G=out["G"], b_hist=out["b_hist"], v_hist=out["v_hist"], config=config)


def _check_diverged(out: dict, steps: np.ndarray, n: int, lr: float, d: int) -> None:
    """Stop with a message when SGD blew up: the kernels run to the end whatever the
    values, so a too-large learning rate would otherwise come back as all-NaN weights."""
    if all(np.all(np.isfinite(out[k])) for k in ("w", "b", "v")):
        return
    bad = np.zeros(len(steps), dtype=bool)
    for key in ("Q", "b_hist", "v_hist"):
        h = np.asarray(out[key])                              # (replicas, n_rec, ...)
        bad |= ~np.isfinite(h.reshape(h.shape[0], h.shape[1], -1)).all(axis=(0, 2))
    first = int(np.argmax(bad)) if bad.any() else len(steps) - 1
    where = (f"between steps {int(steps[first - 1])} and {int(steps[first])}" if first > 0
             else f"by step {int(steps[first])}")
    if first == 0:
        raise ValueError("the initial weights are not finite: init, init_scale, b0 or v0 too large")
    raise ValueError(f"training diverged: the weights became NaN/inf {where} of {n}; the learning rate "
                     f"lr={lr:g} is too large for this target at d={d} (reduce lr, or add weight_decay; "
                     "or the target, b0, v0, init or init_scale are too large)")


def _train_numpy(target, means_tr, data, w_start, random_init, init_scale, b0, v_init, seed, n, every, lr,
                 weight_decay, train_b, activation, uniform, times, p, p0, p1, E_tr) -> dict:
    """Reference path: the same samples as the C++ kernel (drawn by it), numpy updates."""
    reps, d, r = w_start.shape
    K = means_tr.shape[0]
    steps = sorted(set(list(range(0, n + 1, every)) + [n]))
    rec: dict[str, list] = {k: [] for k in ("Q", "M", "G", "b_hist", "v_hist")}
    ws, bs, vs = [], [], []
    for k in range(reps):
        if random_init:
            w = init_scale * _core.normals(seed, _core.PURPOSE_DAE_INIT, k, 1, d * r)[0].reshape(d, r)
        else:
            w = w_start[k].copy()
        x0s, x1s, ts = _core.dae_draw(means_tr, target.scales, target.weights, data, d, seed, k, n,
                                      bool(target.sequential))
        b, v = b0, v_init.copy()
        hist: dict[str, list] = {key: [] for key in rec}
        done = 0
        for s in steps:
            if s > done:
                w, b, v = _ref.train_on_samples(w, b, v, x0s[done:s], x1s[done:s], ts[done:s] if uniform else None,
                                                lr=lr, weight_decay=weight_decay, train_b=train_b, act=activation,
                                                times=times, p=p, p0=p0, p1=p1)
                done = s
            Q, M, G = _ref.summary_statistics(w, means_tr, E_tr)
            hist["Q"].append(Q)
            hist["M"].append(M if K else np.zeros((0, r)))
            hist["G"].append(G)
            hist["b_hist"].append(b)
            hist["v_hist"].append(v.copy())
        for key in rec:
            rec[key].append(np.array(hist[key]))
        ws.append(w)
        bs.append(b)
        vs.append(v)
    return dict(w=np.array(ws), b=np.array(bs), v=np.array(vs), steps=np.array(steps),
                **{k: np.array(val) for k, val in rec.items()})


def _train_torch(target, means_tr, data, w_start, random_init, init_scale, b0, v_init, seed, n, every, lr,
                 weight_decay, train_b, activation, uniform, times, p, p0, p1, E_tr, device) -> dict:
    """Batched replicas in torch (float64): the reference updates vectorised over replicas."""
    torch = require("torch", "dae.train(backend='torch')")
    dev = device
    gen = torch.Generator(device=dev).manual_seed(int(seed) % (2**63))
    f64 = dict(dtype=torch.float64, device=dev)
    reps, d, r = w_start.shape
    sd = float(np.sqrt(d))
    W = (init_scale * torch.randn(reps, d, r, generator=gen, **f64) if random_init
         else torch.as_tensor(w_start, **f64).clone())
    b = torch.full((reps,), float(b0), **f64)
    v = torch.as_tensor(np.tile(v_init, (reps, 1)), **f64)
    means = torch.as_tensor(means_tr, **f64)
    E = torch.as_tensor(E_tr, **f64)
    has_data = data.shape[0] > 0
    if has_data:
        X = torch.as_tensor(data, **f64)
    else:
        scales = torch.as_tensor(target.scales, **f64)
        wts = torch.as_tensor(target.weights, **f64)
    acts = {"tanh": torch.tanh, "relu": torch.relu, "linear": lambda h: h, "erf": torch.erf, "sigmoid": torch.sigmoid}
    act = acts[activation]
    if not uniform:
        tg_ = torch.as_tensor(times, **f64)[None, :, None]        # (1, m, 1)
        pg_ = torch.as_tensor(p, **f64)[None, :, None]
    steps = sorted(set(list(range(0, n + 1, every)) + [n]))
    rec: dict[str, list] = {k: [] for k in ("Q", "M", "G", "b_hist", "v_hist")}

    def record():
        rec["Q"].append((W.transpose(1, 2) @ W / d).cpu().numpy())
        rec["M"].append((torch.einsum("cd,kdr->kcr", means, W) / sd).cpu().numpy())
        rec["G"].append((W.transpose(1, 2) @ E / sd).cpu().numpy())
        rec["b_hist"].append(b.cpu().numpy().copy())
        rec["v_hist"].append(v.cpu().numpy().copy())

    record()
    for s in range(1, n + 1):
        x0 = torch.randn(reps, d, generator=gen, **f64)
        if has_data:
            idx = (torch.full((reps,), (s - 1) % X.shape[0], device=dev, dtype=torch.long) if target.sequential
                   else torch.randint(0, X.shape[0], (reps,), generator=gen, device=dev))
            x1 = X[idx]
        else:
            c = torch.multinomial(wts, reps, replacement=True, generator=gen)
            x1 = means[c] + scales[c] * torch.randn(reps, d, generator=gen, **f64)
        if uniform:
            t = torch.rand(reps, 1, 1, generator=gen, **f64)
            pt = p0 + p1 * t
        else:
            t, pt = tg_, pg_
        al, be = 1.0 - t, t
        xt = al * x0[:, None, :] + be * x1[:, None, :]                              # (k, m, d)
        m = xt.shape[1]
        h = torch.einsum("kmd,kdr->kmr", xt, W) / sd + pt * v[:, None, :]
        sig = act(h)
        if activation == "tanh":
            dsig = 1.0 - sig * sig
        elif activation == "relu":
            dsig = (h > 0).to(h.dtype)
        elif activation == "linear":
            dsig = torch.ones_like(h)
        elif activation == "erf":
            dsig = 2.0 / np.sqrt(np.pi) * torch.exp(-h * h)
        else:
            dsig = sig * (1.0 - sig)
        e = x1[:, None, :] - b[:, None, None] * xt - torch.einsum("kmr,kdr->kmd", sig, W) / sd
        back = dsig * torch.einsum("kmd,kdr->kmr", e, W) / sd
        grad_w = -2.0 / sd * (torch.einsum("kmd,kmr->kdr", e, sig) + torch.einsum("kmd,kmr->kdr", xt, back)) / m
        grad_b = -2.0 * (e * xt).sum(dim=(1, 2)) / m
        grad_v = -2.0 * (pt * back).sum(dim=1) / m
        W = W - lr * grad_w - lr * weight_decay / d * W
        v = v - lr / d * grad_v - lr * weight_decay / d * v
        if train_b:
            b = b - lr / d**2 * grad_b
        if s in steps:
            record()
    return dict(w=W.cpu().numpy(), b=b.cpu().numpy(), v=v.cpu().numpy(), steps=np.array(steps),
                **{k: np.stack(val, axis=1) for k, val in rec.items()})

