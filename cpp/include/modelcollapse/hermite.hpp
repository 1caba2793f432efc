// Hermite moments from samples (pure C++, no Python).
//
// For points x_1..x_n in R^d and a list of multi-indices alpha (graded: every alpha is
// preceded by its "parent" alpha - e_j, where j is alpha's last non-zero coordinate), the
// kernel returns the sample means of the orthonormal Hermite products
//   h_alpha(x) = prod_i He_{alpha_i}(x_i) / sqrt(alpha_i!),
// using the normalised three-term recurrence
//   h_0 = 1, h_1 = x, h_{m+1} = (x h_m - sqrt(m) h_{m-1}) / sqrt(m + 1),
// which neither overflows nor loses precision at high degrees (it is the recurrence of
// the orthonormal polynomials). Optionally the sample means of h_alpha^2 as well, for
// standard errors.
//
// Determinism: the samples are cut into chunks whose size depends only on n (never on the
// number of threads); each chunk writes its partial sums to its own slot and the slots are
// added in chunk order at the end, so results are bit-identical for any thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "fastmath.hpp"
#include "parallel.hpp"

namespace modelcollapse {

struct HermiteIndexTable {
    std::size_t d = 0;
    std::size_t degree = 0;           // maximal coordinate degree needed
    std::vector<std::int64_t> parent;  // parent[m] < m (parent[0] == -1: the zero index)
    std::vector<std::int64_t> dim;     // coordinate multiplied in to go from parent to m
    std::vector<std::int64_t> order;   // alpha_dim (the degree of that coordinate)
};

// Chunk size: depends on n only, so the reduction order is the same for any thread count.
inline std::size_t hermite_chunk(std::size_t n, std::size_t M) {
    std::size_t target = (n + 63) / 64;                 // at most ~64 chunks
    std::size_t floor_ = M > 4096 ? 256 : 4096;
    return std::max<std::size_t>(std::max(target, floor_), 1);
}

// One block of nb <= B samples: normalised Hermite values per coordinate, tensor products
// along the index table, and their sums into acc (and squares into acc2). Compiled twice
// (AVX2 and baseline) where MODELCOLLAPSE_HOT allows.
MODELCOLLAPSE_HOT void hermite_block(const double* x, std::size_t b0, std::size_t nb, std::size_t B, std::size_t d,
                                     std::size_t D, std::size_t M, const HermiteIndexTable& tab, const double* sq,
                                     const double* isq, double* h, double* val, double* xcol, double* acc,
                                     double* acc2) {
    for (std::size_t i = 0; i < d; ++i) {
        double* hi = h + i * (D + 1) * B;
        for (std::size_t s = 0; s < nb; ++s) {
            const double xv = x[(b0 + s) * d + i];
            xcol[s] = xv;  // contiguous copy of coordinate i for the recurrence
            hi[s] = 1.0;
            if (D >= 1) hi[B + s] = xv;
        }
        for (std::size_t m = 1; m < D; ++m) {
            const double* hm = hi + m * B;
            const double* hm1 = hi + (m - 1) * B;
            double* hn = hi + (m + 1) * B;
            const double a = sq[m], inv = isq[m + 1];
            const double* xs = xcol;
#pragma omp simd
            for (std::size_t s = 0; s < nb; ++s) {
                hn[s] = (xs[s] * hm[s] - a * hm1[s]) * inv;
            }
        }
    }
    for (std::size_t s = 0; s < nb; ++s) val[s] = 1.0;
    double sum0 = static_cast<double>(nb);
    acc[0] += sum0;
    if (acc2) acc2[0] += sum0;
    for (std::size_t m = 1; m < M; ++m) {
        const double* pv = val + static_cast<std::size_t>(tab.parent[m]) * B;
        const double* hv = h + (static_cast<std::size_t>(tab.dim[m]) * (D + 1) +
                                       static_cast<std::size_t>(tab.order[m])) * B;
        double* v = val + m * B;
        double s1 = 0.0, s2 = 0.0;
        // omp simd: vector partial sums (a fixed order for a given build, so results
        // stay identical for any thread count) instead of one serial add chain.
        if (acc2) {
#pragma omp simd reduction(+ : s1, s2)
            for (std::size_t s = 0; s < nb; ++s) {
                const double w = pv[s] * hv[s];
                v[s] = w;
                s1 += w;
                s2 += w * w;
            }
            acc2[m] += s2;
        } else {
#pragma omp simd reduction(+ : s1)
            for (std::size_t s = 0; s < nb; ++s) {
                const double w = pv[s] * hv[s];
                v[s] = w;
                s1 += w;
            }
        }
        acc[m] += s1;
    }
}

// out_mean[M], out_sq[M] (optional, may be nullptr). x is row-major (n, d).
inline void hermite_moments(const double* x, std::size_t n, const HermiteIndexTable& tab, double* out_mean,
                            double* out_sq, int threads, const PollFn& poll = PollFn()) {
    const std::size_t d = tab.d;
    const std::size_t D = tab.degree;
    const std::size_t M = tab.parent.size();
    if (M == 0) return;
    if (n == 0) throw std::invalid_argument("hermite_moments needs at least one sample");
    std::vector<double> sq(D + 2), isq(D + 2);
    for (std::size_t m = 0; m < D + 2; ++m) {
        sq[m] = std::sqrt(static_cast<double>(m));
        isq[m] = m == 0 ? 0.0 : 1.0 / sq[m];
    }
    const std::size_t chunk = hermite_chunk(n, M);
    const std::size_t n_chunks = (n + chunk - 1) / chunk;
    const bool want_sq = out_sq != nullptr;
    std::vector<double> partial(n_chunks * M * (want_sq ? 2 : 1), 0.0);
    // Block of B samples processed together: val is (M, B), h is (d, D+1, B).
    const std::size_t B = std::max<std::size_t>(1, std::min<std::size_t>(64, 65536 / std::max<std::size_t>(M, 1)));

    auto body = [&](std::size_t begin, std::size_t end, const StopToken& stop) {
        const std::size_t c = begin / chunk;
        double* acc = partial.data() + c * M * (want_sq ? 2 : 1);
        double* acc2 = want_sq ? acc + M : nullptr;
        std::vector<double> h(d * (D + 1) * B), val(M * B), xcol(B);
        for (std::size_t b0 = begin; b0 < end; b0 += B) {
            if (stop.stop_requested()) return;
            hermite_block(x, b0, std::min(B, end - b0), B, d, D, M, tab, sq.data(), isq.data(), h.data(), val.data(),
                          xcol.data(), acc, acc2);
        }
    };
    parallel_for(n, chunk, threads, body, poll);
    const std::size_t stride = M * (want_sq ? 2 : 1);
    for (std::size_t m = 0; m < M; ++m) {
        double s1 = 0.0, s2 = 0.0;
        for (std::size_t c = 0; c < n_chunks; ++c) {
            s1 += partial[c * stride + m];
            if (want_sq) s2 += partial[c * stride + M + m];
        }
        out_mean[m] = s1 / static_cast<double>(n);
        if (want_sq) out_sq[m] = s2 / static_cast<double>(n);
    }
}

}  // namespace modelcollapse
