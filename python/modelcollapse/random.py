"""Counter-based random numbers shared by every compiled kernel.

Draws are a pure function of ``(seed, stream, counter)`` (ARS-7, AES rounds), so a result
computed with a seed is bit-identical whatever the number of threads. The reverse sampler
gives each sample its own stream: :func:`sampler_noise` returns exactly the noise it draws
internally, which is how the compiled sampler and the numpy reference are compared.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import as_seed, check_allocation, check_positive_int, check_threads

PURPOSES = {
    "user": _core.PURPOSE_USER,
    "step_noise": _core.PURPOSE_STEP_NOISE,
    "init_normal": _core.PURPOSE_INIT_NORMAL,
    "init_choice": _core.PURPOSE_INIT_CHOICE,
    "training": _core.PURPOSE_TRAINING,
}


def standard_normal(seed: int | np.random.Generator | None, shape: int | tuple[int, ...], *,
                    threads: int = 0, out: np.ndarray | None = None) -> np.ndarray:
    """Standard normals of the given shape from the library's counter-based generator.

    A 1-D (or 0-D) shape is one stream: ``standard_normal(s, n)[:k]`` equals
    ``standard_normal(s, k)``. For more axes, row ``i`` of the result (first axis) is
    stream ``i`` and the trailing axes are flattened along the stream, so
    ``standard_normal(s, (n, m))[:k]`` equals ``standard_normal(s, (k, m))``. Long streams
    are cut into fixed pieces shared among the threads, so the numbers are the same for
    any ``threads`` (docs/foundation.md, section "Randomness").

    Parameters
    ----------
    seed : int, numpy Generator or None
        Key of the generator (a Generator or None draws one).
    shape : int or tuple of int
        Shape of the result.
    threads : int
        Worker threads (0: all cores).
    out : numpy.ndarray, optional
        A C-contiguous, writeable float64 array of ``shape`` to fill (and return) instead of
        a new one: the same numbers, without the page faults of fresh memory, which cost
        about a fifth of a long one-thread draw (docs/foundation.md, section "Randomness").

    Returns
    -------
    numpy.ndarray
        float64 array of ``shape`` (``out`` when given).
    """
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, np.ndarray)):
        raise TypeError(f"shape must be an int or a tuple of ints, got {type(shape).__name__}")
    shape = tuple(check_positive_int(s, "shape", minimum=0) for s in shape)
    check_allocation(math.prod(shape), "shape", "the normals")
    threads = check_threads(threads)
    # A 1-D shape is a single stream (not n streams of one number each: one block
    # then served one normal and discarded the other, and nothing was long enough to thread).
    rows = shape[0] if len(shape) > 1 else 1
    per_row = int(np.prod(shape[1:])) if len(shape) > 1 else (shape[0] if shape else 1)
    if out is not None:
        if not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
        if out.dtype != np.float64 or not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("out must be a C-contiguous, writeable float64 array")
        if out.shape != shape:
            raise ValueError(f"out must have the shape {shape}, got {out.shape}")
    z = _core.normals(as_seed(seed), PURPOSES["user"], 0, rows, per_row, 0, threads, out=out)
    return z.reshape(shape) if out is None else out


def sampler_noise(seed: int, n_samples: int, steps: int, dim: int, *, threads: int = 0) -> np.ndarray:
    """The (n_samples, steps, dim) step noise the compiled reverse sampler draws for ``seed``."""
    key = as_seed(seed)
    n_samples = check_positive_int(n_samples, "n_samples", 0)
    steps = check_positive_int(steps, "steps", 0)
    dim = check_positive_int(dim, "dim")
    check_allocation(float(n_samples) * steps * dim, "n_samples, steps and dim", "the noise")
    return _core.sampler_noise(key, n_samples, steps, dim, check_threads(threads))


__all__ = ["PURPOSES", "standard_normal", "sampler_noise"]
