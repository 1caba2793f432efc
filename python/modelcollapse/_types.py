"""Types shared by the public API: what a seed, a backend and a thread count may be."""
from __future__ import annotations

from typing import Literal

import numpy as np

#: A seed: an int in [0, 2**64), a numpy Generator (advanced by one draw per use), or None
#: (a fresh, non-reproducible seed). See ``_validation.as_seed``.
SeedLike = int | np.random.Generator | None

#: Which implementation runs a kernel: the compiled one, or its numpy twin in
#: :mod:`modelcollapse.reference` (same semantics, readable, slow).
Backend = Literal["cpp", "numpy"]

#: Every value ``backend=`` accepts, in the order the docs list them.
BACKENDS: tuple[str, ...] = ("cpp", "numpy")
