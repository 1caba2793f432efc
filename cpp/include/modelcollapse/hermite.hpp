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
#include <functional>
#include <map>
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

// Scaled monic recurrence of the fused kernels. The monic He_{k+1} = x He_k - k He_{k-1}
// costs a multiply and one multiply-add a step, whose latency (one FMA) is the whole chain
// (the orthonormal form adds a multiply by 1/sqrt(k + 1) to every step and to the chain). Its
// values grow like sqrt(k!), so the kernels carry g_k = He_k 2^{-E_k}: at each step k in
// `cut` both g_k and g_{k-1} are multiplied by shrink = 2^{-s} (exact), which keeps the scale
// factor fac[k] = 2^{E_k} / sqrt(k!) within [2^{-T}, 2) and the g's within 2^T of the h's.
// Sums of g_k are multiplied by fac[k] (products of g's by the product of their fac's) after the
// chunks are added, so h_k = g_k fac[k] is never formed per sample.
struct HermiteScaled {
    std::vector<double> mval;          // mval[k] = k, the coefficient of step k -> k + 1
    std::vector<double> fac;           // fac[k] = 2^{E_k} / sqrt(k!)
    std::vector<std::size_t> cut;      // increasing, in [2, D]
    std::vector<double> shrink;        // powers of two, one per cut
};

inline HermiteScaled hermite_scaled(std::size_t D, int T) {
    HermiteScaled s;
    s.mval.resize(D + 1);
    s.fac.assign(D + 1, 1.0);
    double F = 1.0;
    const double lo = std::ldexp(1.0, -T);
    for (std::size_t k = 1; k <= D; ++k) {
        s.mval[k] = static_cast<double>(k);
        F /= std::sqrt(static_cast<double>(k));
        if (F < lo) {
            const int e = -std::ilogb(F);  // F 2^e in [1, 2)
            s.cut.push_back(k);
            s.shrink.push_back(std::ldexp(1.0, -e));
            F = std::ldexp(F, e);
        }
        s.fac[k] = F;
    }
    return s;
}

#ifdef MODELCOLLAPSE_VECTOR_EXT
// Lambdas inside the hot kernels are forced inline: one left out of line is compiled for the
// baseline, not for the kernel's vector clone (the LTO build did that to the recurrence's
// steps, 5x slower).
#if defined(__GNUC__)
#define MODELCOLLAPSE_LAMBDA_INLINE __attribute__((always_inline))
#else
#define MODELCOLLAPSE_LAMBDA_INLINE
#endif

// kHermLanes = 16 samples at a time: four vec4d registers, four independent recurrence chains
// (each step's FMA latency, 4 cycles, is covered by the 8 multiplies and FMAs of the four).
constexpr std::size_t kHermLanes = 16;

// g_0..g_D of 16 samples (xv: 4 vectors; live: 1 for real samples, 0 for a tail's padding,
// where every g_k is then 0), handing each g_k (four vectors) to emit(k, c) as soon as it is
// made: the fused kernels sum or store it there, so the recurrence never waits on memory.
template <class Emit>
MODELCOLLAPSE_ALWAYS_INLINE void hermite_scaled_run(const vec4d* xv, const vec4d* live, std::size_t D,
                                                    const HermiteScaled& sc, Emit&& emit) {
    constexpr int V = 4;
    vec4d p[V], c[V];
    for (int k = 0; k < V; ++k) {
        p[k] = live[k];
        c[k] = xv[k] * live[k];
    }
    emit(std::size_t{0}, p);
    if (D == 0) return;
    emit(std::size_t{1}, c);
    const double* mval = sc.mval.data();
    // g_k into dst from g_{k-1} (src) and g_{k-2} (dst): x src first, which GCC then fuses
    // into the FMA (x src - t), so the chain through src is one FMA a step; t is off the chain
    auto into = [&](vec4d* dst, const vec4d* src, std::size_t k) MODELCOLLAPSE_LAMBDA_INLINE {
        const double a = mval[k - 1];
        for (int v = 0; v < V; ++v) {
            const vec4d u = xv[v] * src[v];
            const vec4d t = a * dst[v];
            dst[v] = u - t;
        }
    };
    // g_k .. g_stop, two steps at a time with p and c swapping roles (no register moves),
    // emitting all but g_stop, which is left in c (g_{stop-1} in p) and k at stop
    auto run_to = [&](std::size_t& k, std::size_t stop) MODELCOLLAPSE_LAMBDA_INLINE {
        for (; k + 1 < stop; k += 2) {
            into(p, c, k);
            emit(k, p);
            into(c, p, k + 1);
            emit(k + 1, c);
        }
        if (k + 1 == stop) {
            into(p, c, k);
            emit(k, p);
            into(c, p, k + 1);
        } else {  // k == stop: one step, c moved to p
            vec4d n[V];
            for (int v = 0; v < V; ++v) n[v] = p[v];
            into(n, c, k);
            for (int v = 0; v < V; ++v) {
                p[v] = c[v];
                c[v] = n[v];
            }
        }
        k = stop;
    };
    // the tables in locals: the may_alias stores of the sums would make GCC reload them
    const std::size_t* cut = sc.cut.data();
    const double* shrink = sc.shrink.data();
    const std::size_t n_cut = sc.cut.size();
    std::size_t k = 2;
    for (std::size_t q = 0; q < n_cut; ++q) {
        run_to(k, cut[q]);
        const double r = shrink[q];
        for (int v = 0; v < V; ++v) {
            c[v] *= r;
            p[v] *= r;
        }
        emit(k, c);
        ++k;
    }
    if (k <= D) {
        run_to(k, D);
        emit(k, c);
    }
}

// Loads 16 samples of coordinate i (row-major x with d columns, rows [i0, i0 + nb), nb <= 16)
// into xv, padding with zeros (live 0) past nb. A full block is built in registers: scalars
// stored to an array and read back as vectors stall (a store cannot forward into a wider load),
// which took most of the recurrences' time at d = 2.
MODELCOLLAPSE_ALWAYS_INLINE void hermite_load16(const double* x, std::size_t i0, std::size_t nb, std::size_t d,
                                                std::size_t i, vec4d* xv, vec4d* live) {
    if (nb == kHermLanes) {
        const double* r = x + i0 * d + i;
        for (int v = 0; v < 4; ++v) {
            const std::size_t s = 4 * static_cast<std::size_t>(v);
            xv[v] = vec4d{r[s * d], r[(s + 1) * d], r[(s + 2) * d], r[(s + 3) * d]};
            live[v] = vec4d{1.0, 1.0, 1.0, 1.0};
        }
        return;
    }
    alignas(32) double xs[kHermLanes], lv[kHermLanes];
    for (std::size_t s = 0; s < kHermLanes; ++s) {
        const bool in = s < nb;
        xs[s] = in ? x[(i0 + s) * d + i] : 0.0;
        lv[s] = in ? 1.0 : 0.0;
    }
    for (int v = 0; v < 4; ++v) {
        xv[v] = MODELCOLLAPSE_LOAD4(xs + 4 * v);
        live[v] = MODELCOLLAPSE_LOAD4(lv + 4 * v);
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

// Fused 1-D kernel for samples [b, e): 16 samples at a time run the scaled recurrence and add
// g_k (and g_k^2) to per-lane sums lane[k] (lane2[k]) at once, so the values never go through
// memory. lane[k] is one vec4d of partial sums; the four chains' values are added together
// first: one load and one store of lane[k] per index and 16 samples. The caller folds the
// lanes in a fixed order: results depend on the chunk only, not on the thread count.
// Compiled with FMA where the CPU has it (its tests compare with tolerances).
MODELCOLLAPSE_HOT_FMA void hermite_chain_1d(const double* x, std::size_t b, std::size_t e, std::size_t D,
                                            const HermiteScaled& sc, vec4d_u* lane, vec4d_u* lane2) {
    auto emit = [&](std::size_t k, const vec4d* c) MODELCOLLAPSE_LAMBDA_INLINE {
        lane[k] += (c[0] + c[2]) + (c[1] + c[3]);
        if (lane2) lane2[k] += (c[0] * c[0] + c[2] * c[2]) + (c[1] * c[1] + c[3] * c[3]);
    };
    vec4d xv[4], live[4];
    for (std::size_t i = b; i < e; i += kHermLanes) {
        const std::size_t nb = std::min(kHermLanes, e - i);
        if (nb == kHermLanes) {
            for (int v = 0; v < 4; ++v) {
                xv[v] = MODELCOLLAPSE_LOAD4(x + i + 4 * v);
                live[v] = xv[v] * 0.0 + 1.0;
            }
        } else {
            hermite_load16(x, i, nb, 1, 0, xv, live);
        }
        hermite_scaled_run(xv, live, D, sc, emit);
    }
}

// Plan of the fused d-D kernel. Every moment m is a product of one orthonormal Hermite value
// per coordinate, h_alpha = P_beta h_{d-1, j}: a prefix beta (alpha's coordinates 0..d-2) and
// the last coordinate j. Per block of kHermBlock samples each coordinate's values and the
// prefixes' products P_beta (a table of their own, each a parent prefix times one coordinate's
// value, as the index table builds moments) are written to rows of a buffer; then the sums
// sum_s P_beta(s) g_{d-1, j}(s) are a small matrix product (prefixes x last-coordinate degrees),
// computed in register tiles: no (moments x samples) buffer, no sum loaded or stored per
// sample. Slots number the moments prefix by prefix; slot_of[m] maps back.
struct HermiteFusedPlan {
    std::vector<std::int64_t> pparent, pdim, porder;  // prefix p > 0: P_p = P_{pparent} g[pdim][porder]
    std::vector<std::size_t> run_begin;               // slots of prefix p: [run_begin[p], run_begin[p + 1])
    std::vector<std::int64_t> run_j;                  // the last coordinate of each slot
    std::vector<std::size_t> slot_of;                 // slot of moment m
    std::vector<double> post;                         // per moment: prod_i fac[alpha_i]
};

// Largest index table the fused d-D kernel takes: its accumulators (32 bytes a moment, two
// with squares) stay within a core's L2 (512 KiB on Zen 3); beyond, the generic kernel.
constexpr std::size_t kHermFusedMaxMoments = 8192;

// Builds the plan, or returns false where the fused kernel does not apply: a table beyond
// kHermFusedMaxMoments, one whose products are not one value per coordinate (a coordinate
// met twice along a parent chain), or one with more than half as many prefixes as moments.
inline bool hermite_fused_plan(const HermiteIndexTable& tab, const HermiteScaled& sc, HermiteFusedPlan& plan) {
    const std::size_t d = tab.d, M = tab.parent.size();
    if (d < 1 || M > kHermFusedMaxMoments) return false;
    std::vector<std::int64_t> alpha(M * d, 0);
    for (std::size_t m = 1; m < M; ++m) {
        const std::size_t par = static_cast<std::size_t>(tab.parent[m]), j = static_cast<std::size_t>(tab.dim[m]);
        if (alpha[par * d + j] != 0) return false;
        std::copy(alpha.begin() + par * d, alpha.begin() + (par + 1) * d, alpha.begin() + m * d);
        alpha[m * d + j] = tab.order[m];
    }
    // prefixes (coordinates 0..d-2), each after its parent (last non-zero coordinate zeroed)
    std::map<std::vector<std::int64_t>, std::size_t> ids;
    std::vector<std::vector<std::int64_t>> keys;
    plan.pparent.clear();
    plan.pdim.clear();
    plan.porder.clear();
    std::function<std::size_t(const std::vector<std::int64_t>&)> id_of = [&](const std::vector<std::int64_t>& beta) {
        auto it = ids.find(beta);
        if (it != ids.end()) return it->second;
        std::int64_t pd = -1;
        for (std::size_t i = 0; i < beta.size(); ++i)
            if (beta[i] != 0) pd = static_cast<std::int64_t>(i);
        std::int64_t par = -1;
        if (pd >= 0) {
            std::vector<std::int64_t> up = beta;
            up[static_cast<std::size_t>(pd)] = 0;
            par = static_cast<std::int64_t>(id_of(up));
        }
        const std::size_t id = keys.size();
        ids.emplace(beta, id);
        keys.push_back(beta);
        plan.pparent.push_back(par);
        plan.pdim.push_back(pd);
        plan.porder.push_back(pd >= 0 ? beta[static_cast<std::size_t>(pd)] : 0);
        return id;
    };
    id_of(std::vector<std::int64_t>(d - 1, 0));  // the empty prefix is prefix 0
    std::vector<std::size_t> pre(M);
    for (std::size_t m = 0; m < M; ++m)
        pre[m] = id_of(std::vector<std::int64_t>(alpha.begin() + m * d, alpha.begin() + m * d + d - 1));
    const std::size_t P = keys.size();
    // the fused kernel pays per prefix (its product, its four vectors loaded) what it saves per
    // moment: with as many prefixes as half the moments it is no faster (d = 10, degree 2: 55
    // prefixes for 66 moments, 0.88 against 0.79 ns a sample-moment, bench/hermite_kernel.cpp)
    if (2 * P > M) return false;
    // slots: prefix by prefix, by j within a prefix (then by m: a stable order)
    std::vector<std::size_t> order(M);
    for (std::size_t m = 0; m < M; ++m) order[m] = m;
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (pre[a] != pre[b]) return pre[a] < pre[b];
        return alpha[a * d + d - 1] < alpha[b * d + d - 1];
    });
    plan.run_begin.assign(P + 1, 0);
    plan.run_j.resize(M);
    plan.slot_of.resize(M);
    for (std::size_t s = 0; s < M; ++s) {
        const std::size_t m = order[s];
        plan.run_j[s] = alpha[m * d + d - 1];
        plan.slot_of[m] = s;
        ++plan.run_begin[pre[m] + 1];
    }
    for (std::size_t p = 0; p < P; ++p) plan.run_begin[p + 1] += plan.run_begin[p];
    plan.post.assign(M, 1.0);
    for (std::size_t m = 0; m < M; ++m)
        for (std::size_t i = 0; i < d; ++i) plan.post[m] *= sc.fac[static_cast<std::size_t>(alpha[m * d + i])];
    return true;
}

// Samples per block of the fused d-D kernel: each coordinate's g_0..g_D and each prefix's
// product are written for kHermBlock samples (rows of kHermBlock doubles; 2-D degree 10: 22
// rows, 22 KiB, in L1), then the sums are a small matrix product over the block. 256 and 512
// were slower (docs/truncation.md, "Performance"); the macro is there for that comparison only
// (the block is part of the summation order: one value for every build).
#ifndef MODELCOLLAPSE_HERM_BLOCK
#define MODELCOLLAPSE_HERM_BLOCK 128
#endif
constexpr std::size_t kHermBlock = MODELCOLLAPSE_HERM_BLOCK;

// Register tiles of the sums: up to 4 prefixes (rows) by 3 consecutive last-coordinate degrees
// j0..j0+C-1 (columns); 12 accumulators of four samples each stay in registers for the whole
// block, one multiply-add per sample-moment and no load or store of a sum (the previous kernel
// loaded and stored each moment's sums per 16 samples). Prefixes are grouped by decreasing run
// length, and a tile computes the products of rows whose run is shorter than j0 + C too
// (discarded: 2-D degree 10, 74 products for 66 moments in 8 tiles).
struct HermiteTile {
    std::uint32_t p[4];  // prefixes of the rows (nr of them)
    std::uint32_t nr, j0, nc;
};

// R x C accumulators over nv vectors of samples: rows' values r[0..R) and the last
// coordinate's rows gl + (j0 + c) kHermBlock; the sums into acc[run_begin[p] + j] for the
// (p, j) inside p's run (j < len[p]). Sq: the squares' sums too, into acc2, from the same
// products (w = P g: a multiply, w into the sum on the add pipes, w w into the squares' by a
// multiply-add), R x C <= 6 so that both sets of accumulators stay in registers.
template <int R, int C, bool Pin, bool Sq>
MODELCOLLAPSE_ALWAYS_INLINE void hermite_tile(const double* const* rowp, const HermiteTile& t, const double* gl,
                                              std::size_t nv, const std::size_t* run_begin, const std::size_t* len,
                                              vec4d_u* acc, vec4d_u* acc2) {
    const double* r[R];
    for (int i = 0; i < R; ++i) r[i] = rowp[t.p[i]];
    const double* g = gl + static_cast<std::size_t>(t.j0) * kHermBlock;
    vec4d a[R][C], a2[Sq ? R : 1][Sq ? C : 1];
    for (int i = 0; i < R; ++i)
        for (int c = 0; c < C; ++c) a[i][c] = vec4d{0.0, 0.0, 0.0, 0.0};
    if constexpr (Sq)
        for (int i = 0; i < R; ++i)
            for (int c = 0; c < C; ++c) a2[i][c] = vec4d{0.0, 0.0, 0.0, 0.0};
    for (std::size_t v = 0; v < nv; v += 4) {
        vec4d gv[C];
        for (int c = 0; c < C; ++c) gv[c] = MODELCOLLAPSE_LOAD4(g + c * kHermBlock + v);
        for (int i = 0; i < R; ++i) {
            vec4d pv = MODELCOLLAPSE_LOAD4(r[i] + v);
            // pinned to a register (an empty asm; needs AVX): GCC otherwise folds this load into
            // each of the C multiply-adds that use it, 15 loads for a 4 x 3 tile's 12
            // multiply-adds instead of 7, and two 256-bit loads a cycle (Zen 3) then bound the
            // tile below the FMA pipes' rate (bench/hermite_kernel.cpp, 2d_deg10_sums_only)
            if constexpr (Pin) asm("" : "+x"(pv));
            for (int c = 0; c < C; ++c) {
                if constexpr (Sq) {
                    const vec4d w = pv * gv[c];
                    a[i][c] += w;
                    a2[i][c] += w * w;
                } else {
                    a[i][c] += pv * gv[c];
                }
            }
        }
    }
    for (int i = 0; i < R; ++i)
        for (int c = 0; c < C; ++c) {
            const std::size_t j = t.j0 + static_cast<std::size_t>(c);
            if (j < len[t.p[i]]) {
                acc[run_begin[t.p[i]] + j] += a[i][c];
                if constexpr (Sq) acc2[run_begin[t.p[i]] + j] += a2[i][c];
            }
        }
}

// The tiles of a plan whose runs are contiguous from degree 0 (run_j of prefix p's slots is 0,
// 1, ..., len - 1: every graded table), or false. Up to max_rows (4, or 2 with the squares) rows.
inline bool hermite_tiles(const HermiteFusedPlan& plan, std::vector<std::size_t>& len,
                          std::vector<HermiteTile>& tiles, std::size_t max_rows = 4) {
    const std::size_t P = plan.pparent.size();
    len.assign(P, 0);
    for (std::size_t p = 0; p < P; ++p) {
        len[p] = plan.run_begin[p + 1] - plan.run_begin[p];
        for (std::size_t s = plan.run_begin[p]; s < plan.run_begin[p + 1]; ++s)
            if (plan.run_j[s] != static_cast<std::int64_t>(s - plan.run_begin[p])) return false;
    }
    std::vector<std::size_t> by(P);
    for (std::size_t p = 0; p < P; ++p) by[p] = p;
    std::stable_sort(by.begin(), by.end(), [&](std::size_t a, std::size_t b) { return len[a] > len[b]; });
    tiles.clear();
    for (std::size_t q = 0; q < P; q += max_rows) {
        HermiteTile t{};
        t.nr = static_cast<std::uint32_t>(std::min<std::size_t>(max_rows, P - q));
        for (std::size_t i = 0; i < t.nr; ++i) t.p[i] = static_cast<std::uint32_t>(by[q + i]);
        const std::size_t jmax = len[by[q]];  // the longest run of the group
        for (std::size_t j0 = 0; j0 < jmax; j0 += 3) {
            t.j0 = static_cast<std::uint32_t>(j0);
            t.nc = static_cast<std::uint32_t>(std::min<std::size_t>(3, jmax - j0));
            // rows whose runs end before j0 drop out (the group is sorted: they are the last)
            HermiteTile u = t;
            while (u.nr > 1 && len[u.p[u.nr - 1]] <= j0) --u.nr;
            tiles.push_back(u);
        }
    }
    return true;
}

// The sums of one block through the tiles: rowp[p] the prefixes' rows, gl the last
// coordinate's g_0 row, nv samples (a multiple of 4); with acc2, the squares' sums too (tiles
// of at most 2 rows). Pin: rows pinned to registers (AVX only).
template <bool Pin>
MODELCOLLAPSE_ALWAYS_INLINE void hermite_tiles_body(const double* const* rowp, const std::vector<HermiteTile>& tiles,
                                                    const double* gl, std::size_t nv, const std::size_t* run_begin,
                                                    const std::size_t* len, vec4d_u* acc, vec4d_u* acc2) {
    for (const HermiteTile& t : tiles) {
        const std::uint32_t key = (t.nr - 1) * 3 + (t.nc - 1);
#define MODELCOLLAPSE_HERM_TILE(R, C, SQ) \
    case (R - 1) * 3 + (C - 1): hermite_tile<R, C, Pin, SQ>(rowp, t, gl, nv, run_begin, len, acc, acc2); break;
        if (acc2) {
            switch (key) {
                MODELCOLLAPSE_HERM_TILE(1, 1, true) MODELCOLLAPSE_HERM_TILE(1, 2, true) MODELCOLLAPSE_HERM_TILE(1, 3, true)
                MODELCOLLAPSE_HERM_TILE(2, 1, true) MODELCOLLAPSE_HERM_TILE(2, 2, true) MODELCOLLAPSE_HERM_TILE(2, 3, true)
                default: break;
            }
        } else {
            switch (key) {
                MODELCOLLAPSE_HERM_TILE(1, 1, false) MODELCOLLAPSE_HERM_TILE(1, 2, false)
                MODELCOLLAPSE_HERM_TILE(1, 3, false) MODELCOLLAPSE_HERM_TILE(2, 1, false)
                MODELCOLLAPSE_HERM_TILE(2, 2, false) MODELCOLLAPSE_HERM_TILE(2, 3, false)
                MODELCOLLAPSE_HERM_TILE(3, 1, false) MODELCOLLAPSE_HERM_TILE(3, 2, false)
                MODELCOLLAPSE_HERM_TILE(3, 3, false) MODELCOLLAPSE_HERM_TILE(4, 1, false)
                MODELCOLLAPSE_HERM_TILE(4, 2, false) MODELCOLLAPSE_HERM_TILE(4, 3, false)
                default: break;
            }
        }
#undef MODELCOLLAPSE_HERM_TILE
    }
}

// Two versions where MODELCOLLAPSE_HOT_FMA makes clones (fastmath.hpp: the same condition), picked
// at load time like them: x86-64-v3 with the rows pinned, the baseline without (a target_clones
// function has one body, and the pin cannot be compiled for the baseline). Elsewhere one
// version, pinned where the build has AVX.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12 && defined(__x86_64__) && defined(__linux__) && \
    !defined(__AVX2__) && !defined(MODELCOLLAPSE_NO_DISPATCH)
__attribute__((target("default"))) static void hermite_tiles_run(const double* const* rowp,
                                                                 const std::vector<HermiteTile>& tiles,
                                                                 const double* gl, std::size_t nv,
                                                                 const std::size_t* run_begin, const std::size_t* len,
                                                                 vec4d_u* acc, vec4d_u* acc2) {
    hermite_tiles_body<false>(rowp, tiles, gl, nv, run_begin, len, acc, acc2);
}
__attribute__((target("arch=x86-64-v3"))) static void hermite_tiles_run(const double* const* rowp,
                                                                        const std::vector<HermiteTile>& tiles,
                                                                        const double* gl, std::size_t nv,
                                                                        const std::size_t* run_begin,
                                                                        const std::size_t* len, vec4d_u* acc,
                                                                        vec4d_u* acc2) {
    hermite_tiles_body<true>(rowp, tiles, gl, nv, run_begin, len, acc, acc2);
}
#else
inline void hermite_tiles_run(const double* const* rowp, const std::vector<HermiteTile>& tiles, const double* gl,
                              std::size_t nv, const std::size_t* run_begin, const std::size_t* len, vec4d_u* acc,
                              vec4d_u* acc2) {
#if defined(__AVX__)
    hermite_tiles_body<true>(rowp, tiles, gl, nv, run_begin, len, acc, acc2);
#else
    hermite_tiles_body<false>(rowp, tiles, gl, nv, run_begin, len, acc, acc2);
#endif
}
#endif

// Buffers of one thread for the fused d-D kernel: g (d (D + 1) rows), the prefixes' products
// (one row per prefix), a row of ones (the empty prefix), and the rows' addresses.
struct HermiteFusedWork {
    std::vector<double> mem;
    double* g;
    double* pbuf;
    std::vector<const double*> prow;
    HermiteFusedWork(std::size_t d, std::size_t D, const HermiteFusedPlan& plan) {
        const std::size_t G = d * (D + 1), P = plan.pparent.size();
        mem.assign((G + P + 1) * kHermBlock + 8, 0.0);
        const auto a = reinterpret_cast<std::uintptr_t>(mem.data());
        g = mem.data() + (64 - a % 64) % 64 / sizeof(double);
        pbuf = g + G * kHermBlock;
        double* ones = pbuf + P * kHermBlock;
        std::fill(ones, ones + kHermBlock, 1.0);
        prow.assign(P, ones);
        for (std::size_t p = 1; p < P; ++p)
            prow[p] = plan.pparent[p] == 0  // one coordinate: the row of g
                          ? g + (static_cast<std::size_t>(plan.pdim[p]) * (D + 1) +
                                 static_cast<std::size_t>(plan.porder[p])) * kHermBlock
                          : pbuf + p * kHermBlock;
    }
};

// One block of nb <= kHermBlock samples starting at row i0 through the fused d-D kernel: the
// scaled recurrences per coordinate, 16 samples at a time, into w.g; the prefixes' products
// into w.pbuf; then the sums (acc, and acc2 of the squares) through the tiles.
MODELCOLLAPSE_HOT_FMA void hermite_fused_block(const double* x, std::size_t i0, std::size_t nb, std::size_t d,
                                               std::size_t D, const HermiteScaled& sc, const HermiteFusedPlan& plan,
                                               const std::vector<HermiteTile>& tiles, const std::size_t* len,
                                               HermiteFusedWork& w, vec4d_u* acc, vec4d_u* acc2) {
    const std::size_t n_pre = plan.pparent.size();
    const std::size_t nv = (nb + kHermLanes - 1) / kHermLanes * kHermLanes;
    vec4d xv[4], live[4];
    for (std::size_t o = 0; o < nv; o += kHermLanes) {
        const std::size_t ns = std::min(kHermLanes, nb - o);
        for (std::size_t i = 0; i < d; ++i) {
            hermite_load16(x, i0 + o, ns, d, i, xv, live);
            double* gi = w.g + i * (D + 1) * kHermBlock + o;
            hermite_scaled_run(xv, live, D, sc, [&](std::size_t k, const vec4d* c) MODELCOLLAPSE_LAMBDA_INLINE {
                for (int v = 0; v < 4; ++v) MODELCOLLAPSE_STORE4(gi + k * kHermBlock + 4 * v, c[v]);
            });
        }
    }
    for (std::size_t p = 1; p < n_pre; ++p) {
        if (plan.pparent[p] == 0) continue;  // one coordinate: its row is in g
        const double* a = w.prow[static_cast<std::size_t>(plan.pparent[p])];
        const double* b = w.g + (static_cast<std::size_t>(plan.pdim[p]) * (D + 1) + static_cast<std::size_t>(plan.porder[p])) * kHermBlock;
        double* dst = w.pbuf + p * kHermBlock;
        for (std::size_t v = 0; v < nv; v += 4)
            MODELCOLLAPSE_STORE4(dst + v, MODELCOLLAPSE_LOAD4(a + v) * MODELCOLLAPSE_LOAD4(b + v));
    }
    const double* gl = w.g + (d - 1) * (D + 1) * kHermBlock;
    hermite_tiles_run(w.prow.data(), tiles, gl, nv, plan.run_begin.data(), len, acc, acc2);
}

#endif  // MODELCOLLAPSE_VECTOR_EXT

#ifdef MODELCOLLAPSE_VECTOR_EXT
// Lane sums of one chunk (acc_lane: n_slots vec4d) folded into the chunk's partial sums, in
// a fixed order: acc[m] += fold(acc_lane[slot_of(m)]).
template <class SlotOf>
inline void hermite_fold(const vec4d_u* lane, const vec4d_u* lane2, std::size_t M, SlotOf slot_of, double* acc,
                         double* acc2) {
    for (std::size_t m = 0; m < M; ++m) {
        const vec4d s = lane[slot_of(m)];
        acc[m] += (s[0] + s[2]) + (s[1] + s[3]);
        if (acc2) {
            const vec4d s2 = lane2[slot_of(m)];
            acc2[m] += (s2[0] + s2[2]) + (s2[1] + s2[3]);
        }
    }
}
#endif  // MODELCOLLAPSE_VECTOR_EXT

// Per-thread scratch (zeroed doubles) on cache lines of its own, 64-byte aligned: the lane
// sums are written at every step by one thread, and two threads' sums in one line (two small
// blocks from one malloc arena) made a two-thread run 2.1x slower than with separate lines
// (bench/hermite_kernel.cpp, 1d_2threads_shared_line against 1d_2threads_own_lines).
struct HermiteScratch {
    std::vector<double> mem;
    double* p;
    explicit HermiteScratch(std::size_t n) : mem(n + 16, 0.0) {
        const auto a = reinterpret_cast<std::uintptr_t>(mem.data());
        p = mem.data() + (64 - a % 64) % 64 / sizeof(double);
    }
    vec4d_u* v4() { return reinterpret_cast<vec4d_u*>(p); }
};

// out_mean[M], out_sq[M] (optional, may be nullptr). x is row-major (n, d).
// Three kernels: the fused 1-D chain (the sequence h_0..h_D), the fused d-D kernel (any table of
// one value per coordinate up to kHermFusedMaxMoments moments whose runs are contiguous from
// degree 0, as in every graded table) and the generic two-pass one.
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
    const std::size_t stride = M * (want_sq ? 2 : 1);
    std::vector<double> partial(n_chunks * stride, 0.0);
    // sums of the fused kernels are of scaled values: post[m] turns them into sums of h_alpha
    std::vector<double> post;
    // Block of B samples processed together: val is (M, B), h is (d, D+1, B).
    const std::size_t B = std::max<std::size_t>(1, std::min<std::size_t>(64, 65536 / std::max<std::size_t>(M, 1)));

#ifdef MODELCOLLAPSE_VECTOR_EXT
    // T: the scaled values stay within 2^T of the orthonormal ones, so a product of d of them
    // within 2^48 of h_alpha (2^32 in 1-D)
    const HermiteScaled sc = hermite_scaled(D, d == 1 ? 32 : std::max(8, 48 / static_cast<int>(d)));
    HermiteFusedPlan plan;
    std::vector<std::size_t> len;     // the fused d-D kernel's run length per prefix
    std::vector<HermiteTile> tiles;   // and its register tiles
    if (is_chain_1d(tab)) {
        auto body1 = [&](std::size_t begin, std::size_t end, const StopToken& stop) {
            double* acc = partial.data() + (begin / chunk) * stride;
            double* acc2 = want_sq ? acc + M : nullptr;
            // per-lane sums (4 per index), no alignment assumed (vec4d_u)
            HermiteScratch lane_mem(4 * M), lane2_mem(want_sq ? 4 * M : 0);
            vec4d_u* lane = lane_mem.v4();
            vec4d_u* lane2 = want_sq ? lane2_mem.v4() : nullptr;
            // pieces of 4096 samples between looks at the stop flag (Ctrl-C)
            for (std::size_t b0 = begin; b0 < end; b0 += 4096) {
                if (stop.stop_requested()) return;
                hermite_chain_1d(x, b0, std::min(end, b0 + 4096), D, sc, lane, lane2);
            }
            hermite_fold(lane, lane2, M, [](std::size_t m) { return m; }, acc, acc2);
        };
        parallel_for(n, chunk, threads, body1, poll);
        post = sc.fac;
    } else if (hermite_fused_plan(tab, sc, plan) && hermite_tiles(plan, len, tiles, want_sq ? 2 : 4)) {
        auto bodyd = [&](std::size_t begin, std::size_t end, const StopToken& stop) {
            double* acc = partial.data() + (begin / chunk) * stride;
            double* acc2 = want_sq ? acc + M : nullptr;
            HermiteFusedWork work(d, D, plan);
            HermiteScratch lane_mem(4 * M), lane2_mem(want_sq ? 4 * M : 0);
            vec4d_u* lane = lane_mem.v4();
            vec4d_u* lane2 = want_sq ? lane2_mem.v4() : nullptr;
            for (std::size_t b0 = begin; b0 < end; b0 += kHermBlock) {
                if ((b0 - begin) % 4096 == 0 && stop.stop_requested()) return;
                hermite_fused_block(x, b0, std::min(kHermBlock, end - b0), d, D, sc, plan, tiles, len.data(), work,
                                    lane, lane2);
            }
            hermite_fold(lane, lane2, M, [&](std::size_t m) { return plan.slot_of[m]; }, acc, acc2);
        };
        parallel_for(n, chunk, threads, bodyd, poll);
        post = plan.post;
    } else
#endif
    {
    auto body = [&](std::size_t begin, std::size_t end, const StopToken& stop) {
        const std::size_t c = begin / chunk;
        double* acc = partial.data() + c * stride;
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
    for (std::size_t m = 0; m < M; ++m) {
        double s1 = 0.0, s2 = 0.0;
        for (std::size_t c = 0; c < n_chunks; ++c) {
            s1 += partial[c * stride + m];
            if (want_sq) s2 += partial[c * stride + M + m];
        }
        const double f = post.empty() ? 1.0 : post[m];
        out_mean[m] = s1 * f / static_cast<double>(n);
        if (want_sq) out_sq[m] = s2 * f * f / static_cast<double>(n);
    }
}

}  // namespace modelcollapse
