"""The benchmark hook that splits a sampler step (``_core._sampler_parts``; bench/bounds.py,
docs/foundation.md, "Reverse sampler"): each mask must run exactly the parts it names, or the
shares the bench reports are not the parts' shares."""
import numpy as np
import pytest

import modelcollapse as mc
from modelcollapse import _core
from modelcollapse.random import sampler_noise

N, STEPS = 70, 6  # 70: a full chunk of 64 and a padded one


@pytest.fixture
def setup(mixture_iso):
    times = mc.sampler.time_grid(1.0, 0.01, STEPS)
    y0 = np.random.default_rng(2).standard_normal((N, 2))
    return mixture_iso._core(), times, y0


def test_all_parts_is_the_sampler(setup):
    core, times, y0 = setup
    ref, _ = core.sample_reverse(times, _core.Integrator.euler_maruyama, 3, y0, None, [], 1)
    np.testing.assert_array_equal(_core._sampler_parts(core, times, 3, y0, 7, 1), ref)


def test_no_noise_is_the_sampler_with_zero_noise(setup):
    core, times, y0 = setup
    ref, _ = core.sample_reverse(times, _core.Integrator.euler_maruyama, 3, y0, np.zeros((N, STEPS, 2)), [], 1)
    out = _core._sampler_parts(core, times, 3, y0, 5, 1)
    np.testing.assert_array_equal(out, ref)
    assert not np.array_equal(out, _core._sampler_parts(core, times, 3, y0, 7, 1))


def test_no_score_is_the_linear_chain_with_the_drawn_noise(setup):
    core, times, y0 = setup
    xi = sampler_noise(3, N, STEPS, 2, threads=1)
    y = y0.copy()
    for k in range(STEPS):
        h = times[k] - times[k + 1]
        y = (1.0 + h) * y + np.sqrt(2.0 * h) * xi[:, k]
    # the compiled update rounds with FMA: a few ulp after 6 steps
    np.testing.assert_allclose(_core._sampler_parts(core, times, 3, y0, 6, 1), y, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mask", [0, 1, 2, 3])
def test_without_the_update_the_state_never_moves(setup, mask):
    core, times, y0 = setup
    np.testing.assert_array_equal(_core._sampler_parts(core, times, 3, y0, mask, 1), y0)


def test_bad_mask_rejected(setup):
    core, times, y0 = setup
    with pytest.raises(ValueError, match="parts"):
        _core._sampler_parts(core, times, 3, y0, 8, 1)
