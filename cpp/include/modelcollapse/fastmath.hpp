// Branch-free elementary functions that the compiler can vectorise (std::exp cannot be
// vectorised without -ffast-math). Accuracy: a few ulp, far below every tolerance used
// in the library (the numpy reference agrees to ~1e-15 relative).
#pragma once

#include <cstdint>
#include <cstring>

namespace modelcollapse {
namespace fastmath {

inline double bits_to_double(std::uint64_t b) {
    double d;
    std::memcpy(&d, &b, sizeof d);
    return d;
}
inline std::uint64_t double_to_bits(double d) {
    std::uint64_t b;
    std::memcpy(&b, &d, sizeof b);
    return b;
}

// exp(x) for x <= 0 (the only case log-sum-exp needs); returns 0 below -708.
inline double exp_nonpositive(double x) {
    constexpr double kLog2e = 1.4426950408889634074;
    constexpr double kLn2Hi = 6.93147180369123816490e-01;
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    constexpr double kShifter = 6755399441055744.0;  // 1.5 * 2^52: rounds to an integer
    double xc = x < -708.0 ? -708.0 : x;
    double t = xc * kLog2e + kShifter;
    double kf = t - kShifter;
    std::int64_t k = static_cast<std::int64_t>(double_to_bits(t) - double_to_bits(kShifter));
    double r = (xc - kf * kLn2Hi) - kf * kLn2Lo;  // |r| <= ln2 / 2
    // Taylor series of e^r to degree 13: remainder < 1e-17 on |r| <= 0.347.
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
    p = p * r + 1.0;
    double scale = bits_to_double(static_cast<std::uint64_t>(k + 1023) << 52);
    double y = p * scale;
    return x < -708.0 ? 0.0 : y;
}

}  // namespace fastmath
}  // namespace modelcollapse
