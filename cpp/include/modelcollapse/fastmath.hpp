// Branch-free elementary functions that the compiler can vectorise (std::exp cannot be
// vectorised without -ffast-math). Accuracy: a few ulp, far below every tolerance used
// in the library (the numpy reference agrees to ~1e-15 relative).
#pragma once

#include <cstdint>
#include <cstring>

// Hot kernels are compiled twice where the toolchain allows it (GCC, x86-64 Linux, portable
// build): for AVX2 and for the baseline, picked at load time (target_clones / ifunc). AVX2
// without FMA: the same IEEE operations as the baseline, so per-lane results are
// bit-identical; only the lane count (and so the order of sums reduced across lanes)
// changes. A -march=native build (MODELCOLLAPSE_NATIVE) needs no clones.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX2__) && !defined(MODELCOLLAPSE_NO_DISPATCH)
#define MODELCOLLAPSE_HOT static __attribute__((target_clones("avx2", "default")))
#else
#define MODELCOLLAPSE_HOT inline
#endif

// Like MODELCOLLAPSE_HOT, but the vector clone targets x86-64-v3 (AVX2 with FMA, GCC >= 12):
// the compiler may contract a * b + c into one fused multiply-add, so results can differ
// from the baseline clone in the last bits (they stay identical for any thread count on one
// machine). For kernels whose tests compare with tolerances, never bit for bit across builds.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX2__) && !defined(MODELCOLLAPSE_NO_DISPATCH)
#define MODELCOLLAPSE_HOT_FMA static __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define MODELCOLLAPSE_HOT_FMA MODELCOLLAPSE_HOT
#endif

// Helpers of hot kernels. A function compiled with MODELCOLLAPSE_HOT(_FMA) runs the vector
// clone's instruction set only on the code inlined into it, so the helpers it calls (their
// loops, `omp simd` ones included) are forced inline: each clone then vectorises them for its
// own target. This, with MODELCOLLAPSE_HOT(_FMA) above, is the project's SIMD dispatch
// policy; the one exception is the normal transform (random.hpp, normals_isa), whose levels
// are chosen by a load-time CPU check so that tests and users can pick a level per call or
// per process (MODELCOLLAPSE_NORMALS_ISA), which target_clones' resolver cannot.
#if defined(__GNUC__)
#define MODELCOLLAPSE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MODELCOLLAPSE_ALWAYS_INLINE inline
#endif

#if defined(__GNUC__)
#define MODELCOLLAPSE_VECTOR_EXT 1
namespace modelcollapse {
// Four doubles as one value (GCC/clang vector extension): element-wise IEEE operations, so
// sums kept in its lanes have a fixed order whatever instruction set the compiler maps it
// onto (one AVX2 register, or two SSE2 ones). vec4d_u is the same type with the alignment
// (and aliasing) of a double, for loads from and stores to plain arrays.
typedef double vec4d __attribute__((vector_size(32)));
typedef double vec4d_u __attribute__((vector_size(32), aligned(8), may_alias));
}  // namespace modelcollapse
#define MODELCOLLAPSE_LOAD4(p) (*reinterpret_cast<const ::modelcollapse::vec4d_u*>(p))
#define MODELCOLLAPSE_STORE4(p, v) (*reinterpret_cast<::modelcollapse::vec4d_u*>(p) = (v))
#endif

namespace modelcollapse {
namespace fastmath {

// Bit casts. __builtin_bit_cast keeps loops that use them vectorisable (a memcpy through a
// local can stop GCC's vectoriser).
#if defined(__has_builtin)
#if __has_builtin(__builtin_bit_cast)
#define MODELCOLLAPSE_HAS_BIT_CAST 1
#endif
#endif
MODELCOLLAPSE_ALWAYS_INLINE double bits_to_double(std::uint64_t b) {
#ifdef MODELCOLLAPSE_HAS_BIT_CAST
    return __builtin_bit_cast(double, b);
#else
    double d;
    std::memcpy(&d, &b, sizeof d);
    return d;
#endif
}
MODELCOLLAPSE_ALWAYS_INLINE std::uint64_t double_to_bits(double d) {
#ifdef MODELCOLLAPSE_HAS_BIT_CAST
    return __builtin_bit_cast(std::uint64_t, d);
#else
    std::uint64_t b;
    std::memcpy(&b, &d, sizeof b);
    return b;
#endif
}

namespace detail {
// exp(x) = 2^k e^r: returns r = x - k ln2 (Cody-Waite, ln2 in two parts; |r| <= ln2 / 2)
// and k = round(x log2(e)), taken from the rounding constant's low mantissa bits (two's
// complement).
MODELCOLLAPSE_ALWAYS_INLINE double exp_reduce(double x, std::int64_t& k) {
    constexpr double kLog2e = 1.4426950408889634074;
    constexpr double kLn2Hi = 6.93147180369123816490e-01;
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer
    const double t = x * kLog2e + kShifter;
    const double kf = t - kShifter;
    k = static_cast<std::int64_t>(double_to_bits(t) - double_to_bits(kShifter));
    return (x - kf * kLn2Hi) - kf * kLn2Lo;
}

// e^r on |r| <= ln2 / 2 by its Taylor series to degree 13 (remainder < 1e-17 on
// |r| <= 0.347), in two evaluation orders of the same coefficients. Estrin's scheme: a
// short dependency chain, for loops that keep few exponentials in flight (reductions, which
// would otherwise wait on the chain). Horner's: the fewest operations, for long loops of
// independent exponentials, which are throughput-bound (Estrin's order there costs the
// exact grid KDE 5% more instructions). The two may differ in the last bit.
MODELCOLLAPSE_ALWAYS_INLINE double exp_taylor_estrin(double r) {
    const double r2 = r * r, r4 = r2 * r2, r8 = r4 * r4;
    const double a0 = 1.0 + r;
    const double a1 = 1.0 / 2.0 + r * (1.0 / 6.0);
    const double a2 = 1.0 / 24.0 + r * (1.0 / 120.0);
    const double a3 = 1.0 / 720.0 + r * (1.0 / 5040.0);
    const double a4 = 1.0 / 40320.0 + r * (1.0 / 362880.0);
    const double a5 = 1.0 / 3628800.0 + r * (1.0 / 39916800.0);
    const double a6 = 1.0 / 479001600.0 + r * (1.0 / 6227020800.0);
    const double b0 = a0 + r2 * a1;
    const double b1 = a2 + r2 * a3;
    const double b2 = a4 + r2 * a5;
    return (b0 + r4 * b1) + r8 * (b2 + r4 * a6);
}
MODELCOLLAPSE_ALWAYS_INLINE double exp_taylor_horner(double r) {
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    return p * r + 1.0;
}
}  // namespace detail

// exp(x) for x <= 0 (the only case log-sum-exp needs): < 1 ulp for normal results,
// correctly rounded subnormals below -708, 0 below -745.5 and for -inf, NaN for NaN.
// Branch-free and written so that GCC vectorises loops that call it with plain SSE2: the
// clamp is a bit mask built from a select between two doubles (a select between constants
// and x, or a bool -> integer mask, makes GCC either thread the clamped path into a branch
// or give up on SSE2), and the result is scaled by 2^(k + 600) then 2^-600 so that no
// exponent field can wrap for k >= -1623. Estrin's order (log-sum-exp reductions).
inline double exp_nonpositive(double x) {
    constexpr double kLowest = -745.5;  // exp(-745.5) rounds to 0
    const std::uint64_t below = double_to_bits(x < kLowest ? bits_to_double(~0ull) : 0.0);
    const double xc = bits_to_double((double_to_bits(x) & ~below) | (double_to_bits(kLowest) & below));
    std::int64_t k;
    const double p = detail::exp_taylor_estrin(detail::exp_reduce(xc, k));
    // Both scalings are exact for normal results (then identical to p * 2^k); the second
    // rounds once into the subnormal range.
    const double scale = bits_to_double(static_cast<std::uint64_t>(k + 1623) << 52);  // 2^(k + 600)
    return (p * scale) * 0x1p-600;
}

// exp(x) for any x (the Gaussian kernels' values and their ratios, which may exceed 1):
// the same reduction and series as exp_nonpositive, in Horner's order (the kernels' loops
// are long and throughput-bound), about 2 ulp from std::exp on [-708.39, 709]. Below, 2^k
// is flushed to 0 once k < -1022 (x below about -708.74) instead of rounding into the
// subnormals (their arithmetic is slow and the kernels never need them); above 709.78 the
// exponent is capped (finite, 2^1023 e^r, not inf). The clamps are integer bit masks, not
// a floating-point compare: GCC 12 does not if-convert a (possibly trapping) FP compare, so
// a compare-based clamp keeps the calling loop scalar ("control flow in loop").
MODELCOLLAPSE_ALWAYS_INLINE double exp_flush(double x) {
    std::int64_t k;
    const double p = detail::exp_taylor_horner(detail::exp_reduce(x, k));
    const std::int64_t under = (k + 1022) >> 63;  // all ones if k < -1022
    const std::int64_t over = (1023 - k) >> 63;   // all ones if k > 1023
    std::int64_t kc = (k & ~under) | (-1022 & under);
    kc = (kc & ~over) | (1023 & over);
    const double y = p * bits_to_double(static_cast<std::uint64_t>(kc + 1023) << 52);
    return bits_to_double(double_to_bits(y) & static_cast<std::uint64_t>(~under));
}

// 2^x for log-sum-exp weights, x in [-1020, 1000] (the caller keeps x in range: a clamp
// written here would be a select against a constant, which GCC turns into a branch and then
// does not vectorise; a clamp against a runtime bound stays a vector min/max). Cheaper than
// exp_nonpositive: x = k + r with k = round(x) and r = x - k exact, |r| <= 1/2; 2^r by a
// degree-11 polynomial (Chebyshev fit of 2^r on [-1/2, 1/2], coefficients rounded to double;
// error < 2e-17 relative, checked in 40-digit arithmetic) as even and odd parts in r^2 (two
// independent chains of Horner steps: short latency); then k is added to the exponent field
// with one integer add (exact: the result stays normal). About 1 ulp relative. Branch-free;
// vectorises.
inline double exp2_weight(double x) {
    constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: x + kShifter rounds x to an integer
    const double t = x + kShifter;
    const double kf = t - kShifter;
    const double r = x - kf;
    const double r2 = r * r;
    double pe = 7.074194297288521e-09;
    pe = pe * r2 + 1.3215432535912375e-06;
    pe = pe * r2 + 0.00015403530463724353;
    pe = pe * r2 + 0.009618129107587256;
    pe = pe * r2 + 0.24022650695910158;
    pe = pe * r2 + 1.0;
    double po = 4.4558179083360645e-10;
    po = po * r2 + 1.0178057087733941e-07;
    po = po * r2 + 1.5252733841556773e-05;
    po = po * r2 + 0.001333355814640647;
    po = po * r2 + 0.055504108664821625;
    po = po * r2 + 0.6931471805599453;
    const double p = pe + r * po;
    // The low mantissa bits of t hold k (two's complement); shifted into the exponent field.
    return bits_to_double(double_to_bits(p) + (double_to_bits(t) << 52));
}

#ifdef MODELCOLLAPSE_VECTOR_EXT
typedef long long vec4i __attribute__((vector_size(32)));
// exp2_weight on four lanes (the same operations lane by lane, so each lane equals the
// scalar exp2_weight of its input in a build with the same contraction of a * b + c).
// Written with the vector extension so that kernels keeping their state in vec4d registers
// need no spill to an array and back for the exponentials. In place (x <- 2^x): a vec4d
// return value would change the function's ABI between the AVX and the baseline clones
// (GCC's -Wpsabi warning), although it is always inlined.
MODELCOLLAPSE_ALWAYS_INLINE void exp2_weight4(vec4d& x) {
    constexpr double kShifter = 6755399441055744.0;
    const vec4d t = x + kShifter;
    const vec4d kf = t - kShifter;
    const vec4d r = x - kf;
    const vec4d r2 = r * r;
    vec4d pe = 7.074194297288521e-09 * r2 + 1.3215432535912375e-06;
    pe = pe * r2 + 0.00015403530463724353;
    pe = pe * r2 + 0.009618129107587256;
    pe = pe * r2 + 0.24022650695910158;
    pe = pe * r2 + 1.0;
    vec4d po = 4.4558179083360645e-10 * r2 + 1.0178057087733941e-07;
    po = po * r2 + 1.5252733841556773e-05;
    po = po * r2 + 0.001333355814640647;
    po = po * r2 + 0.055504108664821625;
    po = po * r2 + 0.6931471805599453;
    const vec4d p = pe + r * po;
    x = reinterpret_cast<vec4d>(reinterpret_cast<vec4i>(p) + (reinterpret_cast<vec4i>(t) << 52));
}
#endif

namespace detail {
// log(x 2^-k) for a positive, finite, normal x and an integer k: log_positive's algorithm with
// k taken off the exponent, so that log(V 2^-53) of a uniform's integer numerator V costs no
// multiplication by 2^-53 (exact, and the same bits as log_positive(V * 2^-53)).
MODELCOLLAPSE_ALWAYS_INLINE double log_scaled(double x, int k) {
    constexpr double kLn2Hi = 6.93147180369123816490e-01;
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    constexpr double Lg1 = 6.666666666666735130e-01;
    constexpr double Lg2 = 3.999999999940941908e-01;
    constexpr double Lg3 = 2.857142874366239149e-01;
    constexpr double Lg4 = 2.222219843214978396e-01;
    constexpr double Lg5 = 1.818357216161805012e-01;
    constexpr double Lg6 = 1.531383769920937332e-01;
    constexpr double Lg7 = 1.479819860511658591e-01;
    // Shift the bits so that the mantissa lands in [sqrt(1/2), sqrt(2)) (0x3fe6a09e... is
    // the high part of sqrt(1/2)); the exponent then comes out of the top 12 bits.
    constexpr std::uint64_t kOff = 0x3ff0000000000000ull - 0x3fe6a09e00000000ull;
    const std::uint64_t top = double_to_bits(x) + kOff;
    const double m = bits_to_double((top & 0x000fffffffffffffull) + 0x3fe6a09e00000000ull);
    // e + 1023 + k as a double without an int -> double conversion: 2^52 + (top >> 52).
    const double e = bits_to_double((top >> 52) | 0x4330000000000000ull) - (4503599627370496.0 + 1023.0 + k);
    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double z = s * s;
    const double w = z * z;
    const double t1 = w * (Lg2 + w * (Lg4 + w * Lg6));
    const double t2 = z * (Lg1 + w * (Lg3 + w * (Lg5 + w * Lg7)));
    const double R = t2 + t1;
    const double hfsq = 0.5 * f * f;
    return e * kLn2Hi - ((hfsq - (s * (hfsq + R) + e * kLn2Lo)) - f);
}
}  // namespace detail

// Natural log of a positive, finite, normal x (fdlibm's e_log.c algorithm, branch-free:
// x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = log1p(f) through s = f / (2 + f) and a
// minimax polynomial in s^2). Error < 1 ulp, like std::log; vectorises with SSE2 (no
// integer <-> double conversion instructions needed).
inline double log_positive(double x) { return detail::log_scaled(x, 0); }

// sin and cos of x for |x| <= 2^19: Cody-Waite
// reduction by pi/2 in three parts (fdlibm's pio2_1, pio2_2, pio2_2t; q * pio2_1 and
// q * pio2_2 are exact), Taylor polynomials (Estrin's scheme) on |r| <= pi/4 (truncation < 1e-17 relative),
// then the quadrant picks and signs the results with bit operations. Error: a couple of
// ulp (checked against std::sin / std::cos), branch-free, vectorises with SSE2.
inline void sincos(double x, double& sin_out, double& cos_out) {
    constexpr double kTwoOverPi = 6.36619772367581382433e-01;
    constexpr double kPio2_1 = 1.57079632673412561417e+00;
    constexpr double kPio2_2 = 6.07710050630396597660e-11;
    constexpr double kPio2_2t = 2.02226624879595063154e-21;
    constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52
    const double t = x * kTwoOverPi + kShifter;
    const double qf = t - kShifter;
    const std::uint64_t q = double_to_bits(t) - double_to_bits(kShifter);  // two's complement
    const double r = ((x - qf * kPio2_1) - qf * kPio2_2) - qf * kPio2_2t;
    const double z = r * r;
    const double z2 = z * z, z4 = z2 * z2;
    // sin r = r - r^3 (1/3! - z/5! + ... ), through r^15 (error < r^17 / 17!); Estrin's
    // scheme in z keeps the dependency chain short.
    const double e0 = 1.0 / 6.0 - z * (1.0 / 120.0);
    const double e1 = 1.0 / 5040.0 - z * (1.0 / 362880.0);
    const double e2 = 1.0 / 39916800.0 - z * (1.0 / 6227020800.0);
    const double ps = (e0 + z2 * e1) + z4 * (e2 + z2 * (1.0 / 1307674368000.0));
    const double sr = r - (r * z) * ps;
    // cos r = 1 - z/2 + z^2 (1/4! - z/6! + ...), through r^16 (error < r^18 / 18!), with
    // fdlibm's compensated final sum.
    const double f0 = 1.0 / 24.0 - z * (1.0 / 720.0);
    const double f1 = 1.0 / 40320.0 - z * (1.0 / 3628800.0);
    const double f2 = 1.0 / 479001600.0 - z * (1.0 / 87178291200.0);
    const double pc = (f0 + z2 * f1) + z4 * (f2 + z2 * (1.0 / 20922789888000.0));
    const double hz = 0.5 * z;
    const double w1 = 1.0 - hz;
    const double cr = w1 + (((1.0 - w1) - hz) + z2 * pc);
    // Quadrant q mod 4: sin x = (sr, cr, -sr, -cr), cos x = (cr, -sr, -cr, sr).
    const std::uint64_t swap = 0 - (q & 1u);  // all ones for odd quadrants
    const std::uint64_t bs = double_to_bits(sr), bc = double_to_bits(cr);
    const std::uint64_t s_bits = (bs & ~swap) | (bc & swap);
    const std::uint64_t c_bits = (bc & ~swap) | (bs & swap);
    sin_out = bits_to_double(s_bits ^ ((q & 2u) << 62));
    cos_out = bits_to_double(c_bits ^ (((q + 1u) & 2u) << 62));
}

}  // namespace fastmath
}  // namespace modelcollapse
