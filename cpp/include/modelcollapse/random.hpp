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

// 53-bit uniform strictly inside (0, 1) from two 32-bit words (hi, lo).
inline double to_uniform(std::uint32_t hi, std::uint32_t lo) {
    std::uint64_t x = (static_cast<std::uint64_t>(hi) << 32) | lo;
    return (static_cast<double>(x >> 11) + 0.5) * kTwoPow53Inv;
}

inline void uniform_pair(const Block& b, double& u0, double& u1) {
    u0 = to_uniform(b.w[1], b.w[0]);
    u1 = to_uniform(b.w[3], b.w[2]);
}

inline void box_muller(double u0, double u1, double& z0, double& z1) {
    double r = std::sqrt(-2.0 * std::log(u0));
    double theta = kTwoPi * u1;
    z0 = r * std::cos(theta);
    z1 = r * std::sin(theta);
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

// Standard normals number [first, first + n) of a stream (two per block).
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
