// Counter-based random numbers: Philox4x32-10 (Salmon et al., SC'11) and a Box-Muller
// normal transform.
//
// A draw is a pure function of (seed, stream, counter): no state is carried between calls,
// so any partition of the work over threads reproduces the same numbers bit for bit.
// Layout used everywhere in the library:
//   key     = (seed & 0xffffffff, seed >> 32)
//   counter = (c & 0xffffffff, c >> 32, stream & 0xffffffff, stream >> 32)
// One block (4 x 32 bits) gives two 53-bit uniforms in (0, 1) and, through Box-Muller,
// two standard normals: normal number j of a stream comes from block j / 2.
#pragma once

#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "fastmath.hpp"

// Philox with AVX2 intrinsics where the CPU has it (GCC/clang on x86-64): the vectoriser
// emulates a full 64 x 64-bit product for the 32 x 32 -> 64 multiply of each round, which
// made the batched generator ~2x slower than this hand-written form. Integer arithmetic
// only, so both paths give the same bits.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(MODELCOLLAPSE_NO_DISPATCH)
#define MODELCOLLAPSE_PHILOX_AVX2 1
#include <immintrin.h>
#endif

namespace modelcollapse {
namespace rng {

constexpr std::uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr std::uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr std::uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr std::uint32_t kPhiloxW1 = 0xBB67AE85u;
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
    std::uint32_t w[4];
};

inline Block philox4x32_10(std::uint32_t c0, std::uint32_t c1, std::uint32_t c2,
                           std::uint32_t c3, std::uint32_t k0, std::uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
        if (round > 0) {
            k0 += kPhiloxW0;
            k1 += kPhiloxW1;
        }
        std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * c0;
        std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * c2;
        std::uint32_t hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
        std::uint32_t hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
        std::uint32_t n0 = hi1 ^ c1 ^ k0;
        std::uint32_t n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
    }
    return Block{{c0, c1, c2, c3}};
}

inline Block block(std::uint64_t seed, std::uint64_t stream, std::uint64_t counter) {
    return philox4x32_10(static_cast<std::uint32_t>(counter), static_cast<std::uint32_t>(counter >> 32),
                         static_cast<std::uint32_t>(stream), static_cast<std::uint32_t>(stream >> 32),
                         static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
}

// 53-bit uniform strictly inside (0, 1) from two 32-bit words (hi, lo):
// ((hi:lo >> 11) + 0.5) / 2^53, with + 0.5 rounded to even at the top of the range.
// The integer -> double conversion is done with bit operations (exact: v < 2^53), so that
// the batched loops below vectorise with SSE2; the value is identical to
// static_cast<double>(v).
inline double to_uniform(std::uint32_t hi, std::uint32_t lo) {
    const std::uint64_t v = ((static_cast<std::uint64_t>(hi) << 32) | lo) >> 11;
    const double low = fastmath::bits_to_double((v & 0x000FFFFFFFFFFFFFull) | 0x4330000000000000ull) -
                       4503599627370496.0;                                                // v mod 2^52
    const double high = fastmath::bits_to_double((0 - (v >> 52)) & 0x4330000000000000ull);  // 0 or 2^52
    return ((low + high) + 0.5) * kTwoPow53Inv;
}

inline void uniform_pair(const Block& b, double& u0, double& u1) {
    u0 = to_uniform(b.w[1], b.w[0]);
    u1 = to_uniform(b.w[3], b.w[2]);
}

// z0 = r cos(theta), z1 = r sin(theta), r = sqrt(-2 log u0), theta = 2 pi u1 (theta rounded
// once, as numpy's 2 * np.pi * u1). log, sin and cos are fastmath's branch-free versions
// (< 1 ulp / ~1 ulp from the libm ones), used by every path so that a normal does not
// depend on how a run of numbers was split into calls.
inline void box_muller(double u0, double u1, double& z0, double& z1) {
    const double r = std::sqrt(-2.0 * fastmath::log_positive(u0));
    const double theta = kTwoPi * u1;
    double s, c;
    fastmath::sincos(theta, s, c);
    z0 = r * c;
    z1 = r * s;
}

// Philox on a batch of n independent blocks, in place: (c0, c1, c2, c3)[i] is the counter
// of block i on entry and its output on exit. Same key for all. Vectorises across blocks
// (32 x 32 -> 64-bit products are pmuludq with SSE2).
inline void philox4x32_10_batch(std::size_t n, std::uint32_t* __restrict c0, std::uint32_t* __restrict c1,
                                std::uint32_t* __restrict c2, std::uint32_t* __restrict c3, std::uint32_t k0,
                                std::uint32_t k1) {
    for (int round = 0; round < 10; ++round) {
#pragma omp simd
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint64_t p0 = static_cast<std::uint64_t>(kPhiloxM0) * c0[i];
            const std::uint64_t p1 = static_cast<std::uint64_t>(kPhiloxM1) * c2[i];
            const std::uint32_t n0 = static_cast<std::uint32_t>(p1 >> 32) ^ c1[i] ^ k0;
            const std::uint32_t n2 = static_cast<std::uint32_t>(p0 >> 32) ^ c3[i] ^ k1;
            c0[i] = n0;
            c1[i] = static_cast<std::uint32_t>(p1);
            c2[i] = n2;
            c3[i] = static_cast<std::uint32_t>(p0);
        }
        k0 += kPhiloxW0;
        k1 += kPhiloxW1;
    }
}

#ifdef MODELCOLLAPSE_PHILOX_AVX2
// philox4x32_10_batch for n blocks, 8 at a time (two independent groups of four 64-bit
// lanes, each lane holding one 32-bit word in its low half). _mm256_mul_epu32 reads only
// the low halves, so the products' high halves are never masked inside the rounds: the
// garbage they leave in the upper halves of (c1, c3) never reaches a low half, and the
// outputs are packed back to 32 bits at the end. The tail (< 8 blocks) is scalar.
__attribute__((target("avx2"))) inline void philox4x32_10_batch_avx2(
    std::size_t n, std::uint32_t* __restrict c0, std::uint32_t* __restrict c1, std::uint32_t* __restrict c2,
    std::uint32_t* __restrict c3, std::uint32_t k0_in, std::uint32_t k1_in) {
    const __m256i m0 = _mm256_set1_epi64x(kPhiloxM0), m1 = _mm256_set1_epi64x(kPhiloxM1);
    const __m256i pack = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    std::uint32_t* const words[4] = {c0, c1, c2, c3};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256i x[4][2];  // x[word][group]
        for (int w = 0; w < 4; ++w)
            for (int g = 0; g < 2; ++g)
                x[w][g] = _mm256_cvtepu32_epi64(_mm_loadu_si128(reinterpret_cast<const __m128i*>(words[w] + i + 4 * g)));
        std::uint32_t k0 = k0_in, k1 = k1_in;
        for (int round = 0; round < 10; ++round) {
            const __m256i kk0 = _mm256_set1_epi64x(k0), kk1 = _mm256_set1_epi64x(k1);
            for (int g = 0; g < 2; ++g) {
                const __m256i p0 = _mm256_mul_epu32(x[0][g], m0);
                const __m256i p1 = _mm256_mul_epu32(x[2][g], m1);
                x[0][g] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p1, 32), x[1][g]), kk0);
                x[2][g] = _mm256_xor_si256(_mm256_xor_si256(_mm256_srli_epi64(p0, 32), x[3][g]), kk1);
                x[1][g] = p1;
                x[3][g] = p0;
            }
            k0 += kPhiloxW0;
            k1 += kPhiloxW1;
        }
        for (int w = 0; w < 4; ++w)
            for (int g = 0; g < 2; ++g)
                _mm_storeu_si128(reinterpret_cast<__m128i*>(words[w] + i + 4 * g),
                                 _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(x[w][g], pack)));
    }
    for (; i < n; ++i) {
        const Block b = philox4x32_10(c0[i], c1[i], c2[i], c3[i], k0_in, k1_in);
        c0[i] = b.w[0];
        c1[i] = b.w[1];
        c2[i] = b.w[2];
        c3[i] = b.w[3];
    }
}

inline bool cpu_has_avx2() {
    static const bool ok = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") != 0;
    }();
    return ok;
}
#endif

// Philox on a batch of blocks, in place (philox4x32_10_batch), through the AVX2 form when
// the CPU has it.
inline void philox_blocks(std::size_t n, std::uint32_t* __restrict c0, std::uint32_t* __restrict c1,
                          std::uint32_t* __restrict c2, std::uint32_t* __restrict c3, std::uint32_t k0,
                          std::uint32_t k1) {
#ifdef MODELCOLLAPSE_PHILOX_AVX2
    if (cpu_has_avx2()) return philox4x32_10_batch_avx2(n, c0, c1, c2, c3, k0, k1);
#endif
    philox4x32_10_batch(n, c0, c1, c2, c3, k0, k1);
}

// Blocks handled per batch by the bulk generators below.
constexpr std::size_t kBatch = 128;

namespace detail {

// m <= kBatch blocks (c0..c3 = counters, consumed) -> normal pairs (z0[i], z1[i]).
MODELCOLLAPSE_HOT void normals_from_counters(std::size_t m, std::uint32_t* __restrict c0, std::uint32_t* __restrict c1,
                                            std::uint32_t* __restrict c2, std::uint32_t* __restrict c3,
                                            std::uint32_t k0, std::uint32_t k1, double* __restrict z0,
                                            double* __restrict z1) {
    philox_blocks(m, c0, c1, c2, c3, k0, k1);
    alignas(64) double u0[kBatch], u1[kBatch];
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) {
        u0[i] = to_uniform(c1[i], c0[i]);
        u1[i] = to_uniform(c3[i], c2[i]);
    }
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) box_muller(u0[i], u1[i], z0[i], z1[i]);
}

// m <= kBatch consecutive blocks c, c + 1, ... of one stream -> 2m normals, interleaved.
MODELCOLLAPSE_HOT void normals_run(std::size_t m, std::uint64_t c, std::uint32_t s0, std::uint32_t s1,
                                   std::uint32_t k0, std::uint32_t k1, double* __restrict out) {
    alignas(64) std::uint32_t w0[kBatch], w1[kBatch], w2[kBatch], w3[kBatch];
    alignas(64) double u0[kBatch], u1[kBatch];
    for (std::size_t q = 0; q < m; ++q) {
        w0[q] = static_cast<std::uint32_t>(c + q);
        w1[q] = static_cast<std::uint32_t>((c + q) >> 32);
        w2[q] = s0;
        w3[q] = s1;
    }
    philox_blocks(m, w0, w1, w2, w3, k0, k1);
#pragma omp simd
    for (std::size_t q = 0; q < m; ++q) {
        u0[q] = to_uniform(w1[q], w0[q]);
        u1[q] = to_uniform(w3[q], w2[q]);
    }
#pragma omp simd
    for (std::size_t q = 0; q < m; ++q) box_muller(u0[q], u1[q], out[2 * q], out[2 * q + 1]);
}

}  // namespace detail

// Normal pairs of n arbitrary blocks: block i is (seed, stream[i], counter[i]) and gives
// z0[i] (its even normal) and z1[i] (its odd normal). Bit-identical to box_muller of
// uniform_pair(block(...)).
inline void normal_pairs(std::uint64_t seed, std::size_t n, const std::uint64_t* stream,
                         const std::uint64_t* counter, double* z0, double* z1) {
    alignas(64) std::uint32_t w0[kBatch], w1[kBatch], w2[kBatch], w3[kBatch];
    const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
    for (std::size_t b = 0; b < n; b += kBatch) {
        const std::size_t m = n - b < kBatch ? n - b : kBatch;
        for (std::size_t i = 0; i < m; ++i) {
            w0[i] = static_cast<std::uint32_t>(counter[b + i]);
            w1[i] = static_cast<std::uint32_t>(counter[b + i] >> 32);
            w2[i] = static_cast<std::uint32_t>(stream[b + i]);
            w3[i] = static_cast<std::uint32_t>(stream[b + i] >> 32);
        }
        detail::normals_from_counters(m, w0, w1, w2, w3, k0, k1, z0 + b, z1 + b);
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

// Standard normals number [first, first + n) of a stream (two per block). Long runs are
// generated kBatch blocks at a time (Philox for the whole batch, then the transform), both
// stages vectorised; the numbers are the same as one block at a time.
inline void fill_normals(std::uint64_t seed, std::uint64_t stream, std::uint64_t first,
                         std::size_t n, double* out) {
    std::size_t i = 0;
    std::uint64_t j = first;
    if (j % 2 == 1 && n > 0) {  // odd start: second half of a block
        double u0, u1, z0, z1;
        uniform_pair(block(seed, stream, j / 2), u0, u1);
        box_muller(u0, u1, z0, z1);
        out[i++] = z1;
        ++j;
    }
    if (n - i >= 8) {
        const auto k0 = static_cast<std::uint32_t>(seed), k1 = static_cast<std::uint32_t>(seed >> 32);
        const auto s0 = static_cast<std::uint32_t>(stream), s1 = static_cast<std::uint32_t>(stream >> 32);
        while (n - i >= 2) {
            const std::size_t pairs = (n - i) / 2;
            const std::size_t m = pairs < kBatch ? pairs : kBatch;
            detail::normals_run(m, j / 2, s0, s1, k0, k1, out + i);
            i += 2 * m;
            j += 2 * m;
        }
    }
    for (; i + 1 < n; i += 2, j += 2) {
        double u0, u1;
        uniform_pair(block(seed, stream, j / 2), u0, u1);
        box_muller(u0, u1, out[i], out[i + 1]);
    }
    if (i < n) {
        double u0, u1, z0, z1;
        uniform_pair(block(seed, stream, j / 2), u0, u1);
        box_muller(u0, u1, z0, z1);
        out[i] = z0;
    }
}

}  // namespace rng
}  // namespace modelcollapse
