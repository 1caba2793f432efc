"""Saving experiment results so that nothing is lost: a tidy Parquet table plus a JSON
sidecar with the configuration, seed, versions and wall time (docs/cli.md).

Both files are written atomically (a temporary file in the same folder, fsync, then
``os.replace``): an interrupted or failing save leaves the previous files intact. The
sidecar is strict JSON: non-finite floats are written as the strings ``"inf"``, ``"-inf"``
and ``"nan"`` (:func:`load_sidecar` converts them back)."""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pandas loads when a table is made: `import modelcollapse` stays fast
    import pandas as pd

from ._checkpoint import atomic_file, atomic_write_text, dumps_strict, from_strict_json


def versions() -> dict[str, str | None]:
    """Versions of the library and of the packages that shape its results."""
    import pandas as pd

    from . import _core
    from ._version import version as __version__

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
    """Write ``<out_dir>/<name>.parquet`` and ``<out_dir>/<name>.json``; returns the Parquet path.

    Each file is replaced atomically (never left half-written). The JSON sidecar is strict
    JSON: non-finite floats (e.g. an infinite synthetic ratio) are stored as the strings
    ``"inf"``, ``"-inf"``, ``"nan"``; read it back with :func:`load_sidecar`.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.parquet"
    with atomic_file(path, "wb") as fh:
        table.to_parquet(fh, index=False)
    sidecar = {"name": name, "config": _jsonable(config), "versions": versions(),
               "wall_time_s": wall_time_s, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
               "rows": int(len(table)), "columns": list(map(str, table.columns))}
    if extra:
        sidecar.update(_jsonable(extra))
    atomic_write_text(out / f"{name}.json", dumps_strict(sidecar, indent=2))
    return path


def _restore_nonfinite(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _restore_nonfinite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_restore_nonfinite(v) for v in obj]
    return from_strict_json(obj)


def load_sidecar(path: str | Path) -> dict[str, Any]:
    """Read a JSON sidecar written by :func:`save_results`, with the strings ``"inf"``,
    ``"-inf"`` and ``"nan"`` turned back into floats."""
    return _restore_nonfinite(json.loads(Path(path).read_text(encoding="utf-8")))


@dataclasses.dataclass(frozen=True)
class Record:
    """Base of the results the library returns: a frozen dataclass.

    Fields are read as attributes (``run.b``); ``run["b"]`` and ``run.keys()`` also work, so
    code written for results that used to be dicts keeps working. :meth:`to_frame` gives a
    tidy table for plotting or overlaying a simulation on its theory: the fields that share
    the leading length (one row per time, step or round) become columns, matrices per row
    become one column per entry (``Q[0,1]``), scalars are repeated on every row.
    """

    def keys(self) -> list[str]:
        return [f.name for f in dataclasses.fields(self)]

    def __getitem__(self, key: str) -> Any:
        if key not in self.keys():
            raise KeyError(f"{type(self).__name__} has no field {key!r}; fields: {', '.join(self.keys())}")
        return getattr(self, key)

    def __contains__(self, key: object) -> bool:
        return key in self.keys()

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (not copied)."""
        return {k: getattr(self, k) for k in self.keys()}

    def to_frame(self) -> pd.DataFrame:
        """A tidy DataFrame of the per-row fields (see the class docstring)."""
        values = self.to_dict()
        arrays = {k: np.asarray(v) for k, v in values.items()
                  if isinstance(v, (np.ndarray, list, tuple)) and np.asarray(v).ndim >= 1
                  and np.asarray(v).dtype.kind in "biufcUSb"}
        lengths = [a.shape[0] for a in arrays.values()]
        rows = max(set(lengths), key=lengths.count) if lengths else 1
        columns: dict[str, Any] = {}
        for key, value in values.items():
            arr = arrays.get(key)
            if arr is not None and arr.shape[0] == rows:
                if arr.ndim == 1:
                    columns[key] = arr
                else:
                    flat = arr.reshape(rows, -1)
                    for j, idx in enumerate(np.ndindex(*arr.shape[1:])):
                        columns[f"{key}[{','.join(map(str, idx))}]"] = flat[:, j]
            elif np.ndim(value) == 0 and isinstance(value, (int, float, bool, str, np.generic)):
                columns[key] = [value] * rows
        import pandas as pd

        return pd.DataFrame(columns)


__all__ = ["Record", "save_results", "load_sidecar", "versions"]
