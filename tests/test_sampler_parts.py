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


def test_bench_split_shares_are_the_parts_over_the_step():
    # bench/bounds.py: each part's share is (step - step without it) / step, paired per round;
    # the second round twice as slow everywhere (a busy machine) gives the same shares.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import bounds

    base = {"sampler_d2": 40.0, "sampler_d2_core": 32.0, "sampler_d2_no_score": 12.0, "sampler_d2_no_noise": 20.0,
            "sampler_d2_no_update": 30.0, "sampler_d2_bare": 2.0}
    per = {k: [v, 2 * v] for k, v in base.items()}
    per["sampler_d2_injected"] = per["sampler_d2"]
    per.update({k.replace("d2", "d64"): v for k, v in per.items()})
    # the other kernels' parts are not under test here: any positive times
    for k in ("normal", "dae_d1000", "dae_d10000", "kde_binned_1d", "kde_binned_1d_kernel", "kde_binned_2d",
              "kde_binned_2d_kernel", "kde_exact_1d", "kde_exact_1d_kernel", "kde_exact_1d_points", "kde_exact_2d",
              "kde_exact_2d_kernel", "kde_exact_2d_points", "hermite_1d", "hermite_1d_kernel", "hermite_2d",
              "hermite_2d_kernel", "emp_score_t1", "emp_score_t1_kernel", "emp_score_t001", "emp_logpdf_t1"):
        per.setdefault(k, [1.0, 2.0])
    sh = bounds.paired_shares(per)
    want = {"score": 20 / 32, "noise": 12 / 32, "update": 2 / 32, "bare": 2 / 32, "python": 8 / 40}
    for part, value in want.items():
        assert sh[f"sampler_d2_{part}_share"][0] == pytest.approx([value, value]), part
