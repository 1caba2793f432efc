"""Neural learners for the retraining loop (torch; optional extra ``modelcollapse[torch]``).

- :class:`DDPMLearner`: denoising diffusion probabilistic model (Ho et al. 2020), epsilon
  prediction, linear beta schedule over ``n_levels`` (1000) noise levels; an MLP denoiser with
  sinusoidal time embedding and residual GELU blocks; sampling by ancestral DDPM steps
  (optionally strided: DDIM with eta = 1 over ``sample_steps`` levels).
- :class:`FlowMatchingLearner`: conditional flow matching with minibatch optimal-transport
  coupling (OT-CFM, Tong et al. 2023; the exact OT plan of each minibatch by POT's
  ``ot.emd``), an MLP velocity field, sampling by a fixed-step RK4 ODE solver.

Both train on a fixed number of samples seen per round (``samples_per_round``; steps =
ceil(samples_per_round / batch_size), batches drawn with replacement), whatever the size of
the round's training set, and fine-tune from the previous round (network + optimizer state).
Round 0 trains from scratch on ``initial_samples`` samples seen (default: the same budget),
so that theta_0 can be well trained while later rounds fine-tune, as in the paper.
States are dicts of numpy arrays (data only, so the loop checkpoints them without pickle;
device independent). Randomness comes from the
loop's numpy generator (a fresh torch seed per call, inside ``torch.random.fork_rng`` so the
global torch RNG is untouched); on CPU results are reproducible for a given seed.
Device: ``"auto"`` uses CUDA when available, else CPU. ``threads`` (default 1) sets torch's CPU
threads during fit/sample only (small MLPs are fastest single-threaded; 0 keeps torch's setting).
"""
from __future__ import annotations

import contextlib
import math
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
except ImportError as exc:  # pragma: no cover - exercised only without torch
    raise ImportError("the neural learners need torch: pip install 'modelcollapse[torch]' (torch==2.13.0)") from exc

from .._optional import torch_device
from .._validation import check_allocation, check_bool, check_finite_array, check_positive_int, check_real


def resolve_device(device: str = "auto") -> torch.device:
    """A torch device from "auto" (CUDA when available, else CPU) or a torch device string;
    a device this torch cannot use raises ValueError (see ``_optional.torch_device``)."""
    return torch_device(device)


class SinusoidalEmbedding(nn.Module):
    def __init__(self, dim: int, max_period: float = 10_000.0) -> None:
        super().__init__()
        half = dim // 2
        self.register_buffer("freqs", torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half),
                             persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t[:, None].float() * self.freqs[None, :]
        return torch.cat([torch.sin(args), torch.cos(args)], dim=-1)


class ResidualBlock(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.lin1 = nn.Linear(width, width)
        self.lin2 = nn.Linear(width, width)
        self.act = nn.GELU()

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.lin2(self.act(self.lin1(self.act(self.norm(h)))))


class TimeMLP(nn.Module):
    """x (B, d), t (B,) -> (B, d): input + time embedding, residual GELU blocks, linear head."""

    def __init__(self, dim: int, width: int = 128, n_blocks: int = 3, emb_dim: int = 64, time_scale: float = 1.0):
        super().__init__()
        self.time_scale = time_scale
        self.emb = SinusoidalEmbedding(emb_dim)
        self.inp = nn.Linear(dim + emb_dim, width)
        self.blocks = nn.ModuleList([ResidualBlock(width) for _ in range(n_blocks)])
        self.out = nn.Sequential(nn.GELU(), nn.Linear(width, dim))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        h = self.inp(torch.cat([x, self.emb(t * self.time_scale)], dim=-1))
        for b in self.blocks:
            h = b(h)
        return self.out(h)


def _to_numpy(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().numpy().copy()
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(v) for v in obj)
    return obj


def _to_torch(obj: Any, device: torch.device) -> Any:
    # A copy: torch.as_tensor would share memory with the state's arrays, and the optimizer
    # updates its loaded state in place, so fit would silently modify previous_state.
    if isinstance(obj, np.ndarray):
        t = torch.from_numpy(np.array(obj, copy=True))
        return t.to(device) if obj.ndim > 0 else t
    if isinstance(obj, dict):
        return {k: _to_torch(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_torch(v, device) for v in obj)
    return obj


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    return rng


def _check_state(state: Any, name: str = "state") -> dict:
    if not isinstance(state, dict) or not {"dim", "model"} <= set(state) or not isinstance(state["model"], dict):
        raise TypeError(f"{name} must be a dict returned by the learner's fit (keys dim, model, optimizer, loss)")
    return state


class _TorchLearner:
    name = "torch"

    def __init__(self, width: int = 128, n_blocks: int = 3, lr: float = 1e-3, weight_decay: float = 0.0,
                 batch_size: int = 256, samples_per_round: int = 50_000, initial_samples: int | None = None,
                 sample_steps: int = 100, reset_optimizer: bool = False, device: str = "auto",
                 dtype: str = "float32", threads: int = 1) -> None:
        self.width = check_positive_int(width, "width")
        self.n_blocks = check_positive_int(n_blocks, "n_blocks", minimum=0)
        # weights (n_blocks + 2 layers of width^2) and the Adam moments: 4 copies
        check_allocation(4.0 * self.width * self.width * (self.n_blocks + 2), "width/n_blocks", "the network")
        self.lr = check_real(lr, "lr", low=0.0, low_open=True)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.batch_size = check_positive_int(batch_size, "batch_size")
        check_allocation(4.0 * self.batch_size * self.width, "batch_size", "the activations of a batch")
        # optimiser steps per round = samples / batch_size: more than 1e8 takes days
        self.samples_per_round = check_positive_int(samples_per_round, "samples_per_round",
                                                    maximum=10**8 * self.batch_size)
        self.initial_samples = (self.samples_per_round if initial_samples is None
                                else check_positive_int(initial_samples, "initial_samples", maximum=10**8 * self.batch_size))
        self.sample_steps = check_positive_int(sample_steps, "sample_steps", maximum=10**7)
        self.reset_optimizer = check_bool(reset_optimizer, "reset_optimizer")
        self.device = resolve_device(device)
        if not isinstance(dtype, str) or dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        self.dtype = getattr(torch, dtype)
        self.threads = check_positive_int(threads, "threads", minimum=0, maximum=256)

    # ----------------------------------------------------------------- protocol
    def config(self) -> dict[str, Any]:
        return {"width": self.width, "n_blocks": self.n_blocks, "lr": self.lr, "weight_decay": self.weight_decay,
                "batch_size": self.batch_size, "samples_per_round": self.samples_per_round,
                "initial_samples": self.initial_samples,
                "sample_steps": self.sample_steps, "reset_optimizer": self.reset_optimizer,
                "dtype": str(self.dtype).replace("torch.", ""), **self._extra_config()}

    def _extra_config(self) -> dict[str, Any]:
        return {}

    def steps(self, initial: bool = False) -> int:
        """Optimiser steps of one fit: samples seen / batch size (round 0 uses ``initial_samples``)."""
        return math.ceil((self.initial_samples if initial else self.samples_per_round) / self.batch_size)

    def _build(self, dim: int) -> nn.Module:
        return TimeMLP(dim, self.width, self.n_blocks, time_scale=self._time_scale()).to(self.device, self.dtype)

    def _time_scale(self) -> float:
        return 1.0

    @contextlib.contextmanager
    def _torch_threads(self):
        # Small 2D MLPs run fastest on one CPU thread; torch's pool spin-waits badly when the
        # machine is oversubscribed. threads=0 keeps torch's own setting. Restored afterwards.
        prev = torch.get_num_threads()
        if self.threads > 0 and self.device.type == "cpu":
            torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(prev)

    def _model_from_state(self, state: dict[str, Any]) -> nn.Module:
        model = self._build(state["dim"])
        model.load_state_dict(_to_torch(state["model"], self.device))
        return model

    def fit(self, data: np.ndarray, previous_state: Any | None, rng: np.random.Generator) -> dict[str, Any]:
        x = check_finite_array(data, "data", ndim=2)
        _check_rng(rng)
        if previous_state is not None:
            _check_state(previous_state, "previous_state")
        if np.abs(x).max() > 1e30:
            raise ValueError("data has values too large (> 1e30) for float32 training")
        dim = x.shape[1]
        seed = int(rng.integers(0, 2**62))
        with self._torch_threads(), torch.random.fork_rng(devices=[] if self.device.type == "cpu" else [self.device]):
            torch.manual_seed(seed)
            model = self._build(dim) if previous_state is None else self._model_from_state(previous_state)
            opt = torch.optim.AdamW(model.parameters(), lr=self.lr, weight_decay=self.weight_decay)
            if previous_state is not None and not self.reset_optimizer and previous_state.get("optimizer"):
                opt.load_state_dict(_to_torch(previous_state["optimizer"], self.device))
            xt = torch.as_tensor(x, dtype=self.dtype, device=self.device)
            model.train()
            losses = []
            for _ in range(self.steps(initial=previous_state is None)):
                idx = torch.randint(0, len(xt), (self.batch_size,), device=self.device)
                loss = self._loss(model, xt[idx], rng)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses.append(float(loss.detach()))
        return {"dim": dim, "model": _to_numpy(model.state_dict()), "optimizer": _to_numpy(opt.state_dict()),
                "loss": float(np.mean(losses[-max(1, len(losses) // 10):]))}

    def sample(self, state: dict[str, Any], n: int, rng: np.random.Generator) -> np.ndarray:
        _check_state(state)
        n = check_positive_int(n, "n", minimum=0)
        check_allocation(4.0 * n * (state["dim"] + self.width), "n", "the samples and activations")
        seed = int(_check_rng(rng).integers(0, 2**62))
        model = self._model_from_state(state)
        model.eval()
        with self._torch_threads(), torch.random.fork_rng(devices=[] if self.device.type == "cpu" else [self.device]), \
                torch.no_grad():
            torch.manual_seed(seed)
            out = self._sample(model, n, state["dim"])
        return out.detach().cpu().numpy().astype(np.float64)

    def parameter_vector(self, state: dict[str, Any]) -> np.ndarray:
        _check_state(state)
        return np.concatenate([np.asarray(v, dtype=np.float64).ravel() for v in state["model"].values()])

    # ----------------------------------------------------------------- to implement
    def _loss(self, model: nn.Module, x1: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
        raise NotImplementedError

    def _sample(self, model: nn.Module, n: int, dim: int) -> torch.Tensor:
        raise NotImplementedError


class DDPMLearner(_TorchLearner):
    """DDPM with epsilon prediction and a linear beta schedule (beta_1 = 1e-4 ... beta_N = 0.02).

    ``sample_steps`` < ``n_levels`` samples on an evenly strided subset of the levels with the
    DDIM update (``eta = 1``: ancestral, equal to DDPM when ``sample_steps == n_levels``;
    ``eta = 0``: deterministic DDIM).
    """

    name = "ddpm"

    def __init__(self, n_levels: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                 sample_steps: int = 100, eta: float = 1.0, batch_size: int = 1024, weight_decay: float = 0.0,
                 **kwargs: Any) -> None:
        super().__init__(sample_steps=sample_steps, batch_size=batch_size, weight_decay=weight_decay, **kwargs)
        self.n_levels = check_positive_int(n_levels, "n_levels", minimum=2)
        check_allocation(3.0 * self.n_levels, "n_levels", "the noise schedule")
        self.eta = check_real(eta, "eta", low=0.0, high=1.0)
        self.beta_start = check_real(beta_start, "beta_start", low=0.0, low_open=True)
        self.beta_end = check_real(beta_end, "beta_end", low=self.beta_start, high=1.0, high_open=True)
        if self.sample_steps > self.n_levels:
            raise ValueError(f"sample_steps must be <= n_levels ({self.n_levels}), got {self.sample_steps}")
        betas = torch.linspace(self.beta_start, self.beta_end, self.n_levels, dtype=torch.float64)
        self._abar = torch.cumprod(1 - betas, 0)

    def _extra_config(self) -> dict[str, Any]:
        return {"n_levels": self.n_levels, "beta_start": self.beta_start, "beta_end": self.beta_end, "eta": self.eta}

    def _time_scale(self) -> float:
        return 1.0  # the embedding sees the integer level 0..n_levels-1

    def _loss(self, model, x0, rng):
        k = torch.randint(0, self.n_levels, (x0.shape[0],), device=self.device)
        abar = self._abar.to(self.device, self.dtype)[k][:, None]
        eps = torch.randn_like(x0)
        xk = abar.sqrt() * x0 + (1 - abar).sqrt() * eps
        return ((model(xk, k.to(self.dtype)) - eps) ** 2).mean()

    def _sample(self, model, n, dim):
        levels = np.unique(np.round(np.linspace(0, self.n_levels - 1, self.sample_steps)).astype(np.int64))[::-1]
        abar = self._abar.to(self.device, self.dtype)
        x = torch.randn(n, dim, device=self.device, dtype=self.dtype)
        for i, k in enumerate(levels):
            a_t = abar[k]
            a_prev = abar[levels[i + 1]] if i + 1 < len(levels) else torch.ones((), dtype=self.dtype, device=self.device)
            kk = torch.full((n,), float(k), device=self.device, dtype=self.dtype)
            eps = model(x, kk)
            x0 = (x - (1 - a_t).sqrt() * eps) / a_t.sqrt()
            sigma = self.eta * ((1 - a_prev) / (1 - a_t)).clamp(min=0).sqrt() * (1 - a_t / a_prev).clamp(min=0).sqrt()
            dir_coef = (1 - a_prev - sigma**2).clamp(min=0).sqrt()
            x = a_prev.sqrt() * x0 + dir_coef * eps
            if i + 1 < len(levels):
                x = x + sigma * torch.randn_like(x)
        return x


class FlowMatchingLearner(_TorchLearner):
    """Conditional flow matching with minibatch OT coupling (OT-CFM).

    For a batch x1 of data and x0 ~ N(0, I), pairs are drawn from the exact OT plan between
    the two batches (squared Euclidean cost, POT ``ot.emd``); the network regresses
    u = x1 - x0 at x_t = t x1 + (1 - t) x0 + sigma eps, t ~ U(0, 1). Sampling integrates
    dx/dt = v(x, t) from t = 0 to 1 with ``sample_steps`` RK4 steps.
    """

    name = "flow_matching"

    def __init__(self, sigma: float = 0.0, sample_steps: int = 20, ot_coupling: bool = True,
                 batch_size: int = 256, **kwargs: Any) -> None:
        super().__init__(sample_steps=sample_steps, batch_size=batch_size, **kwargs)
        self.sigma = check_real(sigma, "sigma", low=0.0, high=1e6)
        self.ot_coupling = check_bool(ot_coupling, "ot_coupling")

    def _extra_config(self) -> dict[str, Any]:
        return {"sigma": self.sigma, "ot_coupling": self.ot_coupling}

    def _time_scale(self) -> float:
        return 1000.0  # t in [0, 1] -> the embedding's integer-like range

    def _loss(self, model, x1, rng):
        x0 = torch.randn_like(x1)
        if self.ot_coupling:
            import ot

            a = x0.detach().cpu().double().numpy()
            b = x1.detach().cpu().double().numpy()
            plan = ot.emd(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), ot.dist(a, b))
            p = plan.ravel() / plan.sum()
            choice = rng.choice(p.size, size=len(a), p=p)
            i, j = np.divmod(choice, len(b))
            x0 = x0[torch.as_tensor(i, device=self.device)]
            x1 = x1[torch.as_tensor(j, device=self.device)]
        t = torch.rand(x1.shape[0], device=self.device, dtype=self.dtype)
        xt = t[:, None] * x1 + (1 - t[:, None]) * x0
        if self.sigma > 0:
            xt = xt + self.sigma * torch.randn_like(xt)
        return ((model(xt, t) - (x1 - x0)) ** 2).mean()

    def _sample(self, model, n, dim):
        x = torch.randn(n, dim, device=self.device, dtype=self.dtype)
        h = 1.0 / self.sample_steps
        for s in range(self.sample_steps):
            t = torch.full((n,), s * h, device=self.device, dtype=self.dtype)
            k1 = model(x, t)
            k2 = model(x + 0.5 * h * k1, t + 0.5 * h)
            k3 = model(x + 0.5 * h * k2, t + 0.5 * h)
            k4 = model(x + h * k3, t + h)
            x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x
