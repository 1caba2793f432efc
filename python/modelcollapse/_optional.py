"""Optional dependencies through one helper (docs/reliability.md): the core imports and
works without them; a feature that needs one fails with one ImportError that says how to
install it."""
from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

# name -> (the extra that brings it, the pip requirement users should type)
_EXTRAS = {
    "torch": ("torch", "torch==2.13.0"),
    "distributed": ("dask", "dask[distributed]"),
    "tensorboard": ("tracking", "tensorboard>=2.10"),
    "mlflow": ("tracking", "mlflow>=2"),
}


def has(name: str) -> bool:
    """Whether the optional dependency ``name`` can be imported."""
    try:
        importlib.import_module(name)
    except ImportError:
        return False
    return True


def require(name: str, feature: str) -> ModuleType:
    """Import the optional dependency ``name`` for ``feature`` or raise a one-line ImportError.

    Parameters
    ----------
    name : str
        The module to import (``"torch"``, ``"distributed"``).
    feature : str
        What needs it, for the message (``"the neural learners"``).
    """
    try:
        return importlib.import_module(name)
    except ImportError:
        extra, requirement = _EXTRAS.get(name, (None, name))
        how = f"pip install 'modelcollapse[{extra}]' (or {requirement})" if extra else f"pip install {requirement}"
        raise ImportError(f"{feature} needs {name}: {how}") from None


def torch_device(device: Any = "auto", argument: str = "device") -> Any:
    """The ``torch.device`` for ``device``, checked before any work starts (docs/reliability.md).

    Parameters
    ----------
    device : str or torch.device
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``, ``"cuda:N"``,
        ``"mps"``, or a ``torch.device``.
    argument : str
        The argument's name, for the error messages.

    Raises
    ------
    TypeError
        ``device`` is neither a string nor a ``torch.device``.
    ValueError
        Not a torch device, or a device this torch cannot use (e.g. ``"cuda"`` on a build
        or machine without a GPU): the message says which device to use instead.
    """
    torch = require("torch", f"{argument}={device!r}")
    q = "" if argument.startswith("-") else "'"  # a command-line option is typed unquoted
    if isinstance(device, torch.device):
        dev = device
    elif not isinstance(device, str):
        raise TypeError(f"{argument} must be 'auto', 'cpu', 'cuda' or a torch.device, got {type(device).__name__}")
    elif device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, ValueError):
            raise ValueError(f"{argument}={device!r} is not a torch device: "
                             f"use {argument}={q}auto{q}, {q}cpu{q} or {q}cuda{q}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{argument}={str(dev)!r} but this torch ({torch.__version__}) sees no CUDA GPU: "
                         f"use {argument}={q}cpu{q} (or {q}auto{q})")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"{argument}={str(dev)!r} but only {torch.cuda.device_count()} CUDA device(s) exist")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{argument}={str(dev)!r} but MPS is not available: use {argument}={q}cpu{q} (or {q}auto{q})")
    if dev.type not in ("cuda", "mps", "cpu"):
        raise ValueError(f"{argument}={str(dev)!r} is not supported: "
                         f"use {argument}={q}auto{q}, {q}cpu{q} or {q}cuda{q}")
    return dev
