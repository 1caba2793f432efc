"""Guards for the reverse sampler's time grids that the other tests leave open (found by the
mutation check, .ci/mutate.py): each grid has the shape docs/foundation.md states, not just
the right end points and order."""
from __future__ import annotations

import numpy as np
import pytest

import modelcollapse as mc


@pytest.mark.parametrize("T,delta,steps", [(1.5, 0.02, 40), (3.0, 1e-3, 7)])
def test_time_grids_have_their_documented_shapes(T, delta, steps):
    k = np.arange(steps + 1) / steps
    uni = mc.time_grid(T, delta, steps, "uniform")
    np.testing.assert_allclose(np.diff(uni), -(T - delta) / steps, rtol=1e-12)
    # quadratic: t_k = delta + (T - delta)(1 - k/N)^2, i.e. sqrt((t_k - delta)/(T - delta)) falls linearly
    quad = mc.time_grid(T, delta, steps, "quadratic")
    np.testing.assert_allclose(np.sqrt((quad - delta) / (T - delta)), 1.0 - k, rtol=1e-12, atol=1e-12)
    # log: geometric in t, so log t falls in equal steps from log T to log delta
    geo = mc.time_grid(T, delta, steps, "log")
    np.testing.assert_allclose(np.diff(np.log(geo)), np.log(delta / T) / steps, rtol=1e-10)
    for g in (uni, quad, geo):
        assert g[0] == T and g[-1] == delta
