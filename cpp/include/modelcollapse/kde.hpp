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
#include <atomic>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>
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

// Sum over samples of w_i exp(-|y_i - z|^2 / 2) for one whitened point z. d = 1 and 2 have
// their own loops; any other d processes the samples in blocks of 256, accumulating
// squared distances one coordinate at a time (unit stride), then exponentiating. Eight
// accumulators summed in a fixed order: the result does not depend on the vector width.
// The helpers are forced inline so that each clone of kernel_sum (MODELCOLLAPSE_HOT_FMA,
// fastmath.hpp) vectorises them, exponential included, for its own instruction set.
MODELCOLLAPSE_ALWAYS_INLINE double sum_acc8(const double* acc) {
    return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

MODELCOLLAPSE_ALWAYS_INLINE double kernel_sum_1(const double* __restrict Y, const double* __restrict w, std::size_t n,
                                                double z0) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) {
            double u = Y[i + l] - z0;
            acc[l] += w[i + l] * fastmath::exp_flush(-0.5 * u * u);
        }
    double s = sum_acc8(acc);
    for (; i < n; ++i) {
        double u = Y[i] - z0;
        s += w[i] * fastmath::exp_flush(-0.5 * u * u);
    }
    return s;
}

MODELCOLLAPSE_ALWAYS_INLINE double kernel_sum_2(const double* __restrict Y, const double* __restrict w, std::size_t n,
                                                double z0, double z1) {
    const double* __restrict Y0 = Y;
    const double* __restrict Y1 = Y + n;
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; ++l) {
            double u = Y0[i + l] - z0, v = Y1[i + l] - z1;
            acc[l] += w[i + l] * fastmath::exp_flush(-0.5 * (u * u + v * v));
        }
    double s = sum_acc8(acc);
    for (; i < n; ++i) {
        double u = Y0[i] - z0, v = Y1[i] - z1;
        s += w[i] * fastmath::exp_flush(-0.5 * (u * u + v * v));
    }
    return s;
}

// Sum of w_i exp(-q_i / 2) over one block of squared distances q.
MODELCOLLAPSE_ALWAYS_INLINE double kernel_sum_exp(const double* __restrict q, const double* __restrict w,
                                                  std::size_t len) {
    double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::size_t i = 0;
    for (; i + 8 <= len; i += 8)
        for (int l = 0; l < 8; ++l) acc[l] += w[i + l] * fastmath::exp_flush(-0.5 * q[i + l]);
    double s = sum_acc8(acc);
    for (; i < len; ++i) s += w[i] * fastmath::exp_flush(-0.5 * q[i]);
    return s;
}

// Y: whitened samples, column-major (d x n); z: one whitened point; buf: 256 doubles.
MODELCOLLAPSE_HOT_FMA double kernel_sum(const double* Y, const double* w, std::size_t n, std::size_t d,
                                        const double* z, double* buf) {
    if (d == 1) return kernel_sum_1(Y, w, n, z[0]);
    if (d == 2) return kernel_sum_2(Y, w, n, z[0], z[1]);
    constexpr std::size_t kBlock = 256;
    double s = 0.0;
    for (std::size_t b = 0; b < n; b += kBlock) {
        const std::size_t len = std::min(n, b + kBlock) - b;
        for (std::size_t i = 0; i < len; ++i) buf[i] = 0.0;
        for (std::size_t a = 0; a < d; ++a) {
            const double* Ya = Y + a * n + b;
            const double za = z[a];
            for (std::size_t i = 0; i < len; ++i) {
                double u = Ya[i] - za;
                buf[i] += u * u;
            }
        }
        s += kernel_sum_exp(buf, w + b, len);
    }
    return s;
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

// ----------------------------------------------------------------------------- exact, on a grid
// Exact KDE on a regular grid (d = 1: one axis; d = 2: a tensor grid, axis 0 = rows) without
// an exponential per (sample, point) pair. Along an axis with whitened spacing h, the kernel
// values t_k = exp(-(v + k h)^2 / 2) satisfy t_{k+1} = t_k r_k, r_{k+1} = r_k q with
// r_k = exp(-(v + k h) h - h^2 / 2) and q = exp(-h^2), so a sample's contribution to a run of
// grid points costs two multiplications per point after a few exact exponentials.
//
// Accuracy. Each step adds about one ulp of relative error to r and so about k^2 / 4 ulp to
// t after k steps; the errors in the arguments of r and q add at most about
// (largest exponent) * ulp. Every run is restarted from exact exponentials after at most
// kGridRestart steps (1-D: 64 strides of 16; 2-D: 64 rows), so every term carries a relative
// error below ~2e-13, and since all terms are positive so does their sum. Terms are only
// computed where the exponent Q/2 = |L^{-1}(z - x)|^2 / 2 is at most kGridCutoff = 690
// (value >= 1.8e-300); the dropped terms sum to at most 1.8e-300 (weights sum to 1), so the
// result agrees with the all-pairs sum to 1e-10 relative wherever f(z) / norm >= 1.8e-290,
// i.e. everywhere except where the density itself is within 10 orders of magnitude of
// double's underflow (where scipy's all-pairs sum is itself dominated by subnormal terms).
// A recurrence never starts from a value below the cutoff, so no precision is lost to
// subnormals.


// Threads: the samples are cut into a fixed number of parts (a function of n and the grid
// size only), each part accumulates into its own grid buffer in sample order, and the
// buffers are summed in part order: results are identical for any thread count.
constexpr double kGridCutoff = 690.0;
constexpr std::size_t kGridRestart = 64;

// One regular axis of an exact-grid evaluation: coordinates start + j * step, j < count.
struct GridAxis {
    double start = 0.0;
    double step = 1.0;
    std::size_t count = 1;
    double at(std::size_t j) const { return start + static_cast<double>(j) * step; }
};

// Index range [lo, hi) of the axis points within [c - half, c + half] (empty when none).
// inv_step = 1 / ax.step (a product instead of two divisions: this runs once per row).
inline void axis_window(const GridAxis& ax, double inv_step, double c, double half, std::size_t& lo,
                        std::size_t& hi) {
    const double u = (c - ax.start) * inv_step, v = half * inv_step;
    const double fl = std::ceil(u - v);
    const double fh = std::floor(u + v);
    const double cnt = static_cast<double>(ax.count);
    if (!(fh >= 0.0) || !(fl <= cnt - 1.0) || fl > fh) {
        lo = hi = 0;
        return;
    }
    lo = fl <= 0.0 ? 0 : static_cast<std::size_t>(fl);
    hi = fh >= cnt - 1.0 ? ax.count : static_cast<std::size_t>(fh) + 1;
}

// 1-D: acc[j] += w_i exp(-((start + j step - x_i) / sigma)^2 / 2) for samples [b, e), over
// the window of points with exponent <= kGridCutoff (all values there are >= e^-690, so
// the run may rise and fall: relative errors only add up). kGridLanes lanes with stride
// kGridLanes, restarted from exact exponentials every kGridRestart strides. Each lane's value
// is a product chained along the grid (t <- t r, r <- r q: 3-cycle multiplications), so the
// lanes are the independent chains in flight: 8 lanes (two AVX2 vectors) allow 8 pairs per
// multiplication latency, which is also what the loop's three FP operations a pair take on
// Zen 3's two multiply pipes, and measured 1.2x slower than 16 lanes, which leave the pipes
// the only bound (bench/kde_chains.cpp; docs/metrics.md, "Performance"). 32 lanes spill.
constexpr int kGridLanes = 16;

MODELCOLLAPSE_HOT_FMA void grid_1d(const double* x, const double* w, std::size_t b, std::size_t e, double sigma,
                                   const GridAxis& ax, double* __restrict acc, const StopToken& stop) {
    constexpr int NL = kGridLanes;
    const double h = ax.step / sigma, vmax = std::sqrt(2.0 * kGridCutoff);
    const double qL = std::exp(-double(NL * NL) * h * h), isig = 1.0 / sigma;
    const std::size_t span = NL * kGridRestart;
    for (std::size_t i = b; i < e; ++i) {
        if ((i & 255) == 0 && stop.stop_requested()) return;
        const double wi = w[i], xi = x[i];
        if (wi == 0.0) continue;
        std::size_t lo, hi;
        axis_window(ax, 1.0 / ax.step, xi, vmax * sigma, lo, hi);
        const std::size_t count = hi - lo;
        double* __restrict a = acc + lo;
        for (std::size_t base = 0; base < count; base += span) {
            double t[NL], r[NL];
            const double jb = static_cast<double>(lo + base);
#pragma omp simd
            for (int l = 0; l < NL; ++l) {
                const double v = (ax.start + (jb + l) * ax.step - xi) * isig;
                t[l] = fastmath::exp_flush(-0.5 * v * v);
                r[l] = fastmath::exp_flush(-double(NL) * h * (v + 0.5 * double(NL) * h));
            }
            const std::size_t end = std::min(count, base + span);
            std::size_t k = base;
            for (; k + NL <= end; k += NL) {
#pragma omp simd
                for (int l = 0; l < NL; ++l) {
                    a[k + l] += wi * t[l];
                    t[l] *= r[l];
                    r[l] *= qL;
                }
            }
            for (int l = 0; k + static_cast<std::size_t>(l) < end; ++l) a[k + l] += wi * t[l];
        }
    }
}

// 2-D, H = L L^T: Q(z - x) = (da / s0)^2 + ((db - kappa da) / s1)^2 with s0 = L00,
// kappa = L10 / L00, s1 = L11. From the row nearest the sample, rows (axis 0) are swept
// outwards, up then down; on each row the values T_j and the ratios rho_j = T_{next row, j}
// / T_{row, j} are kept on the window of columns where Q / 2 <= kGridCutoff, and rho_j is
// multiplied by qa = exp(-P00 ha^2) (the constant second difference) each row. Going
// outwards the windows shrink, except for a shift of kappa ha per row, so only the first
// row of each sweep, the few columns entering the window and every kGridRestart-th row
// need exact exponentials. The helpers are forced inline into grid_2d's clones.

// Exact T and rho on the columns [f0, f1) of the row at offset da from the sample.
MODELCOLLAPSE_ALWAYS_INLINE void grid_2d_fresh(std::size_t f0, std::size_t f1, const GridAxis& B, double xb,
                                               double kappa, double da, double ya2, double ca, double dp, double is1,
                                               double* __restrict T, double* __restrict rho) {
    if (f0 >= f1) return;
    const int nf = static_cast<int>(f1 - f0);  // int counter: AVX2 has no packed size_t -> double conversion
    const double jf = static_cast<double>(f0);
    double* __restrict Tf = T + f0;
    double* __restrict rf = rho + f0;
#pragma omp simd
    for (int k = 0; k < nf; ++k) {
        const double eb = (B.start + (jf + k) * B.step - xb) - kappa * da;
        const double yb = eb * is1;
        Tf[k] = fastmath::exp_flush(-0.5 * (ya2 + yb * yb));
        rf[k] = fastmath::exp_flush(-0.5 * (ca + dp * (dp - 2.0 * eb) * is1 * is1));
    }
}

// acc[j] += wi T[j] on [j0, j1); with advance, then T *= rho, rho *= qa.
MODELCOLLAPSE_ALWAYS_INLINE void grid_2d_row(std::size_t j0, std::size_t j1, double wi, double qa, bool advance,
                                             double* __restrict a, double* __restrict T, double* __restrict rho) {
    if (advance) {
#pragma omp simd
        for (std::size_t j = j0; j < j1; ++j) {
            a[j] += wi * T[j];
            T[j] *= rho[j];
            rho[j] *= qa;
        }
    } else {
#pragma omp simd
        for (std::size_t j = j0; j < j1; ++j) a[j] += wi * T[j];
    }
}

// Sweeps count rows from row rs upwards (or downwards), two rows per pass over T and rho.
MODELCOLLAPSE_ALWAYS_INLINE void grid_2d_sweep(double wi, double xa, double xb, std::size_t rs, std::size_t count,
                                               bool down, double s0, double kappa, double s1, const GridAxis& A,
                                               const GridAxis& B, double* __restrict acc, double* __restrict T,
                                               double* __restrict rho) {
    const double vmax2 = 2.0 * kGridCutoff, is0 = 1.0 / s0, is1 = 1.0 / s1, ibs = 1.0 / B.step;
    const double hs = down ? -A.step : A.step;  // signed row step
    const double dp = kappa * hs;               // shift of the row centre per row
    const double qa = std::exp(-A.step * A.step * (is0 * is0 + kappa * kappa * is1 * is1));
    const std::size_t m1 = B.count;
    // window [lo, hi) of the row at sweep offset c, and its da
    auto row_of = [&](std::size_t c) { return down ? rs - c : rs + c; };
    std::size_t vlo = 0, vhi = 0, since = 0;  // valid columns, rows since the last restart
    std::size_t c = 0, lo = 0, hi = 0;
    double da = 0.0;
    auto window = [&](std::size_t cc, std::size_t& l, std::size_t& h, double& d) {
        l = h = 0;
        if (cc >= count) return;
        d = A.at(row_of(cc)) - xa;
        const double ya = d * is0, rem = vmax2 - ya * ya;
        if (rem > 0.0) axis_window(B, ibs, xb + kappa * d, s1 * std::sqrt(rem), l, h);
    };
    window(0, lo, hi, da);
    while (lo < hi) {  // going outwards: once a row is empty, every further row is too
        const double ya2 = da * da * is0 * is0, ca = hs * (2.0 * da + hs) * is0 * is0;
        std::size_t klo = std::max(lo, vlo), khi = std::min(hi, vhi);
        if (since >= kGridRestart || klo >= khi) {
            klo = khi = lo;
            since = 0;
        }
        grid_2d_fresh(lo, klo, B, xb, kappa, da, ya2, ca, dp, is1, T, rho);
        grid_2d_fresh(khi, hi, B, xb, kappa, da, ya2, ca, dp, is1, T, rho);
        double* __restrict a0 = acc + row_of(c) * m1;
        std::size_t lo2, hi2;
        double da2 = 0.0;
        window(c + 1, lo2, hi2, da2);
        if (lo2 >= hi2) {
            grid_2d_row(lo, hi, wi, qa, false, a0, T, rho);
            return;
        }
        // the next row: fresh where it leaves [lo, hi)
        const double ya22 = da2 * da2 * is0 * is0, ca2 = hs * (2.0 * da2 + hs) * is0 * is0;
        grid_2d_fresh(lo2, std::min(hi2, lo), B, xb, kappa, da2, ya22, ca2, dp, is1, T, rho);
        grid_2d_fresh(std::max(lo2, hi), hi2, B, xb, kappa, da2, ya22, ca2, dp, is1, T, rho);
        double* __restrict a1 = acc + row_of(c + 1) * m1;
        // both rows on the overlap, in one pass
        const std::size_t i0 = std::max(lo, lo2), i1 = std::min(hi, hi2);
#pragma omp simd
        for (std::size_t j = i0; j < i1; ++j) {
            const double t0 = T[j], p0 = rho[j];
            a0[j] += wi * t0;
            const double t1 = t0 * p0, p1 = p0 * qa;
            a1[j] += wi * t1;
            T[j] = t1 * p1;
            rho[j] = p1 * qa;
        }
        // first row only where the second leaves; second row only where it is new
        grid_2d_row(lo, std::min(hi, lo2), wi, qa, false, a0, T, rho);
        grid_2d_row(std::max(lo, hi2), hi, wi, qa, false, a0, T, rho);
        grid_2d_row(lo2, std::min(hi2, lo), wi, qa, true, a1, T, rho);
        grid_2d_row(std::max(lo2, hi), hi2, wi, qa, true, a1, T, rho);
        vlo = lo2;
        vhi = hi2;
        since += 2;
        c += 2;
        window(c, lo, hi, da);
    }
}

// 2-D: every sample of [b, e) swept up and down from its nearest row; T and rho are m1-long
// work rows.
MODELCOLLAPSE_HOT_FMA void grid_2d(const double* x, const double* w, std::size_t b, std::size_t e, double s0,
                                   double kappa, double s1, const GridAxis& A, const GridAxis& B,
                                   double* __restrict acc, double* __restrict T, double* __restrict rho,
                                   const StopToken& stop) {
    const double reach = std::sqrt(2.0 * kGridCutoff) * s0;
    for (std::size_t i = b; i < e; ++i) {
        if ((i & 15) == 0 && stop.stop_requested()) return;
        const double wi = w[i];
        if (wi == 0.0) continue;
        const double xa = x[2 * i], xb = x[2 * i + 1];
        std::size_t r0, r1;
        axis_window(A, 1.0 / A.step, xa, reach, r0, r1);
        if (r0 >= r1) continue;
        const double p = std::nearbyint((xa - A.start) / A.step);
        const std::size_t c = p <= static_cast<double>(r0)       ? r0
                              : p >= static_cast<double>(r1 - 1) ? r1 - 1
                                                                 : static_cast<std::size_t>(p);
        grid_2d_sweep(wi, xa, xb, c, r1 - c, false, s0, kappa, s1, A, B, acc, T, rho);
        if (c > r0) grid_2d_sweep(wi, xa, xb, c - 1, c - r0, true, s0, kappa, s1, A, B, acc, T, rho);
    }
}

// ------------------------------------------------------- 2-D, diagonal bandwidth: a matrix product
// With H diagonal (kappa = 0) the kernel factorises over the axes: with
// FA[i][a] = exp(-((A_a - xa_i) / s0)^2 / 2) and FB[i][b] = w_i exp(-((B_b - xb_i) / s1)^2 / 2),
// density[a][b] = norm sum_i FA[i][a] FB[i][b], the product FA^T FB: one multiply-add a pair
// once the (m0 + m1) factors of a sample are known, against three operations a pair for the
// recurrences above (bench/limits.md; docs/metrics.md, "Performance"). A factor is set to 0
// where its own exponent exceeds kGridCutoff (the kept set contains the recurrence kernel's:
// the extra terms are below e^-690 each).
//
// Order of summation: every output element is one register accumulator that takes the pairs
// of all samples in sample order (acc = fma(FA, FB, acc) in the FMA clone, acc + FA * FB in
// the baseline one), starting from 0. Samples whose factor is exactly 0 on a micro-tile's rows
// are skipped, which adds +0 and changes nothing. How the output is cut into tiles and tiles
// into threads therefore cannot change a bit: results are identical for any thread count.
constexpr std::size_t kSepMR = 6;     // micro-tile rows (broadcast factors)
constexpr std::size_t kSepNR = 8;     // micro-tile columns (two AVX2 vectors): 12 accumulators
constexpr std::size_t kSepSub = 256;  // samples per pass over a micro-tile (its B panel, 16 KiB, stays in L1)

// out[j - ja] = scale exp(-v_j^2 / 2), v_j = (ax.at(j) - x) / sig, for j in [ja, jb), a part of
// the sample's window [lo, hi). When the grid resolves the kernel (h = step / sig <= 1) and the
// grid point jc nearest x is within h of it (|u| <= h, u = v_jc), v_j = u + k h (k = j - jc) and
//     exp(-v_j^2 / 2) = exp(-u^2 / 2 - u h (k0 + 16 p)) exp(-u h l) exp(-(k h)^2 / 2)
// with j - lo = 16 p + l, l < 16, k0 = lo - jc: the last factor from the per-call table cs
// (cs[k + count - 1], k in (-count, count)), so a window of n points costs 16 + n / 16
// exponentials instead of n. The blocks start at the window's lo whatever [ja, jb) is, so a
// value has the same bits whichever worker's rows ask for it. In the window
// |k h| <= sqrt(2 kGridCutoff) + |u|, so |u h k| <= 39 h and no factor overflows; the
// product of four roundings is within ~4 ulp of the direct value. Otherwise (coarse grid,
// or x outside the grid) every value is a direct exponential.
MODELCOLLAPSE_ALWAYS_INLINE void sep_gauss_row(const GridAxis& ax, double x, double isig, std::size_t lo,
                                               std::size_t ja, std::size_t jb, double scale, const double* cs,
                                               double* out) {
    const double h = ax.step * isig;
    const double pc = std::nearbyint((x - ax.start) / ax.step);
    const double jh = static_cast<double>(ax.count - 1);
    const double jcf = pc < 0.0 ? 0.0 : (pc > jh ? jh : pc);  // the grid point nearest x
    const double u = (ax.start + jcf * ax.step - x) * isig;
    if (!(h <= 1.0) || !(std::fabs(u) <= h)) {
        const int na = static_cast<int>(jb - ja);
        const double j0 = static_cast<double>(ja);
#pragma omp simd
        for (int k = 0; k < na; ++k) {
            const double v = (ax.start + (j0 + k) * ax.step - x) * isig;
            out[k] = scale * fastmath::exp_flush(-0.5 * v * v);
        }
        return;
    }
    const double k0 = static_cast<double>(lo) - jcf;
    double Q[16];
#pragma omp simd
    for (int l = 0; l < 16; ++l) Q[l] = fastmath::exp_flush(-u * h * l);
    // cs entry of j: j - jc + count - 1
    const double* c = cs + (static_cast<std::ptrdiff_t>(ax.count - 1) - static_cast<std::ptrdiff_t>(jcf));
    const std::size_t p_first = (ja - lo) / 16, p_end = (jb - lo + 15) / 16;
    for (std::size_t p = p_first; p < p_end; ++p) {
        const double base = scale * fastmath::exp_flush(-0.5 * u * u - u * h * (k0 + 16.0 * static_cast<double>(p)));
        const std::size_t j0 = lo + 16 * p, js = std::max(ja, j0), je = std::min(jb, j0 + 16);
        const int l0 = static_cast<int>(js - j0), l1 = static_cast<int>(je - j0);
        double* o = out + (j0 - ja);  // index l of this block (only l in [l0, l1) is written)
        const double* cc = c + j0;
#pragma omp simd
        for (int l = l0; l < l1; ++l) o[l] = base * Q[l] * cc[l];
    }
}

// exp(-(k h)^2 / 2) for k in (-count, count), h = step / sig: the table of sep_gauss_row.
inline std::vector<double> sep_table(const GridAxis& ax, double sig) {
    const double h = ax.step / sig;
    std::vector<double> cs(2 * ax.count - 1);
    for (std::size_t j = 0; j < cs.size(); ++j) {
        const double kh = (static_cast<double>(j) - static_cast<double>(ax.count - 1)) * h;
        cs[j] = std::exp(-0.5 * kh * kh);
    }
    return cs;
}

// Factors of the samples [b, e) of x (n x 2, row-major), sample i in local row i - b: FA on
// the grid rows [r0, r0 + lda) (rows past the grid are 0), FB on every column (rows of ldb).
// Entries outside a sample's window (exponent > kGridCutoff) are 0. csA, csB: sep_table.
MODELCOLLAPSE_HOT_FMA void sep_factors(const double* x, const double* w, std::size_t b, std::size_t e, double s0,
                                       double s1, const GridAxis& A, const GridAxis& B, const double* csA,
                                       const double* csB, std::size_t r0, double* FA, std::size_t lda, double* FB,
                                       std::size_t ldb) {
    const double vmax = std::sqrt(2.0 * kGridCutoff), is0 = 1.0 / s0, is1 = 1.0 / s1;
    for (std::size_t i = b; i < e; ++i) {
        double* fa = FA + (i - b) * lda;
        double* fb = FB + (i - b) * ldb;
        std::fill(fa, fa + lda, 0.0);
        std::fill(fb, fb + ldb, 0.0);
        const double wi = w[i], xa = x[2 * i], xb = x[2 * i + 1];
        if (wi == 0.0) continue;
        std::size_t lo, hi, clo, chi;
        axis_window(A, 1.0 / A.step, xa, vmax * s0, lo, hi);
        axis_window(B, 1.0 / B.step, xb, vmax * s1, clo, chi);
        const std::size_t ja = std::max(lo, r0), jb = std::min(hi, r0 + lda);
        if (ja >= jb || clo >= chi) continue;
        sep_gauss_row(A, xa, is0, lo, ja, jb, 1.0, csA, fa + (ja - r0));
        sep_gauss_row(B, xb, is1, clo, clo, chi, wi, csB, fb + clo);
    }
}

// C[r][l] += sum over the listed samples k of FA[k][r] FB[k][l], r < kSepMR, l < kSepNR, in list
// order, in registers.
MODELCOLLAPSE_ALWAYS_INLINE void sep_micro(const double* __restrict FA, std::size_t lda, const double* __restrict FB,
                                           std::size_t ldb, const std::uint32_t* __restrict idx, std::size_t cnt,
                                           double* __restrict C, std::size_t ldc) {
    double acc[kSepMR][kSepNR];
    for (std::size_t r = 0; r < kSepMR; ++r)
        for (std::size_t l = 0; l < kSepNR; ++l) acc[r][l] = C[r * ldc + l];
    for (std::size_t k = 0; k < cnt; ++k) {
        const std::size_t i = idx[k];
        const double* __restrict fb = FB + i * ldb;
        const double* __restrict fa = FA + i * lda;
        for (std::size_t r = 0; r < kSepMR; ++r) {
            const double a = fa[r];
#pragma omp simd
            for (std::size_t l = 0; l < kSepNR; ++l) acc[r][l] += a * fb[l];
        }
    }
    for (std::size_t r = 0; r < kSepMR; ++r)
        for (std::size_t l = 0; l < kSepNR; ++l) C[r * ldc + l] = acc[r][l];
}

// Micro-row blocks [rb0, rb1) of C (m0p x ldc) += FA^T FB over the cnt local samples, each
// micro-row block skipping the samples whose factors on its rows are all 0.
MODELCOLLAPSE_HOT_FMA void sep_rows(const double* FA, std::size_t lda, const double* FB, std::size_t ldb,
                                    std::size_t cnt, std::size_t rb0, std::size_t rb1, double* C, std::size_t ldc,
                                    std::uint32_t* lists, const StopToken& stop) {
    const std::size_t nrb = rb1 - rb0;
    std::vector<std::size_t> len(nrb);
    for (std::size_t s0 = 0; s0 < cnt; s0 += kSepSub) {
        if (stop.stop_requested()) return;
        const std::size_t s1 = std::min(cnt, s0 + kSepSub);
        for (std::size_t q = 0; q < nrb; ++q) {
            const std::size_t r0 = (rb0 + q) * kSepMR;
            std::uint32_t* li = lists + q * kSepSub;
            std::size_t c = 0;
            for (std::size_t i = s0; i < s1; ++i) {
                const double* fa = FA + i * lda + r0;
                bool any = false;
                for (std::size_t r = 0; r < kSepMR; ++r) any |= fa[r] != 0.0;
                li[c] = static_cast<std::uint32_t>(i);
                c += any;
            }
            len[q] = c;
        }
        for (std::size_t c0 = 0; c0 < ldc; c0 += kSepNR)
            for (std::size_t q = 0; q < nrb; ++q) {
                const std::size_t r0 = (rb0 + q) * kSepMR;
                sep_micro(FA + r0, lda, FB + c0, ldb, lists + q * kSepSub, len[q], C + r0 * ldc + c0, ldc);
            }
    }
}

// The 2-D exact grid KDE for a diagonal bandwidth (s0, s1: kernel standard deviations) into
// out (m0 x m1, row-major), times norm. Each worker takes a range of micro-row blocks and
// passes over the samples kSepSub at a time: the factors of a pass (its rows of FA, all of
// FB: ~200 KiB for a 100 x 100 grid) stay in L2 and are never allocated per pass. With more
// than one worker the column factors FB are computed by each (m1 exponentials a sample per
// worker, against m0 m1 / workers multiply-adds).
inline void grid_2d_separable(const double* x, const double* w, std::size_t n, double s0, double s1,
                              const GridAxis& A, const GridAxis& B, double norm, double* out, int threads,
                              const PollFn& poll) {
    const std::size_t m0 = A.count, m1 = B.count;
    const std::size_t nrb = (m0 + kSepMR - 1) / kSepMR;
    const std::size_t ldc = (m1 + kSepNR - 1) / kSepNR * kSepNR;
    std::vector<double> C(nrb * kSepMR * ldc, 0.0);
    const std::vector<double> csA = sep_table(A, s0), csB = sep_table(B, s1);
    const unsigned nt = resolve_threads(threads);
    const std::size_t rb_chunk = std::max<std::size_t>(1, (nrb + nt - 1) / nt);  // speed only: any cut gives the same bits
    parallel_for(
        nrb, rb_chunk, threads,
        [&](std::size_t rb0, std::size_t rb1, const StopToken& stop) {
            const std::size_t r0 = rb0 * kSepMR, lda = (rb1 - rb0) * kSepMR;
            std::vector<double> FA(kSepSub * lda), FB(kSepSub * ldc);
            std::vector<std::uint32_t> lists((rb1 - rb0) * kSepSub);
            for (std::size_t b = 0; b < n; b += kSepSub) {
                if (stop.stop_requested()) return;
                const std::size_t e = std::min(n, b + kSepSub);
                sep_factors(x, w, b, e, s0, s1, A, B, csA.data(), csB.data(), r0, FA.data(), lda, FB.data(), ldc);
                sep_rows(FA.data(), lda, FB.data(), ldc, e - b, 0, rb1 - rb0, C.data() + r0 * ldc, ldc, lists.data(),
                         stop);
            }
        },
        poll);
    for (std::size_t a = 0; a < m0; ++a)
        for (std::size_t j = 0; j < m1; ++j) out[a * m1 + j] = norm * C[a * ldc + j];
}

// Number of sample parts for exact_grid: a function of n and the grid size only.
inline std::size_t grid_parts(std::size_t n, std::size_t grid_size) {
    std::size_t parts = std::min<std::size_t>(16, (n + 511) / 512);
    const std::size_t max_by_memory = std::max<std::size_t>(1, (std::size_t(1) << 25) / std::max<std::size_t>(grid_size, 1));
    return std::max<std::size_t>(1, std::min(parts, max_by_memory));  // <= 256 MiB of buffers
}

// Exact KDE on the tensor grid given by axes (d = 1 or 2); out has prod(count) entries,
// row-major (axis 0 slowest). Same value as exact() at the grid points (see above).
inline void exact_grid(const double* samples, const double* weights, std::size_t n, std::size_t d,
                       const double* H, const GridAxis* axes, double* out, int threads,
                       const PollFn& poll = PollFn()) {
    if (d != 1 && d != 2) throw std::invalid_argument("exact grid KDE supports d = 1 or 2");
    const Eigen::MatrixXd L = kernel_cholesky(H, d);
    const double norm = std::exp(log_norm(L));
    const std::size_t m0 = axes[0].count, m1 = d == 2 ? axes[1].count : 1, G = m0 * m1;
    for (std::size_t a = 0; a < d; ++a)
        if (!(axes[a].step > 0.0) || axes[a].count < 1) throw std::invalid_argument("grid axes need step > 0, count >= 1");
    std::fill(out, out + G, 0.0);
    if (n == 0) return;
    if (d == 2 && L(1, 0) == 0.0)
        return grid_2d_separable(samples, weights, n, L(0, 0), L(1, 1), axes[0], axes[1], norm, out, threads, poll);
    const std::size_t parts = grid_parts(n, G);
    std::vector<double> bufs(parts * G, 0.0);
    parallel_for(
        parts, 1, threads,
        [&](std::size_t p, std::size_t, const StopToken& stop) {
            const std::size_t b = n * p / parts, e = n * (p + 1) / parts;
            double* acc = bufs.data() + p * G;
            if (d == 1) return grid_1d(samples, weights, b, e, L(0, 0), axes[0], acc, stop);
            std::vector<double> T(m1), rho(m1);
            const double s0 = L(0, 0), kappa = L(1, 0) / L(0, 0), s1 = L(1, 1);
            grid_2d(samples, weights, b, e, s0, kappa, s1, axes[0], axes[1], acc, T.data(), rho.data(), stop);
        },
        poll);
    // Reduce the parts in a fixed order.
    parallel_for(
        G, 4096, threads,
        [&](std::size_t b, std::size_t e, const StopToken&) {
            for (std::size_t g = b; g < e; ++g) {
                double s = 0.0;
                for (std::size_t p = 0; p < parts; ++p) s += bufs[p * G + g];
                out[g] = norm * s;
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

// out[j] = sum_{o < K} B[j r + o] k[o] for j < m: the binned KDE's truncated-kernel
// correlation along one axis. Vectorised across 16 outputs (16 independent sums, each in
// the order o = 0, 1, ..., K - 1), not across the taps: a reduction over o keeps one sum in
// flight per vector and waits on the adder's latency (3.3 ns a tap at n = 5000 in 1-D,
// bench/bounds.py `kde_binned_1d_kernel`). Every output's sum has the same order in every
// clone and build, and no product is fused (MODELCOLLAPSE_HOT: AVX2 without FMA), so the
// result does not depend on the instruction set.
MODELCOLLAPSE_HOT void correlate(const double* __restrict B, std::size_t r, const double* __restrict k,
                                 std::size_t K, double* __restrict out, std::size_t m) {
    constexpr std::size_t kLanes = 16;
    std::size_t j = 0;
    if (r == 1)  // the output grid is the binning grid (tol=None, or no refinement needed):
        // contiguous loads; a run-time stride would leave the compiler gathers or scalar code
        for (; j + kLanes <= m; j += kLanes) {
            double acc[kLanes] = {};
            const double* Bj = B + j;
            for (std::size_t o = 0; o < K; ++o) {
                const double c = k[o];
#pragma omp simd
                for (std::size_t l = 0; l < kLanes; ++l) acc[l] += Bj[l + o] * c;
            }
            for (std::size_t l = 0; l < kLanes; ++l) out[j + l] = acc[l];
        }
    for (; j + kLanes <= m; j += kLanes) {
        double acc[kLanes] = {};
        const double* Bj = B + j * r;
        for (std::size_t o = 0; o < K; ++o) {
            const double c = k[o];
#pragma omp simd
            for (std::size_t l = 0; l < kLanes; ++l) acc[l] += Bj[l * r + o] * c;
        }
        for (std::size_t l = 0; l < kLanes; ++l) out[j + l] = acc[l];
    }
    for (; j < m; ++j) {
        const double* Bj = B + j * r;
        double s = 0.0;
        for (std::size_t o = 0; o < K; ++o) s += Bj[o] * k[o];
        out[j] = s;
    }
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
    // Below ~4e6 multiply-adds (about a millisecond on one core) the second thread costs more
    // than it saves: the full bench measured 0.69 ms on two threads against 0.20 ms on one
    // (1-D, 1000-point grid, n = 5000). The chunks are the same either way, so the result is too.
    auto threads_for = [threads](double work) { return work < 4e6 ? 1 : threads; };
    if (d == 1) {
        const std::vector<double> k = kernel_1d(H[0], A0.fine_step(), A0.pad, R, norm);
        const std::size_t K = k.size();
        threads = threads_for(static_cast<double>(A0.count) * static_cast<double>(K));
        parallel_for(
            A0.count, 64, threads,
            [&](std::size_t b, std::size_t e, const StopToken&) {
                // fine index j*r + o, o in [0, 2 pad]
                correlate(B.data() + b * A0.refine, A0.refine, k.data(), K, out + b, e - b);
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
        threads = threads_for(static_cast<double>(n0) * m1 * K1 + static_cast<double>(A0.count) * m1 * K0);
        // Pass 1: along axis 1 at the output columns, for every fine row.
        std::vector<double> T(n0 * m1);
        parallel_for(
            n0, 32, threads,
            [&](std::size_t b, std::size_t e, const StopToken& stop) {
                for (std::size_t i = b; i < e && !stop.stop_requested(); ++i)
                    correlate(B.data() + i * n1, A1.refine, k1.data(), K1, T.data() + i * m1, m1);
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
