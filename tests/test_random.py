"""Counter-based generator: known answers, C++ vs numpy twin bit for bit (the ziggurat's fast
and slow paths), thread invariance, the distribution (moments, bins, tails)."""
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modelcollapse as mc
from modelcollapse import _core
from modelcollapse.random import sampler_noise, standard_normal
from modelcollapse.reference import random as ref
from modelcollapse.reference import ziggurat_tables as zt

ROOT = Path(__file__).resolve().parents[1]


def assert_same_bits(got, want):
    """Bit for bit (array_equal would take -0.0 for 0.0)."""
    got, want = np.ascontiguousarray(got, dtype=np.float64), np.ascontiguousarray(want, dtype=np.float64)
    assert got.shape == want.shape
    diff = np.flatnonzero(got.view(np.uint64) != want.view(np.uint64))
    assert diff.size == 0, (diff.size, diff[:5], got.ravel()[diff[:5]], want.ravel()[diff[:5]])

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
    assert_same_bits(got, want)
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
        assert_same_bits(got, want)


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
        assert_same_bits(a[first:first + 6], ref.normals(11, ref.make_stream(0, 0), first, 6))
    # long rows are cut too: rows of 2^15 + 5 numbers, two threads, odd first index
    b = _core.normals(11, 0, 2, 3, 2**15 + 5, 1, 2)
    np.testing.assert_array_equal(b, _core.normals(11, 0, 2, 3, 2**15 + 5, 1, 1))
    assert_same_bits(b[:, -4:], ref.normals(11, ref.make_stream(0, np.arange(2, 5)), 2**15 + 2, 4))


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


# Transform levels (random.hpp, normals_isa): 0 baseline (SSE2), 3 x86-64-v3 (AVX2), 4 x86-64-v4
# (AVX-512) compile the ziggurat's fast path (a multiplication and a compare: nothing for FMA to
# contract); the slow path is one baseline function. So every level gives the twin's bits.


def _levels():
    return [isa for isa in (0, 3, 4) if isa <= _core.NORMALS_ISA_AVAILABLE]


def test_transform_levels_give_the_twins_bits():
    seed, n, first = 2**33 + 7, 2**16 + 3, 5
    want = ref.normals(seed, ref.make_stream(2, np.arange(1, 3)), first, n)
    for isa in _levels():
        got = _core.normals(seed, 2, 1, 2, n, first, 1, isa=isa)
        assert_same_bits(got, want)
        # any thread count gives the same bits
        assert_same_bits(_core.normals(seed, 2, 1, 2, n, first, 3, isa=isa), want)
    # the default is the level NORMALS_ISA (every kernel's)
    assert_same_bits(_core.normals(seed, 2, 1, 2, n, first, 1),
                     _core.normals(seed, 2, 1, 2, n, first, 1, isa=_core.NORMALS_ISA))
    with pytest.raises(ValueError, match="isa"):
        _core.normals(seed, 2, 1, 2, n, first, 1, isa=5)
    if _core.NORMALS_ISA_AVAILABLE < 4:
        with pytest.raises(ValueError, match="not available"):
            _core.normals(seed, 2, 1, 2, n, first, 1, isa=4)


def _slow_words(seed, purpose, index, n):
    """Numbers j < n of a stream whose word the fast path rejects, by kind: layer 0 (the tail)
    and others (the wedge); and the wedge ones whose first slow-path block rejects again (their
    next word comes from that block)."""
    stream = ref.make_stream(purpose, index)
    lo, hi = ref.blocks(seed, stream, np.arange(n // 2, dtype=np.uint64))
    words = np.stack([lo, hi], axis=-1).reshape(-1)
    layer = (words & np.uint64(0xFF)).astype(np.intp)
    slow = ~((words >> np.uint64(12)).astype(np.float64) < zt.ACCEPT[layer])
    tail = np.flatnonzero(slow & (layer == 0))
    wedge = np.flatnonzero(slow & (layer != 0))
    # wedge words rejected by their block-1 test: x above the curve at the block's height (slow
    # block k of number j: ARS of (j // 2, stream) under key (seed, 2k + j % 2))
    b_lo = np.empty(wedge.size, dtype=np.uint64)
    for h in (0, 1):
        sel = wedge % 2 == h
        ctr = wedge[sel].astype(np.uint64) >> np.uint64(1)
        b_lo[sel] = ref.ars((ctr, np.full(ctr.shape, stream, dtype=np.uint64)), (seed, 2 + h))[0]
    wl = layer[wedge]
    x = (words[wedge] >> np.uint64(12)).astype(np.float64) * zt.WIDTH[wl]
    y = zt.HEIGHT[wl] + (zt.HEIGHT[wl - 1] - zt.HEIGHT[wl]) * (ref._numerator(b_lo) * 2.0**-53)
    again = wedge[~(y < ref._exp_nonpositive(-0.5 * (x * x)))]
    return slow.mean(), tail, wedge, again


def test_slow_path_words_match_the_twin_one_by_one_and_in_runs():
    # Numbers whose words the fast path rejects, fetched alone (a one-number call at that
    # offset: odd and even, the single-block path) and inside runs; tail words, wedge words, and
    # wedge words whose first slow block rejects too (a second word from the slow counter space).
    seed, purpose, index, n = 2**50 + 3, 4, 77, 2**17
    share, tail, wedge, again = _slow_words(seed, purpose, index, n)
    # the slow path's share of words, 1 - mean(ACCEPT) 2^-52 = 1.49% (the wedges and the tail's
    # layer), within 5 binomial standard deviations at n words
    p = 1.0 - float(np.mean(zt.ACCEPT)) * 2.0**-52
    assert abs(share - p) < 5 * np.sqrt(p * (1 - p) / n), (share, p)
    assert tail.size >= 10 and wedge.size >= 500 and again.size >= 50, (tail.size, wedge.size, again.size)
    assert np.any(tail % 2 == 0) and np.any(tail % 2 == 1)
    picks = np.concatenate([tail[:12], wedge[:12], again[:12]])
    for j in picks:
        got = _core.normals(seed, purpose, index, 1, 1, int(j), 1)[0]
        assert_same_bits(got, ref.normals(seed, ref.make_stream(purpose, index), int(j), 1))
        # and as the last and the first number of short runs around it
        if j >= 3:
            assert_same_bits(_core.normals(seed, purpose, index, 1, 4, int(j) - 3, 1)[0],
                             ref.normals(seed, ref.make_stream(purpose, index), int(j) - 3, 4))
    z = _core.normals(seed, purpose, index, 1, n, 0, 1)[0]
    assert_same_bits(z, ref.normals(seed, ref.make_stream(purpose, index), 0, n))
    assert np.all(np.abs(z[tail]) >= zt.R)  # the tail path gives |z| >= r
    assert np.all(np.abs(np.delete(z, tail)) < zt.R)


def test_many_streams_offsets_and_splits_match_the_twin():
    seed = 31337
    rng = np.random.default_rng(3)
    for _ in range(6):
        purpose, start = int(rng.integers(0, 256)), int(rng.integers(0, 2**56 - 40))
        first, n = int(rng.integers(0, 2**40)), int(rng.integers(1, 3000))
        want = ref.normals(seed, ref.make_stream(purpose, np.arange(start, start + 3)), first, n)
        assert_same_bits(_core.normals(seed, purpose, start, 3, n, first, 2), want)
        cut = int(rng.integers(0, n))  # one call or two: the same numbers
        parts = [_core.normals(seed, purpose, start, 3, cut, first, 1), _core.normals(seed, purpose, start, 3, n - cut,
                                                                                      first + cut, 1)]
        assert_same_bits(np.concatenate(parts, axis=1), want)
    # the top of the counter range (block counters near 2^63 and 2^64 - 1)
    for first in (2**64 - 6, 2**64 - 2**16, 2**63 - 11):
        n = min(2**64 - first, 2**12)
        assert_same_bits(_core.normals(seed, 1, 2, 1, n, first, 1)[0], ref.normals(seed, ref.make_stream(1, 2), first, n))


def test_ziggurat_tables_are_the_generators():
    # one source of truth: cpp/tools/ziggurat_tables.py writes the C++ header and the twin's
    # module; re-run, it must give both files byte for byte
    import tempfile

    pytest.importorskip("mpmath")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, str(ROOT / "cpp/tools/ziggurat_tables.py"), tmp], check=True)
        for rel in ("cpp/include/modelcollapse/ziggurat_tables.hpp", "python/modelcollapse/reference/ziggurat_tables.py"):
            assert (Path(tmp) / rel).read_text() == (ROOT / rel).read_text(), rel
    # the layers: equal areas v = x_i (f(x_{i-1}) - f(x_i)), the base v = width * f(r) (double precision)
    x = zt.WIDTH * 2.0**52
    v = x[0] * zt.HEIGHT[255]
    areas = x[1:] * (zt.HEIGHT[:-1] - zt.HEIGHT[1:])
    np.testing.assert_allclose(areas, v, rtol=1e-12)
    tail = math.sqrt(math.pi / 2) * math.erfc(zt.R / math.sqrt(2))
    assert abs(zt.R * zt.HEIGHT[255] + tail - v) < 1e-15


def _normal_cdf(x):
    return 0.5 * np.array([math.erfc(-t / math.sqrt(2)) for t in np.atleast_1d(x)])


def test_distribution_bins_and_tails():
    # 2^23 normals: chi-square over 256 bins equiprobable under N(0, 1), and the frequencies of
    # |z| > 3.7 and |z| > 4.5, both beyond r = 3.654 (only the tail path makes them); each
    # tolerance is 5 standard deviations at this sample size.
    n = 2**23
    z = standard_normal(2024, n)
    bins = 256
    edges = np.array([-np.inf] + [float(t) for t in _inverse_cdf(np.arange(1, bins) / bins)] + [np.inf])
    counts = np.histogram(z, edges)[0]
    expect = n / bins
    chi2 = float(np.sum((counts - expect) ** 2 / expect))
    dof = bins - 1
    assert abs(chi2 - dof) < 5 * math.sqrt(2 * dof), chi2
    for t in (3.7, 4.5):
        p = 2 * float(_normal_cdf(-t)[0])
        k = int(np.sum(np.abs(z) > t))
        assert abs(k - n * p) < 5 * math.sqrt(n * p * (1 - p)) + 1, (t, k, n * p)
    # the tail's shape beyond r: P(|z| > 4.5 | |z| > 3.7), binomial on the count above 3.7
    above = np.abs(z[np.abs(z) > 3.7])
    q = float(_normal_cdf(-4.5)[0] / _normal_cdf(-3.7)[0])
    assert abs(np.sum(above > 4.5) - above.size * q) < 5 * math.sqrt(above.size * q * (1 - q)) + 1
    # mean, variance and kurtosis within 5 standard errors (Var z^2 = 2, Var z^4 = 96)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(np.mean(z**4) - 3) < 5 * math.sqrt(96 / n)


def _inverse_cdf(p):
    """Phi^-1 by bisection on math.erfc (no scipy in the tests' dependencies)."""
    lo, hi = np.full(p.shape, -10.0), np.full(p.shape, 10.0)
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        below = _normal_cdf(mid) < p
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    return 0.5 * (lo + hi)


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
    assert_same_bits(np.frombuffer(r.stdout, dtype=np.float64), _core.normals(3, 0, 0, 1, 4099, 0, 1, isa=0)[0])


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
