"""Sphinx configuration of the modelcollapse documentation site.

Build: ``pip install ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html``
(tests/test_docs.py builds it with warnings as errors). The narrative pages are the
Markdown files of this folder (MyST); the API reference is generated from the docstrings.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
try:  # the installed package; else a source checkout with the built _core copied into python/
    import modelcollapse  # noqa: F401
except ImportError:
    sys.path.insert(0, str(ROOT / "python"))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _api  # noqa: E402  (the public API, module by module)

# The API page is written from the modules' __all__ at every build, so it cannot fall behind.
(Path(__file__).resolve().parent / "api.rst").write_text(_api.render(), encoding="utf-8")

project = "modelcollapse"
author = "modelcollapse developers"
copyright = "2026, modelcollapse developers"
try:
    from modelcollapse import __version__ as release
except Exception:  # pragma: no cover - the site can be built from an uninstalled checkout
    release = "0.1.0"
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "scripts", "Thumbs.db", ".DS_Store"]
templates_path = ["_templates"]

# numpy-style docstrings, the public API only (each package's __all__)
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_preprocess_types = True
autosummary_generate = True
autosummary_imported_members = True
autosummary_ignore_module_all = False  # document each module's __all__, nothing private
autodoc_default_options = {"members": True, "show-inheritance": True, "ignore-module-all": False}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autoclass_content = "both"

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3


html_theme = "pydata_sphinx_theme"
html_title = "modelcollapse"
html_theme_options = {"navigation_depth": 2, "show_toc_level": 2}
nitpicky = False


_LITERAL = re.compile(r"(``.*?``|`[^`]*`)")


def _escape_bars(app, what, name, obj, options, lines):
    # Docstrings write norms and absolute values as |x| and |p - q|, which reStructuredText
    # reads as substitution references: escape the bars outside literals and roles.
    for i, line in enumerate(lines):
        if "|" in line:
            parts = _LITERAL.split(line)
            lines[i] = "".join(p if j % 2 else p.replace("|", "\\|") for j, p in enumerate(parts))


def setup(app):
    app.connect("autodoc-process-docstring", _escape_bars)
