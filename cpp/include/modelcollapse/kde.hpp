// Gaussian kernel density estimates: exact (every sample against every point) and binned
// (linear binning on a regular grid, then a truncated-kernel convolution).
//
// Density: f(z) = sum_i w_i N(z; x_i, H) with weights summing to 1 and kernel covariance H
// (the caller picks H with scipy's bandwidth rules). With H = L L^T (Cholesky) and
// y = L^{-1} x, N(z; x, H) = (2 pi)^{-d/2} / det(L) * exp(-|L^{-1} z - y|^2 / 2), so the
// exact kernel whitens samples and points once and its inner loop is a unit-stride squared
// distance and a vectorisable exponential over the samples.
#pragma once

#include <Eigen/Dense>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include <modelcollapse/fastmath.hpp>
#include <modelcollapse/parallel.hpp>

namespace modelcollapse {
namespace kde {

constexpr double kLog2Pi = 1.8378770664093454836;

// Cholesky factor L of the kernel covariance H (d x d, row-major); throws if H is not SPD.
inline Eigen::MatrixXd kernel_cholesky(const double* H, std::size_t d) {
    Eigen::MatrixXd Hm(d, d);
    for (std::size_t a = 0; a < d; ++a)
        for (std::size_t b = 0; b < d; ++b) Hm(a, b) = H[a * d + b];
    Eigen::LLT<Eigen::MatrixXd> llt(Hm);
    if (llt.info() != Eigen::Success)
        throw std::invalid_argument("bandwidth matrix is not symmetric positive definite");
    Eigen::MatrixXd L = llt.matrixL();
    for (std::size_t a = 0; a < d; ++a)
        if (!(L(a, a) > 0.0)) throw std::invalid_argument("bandwidth matrix is singular");
    return L;
}

// Rows of X (m x d, row-major) mapped to L^{-1} x, written column-major (d x m) into out
// so that coordinate k of every point is contiguous.
inline void whiten_soa(const Eigen::MatrixXd& L, const double* X, std::size_t m, std::size_t d,
                       double* out) {
    std::vector<double> y(d);
    for (std::size_t i = 0; i < m; ++i) {
        const double* x = X + i * d;
        for (std::size_t a = 0; a < d; ++a) {  // forward substitution
            double s = x[a];
            for (std::size_t b = 0; b < a; ++b) s -= L(a, b) * y[b];
            y[a] = s / L(a, a);
        }
        for (std::size_t a = 0; a < d; ++a) out[a * m + i] = y[a];
    }
}

// log of the Gaussian normalising constant (2 pi)^{-d/2} / det(L).
inline double log_norm(const Eigen::MatrixXd& L) {
    double s = -0.5 * static_cast<double>(L.rows()) * kLog2Pi;
    for (Eigen::Index a = 0; a < L.rows(); ++a) s -= std::log(L(a, a));
    return s;
}

// The portable (SSE2) build cannot vectorise the exponential, so on x86 the kernel sums
// also exist compiled for AVX2 + FMA and are picked at run time when the CPU has them.
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define MC_KDE_X86_DISPATCH 1
#define MC_KDE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define MC_KDE_ALWAYS_INLINE inline
#endif

// Bit casts without address-taken locals (those become per-lane arrays in an omp simd loop
// and stop the vectoriser).
#if defined(__GNUC__) || defined(__clang__)
MC_KDE_ALWAYS_INLINE std::uint64_t bits_of(double d) { return __builtin_bit_cast(std::uint64_t, d); }
MC_KDE_ALWAYS_INLINE double double_of(std::uint64_t b) { return __builtin_bit_cast(double, b); }
#else
inline std::uint64_t bits_of(double d) { return fastmath::double_to_bits(d); }
inline double double_of(std::uint64_t b) { return fastmath::bits_to_double(b); }
#endif

// exp(x) for x <= 0: the algorithm of fastmath::exp_nonpositive (same reduction, same
// degree-13 polynomial, identical results), restated here as always-inline so that GCC
// inlines it before the OpenMP simd lowering inside the AVX2 clones below (the out-of-line
// call otherwise blocks vectorisation there).
MC_KDE_ALWAYS_INLINE double exp_nonpositive_inl(double x) {
    constexpr double kLog2e = 1.4426950408889634074;
    constexpr double kLn2Hi = 6.93147180369123816490e-01;
    constexpr double kLn2Lo = 1.90821492927058770002e-10;
    constexpr double kShifter = 6755399441055744.0;
    double xc = x > -708.0 ? x : -708.0;  // maxsd: no branch
    double t = xc * kLog2e + kShifter;
    double kf = t - kShifter;
    std::int64_t k = static_cast<std::int64_t>(bits_of(t) - bits_of(kShifter));
    double r = (xc - kf * kLn2Hi) - kf * kLn2Lo;
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
    double scale = double_of(static_cast<std::uint64_t>(k + 1023) << 52);
    double y = p * scale;
    return y * static_cast<double>(x >= -708.0);  // 0 below -708, as fastmath
}

// Sum over samples of w_i exp(-|y_i - z|^2 / 2) for one whitened point z. d = 1 and 2 have
// their own loops; any other d processes the samples in blocks of 256, accumulating
// squared distances one coordinate at a time (unit stride), then exponentiating. The body
// is a macro because the omp simd loops must sit in the function that carries the target
// attribute (they are lowered before inlining).
#define MC_KDE_DEFINE_KERNEL_SUM(NAME, ATTR)                                                       \
    ATTR inline double NAME##_1(const double* __restrict Y, const double* __restrict w,            \
                                std::size_t n, double z0) {                                        \
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                  \
        std::size_t i = 0;                                                                         \
        for (; i + 8 <= n; i += 8)                                                                 \
            for (int l = 0; l < 8; ++l) {                                                          \
                double u = Y[i + l] - z0;                                                          \
                acc[l] += w[i + l] * exp_nonpositive_inl(-0.5 * u * u);                            \
            }                                                                                      \
        double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])); \
        for (; i < n; ++i) {                                                                       \
            double u = Y[i] - z0;                                                                  \
            s += w[i] * exp_nonpositive_inl(-0.5 * u * u);                                         \
        }                                                                                          \
        return s;                                                                                  \
    }                                                                                              \
    ATTR inline double NAME##_2(const double* __restrict Y, const double* __restrict w,            \
                                std::size_t n, double z0, double z1) {                             \
        const double* __restrict Y0 = Y;                                                           \
        const double* __restrict Y1 = Y + n;                                                       \
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                  \
        std::size_t i = 0;                                                                         \
        for (; i + 8 <= n; i += 8)                                                                 \
            for (int l = 0; l < 8; ++l) {                                                          \
                double u = Y0[i + l] - z0, v = Y1[i + l] - z1;                                     \
                acc[l] += w[i + l] * exp_nonpositive_inl(-0.5 * (u * u + v * v));                  \
            }                                                                                      \
        double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])); \
        for (; i < n; ++i) {                                                                       \
            double u = Y0[i] - z0, v = Y1[i] - z1;                                                 \
            s += w[i] * exp_nonpositive_inl(-0.5 * (u * u + v * v));                               \
        }                                                                                          \
        return s;                                                                                  \
    }                                                                                              \
    ATTR inline double NAME##_exp(const double* __restrict q, const double* __restrict w,          \
                                  std::size_t len) {                                               \
        double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                  \
        std::size_t i = 0;                                                                         \
        for (; i + 8 <= len; i += 8)                                                               \
            for (int l = 0; l < 8; ++l) acc[l] += w[i + l] * exp_nonpositive_inl(-0.5 * q[i + l]); \
        double s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])); \
        for (; i < len; ++i) s += w[i] * exp_nonpositive_inl(-0.5 * q[i]);                         \
        return s;                                                                                  \
    }                                                                                              \
    ATTR inline double NAME(const double* Y, const double* w, std::size_t n, std::size_t d,        \
                            const double* z, double* buf) {                                        \
        if (d == 1) return NAME##_1(Y, w, n, z[0]);                                                \
        if (d == 2) return NAME##_2(Y, w, n, z[0], z[1]);                                          \
        constexpr std::size_t kBlock = 256;                                                        \
        double s = 0.0;                                                                            \
        for (std::size_t b = 0; b < n; b += kBlock) {                                              \
            const std::size_t len = std::min(n, b + kBlock) - b;                                   \
            for (std::size_t i = 0; i < len; ++i) buf[i] = 0.0;                                    \
            for (std::size_t a = 0; a < d; ++a) {                                                  \
                const double* Ya = Y + a * n + b;                                                  \
                const double za = z[a];                                                            \
                for (std::size_t i = 0; i < len; ++i) {                                            \
                    double u = Ya[i] - za;                                                         \
                    buf[i] += u * u;                                                               \
                }                                                                                  \
            }                                                                                      \
            s += NAME##_exp(buf, w + b, len);                                                      \
        }                                                                                          \
        return s;                                                                                  \
    }

MC_KDE_DEFINE_KERNEL_SUM(kernel_sum_portable, )

#ifdef MC_KDE_X86_DISPATCH
MC_KDE_DEFINE_KERNEL_SUM(kernel_sum_avx2, __attribute__((target("avx2,fma"))))
inline bool cpu_has_avx2_fma() {
    static const bool ok = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    }();
    return ok;
}
#endif

inline double kernel_sum(const double* Y, const double* w, std::size_t n, std::size_t d, const double* z,
                         double* buf) {
#ifdef MC_KDE_X86_DISPATCH
    if (cpu_has_avx2_fma()) return kernel_sum_avx2(Y, w, n, d, z, buf);
#endif
    return kernel_sum_portable(Y, w, n, d, z, buf);
}

// Exact KDE at m points. samples (n x d), weights (n, summing to 1), H (d x d), points
// (m x d), all row-major; out (m).
inline void exact(const double* samples, const double* weights, std::size_t n, std::size_t d,
                  const double* H, const double* points, std::size_t m, double* out, int threads,
                  const PollFn& poll = PollFn()) {
    if (n == 0 || m == 0) {
        std::fill(out, out + m, 0.0);
        return;
    }
    const Eigen::MatrixXd L = kernel_cholesky(H, d);
    const double norm = std::exp(log_norm(L));
    std::vector<double> Y(n * d), Z(m * d);
    whiten_soa(L, samples, n, d, Y.data());
    // Points whitened row-major: transpose the SoA result.
    {
        std::vector<double> tmp(m * d);
        whiten_soa(L, points, m, d, tmp.data());
        for (std::size_t j = 0; j < m; ++j)
            for (std::size_t a = 0; a < d; ++a) Z[j * d + a] = tmp[a * m + j];
    }
    const double* Yp = Y.data();
    const double* Zp = Z.data();
    parallel_for(
        m, 16, threads,
        [&](std::size_t b, std::size_t e, const StopToken& stop) {
            std::vector<double> buf(256);
            for (std::size_t j = b; j < e; ++j) {
                if (stop.stop_requested()) return;
                out[j] = norm * kernel_sum(Yp, weights, n, d, Zp + j * d, buf.data());
            }
        },
        poll);
}

// One axis of a regular output grid: points start + j * step, j = 0..count-1. The binning
// grid refines it `refine` times and extends it by `pad` fine cells on each side.
struct Axis {
    double start = 0.0;
    double step = 1.0;
    std::size_t count = 1;
    std::size_t refine = 1;
    std::size_t pad = 0;
    double fine_step() const { return step / static_cast<double>(refine); }
    double fine_start() const { return start - static_cast<double>(pad) * fine_step(); }
    std::size_t fine_count() const { return (count - 1) * refine + 1 + 2 * pad; }
};

// Linear binning of samples (n x d, d = 1 or 2) with weights onto the fine grid given by
// axes; samples whose cell is not inside the fine grid are dropped (the caller extends the
// grid past the kernel's truncation radius, so they cannot reach an output point).
inline std::vector<double> linear_binning(const double* samples, const double* weights, std::size_t n,
                                          std::size_t d, const Axis* axes) {
    const std::size_t n0 = axes[0].fine_count();
    const std::size_t n1 = d == 2 ? axes[1].fine_count() : 1;
    std::vector<double> B(n0 * n1, 0.0);
    const double s0 = axes[0].fine_start(), h0 = axes[0].fine_step();
    const double s1 = d == 2 ? axes[1].fine_start() : 0.0, h1 = d == 2 ? axes[1].fine_step() : 1.0;
    for (std::size_t i = 0; i < n; ++i) {
        double p0 = (samples[i * d] - s0) / h0;
        if (!(p0 >= 0.0) || !(p0 <= static_cast<double>(n0 - 1))) continue;
        std::size_t j0 = std::min(static_cast<std::size_t>(p0), n0 > 1 ? n0 - 2 : 0);
        double t0 = p0 - static_cast<double>(j0);
        if (d == 1) {
            B[j0] += weights[i] * (1.0 - t0);
            if (n0 > 1) B[j0 + 1] += weights[i] * t0;
            continue;
        }
        double p1 = (samples[i * d + 1] - s1) / h1;
        if (!(p1 >= 0.0) || !(p1 <= static_cast<double>(n1 - 1))) continue;
        std::size_t j1 = std::min(static_cast<std::size_t>(p1), n1 > 1 ? n1 - 2 : 0);
        double t1 = p1 - static_cast<double>(j1);
        const double w = weights[i];
        B[j0 * n1 + j1] += w * (1.0 - t0) * (1.0 - t1);
        if (n1 > 1) B[j0 * n1 + j1 + 1] += w * (1.0 - t0) * t1;
        if (n0 > 1) {
            B[(j0 + 1) * n1 + j1] += w * t0 * (1.0 - t1);
            if (n1 > 1) B[(j0 + 1) * n1 + j1 + 1] += w * t0 * t1;
        }
    }
    return B;
}

// 1-D kernel exp(-(o h)^2 / (2 var)) for |o| <= pad, zero where (o h)^2 / var > R^2.
inline std::vector<double> kernel_1d(double var, double h, std::size_t pad, double R, double scale) {
    std::vector<double> k(2 * pad + 1);
    for (std::size_t j = 0; j < k.size(); ++j) {
        double u = (static_cast<double>(j) - static_cast<double>(pad)) * h;
        double q = u * u / var;
        k[j] = q > R * R ? 0.0 : scale * std::exp(-0.5 * q);
    }
    return k;
}

// Binned KDE on the regular grid given by axes (d = 1 or 2); out has prod(count) entries
// (row-major, axis 0 slowest). R is the truncation radius in whitened units: kernel values
// with (u^T H^{-1} u) > R^2 are dropped. Each axis' pad must be >= R sqrt(H_kk) / fine_step.
inline void binned(const double* samples, const double* weights, std::size_t n, std::size_t d,
                   const double* H, const Axis* axes, double R, double* out, int threads,
                   const PollFn& poll = PollFn()) {
    if (d != 1 && d != 2) throw std::invalid_argument("binned KDE supports d = 1 or 2");
    const Eigen::MatrixXd L = kernel_cholesky(H, d);
    const double norm = std::exp(log_norm(L));
    for (std::size_t a = 0; a < d; ++a)
        if (static_cast<double>(axes[a].pad) * axes[a].fine_step() < R * std::sqrt(H[a * d + a]) * (1 - 1e-12))
            throw std::invalid_argument("binned KDE: padding smaller than the truncation radius");
    const std::vector<double> B = linear_binning(samples, weights, n, d, axes);
    const Axis& A0 = axes[0];
    if (d == 1) {
        const std::vector<double> k = kernel_1d(H[0], A0.fine_step(), A0.pad, R, norm);
        const std::size_t K = k.size();
        parallel_for(
            A0.count, 64, threads,
            [&](std::size_t b, std::size_t e, const StopToken&) {
                for (std::size_t j = b; j < e; ++j) {
                    const double* Bj = B.data() + j * A0.refine;  // fine index j*r + o, o in [0, 2 pad]
                    double s = 0.0;
#pragma omp simd reduction(+ : s)
                    for (std::size_t o = 0; o < K; ++o) s += Bj[o] * k[o];
                    out[j] = s;
                }
            },
            poll);
        return;
    }
    const Axis& A1 = axes[1];
    const std::size_t n1 = A1.fine_count(), n0 = A0.fine_count();
    if (H[1] == 0.0 && H[2] == 0.0) {
        // Diagonal bandwidth: separable (box truncation, which contains the ellipse).
        const std::vector<double> k0 = kernel_1d(H[0], A0.fine_step(), A0.pad, R, 1.0);
        const std::vector<double> k1 = kernel_1d(H[3], A1.fine_step(), A1.pad, R, norm);
        const std::size_t K0 = k0.size(), K1 = k1.size(), m1 = A1.count;
        // Pass 1: along axis 1 at the output columns, for every fine row.
        std::vector<double> T(n0 * m1);
        parallel_for(
            n0, 32, threads,
            [&](std::size_t b, std::size_t e, const StopToken& stop) {
                for (std::size_t i = b; i < e && !stop.stop_requested(); ++i)
                    for (std::size_t j = 0; j < m1; ++j) {
                        const double* Bij = B.data() + i * n1 + j * A1.refine;
                        double s = 0.0;
#pragma omp simd reduction(+ : s)
                        for (std::size_t o = 0; o < K1; ++o) s += Bij[o] * k1[o];
                        T[i * m1 + j] = s;
                    }
            },
            poll);
        // Pass 2: along axis 0 at the output rows.
        parallel_for(
            A0.count, 8, threads,
            [&](std::size_t b, std::size_t e, const StopToken&) {
                for (std::size_t j0 = b; j0 < e; ++j0) {
                    double* row = out + j0 * m1;
                    std::fill(row, row + m1, 0.0);
                    for (std::size_t o = 0; o < K0; ++o) {
                        const double c = k0[o];
                        if (c == 0.0) continue;
                        const double* Trow = T.data() + (j0 * A0.refine + o) * m1;
#pragma omp simd
                        for (std::size_t j = 0; j < m1; ++j) row[j] += c * Trow[j];
                    }
                }
            },
            poll);
        return;
    }
    // Full bandwidth: direct 2-D convolution over the truncation ellipse.
    const double h0 = A0.fine_step(), h1 = A1.fine_step();
    const std::size_t K0 = 2 * A0.pad + 1, K1 = 2 * A1.pad + 1;
    const Eigen::MatrixXd P = (L * L.transpose()).inverse();
    std::vector<double> k2(K0 * K1);
    std::vector<std::size_t> lo(K0, K1), hi(K0, 0);  // nonzero column range per kernel row
    for (std::size_t a = 0; a < K0; ++a) {
        double u = (static_cast<double>(a) - static_cast<double>(A0.pad)) * h0;
        for (std::size_t b = 0; b < K1; ++b) {
            double v = (static_cast<double>(b) - static_cast<double>(A1.pad)) * h1;
            double q = P(0, 0) * u * u + 2.0 * P(0, 1) * u * v + P(1, 1) * v * v;
            double val = q > R * R ? 0.0 : norm * std::exp(-0.5 * q);
            k2[a * K1 + b] = val;
            if (val != 0.0) {
                lo[a] = std::min(lo[a], b);
                hi[a] = std::max(hi[a], b + 1);
            }
        }
    }
    const std::size_t m1 = A1.count;
    parallel_for(
        A0.count, 2, threads,
        [&](std::size_t b, std::size_t e, const StopToken& stop) {
            for (std::size_t j0 = b; j0 < e && !stop.stop_requested(); ++j0)
                for (std::size_t j1 = 0; j1 < m1; ++j1) {
                    double s = 0.0;
                    for (std::size_t a = 0; a < K0; ++a) {
                        if (lo[a] >= hi[a]) continue;
                        const double* Brow = B.data() + (j0 * A0.refine + a) * n1 + j1 * A1.refine;
                        const double* krow = k2.data() + a * K1;
#pragma omp simd reduction(+ : s)
                        for (std::size_t c = lo[a]; c < hi[a]; ++c) s += Brow[c] * krow[c];
                    }
                    out[j0 * m1 + j1] = s;
                }
        },
        poll);
}

}  // namespace kde
}  // namespace modelcollapse
