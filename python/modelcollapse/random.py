"""Counter-based random numbers shared by every compiled kernel.

Draws are a pure function of ``(seed, stream, counter)`` (Philox4x32-10), so a result
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
                    threads: int = 0) -> np.ndarray:
    """Standard normals of the given shape from the library's counter-based generator.

    Row ``i`` of the result (first axis) is stream ``i``; the trailing axes are flattened
    along the stream, so ``standard_normal(s, (n, m))[:k]`` equals
    ``standard_normal(s, (k, m))``.
    """
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list, np.ndarray)):
        raise TypeError(f"shape must be an int or a tuple of ints, got {type(shape).__name__}")
    shape = tuple(check_positive_int(s, "shape", minimum=0) for s in shape)
    check_allocation(math.prod(shape), "shape", "the normals")
    threads = check_threads(threads)
    rows = shape[0] if shape else 1
    per_row = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    out = _core.normals(as_seed(seed), PURPOSES["user"], 0, rows, per_row, 0, threads)
    return out.reshape(shape)


def sampler_noise(seed: int, n_samples: int, steps: int, dim: int, *, threads: int = 0) -> np.ndarray:
    """The (n_samples, steps, dim) step noise the compiled reverse sampler draws for ``seed``."""
    key = as_seed(seed)
    n_samples = check_positive_int(n_samples, "n_samples", 0)
    steps = check_positive_int(steps, "steps", 0)
    dim = check_positive_int(dim, "dim")
    check_allocation(float(n_samples) * steps * dim, "n_samples, steps and dim", "the noise")
    return _core.sampler_noise(key, n_samples, steps, dim, check_threads(threads))


__all__ = ["PURPOSES", "standard_normal", "sampler_noise"]
