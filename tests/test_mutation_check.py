"""The mutation check's definitions stay valid (CONTRIBUTING.md, "Mutation check"): every
mutant's snippet occurs exactly once in its file, so a formula that moves or changes fails
here at once, not silently in the mutation run. Running the mutants is .ci/mutate.py's job."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _load():
    spec = importlib.util.spec_from_file_location("_mutate", ROOT / ".ci" / "mutate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_mutant_applies_exactly_once():
    mutate = _load()
    assert mutate.check_definitions(mutate.MUTANTS) == []
    names = [m.name for m in mutate.MUTANTS]
    assert sum(not m.is_cpp for m in mutate.MUTANTS) >= 25 and sum(m.is_cpp for m in mutate.MUTANTS) >= 3
    # every part and the numpy twins have mutants
    for prefix in ("truncation.", "retraining.", "recursion.", "hodge.", "dae.", "metrics.", "reference.", "cpp."):
        assert any(n.startswith(prefix) for n in names), prefix


def test_a_missing_snippet_is_reported():
    mutate = _load()
    m = mutate.MUTANTS[0]
    broken = mutate.Mutant("broken", m.file, m.old + "  # not in the file", m.new, m.tests, m.why)
    problems = mutate.check_definitions([broken, broken])
    assert any("occurs 0 times" in p for p in problems) and any("duplicate" in p for p in problems)
