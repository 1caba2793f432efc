"""The package version, read from the installed distribution's metadata.

``pyproject.toml`` is the one place the version is written: an installed package reports
what its metadata says (scikit-build-core also passes it to the compiled core as
``SKBUILD_PROJECT_VERSION``), and a source tree run without installing (``PYTHONPATH=python``)
reads it from the tree's ``pyproject.toml``.
"""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _installed_version() -> str | None:
    """The metadata version, if the distribution that provides it is this very copy."""
    try:
        dist = metadata.distribution("modelcollapse")
    except metadata.PackageNotFoundError:
        return None
    # An installed modelcollapse elsewhere must not lend its version to a source tree.
    try:
        here = Path(str(dist.locate_file("modelcollapse"))).resolve()
    except (OSError, TypeError, ValueError):
        return None
    return dist.version if here == _PACKAGE_DIR else None


def _source_tree_version() -> str | None:
    """``version = "..."`` of the [project] table of the tree's pyproject.toml, if any."""
    pyproject = _PACKAGE_DIR.parents[1] / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    found = project and re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), flags=re.M)
    return found.group(1) if found else None


#: The version of this copy of modelcollapse ("0+unknown" when neither source says).
version: str = _installed_version() or _source_tree_version() or "0+unknown"
