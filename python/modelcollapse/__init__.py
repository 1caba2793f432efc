"""modelcollapse: simulate, measure and explain model collapse (work in progress)."""
from . import _core

__version__ = "0.1.0"


def default_threads() -> int:
    """Number of threads the compiled kernels use when ``threads=0``."""
    return int(_core.hardware_threads())

# High-dimensional DAE (issue 6)
from . import dae, dae_theory  # noqa: E402,F401
