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

// log S_t p(y) and (when score != nullptr) its gradient, for the smoothed empirical law.
//
// With centres z_i = e^{-t} x_i and D_i = |y - z_i|^2, the logits are -D_i / (2 sigma_t^2);
// the largest belongs to the smallest D_i. Only the points with
// (y_0 - z_{i,0})^2 <= D_min + 2 sigma_t^2 kEmpiricalCutoff can carry a weight above
// e^{-kEmpiricalCutoff} times the largest (D_i >= (y_0 - z_{i,0})^2), and they form one
// contiguous range of the centres sorted by coordinate 0: it is found by binary search,
// first with an upper bound on D_min (the nearest centres in coordinate 0), then with the
// exact D_min of that range. Then two unit-stride, vectorised passes over the range:
// squared distances and their minimum, then weights e^{-(D_i - D_min) / (2 sigma_t^2)} <= 1
// and their first moments. Memory O(n) per thread (one buffer), never n x m.
MODELCOLLAPSE_HOT double empirical_eval_point(const SmoothedEmpirical& s, const double* y, double* score,
                                   EmpiricalWorkspace& w) {
    const EmpiricalData& e = *s.data;
    const std::size_t n = e.n, d = e.d;
    const double c = -0.5 / s.s2;
    const double* z0 = s.centers.data();
    double* l = w.logits.data();
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
        if (r < std::numeric_limits<double>::infinity()) {  // false for NaN and inf: keep all
            lo = detail::centers_lower_bound(z0, 0, p, y0 - r);
            hi = detail::centers_upper_bound(z0, p, n, y0 + r);
        }
    }

    // Pass 1: squared distances D_i over the range and their minimum.
    const std::size_t m = hi - lo;
    double* L = l + lo;
    if (d == 1) {
#pragma omp simd
        for (std::size_t i = 0; i < m; ++i) {
            const double d0 = y0 - z0[lo + i];
            L[i] = d0 * d0;
        }
    } else if (d == 2) {
        const double* z1 = s.centers.data() + n;
        const double y1 = y[1];
#pragma omp simd
        for (std::size_t i = 0; i < m; ++i) {
            const double d0 = y0 - z0[lo + i];
            const double d1 = y1 - z1[lo + i];
            L[i] = d0 * d0 + d1 * d1;
        }
    } else {
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

    // Pass 2: weights e^{c (D_i - D)} <= 1 and their first moments.
    double S = 0.0;
    const std::size_t m2 = hi2 - lo2;
    double* W = l + lo2;
    if (!score) {
#pragma omp simd reduction(+ : S)
        for (std::size_t i = 0; i < m2; ++i) S += fastmath::exp_nonpositive(c * (W[i] - D));
    } else if (d == 2) {
        const double* c0 = z0 + lo2;
        const double* c1 = s.centers.data() + n + lo2;
        double A0 = 0.0, A1 = 0.0;
#pragma omp simd reduction(+ : S, A0, A1)
        for (std::size_t i = 0; i < m2; ++i) {
            const double wi = fastmath::exp_nonpositive(c * (W[i] - D));
            S += wi;
            A0 += wi * c0[i];
            A1 += wi * c1[i];
        }
        score[0] = (A0 / S - y[0]) / s.s2;
        score[1] = (A1 / S - y[1]) / s.s2;
    } else {
#pragma omp simd reduction(+ : S)
        for (std::size_t i = 0; i < m2; ++i) {
            const double wi = fastmath::exp_nonpositive(c * (W[i] - D));
            W[i] = wi;
            S += wi;
        }
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
