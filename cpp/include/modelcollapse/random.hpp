// Counter-based random numbers: ARS-7 (AES rounds with a Weyl key schedule; Salmon, Moraes,
// Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11) and a counter-based
// ziggurat normal transform.
//
// A draw is a pure function of (seed, stream, counter): no state is carried between calls,
// so any partition of the work over threads reproduces the same numbers bit for bit.
// Layout used everywhere in the library (128-bit values as (low, high) 64-bit halves, the
// byte order of an x86 register):
//   key     = (seed, 0)       (the ziggurat's slow path: (seed, 2k + j % 2), k >= 1)
//   counter = (c, stream)
// One block (128 bits) gives two 53-bit uniforms in (0, 1) (from its low and its high
// half) and, through the ziggurat, two standard normals: normal number j of a stream comes
// from half j % 2 of block j / 2 (the ziggurat's rare slow path draws more blocks, under
// keys of their own: see "The normal transform" below).
//
// Why ARS: on CPUs with AES instructions (x86-64 since 2010) ARS-7 costs 7 AES rounds per
// block, ~0.2 ns per normal, where Philox4x32-10 (the previous generator) cost ~1.1-1.7 ns
// with AVX2 intrinsics, 40% of a normal (docs/foundation.md, section "Randomness").
// Without AES instructions (other CPUs, or a build without dispatch) the rounds run in
// portable C++ (byte tables): slower, same bits.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "fastmath.hpp"
#include "ziggurat_tables.hpp"

#if defined(__GNUC__) && defined(__x86_64__) && !defined(MODELCOLLAPSE_NO_DISPATCH)
#define MODELCOLLAPSE_ARS_AESNI 1
#include <immintrin.h>
#endif

namespace modelcollapse {
namespace rng {

constexpr int kArsRounds = 7;  // Random123's default for ARS (ARS-5 already passes BigCrush)
constexpr std::uint64_t kArsWeylLo = 0x9E3779B97F4A7C15ull;  // golden ratio
constexpr std::uint64_t kArsWeylHi = 0xBB67AE8584CAA73Bull;  // sqrt(3) - 1
constexpr double kTwoPi = 6.283185307179586476925286766559;
constexpr double kTwoPow53Inv = 1.0 / 9007199254740992.0;

// Purposes keep independent uses of one seed apart: they occupy the top 8 bits of the
// 64-bit stream number, the caller's stream index the lower 56.
enum Purpose : std::uint64_t {
    kUser = 0,
    kStepNoise = 1,
    kInitNormal = 2,
    kInitChoice = 3,
    kTraining = 4,
    // 8-9: metrics (sliced Wasserstein directions; 9 reserved).
    kSlicedProjection = 8,
    kMetricsReserved = 9,
    // 10-15: high-dimensional DAE (dae.hpp)
    kDaeInit = 10,       // random initial weights w0 (numbers [0, d r) of replica's stream)
    kDaeX0 = 11,         // noise sample x_0 of SGD step s: numbers [s d, (s+1) d)
    kDaeX1 = 12,         // standard normals behind the data sample x_1 of step s
    kDaeChoice = 13,     // uniforms 2s (cluster / data row) and 2s+1 (time t) of step s
    kDaeSamplerInit = 14,  // X_0 of generated sample i: numbers [0, d)
    kDaeSamplerNoise = 15, // Brownian increment of sampler step k: numbers [k d, (k+1) d)
    // 16-19: retraining (Gaussian retraining chains)
    kGaussChainReal = 16,   // real data of chain c: stream index c
    kGaussChainSynth = 17,  // synthetic samples of chain c, all rounds: stream index c
};
inline std::uint64_t make_stream(std::uint64_t purpose, std::uint64_t index) {
    return (purpose << 56) | (index & 0x00FFFFFFFFFFFFFFull);
}

struct Block {
    std::uint64_t lo, hi;
};

namespace detail {

// The AES S-box, computed (multiplicative inverse in GF(2^8) mod x^8 + x^4 + x^3 + x + 1,
// then the affine map), for the portable rounds.
struct SBox {
    unsigned char v[256];
    constexpr SBox() : v() {
        for (int x = 0; x < 256; ++x) {
            // x^254 = x^-1 (0 -> 0) by square-and-multiply in GF(2^8)
            auto mul = [](int a, int b) {
                int p = 0;
                for (int i = 0; i < 8; ++i) {
                    if (b & 1) p ^= a;
                    const int hi = a & 0x80;
                    a = (a << 1) & 0xff;
                    if (hi) a ^= 0x1b;
                    b >>= 1;
                }
                return p;
            };
            int inv = 1, base = x, e = 254;
            while (e) {
                if (e & 1) inv = mul(inv, base);
                base = mul(base, base);
                e >>= 1;
            }
            if (x == 0) inv = 0;
            int s = inv;
            for (int r = 1; r < 5; ++r) s ^= ((inv << r) | (inv >> (8 - r))) & 0xff;
            v[x] = static_cast<unsigned char>(s ^ 0x63);
        }
    }
};
constexpr SBox kSBox{};

inline unsigned char xtime(unsigned char a) {
    return static_cast<unsigned char>((a << 1) ^ ((a & 0x80) ? 0x1b : 0));
}

// One AES encryption round on the state (byte i = row i % 4, column i / 4: the register's
// byte order), as the AESENC / AESENCLAST instructions: ShiftRows, SubBytes, MixColumns
// (not in the last round), then xor with the round key.
inline void aes_round(unsigned char* st, const unsigned char* rk, bool last) {
    unsigned char t[16];
    for (int c = 0; c < 4; ++c)
        for (int r = 0; r < 4; ++r) t[r + 4 * c] = kSBox.v[st[r + 4 * ((c + r) % 4)]];
    for (int c = 0; c < 4; ++c) {
        unsigned char* a = t + 4 * c;
        if (!last) {
            const unsigned char a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            const unsigned char all = static_cast<unsigned char>(a0 ^ a1 ^ a2 ^ a3);
            a[0] = static_cast<unsigned char>(a0 ^ all ^ xtime(static_cast<unsigned char>(a0 ^ a1)));
            a[1] = static_cast<unsigned char>(a1 ^ all ^ xtime(static_cast<unsigned char>(a1 ^ a2)));
            a[2] = static_cast<unsigned char>(a2 ^ all ^ xtime(static_cast<unsigned char>(a2 ^ a3)));
            a[3] = static_cast<unsigned char>(a3 ^ all ^ xtime(static_cast<unsigned char>(a3 ^ a0)));
        }
        for (int r = 0; r < 4; ++r) st[r + 4 * c] = static_cast<unsigned char>(a[r] ^ rk[r + 4 * c]);
    }
}

inline void to_bytes(std::uint64_t lo, std::uint64_t hi, unsigned char* b) {
    for (int i = 0; i < 8; ++i) {
        b[i] = static_cast<unsigned char>(lo >> (8 * i));
        b[8 + i] = static_cast<unsigned char>(hi >> (8 * i));
    }
}
inline void from_bytes(const unsigned char* b, std::uint64_t& lo, std::uint64_t& hi) {
    lo = hi = 0;
    for (int i = 0; i < 8; ++i) {
        lo |= static_cast<std::uint64_t>(b[i]) << (8 * i);
        hi |= static_cast<std::uint64_t>(b[8 + i]) << (8 * i);
    }
}

}  // namespace detail

// ARS-R of one 128-bit counter (portable): v = ctr ^ k; R - 1 AES rounds and a last round,
// the round key advanced by the Weyl constants (64-bit lane adds) before each.
inline Block ars_portable(std::uint64_t ctr_lo, std::uint64_t ctr_hi, std::uint64_t key_lo, std::uint64_t key_hi,
                          int rounds = kArsRounds) {
    unsigned char st[16], rk[16];
    detail::to_bytes(ctr_lo ^ key_lo, ctr_hi ^ key_hi, st);
    for (int r = 1; r <= rounds; ++r) {
        key_lo += kArsWeylLo;
        key_hi += kArsWeylHi;
        detail::to_bytes(key_lo, key_hi, rk);
        detail::aes_round(st, rk, r == rounds);
    }
    Block b;
    detail::from_bytes(st, b.lo, b.hi);
    return b;
}

#ifdef MODELCOLLAPSE_ARS_AESNI
// ARS-R on n counters (lo[i], hi[i]) in place with the AES instructions, 8 blocks in flight
// (an AESENC has a latency of ~4 cycles and two issue per cycle). The arrays hold the blocks'
// halves apart (the transform reads them so), so two neighbouring blocks are loaded as one
// 128-bit load of each array and one unpack each (and stored back the same way), not as
// 64-bit moves between general and vector registers (5-8% faster; the 256-bit VAES path
// below gained 1.7x over the previous loop: docs/foundation.md, "Randomness").
template <int R>
__attribute__((target("aes,sse2"))) inline void ars_aesni(std::size_t n, std::uint64_t* __restrict lo,
                                                          std::uint64_t* __restrict hi, std::uint64_t key_lo,
                                                          std::uint64_t key_hi) {
    __m128i rk[R + 1];
    rk[0] = _mm_set_epi64x(static_cast<long long>(key_hi), static_cast<long long>(key_lo));
    const __m128i weyl = _mm_set_epi64x(static_cast<long long>(kArsWeylHi), static_cast<long long>(kArsWeylLo));
    for (int r = 1; r <= R; ++r) rk[r] = _mm_add_epi64(rk[r - 1], weyl);
    auto load = [&](std::size_t i) {
        return _mm_xor_si128(_mm_set_epi64x(static_cast<long long>(hi[i]), static_cast<long long>(lo[i])), rk[0]);
    };
    auto store = [&](std::size_t i, __m128i v) {
        alignas(16) std::uint64_t w[2];
        _mm_store_si128(reinterpret_cast<__m128i*>(w), v);
        lo[i] = w[0];
        hi[i] = w[1];
    };
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i v[8];
        for (int q = 0; q < 8; q += 2) {
            const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(lo + i + q));
            const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(hi + i + q));
            v[q] = _mm_xor_si128(_mm_unpacklo_epi64(a, b), rk[0]);
            v[q + 1] = _mm_xor_si128(_mm_unpackhi_epi64(a, b), rk[0]);
        }
        for (int r = 1; r < R; ++r)
            for (int q = 0; q < 8; ++q) v[q] = _mm_aesenc_si128(v[q], rk[r]);
        for (int q = 0; q < 8; ++q) v[q] = _mm_aesenclast_si128(v[q], rk[R]);
        for (int q = 0; q < 8; q += 2) {
            _mm_storeu_si128(reinterpret_cast<__m128i*>(lo + i + q), _mm_unpacklo_epi64(v[q], v[q + 1]));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(hi + i + q), _mm_unpackhi_epi64(v[q], v[q + 1]));
        }
    }
    for (; i < n; ++i) {
        __m128i v = load(i);
        for (int r = 1; r < R; ++r) v = _mm_aesenc_si128(v, rk[r]);
        store(i, _mm_aesenclast_si128(v, rk[R]));
    }
}

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define MODELCOLLAPSE_ARS_VAES 1
// The same with 256-bit AES instructions (VAES, Zen 3 and Ice Lake onwards): two blocks a
// register, 16 in flight; the same bits (each 128-bit lane runs the same round). Four blocks
// come from one 256-bit load of each array: unpacking them gives blocks (0, 2) and (1, 3).
template <int R>
__attribute__((target("vaes,avx2"))) inline void ars_vaes(std::size_t n, std::uint64_t* __restrict lo,
                                                          std::uint64_t* __restrict hi, std::uint64_t key_lo,
                                                          std::uint64_t key_hi) {
    __m256i rk[R + 1];
    rk[0] = _mm256_set_epi64x(static_cast<long long>(key_hi), static_cast<long long>(key_lo),
                              static_cast<long long>(key_hi), static_cast<long long>(key_lo));
    const __m256i weyl = _mm256_set_epi64x(static_cast<long long>(kArsWeylHi), static_cast<long long>(kArsWeylLo),
                                           static_cast<long long>(kArsWeylHi), static_cast<long long>(kArsWeylLo));
    for (int r = 1; r <= R; ++r) rk[r] = _mm256_add_epi64(rk[r - 1], weyl);
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i v[8];
        for (int q = 0; q < 8; q += 2) {
            const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo + i + 2 * q));
            const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi + i + 2 * q));
            v[q] = _mm256_xor_si256(_mm256_unpacklo_epi64(a, b), rk[0]);
            v[q + 1] = _mm256_xor_si256(_mm256_unpackhi_epi64(a, b), rk[0]);
        }
        for (int r = 1; r < R; ++r)
            for (int q = 0; q < 8; ++q) v[q] = _mm256_aesenc_epi128(v[q], rk[r]);
        for (int q = 0; q < 8; ++q) v[q] = _mm256_aesenclast_epi128(v[q], rk[R]);
        for (int q = 0; q < 8; q += 2) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + i + 2 * q), _mm256_unpacklo_epi64(v[q], v[q + 1]));
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + i + 2 * q), _mm256_unpackhi_epi64(v[q], v[q + 1]));
        }
    }
    if (i < n) ars_aesni<R>(n - i, lo + i, hi + i, key_lo, key_hi);
}

inline bool cpu_has_vaes() {
    static const bool ok = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("vaes") != 0 && __builtin_cpu_supports("avx2") != 0;
    }();
    return ok;
}
#endif

inline bool cpu_has_aes() {
    static const bool ok = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("aes") != 0;
    }();
    return ok;
}
#endif

// ARS-7 on a batch of counters (lo[i], hi[i]) in place, key (seed, key_hi): with the AES
// instructions where the CPU has them, else portable. Same bits either way. The library's draws
// use key_hi = 0; the ziggurat's slow path uses key_hi >= 2 (see "The normal transform").
inline void ars_blocks_keyed(std::size_t n, std::uint64_t* __restrict lo, std::uint64_t* __restrict hi,
                             std::uint64_t seed, std::uint64_t key_hi) {
#ifdef MODELCOLLAPSE_ARS_AESNI
#ifdef MODELCOLLAPSE_ARS_VAES
    if (n >= 16 && cpu_has_vaes()) return ars_vaes<kArsRounds>(n, lo, hi, seed, key_hi);
#endif
    if (cpu_has_aes()) return ars_aesni<kArsRounds>(n, lo, hi, seed, key_hi);
#endif
    for (std::size_t i = 0; i < n; ++i) {
        const Block b = ars_portable(lo[i], hi[i], seed, key_hi);
        lo[i] = b.lo;
        hi[i] = b.hi;
    }
}

// ARS-7 on a batch of counters (lo[i], hi[i]) in place, key (seed, 0).
inline void ars_blocks(std::size_t n, std::uint64_t* __restrict lo, std::uint64_t* __restrict hi, std::uint64_t seed) {
    ars_blocks_keyed(n, lo, hi, seed, 0);
}

inline Block block(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
    std::uint64_t lo = counter, hi = stream;
    ars_blocks(1, &lo, &hi, seed);
    return Block{lo, hi};
}

// 53-bit uniform strictly inside (0, 1) from a 64-bit word: ((x >> 11) + 0.5) / 2^53,
// with + 0.5 rounded to even at the top of the range. uniform_numerator gives
// fl((x >> 11) + 0.5) with bit operations and one addition (exact: the bits of v mod 2^52
// under 2^52's exponent are 2^52 + (v mod 2^52); adding 0.5 - 2^52 below 2^52 is exact, adding
// 0.5 above it rounds as v + 0.5 does), so that the batched loops below vectorise with SSE2
// and the conversion is a short dependency chain; to_uniform scales it by 2^-53 (exact).
MODELCOLLAPSE_ALWAYS_INLINE double uniform_numerator(std::uint64_t x) {
    const std::uint64_t v = x >> 11;
    constexpr std::uint64_t kBelow = 0xc32fffffffffffffull;  // -(2^52 - 0.5)
    constexpr std::uint64_t kAbove = 0x3fe0000000000000ull;  // 0.5
    const std::uint64_t above = 0 - (v >> 52);                // all ones if v >= 2^52
    const double add = fastmath::bits_to_double(kBelow ^ (above & (kBelow ^ kAbove)));
    return fastmath::bits_to_double((v & 0x000FFFFFFFFFFFFFull) | 0x4330000000000000ull) + add;
}
inline double to_uniform(std::uint64_t x) { return uniform_numerator(x) * kTwoPow53Inv; }

inline void uniform_pair(const Block& b, double& u0, double& u1) {
    u0 = to_uniform(b.lo);
    u1 = to_uniform(b.hi);
}

// ---------------------------------------------------------------------------------------------
// The normal transform: a counter-based ziggurat (Marsaglia and Tsang, "The ziggurat method for
// generating random variables", J. Stat. Softw. 5, 2000; 256 layers, as numpy's).
//
// Normal j of a stream is a pure function of (seed, stream, j): it starts from one 64-bit word,
// the low (j even) or high (j odd) half of ARS block (seed, stream, j / 2), the same words the
// Box-Muller transform used before it. The word's bits are split, disjoint (Doornik, "An improved
// ziggurat method to generate normal random samples", 2005, shows what reusing the layer's bits
// for the uniform does to the tails):
//   bits 0-7    layer i (256 layers of equal area; ziggurat_tables.hpp),
//   bit 8       the sign,
//   bits 12-63  a 52-bit integer u (bits 9-11 are not used).
// Fast path (about 98.5% of words): x = u * kWidth[i] (x_i 2^-52, so x in [0, x_i)), accepted if
// u < kAccept[i] (floor(2^52 x_{i-1} / x_i): then x lies under the curve at every height of the
// layer). A multiplication and a compare, no rounding that an FMA could fuse: the fast path gives
// the same bits at every instruction-set level (baseline, v3, v4) and in numpy.
//
// Slow path (the rest: the wedge of layer i >= 1, the tail x >= r of layer 0): its uniforms come
// from ARS-7 blocks of the same 128-bit counter (j / 2, stream) under other keys, (seed, 2k + j % 2)
// for k = 1, 2, ... (ARS keys are 128 bits; every other draw of the library uses (seed, 0)): a
// counter space of its own, which needs no bits of the stream number (its 64 bits are all taken
// by the purposes and their indices), and a pure function of (seed, stream, j, k), so the slow
// path does not depend on how the run was split either. Block k is used whole by one step: a wedge test takes U from its low half and, on
// rejection, its high half becomes the next word (a fresh layer, sign and u: the ziggurat restarts,
// which keeps it exact); a tail try takes both halves (Marsaglia's tail: x = -log(U1) / r,
// y = -log(U2), accept if 2y > x^2; the tail loops on its own tries and never restarts the
// ziggurat, which would bias the tail's mass). At most kZigguratSlowBlocks blocks: past them, the
// last candidate is returned as it is (deterministic; a normal gets there with probability below
// 1e-18, far under anything measurable: the chance a block does not end the draw is < 0.07 for a
// tail try, < 0.01 for a wedge step). The slow path is one scalar function, compiled for the
// baseline (no FMA whatever the caller's level) and kept out of the vector loops, with fastmath's
// log and exp so that the numpy twin (reference/random.py) repeats it bit for bit. (A
// -march=native build, MODELCOLLAPSE_NATIVE, may contract its a * b + c like every kernel's: its
// slow-path normals can then differ from the twin's in the last bits, about 1% of them.)
// ---------------------------------------------------------------------------------------------
constexpr int kZigguratSlowBlocks = 16;

// u of a word as a double (exact: 2^52 + u has u in its mantissa bits).
MODELCOLLAPSE_ALWAYS_INLINE double ziggurat_u52(std::uint64_t w) {
    return fastmath::bits_to_double((w >> 12) | 0x4330000000000000ull) - 4503599627370496.0;
}
// x >= 0 with the word's sign bit (bit 8) moved into the sign.
MODELCOLLAPSE_ALWAYS_INLINE double ziggurat_signed(double x, std::uint64_t w) {
    return fastmath::bits_to_double(fastmath::double_to_bits(x) | ((w & 0x100u) << 55));
}
// The fast path's candidate, +-u kWidth[i], and whether the fast path accepts it.
MODELCOLLAPSE_ALWAYS_INLINE double ziggurat_candidate(std::uint64_t w) {
    return ziggurat_signed(ziggurat_u52(w) * ziggurat::kWidth[w & 0xff], w);
}
MODELCOLLAPSE_ALWAYS_INLINE bool ziggurat_fast_accepts(std::uint64_t w) {
    return ziggurat_u52(w) < ziggurat::kAccept[w & 0xff];
}

// Blocks handled per batch by the bulk generators below.
constexpr std::size_t kBatch = 128;

// The transform's code is compiled for the baseline and, where the toolchain allows it (GCC >= 12,
// x86-64 Linux, portable build), for AVX2 too; which runs is chosen once, at load time.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX2__) && !defined(MODELCOLLAPSE_NO_DISPATCH)
#define MODELCOLLAPSE_NORMALS_DISPATCH 1
#endif

namespace detail {

// A layer's width and fast-path threshold side by side (the same doubles as ziggurat_tables.hpp):
// one 16-byte load gives both to the AVX2 fast path (two 8-byte loads and an insert each cost
// ~3% more there, bench/ziggurat_parts.cpp).
struct alignas(16) ZigguratLayer {
    double width, accept;
};
struct ZigguratLayers {
    ZigguratLayer v[256];
    constexpr ZigguratLayers() : v() {
        for (int i = 0; i < 256; ++i) v[i] = ZigguratLayer{ziggurat::kWidth[i], ziggurat::kAccept[i]};
    }
};
alignas(64) constexpr ZigguratLayers kZigguratLayers{};

// Words that the fast path rejected, waiting for the slow path: one list per half (the half picks
// the slow path's keys, so each list is one ARS call a round), each entry with its block counter,
// stream and where its normal goes. The bulk paths queue a whole call's rejects (~1.5% of its
// normals) and run the slow path once at the end (or when a list fills): its ARS blocks are then
// computed many at a time (8-16 in flight instead of one block's latency each) and its wedge tests
// by a vector loop; one reject at a time, with a branch on each test's outcome, the slow path took
// ~0.5 ns a normal, as much as the fast path (bench/ziggurat_parts.cpp).
struct ZigguratQueue {
    static constexpr std::size_t kCap = 512;  // per half; a batch adds at most 2 kBatch = 256
    std::size_t n[2] = {0, 0};
    std::uint64_t word[2][kCap], counter[2][kCap], stream[2][kCap];
    double* dest[2][kCap];
    void push(std::uint64_t w, std::uint64_t c, std::uint64_t s, std::uint64_t half, double* d) {
        const std::size_t k = n[half]++;
        word[half][k] = w;
        counter[half][k] = c;
        stream[half][k] = s;
        dest[half][k] = d;
    }
    bool nearly_full() const { return n[0] > kCap - 2 * kBatch || n[1] > kCap - 2 * kBatch; }
};

// One slow-path round's wedge tests, for every live entry (tail entries included: their results
// are ignored): the height y = f(x_i) + (f(x_{i-1}) - f(x_i)) U, U from the block's low half,
// against exp(-x^2 / 2); the normal if it passes, else the fresh word from the block's high half,
// its fast-path candidate and whether the fast path takes it. Branch-free (selects as bit masks
// from a select between two doubles: GCC does not if-convert a floating-point compare that feeds
// control flow, and would leave the loop scalar) so that it vectorises. Compiled for the baseline
// and for AVX2 without FMA (GCC vectorises it 4-wide there, not at all with SSE2; the AVX2 copy
// halved the slow path's time): no FMA contracts y in either, so both give the twin's bits.
MODELCOLLAPSE_ALWAYS_INLINE void ziggurat_wedge_body(std::size_t m, const std::uint64_t* __restrict w,
                                                     const std::uint64_t* __restrict blo,
                                                     const std::uint64_t* __restrict bhi, double* __restrict value,
                                                     std::uint64_t* __restrict next_word,
                                                     std::uint64_t* __restrict done) {
#pragma omp simd
    for (std::size_t q = 0; q < m; ++q) {
        const std::uint64_t a = w[q], i = a & 0xff, below = (i - 1) & 0xff;
        const double x = ziggurat_u52(a) * ziggurat::kWidth[i];
        const double y = ziggurat::kHeight[i] + (ziggurat::kHeight[below] - ziggurat::kHeight[i]) * to_uniform(blo[q]);
        const double ones = fastmath::bits_to_double(~0ull);
        const std::uint64_t pass =
            fastmath::double_to_bits(y < fastmath::exp_nonpositive(-0.5 * (x * x)) ? ones : 0.0);
        const std::uint64_t fresh = bhi[q];
        const std::uint64_t fresh_fast = fastmath::double_to_bits(ziggurat_fast_accepts(fresh) ? ones : 0.0);
        const std::uint64_t kept = fastmath::double_to_bits(ziggurat_signed(x, a));
        const std::uint64_t restarted = fastmath::double_to_bits(ziggurat_candidate(fresh));
        value[q] = fastmath::bits_to_double((kept & pass) | (restarted & ~pass));
        next_word[q] = (a & pass) | (fresh & ~pass);
        done[q] = (pass | fresh_fast) & 1u;
    }
}
using WedgeRoundFn = void (*)(std::size_t, const std::uint64_t*, const std::uint64_t*, const std::uint64_t*, double*,
                              std::uint64_t*, std::uint64_t*);
__attribute__((noinline)) inline void ziggurat_wedge_round_baseline(std::size_t m, const std::uint64_t* w,
                                                                    const std::uint64_t* blo, const std::uint64_t* bhi,
                                                                    double* value, std::uint64_t* next_word,
                                                                    std::uint64_t* done) {
    ziggurat_wedge_body(m, w, blo, bhi, value, next_word, done);
}
#ifdef MODELCOLLAPSE_NORMALS_DISPATCH
__attribute__((target("avx2"), noinline)) inline void ziggurat_wedge_round_avx2(
    std::size_t m, const std::uint64_t* w, const std::uint64_t* blo, const std::uint64_t* bhi, double* value,
    std::uint64_t* next_word, std::uint64_t* done) {
    ziggurat_wedge_body(m, w, blo, bhi, value, next_word, done);
}
#endif
inline WedgeRoundFn ziggurat_wedge_round() {
    static const WedgeRoundFn fn = [] {
#ifdef MODELCOLLAPSE_NORMALS_DISPATCH
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2")) return static_cast<WedgeRoundFn>(ziggurat_wedge_round_avx2);
#endif
        return static_cast<WedgeRoundFn>(ziggurat_wedge_round_baseline);
    }();
    return fn;
}

// The slow path of every queued word, in rounds: round k draws slow-path block k of each live
// entry (evens' key (seed, 2k), then odds' (seed, 2k + 1)), then tests it. A word of layer 0 goes
// to the tail (one try a block: x = -log(U1) / r, y = -log(U2), accept if 2y > x^2), the others
// to the wedge test, whose failure restarts from the block's high half (taken at once if the fast
// path accepts it). After block kZigguratSlowBlocks the current candidate stands. Every round
// writes each live entry's current candidate, so the last write is its normal. Empties the queue.
__attribute__((noinline)) inline void ziggurat_slow(ZigguratQueue& Q, std::uint64_t seed) {
    constexpr std::size_t kMax = 2 * ZigguratQueue::kCap;
    alignas(64) std::uint64_t w[kMax], c[kMax], s[kMax], blo[kMax], bhi[kMax], next_word[kMax], done[kMax];
    alignas(64) double value[kMax];
    double* dest[kMax];
    bool tail[kMax];
    std::size_t evens = Q.n[0], m = 0;
    for (std::uint64_t h = 0; h < 2; ++h)
        for (std::size_t e = 0; e < Q.n[h]; ++e, ++m) {
            w[m] = Q.word[h][e];
            c[m] = Q.counter[h][e];
            s[m] = Q.stream[h][e];
            dest[m] = Q.dest[h][e];
            tail[m] = false;
        }
    Q.n[0] = Q.n[1] = 0;
    const WedgeRoundFn wedge_round = ziggurat_wedge_round();
    for (int k = 1; k <= kZigguratSlowBlocks && m > 0; ++k) {
        const bool last = k == kZigguratSlowBlocks;
        for (std::size_t q = 0; q < m; ++q) {
            blo[q] = c[q];
            bhi[q] = s[q];
        }
        const std::uint64_t key = 2 * static_cast<std::uint64_t>(k);
        if (evens > 0) ars_blocks_keyed(evens, blo, bhi, seed, key);
        if (m > evens) ars_blocks_keyed(m - evens, blo + evens, bhi + evens, seed, key + 1);
        wedge_round(m, w, blo, bhi, value, next_word, done);
        std::size_t live = 0, live_evens = 0;
        for (std::size_t q = 0; q < m; ++q) {
            if (q == evens) live_evens = live;
            bool finished;
            if (__builtin_expect(tail[q] || (w[q] & 0xff) == 0, 0)) {  // the tail: ~2% of the slow path
                tail[q] = true;
                const double xt = -fastmath::detail::log_scaled(uniform_numerator(blo[q]), 53) * ziggurat::kInvR;
                const double yt = -fastmath::detail::log_scaled(uniform_numerator(bhi[q]), 53);
                finished = yt + yt > xt * xt || last;
                *dest[q] = ziggurat_signed(ziggurat::kR + xt, w[q]);
            } else {
                finished = done[q] != 0 || last;
                *dest[q] = value[q];
                w[q] = next_word[q];
            }
            w[live] = w[q];  // keep the unfinished, in order (evens before odds)
            c[live] = c[q];
            s[live] = s[q];
            dest[live] = dest[q];
            tail[live] = tail[q];
            live += !finished;
        }
        if (evens == m) live_evens = live;
        evens = live_evens;
        m = live;
    }
}

// The fast path over m <= kBatch blocks' words (lo[i], hi[i]): candidates into (z0[2i], z0[2i + 1])
// when interleaved, else (z0[i], z1[i]); the positions 2i + half of the words it rejects into
// rejected (in increasing order); returns their count. The callers queue them for ziggurat_slow.
using NormalsFn = std::size_t (*)(std::size_t, const std::uint64_t*, const std::uint64_t*, double*, double*, bool,
                                  std::uint32_t*);

// Portable (baseline, and the fallback of every level for a batch's last m % 4 blocks).
inline std::size_t normals_fast_portable(std::size_t m, const std::uint64_t* __restrict lo,
                                         const std::uint64_t* __restrict hi, double* __restrict z0,
                                         double* __restrict z1, bool interleaved, std::uint32_t* __restrict rejected,
                                         std::size_t first = 0, std::size_t count = 0) {
    std::size_t n = count;
    for (std::size_t i = first; i < m; ++i) {
        const std::uint64_t a = lo[i], b = hi[i];
        (interleaved ? z0[2 * i] : z0[i]) = ziggurat_candidate(a);
        (interleaved ? z0[2 * i + 1] : z1[i]) = ziggurat_candidate(b);
        if (!ziggurat_fast_accepts(a)) rejected[n++] = static_cast<std::uint32_t>(2 * i);
        if (!ziggurat_fast_accepts(b)) rejected[n++] = static_cast<std::uint32_t>(2 * i + 1);
    }
    return n;
}

#ifdef MODELCOLLAPSE_NORMALS_DISPATCH
// AVX2, 4 blocks (8 normals) a step. The table loads are scalar (a layer index is a byte of the
// word: one byte load, then one 16-byte load of (width, accept)): vpgatherqpd took 1.2x the time
// of the whole transform with scalar loads on Zen 4 (bench/ziggurat_parts.cpp). The words are
// taken in lane order (0, 2, 1, 3) so that the four (width, accept) pairs unpack straight into a
// width vector and a threshold vector, and the lo and hi results interleave with two unpacks.
// Only IEEE multiplications and compares: the bits of the portable loop.
__attribute__((target("arch=x86-64-v3"))) inline std::size_t normals_fast_v3(
    std::size_t m, const std::uint64_t* __restrict lo, const std::uint64_t* __restrict hi, double* __restrict z0,
    double* __restrict z1, bool interleaved, std::uint32_t* __restrict rejected) {
    const __m256i sign_bit = _mm256_set1_epi64x(0x100);
    const __m256i exponent = _mm256_set1_epi64x(0x4330000000000000ll);
    const __m256d two52 = _mm256_set1_pd(4503599627370496.0);
    const ZigguratLayer* layer = kZigguratLayers.v;
    std::size_t n = 0, i = 0;
    for (; i + 4 <= m; i += 4) {
        __m256d z[2];
        unsigned reject[2];
        for (int h = 0; h < 2; ++h) {
            const std::uint64_t* src = (h ? hi : lo) + i;
            const __m256i w = _mm256_permute4x64_epi64(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src)), 0xD8);
            const unsigned char* bytes = reinterpret_cast<const unsigned char*>(src);
            const __m128d p0 = _mm_load_pd(&layer[bytes[0]].width), p1 = _mm_load_pd(&layer[bytes[8]].width);
            const __m128d p2 = _mm_load_pd(&layer[bytes[16]].width), p3 = _mm_load_pd(&layer[bytes[24]].width);
            const __m256d v01 = _mm256_set_m128d(p1, p0), v23 = _mm256_set_m128d(p3, p2);
            const __m256d width = _mm256_unpacklo_pd(v01, v23), accept = _mm256_unpackhi_pd(v01, v23);
            const __m256d u =
                _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(_mm256_srli_epi64(w, 12), exponent)), two52);
            z[h] = _mm256_or_pd(_mm256_mul_pd(u, width),
                                _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_and_si256(w, sign_bit), 55)));
            reject[h] = static_cast<unsigned>(_mm256_movemask_pd(_mm256_cmp_pd(u, accept, _CMP_NLT_UQ)));
        }
        if (interleaved) {
            _mm256_storeu_pd(z0 + 2 * i, _mm256_unpacklo_pd(z[0], z[1]));      // lo0 hi0 lo1 hi1
            _mm256_storeu_pd(z0 + 2 * i + 4, _mm256_unpackhi_pd(z[0], z[1]));  // lo2 hi2 lo3 hi3
        } else {
            _mm256_storeu_pd(z0 + i, _mm256_permute4x64_pd(z[0], 0xD8));  // back to lane order 0 1 2 3
            _mm256_storeu_pd(z1 + i, _mm256_permute4x64_pd(z[1], 0xD8));
        }
        // bit 2 l + h: lane l, half h; lanes 1 and 2 hold words 2 and 1: swap those bit pairs
        std::uint64_t bits = _pdep_u64(reject[0], 0x55ull) | _pdep_u64(reject[1], 0xaaull);
        bits = (bits & 0xc3u) | ((bits & 0x0cu) << 2) | ((bits & 0x30u) >> 2);
        while (bits != 0) {  // ~0.12 rejects a step
            rejected[n++] = static_cast<std::uint32_t>(2 * i + static_cast<unsigned>(__builtin_ctzll(bits)));
            bits &= bits - 1;
        }
    }
    return normals_fast_portable(m, lo, hi, z0, z1, interleaved, rejected, i, n);
}
#endif

}  // namespace detail

// Instruction-set levels of the normal transform's fast path: 0 baseline (SSE2), 3 x86-64-v3
// (AVX2), 4 x86-64-v4 (AVX-512; it runs the v3 code: the fast path is bound by its table loads,
// which wider vectors do not reduce). The highest level this build and this CPU can run. All
// levels give the same bits.
inline int normals_isa_available() {
#ifdef MODELCOLLAPSE_NORMALS_DISPATCH
    static const int level = [] {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("x86-64-v4")) return 4;
        if (__builtin_cpu_supports("x86-64-v3")) return 3;
        return 0;
    }();
    return level;
#else
    return 0;
#endif
}

// The fast path for a level (<= normals_isa_available()).
inline detail::NormalsFn normals_fn(int level) {
#ifdef MODELCOLLAPSE_NORMALS_DISPATCH
    if (level >= 3) return detail::normals_fast_v3;
#endif
    (void)level;
    return [](std::size_t m, const std::uint64_t* lo, const std::uint64_t* hi, double* z0, double* z1,
              bool interleaved, std::uint32_t* rejected) {
        return detail::normals_fast_portable(m, lo, hi, z0, z1, interleaved, rejected);
    };
}

// The level every kernel's normals use, fixed at load time: the highest available up to
// kNormalsDefaultIsa, or up to the level named by the environment variable
// MODELCOLLAPSE_NORMALS_ISA ("baseline", "x86-64-v3", "x86-64-v4"; read once). The bits are the
// same at every level; the variable only chooses the code (and so the speed).
constexpr int kNormalsDefaultIsa = 3;
inline int parse_isa_name(const char* s) {
    if (s == nullptr || *s == 0) return -1;
    const std::string v(s);
    if (v == "baseline" || v == "x86-64") return 0;
    if (v == "x86-64-v3") return 3;
    if (v == "x86-64-v4") return 4;
    return -1;
}
inline int normals_isa() {
    static const int level = [] {
        int cap = parse_isa_name(std::getenv("MODELCOLLAPSE_NORMALS_ISA"));
        if (cap < 0) cap = kNormalsDefaultIsa;
        const int avail = normals_isa_available();
        return cap < avail ? cap : avail;
    }();
    return level;
}

namespace detail {

// m <= kBatch consecutive blocks c, c + 1, ... of one stream -> 2m normals into out, interleaved:
// ARS, the fast path; its rejects join the queue (out must stay valid until the queue is run).
inline void normals_run(std::size_t m, std::uint64_t seed, std::uint64_t stream, std::uint64_t c,
                        double* __restrict out, NormalsFn fn, ZigguratQueue& queue) {
    alignas(64) std::uint64_t lo[kBatch], hi[kBatch];
    std::uint32_t rejected[2 * kBatch];
    for (std::size_t q = 0; q < m; ++q) {
        lo[q] = c + q;
        hi[q] = stream;
    }
    ars_blocks(m, lo, hi, seed);
    const std::size_t r = fn(m, lo, hi, out, nullptr, true, rejected);
    for (std::size_t e = 0; e < r; ++e) {
        const std::uint32_t t = rejected[e];
        queue.push(t & 1 ? hi[t / 2] : lo[t / 2], c + t / 2, stream, t & 1, out + t);
    }
    if (queue.nearly_full()) ziggurat_slow(queue, seed);
}

}  // namespace detail

// Normal pairs of n arbitrary blocks: block i is (seed, stream[i], counter[i]) and gives z0[i]
// (its even normal, number 2 counter[i]) and z1[i] (its odd one): the same bits as fill_normals.
inline void normal_pairs(std::uint64_t seed, std::size_t n, const std::uint64_t* stream,
                         const std::uint64_t* counter, double* z0, double* z1) {
    alignas(64) std::uint64_t lo[kBatch], hi[kBatch];
    std::uint32_t rejected[2 * kBatch];
    detail::ZigguratQueue queue;
    static const detail::NormalsFn fn = normals_fn(normals_isa());
    for (std::size_t b = 0; b < n; b += kBatch) {
        const std::size_t m = n - b < kBatch ? n - b : kBatch;
        for (std::size_t i = 0; i < m; ++i) {
            lo[i] = counter[b + i];
            hi[i] = stream[b + i];
        }
        ars_blocks(m, lo, hi, seed);
        const std::size_t r = fn(m, lo, hi, z0 + b, z1 + b, false, rejected);
        for (std::size_t e = 0; e < r; ++e) {
            const std::uint32_t t = rejected[e], i = t / 2;
            queue.push(t & 1 ? hi[i] : lo[i], counter[b + i], stream[b + i], t & 1, (t & 1 ? z1 : z0) + b + i);
        }
        if (queue.nearly_full()) detail::ziggurat_slow(queue, seed);
    }
    detail::ziggurat_slow(queue, seed);
}

// Uniforms number [first, first + n) of a stream (two per block).
inline void fill_uniforms(std::uint64_t seed, std::uint64_t stream, std::uint64_t first,
                          std::size_t n, double* out) {
    std::size_t i = 0;
    std::uint64_t j = first;
    while (i < n) {
        Block b = block(seed, stream, j / 2);
        double u[2];
        uniform_pair(b, u[0], u[1]);
        for (int k = static_cast<int>(j % 2); k < 2 && i < n; ++k, ++i, ++j) out[i] = u[k];
    }
}

// Standard normals number [first, first + n) of a stream (two per block), generated kBatch
// blocks at a time (ARS for the whole batch, then the fast path; the slow path once for the
// call's rejects); the numbers are the same as one at a time. isa: the fast path's level
// (normals_isa_available(); -1, the default, is normals_isa(), what every kernel uses; all levels
// give the same bits).
inline void fill_normals(std::uint64_t seed, std::uint64_t stream, std::uint64_t first,
                         std::size_t n, double* out, int isa = -1) {
    const detail::NormalsFn fn = normals_fn(isa < 0 ? normals_isa() : isa);
    detail::ZigguratQueue queue;
    std::size_t i = 0;
    std::uint64_t j = first;
    double edge[2][2];  // the blocks of an odd start and an odd end (half of each is used)
    if (j % 2 == 1 && n > 0) {  // odd start: second half of a block
        detail::normals_run(1, seed, stream, j / 2, edge[0], fn, queue);
        ++i;
        ++j;
    }
    while (n - i >= 2) {
        const std::size_t pairs = (n - i) / 2;
        const std::size_t m = pairs < kBatch ? pairs : kBatch;
        detail::normals_run(m, seed, stream, j / 2, out + i, fn, queue);
        i += 2 * m;
        j += 2 * m;
    }
    const bool odd_end = i < n;
    if (odd_end) detail::normals_run(1, seed, stream, j / 2, edge[1], fn, queue);  // first half of a block
    detail::ziggurat_slow(queue, seed);
    if (first % 2 == 1 && n > 0) out[0] = edge[0][1];
    if (odd_end) out[n - 1] = edge[1][0];
}

// Normal j of a stream (one number; the same bits as fill_normals).
inline double normal(std::uint64_t seed, std::uint64_t stream, std::uint64_t j) {
    double z;
    fill_normals(seed, stream, j, 1, &z);
    return z;
}

}  // namespace rng
}  // namespace modelcollapse
