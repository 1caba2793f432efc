"""Dependencies run one way (CONTRIBUTING.md, "Layout"): a module imports only modules of
its own layer or of lower layers, the import graph has no cycle, and the numpy reference
(the test oracle) never imports the library it checks.

Imports are read from the source with ``ast`` (top-level and function-level alike), so a
cycle hidden by an import inside a function is still found.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "modelcollapse"

# Layers, lowest first. A module's layer is that of the longest prefix listed here.
LAYERS: list[tuple[str, ...]] = [
    ("_core", "_version", "_types", "_validation", "_optional", "_checkpoint", "results"),  # 0 foundations
    ("random", "mixture", "empirical", "sampler"),                                   # 1 core laws, sampler
    ("metrics",),                                                                    # 2 the only distances
    ("recursion",),                                                                  # 3 the retraining loop
    ("truncation", "hermite", "hodge", "retraining", "dae", "dae_theory"),           # 4 the parts
    ("experiments",),                                                                # 5 experiments
    ("cli", "__main__"),                                                             # 6 command line
]
# The package root re-exports the public API of every layer below the experiments.
ROOT_LAYER = 4.5


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path, name: str) -> set[str]:
    """Every modelcollapse module that ``path`` imports (absolute names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out: set[str] = set()
    # Imports under `if TYPE_CHECKING:` only serve annotations: they run at no time.
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and getattr(block.test, "id", getattr(block.test, "attr", None)) == "TYPE_CHECKING"
                   for stmt in block.body for n in ast.walk(stmt)}
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("modelcollapse")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("modelcollapse"):
                continue
            # `from . import x` imports the submodule x when there is one (its package's
            # __init__ runs too, but is no dependency of the importer's code)
            for alias in node.names:
                cand = f"{mod}.{alias.name}"
                where = PACKAGE.parent / Path(*cand.split("."))
                if where.with_suffix(".py").exists() or (where / "__init__.py").exists() or \
                        any(where.parent.glob(f"{alias.name}.*.so")) or where.with_suffix(".pyi").exists():
                    out.add(cand)
                else:
                    out.add(mod)
    return out


def _graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        graph[name] = _imports(path, name) - {name}
    return graph


def _layer(module: str) -> float:
    parts = module.split(".")
    if len(parts) == 1:
        return ROOT_LAYER
    if parts[1] == "reference":
        return -1  # checked separately
    for level, names in enumerate(LAYERS):
        if parts[1] in names:
            return level
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_architecture.py")


GRAPH = _graph()


def test_every_module_has_a_layer():
    for module in GRAPH:
        _layer(module)


def test_imports_run_downward():
    wrong = []
    for module, deps in GRAPH.items():
        mine = _layer(module)
        for dep in deps:
            if dep.startswith("modelcollapse.reference") or dep not in GRAPH:
                continue
            if _layer(dep) > mine and mine >= 0:
                wrong.append(f"{module} (layer {mine}) imports {dep} (layer {_layer(dep)})")
    assert not wrong, "imports that run upward:\n" + "\n".join(sorted(wrong))


def test_reference_imports_only_itself():
    for module, deps in GRAPH.items():
        if module.startswith("modelcollapse.reference"):
            foreign = [d for d in deps if not d.startswith("modelcollapse.reference")]
            assert not foreign, f"{module} (numpy reference) imports the library: {foreign}"


def test_no_import_cycles():
    # Tarjan-free check: a module may not reach itself. Package __init__ files re-exporting
    # their private modules are edges too (parent -> child), so child -> parent imports of
    # the package itself count as cycles; importing a sibling private module directly is fine.
    def reach(start: str) -> set[str]:
        seen, todo = set(), [d for d in GRAPH.get(start, ()) if d in GRAPH]
        while todo:
            m = todo.pop()
            if m in seen:
                continue
            seen.add(m)
            todo.extend(d for d in GRAPH.get(m, ()) if d in GRAPH)
        return seen

    cycles = sorted(m for m in GRAPH if m in reach(m) and m != "modelcollapse")
    assert not cycles, f"modules on an import cycle: {cycles}"


def _takes_backend(module: str) -> bool:
    """Whether a function defined in ``module`` has a ``backend`` parameter."""
    path = PACKAGE.parent / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            if any(a.arg == "backend" for a in args.args + args.kwonlyargs):
                return True
    return False


def test_library_uses_the_oracle_only_for_backend_numpy():
    """The library reaches the numpy reference only to run ``backend="numpy"``: a module
    that imports it must offer a ``backend`` argument."""
    users = [m for m, deps in GRAPH.items() if not m.startswith("modelcollapse.reference")
             and any(d.startswith("modelcollapse.reference") for d in deps) and m != "modelcollapse"]
    wrong = [m for m in users if not _takes_backend(m)]
    assert not wrong, f"modules that import modelcollapse.reference without a backend= argument: {wrong}"


# A module a newcomer can read in one sitting (CONTRIBUTING.md, "Layout of the tree"): past this, split it
# into a subpackage of private files re-exported by its __init__.
MAX_MODULE_LINES = 600


def test_no_module_is_longer_than_the_limit():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"
