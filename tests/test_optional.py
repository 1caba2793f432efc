"""Optional dependencies through one helper (``modelcollapse._optional``): a missing extra is
one ImportError naming the pip command; a torch device this machine cannot use is one
ValueError naming the argument, raised before any work starts (docs/reliability.md)."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from modelcollapse import _optional


def test_missing_module_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # makes `import mlflow` raise ImportError
    with pytest.raises(ImportError, match=r"the MLflow callback needs mlflow: pip install 'modelcollapse\[tracking\]'"):
        _optional.require("mlflow", "the MLflow callback")
    assert not _optional.has("mlflow")


@pytest.fixture
def cpu_torch():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("needs a torch that sees no CUDA GPU")
    return torch


def test_torch_device_accepts_what_this_machine_has(cpu_torch):
    assert _optional.torch_device("auto") == cpu_torch.device("cpu")
    assert _optional.torch_device("cpu") == cpu_torch.device("cpu")
    assert _optional.torch_device(cpu_torch.device("cpu")) == cpu_torch.device("cpu")


@pytest.mark.parametrize("device, error, message", [
    ("cuda", ValueError, r"device='cuda' but this torch .* sees no CUDA GPU: use device='cpu'"),
    ("cuda:1", ValueError, "sees no CUDA GPU"),
    ("banana", ValueError, r"device='banana' is not a torch device"),
    (3, TypeError, "device must be"),
])
def test_torch_device_refuses_with_one_clear_error(cpu_torch, device, error, message):
    with pytest.raises(error, match=message):
        _optional.torch_device(device)


def test_library_entry_points_refuse_cuda_before_work(cpu_torch):
    """Every public function with a ``device`` goes through the one check: a ValueError, not
    torch's AssertionError from deep inside a training loop."""
    from modelcollapse import dae, hodge
    from modelcollapse.retraining.torch_learners import DDPMLearner

    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        DDPMLearner(device="cuda")
    x = np.random.default_rng(0).normal(size=(64, 2))
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        hodge.gradient_part_network(x, -x, device="cuda", steps=2)
    target = dae.isotropic_mixture(np.array([[1.0] + [0.0] * 7, [-1.0] + [0.0] * 7]), 1.0)
    with pytest.raises(ValueError, match="sees no CUDA GPU"):
        dae.train(target, n_steps=4, backend="torch", device="cuda")
