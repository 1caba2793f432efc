"""Optional dependencies through one helper (docs/reliability.md): the core imports and
works without them; a feature that needs one fails with one ImportError that says how to
install it."""
from __future__ import annotations

import importlib
from types import ModuleType

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
