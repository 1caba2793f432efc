// Score of a Gaussian-smoothed training set (conventions section 3):
// S_t of (1/n) sum_i delta_{x_i} = (1/n) sum_i N(e^{-t} x_i, sigma_t^2 I).
// Evaluated point by point with a two-pass log-sum-exp over the components that can matter
// (found by binary search on centres sorted by coordinate 0, see empirical_eval_point), so
// memory is O(n + m) (one n-long buffer per thread), never n x m.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <vector>

#include "fastmath.hpp"
#include "mixture.hpp"

namespace modelcollapse {

constexpr double kLog2E = 1.4426950408889634074;
constexpr double kLn2 = 0.69314718055994530942;

struct EmpiricalData {
    std::size_t n = 0, d = 0;
    std::vector<double> coords;  // structure of arrays: coordinate j of point i at j * n + i
    // The same points sorted by their first coordinate (structure of arrays, coordinate j
    // of sorted point i at j * n + i): the kernel finds the points that can matter for a
    // query by binary search on coordinate 0 (see empirical_eval_point).
    std::vector<double> sorted;

    static EmpiricalData build(std::size_t n, std::size_t d, const double* x) {
        if (n == 0 || d == 0) throw std::invalid_argument("empirical score needs n >= 1, d >= 1");
        EmpiricalData e;
        e.n = n;
        e.d = d;
        e.coords.resize(n * d);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < d; ++j) e.coords[j * n + i] = x[i * d + j];
        std::vector<std::size_t> order(n);
        for (std::size_t i = 0; i < n; ++i) order[i] = i;
        // NaN sorts last (a strict weak order even then; the Python layer rejects NaN).
        std::stable_sort(order.begin(), order.end(), [&](std::size_t p, std::size_t q) {
            const double u = x[p * d], v = x[q * d];
            return u < v || (v != v && u == u);
        });
        e.sorted.resize(n * d);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < d; ++j) e.sorted[j * n + i] = x[order[i] * d + j];
        return e;
    }
};

// Time-dependent constants of the smoothed empirical law.
struct SmoothedEmpirical {
    const EmpiricalData* data = nullptr;
    double a = 1.0;   // e^{-t}
    double s2 = 0.0;  // sigma_t^2
    double log_norm = 0.0;
    std::vector<double> centers;  // a * sorted (structure of arrays, sorted by coordinate 0)
    // d = 2 only: the centres in units where squared distances are log2 weights,
    // g * centers with g = sqrt(log2 e / (2 sigma_t^2)) (rounded once from g a * sorted).
    double g = 0.0;
    std::vector<double> scaled;
};

inline SmoothedEmpirical smooth(const EmpiricalData& e, double t) {
    if (!(t > 0.0)) throw std::invalid_argument("empirical score needs t > 0");
    SmoothedEmpirical s;
    s.data = &e;
    s.a = std::exp(-t);
    s.s2 = -std::expm1(-2.0 * t);
    s.log_norm = -std::log(static_cast<double>(e.n)) - 0.5 * static_cast<double>(e.d) * (kLog2Pi + std::log(s.s2));
    s.centers.resize(e.sorted.size());
    for (std::size_t i = 0; i < e.sorted.size(); ++i) s.centers[i] = s.a * e.sorted[i];
    if (e.d == 2) {
        s.g = std::sqrt(kLog2E / (2.0 * s.s2));
        const double ga = s.g * s.a;
        s.scaled.resize(e.sorted.size());
        for (std::size_t i = 0; i < e.sorted.size(); ++i) s.scaled[i] = ga * e.sorted[i];
    }
    return s;
}

struct EmpiricalWorkspace {
    std::vector<double> logits, acc;
    EmpiricalWorkspace(std::size_t n, std::size_t d) : logits(n), acc(d) {}
};

// Pruning threshold: terms whose logit is below (largest logit - kEmpiricalCutoff) are
// skipped. Each skipped weight is < e^{-50} times the largest one, so the normalising sum
// and the weighted sum of the centres change by less than n e^{-50} (< 2e-18 for
// n = 1e4; < 2e-13 even for n = 1e9) relative: far below the 1e-12 agreement with the
// straightforward formula that the tests ask for.
constexpr double kEmpiricalCutoff = 50.0;

// Fused d = 2 pass: E_ref from the 2 kEmpiricalProbe centres nearest in coordinate 0; the
// pass is redone when weights reach 2^kEmpiricalMaxShift (overflow of n of them is then
// excluded: exp2_weight is valid up to 2^1000).
constexpr std::size_t kEmpiricalProbe = 8;
constexpr double kEmpiricalMaxShift = 900.0;

namespace detail {

// First index in [lo, hi) whose sorted centre (coordinate 0) is >= v.
inline std::size_t centers_lower_bound(const double* c0, std::size_t lo, std::size_t hi, double v) {
    while (lo < hi) {
        std::size_t mid = lo + (hi - lo) / 2;
        if (c0[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}
// First index in [lo, hi) whose sorted centre (coordinate 0) is > v.
inline std::size_t centers_upper_bound(const double* c0, std::size_t lo, std::size_t hi, double v) {
    while (lo < hi) {
        std::size_t mid = lo + (hi - lo) / 2;
        if (c0[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

}  // namespace detail

namespace detail {

// d = 2: log S_t p(y) and (score != nullptr) its gradient by one fused pass (see
// empirical_eval_point). Works in scaled units q = g y, u_i = g z_i where
// E_i = |q - u_i|^2 = log2(e) D_i / (2 sigma_t^2), so weights are 2^{E_ref - E_i}.
// Returns false (outputs untouched) where E_ref is not finite (|y| ~ 1e150 and beyond).
MODELCOLLAPSE_HOT_FMA bool empirical_eval_point_2d(const SmoothedEmpirical& s, const double* y, double* score,
                                                    double& logp) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    const std::size_t n = s.data->n;
    const double g = s.g;
    const double* u0 = s.scaled.data();
    const double* u1 = u0 + n;
    const double q0 = g * y[0], q1 = g * y[1];
    // Slack in scaled units: E_i > E_min + slack means a weight below e^{-kEmpiricalCutoff}.
    const double slack = kEmpiricalCutoff * kLog2E;
    // Reference E_ref: the smallest E_i among the 2 kEmpiricalProbe centres nearest in
    // coordinate 0 (an upper bound on min_i E_i, usually close to it).
    std::size_t p = centers_lower_bound(u0, 0, n, q0);
    double Eref = inf;
    for (std::size_t i = p > kEmpiricalProbe ? p - kEmpiricalProbe : 0, stop = std::min(n, p + kEmpiricalProbe);
         i < stop; ++i) {
        const double e0 = q0 - u0[i], e1 = q1 - u1[i];
        const double Ei = e0 * e0 + e1 * e1;
        Eref = Ei < Eref ? Ei : Eref;
    }
    if (!(Eref < inf)) return false;
    double r = std::sqrt(Eref + slack);
    std::size_t lo = centers_lower_bound(u0, 0, p, q0 - r);
    std::size_t hi = centers_upper_bound(u0, p, n, q0 + r);
    for (int attempt = 0;; ++attempt) {
        // Exponents E_ref - E_i are kept >= -kCap (exp2_weight's range): such weights are
        // < 2^-1010 next to a weight >= 1 and vanish from the sums either way.
        constexpr double kCap = 1010.0;
        const double lim = Eref + kCap;
        double S = 0.0, A0 = 0.0, A1 = 0.0, Emin = inf;
        const double* c0 = u0 + lo;
        const double* c1 = u1 + lo;
        const std::size_t m = hi - lo;
        if (score) {
#pragma omp simd reduction(+ : S, A0, A1) reduction(min : Emin)
            for (std::size_t i = 0; i < m; ++i) {
                const double e0 = q0 - c0[i];
                const double e1 = q1 - c1[i];
                const double Ei = e0 * e0 + e1 * e1;
                Emin = Ei < Emin ? Ei : Emin;
                const double wi = fastmath::exp2_weight(Eref - (Ei < lim ? Ei : lim));
                S += wi;
                A0 += wi * c0[i];
                A1 += wi * c1[i];
            }
        } else {
#pragma omp simd reduction(+ : S) reduction(min : Emin)
            for (std::size_t i = 0; i < m; ++i) {
                const double e0 = q0 - c0[i];
                const double e1 = q1 - c1[i];
                const double Ei = e0 * e0 + e1 * e1;
                Emin = Ei < Emin ? Ei : Emin;
                S += fastmath::exp2_weight(Eref - (Ei < lim ? Ei : lim));
            }
        }
        // Weights reach 2^{E_ref - E_min}; past 2^kEmpiricalMaxShift they may have overflowed
        // (rare: far queries, tiny t): again with E_ref = E_min over its narrower range.
        if (attempt == 0 && !(Eref - Emin <= kEmpiricalMaxShift)) {
            Eref = Emin;
            r = std::sqrt(Eref + slack);
            const std::size_t lo2 = centers_lower_bound(u0, lo, hi, q0 - r);
            hi = centers_upper_bound(u0, lo2, hi, q0 + r);
            lo = lo2;
            continue;
        }
        if (score) {
            const double gS = g * S;
            score[0] = (A0 / gS - y[0]) / s.s2;
            score[1] = (A1 / gS - y[1]) / s.s2;
        }
        logp = std::log(S) - Eref * kLn2 + s.log_norm;
        return true;
    }
}

}  // namespace detail

// log S_t p(y) and (when score != nullptr) its gradient, for the smoothed empirical law.
//
// With centres z_i = e^{-t} x_i and D_i = |y - z_i|^2, the logits are -D_i / (2 sigma_t^2);
// the largest belongs to the smallest D_i. Only the points with
// (y_0 - z_{i,0})^2 <= D_ref + 2 sigma_t^2 kEmpiricalCutoff, for any D_ref >= min_i D_i, can
// carry a weight above e^{-kEmpiricalCutoff} times the largest (D_i >= (y_0 - z_{i,0})^2),
// and they form one contiguous range of the centres sorted by coordinate 0, found by binary
// search.
//
// d = 2: one fused, vectorised pass. D_ref is the smallest D_i among the 2 kEmpiricalProbe
// centres nearest in coordinate 0 (an upper bound on min_i D_i, usually close to it); the
// pass sums the weights e^{-(D_i - D_ref) / (2 sigma_t^2)} (which may exceed 1) and their first
// moments while tracking min_i D_i, and is redone with D_ref = min_i D_i if the weights could
// have overflowed (see detail::empirical_eval_point_2d).
// Other d: D_ref from the two nearest centres in coordinate 0, then two passes: squared
// distances into the workspace buffer and their minimum, then weights <= 1 and moments.
// Memory O(n) per thread, never n x m. Non-finite y gives NaN.
MODELCOLLAPSE_HOT_FMA double empirical_eval_point(const SmoothedEmpirical& s, const double* y, double* score,
                                                   EmpiricalWorkspace& w) {
    const EmpiricalData& e = *s.data;
    const std::size_t n = e.n, d = e.d;
    bool finite = true;
    for (std::size_t j = 0; j < d; ++j) finite = finite && std::isfinite(y[j]);
    if (!finite) {
        const double nan = std::numeric_limits<double>::quiet_NaN();
        if (score)
            for (std::size_t j = 0; j < d; ++j) score[j] = nan;
        return nan;
    }
    if (d == 2) {
        double logp;
        if (detail::empirical_eval_point_2d(s, y, score, logp)) return logp;
    }

    const double c = -0.5 / s.s2;
    const double* z0 = s.centers.data();
    const double y0 = y[0];
    auto dist2 = [&](std::size_t i) {
        double acc = 0.0;
        for (std::size_t j = 0; j < d; ++j) {
            double diff = y[j] - s.centers[j * n + i];
            acc += diff * diff;
        }
        return acc;
    };
    const double slack = 2.0 * s.s2 * kEmpiricalCutoff;

    // Range [lo, hi) of centres that can matter, from an upper bound on D_min.
    std::size_t lo = 0, hi = n;
    {
        const std::size_t p = detail::centers_lower_bound(z0, 0, n, y0);
        double bound = std::numeric_limits<double>::infinity();
        if (p < n) bound = std::min(bound, dist2(p));
        if (p > 0) bound = std::min(bound, dist2(p - 1));
        const double r = std::sqrt(bound + slack);
        if (r < std::numeric_limits<double>::infinity()) {  // false for inf: keep all
            lo = detail::centers_lower_bound(z0, 0, p, y0 - r);
            hi = detail::centers_upper_bound(z0, p, n, y0 + r);
        }
    }

    // Pass 1: squared distances D_i over the range and their minimum.
    double* l = w.logits.data();
    const std::size_t m = hi - lo;
    double* L = l + lo;
#pragma omp simd
    for (std::size_t i = 0; i < m; ++i) {
        const double d0 = y0 - z0[lo + i];
        L[i] = d0 * d0;
    }
    for (std::size_t j = 1; j < d; ++j) {
        const double* zj = s.centers.data() + j * n + lo;
        const double yj = y[j];
#pragma omp simd
        for (std::size_t i = 0; i < m; ++i) {
            const double diff = yj - zj[i];
            L[i] += diff * diff;
        }
    }
    double D = std::numeric_limits<double>::infinity();
#pragma omp simd reduction(min : D)
    for (std::size_t i = 0; i < m; ++i) D = L[i] < D ? L[i] : D;

    // Narrow the range with the exact minimum.
    std::size_t lo2 = lo, hi2 = hi;
    {
        const double r = std::sqrt(D + slack);
        if (r < std::numeric_limits<double>::infinity()) {
            lo2 = detail::centers_lower_bound(z0, lo, hi, y0 - r);
            hi2 = detail::centers_upper_bound(z0, lo2, hi, y0 + r);
        }
    }
    const double M = c * D;

    // Pass 2: weights e^{c (D_i - D)} <= 1 (exponents kept >= -700 for exp2_weight's range:
    // smaller weights vanish from the sums either way) and their first moments.
    const double c2 = c * kLog2E;
    const double cap = 1400.0 * s.s2;  // c2 * cap = -700 log2 e
    double S = 0.0;
    const std::size_t m2 = hi2 - lo2;
    double* W = l + lo2;
#pragma omp simd reduction(+ : S)
    for (std::size_t i = 0; i < m2; ++i) {
        const double u = W[i] - D;
        const double wi = fastmath::exp2_weight(c2 * (u < cap ? u : cap));
        W[i] = wi;
        S += wi;
    }
    if (score) {
        for (std::size_t j = 0; j < d; ++j) {
            const double* zj = s.centers.data() + j * n + lo2;
            double A = 0.0;
#pragma omp simd reduction(+ : A)
            for (std::size_t i = 0; i < m2; ++i) A += W[i] * zj[i];
            score[j] = (A / S - y[j]) / s.s2;
        }
    }
    return M + std::log(S) + s.log_norm;
}

}  // namespace modelcollapse
