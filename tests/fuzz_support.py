"""Shared pieces of the fuzz tests: bad values and the contract every public entry point
keeps when handed one (docs/reliability.md).

The contract: a call with one bad argument either

- raises ``ValueError`` or ``TypeError`` whose message names that argument, or
- returns, and every floating-point number it returns is finite.

Anything else (another exception type, a message that does not name the argument, a NaN
or infinity in the result) fails the test. A crash or a hang fails the whole run.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

# Bad scalars: each one is wrong for (almost) every numeric argument of the library.
BAD_SCALARS: list[Any] = [
    float("nan"), float("inf"), -float("inf"), 1e308, -1e308, 1.3e154, 2**70, -(2**70), 2**64, 2**31,
    1 + 2j, "x", None, b"1", [], [[]], object(),
]
# Bad arrays: wrong dtype, wrong rank, empty, non-finite, complex, huge magnitudes.
BAD_ARRAYS: list[Any] = [
    np.array([np.nan, 0.0]), np.array([[np.inf, 0.0]]), np.zeros((0, 2)), np.zeros(0), np.zeros((2, 2, 2, 2)),
    np.array([1 + 1j, 2.0]), np.array(["a", "b"]), np.full((2, 2), 1e300), np.array([[1.3e154, 0.0]]),
    np.array([[1.0, 2.0]], dtype=object), 3.0, "abc", None,
]

bad_scalars = st.sampled_from(BAD_SCALARS)
bad_arrays = st.sampled_from(BAD_ARRAYS)
bad_values = st.sampled_from(BAD_SCALARS + BAD_ARRAYS)


def _iter_floats(value: Any, depth: int = 0):
    """Every float reachable in a returned value (arrays, scalars, containers, dataclasses)."""
    if depth > 6:
        return
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.floating) or np.issubdtype(value.dtype, np.complexfloating):
            yield from np.asarray(value, dtype=complex).ravel()[:100_000]
    elif isinstance(value, (float, np.floating)):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _iter_floats(v, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value[:1000]:
            yield from _iter_floats(v, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _iter_floats(getattr(value, f.name), depth + 1)


def assert_contract(fn: Callable[..., Any], argname: str | tuple[str, ...], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(*args, **kwargs)`` and check the contract above for the bad ``argname``.

    ``argname`` may be a tuple of acceptable names (an argument and the name under which
    it is reported, e.g. ``("covariances", "covariance")``). Returns the result, or None
    when the call raised as it should.
    """
    names = (argname,) if isinstance(argname, str) else tuple(argname)
    try:
        out = fn(*args, **kwargs)
    except (ValueError, TypeError) as exc:
        msg = str(exc)
        assert any(n in msg for n in names), (
            f"{getattr(fn, '__qualname__', fn)}: error does not name {names}: {type(exc).__name__}: {msg}")
        assert "\n" not in msg.strip() or len(msg) < 2000, f"error message is not short: {msg[:300]}"
        return None
    except Exception as exc:  # noqa: BLE001 - any other type breaks the contract
        raise AssertionError(
            f"{getattr(fn, '__qualname__', fn)} with bad {names}: {type(exc).__name__}: {exc}") from exc
    for v in _iter_floats(out):
        assert math.isfinite(v.real) and math.isfinite(v.imag), (
            f"{getattr(fn, '__qualname__', fn)} with bad {names} returned a non-finite value silently")
    return out


#: Sizes no machine can serve: they must be refused at once, before any allocation or loop.
HUGE_SIZES = [10**12, 2**64]


def assert_huge_sizes_refused(name: str, fn: Callable[..., Any], kwargs: dict[str, Any], sizes: tuple[str, ...],
                              seconds: float = 2.0) -> None:
    """Each size argument set to each of :data:`HUGE_SIZES` is refused within ``seconds``,
    naming the argument; the valid call still works afterwards."""
    import time

    for arg in sizes:
        for value in HUGE_SIZES:
            t0 = time.perf_counter()
            out = assert_contract(fn, arg, **{**kwargs, arg: value})
            took = time.perf_counter() - t0
            assert out is None, f"{name}({arg}={value}) was accepted"
            assert took < seconds, f"{name}({arg}={value}) took {took:.1f} s to be refused"
    assert_contract(fn, "(valid call)", **kwargs)


def draw_one_bad_argument(data: Any, fn: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    """With hypothesis' ``data``, replace one argument of a valid call by a bad value and
    check the contract."""
    if not kwargs:
        return
    arg = data.draw(st.sampled_from(sorted(kwargs)), label="argument")
    bad = data.draw(bad_values, label="bad value")
    assert_contract(fn, arg, **{**kwargs, arg: bad})
