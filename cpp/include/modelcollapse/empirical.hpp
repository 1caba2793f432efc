// Score of a Gaussian-smoothed training set (conventions section 3):
// S_t of (1/n) sum_i delta_{x_i} = (1/n) sum_i N(e^{-t} x_i, sigma_t^2 I).
// Evaluated point by point with a two-pass log-sum-exp over the n components, so memory
// is O(n + m) (one n-long buffer per thread), never n x m.
#pragma once

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

    static EmpiricalData build(std::size_t n, std::size_t d, const double* x) {
        if (n == 0 || d == 0) throw std::invalid_argument("empirical score needs n >= 1, d >= 1");
        EmpiricalData e;
        e.n = n;
        e.d = d;
        e.coords.resize(n * d);
        for (std::size_t i = 0; i < n; ++i)
            for (std::size_t j = 0; j < d; ++j) e.coords[j * n + i] = x[i * d + j];
        return e;
    }
};

// Time-dependent constants of the smoothed empirical law.
struct SmoothedEmpirical {
    const EmpiricalData* data = nullptr;
    double a = 1.0;   // e^{-t}
    double s2 = 0.0;  // sigma_t^2
    double log_norm = 0.0;
};

inline SmoothedEmpirical smooth(const EmpiricalData& e, double t) {
    if (!(t > 0.0)) throw std::invalid_argument("empirical score needs t > 0");
    SmoothedEmpirical s;
    s.data = &e;
    s.a = std::exp(-t);
    s.s2 = -std::expm1(-2.0 * t);
    s.log_norm = -std::log(static_cast<double>(e.n)) - 0.5 * static_cast<double>(e.d) * (kLog2Pi + std::log(s.s2));
    return s;
}

struct EmpiricalWorkspace {
    std::vector<double> logits, acc;
    EmpiricalWorkspace(std::size_t n, std::size_t d) : logits(n), acc(d) {}
};

inline double empirical_eval_point(const SmoothedEmpirical& s, const double* y, double* score,
                                   EmpiricalWorkspace& w) {
    const EmpiricalData& e = *s.data;
    const std::size_t n = e.n, d = e.d;
    const double a = s.a, c = -0.5 / s.s2;
    double* l = w.logits.data();
    // Pass 1: logits -|y - a x_i|^2 / (2 s2), accumulated one coordinate at a time so that
    // the inner loops are unit-stride and vectorise.
    {
        const double* xj = e.coords.data();
        const double yj = y[0];
        for (std::size_t i = 0; i < n; ++i) {
            double diff = yj - a * xj[i];
            l[i] = diff * diff;
        }
    }
    for (std::size_t j = 1; j < d; ++j) {
        const double* xj = e.coords.data() + j * n;
        const double yj = y[j];
        for (std::size_t i = 0; i < n; ++i) {
            double diff = yj - a * xj[i];
            l[i] += diff * diff;
        }
    }
    // The largest logit belongs to the smallest squared distance.
    double dmin[4] = {l[0], l[0], l[0], l[0]};
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int q = 0; q < 4; ++q) dmin[q] = l[i + q] < dmin[q] ? l[i + q] : dmin[q];
    for (; i < n; ++i) dmin[0] = l[i] < dmin[0] ? l[i] : dmin[0];
    const double D = std::min(std::min(dmin[0], dmin[1]), std::min(dmin[2], dmin[3]));
    const double M = c * D;
    // Pass 2: weights e^{l_i - M} <= 1 and their first moments.
    double S = 0.0;
#pragma omp simd reduction(+ : S)
    for (std::size_t q = 0; q < n; ++q) {
        double wq = fastmath::exp_nonpositive(c * (l[q] - D));
        l[q] = wq;
        S += wq;
    }
    if (score) {
        for (std::size_t j = 0; j < d; ++j) {
            const double* xj = e.coords.data() + j * n;
            double acc = 0.0;
#pragma omp simd reduction(+ : acc)
            for (std::size_t q = 0; q < n; ++q) acc += l[q] * xj[q];
            score[j] = (a * acc / S - y[j]) / s.s2;
        }
    }
    return M + std::log(S) + s.log_norm;
}

}  // namespace modelcollapse
