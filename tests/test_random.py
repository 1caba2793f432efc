"""Counter-based generator: known answers, C++ vs numpy twin, thread invariance, moments."""
import numpy as np
import pytest

import modelcollapse as mc
from modelcollapse import _core
from modelcollapse.random import sampler_noise, standard_normal
from modelcollapse.reference import random as ref

# Known-answer vectors of ARS-10 from the Random123 distribution (kat_vectors, ars2x64 lines):
# (counter, key, expected) as (low, high) 64-bit halves. The library uses 7 rounds; the rounds
# are a loop count, so checking 10 against Random123 checks the round and the key schedule.
KAT = [
    ((0, 0), (0, 0), (0x506401EF8D73EE19, 0x0CBE9C0D13C2DBE4)),
    ((0x85A308D3243F6A88, 0x0370734413198A2E), (0x299F31D0A4093822, 0xEC4E6C89082EFA98),
     (0x8357AD74A516E7D6, 0x8763FFF35B59B3EC)),
    ((2**64 - 1, 2**64 - 1), (2**64 - 1, 0), (0x9F635551BB3743B1, 0xA19478A9ECBC87FC)),
]


@pytest.mark.parametrize("ctr,key,expected", KAT)
def test_ars_known_answers_cpp_and_numpy(ctr, key, expected):
    # the portable rounds, the AES instructions (where the CPU has them) and the numpy twin
    assert tuple(_core.ars_block(list(ctr), list(key), 10, False)) == expected
    assert tuple(_core.ars_block(list(ctr), list(key), 10, True)) == expected
    lo, hi = ref.ars((np.array([ctr[0]], dtype=np.uint64), np.array([ctr[1]], dtype=np.uint64)), key, rounds=10)
    assert (int(lo[0]), int(hi[0])) == expected


def test_ars7_hardware_and_portable_paths_agree():
    # the bulk generator's path (AES instructions where present) against the portable rounds
    # and the twin, at the library's 7 rounds
    rng = np.random.default_rng(5)
    for ctr, key in zip(rng.integers(0, 2**63, (20, 2), dtype=np.uint64).tolist(),
                        rng.integers(0, 2**63, (20, 2), dtype=np.uint64).tolist()):
        want = tuple(_core.ars_block(ctr, key, 7, False))
        assert tuple(_core.ars_block(ctr, key, 7, True)) == want
        lo, hi = ref.ars((np.array([ctr[0]], dtype=np.uint64), np.array([ctr[1]], dtype=np.uint64)), key)
        assert (int(lo[0]), int(hi[0])) == want


def test_normals_match_numpy_twin():
    seed = 2**40 + 12345
    got = _core.normals(seed, 0, 7, 5, 9, 3, 1)  # odd first index: starts mid-block
    want = ref.normals(seed, ref.make_stream(0, np.arange(7, 12)), 3, 9)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    u = _core.uniforms(seed, 3, 0, 4, 5, 1)
    np.testing.assert_allclose(u, ref.uniforms(seed, ref.make_stream(3, np.arange(4)), 1, 5), rtol=0, atol=0)
    assert np.all((u > 0) & (u < 1))


def test_long_runs_match_numpy_twin():
    # runs of hundreds of blocks go through the batched generator (AES instructions, 8 blocks
    # at a time, where the CPU has them) and a tail: both must give the twin's numbers
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


def test_one_dimensional_shape_is_one_stream_cut_into_pieces():
    # a 1-D shape is stream 0 of the user purpose, numbers [0, n): long enough (3 pieces of
    # 2^15 and a partial one) to be shared among threads, the same for any thread count
    n = 3 * 2**15 + 1001
    a = standard_normal(11, n, threads=1)
    np.testing.assert_array_equal(a, _core.normals(11, 0, 0, 1, n, 0, 1)[0])
    for threads in (2, 3):
        np.testing.assert_array_equal(a, standard_normal(11, n, threads=threads))
    np.testing.assert_array_equal(a[:777], standard_normal(11, 777))
    # the numbers around the piece boundaries (and an odd start) are the twin's
    for first in (2**15 - 3, 2 * 2**15 - 1):
        np.testing.assert_allclose(a[first:first + 6], ref.normals(11, ref.make_stream(0, 0), first, 6),
                                   rtol=1e-13, atol=1e-14)
    # long rows are cut too: rows of 2^15 + 5 numbers, two threads, odd first index
    b = _core.normals(11, 0, 2, 3, 2**15 + 5, 1, 2)
    np.testing.assert_array_equal(b, _core.normals(11, 0, 2, 3, 2**15 + 5, 1, 1))
    np.testing.assert_allclose(b[:, -4:], ref.normals(11, ref.make_stream(0, np.arange(2, 5)), 2**15 + 2, 4),
                               rtol=1e-13, atol=1e-14)


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


# Transform levels (random.hpp, normals_isa): 0 baseline (SSE2), 3 x86-64-v3 (AVX2 + FMA),
# 4 x86-64-v4 (AVX-512). FMA contraction changes roundings inside log, sincos and the
# uniform-to-normal products, so the levels may differ in the last bits; LEVEL_ULPS is the
# stated bound (docs/foundation.md, "Randomness"; 1.9 measured between levels 0 and 3 over
# 2^20 normals, 4.4% of them differing at all with the octant sincos, 1.3% before), in units
# of 2^-52 max(|z|, 1) (an error in the angle is absolute, so near a zero of cos or sin it is
# not relative).
LEVEL_ULPS = 4


def _levels():
    return [isa for isa in (0, 3, 4) if isa <= _core.NORMALS_ISA_AVAILABLE]


def test_transform_levels_agree_within_stated_ulps_and_with_the_twin():
    seed, n, first = 2**33 + 7, 2**16 + 3, 5
    base = _core.normals(seed, 2, 1, 2, n, first, 1, isa=0)
    want = ref.normals(seed, ref.make_stream(2, np.arange(1, 3)), first, n)
    for isa in _levels():
        got = _core.normals(seed, 2, 1, 2, n, first, 1, isa=isa)
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
        ulps = np.abs(got - base) / (2.0**-52 * np.maximum(np.abs(base), 1.0))
        assert ulps.max() <= LEVEL_ULPS, (isa, ulps.max())
        # any thread count gives the level's own bits
        np.testing.assert_array_equal(got, _core.normals(seed, 2, 1, 2, n, first, 3, isa=isa))
        if isa > 0:
            # the levels are different code: with FMA some of 2^17 normals differ (else the
            # isa argument would not reach the transform and this test would compare nothing)
            assert np.any(got != base), isa
    # the default is the level NORMALS_ISA (every kernel's)
    np.testing.assert_array_equal(_core.normals(seed, 2, 1, 2, n, first, 1),
                                  _core.normals(seed, 2, 1, 2, n, first, 1, isa=_core.NORMALS_ISA))
    with pytest.raises(ValueError, match="isa"):
        _core.normals(seed, 2, 1, 2, n, first, 1, isa=5)
    if _core.NORMALS_ISA_AVAILABLE < 4:
        with pytest.raises(ValueError, match="not available"):
            _core.normals(seed, 2, 1, 2, n, first, 1, isa=4)


def test_every_octant_of_the_angle_has_its_own_sines_and_signs():
    # The transform reduces theta = 2 pi u1 by u1's top three bits (fastmath::sincos_turn53):
    # octant q swaps sin and cos in octants 1, 2, 5, 6, negates sin in 4-7 and cos in 2-5, and
    # runs the polynomial on the distance to the octant's far end in odd octants. Each pair's
    # angle, atan2(z1, z0), must be 2 pi u1 (u1 from the twin, bit-exact uniforms) and its radius^2
    # -2 log u0, in every octant and on both sides of each octant's edges, at every level: a
    # wrong swap, sign or far-end distance in any one octant moves that octant's angles by
    # ~pi/4 or more (the tolerance is 1e-12 rad).
    seed, pairs = 99, 2**14
    u = ref.uniforms(seed, ref.make_stream(0, 4), 0, 2 * pairs)
    u0, u1 = u[0::2], u[1::2]
    octant = np.floor(8 * u1).astype(int)
    edge = np.abs(8 * u1 - np.round(8 * u1)) < 8e-3  # within 1e-3 of a multiple of 1/8
    for q in range(8):  # both sides of every edge k / 8 (k = 0 and 8: u1 near 0 and 1)
        assert np.sum(edge & (octant == q) & (8 * u1 - q < 0.5)) > 3, q
        assert np.sum(edge & (octant == q) & (8 * u1 - q > 0.5)) > 3, q
    for isa in _levels():
        z = _core.normals(seed, 0, 4, 1, 2 * pairs, 0, 1, isa=isa)[0]
        z0, z1 = z[0::2], z[1::2]
        angle = np.arctan2(z1, z0) % (2 * np.pi)
        err = np.abs((angle - 2 * np.pi * u1 + np.pi) % (2 * np.pi) - np.pi)
        for q in range(8):
            assert err[octant == q].max() < 1e-12, (isa, q, err[octant == q].max())
        np.testing.assert_allclose(z0**2 + z1**2, -2.0 * np.log(u0), rtol=1e-13, atol=1e-300)


def test_level_chosen_at_load_and_capped_by_the_environment():
    import os
    import subprocess
    import sys

    assert _core.NORMALS_ISA == min(3, _core.NORMALS_ISA_AVAILABLE) or "MODELCOLLAPSE_NORMALS_ISA" in os.environ
    code = ("from modelcollapse import _core, random; import sys; "
            "sys.stdout.buffer.write(random.standard_normal(3, 4099, threads=1).tobytes()); "
            "sys.stderr.write(str(_core.NORMALS_ISA))")
    env = dict(os.environ, MODELCOLLAPSE_NORMALS_ISA="baseline")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    assert r.stderr.decode().strip().endswith("0")
    np.testing.assert_array_equal(np.frombuffer(r.stdout, dtype=np.float64),
                                  _core.normals(3, 0, 0, 1, 4099, 0, 1, isa=0)[0])


def test_out_gives_the_same_numbers_and_checks_it():
    n = 2**15 + 9
    want = standard_normal(4, (3, n), threads=1)
    buf = np.full((3, n), np.nan)
    got = standard_normal(4, (3, n), threads=2, out=buf)
    assert got is buf
    np.testing.assert_array_equal(buf, want)
    one = np.empty(n)
    np.testing.assert_array_equal(standard_normal(4, n, out=one), standard_normal(4, n))
    with pytest.raises(ValueError, match="out"):
        standard_normal(4, (3, n), out=np.empty((3, n), dtype=np.float32))
    with pytest.raises(ValueError, match="out"):
        standard_normal(4, (3, n), out=np.empty((n, 3)).T)
    with pytest.raises(ValueError, match="out"):
        standard_normal(4, (3, n), out=np.empty((3, n + 1)))
    with pytest.raises(TypeError, match="out"):
        standard_normal(4, 3, out=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="out"):
        _core.normals(4, 0, 0, 2, 5, 0, 1, out=np.empty(9))
