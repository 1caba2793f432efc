// Microbenchmarks that split the normal generator's time (issue 16: goal <= 1.5 ns a normal on
// one core): the shipped bulk call (fill_normals, one stream) against its stages, each run
// alone over one batch of kBatch = 128 blocks kept in cache: the ARS-7 rounds (ars_blocks), the
// whole transform (normals_from_blocks at the x86-64-v3 level), its first pass alone
// (r^2 = -2 log u0, the division and the polynomial), the same pass with the division replaced
// by a multiplication (wrong numbers, the same other operations: what the divider costs in
// place), its second pass alone (sin, cos, the square root, the products), and the two passes
// fused into one loop (box_muller per block: the same operations, the form shipped before, whose
// dependency chain is twice as long). bench/bounds.py builds this file with the extension's
// flags (no -march; the v3 functions carry their own target attribute, as random.hpp's clone),
// loads it with ctypes and times each part with the others, interleaved; mc_add_chain gives the
// core's clock (one dependent add a cycle) so that times convert to cycles.
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "modelcollapse/random.hpp"

using namespace modelcollapse;
using namespace modelcollapse::rng;

namespace {

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && !defined(__AVX2__)
#define NP_V3 __attribute__((target("arch=x86-64-v3"), noinline))
#else
#define NP_V3 __attribute__((noinline))
#endif

enum Part : int {
    kFill = 0,       // fill_normals(seed, stream, first, 256, out): the shipped bulk call, load-time level
    kArs = 1,        // ars_blocks on 128 counters (set up as fill_normals does)
    kTransform = 2,  // normals_from_blocks_v3-equivalent: both passes
    kRadius = 3,     // first pass alone: r^2 = -2 log u0
    kRadiusNoDiv = 4,  // the same with s = f * (2 + f) (a multiplication) for f / (2 + f)
    kTurn = 5,       // second pass alone: sincos_turn53, sqrt, products
    kFused = 6,      // the two passes as one loop (box_muller per block)
};

alignas(64) std::uint64_t g_lo[kBatch], g_hi[kBatch];
alignas(64) double g_r2[kBatch], g_z[2 * kBatch];

// log_scaled with the division replaced by a multiplication (same operation count otherwise).
MODELCOLLAPSE_ALWAYS_INLINE double log_scaled_nodiv(double x, int k) {
    constexpr double kLn2Hi = 6.93147180369123816490e-01, kLn2Lo = 1.90821492927058770002e-10;
    constexpr double Lg1 = 6.666666666666735130e-01, Lg2 = 3.999999999940941908e-01;
    constexpr double Lg3 = 2.857142874366239149e-01, Lg4 = 2.222219843214978396e-01;
    constexpr double Lg5 = 1.818357216161805012e-01, Lg6 = 1.531383769920937332e-01;
    constexpr double Lg7 = 1.479819860511658591e-01;
    constexpr std::uint64_t kOff = 0x3ff0000000000000ull - 0x3fe6a09e00000000ull;
    const std::uint64_t top = fastmath::double_to_bits(x) + kOff;
    const double m = fastmath::bits_to_double((top & 0x000fffffffffffffull) + 0x3fe6a09e00000000ull);
    const double e = fastmath::bits_to_double((top >> 52) | 0x4330000000000000ull) - (4503599627370496.0 + 1023.0 + k);
    const double f = m - 1.0;
    const double s = f * (2.0 + f);
    const double z = s * s, w = z * z;
    const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    const double R = t2 + t1, hfsq = 0.5 * f * f;
    return e * kLn2Hi - ((hfsq - (s * (hfsq + R) + e * kLn2Lo)) - f);
}

NP_V3 void transform(std::size_t m, double* z) { detail::normals_from_blocks_body(m, g_lo, g_hi, z, nullptr, true); }

NP_V3 void radius(std::size_t m) {
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) g_r2[i] = box_muller_radius2(g_lo[i]);
}

NP_V3 void radius_nodiv(std::size_t m) {
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) g_r2[i] = -2.0 * log_scaled_nodiv(uniform_numerator(g_lo[i]), 53);
}

NP_V3 void turn(std::size_t m, double* z) {
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) box_muller_turn(g_hi[i], g_r2[i], z[2 * i], z[2 * i + 1]);
}

NP_V3 void fused(std::size_t m, double* z) {
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) box_muller(g_lo[i], g_hi[i], z[2 * i], z[2 * i + 1]);
}

void setup() {
    for (std::size_t q = 0; q < kBatch; ++q) {
        g_lo[q] = q;
        g_hi[q] = 5;
    }
    ars_blocks(kBatch, g_lo, g_hi, 1);
    for (std::size_t q = 0; q < kBatch; ++q) g_r2[q] = box_muller_radius2(g_lo[q]);
}

}  // namespace

extern "C" {

// reps calls of one part, each over kBatch blocks (2 kBatch normals).
void mc_normals_part(int part, long reps) {
    static const bool ready = (setup(), true);
    (void)ready;
    alignas(64) std::uint64_t lo[kBatch], hi[kBatch];
    for (long r = 0; r < reps; ++r) {
        switch (part) {
            case kFill:
                fill_normals(1, 0, static_cast<std::uint64_t>(r) * 2 * kBatch, 2 * kBatch, g_z);
                break;
            case kArs:
                for (std::size_t q = 0; q < kBatch; ++q) {
                    lo[q] = static_cast<std::uint64_t>(r) * kBatch + q;
                    hi[q] = 0;
                }
                ars_blocks(kBatch, lo, hi, 1);
                g_z[r & 127] = static_cast<double>(lo[r & 127]);
                break;
            case kTransform: transform(kBatch, g_z); break;
            case kRadius: radius(kBatch); break;
            case kRadiusNoDiv: radius_nodiv(kBatch); break;
            case kTurn: turn(kBatch, g_z); break;
            case kFused: fused(kBatch, g_z); break;
            default: break;
        }
        asm volatile("" ::: "memory");
    }
    if (part == kRadiusNoDiv) setup();  // the other parts read the true r^2
}

// Normals per call of mc_normals_part.
long mc_normals_per_call() { return static_cast<long>(2 * kBatch); }

// n x 4 dependent integer adds: one a cycle, so the time per add is the core's clock period.
void mc_normals_add_chain(long n) {
    long a = 0;
    for (long i = 0; i < n; ++i) asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(a));
}

}  // extern "C"
