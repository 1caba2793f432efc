// Counter-based random numbers: ARS-7 (AES rounds with a Weyl key schedule; Salmon, Moraes,
// Dror and Shaw, "Parallel random numbers: as easy as 1, 2, 3", SC'11) and a Box-Muller
// normal transform.
//
// A draw is a pure function of (seed, stream, counter): no state is carried between calls,
// so any partition of the work over threads reproduces the same numbers bit for bit.
// Layout used everywhere in the library (128-bit values as (low, high) 64-bit halves, the
// byte order of an x86 register):
//   key     = (seed, 0)
//   counter = (c, stream)
// One block (128 bits) gives two 53-bit uniforms in (0, 1) (from its low and its high
// half) and, through Box-Muller, two standard normals: normal number j of a stream comes
// from block j / 2.
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

// ARS-7 on a batch of counters (lo[i], hi[i]) in place, key (seed, 0): with the AES
// instructions where the CPU has them, else portable. Same bits either way.
inline void ars_blocks(std::size_t n, std::uint64_t* __restrict lo, std::uint64_t* __restrict hi, std::uint64_t seed) {
#ifdef MODELCOLLAPSE_ARS_AESNI
#ifdef MODELCOLLAPSE_ARS_VAES
    if (n >= 16 && cpu_has_vaes()) return ars_vaes<kArsRounds>(n, lo, hi, seed, 0);
#endif
    if (cpu_has_aes()) return ars_aesni<kArsRounds>(n, lo, hi, seed, 0);
#endif
    for (std::size_t i = 0; i < n; ++i) {
        const Block b = ars_portable(lo[i], hi[i], seed, 0);
        lo[i] = b.lo;
        hi[i] = b.hi;
    }
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

// z0 = r cos(theta), z1 = r sin(theta), r = sqrt(-2 log u0), theta = 2 pi u1, from a block's
// two words (u0 = to_uniform(lo), u1 = to_uniform(hi)), in two steps: box_muller_radius2
// gives r^2 = -2 log u0 (fastmath's branch-free log, < 1 ulp, of u0's numerator with the
// 2^-53 taken off the exponent: the same bits as of u0), box_muller_turn the rest: sin and
// cos by fastmath's sincos_turn53, which takes u1's 53 bits and reduces the angle exactly by
// selecting bits (no rounded theta, no u1 as a double: < 3 ulp of the exact sin 2 pi u1 and
// cos 2 pi u1, where numpy's np.cos(2 * np.pi * u1) carries theta's rounding, up to 1e-15
// absolute). Every path computes a normal with these two, so that it does not depend on how
// a run of numbers was split into calls.
MODELCOLLAPSE_ALWAYS_INLINE double box_muller_radius2(std::uint64_t lo) {
    return -2.0 * fastmath::detail::log_scaled(uniform_numerator(lo), 53);
}
MODELCOLLAPSE_ALWAYS_INLINE void box_muller_turn(std::uint64_t hi, double radius2, double& z0, double& z1) {
    const double r = std::sqrt(radius2);
    double s, c;
    fastmath::sincos_turn53(hi >> 11, s, c);
    z0 = r * c;
    z1 = r * s;
}
MODELCOLLAPSE_ALWAYS_INLINE void box_muller(std::uint64_t lo, std::uint64_t hi, double& z0, double& z1) {
    box_muller_turn(hi, box_muller_radius2(lo), z0, z1);
}

// Blocks handled per batch by the bulk generators below.
constexpr std::size_t kBatch = 128;

namespace detail {

// m <= kBatch blocks' outputs (lo[i], hi[i]) -> normal pairs: (z[2i], z[2i + 1]) when
// interleaved, else (z0[i], z1[i]). The one transform of every path (vectorised over
// blocks), so a normal's bits do not depend on how a run was split into calls. Two passes
// over the batch, r^2 = -2 log u0 into a buffer, then sin, cos, the square root and the
// products: the same operations as box_muller, but each loop's dependency chain is about half
// of the fused one's (~50 and ~60 cycles, the fused ~110, with the division and the square
// root on it), so that the out-of-order window holds enough iterations to keep the FMA pipes
// busy; fused, the loop ran at ~2.5x its throughput bound (bench/normals_parts.cpp,
// docs/foundation.md, "Randomness").
MODELCOLLAPSE_ALWAYS_INLINE void normals_from_blocks_body(std::size_t m, const std::uint64_t* __restrict lo,
                                                          const std::uint64_t* __restrict hi, double* __restrict z0,
                                                          double* __restrict z1, bool interleaved) {
    alignas(64) double r2[kBatch];
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) r2[i] = box_muller_radius2(lo[i]);
    if (interleaved) {
#pragma omp simd
        for (std::size_t i = 0; i < m; ++i) box_muller_turn(hi[i], r2[i], z0[2 * i], z0[2 * i + 1]);
    } else {
#pragma omp simd
        for (std::size_t i = 0; i < m; ++i) box_muller_turn(hi[i], r2[i], z0[i], z1[i]);
    }
}

using NormalsFn = void (*)(std::size_t, const std::uint64_t*, const std::uint64_t*, double*, double*, bool);

// The transform compiled for the baseline (SSE2) and, where the toolchain allows it (GCC >= 12,
// x86-64 Linux, portable build), for x86-64-v3 (AVX2 + FMA) and x86-64-v4 (AVX-512F/DQ/VL/BW,
// 512-bit vectors); which one runs is chosen once, at load time (normals_isa below). FMA may
// contract a * b + c, so v3 and v4 normals can differ from the baseline's in the last bits
// (a few ulp; tests/test_random.py states the tolerance); they never differ between thread
// counts or call splits on one machine and one choice (docs/foundation.md, "Randomness").
inline void normals_from_blocks_baseline(std::size_t m, const std::uint64_t* __restrict lo,
                                         const std::uint64_t* __restrict hi, double* __restrict z0,
                                         double* __restrict z1, bool interleaved) {
    normals_from_blocks_body(m, lo, hi, z0, z1, interleaved);
}
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX2__) && !defined(MODELCOLLAPSE_NO_DISPATCH)
#define MODELCOLLAPSE_NORMALS_DISPATCH 1
__attribute__((target("arch=x86-64-v3"))) inline void normals_from_blocks_v3(
    std::size_t m, const std::uint64_t* __restrict lo, const std::uint64_t* __restrict hi, double* __restrict z0,
    double* __restrict z1, bool interleaved) {
    normals_from_blocks_body(m, lo, hi, z0, z1, interleaved);
}
__attribute__((target("arch=x86-64-v4,prefer-vector-width=512"))) inline void normals_from_blocks_v4(
    std::size_t m, const std::uint64_t* __restrict lo, const std::uint64_t* __restrict hi, double* __restrict z0,
    double* __restrict z1, bool interleaved) {
    normals_from_blocks_body(m, lo, hi, z0, z1, interleaved);
}
#endif

}  // namespace detail

// Instruction-set levels of the normal transform: 0 baseline (SSE2), 3 x86-64-v3 (AVX2 + FMA),
// 4 x86-64-v4 (AVX-512). The highest level this build and this CPU can run.
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

// The transform for a level (<= normals_isa_available()).
inline detail::NormalsFn normals_fn(int level) {
#ifdef MODELCOLLAPSE_NORMALS_DISPATCH
    if (level >= 4) return detail::normals_from_blocks_v4;
    if (level >= 3) return detail::normals_from_blocks_v3;
#endif
    (void)level;
    return detail::normals_from_blocks_baseline;
}

// The level every kernel's normals use, fixed at load time: the highest available up to
// kNormalsDefaultIsa, or up to the level named by the environment variable
// MODELCOLLAPSE_NORMALS_ISA ("baseline", "x86-64-v3", "x86-64-v4"; read once), which is how a
// user gets the portable build's bits on an FMA machine (or opts in to AVX-512).
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

inline void normals_from_blocks(std::size_t m, const std::uint64_t* __restrict lo, const std::uint64_t* __restrict hi,
                                double* __restrict z0, double* __restrict z1, bool interleaved) {
    static const NormalsFn fn = normals_fn(normals_isa());
    fn(m, lo, hi, z0, z1, interleaved);
}

// m <= kBatch consecutive blocks c, c + 1, ... of one stream -> 2m normals, interleaved.
inline void normals_run(std::size_t m, std::uint64_t seed, std::uint64_t stream, std::uint64_t c,
                        double* __restrict out, NormalsFn fn) {
    alignas(64) std::uint64_t lo[kBatch], hi[kBatch];
    for (std::size_t q = 0; q < m; ++q) {
        lo[q] = c + q;
        hi[q] = stream;
    }
    ars_blocks(m, lo, hi, seed);
    fn(m, lo, hi, out, nullptr, true);
}

}  // namespace detail

// Normal pairs of n arbitrary blocks: block i is (seed, stream[i], counter[i]) and gives
// z0[i] (its even normal) and z1[i] (its odd normal). Bit-identical to box_muller of the
// block's words at the same transform level.
inline void normal_pairs(std::uint64_t seed, std::size_t n, const std::uint64_t* stream,
                         const std::uint64_t* counter, double* z0, double* z1) {
    alignas(64) std::uint64_t lo[kBatch], hi[kBatch];
    for (std::size_t b = 0; b < n; b += kBatch) {
        const std::size_t m = n - b < kBatch ? n - b : kBatch;
        for (std::size_t i = 0; i < m; ++i) {
            lo[i] = counter[b + i];
            hi[i] = stream[b + i];
        }
        ars_blocks(m, lo, hi, seed);
        detail::normals_from_blocks(m, lo, hi, z0 + b, z1 + b, false);
    }
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
// blocks at a time (the generator for the whole batch, then the transform); the numbers
// are the same as one block at a time. isa: the transform's level (normals_isa_available();
// -1, the default, is normals_isa(), what every kernel uses; tests compare the levels).
inline void fill_normals(std::uint64_t seed, std::uint64_t stream, std::uint64_t first,
                         std::size_t n, double* out, int isa = -1) {
    const detail::NormalsFn fn = normals_fn(isa < 0 ? normals_isa() : isa);
    std::size_t i = 0;
    std::uint64_t j = first;
    if (j % 2 == 1 && n > 0) {  // odd start: second half of a block
        double z[2];
        detail::normals_run(1, seed, stream, j / 2, z, fn);
        out[i++] = z[1];
        ++j;
    }
    while (n - i >= 2) {
        const std::size_t pairs = (n - i) / 2;
        const std::size_t m = pairs < kBatch ? pairs : kBatch;
        detail::normals_run(m, seed, stream, j / 2, out + i, fn);
        i += 2 * m;
        j += 2 * m;
    }
    if (i < n) {  // odd end: first half of a block
        double z[2];
        detail::normals_run(1, seed, stream, j / 2, z, fn);
        out[i] = z[0];
    }
}

}  // namespace rng
}  // namespace modelcollapse
