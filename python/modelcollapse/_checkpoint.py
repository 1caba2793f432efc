"""Files the library writes and reads back: atomic writes, strict JSON, and a data-only
checkpoint format.

- :func:`atomic_file` / :func:`atomic_write_bytes` / :func:`atomic_write_text`: write to a
  temporary file in the destination folder, flush, fsync, then ``os.replace`` it over the
  destination, so a crash or an exception mid-write leaves the previous file intact (never a
  half-written one). Every result table, JSON sidecar and checkpoint goes through them.
- :func:`strict_json` / :func:`dumps_strict` / :func:`from_strict_json`: JSON that strict
  parsers accept. JSON has no ``Infinity`` or ``NaN``, so non-finite floats are written as
  the strings ``"inf"``, ``"-inf"`` and ``"nan"`` (and converted back by the library where
  it reads its own files).
- :func:`save_data` / :func:`load_data`: checkpoints that hold data only. A nested structure
  of dicts / lists / tuples whose leaves are numpy arrays, numpy scalars, Python numbers,
  strings, bools and ``None`` is flattened into one ``.npz`` file: every array is stored as
  an ``.npy`` member and the structure as a JSON tree (member ``__tree__``). Reading uses
  ``np.load(..., allow_pickle=False)``, so loading a file from someone else can never run
  code (unlike pickle, whose loader calls whatever the file names). The round trip is exact:
  same types (tuple stays tuple, ``np.float64`` stays ``np.float64``, 0-d arrays stay 0-d
  arrays, int dict keys stay ints), same dtypes, same bits. Anything else (an arbitrary
  object, an object array) is refused at save time with a TypeError naming its key.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "modelcollapse-data"
VERSION = 1
_TREE_KEY = "__tree__"


# ----------------------------------------------------------------------------- atomic writes
def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not supported everywhere (e.g. Windows): best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file next to ``path`` for writing; on success fsync it and move it
    over ``path`` (``os.replace``: atomic on POSIX and Windows). On any exception the
    temporary file is removed and ``path`` is left as it was."""
    if mode not in ("wb", "w"):
        raise ValueError(f"mode must be 'wb' or 'w', got {mode!r}")
    path = Path(path)
    # Same folder, so that os.replace is a rename on one file system; a unique name, so
    # that concurrent writers never share a temporary file; "x" refuses to follow an
    # existing file or link.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    kwargs: dict[str, Any] = {"encoding": "utf-8", "newline": ""} if mode == "w" else {}
    try:
        with open(tmp, mode.replace("w", "x"), **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_file`)."""
    with atomic_file(path, "w") as fh:
        fh.write(text)


# ----------------------------------------------------------------------------- strict JSON
_NONFINITE = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def _float_token(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (Python or numpy) replaced by the string
    ``"inf"``, ``"-inf"`` or ``"nan"``, numpy scalars / arrays turned into Python numbers /
    lists and tuples into lists, so that ``json.dumps(..., allow_nan=False)`` accepts it."""
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return strict_json(obj.tolist())
    if isinstance(obj, np.generic):
        return strict_json(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return _float_token(obj)
    return obj


def dumps_strict(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`strict_json` ``(obj)`` with ``allow_nan=False``: the output
    never contains ``Infinity`` or ``NaN``."""
    return json.dumps(strict_json(obj), allow_nan=False, **kwargs)


def from_strict_json(value: Any) -> Any:
    """Inverse of :func:`strict_json` for one value: the strings ``"inf"``, ``"-inf"``,
    ``"nan"`` become floats again; anything else is returned unchanged."""
    if isinstance(value, str) and value in _NONFINITE:
        return _NONFINITE[value]
    return value


# ----------------------------------------------------------------------------- data-only codec
def _child(path: str, key: Any) -> str:
    # top-level string keys read as names: state['model'], not ['state']['model']
    return key if path == "" and isinstance(key, str) else f"{path}[{key!r}]"


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray], what: str) -> Any:
    # bool before int (bool is an int); numpy scalars before float (np.float64 is a float)
    if path == "" and not isinstance(obj, (dict, list, tuple)):
        path = "the top level"
    if obj is None:
        return {"t": "none"}
    if isinstance(obj, np.ndarray):
        if type(obj) is not np.ndarray:
            raise TypeError(f"cannot checkpoint {what}: {path} is a {type(obj).__name__} (an ndarray subclass); "
                            "store a plain numpy array (np.asarray)")
        if obj.dtype.hasobject:
            raise TypeError(f"cannot checkpoint {what}: {path} is an array of Python objects (dtype {obj.dtype}); "
                            "checkpoints hold data only (numeric, bool or string arrays)")
        key = f"a{len(arrays)}"
        arrays[key] = obj
        return {"t": "array", "k": key}
    if isinstance(obj, np.generic):
        arr = np.asarray(obj)
        if arr.dtype.hasobject:
            raise TypeError(f"cannot checkpoint {what}: {path} is a numpy object scalar; checkpoints hold data only")
        key = f"a{len(arrays)}"
        arrays[key] = arr
        return {"t": "scalar", "k": key}
    if type(obj) is bool:
        return {"t": "bool", "v": obj}
    if type(obj) is int:
        return {"t": "int", "v": str(obj)}          # a string: no precision loss in any JSON reader
    if type(obj) is float:
        return {"t": "float", "v": repr(obj)}       # repr round-trips exactly (inf, nan, -0.0 too)
    if type(obj) is complex:
        return {"t": "complex", "v": [repr(obj.real), repr(obj.imag)]}
    if type(obj) is str:
        return {"t": "str", "v": obj}
    if type(obj) in (list, tuple):
        return {"t": type(obj).__name__,
                "v": [_encode(v, _child(path, i), arrays, what) for i, v in enumerate(obj)]}
    if isinstance(obj, dict):                       # OrderedDict (torch state_dict) reads back as dict
        items = []
        for k, v in obj.items():
            if k is not None and type(k) not in (str, int, bool, float):
                raise TypeError(f"cannot checkpoint {what}: {path or 'the top level'} has a key of type "
                                f"{type(k).__name__} ({k!r}); dict keys must be str, int, float, bool or None")
            items.append([_encode(k, path or "a key", arrays, what), _encode(v, _child(path, k), arrays, what)])
        return {"t": "dict", "v": items}
    raise TypeError(f"cannot checkpoint {what}: {path} is a {type(obj).__module__}.{type(obj).__qualname__}; "
                    "checkpoints hold data only (numpy arrays, numbers, strings, bools, None and "
                    "dicts / lists / tuples of them)")


def encode(obj: Any, what: str = "object", root: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Flatten ``obj`` into ``(tree, arrays)``: a JSON-able tree describing the structure and
    the arrays it refers to by name. Raises TypeError naming ``what`` and the key path
    (starting with ``root``) of the first value that is not data."""
    arrays: dict[str, np.ndarray] = {}
    node = _encode(obj, root, arrays, what)
    return {"format": FORMAT, "version": VERSION, "root": node}, arrays


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refusal(exc: BaseException) -> str:
    if "pickle" in str(exc).lower():
        return "it holds pickled data, never loaded because pickles can execute code"
    return _first_line(exc)


def _bad(source: str, why: str) -> ValueError:
    return ValueError(f"{source} is not a valid modelcollapse data file ({why}); it was not loaded")


def decode(tree: Any, arrays: Any, source: str = "checkpoint") -> Any:
    """Inverse of :func:`encode`; ``arrays`` maps names to arrays. Raises ValueError naming
    ``source`` for a malformed tree."""
    if not isinstance(tree, dict) or tree.get("format") != FORMAT:
        raise _bad(source, "no format marker")
    if tree.get("version") != VERSION:
        raise _bad(source, f"format version {tree.get('version')!r}, this version reads {VERSION}")

    def node(n: Any, depth: int) -> Any:
        if depth > 200:
            raise _bad(source, "structure nested deeper than 200 levels")
        if not isinstance(n, dict) or not isinstance(n.get("t"), str):
            raise _bad(source, "malformed structure node")
        t, v = n["t"], n.get("v")
        try:
            if t == "none":
                return None
            if t in ("array", "scalar"):
                key = n.get("k")
                if not isinstance(key, str) or key not in arrays:
                    raise _bad(source, f"missing array {key!r}")
                arr = arrays[key]
                return arr[()] if t == "scalar" else arr
            if t == "bool" and type(v) is bool:
                return v
            if t == "int" and isinstance(v, str):
                return int(v)
            if t == "float" and isinstance(v, str):
                return float(v)
            if t == "complex" and isinstance(v, list) and len(v) == 2:
                return complex(float(v[0]), float(v[1]))
            if t == "str" and isinstance(v, str):
                return v
            if t in ("list", "tuple") and isinstance(v, list):
                items = [node(x, depth + 1) for x in v]
                return items if t == "list" else tuple(items)
            if t == "dict" and isinstance(v, list):
                out = {}
                for pair in v:
                    if not (isinstance(pair, list) and len(pair) == 2):
                        raise _bad(source, "malformed dict entry")
                    key = node(pair[0], depth + 1)
                    if key is not None and type(key) not in (str, int, bool, float):
                        raise _bad(source, "dict key of a non-scalar type")
                    out[key] = node(pair[1], depth + 1)
                return out
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, ValueError) and str(exc).startswith(source):
                raise
            raise _bad(source, f"bad {t} value") from None
        raise _bad(source, f"unknown node type {t!r}")

    return node(tree.get("root"), 0)


def save_data(path: str | Path, obj: Any, what: str = "object", root: str = "") -> None:
    """Write ``obj`` (see the module docstring) to the ``.npz`` file ``path`` atomically.

    Raises TypeError (naming ``what`` and the key path) before writing anything when ``obj``
    holds a value that is not data."""
    tree, arrays = encode(obj, what, root)
    if _TREE_KEY in arrays:  # pragma: no cover - array names are a0, a1, ...
        raise AssertionError
    blob = np.frombuffer(json.dumps(tree, allow_nan=False).encode("utf-8"), dtype=np.uint8)
    with atomic_file(path, "wb") as fh:
        np.savez(fh, allow_pickle=False, **{_TREE_KEY: blob}, **arrays)


def load_data(path: str | Path) -> Any:
    """Read a file written by :func:`save_data`, without ever unpickling.

    Raises ValueError naming the file when it is not such a file (e.g. it holds an object
    array, which would need pickle, or is not an ``.npz`` at all)."""
    path = Path(path)
    source = str(path)
    try:
        z = np.load(path, allow_pickle=False)
    except ValueError as exc:
        # e.g. "Cannot load file containing pickled data when allow_pickle=False": refused, not run
        raise _bad(source, _refusal(exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _bad(source, f"unreadable: {_first_line(exc)}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise _bad(source, "not an .npz archive")
    try:
        arrays = {name: z[name] for name in z.files}
    except ValueError as exc:
        # e.g. "Object arrays cannot be loaded when allow_pickle=False": refused, not run
        raise _bad(source, _refusal(exc)) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _bad(source, f"unreadable archive member: {_first_line(exc)}") from None
    finally:
        z.close()
    blob = arrays.pop(_TREE_KEY, None)
    if blob is None or blob.dtype != np.uint8 or blob.ndim != 1:
        raise _bad(source, "no structure member")
    try:
        tree = json.loads(blob.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _bad(source, "structure is not JSON") from None
    return decode(tree, arrays, source)
