"""Two-layer denoising auto-encoder trained by online SGD in high dimension (Cui et al.).

The model (spec ``dae.md`` §2) is the tied DAE with trainable skip connection

    f(t, x) = b x + (w / sqrt d) sigma(w^T x / sqrt d + p_t v),     w in R^{d x r},

trained with one fresh pair (x_0 ~ N(0, I_d), x_1 ~ target) per step on the loss
mean_{t in G} ||x_1 - f(t, (1 - t) x_0 + t x_1)||^2 (or one t ~ U(0, 1) per step). The
training time is tau = 2 eta n / d. The whole loop runs in C++ (``backend="cpp"``), samples
are drawn inside from counter-based streams so that a replica's trajectory does not depend
on the number of threads; ``backend="numpy"`` runs the step-by-step reference on the same
samples (slow; for checks).

Targets (:class:`DaeTarget`): K-cluster mixtures with isotropic or diagonal covariances, a
Gaussian with a given covariance spectrum or matrix (trained in its eigenbasis, which is
exact in law because x_0 and the random initialisation are isotropic), the Gaussian with
the covariance of a scikit-learn digits class, and the uniform law on a finite data set
(e.g. samples of a previous generation).
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Any, Sequence

import numpy as np

from . import _core
from ._validation import (as_seed, check_allocation, check_bool, check_choice, check_finite_array, check_positive_int,
                          check_real, check_threads)
from .reference import dae as _ref

ACTIVATIONS = ("tanh", "relu", "linear", "erf", "sigmoid")
# Refuse runs that cannot finish: more SGD steps than this, or more than _MAX_WORK
# multiply-adds (about a day of one core), is a typo, not an experiment.
_MAX_STEPS = 1e12
_MAX_WORK = 1e14
_STEP_OVERHEAD = 200
_MAX_KDE_EVALS = 1e11   # projected_hellinger: grid points x samples (minutes of scipy KDE)    # per-step cost besides the d r multiply-adds (sampling, bookkeeping)
_ACT_CODE = {name: i for i, name in enumerate(ACTIVATIONS)}

__all__ = [
    "ACTIVATIONS", "DaeTarget", "DaeRun", "isotropic_mixture", "diagonal_mixture", "gaussian_target",
    "digits_target", "empirical_target", "train", "training_steps", "sampler_schedule", "generate",
    "fit_generation", "sample_generation", "DaeLearner", "projected_hellinger", "digits_covariance",
    "SamplerSchedule",
]


# ----------------------------------------------------------------------------- targets
@dataclasses.dataclass(frozen=True)
class DaeTarget:
    """Law of the data x_1.

    Attributes
    ----------
    means : (K, d) centroids in the original coordinates (K = 0 for a data set target).
    scales : (K, d) standard deviations per coordinate *in the training basis*.
    weights : (K,) mixture weights (sum 1).
    basis : (d, d) orthogonal matrix or None. When given, the target covariance of cluster k
        is basis diag(scales[k]^2) basis^T and training runs in the coordinates basis^T x.
    data : (n, d) or None. When given, x_1 is a uniformly drawn row of ``data`` (or, with
        ``sequential``, row s mod n at step s: one pass over the data when n_steps <= n).
    variances : (K,) isotropic variances when every cluster is isotropic, else None.
    """

    means: np.ndarray
    scales: np.ndarray
    weights: np.ndarray
    basis: np.ndarray | None = None
    data: np.ndarray | None = None
    variances: np.ndarray | None = None
    sequential: bool = False

    @property
    def d(self) -> int:
        return int(self.data.shape[1] if self.data is not None else self.means.shape[1])

    @property
    def rho_bar(self) -> float:
        """Average covariance eigenvalue E_c[tr Sigma(c)] / d (for a data set: of the rows)."""
        if self.data is not None:
            x = self.data - self.data.mean(axis=0)
            return float(np.mean(np.sum(x * x, axis=1)) / self.d)
        return float(np.sum(self.weights * np.mean(self.scales**2, axis=1)))

    def train_coords(self, x: np.ndarray) -> np.ndarray:
        """Vectors (rows of x, or columns when x is (d, m)) in the training basis."""
        x = check_finite_array(x, "x", ndim=(1, 2), allow_empty=True)
        if self.basis is not None and x.shape[-1] != self.d:
            raise ValueError(f"x must have {self.d} columns (the dimension), got shape {x.shape}")
        return x if self.basis is None else x @ self.basis

    def sample(self, n: int, seed: Any = None) -> np.ndarray:
        """n samples of the target (numpy generator; for metrics, not for training)."""
        n = check_positive_int(n, "n", minimum=0)
        check_allocation(2.0 * n * self.d, "n", "the samples")
        rng = np.random.default_rng(as_seed(seed))
        if self.data is not None:
            return self.data[rng.integers(0, self.data.shape[0], n)]
        comp = rng.choice(len(self.weights), size=n, p=self.weights)
        z = rng.standard_normal((n, self.d)) * self.scales[comp]
        if self.basis is not None:
            z = z @ self.basis.T
        return self.means[comp] + z


def _weights(weights: Any, K: int) -> np.ndarray:
    if weights is None:
        return np.full(K, 1.0 / K)
    w = check_finite_array(weights, "weights", ndim=1, shape=(K,))
    if np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return w / w.sum()


def isotropic_mixture(means: Any, variances: Any = 1.0, weights: Any = None) -> DaeTarget:
    """Mixture sum_k pi_k N(mu_k, rho_k I_d). ``means`` (K, d); ``variances`` scalar or (K,)."""
    mu = check_finite_array(means, "means", ndim=2)
    K, d = mu.shape
    var = np.broadcast_to(check_finite_array(variances, "variances", ndim=(0, 1)), (K,)).astype(float)
    if np.any(var < 0):
        raise ValueError("variances must be >= 0")
    scales = np.repeat(np.sqrt(var)[:, None], d, axis=1)
    return DaeTarget(mu, scales, _weights(weights, K), variances=var.copy())


def diagonal_mixture(means: Any, spectrum: Any, weights: Any = None) -> DaeTarget:
    """Mixture sum_k pi_k N(mu_k, diag(spectrum)) with a shared diagonal spectrum (d,) or
    per-cluster spectra (K, d)."""
    mu = check_finite_array(means, "means", ndim=2)
    K, d = mu.shape
    spec = check_finite_array(spectrum, "spectrum", ndim=(1, 2))
    if spec.shape[-1] != d:
        raise ValueError(f"spectrum must have {d} entries per row (the dimension), got shape {spec.shape}")
    if np.any(spec < 0):
        raise ValueError("spectrum must be >= 0 (variances)")
    scales = np.broadcast_to(np.sqrt(spec), (K, d)).copy()
    return DaeTarget(mu, scales, _weights(weights, K))


def gaussian_target(spectrum: Any = None, covariance: Any = None, mean: Any = None) -> DaeTarget:
    """Gaussian N(mean, Sigma) with Sigma = diag(spectrum) or a full SPD ``covariance``.

    A full covariance is eigendecomposed once; training runs in its eigenbasis (exact in
    law, O(d) per step instead of O(d^2)).
    """
    if (spectrum is None) == (covariance is None):
        raise ValueError("give exactly one of spectrum (d,) or covariance (d, d)")
    basis = None
    if covariance is not None:
        cov = check_finite_array(covariance, "covariance", ndim=2)
        if cov.shape[0] != cov.shape[1]:
            raise ValueError(f"covariance must be square, got shape {cov.shape}")
        if not np.allclose(cov, cov.T, atol=1e-10 * max(1.0, np.abs(cov).max())):
            raise ValueError("covariance must be symmetric")
        evals, basis = np.linalg.eigh(cov)
        if evals.min() < -1e-8 * max(1.0, evals.max()):
            raise ValueError(f"covariance must be positive semi-definite (smallest eigenvalue {evals.min():.3g})")
        order = np.argsort(evals)[::-1]
        spec, basis = np.clip(evals[order], 0.0, None), np.ascontiguousarray(basis[:, order])
    else:
        spec = check_finite_array(spectrum, "spectrum", ndim=1)
        if np.any(spec < 0):
            raise ValueError("spectrum must be >= 0 (variances)")
    d = spec.shape[0]
    mu = np.zeros((1, d)) if mean is None else check_finite_array(mean, "mean", ndim=1, shape=(d,))[None, :]
    return DaeTarget(mu, np.sqrt(spec)[None, :], np.ones(1), basis=basis)


def digits_covariance(digit: int = 7, side: int = 28, scale: float = 300.0) -> np.ndarray:
    """Covariance of one class of scikit-learn's 8x8 digits, upsampled to side x side pixels.

    Preprocessing (documented choice, mirroring Cui et al.'s MNIST recipe): the 8x8 images
    (grey levels 0..16) are rescaled to 0..255, upsampled to ``side`` x ``side`` by bilinear
    interpolation (scipy.ndimage.zoom, order 1), flattened (d = side^2, 784 by default),
    centred, and divided by ``scale`` (300 as in the paper); the empirical covariance of the
    class is returned. Its rank is at most 64, so most eigenvalues vanish.
    """
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digit = check_positive_int(digit, "digit", minimum=0, maximum=9)
    side = check_positive_int(side, "side", minimum=8)
    check_allocation(2.0 * float(side) ** 4, "side", "the (side^2, side^2) covariance")
    scale = check_real(scale, "scale", low=0.0, low_open=True)
    data = load_digits()
    imgs = data.images[data.target == digit] * (255.0 / 16.0)
    up = np.stack([zoom(im, side / 8.0, order=1) for im in imgs]).reshape(len(imgs), -1)
    x = (up - up.mean(axis=0)) / float(scale)
    return x.T @ x / x.shape[0]


def digits_target(digit: int = 7, side: int = 28, scale: float = 300.0) -> DaeTarget:
    """Centred Gaussian with the covariance of a scikit-learn digits class (see
    :func:`digits_covariance`)."""
    return gaussian_target(covariance=digits_covariance(digit, side, scale))


def empirical_target(samples: Any, sequential: bool = False) -> DaeTarget:
    """Uniform law on the rows of ``samples`` (n, d): online SGD then draws rows with
    replacement, or uses them in order when ``sequential`` (true online SGD on a finite
    sample: each row once when n_steps <= n)."""
    x = check_finite_array(samples, "samples", ndim=2)
    return DaeTarget(np.zeros((0, x.shape[1])), np.zeros((0, x.shape[1])), np.zeros(0), data=x,
                     sequential=check_bool(sequential, "sequential"))


# ----------------------------------------------------------------------------- training
@dataclasses.dataclass
class DaeRun:
    """Result of :func:`train` for ``replicas`` independent runs.

    ``w`` (replicas, d, r), ``b`` (replicas,), ``v`` (replicas, r) are the final parameters
    in the original coordinates. The history, recorded every ``record_every`` steps (step 0
    and the last step included), has ``steps`` (n_rec,), ``tau`` = 2 eta steps / d,
    ``Q`` (replicas, n_rec, r, r), ``M`` (replicas, n_rec, K, r), ``G`` (replicas, n_rec, r, R)
    for the observation basis E, ``b_hist`` (replicas, n_rec), ``v_hist`` (replicas, n_rec, r).
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
    """Online SGD of the tied DAE on ``target`` (spec dae.md §2).

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
    check_choice(activation, "activation", ACTIVATIONS)
    check_choice(backend, "backend", ("cpp", "numpy", "torch"))
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
        out = _core.dae_train(means_tr, target.scales, target.weights, data, w_start,
                              np.full(replicas, b0), np.tile(v_init, (replicas, 1)), random_init, init_scale, seed_,
                              n, every, lr, weight_decay, bool(train_b), _ACT_CODE[activation], uniform, alpha,
                              beta, p, p0, p1, np.ascontiguousarray(E_tr), threads,
                              bool(target.sequential))
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
    rec = {k: [] for k in ("Q", "M", "G", "b_hist", "v_hist")}
    ws, bs, vs = [], [], []
    for k in range(reps):
        if random_init:
            w = init_scale * _core.normals(seed, _core.PURPOSE_DAE_INIT, k, 1, d * r)[0].reshape(d, r)
        else:
            w = w_start[k].copy()
        x0s, x1s, ts = _core.dae_draw(means_tr, target.scales, target.weights, data, d, seed, k, n,
                                      bool(target.sequential))
        b, v = b0, v_init.copy()
        hist = {key: [] for key in rec}
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
    try:
        import torch
    except ImportError:
        raise ValueError("backend='torch' needs torch (pip install 'modelcollapse[torch]')") from None
    dev = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
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
    rec = {k: [] for k in ("Q", "M", "G", "b_hist", "v_hist")}

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


# ----------------------------------------------------------------------------- generation
@dataclasses.dataclass(frozen=True)
class SamplerSchedule:
    """Euler grid of the generative SDE (spec dae.md §1, §4) with alpha = 1 - t, beta = t.

    Steps k = 0..n-1 go from t_k to t_{k+1} (t_0 = 0, last t = t_f). Per step:
    delta_k = t_{k+1} - t_k, kappa_k = 1/(1-t_k) + gamma_k t_k/(1-t_k)^2 (the drift factor of
    f), ``kstar_k(b)`` = b kappa_k - 1/(1-t_k) - gamma_k/(1-t_k)^2, noise_k = sqrt(2 gamma_k delta_k),
    p_k = p0 + p1 t_k.
    """

    t: np.ndarray
    delta: np.ndarray
    kappa: np.ndarray
    lin: np.ndarray      # -1/(1-t) - gamma/(1-t)^2: kstar = b kappa + lin
    noise: np.ndarray
    gamma: np.ndarray

    def kstar(self, b: float) -> np.ndarray:
        ks = check_real(b, "b") * self.kappa + self.lin
        if not np.all(np.isfinite(ks)):
            raise ValueError(f"b too large: b kappa overflows (|b| = {abs(b):.3g})")
        return ks

    def p(self, time_encoding: Sequence[float] = (0.0, 0.0)) -> np.ndarray:
        enc = check_finite_array(time_encoding, "time_encoding", shape=(2,))
        p = enc[0] + enc[1] * self.t[:-1]
        if not np.all(np.isfinite(p)):
            raise ValueError("time_encoding too large: p_t = p0 + p1 t overflows")
        return p

    def v_t(self, b: float) -> np.ndarray:
        """Variance in W-perp along the grid: v_0 = 1, v_{k+1} = (1 + delta kstar)^2 v_k + 2 gamma delta."""
        ks = self.kstar(b)
        v = np.empty(len(self.delta) + 1)
        v[0] = 1.0
        with np.errstate(over="ignore", invalid="ignore"):
            for k in range(len(self.delta)):
                v[k + 1] = (1.0 + self.delta[k] * ks[k]) ** 2 * v[k] + self.noise[k] ** 2
        if not np.all(np.isfinite(v)):
            raise ValueError(f"b = {b:.3g} makes the variance v_t overflow: |b| too large for this schedule")
        return v


def sampler_schedule(n_grid: int = 100, t_final: float = 0.95, gamma: Any = 0.0) -> SamplerSchedule:
    """Grid t_k = k / n_grid up to t_final (< 1, which is appended if not on the grid).
    ``gamma``: constant noise schedule (0 = probability-flow ODE) or one value per step."""
    n_grid = check_positive_int(n_grid, "n_grid")
    check_allocation(8.0 * n_grid, "n_grid", "the time grid")
    t_final = check_real(t_final, "t_final", low=0.0, high=1.0, low_open=True, high_open=True)
    t = np.arange(0, n_grid + 1) / n_grid
    t = t[t < t_final - 1e-12]
    t = np.append(t, t_final)
    tk = t[:-1]
    g = np.broadcast_to(check_finite_array(np.atleast_1d(gamma), "gamma", ndim=1), tk.shape).astype(float) \
        if np.ndim(gamma) else np.full(tk.shape, check_real(gamma, "gamma", low=0.0))
    if np.any(g < 0):
        raise ValueError("gamma must be >= 0")
    delta = np.diff(t)
    a = 1.0 - tk
    if not np.all(np.isfinite(g * tk / a**2 + np.sqrt(2.0 * g * delta))):
        raise ValueError("gamma too large: the drift or noise of the schedule overflows")
    return SamplerSchedule(t=t, delta=delta, kappa=1.0 / a + g * tk / a**2, lin=-1.0 / a - g / a**2,
                           noise=np.sqrt(2.0 * g * delta), gamma=g)


def generate(w: Any, b: float, v: Any = None, *, n_samples: int = 1000, schedule: SamplerSchedule | None = None,
             activation: str = "tanh", time_encoding: Sequence[float] = (0.0, 0.0), observe: Any = None,
             return_full: bool = False, seed: Any = 0, noise: Any = None, threads: int = 0,
             backend: str = "cpp") -> dict:
    """Run the d-dimensional generative SDE with the trained DAE drift from X_0 ~ N(0, I_d).

    Returns a dict with ``Z`` = w^T X / sqrt d (n, r), ``proj`` = E^T X (n, R) when ``observe``
    = E is given, and ``X`` (n, d) when ``return_full``. ``noise`` (n, steps + 1, d) injects
    X_0 and the Gaussian increments (for exact comparisons with ``backend="numpy"``).
    """
    W = check_finite_array(w, "w", ndim=2)
    d, r = W.shape
    vv = np.zeros(r) if v is None else check_finite_array(v, "v", ndim=1, shape=(r,))
    b = check_real(b, "b")
    if schedule is not None and not isinstance(schedule, SamplerSchedule):
        raise TypeError(f"schedule must be a SamplerSchedule (see sampler_schedule), got {type(schedule).__name__}")
    sch = sampler_schedule() if schedule is None else schedule
    check_choice(activation, "activation", ACTIVATIONS)
    check_choice(backend, "backend", ("cpp", "numpy"))
    n_samples = check_positive_int(n_samples, "n_samples")
    return_full = check_bool(return_full, "return_full")
    E = np.zeros((d, 0)) if observe is None else check_finite_array(observe, "observe", ndim=2, shape=(d, None))
    check_allocation(float(n_samples) * (r + E.shape[1] + (d if return_full or backend == "numpy" else 0))
                     + (float(n_samples) * (len(sch.delta) + 1) * d if backend == "numpy" else 0.0),
                     "n_samples", "the samples")
    ks, p = sch.kstar(b), sch.p(time_encoding)
    if noise is not None:
        noise = check_finite_array(noise, "noise", ndim=3, shape=(n_samples, len(sch.delta) + 1, d))
    if backend == "numpy":
        if noise is None:
            noise = np.random.default_rng(as_seed(seed)).standard_normal((n_samples, len(sch.delta) + 1, d))
        with np.errstate(over="ignore", invalid="ignore"):
            X = _ref.sample(W, vv, activation, sch.delta, sch.kappa, ks, sch.noise, p, noise)
            out = {"Z": X @ W / np.sqrt(d), "proj": X @ E}
        if return_full:
            out["X"] = X
    else:
        X, proj, Z = _core.dae_sample(W, vv, _ACT_CODE[activation], sch.delta, sch.kappa, ks, sch.noise, p, n_samples,
                                      as_seed(seed), np.ascontiguousarray(E), bool(return_full),
                                      noise if noise is not None else np.zeros((0, 0, 0)), check_threads(threads))
        out = {"Z": Z, "proj": proj}
        if return_full:
            out["X"] = X
    if not all(np.all(np.isfinite(v)) for v in out.values()):
        raise ValueError("the samples overflowed to NaN/inf: w, b, v or the schedule give too strong a drift")
    return out


def projected_hellinger(a: Any, b: Any, *, grid: int = 100, bandwidth_factor: float = 1.0,
                        bw_method: str = "scott", pad: float = 1.0) -> float:
    """Hellinger distance H (H^2 = 1/2 int (sqrt p - sqrt q)^2, in [0, 1]) between Gaussian
    KDEs (scipy) of two 1-D or 2-D sample sets, on a grid over a box holding both (+ ``pad``),
    integrated with the cell volume. Stop-gap until the project's metrics module lands.
    Cui et al. plot 2 H^2."""
    from scipy.stats import gaussian_kde

    A = check_finite_array(a, "a", ndim=(1, 2))
    B = check_finite_array(b, "b", ndim=(1, 2))
    A = A[:, None] if A.ndim == 1 else A
    B = B[:, None] if B.ndim == 1 else B
    if A.shape[1] != B.shape[1] or A.shape[1] > 2:
        raise ValueError(f"a and b must be 1-D or 2-D samples of the same dimension, got {A.shape}, {B.shape}")
    for x, name in ((A, "a"), (B, "b")):
        # a KDE needs more points than dimensions and some spread (else a singular covariance)
        if x.shape[0] <= x.shape[1]:
            raise ValueError(f"{name} needs at least {x.shape[1] + 1} samples for a KDE, got {x.shape[0]}")
        if np.any(np.ptp(x, axis=0) == 0):
            raise ValueError(f"{name} has no spread along some axis: its KDE is degenerate")
    grid = check_positive_int(grid, "grid", minimum=2)
    n_pts = float(grid) ** A.shape[1]
    check_allocation(8.0 * n_pts, "grid", "the evaluation grid")
    if n_pts * (A.shape[0] + B.shape[0]) > _MAX_KDE_EVALS:
        raise ValueError(f"grid too large: grid^dim x samples = {n_pts * (A.shape[0] + B.shape[0]):.3g} kernel "
                         f"evaluations (at most {_MAX_KDE_EVALS:.0e}); reduce grid")
    # beyond these the KDE covariance under- or overflows
    bandwidth_factor = check_real(bandwidth_factor, "bandwidth_factor", low=1e-6, high=1e6)
    pad = check_real(pad, "pad", low=0.0)
    if not (isinstance(bw_method, str) and bw_method in ("scott", "silverman")):
        if isinstance(bw_method, str) or not isinstance(bw_method, numbers.Real) or isinstance(bw_method, bool):
            raise TypeError(f"bw_method must be 'scott', 'silverman' or a positive number, got {bw_method!r}")
        check_real(bw_method, "bw_method", low=1e-6, high=1e6)
    if max(np.abs(A).max(), np.abs(B).max()) + pad > 1e150:
        # the KDE covariance squares the values
        raise ValueError("a, b or pad too large: |values| + pad must stay below 1e150")
    lo = np.minimum(A.min(0), B.min(0)) - pad
    hi = np.maximum(A.max(0), B.max(0)) + pad
    axes = [np.linspace(lo[j], hi[j], grid) for j in range(A.shape[1])]
    pts = np.stack([g.ravel() for g in np.meshgrid(*axes, indexing="ij")])
    cell = float(np.prod((hi - lo) / (grid - 1)))

    def kde(x):
        k = gaussian_kde(x.T, bw_method=bw_method)
        k.set_bandwidth(k.factor * bandwidth_factor)
        return k(pts)

    h2 = 0.5 * np.sum((np.sqrt(kde(A)) - np.sqrt(kde(B))) ** 2) * cell
    if not np.isfinite(h2):
        raise ValueError("the KDEs of a and b are not finite on the grid (check a, b, bandwidth_factor)")
    return float(np.sqrt(min(max(h2, 0.0), 1.0)))


# ----------------------------------------------------------------------------- generations
def fit_generation(samples: Any, *, r: int = 2, lr: float = 0.2, activation: str = "tanh",
                   times: Sequence[float] | str = (0.5,), train_b: bool = True, b0: float = 0.0,
                   observe: Any = None, seed: Any = 0, threads: int = 0, **train_kwargs) -> DaeRun:
    """Per-generation fit: online SGD, one pass in order over ``samples`` (n, d) of the
    previous generation (n steps, tau = 2 lr n / d), from a fresh random initialisation (or
    the weights given as ``init=``; see :func:`train` for the other keywords)."""
    x = check_finite_array(samples, "samples", ndim=2)
    return train(empirical_target(x, sequential=True), r=r, n_steps=x.shape[0], lr=lr, activation=activation,
                 times=times, train_b=train_b, b0=b0, observe=observe, seed=seed, threads=threads, **train_kwargs)


def sample_generation(run: DaeRun, n_samples: int, *, schedule: SamplerSchedule | None = None,
                      activation: str | None = None, seed: Any = 0, threads: int = 0) -> np.ndarray:
    """Per-generation sample: n_samples d-dimensional samples of the trained model (replica 0)."""
    if not isinstance(run, DaeRun):
        raise TypeError(f"run must be a DaeRun (from train or fit_generation), got {type(run).__name__}")
    act = run.config["activation"] if activation is None else activation
    return generate(run.w[0], float(run.b[0]), run.v[0], n_samples=n_samples, schedule=schedule, activation=act,
                    time_encoding=run.config["time_encoding"], return_full=True, seed=seed, threads=threads)["X"]


class DaeLearner:
    """:class:`modelcollapse.retraining.Learner` for the project's retraining loop
    (:func:`modelcollapse.retraining.run_retraining`).

    ``fit(data, previous_state, rng)`` runs online SGD with one pass in order over ``data``
    (n, d) (:func:`fit_generation`: n steps, so the number of points sets the training time
    tau = 2 lr n / d) from fresh N(0, init_scale^2) weights w0 drawn from ``rng`` (or from
    ``previous_state["w"]`` when ``warm_start``); the C++ seed is drawn from ``rng`` too, so
    the state is a pure function of (data, rng). It returns a dict of data only (arrays,
    numbers, strings: the loop checkpoints it without pickle):

    - ``w`` (d, r), ``b`` (float), ``v`` (r,): the trained parameters;
    - ``w0`` (d, r), ``b0``, ``v0``: the initial ones, so that the ODE initial statistics
      Q0 = w0^T w0 / d and G0 = w0^T E / sqrt d can be computed afterwards in any basis E;
    - ``tau``, ``n_steps``, ``seed`` and ``config`` (the :class:`DaeRun` config).

    ``sample(state, n, rng)`` runs the compiled d-dimensional sampler (:func:`generate`) on
    ``schedule`` from X_0 ~ N(0, I_d) and returns the (n, d) samples. Results do not depend
    on ``threads``.
    """

    name = "dae"

    def __init__(self, *, r: int = 2, lr: float = 0.2, activation: str = "tanh", times: Any = (0.5,),
                 time_encoding: Sequence[float] = (0.0, 0.0), train_b: bool = True, b0: float = 0.0,
                 weight_decay: float = 0.0, init_scale: float = 1.0, warm_start: bool = False,
                 schedule: SamplerSchedule | None = None, threads: int = 0):
        self.r = check_positive_int(r, "r")
        if self.r > 64:
            raise ValueError(f"r must be <= 64, got {r}")
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        check_choice(activation, "activation", ACTIVATIONS)
        self.activation = activation
        _time_schedule(times, time_encoding)                     # validates both
        self.times = times if isinstance(times, str) else [float(t) for t in np.atleast_1d(times)]
        self.time_encoding = [float(x) for x in time_encoding]
        self.train_b = check_bool(train_b, "train_b")
        self.b0 = check_real(b0, "b0")
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.init_scale = check_real(init_scale, "init_scale", low=0.0)
        self.warm_start = check_bool(warm_start, "warm_start")
        if schedule is not None and not isinstance(schedule, SamplerSchedule):
            raise TypeError(f"schedule must be a SamplerSchedule (see sampler_schedule), got {type(schedule).__name__}")
        self.schedule = schedule if schedule is not None else sampler_schedule(50, 0.98)
        self.threads = check_threads(threads)

    def config(self) -> dict:
        """JSON-able description (stored with the loop's checkpoints and checked on resume)."""
        return dict(r=self.r, lr=self.lr, activation=self.activation, times=self.times,
                    time_encoding=self.time_encoding, train_b=self.train_b, b0=self.b0,
                    weight_decay=self.weight_decay, init_scale=self.init_scale, warm_start=self.warm_start,
                    schedule_t=self.schedule.t.tolist(), schedule_gamma=self.schedule.gamma.tolist())

    def fit(self, data: Any, previous_state: dict | None, rng: np.random.Generator) -> dict:
        x = check_finite_array(data, "data", ndim=2)
        n, d = x.shape
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        if previous_state is not None and (not isinstance(previous_state, dict) or "w" not in previous_state):
            raise TypeError("previous_state must be None or a dict returned by DaeLearner.fit")
        if self.warm_start and previous_state is not None:
            w0 = check_finite_array(previous_state["w"], "previous_state['w']", ndim=2)
            b0 = float(previous_state["b"]) if self.train_b else self.b0
            v0 = check_finite_array(previous_state["v"], "previous_state['v']", ndim=1)
            if w0.shape != (d, self.r):
                raise ValueError(f"previous_state['w'] has shape {w0.shape}, expected ({d}, {self.r})")
        else:
            w0 = self.init_scale * rng.standard_normal((d, self.r))
            b0, v0 = self.b0, np.zeros(self.r)
        seed = as_seed(rng)
        run = fit_generation(x, r=self.r, lr=self.lr, activation=self.activation, times=self.times,
                             time_encoding=self.time_encoding, train_b=self.train_b, b0=b0, v0=v0, init=w0,
                             weight_decay=self.weight_decay, record_every=max(n, 1), seed=seed,
                             threads=self.threads)
        return {"w": run.w[0].copy(), "b": float(run.b[0]), "v": run.v[0].copy(), "w0": w0, "b0": b0, "v0": v0,
                "tau": float(run.tau[-1]), "n_steps": int(run.steps[-1]), "seed": seed, "config": dict(run.config)}

    def sample(self, state: dict, n: int, rng: np.random.Generator) -> np.ndarray:
        if not isinstance(state, dict) or "w" not in state:
            raise TypeError("state must be a dict returned by DaeLearner.fit")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        return generate(state["w"], float(state["b"]), state["v"], n_samples=n, schedule=self.schedule,
                        activation=self.activation, time_encoding=self.time_encoding, return_full=True,
                        seed=as_seed(rng), threads=self.threads)["X"]

    def parameter_vector(self, state: dict) -> np.ndarray:
        """(w, b, v) flattened (for the loop's parameter-distance metric)."""
        if not isinstance(state, dict) or not {"w", "b", "v"} <= set(state):
            raise TypeError("state must be a dict returned by DaeLearner.fit")
        return np.concatenate([np.ravel(state["w"]), [float(state["b"])], np.ravel(state["v"])])
