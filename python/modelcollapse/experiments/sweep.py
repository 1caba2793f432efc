"""``modelcollapse sweep``: an experiment over a parameter grid and several seeds, run in
parallel processes (joblib) or on a Dask cluster, merged into one Parquet table.

Each cell writes its results into its own folder and a ``DONE`` marker last, so a sweep
that is interrupted and restarted skips the finished cells.

Trust model of ``scheduler`` (docs/reliability.md, "Dask schedulers"): Dask's protocol
carries pickles both ways, so whoever runs the scheduler (or sits between it and this
process on a plaintext connection) can run code in this process. Connect only to a
scheduler you control; across a network, use ``tls://`` with certificates (``security``).
A plaintext ``tcp://`` address that is not on this machine gets a warning.
"""
from __future__ import annotations

import hashlib
import ipaddress
import itertools
import socket
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from .._checkpoint import atomic_file, atomic_write_text, dumps_strict
from . import get


def parse_grid(items: list[str] | None) -> dict[str, list[str]]:
    """``["a=1,2", "b=x"]`` -> ``{"a": ["1", "2"], "b": ["x"]}``."""
    grid: dict[str, list[str]] = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--grid expects key=v1,v2,..., got {item!r}")
        key, values = item.split("=", 1)
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not vals:
            raise ValueError(f"--grid {key} has no values")
        grid[key.strip()] = vals
    return grid


def cell_name(overrides: dict[str, str]) -> str:
    text = ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))
    safe = "".join(c if c.isalnum() or c in "=.-_," else "_" for c in text)[:80]
    return f"{safe}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"


def make_cells(name: str, preset: str, grid: dict[str, list[str]], seeds: int) -> list[dict[str, str]]:
    """Every grid point x seed, each validated against the experiment's config up front."""
    exp = get(name)
    if seeds < 1:
        raise ValueError("--seeds must be >= 1")
    if seeds > 1 and "seed" not in exp.fields():
        raise ValueError(f"experiment {name} has no 'seed' field; use --seeds 1")
    if "seed" in grid and seeds > 1:
        raise ValueError("give either --seeds or a grid over seed, not both")
    keys = list(grid)
    cells = []
    for values in itertools.product(*(grid[k] for k in keys)):
        for s in range(seeds):
            overrides = dict(zip(keys, values, strict=True))
            if seeds > 1:
                overrides["seed"] = str(s)
            exp.make_config(preset, overrides)  # raises ValueError on unknown keys / bad values
            cells.append(overrides)
    return cells


def cell_values(config: Any, overrides: dict[str, str]) -> dict[str, Any]:
    """The parsed config values of a cell's overridden keys (numbers stay numbers; tuples
    and lists become comma-joined strings, which Parquet stores as one column type)."""
    values: dict[str, Any] = {}
    for key in overrides:
        value = getattr(config, key)
        values[key] = ",".join(map(str, value)) if isinstance(value, (tuple, list)) else value
    return values


def run_cell(name: str, preset: str, overrides: dict[str, str], cell_dir: str) -> str:
    """Run one cell (in a worker); skipped when its DONE marker exists."""
    path = Path(cell_dir)
    if (path / "DONE").exists():
        return "skipped"
    exp = get(name)
    exp.run(exp.make_config(preset, overrides), path, progress=False)
    atomic_write_text(path / "DONE", dumps_strict(overrides))
    return "ran"


def _is_loopback(host: str) -> bool:
    """Whether every address ``host`` resolves to is on this machine."""
    if host in ("", "localhost"):
        return True
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    try:
        return all(ipaddress.ip_address(str(info[4][0]).split("%")[0]).is_loopback for info in infos)
    except ValueError:
        return False


def scheduler_security(tls_ca_file: str | None = None, tls_cert: str | None = None,
                       tls_key: str | None = None) -> Any | None:
    """A ``distributed.Security`` requiring TLS from certificate files, or None if none given.

    Parameters
    ----------
    tls_ca_file : str, optional
        The certificate authority that signed the scheduler's certificate.
    tls_cert, tls_key : str, optional
        This client's certificate and private key (the key may live in ``tls_cert``).
    """
    if not any((tls_ca_file, tls_cert, tls_key)):
        return None
    for arg, value in (("tls_ca_file", tls_ca_file), ("tls_cert", tls_cert), ("tls_key", tls_key)):
        if value is not None and not Path(value).is_file():
            raise ValueError(f"{arg}: no such file {value!r}")
    if tls_ca_file is None or tls_cert is None:
        raise ValueError("TLS needs both tls_ca_file and tls_cert (and tls_key unless the key is in tls_cert)")
    from distributed.security import Security

    return Security(tls_ca_file=tls_ca_file, tls_client_cert=tls_cert, tls_client_key=tls_key,
                    require_encryption=True)


def connect_scheduler(address: str, security: Any | None = None, timeout: float = 10.0) -> Any:
    """A ``distributed.Client`` for ``address``, failing fast with one line if unreachable.

    Warns (``UserWarning``) when ``address`` is plaintext (``tcp://`` or no scheme) and not on
    this machine: see the trust model in the module docstring.
    """
    try:
        from distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ValueError("scheduler needs the dask extra: pip install 'modelcollapse[dask]'") from exc
    if not isinstance(address, str) or not address.strip():
        raise TypeError(f"scheduler must be an address such as tls://host:8786 or a distributed.Client, "
                        f"got {address!r}")
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls", "inproc", "ucx", "ws", "wss"):
        raise ValueError(f"scheduler address {address!r} has an unknown scheme {parts.scheme!r} "
                         "(use tls://HOST:PORT, or tcp://HOST:PORT on this machine)")
    if parts.scheme == "tls" and security is None:
        raise ValueError(f"scheduler {address!r} is tls:// but no certificates were given "
                         "(--tls-ca-file and --tls-cert)")
    if parts.scheme in ("tcp", "ws") and not _is_loopback(parts.hostname or ""):
        warnings.warn(f"scheduler {address!r} is a plaintext connection to another machine: whoever runs that "
                      "scheduler, or can intercept the connection, can run code in this process "
                      "(Dask's protocol carries pickles). Use tls:// with certificates across a network.",
                      UserWarning, stacklevel=3)
    try:
        return Client(address, security=security, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                         f"({type(exc).__name__}); is it running, and is the address right?") from None


def local_client(jobs: int = -1) -> Any:
    """A ``distributed.Client`` on a new Dask ``LocalCluster`` of ``jobs`` worker processes
    (-1: one per core), one thread each: ``scheduler="local"`` / ``--scheduler local``."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ValueError("scheduler local needs the dask extra: pip install 'modelcollapse[dask]'") from exc
    import os

    workers = (os.cpu_count() or 1) if jobs == -1 else jobs
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"jobs must be -1 or a positive number of workers, got {jobs!r}")
    return Client(LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None))


def run_sweep(name: str, preset: str, grid: dict[str, list[str]], seeds: int, out_dir: str | Path,
              scheduler: str | Any | None = None, jobs: int = -1,
              log: Callable[[str], None] = print, *, security: Any | None = None,
              connect_timeout: float = 10.0) -> pd.DataFrame:
    """Run the sweep and return (and save as ``sweep.parquet``) the merged tidy table.

    Parameters
    ----------
    scheduler : str or distributed.Client, optional
        None for local processes (joblib, ``jobs`` workers, -1 = all cores), ``"local"`` for
        a Dask ``LocalCluster`` of ``jobs`` workers, or a Dask scheduler address /
        ``distributed.Client``. Only connect to a scheduler you trust
        (module docstring).
    security : distributed.Security, optional
        TLS settings for an address (see :func:`scheduler_security`).
    connect_timeout : float
        Seconds to wait for the scheduler before failing with a one-line ValueError.
    """
    out = Path(out_dir)
    cells = make_cells(name, preset, grid, seeds)
    dirs = [str(out / "cells" / cell_name(c)) for c in cells]
    todo = [(c, d) for c, d in zip(cells, dirs, strict=True) if not (Path(d) / "DONE").exists()]
    log(f"sweep {name}: {len(cells)} cells, {len(cells) - len(todo)} already finished, {len(todo)} to run")
    start = time.perf_counter()
    if todo:
        if scheduler is None:
            from joblib import Parallel, delayed

            Parallel(n_jobs=jobs, backend="loky")(delayed(run_cell)(name, preset, c, d) for c, d in todo)
        else:
            client = scheduler if not isinstance(scheduler, str) else local_client(jobs) \
                if scheduler == "local" else connect_scheduler(scheduler, security, connect_timeout)
            try:
                futures = client.map(run_cell, [name] * len(todo), [preset] * len(todo), [c for c, _ in todo],
                                     [d for _, d in todo], pure=False)
                client.gather(futures)
            finally:
                if client is not scheduler:
                    client.close()
    exp = get(name)
    frames, claim_frames = [], []
    for c, d in zip(cells, dirs, strict=True):
        df = pd.read_parquet(Path(d) / f"{name}.parquet")
        # The typed config values (not the command-line strings): `sweep_delta == 0.05` works.
        typed = cell_values(exp.make_config(preset, c), c)
        for key, value in typed.items():
            df[f"sweep_{key}"] = [value] * len(df)
        df["cell"] = Path(d).name
        frames.append(df)
        claims_path = Path(d) / f"{name}_claims.parquet"
        if claims_path.exists():
            cf = pd.read_parquet(claims_path)
            for key, value in typed.items():
                cf[f"sweep_{key}"] = [value] * len(cf)
            cf["cell"] = Path(d).name
            claim_frames.append(cf)
    table = pd.concat(frames, ignore_index=True)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_file(out / "sweep.parquet", "wb") as fh:
        table.to_parquet(fh, index=False)
    if claim_frames:
        with atomic_file(out / "sweep_claims.parquet", "wb") as fh:
            pd.concat(claim_frames, ignore_index=True).to_parquet(fh, index=False)
    summary = {"experiment": name, "preset": preset, "grid": grid, "seeds": seeds, "cells": len(cells),
               "ran": len(todo), "wall_time_s": time.perf_counter() - start}
    atomic_write_text(out / "sweep.json", dumps_strict(summary, indent=2))
    log(f"merged table: {out / 'sweep.parquet'} ({len(table)} rows)")
    return table
