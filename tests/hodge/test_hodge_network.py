"""The torch network psi of the gradient-part estimator (docs/hodge.md, "Network basis").

Ground truth: a Gaussian p = N(m, C) with the linear error e(x) = E(x - m) + f, whose Hodge
gradient part S(x - m) + f has the closed-form energy tr(S C S) + |f|^2 (Lyapunov equation,
:func:`modelcollapse.hodge.gaussian_gradient_part`).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from modelcollapse import hodge as H
from modelcollapse.hodge._network import _mlp_features, _mlp_grad_hutchinson, _mlp_grad_lap, _mlp_init

M = np.array([0.5, -0.5])
C = np.array([[1.0, 0.3], [0.3, 0.6]])
E = np.array([[0.6, -0.9], [0.3, -0.4]])   # not symmetric: both parts present
F = np.array([0.3, -0.2])
N = 8000


def gaussian_case(solenoidal_only: bool = False, n: int = N, seed: int = 1):
    """Samples of N(m, C), the model score at them (true score + error) and the exact energy."""
    gp = H.gaussian_gradient_part(E, C, F)
    rng = np.random.default_rng(seed)
    x = rng.multivariate_normal(M, C, size=n)
    err = (x - M) @ gp["R"].T if solenoidal_only else (x - M) @ E.T + F
    s = -(x - M) @ np.linalg.inv(C).T + err
    return x, s, (0.0 if solenoidal_only else gp["gradient"]), gp


@pytest.fixture(scope="module")
def torch():
    t = pytest.importorskip("torch")
    t.set_num_threads(1)
    return t


@pytest.fixture(scope="module")
def mixed_estimates(torch):
    x, s, exact, gp = gaussian_case()
    net = H.gradient_part_estimate(x, s, basis="network", seed=0)
    herm = H.gradient_part_estimate(x, s, basis="hermite", degree=4, threads=1)
    return net, herm, exact, gp


# ---------------------------------------------------------------------------------------
# derivatives of psi
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_forward_gradient_and_laplacian_match_nested_autograd(torch, activation):
    d = 3
    gen = torch.Generator().manual_seed(0)
    params = _mlp_init(torch, d, 16, 2, gen, torch.device("cpu"))
    with torch.no_grad():   # a nonzero output layer (the initial one is zero)
        params[-1].copy_(torch.randn(params[-1].shape[0], generator=gen, dtype=torch.float64))
    x = torch.randn(40, d, dtype=torch.float64, generator=gen)
    loc = torch.tensor([0.1, -0.2, 0.3], dtype=torch.float64)
    scale = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    g, lap = _mlp_grad_lap(torch, params, x, loc, scale, activation)
    xg = x.clone().requires_grad_(True)
    feats, _, _ = _mlp_features(torch, params, xg, loc, scale, activation)
    psi = feats @ params[-1]
    ga = torch.autograd.grad(psi.sum(), xg, create_graph=True)[0]
    la = sum(torch.autograd.grad(ga[:, i].sum(), xg, retain_graph=True)[0][:, i] for i in range(d))
    np.testing.assert_allclose(g.detach().numpy(), ga.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lap.detach().numpy(), la.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_hutchinson_laplacian_is_unbiased_with_the_right_variance(torch):
    d = 3
    gen = torch.Generator().manual_seed(1)
    params = _mlp_init(torch, d, 16, 2, gen, torch.device("cpu"))
    with torch.no_grad():
        params[-1].copy_(torch.randn(params[-1].shape[0], generator=gen, dtype=torch.float64))
    x = torch.randn(40, d, dtype=torch.float64, generator=gen)
    loc, scale = torch.zeros(d, dtype=torch.float64), torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
    xg = x.clone().requires_grad_(True)
    feats, _, _ = _mlp_features(torch, params, xg, loc, scale, "tanh")
    ga = torch.autograd.grad((feats @ params[-1]).sum(), xg, create_graph=True)[0]
    hess = torch.stack([torch.autograd.grad(ga[:, i].sum(), xg, retain_graph=True)[0] for i in range(d)], 1).detach()
    lap = hess.diagonal(dim1=1, dim2=2).sum(1)
    off = (hess ** 2).sum((1, 2)) - (hess.diagonal(dim1=1, dim2=2) ** 2).sum(1)
    P = 4000
    g, est = _mlp_grad_hutchinson(torch, params, x, loc, scale, "tanh", P, gen)
    np.testing.assert_allclose(g.detach().numpy(), ga.detach().numpy(), rtol=1e-12, atol=1e-12)
    # Rademacher: Var(v^T H v) = 2 sum_{i != j} H_ij^2
    z = ((est.detach() - lap) / torch.sqrt(2 * off / P)).numpy()
    assert np.abs(z).max() < 4.5          # 40 z-scores
    assert abs(z.mean()) < 4 / np.sqrt(len(z))
    assert 0.6 < z.std() < 1.5


# ---------------------------------------------------------------------------------------
# estimates against the closed form
# ---------------------------------------------------------------------------------------

def test_network_estimate_is_a_tight_lower_bound_on_a_gaussian(mixed_estimates):
    net, _, exact, gp = mixed_estimates
    assert gp["solenoidal"] > gp["gradient"]   # the solenoidal part dominates the L2 error
    assert net.basis == "network" and net.n == N and net.se > 0
    # lower bound up to noise
    assert net.value <= exact + 3 * net.se
    # Tight: psi can represent the quadratic phi (tanh features + linear skip). se is ~5% of the
    # truth at n = 8000, so 85% is the truth minus ~3 se. Measured value/truth: 1.00 on this
    # sample; 0.88-0.95 on data seeds 2-5, where Hermite degree 4 gives 0.90-0.99 (the spread
    # is sampling noise shared by both estimators).
    assert net.value >= 0.85 * exact, (net.value, net.se, exact)
    # the in-sample objective is biased up relative to the held-out one
    assert net.plugin >= net.value - 3 * net.se


def test_network_agrees_with_hermite_on_the_same_samples(mixed_estimates):
    net, herm, exact, _ = mixed_estimates
    # same samples: their errors are positively correlated, so this bound is conservative
    assert abs(net.value - herm.value) <= 3 * np.hypot(net.se, herm.se), (net.value, herm.value)


@pytest.mark.slow
def test_purely_solenoidal_error_gives_zero(torch):
    x, s, _, gp = gaussian_case(solenoidal_only=True)
    assert gp["solenoidal"] > 0.4    # the L2 error is far from 0
    est = H.gradient_part_estimate(x, s, basis="network", seed=0)
    # psi = 0 (objective 0) is where training starts: a half keeps it when nothing beats it
    # on its held-out rows, and then contributes exactly 0 with se 0
    assert abs(est.value) <= 4 * est.se + 5e-3, (est.value, est.se)


def test_hutchinson_training_in_three_dimensions(torch):
    C3 = np.array([[1.0, 0.3, 0.0], [0.3, 0.6, 0.1], [0.0, 0.1, 0.8]])
    E3 = np.array([[0.5, -0.8, 0.2], [0.3, -0.4, 0.0], [0.1, 0.4, 0.3]])
    gp = H.gaussian_gradient_part(E3, C3)
    rng = np.random.default_rng(3)
    x = rng.multivariate_normal(np.zeros(3), C3, size=6000)
    s = -x @ np.linalg.inv(C3).T + x @ E3.T
    est = H.gradient_part_network(x, s, laplacian="hutchinson", n_probes=2, steps=300, seed=2)
    assert est.info["laplacian"] == "hutchinson"
    assert est.value <= gp["gradient"] + 3 * est.se
    assert est.value >= 0.7 * gp["gradient"], (est.value, est.se, gp["gradient"])


def test_seeded_reproducibility_and_options(torch):
    x, s, _, _ = gaussian_case(n=1200)
    opts = dict(steps=30, width=8, eval_every=10)
    a = H.gradient_part_estimate(x, s, basis="network", seed=7, network=opts)
    b = H.gradient_part_estimate(x, s, basis="network", seed=7, network=opts)
    c = H.gradient_part_network(x, s, seed=7, **opts)
    assert a.value == b.value == c.value and a.se == b.se and a.plugin == b.plugin
    assert a.basis_size == 8 * 2 + 8 + 8 * 8 + 8 + 8 + 2
    nc = H.gradient_part_network(x, s, seed=7, cross_fit=False, **opts)
    assert np.isnan(nc.se) and nc.value == nc.plugin
    sp = H.gradient_part_network(x, s, seed=7, activation="softplus", depth=1, refit_output=False, **opts)
    assert np.isfinite(sp.value) and len(sp.info["halves"]) == 2
    torch_threads = torch.get_num_threads()
    pr = H.gradient_part_network(x, s, seed=7, threads=2, progress=True, **opts)
    assert torch.get_num_threads() == torch_threads   # restored
    assert np.isfinite(pr.value)


def test_integrated_gradient_part_with_the_network(torch):
    from modelcollapse import GaussianMixture

    p = GaussianMixture([1.0], [[0.5, -0.5]], np.array([C]))
    model = H.PerturbedScore(p, [H.LinearTerm(E, F, [0.5, -0.5])])
    res = H.integrated_gradient_part(model, p, 1.0, 0.1, n_times=2, n_samples=1500, basis="network",
                                     network=dict(steps=40, width=8))
    assert np.all(np.isfinite(res["values"])) and res["se"] > 0


def test_cuda_device(torch):
    x, s, _, _ = gaussian_case(n=1200)
    opts = dict(steps=20, width=8, eval_every=10)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            H.gradient_part_network(x, s, device="cuda", **opts)
        return
    gpu = H.gradient_part_network(x, s, device="cuda", seed=3, **opts)
    cpu = H.gradient_part_network(x, s, device="cpu", seed=3, **opts)
    assert gpu.info["device"].startswith("cuda")
    # same initialisation and minibatches (CPU generator); float64 kernels differ in rounding only
    assert abs(gpu.value - cpu.value) <= 1e-6 * (1 + abs(cpu.value))


# ---------------------------------------------------------------------------------------
# argument checks and the optional dependency
# ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(basis="net"), ValueError, "basis must be one of"),
    (dict(basis="network", network={"widht": 8}), ValueError, r"unknown network option\(s\) \['widht'\]"),
    (dict(basis="network", network={"seed": 1}), ValueError, "seed and cross_fit are arguments"),
    (dict(basis="network", network=[("width", 8)]), TypeError, "network must be a dict"),
    (dict(basis="hermite", network={"width": 8}), ValueError, "only used with basis='network'"),
    (dict(basis="network", network={"width": 0}), ValueError, "width must be >= 1"),
    (dict(basis="network", network={"activation": "relu"}), ValueError, "activation must be one of"),
    (dict(basis="network", network={"laplacian": "trace"}), ValueError, "laplacian must be one of"),
    (dict(basis="network", network={"lr": -1.0}), ValueError, "lr must be > 0"),
    (dict(basis="network", network={"penalty": -1.0}), ValueError, "penalty must be >= 0"),
    (dict(basis="network", network={"val_fraction": 0.9}), ValueError, "val_fraction must be <= 0.5"),
    (dict(basis="network", network={"device": "tpu"}), ValueError, "device must be one of"),
    (dict(basis="network", network={"steps": 1.5}), TypeError, "steps must be an int"),
])
def test_bad_arguments(torch, kwargs, exc, match):
    x, s, _, _ = gaussian_case(n=200)
    with pytest.raises(exc, match=match):
        H.gradient_part_estimate(x, s, **kwargs)


def test_bad_samples(torch):
    x, s, _, _ = gaussian_case(n=200)
    with pytest.raises(ValueError, match="score must have shape"):
        H.gradient_part_network(x, s[:, :1])
    with pytest.raises(ValueError, match="need more samples"):
        H.gradient_part_network(x[:10], s[:10])
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="x contains 1 NaN"):
        H.gradient_part_network(bad, s)
    with pytest.raises(ValueError, match="degenerate"):
        H.gradient_part_network(np.ones_like(x), s)


def test_without_torch_the_network_says_how_to_install_it(monkeypatch):
    x, s, _, _ = gaussian_case(n=200)
    monkeypatch.setitem(sys.modules, "torch", None)   # "import torch" now raises ImportError
    with pytest.raises(ImportError, match=r"network gradient-part estimator .* pip install 'modelcollapse\[torch\]'"):
        H.gradient_part_estimate(x, s, basis="network")
    with pytest.raises(ImportError, match=r"needs torch: pip install 'modelcollapse\[torch\]'"):
        H.gradient_part_network(x, s)
    # the other bases do not need torch
    assert np.isfinite(H.gradient_part_estimate(x, s, degree=2).value)


def test_library_imports_without_torch():
    # a finder that refuses torch, as if it were not installed (sys.modules['torch'] = None
    # would confuse scipy's array-API helpers, which look torch up in sys.modules)
    code = ("import sys, importlib.abc\n"
            "class NoTorch(importlib.abc.MetaPathFinder):\n"
            "    def find_spec(self, name, path, target=None):\n"
            "        if name == 'torch' or name.startswith('torch.'):\n"
            "            raise ImportError('No module named torch (blocked)')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import modelcollapse, modelcollapse.hodge as H\n"
            "import numpy as np\n"
            "x = np.random.default_rng(0).normal(size=(100, 2))\n"
            "try:\n"
            "    H.gradient_part_estimate(x, -x, basis='network')\n"
            "except ImportError as exc:\n"
            "    assert \"pip install 'modelcollapse[torch]'\" in str(exc), exc\n"
            "else:\n"
            "    raise AssertionError('no ImportError')\n"
            "assert callable(H.gradient_part_network)\n"
            "assert not any(k == 'torch' or k.startswith('torch.') for k, v in sys.modules.items() if v is not None)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ---------------------------------------------------------------------------------------
# experiment flag
# ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_experiment_estimator_basis_flag(torch, tmp_path):
    from modelcollapse.experiments import get

    exp = get("hodge")
    assert exp.make_config("quick", {}).estimator_basis == "hermite"   # off by default
    with pytest.raises(ValueError, match="estimator_basis"):
        exp.make_config("quick", {"estimator_basis": "mlp"})
    cfg = exp.make_config("quick", {"n_models": "3", "n_times": "1", "n_est": "800", "n_sample": "800",
                                    "c_grid": "0", "estimator_basis": "network", "n_seeds": "1", "n_control": "3",
                                    "n_null": "0"})
    out = exp.run(cfg, tmp_path, progress=False)
    assert out.summary["estimator_basis"] == "network"
    est = out.table[(out.table.study == "correlation") & (out.table.metric == "gradient_estimate")]
    # one replicate: the 3 mixed models (and the control family's) each get a finite network estimate
    assert set(est.model.astype(int)) >= {0, 1, 2} and np.all(np.isfinite(est.value))
