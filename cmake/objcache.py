"""Compiler launcher that reuses object files between builds (a minimal ccache).

pip builds in an isolated environment, and scikit-build-core clears ``CMakeFiles/`` (where
CMake keeps the object files) whenever that environment is new, so ``pip install .``
followed by ``pip install ".[test]"`` would compile every translation unit twice. CMake
runs each compile as ``python objcache.py CACHE_DIR <compiler command>``; the object file is
keyed by the compiler command and the preprocessed source (so any change to a header, a
flag or the compiler's output gives a new key), and a hit copies the stored object and
dependency file instead of compiling. docs/benchmarks.md, "Build", gives the measured times.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

KEEP = 200  # cached objects kept (the newest); about 10 per build of this project


def _value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args[:-1]):
        if a == flag:
            return args[i + 1]
    return None


def _preprocess_command(cmd: list[str]) -> list[str]:
    out, skip = [], False
    for a in cmd:
        if skip:
            skip = False
            continue
        if a in ("-o", "-MF", "-MT", "-MQ"):
            skip = True
            continue
        if a in ("-MD", "-MMD", "-c"):
            continue
        out.append(a)
    return out + ["-E"]


def _store(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name, suffix=".tmp")
    os.close(fd)
    shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


def main(argv: list[str]) -> int:
    cache, cmd = Path(argv[1]), argv[2:]
    obj, dep = _value(cmd, "-o"), _value(cmd, "-MF")
    if obj is None or "-c" not in cmd:  # not a compile (a link, a probe): run as is
        return subprocess.call(cmd)
    pre = subprocess.run(_preprocess_command(cmd), capture_output=True)
    if pre.returncode != 0:
        return subprocess.call(cmd)  # let the compiler report the error
    h = hashlib.sha256("\0".join(cmd).encode())
    h.update(pre.stdout)
    key = h.hexdigest()
    cache.mkdir(parents=True, exist_ok=True)
    cached_obj, cached_dep = cache / f"{key}.o", cache / f"{key}.d"
    if cached_obj.exists() and (dep is None or cached_dep.exists()):
        shutil.copyfile(cached_obj, obj)
        if dep is not None:
            shutil.copyfile(cached_dep, dep)
        os.utime(cached_obj)
        return 0
    rc = subprocess.call(cmd)
    if rc == 0:
        if dep is not None and Path(dep).exists():
            _store(Path(dep), cached_dep)
        _store(Path(obj), cached_obj)
        entries = sorted(cache.glob("*.o"), key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[KEEP:]:
            old.unlink(missing_ok=True)
            old.with_suffix(".d").unlink(missing_ok=True)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
