"""Saving experiment results so that nothing is lost: a tidy Parquet table plus a JSON
sidecar with the configuration, seed, versions and wall time (conventions section 8)."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def versions() -> dict[str, str | None]:
    """Versions of the library and of the packages that shape its results."""
    from . import __version__, _core

    out: dict[str, str | None] = {"modelcollapse": __version__, "core": _core.__version__,
                                  "python": platform.python_version(), "numpy": np.__version__,
                                  "pandas": pd.__version__}
    # Read installed versions from package metadata: importing torch just to read its
    # version would cost seconds.
    for key, dist in (("scipy", "scipy"), ("torch", "torch"), ("sklearn", "scikit-learn"), ("ot", "POT")):
        try:
            out[key] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            out[key] = None
    return out


def _jsonable(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return _jsonable(dataclasses.asdict(obj))
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def save_results(table: pd.DataFrame, out_dir: str | Path, name: str, config: Any,
                 wall_time_s: float | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``<out_dir>/<name>.parquet`` and ``<out_dir>/<name>.json``; returns the Parquet path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.parquet"
    table.to_parquet(path, index=False)
    sidecar = {"name": name, "config": _jsonable(config), "versions": versions(),
               "wall_time_s": wall_time_s, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "rows": int(len(table)), "columns": list(map(str, table.columns))}
    if extra:
        sidecar.update(_jsonable(extra))
    (out / f"{name}.json").write_text(json.dumps(sidecar, indent=2))
    return path
