"""Counter-based generator: known answers, C++ vs numpy twin, thread invariance, moments."""
import numpy as np
import pytest

import modelcollapse as mc
from modelcollapse import _core
from modelcollapse.random import sampler_noise, standard_normal
from modelcollapse.reference import random as ref

# Known-answer vectors of Philox4x32-10 from the Random123 distribution (kat_vectors).
KAT = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    ((0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344), (0xA4093822, 0x299F31D0),
     (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_philox_known_answers_cpp_and_numpy(ctr, key, expected):
    assert tuple(_core.philox4x32_10(list(ctr), list(key))) == expected
    assert tuple(int(v) for v in ref.philox4x32_10(np.array(ctr), key)) == expected


def test_normals_match_numpy_twin():
    seed = 2**40 + 12345
    got = _core.normals(seed, 0, 7, 5, 9, 3, 1)  # odd first index: starts mid-block
    want = ref.normals(seed, ref.make_stream(0, np.arange(7, 12)), 3, 9)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    u = _core.uniforms(seed, 3, 0, 4, 5, 1)
    np.testing.assert_allclose(u, ref.uniforms(seed, ref.make_stream(3, np.arange(4)), 1, 5), rtol=0, atol=0)
    assert np.all((u > 0) & (u < 1))


def test_long_runs_match_numpy_twin():
    # runs of hundreds of blocks go through the batched Philox (AVX2 intrinsics, 8 blocks at a
    # time, where the CPU has them) and a scalar tail: both must give the twin's numbers
    seed = 987654321987
    for first, n in ((3, 1001), (0, 2 * 8 * 16 + 6), (17, 262)):
        got = _core.normals(seed, 1, 0, 2, n, first, 1)
        want = ref.normals(seed, ref.make_stream(1, np.arange(2)), first, n)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


def test_identical_for_any_thread_count():
    a = standard_normal(7, (3000, 11), threads=1)
    for threads in (2, 3, 8):
        np.testing.assert_array_equal(a, standard_normal(7, (3000, 11), threads=threads))
    # prefix property: rows are streams
    np.testing.assert_array_equal(a[:100], standard_normal(7, (100, 11)))


def test_normal_moments_within_standard_errors():
    z = standard_normal(123, (400, 1000)).ravel()
    n = z.size
    assert abs(z.mean()) < 5 / np.sqrt(n)
    assert abs(z.var() - 1) < 5 * np.sqrt(2 / n)
    assert abs(np.mean(z**4) - 3) < 5 * np.sqrt(96 / n)  # Var(z^4) = 105 - 9 = 96
    # streams are not correlated with each other
    zz = standard_normal(123, (2, 200000))
    assert abs(np.corrcoef(zz)[0, 1]) < 5 / np.sqrt(200000)


def test_different_seeds_differ_and_generator_seeds_are_accepted():
    assert not np.allclose(standard_normal(1, 100), standard_normal(2, 100))
    rng = np.random.default_rng(0)
    assert standard_normal(rng, 10).shape == (10,)


def test_sampler_noise_is_what_the_sampler_draws(mixture_iso):
    n, steps = 300, 25
    init = standard_normal(5, (n, 2))
    a = mc.sample_reverse(mixture_iso, n, steps=steps, init=init, seed=99, threads=2)
    b = mc.sample_reverse(mixture_iso, n, steps=steps, init=init, noise=sampler_noise(99, n, steps, 2))
    np.testing.assert_array_equal(a.samples, b.samples)


@pytest.mark.parametrize("bad,exc", [(-1, ValueError), (1.5, TypeError), ("3", TypeError), (2**64, ValueError)])
def test_bad_seeds_rejected(bad, exc):
    with pytest.raises(exc, match="seed"):
        standard_normal(bad, 3)


def test_sizes_refused_with_the_argument_named():
    with pytest.raises(TypeError, match="shape"):
        standard_normal(0, (2.5,))
    with pytest.raises(ValueError, match="shape"):
        standard_normal(0, 2**64)
    with pytest.raises(ValueError, match="shape too large"):
        standard_normal(0, (10**6, 10**6))
    with pytest.raises(ValueError, match="n_samples, steps and dim too large"):
        sampler_noise(0, 10**6, 10**6, 1)
