"""Input checks shared by the public API. Every failure names the argument and says what
to fix, as a ValueError (bad value) or TypeError (bad type)."""
from __future__ import annotations

import math
import numbers
import os
from typing import Any

import numpy as np

SeedLike = "int | numpy.random.Generator | None"
_MAX_SEED = 2**64
# More worker threads than this only oversubscribes the machine and, under an
# address-space limit, can make thread creation itself fail (each thread reserves a stack).
MAX_THREADS = 256
# Largest working set (bytes) a call may ask for before it starts: half the physical memory,
# so that a typo such as n_samples=10**12 is refused with a message instead of swapping or
# an allocation failure deep inside a kernel.
_MEMORY_FRACTION = 0.5


def as_seed(seed: Any, name: str = "seed") -> int:
    """Turn ``seed`` (int >= 0 or a numpy Generator) into the uint64 key of the C++ RNG.

    ``None`` gives a fresh random seed (not reproducible). A Generator is advanced by one
    draw, so successive calls with the same Generator differ, as users expect.
    """
    if seed is None:
        return int(np.random.default_rng().integers(0, 2**63))
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63))
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be an int >= 0 or a numpy.random.Generator, got {type(seed).__name__}")
    seed = int(seed)
    if not 0 <= seed < _MAX_SEED:
        raise ValueError(f"{name} must be in [0, 2**64), got {seed}")
    return seed


def as_generator(seed: Any, name: str = "seed") -> np.random.Generator:
    """A numpy Generator from an int seed, a Generator (returned as is) or None."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(as_seed(seed, name))


def check_threads(threads: Any) -> int:
    """Threads for a C++ kernel: 0 means all cores."""
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral):
        raise TypeError(f"threads must be an int (0 = all cores), got {type(threads).__name__}")
    threads = int(threads)
    if threads < 0:
        raise ValueError(f"threads must be >= 0 (0 = all cores), got {threads}")
    if threads > MAX_THREADS:
        raise ValueError(f"threads must be <= {MAX_THREADS} (0 = all cores), got {threads}")
    return threads


def memory_limit_bytes() -> int:
    """The largest working set a single call may request (half the physical memory)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not available on this platform
        total = 16 * 2**30
    return int(total * _MEMORY_FRACTION)


def check_allocation(n_values: int | float, names: str, what: str = "the result") -> None:
    """Refuse a call whose ``n_values`` float64 values would not fit in memory.

    ``names`` are the arguments that set the size (quoted in the message), ``what`` what
    would be allocated. Called before any allocation or loop starts.
    """
    need = float(n_values) * 8.0
    limit = memory_limit_bytes()
    if not need <= limit:  # also catches NaN
        raise ValueError(f"{names} too large: {what} would need {need / 2**30:.3g} GiB "
                         f"(limit {limit / 2**30:.3g} GiB, half the physical memory); reduce {names}")


def check_finite_array(x: Any, name: str, ndim: int | tuple[int, ...] | None = None,
                       shape: tuple[int | None, ...] | None = None, allow_empty: bool = False,
                       finite: bool = True) -> np.ndarray:
    """Float64 C-contiguous copy-if-needed of ``x`` with its rank, shape and finiteness checked.

    ``shape`` entries that are None are free. ``finite=False`` leaves out the finiteness
    check, for callers whose kernel shows a non-finite entry in its result anyway (they check
    there, and call this again to raise the same error).
    """
    if np.iscomplexobj(x):
        raise TypeError(f"{name} must be real, got complex values (pass x.real if that is what you mean)")
    try:
        # np.asarray, not np.ascontiguousarray: the latter turns a scalar into shape (1,),
        # which broke every documented scalar argument (a scalar covariance, say).
        arr = np.asarray(x, dtype=np.float64, order="C")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers ({exc})") from None
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            raise ValueError(f"{name} must have {' or '.join(map(str, allowed))} dimension(s), got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape, strict=True)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    # The sum first: inf and NaN propagate through additions, so a finite sum means every
    # entry is finite; it reads the array once with no temporary (np.isfinite writes a bool
    # array as large as the input: 1.6-6x slower on a 1e6-sample input, the largest part of a
    # Hermite-moments call outside its kernel). Only a non-finite sum (a bad entry, or finite
    # entries whose sum overflows) pays for the element-wise check.
    if not finite:
        return arr
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(arr.sum())
    if not math.isfinite(total) and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN or infinite value(s)")
    return arr


def check_points(x: Any, dim: int, name: str = "x") -> tuple[np.ndarray, bool]:
    """Points as an (m, dim) array; a single point of shape (dim,) is accepted.

    Returns the 2-D array and whether the input was a single point (to squeeze back).
    """
    arr = check_finite_array(x, name, ndim=(1, 2), allow_empty=True)
    single = arr.ndim == 1
    if single:
        arr = arr[None, :]
    if arr.shape[1] != dim:
        raise ValueError(f"{name} must have {dim} columns (the dimension), got shape {np.shape(x)}")
    return arr, single


def check_positive_int(value: Any, name: str, minimum: int = 1, maximum: int | None = None) -> int:
    """An int in ``[minimum, maximum]``; ``maximum`` defaults to 2**62 (beyond any real size)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    top = 2**62 if maximum is None else maximum
    if value > top:
        raise ValueError(f"{name} must be <= {top}, got {value}")
    return value


def check_real(value: Any, name: str, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """A finite real in the given range (closed unless ``low_open`` / ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be finite, got {v}")
    if low is not None and (v < low or (low_open and v == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {v}")
    if high is not None and (v > high or (high_open and v == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {v}")
    return v


def check_choice(value: Any, name: str, choices: tuple[str, ...]) -> str:
    try:  # an array compared with the choices raises (ambiguous truth value): not a choice either
        ok = not isinstance(value, np.ndarray) and value in choices
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(value: Any, name: str) -> bool:
    """A flag: bool (or numpy bool, or the ints 0 and 1)."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {type(value).__name__}")
