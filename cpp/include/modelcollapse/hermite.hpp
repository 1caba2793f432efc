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

// The table is the 1-D sequence h_0, h_1, ..., h_D (d = 1, order[m] = m, parent[m] = 0: the
// zero index, alpha with its last coordinate zeroed):
// the case of every 1-D moment sequence, served by hermite_chain_1d.
inline bool is_chain_1d(const HermiteIndexTable& tab) {
    if (tab.d != 1) return false;
    for (std::size_t m = 1; m < tab.parent.size(); ++m)
        if (tab.parent[m] != 0 || tab.dim[m] != 0 ||
            tab.order[m] != static_cast<std::int64_t>(m))
            return false;
    return true;
}

// Fused 1-D kernel for samples [b, e): kHermLanes = 16 samples at a time (four vec4d
// registers: four independent recurrence chains hide the multiply-add latency) run the
// recurrence and add h_m (and h_m^2) to per-lane sums lane[m] (lane2[m]) at once, so the
// Hermite values never go through memory (the generic kernel writes them, then reads them
// back to multiply and sum). lane[m] is one vec4d of partial sums. The caller folds the
// lanes in a fixed order: results depend on the chunk only, not on the thread count.
// Compiled with FMA where the CPU has it (its tests compare with tolerances).
constexpr std::size_t kHermLanes = 16;
MODELCOLLAPSE_HOT_FMA void hermite_chain_1d(const double* x, std::size_t b, std::size_t e, std::size_t D,
                                            const double* sq, const double* isq, vec4d_u* lane, vec4d_u* lane2) {
    constexpr int V = 4;
    auto run = [&](const double* xs, const double* live) {
        // live: 1 for real samples, 0 for the padding of a tail (h_0 = 0 there: all h_m are 0)
        vec4d xv[V], p[V], c[V];
        for (int k = 0; k < V; ++k) {
            xv[k] = MODELCOLLAPSE_LOAD4(xs + 4 * k);
            p[k] = MODELCOLLAPSE_LOAD4(live + 4 * k);
            c[k] = xv[k] * p[k];
        }
        // the V chains' values are added together before they touch memory: one load and one
        // store of lane[m] (lane2[m]) per index and 16 samples
        if (D >= 1) {
            lane[1] += (c[0] + c[2]) + (c[1] + c[3]);
            if (lane2) lane2[1] += (c[0] * c[0] + c[2] * c[2]) + (c[1] * c[1] + c[3] * c[3]);
        }
        for (std::size_t m = 1; m < D; ++m) {
            const double a = sq[m], inv = isq[m + 1];
            for (int k = 0; k < V; ++k) {
                const vec4d nx = (xv[k] * c[k] - a * p[k]) * inv;
                p[k] = c[k];
                c[k] = nx;
            }
            lane[m + 1] += (c[0] + c[2]) + (c[1] + c[3]);
            if (lane2) lane2[m + 1] += (c[0] * c[0] + c[2] * c[2]) + (c[1] * c[1] + c[3] * c[3]);
        }
    };
    static const double ones[kHermLanes] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    std::size_t i = b;
    for (; i + kHermLanes <= e; i += kHermLanes) run(x + i, ones);
    if (i < e) {
        double xs[kHermLanes] = {0.0}, lv[kHermLanes] = {0.0};
        for (std::size_t k = 0; i + k < e; ++k) {
            xs[k] = x[i + k];
            lv[k] = 1.0;
        }
        run(xs, lv);
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

#ifdef MODELCOLLAPSE_VECTOR_EXT
    if (is_chain_1d(tab)) {
        // 2.3x the generic kernel on one core for degree 30 (the measurement).
        auto body1 = [&](std::size_t begin, std::size_t end, const StopToken& stop) {
            const std::size_t c = begin / chunk;
            double* acc = partial.data() + c * M * (want_sq ? 2 : 1);
            double* acc2 = want_sq ? acc + M : nullptr;
            // per-lane sums (4 per index), no alignment assumed (vec4d_u)
            std::vector<double> lane_mem(4 * M, 0.0), lane2_mem(want_sq ? 4 * M : 0, 0.0);
            auto* lane = reinterpret_cast<vec4d_u*>(lane_mem.data());
            auto* lane2 = want_sq ? reinterpret_cast<vec4d_u*>(lane2_mem.data()) : nullptr;
            // pieces of 4096 samples between looks at the stop flag (Ctrl-C)
            for (std::size_t b0 = begin; b0 < end; b0 += 4096) {
                if (stop.stop_requested()) return;
                hermite_chain_1d(x, b0, std::min(end, b0 + 4096), D, sq.data(), isq.data(), lane, lane2);
            }
            acc[0] += static_cast<double>(end - begin);
            if (acc2) acc2[0] += static_cast<double>(end - begin);
            for (std::size_t m = 1; m < M; ++m) {
                const vec4d s = lane[m];
                acc[m] += (s[0] + s[2]) + (s[1] + s[3]);
                if (acc2) {
                    const vec4d s2 = lane2[m];
                    acc2[m] += (s2[0] + s2[2]) + (s2[1] + s2[3]);
                }
            }
        };
        parallel_for(n, chunk, threads, body1, poll);
    } else
#endif
    {
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
    }
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
