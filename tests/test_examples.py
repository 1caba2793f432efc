"""The README's Python examples and every docstring example run, so that documented usage
cannot silently break (docs/reliability.md)."""
from __future__ import annotations

import doctest
import importlib
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import modelcollapse

README = Path(__file__).resolve().parents[1] / "README.md"
# Modules whose import needs an optional dependency; their examples run when it is present.
_OPTIONAL = {"modelcollapse.retraining.torch_learners": "torch"}


def _readme_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert _readme_blocks(), "README.md has no ```python block to check"


@pytest.mark.parametrize("index", range(len(_readme_blocks())))
def test_readme_python_block_runs(index):
    exec(compile(_readme_blocks()[index], f"README.md[python block {index}]", "exec"), {})


def _modules() -> list[str]:
    names = ["modelcollapse"]
    for info in pkgutil.walk_packages(modelcollapse.__path__, "modelcollapse."):
        if not info.name.rsplit(".", 1)[-1].startswith("__"):
            names.append(info.name)
    return sorted(names)


@pytest.mark.parametrize("name", _modules())
def test_docstring_examples_run(name):
    if name in _OPTIONAL:
        pytest.importorskip(_OPTIONAL[name])
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, name, globs={**vars(module), "np": np, "mc": modelcollapse}) if t.examples]
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) failed in {name} (output above)"
