// Microbenchmarks that split the time of the two score kernels that miss their goal (issue 16):
// the reverse sampler's batched mixture score (K = 8, isotropic, d = 2 and 64; mixture.hpp,
// detail::mixture_batch_diag_tiles) and the empirical score's fused d = 2 pass (empirical.hpp,
// detail::empirical_eval_point_2d). bench/bounds.py builds this file with the project's own
// flags (no -march: the same target_clones dispatch as the extension, so the x86-64-v3 clone
// runs where the CPU has it), loads it with ctypes and times each entry point with the other
// parts, interleaved.
//
// Each variant is a copy of the shipped loop with one piece taken out (the exponential's
// polynomial, the score pass, ...), so the difference is what that piece costs in place; the
// shipped kernel itself is timed too (`variant` 0) so that a copy that drifted from it shows
// as a ratio away from 1. mc_add_chain gives the core's clock (one dependent add a cycle).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <random>
#include <vector>

#include "modelcollapse/empirical.hpp"
#include "modelcollapse/mixture.hpp"

using namespace modelcollapse;

namespace {

enum Variant : int {
    kShipped = 0,   // mixture_eval_batch / empirical_eval_point as the library runs them
    kCopy = 1,      // the copy below with every piece (checks the copy against the shipped)
    kNoExp = 2,     // the exponential's polynomial and scaling left out (the weight is its argument)
    kLogits = 3,    // the logits pass alone (and their maximum)
    kNoScore = 4,   // logits and weights, no score pass
    kPrevious = 5,  // the kernel as shipped before this split (issue 16): logits two components x
                    // two coordinates, score sum_k w'_k (x_j - mu_kj) two coordinates at a time
};

constexpr std::size_t kB = 64, kK = 8;  // the sampler's chunk (kSamplerChunk) and the bench's K

// The previous logits pass (two components at a time above d = 2, even and odd coordinates in
// separate sums: four chains a component): kept here for the before/after ratio only.
template <std::size_t G>
MODELCOLLAPSE_ALWAYS_INLINE void previous_logits(const double* x, std::size_t B, std::size_t i, std::size_t d,
                                                 const std::size_t* act, const double* means, const double* hinv2,
                                                 const double* lc2, double* W, vec4d& M0, vec4d& M1) {
    vec4d q0[G], q1[G], p0[G], p1[G];
    for (std::size_t g = 0; g < G; ++g) q0[g] = q1[g] = p0[g] = p1[g] = vec4d{0.0, 0.0, 0.0, 0.0};
    std::size_t j = 0;
    for (; j + 2 <= d; j += 2) {
        const vec4d x0 = MODELCOLLAPSE_LOAD4(x + j * B + i), x1 = MODELCOLLAPSE_LOAD4(x + j * B + i + 4);
        const vec4d y0 = MODELCOLLAPSE_LOAD4(x + (j + 1) * B + i), y1 = MODELCOLLAPSE_LOAD4(x + (j + 1) * B + i + 4);
        for (std::size_t g = 0; g < G; ++g) {
            const double* mu = means + act[g] * d;
            const vec4d e0 = x0 - mu[j], e1 = x1 - mu[j], f0 = y0 - mu[j + 1], f1 = y1 - mu[j + 1];
            q0[g] += e0 * e0;
            q1[g] += e1 * e1;
            p0[g] += f0 * f0;
            p1[g] += f1 * f1;
        }
    }
    for (; j < d; ++j) {
        const vec4d x0 = MODELCOLLAPSE_LOAD4(x + j * B + i), x1 = MODELCOLLAPSE_LOAD4(x + j * B + i + 4);
        for (std::size_t g = 0; g < G; ++g) {
            const vec4d e0 = x0 - means[act[g] * d + j], e1 = x1 - means[act[g] * d + j];
            q0[g] += e0 * e0;
            q1[g] += e1 * e1;
        }
    }
    for (std::size_t g = 0; g < G; ++g) {
        const std::size_t k = act[g];
        const vec4d l0 = lc2[k] - (q0[g] + p0[g]) * hinv2[k * d], l1 = lc2[k] - (q1[g] + p1[g]) * hinv2[k * d];
        MODELCOLLAPSE_STORE4(W + 8 * g, l0);
        MODELCOLLAPSE_STORE4(W + 8 * g + 4, l1);
        M0 = l0 > M0 ? l0 : M0;
        M1 = l1 > M1 ? l1 : M1;
    }
}

template <std::size_t D, int V>
MODELCOLLAPSE_ALWAYS_INLINE void tiles(const SmoothedMixture& m, const double* x, double* score, double* W) {
    // A copy of detail::mixture_batch_diag_tiles<D, true> (isotropic; its logits and score
    // passes are called, not copied), with variant V's piece out; V = kPrevious: the kernel
    // before this version.
    const std::size_t d = D ? D : m.d, B = kB, A = m.active.size();
    const std::size_t* act = m.active.data();
    const double* means = m.means.data();
    const double* inv = m.inv_eig.data();
    const double* hinv2 = m.hinv2.data();
    const double* lc = V == kPrevious ? m.lc2.data() : m.lc2f.data();
    const double* lam = m.lam.data();
    constexpr double inf = std::numeric_limits<double>::infinity();
    double lo_s = -1020.0;
    if (V != kPrevious) asm("" : "+m"(lo_s));  // as shipped: the clamp as one max (mixture.hpp)
    const vec4d lo = vec4d{0.0, 0.0, 0.0, 0.0} + lo_s;
    for (std::size_t i = 0; i < B; i += 8) {
        vec4d M0 = {-inf, -inf, -inf, -inf}, M1 = M0;
        std::size_t a = 0;
        if (V == kPrevious) {
            if (d > 2)
                for (; a + 2 <= A; a += 2) previous_logits<2>(x, B, i, d, act + a, means, hinv2, lc, W + 8 * a, M0, M1);
            for (; a < A; ++a) previous_logits<1>(x, B, i, d, act + a, means, hinv2, lc, W + 8 * a, M0, M1);
        } else {
            for (; a + 4 <= A; a += 4) detail::tile_logits<4, true>(x, B, i, d, act + a, means, hinv2, lc, W + 8 * a, M0, M1);
            for (; a < A; ++a) detail::tile_logits<1, true>(x, B, i, d, act + a, means, hinv2, lc, W + 8 * a, M0, M1);
        }
        if (V == kLogits) {
            MODELCOLLAPSE_STORE4(score + i, M0);
            MODELCOLLAPSE_STORE4(score + i + 4, M1);
            continue;
        }
        vec4d S0 = {0.0, 0.0, 0.0, 0.0}, S1 = S0, T0 = S0, T1 = S0;
        for (std::size_t a = 0; a < A; ++a) {
            vec4d z0 = MODELCOLLAPSE_LOAD4(W + 8 * a) - M0, z1 = MODELCOLLAPSE_LOAD4(W + 8 * a + 4) - M1;
            z0 = z0 > lo ? z0 : lo;
            z1 = z1 > lo ? z1 : lo;
            if (V != kNoExp) {
                fastmath::exp2_weight4(z0);
                fastmath::exp2_weight4(z1);
            }
            if (V == kPrevious) {
                const double f = inv[act[a] * d];
                MODELCOLLAPSE_STORE4(W + 8 * a, z0 * f);
                MODELCOLLAPSE_STORE4(W + 8 * a + 4, z1 * f);
                S0 += z0;
                S1 += z1;
            } else {
                MODELCOLLAPSE_STORE4(W + 8 * a, z0);
                MODELCOLLAPSE_STORE4(W + 8 * a + 4, z1);
                const double lk = lam[act[a]];
                S0 += z0 * lk;
                S1 += z1 * lk;
                T0 += z0;
                T1 += z1;
            }
        }
        if (V == kNoScore) {
            MODELCOLLAPSE_STORE4(score + i, S0);
            MODELCOLLAPSE_STORE4(score + i + 4, S1);
            continue;
        }
        if (V != kPrevious) {
            const vec4d r0 = 1.0 / S0, r1 = 1.0 / S1;
            std::size_t j = 0;
            for (; j + 4 <= d; j += 4) detail::tile_score_iso<4>(x, B, i, j, d, A, act, means, W, T0, T1, r0, r1, score);
            for (; j < d; ++j) detail::tile_score_iso<1>(x, B, i, j, d, A, act, means, W, T0, T1, r0, r1, score);
            continue;
        }
        const vec4d r0 = -1.0 / S0, r1 = -1.0 / S1;
        std::size_t j = 0;
        for (; j + 2 <= d; j += 2) {
            const vec4d x0 = MODELCOLLAPSE_LOAD4(x + j * B + i), x1 = MODELCOLLAPSE_LOAD4(x + j * B + i + 4);
            const vec4d y0 = MODELCOLLAPSE_LOAD4(x + (j + 1) * B + i);
            const vec4d y1 = MODELCOLLAPSE_LOAD4(x + (j + 1) * B + i + 4);
            vec4d c0 = {0.0, 0.0, 0.0, 0.0}, c1 = c0, g0 = c0, g1 = c0;
            for (std::size_t a = 0; a < A; ++a) {
                const std::size_t k = act[a];
                const double m0 = means[k * d + j], m1 = means[k * d + j + 1];
                const vec4d w0 = MODELCOLLAPSE_LOAD4(W + 8 * a), w1 = MODELCOLLAPSE_LOAD4(W + 8 * a + 4);
                c0 += w0 * (x0 - m0);
                c1 += w1 * (x1 - m0);
                g0 += w0 * (y0 - m1);
                g1 += w1 * (y1 - m1);
            }
            MODELCOLLAPSE_STORE4(score + j * B + i, c0 * r0);
            MODELCOLLAPSE_STORE4(score + j * B + i + 4, c1 * r1);
            MODELCOLLAPSE_STORE4(score + (j + 1) * B + i, g0 * r0);
            MODELCOLLAPSE_STORE4(score + (j + 1) * B + i + 4, g1 * r1);
        }
        for (; j < d; ++j) {
            const vec4d x0 = MODELCOLLAPSE_LOAD4(x + j * B + i), x1 = MODELCOLLAPSE_LOAD4(x + j * B + i + 4);
            vec4d c0 = {0.0, 0.0, 0.0, 0.0}, c1 = c0;
            for (std::size_t a = 0; a < A; ++a) {
                const double mkj = means[act[a] * d + j];
                c0 += MODELCOLLAPSE_LOAD4(W + 8 * a) * (x0 - mkj);
                c1 += MODELCOLLAPSE_LOAD4(W + 8 * a + 4) * (x1 - mkj);
            }
            MODELCOLLAPSE_STORE4(score + j * B + i, c0 * r0);
            MODELCOLLAPSE_STORE4(score + j * B + i + 4, c1 * r1);
        }
    }
}

template <std::size_t D, int V>
MODELCOLLAPSE_HOT_FMA void tiles_reps(const SmoothedMixture& m, const double* x, double* s, double* W, long reps) {
    for (long r = 0; r < reps; ++r) tiles<D, V>(m, x, s, W);
}

struct MixtureCase {
    GaussianMixtureData data;
    SmoothedMixture sm;
    std::vector<double> x, s, W;
    std::unique_ptr<MixtureBatchWorkspace> ws;
};

// K = 8 isotropic components (means N(0, 9 I), variances 0.5 to 1.2), smoothed at t = 0.3,
// and 64 points N(0, 9 I) in structure-of-arrays form: the bench's sampler case, one chunk.
MixtureCase& mixture_case(std::size_t d) {
    static MixtureCase* cases[65] = {};
    if (!cases[d]) {
        auto* c = new MixtureCase;
        std::mt19937_64 g(1);
        std::normal_distribution<double> nd;
        std::vector<double> w(kK, 1.0 / kK), mu(kK * d), cov(kK);
        for (auto& v : mu) v = 3.0 * nd(g);
        for (std::size_t k = 0; k < kK; ++k) cov[k] = 0.5 + 0.1 * static_cast<double>(k);
        c->data = GaussianMixtureData::build(kK, d, CovKind::isotropic, w.data(), mu.data(), cov.data());
        c->sm = smooth(c->data, 0.3);
        c->x.resize(d * kB);
        for (auto& v : c->x) v = 3.0 * nd(g);
        c->s.resize(d * kB);
        c->W.resize(8 * kK);
        c->ws = std::make_unique<MixtureBatchWorkspace>(kK, d, kB, false);
        cases[d] = c;
    }
    return *cases[d];
}

template <std::size_t D>
void mixture_run(MixtureCase& c, int variant, long reps) {
    const double* x = c.x.data();
    double *s = c.s.data(), *W = c.W.data();
    switch (variant) {
        case kShipped:
            for (long r = 0; r < reps; ++r) mixture_eval_batch(c.sm, kB, x, s, nullptr, *c.ws);
            break;
        case kCopy: tiles_reps<D, kCopy>(c.sm, x, s, W, reps); break;
        case kNoExp: tiles_reps<D, kNoExp>(c.sm, x, s, W, reps); break;
        case kLogits: tiles_reps<D, kLogits>(c.sm, x, s, W, reps); break;
        case kNoScore: tiles_reps<D, kNoScore>(c.sm, x, s, W, reps); break;
        case kPrevious: tiles_reps<D, kPrevious>(c.sm, x, s, W, reps); break;
        default: break;
    }
}

// A copy of detail::empirical_eval_point_2d's pass (the score branch, first attempt: no
// query of the bench data needs the second), exponential optional.
template <bool EXP>
MODELCOLLAPSE_ALWAYS_INLINE void empirical_2d_copy(const SmoothedEmpirical& s, const double* y, double* score) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    const std::size_t n = s.data->n;
    const double g = s.g;
    const double* u0 = s.scaled.data();
    const double* u1 = u0 + n;
    const double q0 = g * y[0], q1 = g * y[1];
    const double slack = kEmpiricalCutoff * kLog2E;
    std::size_t p = detail::centers_lower_bound(u0, 0, n, q0);
    double Eref = inf;
    for (std::size_t i = p > kEmpiricalProbe ? p - kEmpiricalProbe : 0, stop = std::min(n, p + kEmpiricalProbe);
         i < stop; ++i) {
        const double e0 = q0 - u0[i], e1 = q1 - u1[i];
        const double Ei = e0 * e0 + e1 * e1;
        Eref = Ei < Eref ? Ei : Eref;
    }
    const double r = std::sqrt(Eref + slack);
    const std::size_t lo = detail::centers_lower_bound(u0, 0, p, q0 - r);
    const std::size_t hi = detail::centers_upper_bound(u0, p, n, q0 + r);
    constexpr double kCap = 1010.0;
    const double lim = Eref + kCap;
    double S = 0.0, A0 = 0.0, A1 = 0.0, Emin = inf;
    const double* c0 = u0 + lo;
    const double* c1 = u1 + lo;
    const std::size_t m = hi - lo;
#pragma omp simd reduction(+ : S, A0, A1) reduction(min : Emin)
    for (std::size_t i = 0; i < m; ++i) {
        const double e0 = q0 - c0[i];
        const double e1 = q1 - c1[i];
        const double Ei = e0 * e0 + e1 * e1;
        Emin = Ei < Emin ? Ei : Emin;
        const double z = Eref - (Ei < lim ? Ei : lim);
        const double wi = EXP ? fastmath::exp2_weight(z) : z;
        S += wi;
        A0 += wi * c0[i];
        A1 += wi * c1[i];
    }
    const double gS = g * S;
    score[0] = (A0 / gS - y[0]) / s.s2 + Emin * 0.0;
    score[1] = (A1 / gS - y[1]) / s.s2;
}

template <bool EXP>
MODELCOLLAPSE_HOT_FMA void empirical_copy_all(const SmoothedEmpirical& s, const double* y, double* score,
                                              std::size_t m) {
    for (std::size_t i = 0; i < m; ++i) empirical_2d_copy<EXP>(s, y + 2 * i, score + 2 * i);
}

struct EmpiricalCase {
    EmpiricalData data;
    std::vector<double> y, score;
};

// n = m = 2000 points N(0, I) in 2-D (the bench's empirical-score case at 1/25 of its pairs).
EmpiricalCase& empirical_case() {
    static EmpiricalCase* c = nullptr;
    if (!c) {
        c = new EmpiricalCase;
        std::mt19937_64 g(5);
        std::normal_distribution<double> nd;
        std::vector<double> x(2 * 2000);
        for (auto& v : x) v = nd(g);
        c->data = EmpiricalData::build(2000, 2, x.data());
        c->y.resize(2 * 2000);
        for (auto& v : c->y) v = nd(g);
        c->score.resize(2 * 2000);
    }
    return *c;
}

MODELCOLLAPSE_HOT_FMA void exp_stream(long reps) {
    static double x[512], y[512];
    for (int i = 0; i < 512; ++i) x[i] = -0.37 * (i % 37);
    for (long r = 0; r < reps; ++r) {
        asm volatile("" ::: "memory");  // every pass computes and stores again (no hoisting)
        for (int i = 0; i < 512; i += 4) {
            vec4d z = MODELCOLLAPSE_LOAD4(x + i);
            fastmath::exp2_weight4(z);
            MODELCOLLAPSE_STORE4(y + i, z);
        }
    }
}

}  // namespace

extern "C" {

// `reps` calls of the mixture score on one chunk of 64 points (d = 2 or 64), variant as above.
void mc_mixture_score(int d, int variant, long reps) {
    if (d == 2) mixture_run<2>(mixture_case(2), variant, reps);
    if (d == 64) mixture_run<0>(mixture_case(64), variant, reps);
}

// The empirical score of the 2000 queries at time t: 0 shipped (empirical_eval_point), 1 the
// copy of its d = 2 pass, 2 the copy without the exponential.
void mc_empirical_score(double t, int variant) {
    EmpiricalCase& c = empirical_case();
    const SmoothedEmpirical s = smooth(c.data, t);
    if (variant == 0) {
        EmpiricalWorkspace w(c.data.n, 2);
        for (std::size_t i = 0; i < 2000; ++i) empirical_eval_point(s, c.y.data() + 2 * i, c.score.data() + 2 * i, w);
    } else if (variant == 1) {
        empirical_copy_all<true>(s, c.y.data(), c.score.data(), 2000);
    } else {
        empirical_copy_all<false>(s, c.y.data(), c.score.data(), 2000);
    }
}

// The score array of the last mc_mixture_score call at d (d x 64, row j at 64 j): the shipped
// kernel's and the previous kernel's results compared in bounds.py.
const double* mc_mixture_last_score(int d) { return mixture_case(static_cast<std::size_t>(d)).s.data(); }

// n rounds of 8 independent ymm multiply-adds (kind 0), or of 6 multiply-adds and 6 additions
// interleaved (kind 1): the core's throughput for the score kernel's two instruction mixes (the
// score pass: multiply-adds only; the logits pass: a subtraction and a multiply-add a component
// and coordinate). Needs AVX2 and FMA: does nothing without them.
void mc_fp_peak(int kind, long n) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return;
    if (kind == 0) {
        for (long i = 0; i < n; ++i)
            asm volatile(
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm2\n\tvfmadd231pd %%ymm0, %%ymm1, %%ymm3\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm4\n\tvfmadd231pd %%ymm0, %%ymm1, %%ymm5\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm6\n\tvfmadd231pd %%ymm0, %%ymm1, %%ymm7\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm8\n\tvfmadd231pd %%ymm0, %%ymm1, %%ymm9"
                ::: "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9");
    } else {
        for (long i = 0; i < n; ++i)
            asm volatile(
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm2\n\tvaddpd %%ymm0, %%ymm3, %%ymm3\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm4\n\tvaddpd %%ymm0, %%ymm5, %%ymm5\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm6\n\tvaddpd %%ymm0, %%ymm7, %%ymm7\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm8\n\tvaddpd %%ymm0, %%ymm9, %%ymm9\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm10\n\tvaddpd %%ymm0, %%ymm11, %%ymm11\n\t"
                "vfmadd231pd %%ymm0, %%ymm1, %%ymm12\n\tvaddpd %%ymm0, %%ymm13, %%ymm13"
                ::: "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
                  "xmm13");
    }
#else
    (void)kind;
    (void)n;
#endif
}

// n iterations of four dependent integer adds: 4 n cycles of the core whatever its clock.
void mc_add_chain(long n) {
    long a = 0;
    for (long i = 0; i < n; ++i) asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(a));
}

// reps passes of exp2_weight4 over 512 independent arguments (stored): the exponential at its
// own throughput, with nothing around it.
void mc_exp_stream(long reps) { exp_stream(reps); }

}  // extern "C"
