"""The public API, module by module, for the API reference page (conf.py writes
``api_generated.rst`` from it; tests/test_docs.py checks that it covers every public name).

Each object is documented once, on the page of its canonical public module: the listed
module whose name is the longest prefix of the object's ``__module__`` (private parts
stripped), else the first listed module that exports it. Alias modules that only re-export
(``modelcollapse.hermite``, ``modelcollapse.dae_theory``, ``modelcollapse.retraining.loop``,
``modelcollapse.retraining.metrics``) are not listed; their names are on the canonical pages.
"""
from __future__ import annotations

import importlib
import inspect
from types import ModuleType

# (module, title) in the order of the page
MODULES: tuple[tuple[str, str], ...] = (
    ("modelcollapse", "Core: exact laws, empirical scores, the reverse sampler"),
    ("modelcollapse.random", "Counter-based random numbers"),
    ("modelcollapse.metrics", "Metrics: KDE, Hellinger, Wasserstein, precision/recall"),
    ("modelcollapse.recursion", "The retraining loop shared by every part"),
    ("modelcollapse.truncation", "Truncated-diffusion recursion and its Hermite picture"),
    ("modelcollapse.hodge", "Helmholtz-Hodge geometry of score errors"),
    ("modelcollapse.retraining", "Iterative retraining (Bertrand et al.)"),
    ("modelcollapse.retraining.gaussian", "Gaussian retraining theory and chains"),
    ("modelcollapse.retraining.datasets", "Toy datasets"),
    ("modelcollapse.dae", "High-dimensional denoising autoencoder and its ODE theory (Cui et al.)"),
    ("modelcollapse.results", "Results: records and saved tables"),
    ("modelcollapse.experiments", "Experiments, presets and claims"),
    ("modelcollapse.reference", "Numpy reference twins of the compiled kernels"),
    ("modelcollapse.reference.random", "Reference: ARS-7 and the ziggurat"),
    ("modelcollapse.reference.mixture", "Reference: Gaussian mixtures"),
    ("modelcollapse.reference.empirical", "Reference: smoothed empirical score"),
    ("modelcollapse.reference.sampler", "Reference: truncated reverse sampler"),
    ("modelcollapse.reference.retraining", "Reference: Gaussian retraining chains"),
    ("modelcollapse.reference.hermite", "Reference: Hermite moments"),
    ("modelcollapse.reference.dae", "Reference: online SGD of the DAE"),
    ("modelcollapse.reference.metrics", "Reference: KDE, Wasserstein, precision/recall"),
    ("modelcollapse.reference.hodge", "Reference: perturbed scores, Stein estimator"),
)


def _public_name(module: str) -> str:
    return ".".join(p for p in module.split(".") if not p.startswith("_"))


def exported(module: ModuleType) -> list[str]:
    """The names a module exports (``__all__``), without submodules."""
    names = getattr(module, "__all__", None)
    if names is None:  # what the module defines itself, not what it imports
        names = [n for n, v in vars(module).items() if not n.startswith("_") and not inspect.ismodule(v)
                 and (getattr(v, "__module__", None) == module.__name__ or (n.isupper() and not callable(v)))]
    return [n for n in names if not n.startswith("__") and not inspect.ismodule(getattr(module, n))]


def documented() -> dict[str, list[str]]:
    """``{module: [names documented on its page]}``: every exported name exactly once."""
    mods = {name: importlib.import_module(name) for name, _ in MODULES}
    home: dict[int, str] = {}
    for name, mod in mods.items():
        for attr in exported(mod):
            obj = getattr(mod, attr)
            owner = _public_name(getattr(obj, "__module__", "") or "")
            candidates = [m for m in mods if owner == m or owner.startswith(m + ".")]
            best = max(candidates, key=len) if candidates else name
            if attr not in exported(mods[best]):
                best = name
            home.setdefault(id(obj), best)
    out: dict[str, list[str]] = {name: [] for name in mods}
    for name, mod in mods.items():
        for attr in exported(mod):
            if home[id(getattr(mod, attr))] == name and attr not in out[name]:
                out[name].append(attr)
    return out


def render() -> str:
    lines = ["API reference", "=============", "",
             "Generated from the docstrings: every name in each public module's ``__all__``, each on the",
             "page of its home module. The compiled core (``modelcollapse._core``) is private; each of its",
             "kernels is reached through the functions below and has a numpy twin in",
             ":mod:`modelcollapse.reference`. Alias modules (``modelcollapse.hermite``,",
             "``modelcollapse.dae_theory``, ``modelcollapse.retraining.loop``, ``modelcollapse.retraining.metrics``)",
             "re-export names documented here.", ""]
    titles = dict(MODULES)
    for module, names in documented().items():
        title = f"{titles[module]} (``{module}``)"
        lines += [title, "-" * len(title), "", f".. automodule:: {module}", "   :no-members:", "",
                  f".. currentmodule:: {module}", ""]
        mod = importlib.import_module(module)
        code = [n for n in names if callable(getattr(mod, n))]
        data = [n for n in names if n not in code]
        if code:
            lines += [".. autosummary::", "   :toctree: generated", "   :nosignatures:", ""]
            lines += [f"   {n}" for n in code] + [""]
        for n in data:  # constants: their value's type and keys (a dict's own docstring is not theirs)
            value = getattr(mod, n)
            what = f"``{type(value).__name__}``"
            if isinstance(value, dict):
                what += " with keys " + ", ".join(f"``{k}``" for k in list(value)[:12])
            elif isinstance(value, (tuple, list, frozenset, set)):
                what += " of " + ", ".join(f"``{v}``" for v in list(value)[:12])
            lines += [f".. py:data:: {n}", "", f"   {what}.", ""]
    return "\n".join(lines)
