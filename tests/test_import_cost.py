"""`import modelcollapse` loads only what the core needs (docs/benchmarks.md, import time):
the heavy packages load when a part that needs them is first used. Checked by module
names in a fresh interpreter, not by timing."""
import subprocess
import sys

HEAVY = ("pandas", "scipy", "scipy.stats", "sklearn", "torch", "matplotlib", "ot", "dask")


def _loaded_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_loads_no_heavy_package():
    loaded = _loaded_after("import modelcollapse")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    assert "modelcollapse.metrics" not in loaded and "modelcollapse.dae" not in loaded


def test_parts_load_on_first_use():
    loaded = _loaded_after("import modelcollapse as mc\nmc.metrics.hellinger\nmc.limit_law")
    assert {"modelcollapse.metrics", "modelcollapse.truncation", "scipy"} <= loaded


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    import modelcollapse as mc

    with pytest.raises(AttributeError, match="no attribute 'not_a_part'"):
        _ = mc.not_a_part
    assert "truncation" in dir(mc) and "dae" in dir(mc.reference) or "dae" in mc.reference.__all__
