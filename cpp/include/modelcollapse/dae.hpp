// Two-layer denoising auto-encoder (tied weights, trainable skip) trained by online SGD in
// high dimension, and the generative sampler it drives (Cui et al.; spec dae.md §2, §4).
//
//   f(t, x) = b x + (w / sqrt(d)) sigma(w^T x / sqrt(d) + p_t v),   w in R^{d x r}
//   loss    = mean_{t in G} || x_1 - f(t, alpha_t x_0 + beta_t x_1) ||^2
//   b <- b - (eta / d^2) d_b loss
//   w <- w - eta grad_w loss - (eta lambda / d) w
//   v <- v - (eta / d) grad_v loss - (eta lambda / d) v
//
// Internally w is stored transposed (r rows of length d, unit stride) so that the O(d r)
// passes vectorise over the d coordinates. One SGD step costs two passes over (w, x_0, x_1):
// pass 1 forms the local fields w^T x_0, w^T x_1, the Gram matrix w^T w and the three norms;
// everything else is r-dimensional; pass 2 applies w <- w C + x_0 a^T + x_1 c^T.
//
// Randomness (ARS-7, random.hpp): replica k uses streams make_stream(purpose, k), so a
// replica's trajectory does not depend on the number of threads nor on the other replicas.
// Normals are drawn in blocks of several steps through rng::fill_normals; with a spare
// thread, a helper shares them with the SGD thread and runs ahead by a block (BlockPrefetcher).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>
#ifdef MODELCOLLAPSE_DAE_STATS
#include <time.h>
#ifndef MODELCOLLAPSE_THREAD_STATS
#define MODELCOLLAPSE_THREAD_STATS  // the helper's scheduler accounting (parallel.hpp, SchedSample)
#endif
#endif

#include "parallel.hpp"
#include "random.hpp"

namespace modelcollapse {
namespace dae {

enum class Activation : int { kTanh = 0, kRelu = 1, kLinear = 2, kErf = 3, kSigmoid = 4 };

inline void activate(Activation a, double h, double& s, double& ds) {
    switch (a) {
        case Activation::kTanh: {
            s = std::tanh(h);
            ds = 1.0 - s * s;
            return;
        }
        case Activation::kRelu:
            s = h > 0.0 ? h : 0.0;
            ds = h > 0.0 ? 1.0 : 0.0;
            return;
        case Activation::kLinear:
            s = h;
            ds = 1.0;
            return;
        case Activation::kErf:
            s = std::erf(h);
            ds = 1.1283791670955126 * std::exp(-h * h);  // 2 / sqrt(pi)
            return;
        case Activation::kSigmoid: {
            s = 1.0 / (1.0 + std::exp(-h));
            ds = s * (1.0 - s);
            return;
        }
    }
    throw std::invalid_argument("unknown activation");
}

constexpr int kMaxR = 64;

// Sweep 1 for a compile-time r: w^T x0, w^T x1, w^T w and the three norms in one pass.
template <int R>
MODELCOLLAPSE_HOT void sweep_fields(const double* W, std::size_t d, const double* x0, const double* x1, double* P0,
                                double* P1, double* WW, double* norms) {
    constexpr int NG = R * (R + 1) / 2;
    constexpr int NA = 3 + 2 * R + NG;  // accumulators: norms, w^T x0, w^T x1, Gram
    constexpr int L = 4;                // independent lanes (vectorised by the compiler)
    const double* rows[R];
    for (int j = 0; j < R; ++j) rows[j] = W + j * d;
    double acc[NA][L] = {};
    auto body = [&](std::size_t i, int l) {
        const double a = x0[i], c = x1[i];
        acc[0][l] += a * a;
        acc[1][l] += a * c;
        acc[2][l] += c * c;
        int q = 3;
        for (int j = 0; j < R; ++j) {
            const double wj = rows[j][i];
            acc[q++][l] += wj * a;
            acc[q++][l] += wj * c;
            for (int k = 0; k <= j; ++k) acc[q++][l] += wj * rows[k][i];
        }
    };
    std::size_t i = 0;
#ifdef MODELCOLLAPSE_VECTOR_EXT
    // The same L-lane sums written with GCC vector types (one AVX2 register, two SSE2 ones):
    // the loop above is not vectorised by GCC, and this form gives the same bits.
    vec4d vacc[NA] = {};
    for (; i + L <= d; i += L) {
        const vec4d a = MODELCOLLAPSE_LOAD4(x0 + i), c = MODELCOLLAPSE_LOAD4(x1 + i);
        vacc[0] += a * a;
        vacc[1] += a * c;
        vacc[2] += c * c;
        int q = 3;
        for (int j = 0; j < R; ++j) {
            const vec4d wj = MODELCOLLAPSE_LOAD4(rows[j] + i);
            vacc[q++] += wj * a;
            vacc[q++] += wj * c;
            for (int k = 0; k <= j; ++k) vacc[q++] += wj * MODELCOLLAPSE_LOAD4(rows[k] + i);
        }
    }
    for (int q = 0; q < NA; ++q)
        for (int l = 0; l < L; ++l) acc[q][l] = vacc[q][l];
#else
    for (; i + L <= d; i += L)
        for (int l = 0; l < L; ++l) body(i + l, l);
#endif
    for (int l = 0; l < L && i < d; ++i, ++l) body(i, l);
    double tot[NA];
    for (int q = 0; q < NA; ++q) tot[q] = (acc[q][0] + acc[q][2]) + (acc[q][1] + acc[q][3]);
    double p0[R], p1[R], gg[NG];
    {
        int q = 3, g = 0;
        for (int j = 0; j < R; ++j) {
            p0[j] = tot[q++];
            p1[j] = tot[q++];
            for (int k = 0; k <= j; ++k) gg[g++] = tot[q++];
        }
    }
    const double s00 = tot[0], s01 = tot[1], s11 = tot[2];
    int q = 0;
    for (int j = 0; j < R; ++j) {
        P0[j] = p0[j];
        P1[j] = p1[j];
        for (int k = 0; k <= j; ++k, ++q) {
            WW[j * R + k] = gg[q];
            WW[k * R + j] = gg[q];
        }
    }
    norms[0] = s00;
    norms[1] = s01;
    norms[2] = s11;
}

// Sweep 2 for a compile-time r: w_j <- sum_k w_k Cf[k][j] + a0_j x0 + a1_j x1.
template <int R>
MODELCOLLAPSE_HOT void sweep_update(double* W, std::size_t d, const double* Cf, const double* a0, const double* a1,
                                const double* x0, const double* x1) {
    double* rows[R];
    for (int j = 0; j < R; ++j) rows[j] = W + j * d;
    double cf[R * R], c0[R], c1[R];
    for (int j = 0; j < R * R; ++j) cf[j] = Cf[j];
    for (int j = 0; j < R; ++j) {
        c0[j] = a0[j];
        c1[j] = a1[j];
    }
#pragma omp simd
    for (std::size_t i = 0; i < d; ++i) {
        double old[R];
        for (int k = 0; k < R; ++k) old[k] = rows[k][i];
        for (int j = 0; j < R; ++j) {
            double acc = c0[j] * x0[i] + c1[j] * x1[i];
            for (int k = 0; k < R; ++k) acc += old[k] * cf[k * R + j];
            rows[j][i] = acc;
        }
    }
}

// Time grid of the loss: either m fixed points (alpha_k, beta_k, p_k), averaged in every
// step, or one t ~ U(0, 1) per step with alpha = 1 - t, beta = t, p_t = p0 + p1 t.
struct Schedule {
    bool uniform = false;
    std::vector<double> alpha, beta, p;
    double p0 = 0.0, p1 = 0.0;
};

struct Hyper {
    double lr = 0.1;
    double weight_decay = 0.0;
    bool train_b = true;
    Activation act = Activation::kTanh;
};

// Data law: mixture of K Gaussians N(means[k], diag(scales[k]^2)) with cumulative weights,
// or (when data != nullptr) the uniform law on the n_data rows of `data`.
struct Target {
    std::size_t d = 0, K = 0;
    const double* means = nullptr;   // K x d
    const double* scales = nullptr;  // K x d (standard deviations)
    std::vector<double> cum_weights; // K, last = 1
    const double* data = nullptr;    // n_data x d
    std::size_t n_data = 0;
    bool sequential = false;         // data rows in order (step mod n_data) instead of uniform draws
};

inline std::size_t data_row(const Target& tg, std::size_t step, double u) {
    if (tg.sequential) return step % tg.n_data;
    return std::min(tg.n_data - 1, static_cast<std::size_t>(u * static_cast<double>(tg.n_data)));
}

// What a run records every `record_every` steps (step 0 and the last step included).
struct Recorder {
    std::size_t every = 1;
    std::size_t n_rec = 0;
    const double* observe = nullptr;  // d x R (orthonormal columns), may be null
    std::size_t R = 0;
    // outputs for one replica (caller offsets them)
    double* Q = nullptr;  // n_rec x r x r
    double* M = nullptr;  // n_rec x K x r
    double* G = nullptr;  // n_rec x r x R
    double* b = nullptr;  // n_rec
    double* v = nullptr;  // n_rec x r
    std::size_t* steps = nullptr;  // n_rec (shared; written by every replica identically)
};

inline std::size_t n_records(std::size_t n_steps, std::size_t every) {
    return n_steps / every + 1 + (n_steps % every != 0 ? 1 : 0);
}

// Step-by-step state of one replica. W is r x d (row j = hidden unit j).
template <int RC>
class Trainer {
  public:
    Trainer(std::size_t d, int r, const Hyper& hyper, const Schedule& sched)
        : d_(d), r_(RC > 0 ? RC : r), hyper_(hyper), sched_(sched) {
        if (r_ < 1 || r_ > kMaxR) throw std::invalid_argument("r must be in [1, 64]");
        sd_ = 1.0 / std::sqrt(static_cast<double>(d_));
    }

    int r() const { return RC > 0 ? RC : r_; }

    // One SGD step with samples x0, x1 (length d). t is used only in uniform mode.
    void step(double* W, double& b, double* v, const double* x0, const double* x1, double t) const {
        const int r = this->r();
        const std::size_t d = d_;
        double P0[kMaxR], P1[kMaxR], WW[kMaxR * kMaxR];
        double n00 = 0.0, n01 = 0.0, n11 = 0.0;
        // ---- pass 1: local fields, Gram matrix and norms
        if constexpr (RC > 0) {
            pass1_fixed(W, x0, x1, P0, P1, WW, n00, n01, n11);
        } else {
            for (int j = 0; j < r; ++j) {
                const double* wj = W + j * d;
                double a0 = 0.0, a1 = 0.0;
#pragma omp simd reduction(+ : a0, a1)
                for (std::size_t i = 0; i < d; ++i) {
                    a0 += wj[i] * x0[i];
                    a1 += wj[i] * x1[i];
                }
                P0[j] = a0;
                P1[j] = a1;
                for (int k = 0; k <= j; ++k) {
                    const double* wk = W + k * d;
                    double g = 0.0;
#pragma omp simd reduction(+ : g)
                    for (std::size_t i = 0; i < d; ++i) g += wj[i] * wk[i];
                    WW[j * r + k] = g;
                    WW[k * r + j] = g;
                }
            }
#pragma omp simd reduction(+ : n00, n01, n11)
            for (std::size_t i = 0; i < d; ++i) {
                n00 += x0[i] * x0[i];
                n01 += x0[i] * x1[i];
                n11 += x1[i] * x1[i];
            }
        }
        // ---- r-dimensional part
        const double invd = 1.0 / static_cast<double>(d);
        double l0[kMaxR], l1[kMaxR], Q[kMaxR * kMaxR];
        for (int j = 0; j < r; ++j) {
            l0[j] = P0[j] * sd_;
            l1[j] = P1[j] * sd_;
        }
        for (int j = 0; j < r * r; ++j) Q[j] = WW[j] * invd;
        double A0[kMaxR] = {0}, A1[kMaxR] = {0}, C[kMaxR * kMaxR] = {0}, gv[kMaxR] = {0};
        double gb = 0.0;
        const std::size_t m = sched_.uniform ? 1 : sched_.alpha.size();
        const double wm = 1.0 / static_cast<double>(m);
        for (std::size_t q = 0; q < m; ++q) {
            double al, be, pt;
            if (sched_.uniform) {
                al = 1.0 - t;
                be = t;
                pt = sched_.p0 + sched_.p1 * t;
            } else {
                al = sched_.alpha[q];
                be = sched_.beta[q];
                pt = sched_.p[q];
            }
            double lt[kMaxR], s[kMaxR], ds[kMaxR], u[kMaxR];
            for (int j = 0; j < r; ++j) {
                lt[j] = al * l0[j] + be * l1[j];
                activate(hyper_.act, lt[j] + pt * v[j], s[j], ds[j]);
            }
            double slt = 0.0;
            for (int j = 0; j < r; ++j) {
                double qs = 0.0;
                for (int k = 0; k < r; ++k) qs += Q[j * r + k] * s[k];
                double le = l1[j] - b * lt[j] - qs;  // w^T e / sqrt(d)
                u[j] = ds[j] * le;
                slt += s[j] * lt[j];
            }
            for (int j = 0; j < r; ++j) {
                A0[j] += wm * al * (u[j] - b * s[j]);
                A1[j] += wm * ((1.0 - b * be) * s[j] + be * u[j]);
                gv[j] += wm * pt * u[j];
                for (int k = 0; k < r; ++k) C[k * r + j] -= wm * sd_ * s[k] * s[j];
            }
            // e^T x_t with e = x1 - b x_t - w s / sqrt(d)
            double x1xt = al * n01 + be * n11;
            double xtxt = al * al * n00 + 2.0 * al * be * n01 + be * be * n11;
            gb += wm * (x1xt - b * xtxt - slt);
        }
        // ---- pass 2: w_j <- sum_k w_k Cf[k][j] + a0_j x0 + a1_j x1
        const double lr = hyper_.lr;
        const double decay = 1.0 - lr * hyper_.weight_decay * invd;
        const double g = 2.0 * lr * sd_;
        double Cf[kMaxR * kMaxR], a0[kMaxR], a1[kMaxR];
        for (int k = 0; k < r; ++k)
            for (int j = 0; j < r; ++j) Cf[k * r + j] = g * C[k * r + j] + (k == j ? decay : 0.0);
        for (int j = 0; j < r; ++j) {
            a0[j] = g * A0[j];
            a1[j] = g * A1[j];
        }
        update_w(W, Cf, a0, a1, x0, x1);
        for (int j = 0; j < r; ++j) v[j] += 2.0 * lr * invd * gv[j] - lr * hyper_.weight_decay * invd * v[j];
        if (hyper_.train_b) b += 2.0 * lr * invd * invd * gb;
    }

  private:
    void pass1_fixed(const double* W, const double* x0, const double* x1, double* P0, double* P1, double* WW,
                     double& n00, double& n01, double& n11) const {
        double norms[3];
        sweep_fields<(RC > 0 ? RC : 1)>(W, d_, x0, x1, P0, P1, WW, norms);
        n00 = norms[0];
        n01 = norms[1];
        n11 = norms[2];
    }

    void update_w(double* W, const double* Cf, const double* a0, const double* a1, const double* x0,
                  const double* x1) const {
        const int r = this->r();
        const std::size_t d = d_;
        if (RC > 0) {
            sweep_update<(RC > 0 ? RC : 1)>(W, d, Cf, a0, a1, x0, x1);
        } else {
            std::vector<double> old(static_cast<std::size_t>(r));
            for (std::size_t i = 0; i < d; ++i) {
                for (int k = 0; k < r; ++k) old[k] = W[k * d + i];
                for (int j = 0; j < r; ++j) {
                    double acc = a0[j] * x0[i] + a1[j] * x1[i];
                    for (int k = 0; k < r; ++k) acc += old[k] * Cf[k * r + j];
                    W[j * d + i] = acc;
                }
            }
        }
    }

    std::size_t d_;
    int r_;
    Hyper hyper_;
    Schedule sched_;
    double sd_;
};

// Summary statistics of W (r x d): Q = w^T w / d, M(c) = w^T mu_c / sqrt(d),
// G = w^T E / sqrt(d).
inline void record(const double* W, std::size_t d, int r, double b, const double* v, const Target& tg,
                   const Recorder& rec, std::size_t slot) {
    const double invd = 1.0 / static_cast<double>(d), sd = std::sqrt(invd);
    for (int j = 0; j < r; ++j)
        for (int k = 0; k <= j; ++k) {
            double g = 0.0;
            for (std::size_t i = 0; i < d; ++i) g += W[j * d + i] * W[k * d + i];
            rec.Q[slot * r * r + j * r + k] = g * invd;
            rec.Q[slot * r * r + k * r + j] = g * invd;
        }
    if (rec.M)
        for (std::size_t c = 0; c < tg.K; ++c)
            for (int j = 0; j < r; ++j) {
                double g = 0.0;
                for (std::size_t i = 0; i < d; ++i) g += W[j * d + i] * tg.means[c * d + i];
                rec.M[(slot * tg.K + c) * r + j] = g * sd;
            }
    if (rec.G && rec.observe)
        for (int j = 0; j < r; ++j)
            for (std::size_t q = 0; q < rec.R; ++q) {
                double g = 0.0;
                for (std::size_t i = 0; i < d; ++i) g += W[j * d + i] * rec.observe[i * rec.R + q];
                rec.G[(slot * r + j) * rec.R + q] = g * sd;
            }
    rec.b[slot] = b;
    for (int j = 0; j < r; ++j) rec.v[slot * r + j] = v[j];
}

inline std::size_t pick_component(const std::vector<double>& cum, double u) {
    std::size_t k = 0;
    while (k + 1 < cum.size() && u >= cum[k]) ++k;
    return k;
}

// Block of steps drawn at once (about 16k doubles per buffer).
inline std::size_t block_steps(std::size_t d) { return std::max<std::size_t>(1, 16384 / std::max<std::size_t>(d, 1)); }

// The x0 normals and the uniforms (component / data row, t) of one block of steps; with
// the helper thread also the raw x1 normals (BlockPrefetcher).
struct SampleBlock {
    std::vector<double> x0, un, x1;
    void resize(std::size_t B, std::size_t d) {
        x0.resize(B * d);
        un.resize(2 * B);
    }
};

// Draws the x0 normals and uniforms of steps [start, start + nb) of one replica. Every
// number is a pure function of (seed, stream, counter), so it does not matter which thread
// calls this (nor fill_x1 below).
inline void fill_block(const Target& tg, std::uint64_t seed, std::uint64_t replica, std::size_t start,
                       std::size_t nb, SampleBlock& blk) {
    namespace R = modelcollapse::rng;
    const std::size_t d = tg.d;
    R::fill_normals(seed, R::make_stream(R::kDaeX0, replica), start * d, nb * d, blk.x0.data());
    R::fill_uniforms(seed, R::make_stream(R::kDaeChoice, replica), 2 * start, 2 * nb, blk.un.data());
}

// The x1 normals of the same steps (mixture targets only; data targets read rows).
inline void fill_x1(const Target& tg, std::uint64_t seed, std::uint64_t replica, std::size_t start,
                    std::size_t nb, double* x1) {
    namespace R = modelcollapse::rng;
    if (tg.data == nullptr)
        R::fill_normals(seed, R::make_stream(R::kDaeX1, replica), start * tg.d, nb * tg.d, x1);
}

// Pieces of a block's normals, the unit of work the two threads of BlockPrefetcher share:
// numbers [p kPiece, (p + 1) kPiece) of the block's x0, then (mixture targets) of its raw x1;
// pieces need not align with rows, so a one-step block (d >= 8193) is shared too. Piece 0
// also draws the block's uniforms. Every number is a pure function of (seed, stream,
// counter), so which thread draws a piece never changes the results. 512 numbers (~3 us)
// bound what the SGD thread may wait for at the end of a block (the helper's piece in flight).
constexpr std::size_t kPiece = 512;
inline std::size_t x_pieces(std::size_t nb, std::size_t d) { return (nb * d + kPiece - 1) / kPiece; }

// What BlockPrefetcher's threads did (for the bench: who drew how many pieces, how long each
// waited, the helper's CPU time outside its waits). Times are taken only when
// MODELCOLLAPSE_DAE_STATS is defined (bench/dae_threads.cpp).
struct PrefetchStats {
    std::size_t pieces_sgd = 0, pieces_helper = 0;
    double wait_sgd_s = 0.0, wait_helper_s = 0.0;  // wall-clock time spent waiting
    double wait_sgd_cpu_s = 0.0;     // SGD thread's CPU time spent waiting
    double helper_work_cpu_s = 0.0;  // helper's CPU time outside its waits (drawing, claiming)
    // The helper thread's life (produce(), start to end) by Linux's scheduler accounting
    // (parallel.hpp, SchedSample; Linux with MODELCOLLAPSE_DAE_STATS only): wall time, time on
    // a CPU, time runnable on a run queue (preempted), its CPU time spinning in its waits,
    // voluntary and involuntary context switches.
    double helper_wall_s = 0.0, helper_cpu_s = 0.0, helper_rq_s = 0.0, helper_wait_cpu_s = 0.0;
    long helper_nvcsw = 0, helper_nivcsw = 0;
};

// Spins (with the CPU's pause hint) until `ready` or `budget` has passed; true when ready.
// The waits of BlockPrefetcher usually end within a piece of normals (a few us), far below
// the wake-up latency of a sleeping thread, so they spin first.
template <class Ready>
bool spin_for(Ready ready, std::chrono::microseconds budget) {
    const auto t0 = std::chrono::steady_clock::now();
    for (unsigned k = 1;; ++k) {
        if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
        if ((k & 15u) == 0 && std::chrono::steady_clock::now() - t0 > budget) return false;
    }
}

// Sample blocks drawn by two threads: the SGD thread and a persistent helper.
//
// A single replica is bound by the normals (2 d per step, ~3-6 ns each, against ~1.4 ns per
// coordinate for the SGD arithmetic), so with a spare core both threads draw them. The pieces
// of all blocks form one sequence (block j's pieces are [j P, (j + 1) P)) and one atomic
// counter hands them out in order: the helper takes the next piece whenever its block has a
// free buffer (blocks j and j + 1 are in flight while the SGD thread trains on block j), the
// SGD thread takes the pieces of the block it needs next, then waits for the helper's pieces
// of it in flight (at most one piece each). So the helper draws block j + 1 while the SGD
// thread runs block j's arithmetic, and neither thread idles unless the arithmetic alone is
// longer than a block's normals: the split adapts to both threads' speeds (issue 16: the
// former scheme, where the helper drew x0 of the next block and shared only x1 and then
// waited for each release, stalled at 1.25-1.4x). The waits spin first (spin_for): they
// usually end within a piece or a block's arithmetic, shorter than a sleeping thread's
// wake-up; past 200 us the helper sleeps on a condition variable that release() signals. Results are bit-identical to the
// inline path. The destructor always stops and joins the helper, so an early return (Ctrl-C
// through the StopToken) or an exception in the consumer cannot leak the thread.
class BlockPrefetcher {
  public:
    BlockPrefetcher(const Target& tg, std::uint64_t seed, std::uint64_t replica, std::size_t n_steps,
                    std::size_t B, const StopToken& stop, PrefetchStats* stats = nullptr)
        : tg_(tg), seed_(seed), replica_(replica), n_steps_(n_steps), B_(B),
          n_blocks_((n_steps + B - 1) / B), P0_(x_pieces(B, tg.d)),
          P_(P0_ * (tg.data == nullptr ? 2 : 1)), total_(n_blocks_ * P_), stop_(stop), out_(stats) {
        for (auto& b : buf_) {
            b.resize(B, tg.d);
            if (tg.data == nullptr) b.x1.resize(B * tg.d);
        }
        helper_ = std::thread([this] { produce(); });
    }
    ~BlockPrefetcher() {
        quit_.store(true, std::memory_order_seq_cst);
        {
            std::lock_guard<std::mutex> lock(mutex_);
            cv_.notify_one();
        }
        helper_.join();
        if (out_) {
            *out_ = stats_;
            out_->pieces_helper = pieces_helper_;
            out_->wait_helper_s = wait_helper_s_;
            out_->helper_work_cpu_s = helper_cpu_s_;
#if defined(MODELCOLLAPSE_DAE_STATS) && defined(__linux__)
            out_->helper_wall_s = helper_sched_.wall;
            out_->helper_cpu_s = helper_sched_.cpu;
            out_->helper_rq_s = helper_sched_.rq;
            out_->helper_wait_cpu_s = helper_wait_cpu_;
            out_->helper_nvcsw = helper_sched_.nvcsw;
            out_->helper_nivcsw = helper_sched_.nivcsw;
#endif
        }
    }
    BlockPrefetcher(const BlockPrefetcher&) = delete;
    BlockPrefetcher& operator=(const BlockPrefetcher&) = delete;

    // Block j (blocks are taken in order, each released before the next is asked for), with
    // its x0, uniforms and raw x1 drawn; nullptr when stopped.
    SampleBlock* acquire(std::size_t j) {
        const std::size_t end = std::min(total_, (j + 1) * P_);
        for (std::size_t g = next_.load(std::memory_order_relaxed); g < end;) {
            if (next_.compare_exchange_weak(g, g + 1, std::memory_order_acq_rel)) {
                draw(g);
                ++stats_.pieces_sgd;
                g = next_.load(std::memory_order_relaxed);
            }
        }
        std::atomic<std::size_t>& done = done_[j % 2].n;
        const auto t0 = clock_now();
        const double c0 = cpu_now();
        // The helper's piece in flight: spin, then yield (on a shared machine the helper may
        // have been preempted mid-piece), polling Ctrl-C and the helper's errors.
        const auto ready = [&] { return done.load(std::memory_order_acquire) == P_; };
        if (!spin_for(ready, std::chrono::microseconds(200)))
            while (!ready() && !error_seen_.load(std::memory_order_acquire) && !stop_.stop_requested())
                std::this_thread::yield();
        stats_.wait_sgd_s += seconds_since(t0);
        stats_.wait_sgd_cpu_s += cpu_now() - c0;
        if (error_seen_.load(std::memory_order_acquire)) std::rethrow_exception(error_);
        return ready() ? &buf_[j % 2] : nullptr;
    }
    // Hands the buffer of block j back: the helper may draw block j + 2 into it.
    void release(std::size_t j) {
        done_[j % 2].n.store(0, std::memory_order_relaxed);
        // seq_cst store, then load of sleeping_: with the helper's seq_cst store of sleeping_
        // then load of consumed_, one of the two threads sees the other's write (no lost wake-up)
        consumed_.store(j + 1, std::memory_order_seq_cst);
        if (sleeping_.load(std::memory_order_seq_cst)) {
            std::lock_guard<std::mutex> lock(mutex_);
            cv_.notify_one();
        }
    }

  private:
    // Piece g of the sequence: block j = g / P, piece p = g % P of its x0 then x1 (none
    // beyond the last block's numbers); marks it done in the block's buffer.
    void draw(std::size_t g) {
        namespace R = modelcollapse::rng;
        const std::size_t j = g / P_, p = g % P_, d = tg_.d;
        const std::size_t start = j * B_, nb = std::min(B_, n_steps_ - start);
        SampleBlock& blk = buf_[j % 2];
        const bool is_x1 = p >= P0_;
        const std::size_t a = (is_x1 ? p - P0_ : p) * kPiece, n = nb * d;
        if (a < n) {
            const std::size_t e = std::min(n, a + kPiece);
            R::fill_normals(seed_, R::make_stream(is_x1 ? R::kDaeX1 : R::kDaeX0, replica_), start * d + a, e - a,
                            (is_x1 ? blk.x1.data() : blk.x0.data()) + a);
        }
        if (p == 0) R::fill_uniforms(seed_, R::make_stream(R::kDaeChoice, replica_), 2 * start, 2 * nb, blk.un.data());
        done_[j % 2].n.fetch_add(1, std::memory_order_acq_rel);
    }

    void produce() {
#if defined(MODELCOLLAPSE_DAE_STATS) && defined(__linux__)
        struct SchedTally {  // the helper's scheduler accounting, however produce() returns
            BlockPrefetcher& p;
            const SchedSample s0 = sched_sample();
            ~SchedTally() { p.helper_sched_ = sched_sample() - s0; }
        } sched_tally{*this};
#endif
        const double cpu0 = cpu_now();
        double waited = 0.0;  // CPU time
        struct Tally {  // the helper's CPU time outside its waits, however produce() returns
            double& out;
            double& out_waited;
            const double& cpu0;
            const double& waited;
            ~Tally() {
                out = cpu_now() - cpu0 - waited;
                out_waited = waited;
            }
        } tally{helper_cpu_s_, helper_wait_cpu_, cpu0, waited};
        try {
            while (true) {
                std::size_t g = next_.load(std::memory_order_relaxed);
                if (g >= total_) return;
                const std::size_t j = g / P_;
                if (j >= consumed_.load(std::memory_order_acquire) + 2) {
                    // Two blocks ahead: wait for the SGD thread to release block j - 2.
                    // Spin through a block's arithmetic, then sleep until release() wakes us (a
                    // timed wait, so that a Ctrl-C reaches us too).
                    const auto t0 = clock_now();
                    const double c0 = cpu_now();
                    const auto ready = [&] { return j < consumed_.load(std::memory_order_seq_cst) + 2; };
                    if (!spin_for(ready, std::chrono::microseconds(200))) {
                        std::unique_lock<std::mutex> lock(mutex_);
                        sleeping_.store(true, std::memory_order_seq_cst);
                        while (!ready() && !quit_.load(std::memory_order_seq_cst) && !stop_.stop_requested())
                            cv_.wait_for(lock, std::chrono::milliseconds(20));
                        sleeping_.store(false, std::memory_order_relaxed);
                    }
                    wait_helper_s_ += seconds_since(t0);
                    waited += cpu_now() - c0;
                    if (quit_.load(std::memory_order_seq_cst) || stop_.stop_requested()) return;
                    continue;
                }
                if (quit_.load(std::memory_order_relaxed) || stop_.stop_requested()) return;
                if (next_.compare_exchange_weak(g, g + 1, std::memory_order_acq_rel)) {
                    draw(g);
                    ++pieces_helper_;
                }
            }
        } catch (...) {
            error_ = std::current_exception();
            error_seen_.store(true, std::memory_order_release);
        }
    }

#ifdef MODELCOLLAPSE_DAE_STATS
    static std::chrono::steady_clock::time_point clock_now() { return std::chrono::steady_clock::now(); }
    static double seconds_since(std::chrono::steady_clock::time_point t0) {
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    static double cpu_now() {
        timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    }
#else
    static int clock_now() { return 0; }
    static double seconds_since(int) { return 0.0; }
    static double cpu_now() { return 0.0; }
#endif

    struct alignas(64) Counter {
        std::atomic<std::size_t> n{0};
    };
    const Target& tg_;
    std::uint64_t seed_, replica_;
    std::size_t n_steps_, B_, n_blocks_, P0_, P_, total_;
    StopToken stop_;
    SampleBlock buf_[2];
    alignas(64) std::atomic<std::size_t> next_{0};      // next piece of the sequence to hand out
    alignas(64) std::atomic<std::size_t> consumed_{0};  // blocks released by the SGD thread
    Counter done_[2];                                   // pieces drawn of the block in buffer k
    alignas(64) std::atomic<bool> quit_{false};
    std::atomic<bool> sleeping_{false};  // the helper waits on cv_ (release() must wake it)
    std::mutex mutex_;
    std::condition_variable cv_;
    std::atomic<bool> error_seen_{false};
    std::exception_ptr error_;  // written before error_seen_ is set (release), read after (acquire)
    PrefetchStats* out_;        // where the destructor reports what the threads did (may be null)
    PrefetchStats stats_;       // SGD thread's side
    alignas(64) std::size_t pieces_helper_ = 0;  // helper's side, read after the join
    double wait_helper_s_ = 0.0, helper_cpu_s_ = 0.0, helper_wait_cpu_ = 0.0;
#if defined(MODELCOLLAPSE_DAE_STATS) && defined(__linux__)
    SchedSample helper_sched_;
#endif
    std::thread helper_;  // last member: started once everything above is constructed
};

// Trains one replica for n_steps with samples drawn inside (streams of `replica`).
// W (r x d), b, v are updated in place. With `prefetch` the samples are drawn on a helper
// thread (BlockPrefetcher); the results are identical either way.
template <int RC>
void train_replica(const Trainer<RC>& tr, const Target& tg, std::uint64_t seed, std::uint64_t replica,
                   std::size_t n_steps, double* W, double& b, double* v, const Recorder& rec,
                   const StopToken& stop, bool uniform_t, bool prefetch = false,
                   PrefetchStats* stats = nullptr) {
    const std::size_t d = tg.d;
    const int r = tr.r();
    const std::size_t B = block_steps(d);
    std::size_t slot = 0;
    record(W, d, r, b, v, tg, rec, slot++);
    if (n_steps == 0) return;
    // A pipeline of one block has nothing to overlap.
    prefetch = prefetch && n_steps > B;
    SampleBlock own;
    std::vector<double> x1(B * d);  // x1 of the current block (data on the mixture path)
    std::unique_ptr<BlockPrefetcher> pf;
    if (prefetch) {
        try {
            pf = std::make_unique<BlockPrefetcher>(tg, seed, replica, n_steps, B, stop, stats);
        } catch (const std::system_error&) {
            // The helper thread could not start (thread or address-space limit): draw the
            // samples on this thread instead, which gives the same numbers.
            pf.reset();
        }
    }
    if (!pf) own.resize(B, d);
    for (std::size_t start = 0, j = 0; start < n_steps; start += B, ++j) {
        if (stop.stop_requested()) return;
        const std::size_t nb = std::min(B, n_steps - start);
        SampleBlock* blk = &own;
        if (pf) {
            blk = pf->acquire(j);
            if (blk == nullptr) return;  // stopped
        } else {
            fill_block(tg, seed, replica, start, nb, own);
            fill_x1(tg, seed, replica, start, nb, x1.data());
        }
        const double* un = blk->un.data();
        for (std::size_t q = 0; q < nb; ++q) {
            double* x1q = x1.data() + q * d;
            const double* x1p = x1q;
            if (tg.data != nullptr) {
                x1p = tg.data + data_row(tg, start + q, un[2 * q]) * d;
            } else {
                // raw normals: drawn above, or by either thread of the prefetcher
                const double* z = pf ? blk->x1.data() + q * d : x1q;
                std::size_t c = pick_component(tg.cum_weights, un[2 * q]);
                const double* mu = tg.means + c * d;
                const double* sc_ = tg.scales + c * d;
#pragma omp simd
                for (std::size_t i = 0; i < d; ++i) x1q[i] = mu[i] + sc_[i] * z[i];
            }
            tr.step(W, b, v, blk->x0.data() + q * d, x1p, uniform_t ? un[2 * q + 1] : 0.0);
            const std::size_t done = start + q + 1;
            if (done % rec.every == 0 || done == n_steps) record(W, d, r, b, v, tg, rec, slot++);
        }
        if (pf) pf->release(j);
    }
}

// The samples train_replica draws for steps [0, n_steps): x0, x1 (n x d) and t (n).
inline void draw_samples(const Target& tg, std::uint64_t seed, std::uint64_t replica, std::size_t n_steps,
                         double* x0, double* x1, double* t) {
    namespace R = modelcollapse::rng;
    const std::size_t d = tg.d;
    R::fill_normals(seed, R::make_stream(R::kDaeX0, replica), 0, n_steps * d, x0);
    std::vector<double> un(2 * n_steps);
    R::fill_uniforms(seed, R::make_stream(R::kDaeChoice, replica), 0, 2 * n_steps, un.data());
    if (tg.data == nullptr) R::fill_normals(seed, R::make_stream(R::kDaeX1, replica), 0, n_steps * d, x1);
    for (std::size_t s = 0; s < n_steps; ++s) {
        double* x1s = x1 + s * d;
        if (tg.data != nullptr) {
            std::size_t row = data_row(tg, s, un[2 * s]);
            std::copy(tg.data + row * d, tg.data + (row + 1) * d, x1s);
        } else {
            std::size_t c = pick_component(tg.cum_weights, un[2 * s]);
            for (std::size_t i = 0; i < d; ++i) x1s[i] = tg.means[c * d + i] + tg.scales[c * d + i] * x1s[i];
        }
        t[s] = un[2 * s + 1];
    }
}

// ---------------------------------------------------------------------------------------
// Generative sampler with the trained DAE drift (Euler-Maruyama on a given grid):
//   X <- X + D_k [kstar_k X + kappa_k (w / sqrt(d)) sigma(w^T X / sqrt(d) + p_k v)] + nz_k xi
// with X_0 ~ N(0, I_d). W is r x d. Per-step coefficients are given by the caller.
struct SamplerCoefs {
    std::vector<double> delta, kappa, kstar, noise, p;  // one per step
};

// sum_i a[i] b[i] in four interleaved lanes, combined as (l0 + l2) + (l1 + l3): a fixed
// order, so the value does not depend on the instruction set the loop is compiled for.
inline double dot_lanes(const double* a, const double* b, std::size_t d) {
    double lane[4] = {0.0, 0.0, 0.0, 0.0};
    std::size_t i = 0;
#ifdef MODELCOLLAPSE_VECTOR_EXT
    vec4d acc = {0.0, 0.0, 0.0, 0.0};
    for (; i + 4 <= d; i += 4) acc += MODELCOLLAPSE_LOAD4(a + i) * MODELCOLLAPSE_LOAD4(b + i);
    for (int l = 0; l < 4; ++l) lane[l] = acc[l];
#else
    for (; i + 4 <= d; i += 4)
        for (int l = 0; l < 4; ++l) lane[l] += a[i + l] * b[i + l];
#endif
    for (int l = 0; i < d; ++i, ++l) lane[l] += a[i] * b[i];
    return (lane[0] + lane[2]) + (lane[1] + lane[3]);
}

template <int RC>
MODELCOLLAPSE_HOT void sample_one(const double* W, std::size_t d, int r_rt, const double* v, Activation act,
                const SamplerCoefs& co, double* X, std::uint64_t seed, std::uint64_t index,
                const double* injected /* (steps+1) x d or null */, double* buf) {
    namespace R = modelcollapse::rng;
    const int r = RC > 0 ? RC : r_rt;
    const double sd = 1.0 / std::sqrt(static_cast<double>(d));
    if (injected)
        std::copy(injected, injected + d, X);
    else
        R::fill_normals(seed, R::make_stream(R::kDaeSamplerInit, index), 0, d, X);
    const std::size_t n = co.delta.size();
    for (std::size_t k = 0; k < n; ++k) {
        double coef[kMaxR];
        for (int j = 0; j < r; ++j) {
            const double a = dot_lanes(W + j * d, X, d);
            double s, ds;
            activate(act, a * sd + co.p[k] * v[j], s, ds);
            coef[j] = co.delta[k] * co.kappa[k] * sd * s;
        }
        const double lin = 1.0 + co.delta[k] * co.kstar[k];
        const double* xi = nullptr;
        if (co.noise[k] != 0.0) {
            if (injected) {
                xi = injected + (k + 1) * d;
            } else {
                R::fill_normals(seed, R::make_stream(R::kDaeSamplerNoise, index), k * d, d, buf);
                xi = buf;
            }
        }
        const double nz = co.noise[k];
        if (xi) {
#pragma omp simd
            for (std::size_t i = 0; i < d; ++i) X[i] = lin * X[i] + nz * xi[i];
        } else {
#pragma omp simd
            for (std::size_t i = 0; i < d; ++i) X[i] *= lin;
        }
        for (int j = 0; j < r; ++j) {
            const double* wj = W + j * d;
            const double c = coef[j];
#pragma omp simd
            for (std::size_t i = 0; i < d; ++i) X[i] += c * wj[i];
        }
    }
}

}  // namespace dae
}  // namespace modelcollapse
