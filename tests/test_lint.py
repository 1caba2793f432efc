"""The linters are part of the test run (CONTRIBUTING.md, "Lint"): ruff over the tree and
mypy over the package, with the settings of pyproject.toml. Skipped where the tools are not
installed (they come with the ``test`` extra)."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    if shutil.which("ruff") is None:
        pytest.skip("ruff is not installed (pip install '.[test]')")
    res = _run("ruff", "check", "--no-cache", ".")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]


def test_mypy_is_clean():
    pytest.importorskip("mypy")
    res = _run(sys.executable, "-m", "mypy", "--no-incremental")
    assert res.returncode == 0, res.stdout[-5000:] + res.stderr[-2000:]
