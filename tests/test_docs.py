"""The documentation site builds with warnings as errors, and its API reference covers
every public name (docs/conf.py, docs/_api.py)."""
from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _api():
    sys.path.insert(0, str(DOCS))
    try:
        return importlib.import_module("_api")
    finally:
        sys.path.remove(str(DOCS))


def test_api_reference_documents_every_public_name_once():
    api = _api()
    documented = api.documented()
    seen: dict[int, str] = {}
    for module, names in documented.items():
        for name in names:
            obj = getattr(importlib.import_module(module), name)
            assert id(obj) not in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)), \
                f"{module}.{name} is documented twice (also on {seen[id(obj)]})"
            seen[id(obj)] = module
    for module, _ in api.MODULES:
        mod = importlib.import_module(module)
        for name in api.exported(mod):
            assert id(getattr(mod, name)) in seen, f"{module}.{name} is missing from the API reference"
    # every public package of the library is listed (the walk cannot silently skip one)
    import modelcollapse

    listed = {m for m, _ in api.MODULES}
    for part in ("metrics", "recursion", "truncation", "hodge", "retraining", "dae", "random", "results"):
        assert f"modelcollapse.{part}" in listed
    assert set(api.exported(modelcollapse)) <= {n for names in documented.values() for n in names} | {
        n for n in api.exported(modelcollapse) if id(getattr(modelcollapse, n)) in seen}


@pytest.mark.slow
def test_docs_site_builds_without_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    pytest.importorskip("pydata_sphinx_theme")
    from sphinx.cmd.build import build_main

    log = tmp_path / "warnings.txt"
    code = build_main(["-W", "--keep-going", "-q", "-b", "html", "-w", str(log), "-d", str(tmp_path / "doctrees"),
                       str(DOCS), str(tmp_path / "html")])
    assert code == 0, log.read_text()
    html = (tmp_path / "html" / "api.html").read_text(encoding="utf-8")
    for name in ("sample_reverse", "GaussianMixture", "run_retraining", "limit_law", "hellinger", "Claim"):
        assert name in html, name
