"""The one place the experiments get matplotlib from and save figures with.

Figures are drawn off-screen (the Agg backend: experiments run on servers and in workers
without a display) and saved atomically, like every other result file, so an interrupted
run never leaves a truncated PNG.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .._checkpoint import atomic_file


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the off-screen Agg backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | Path, *, dpi: int = 110, tight: bool = False) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically, close it, and return the path."""
    path = Path(path)
    plt = pyplot()
    try:
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    finally:
        plt.close(fig)
    return path
