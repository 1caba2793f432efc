// Gaussian mixtures p = sum_k pi_k N(mu_k, C_k) and their smoothings S_t p
// (conventions section 3): log density and score with a streamed log-sum-exp, and
// sampling with the counter-based generator.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "fastmath.hpp"
#include "random.hpp"

namespace modelcollapse {

enum class CovKind : int { isotropic = 0, diagonal = 1, full = 2 };

constexpr double kLog2Pi = 1.8378770664093454836;

// Every covariance is stored through its eigen-decomposition C_k = U_k diag(lambda_k) U_k^T
// (U_k = I for isotropic and diagonal), because S_t only moves the eigenvalues:
// e^{-2t} C_k + sigma_t^2 I = U_k diag(e^{-2t} lambda_k + sigma_t^2) U_k^T.
struct GaussianMixtureData {
    std::size_t K = 0, d = 0;
    CovKind kind = CovKind::isotropic;
    std::vector<double> log_weights;  // K
    std::vector<double> means;        // K * d
    std::vector<double> eigvals;      // K * d
    std::vector<double> eigvecs;      // K * d * d (full only), row-major, column j = vector j

    // cov: K scalars (isotropic), K*d (diagonal) or K*d*d (full, row-major).
    static GaussianMixtureData build(std::size_t K, std::size_t d, CovKind kind,
                                     const double* weights, const double* means,
                                     const double* cov) {
        if (K == 0 || d == 0) throw std::invalid_argument("mixture needs K >= 1 and d >= 1");
        GaussianMixtureData m;
        m.K = K;
        m.d = d;
        m.kind = kind;
        m.log_weights.resize(K);
        m.means.assign(means, means + K * d);
        m.eigvals.resize(K * d);
        for (std::size_t k = 0; k < K; ++k) {
            if (!(weights[k] >= 0.0)) throw std::invalid_argument("weights must be >= 0");
            m.log_weights[k] = weights[k] > 0 ? std::log(weights[k])
                                              : -std::numeric_limits<double>::infinity();
        }
        if (kind == CovKind::isotropic) {
            for (std::size_t k = 0; k < K; ++k)
                for (std::size_t i = 0; i < d; ++i) m.eigvals[k * d + i] = cov[k];
        } else if (kind == CovKind::diagonal) {
            for (std::size_t j = 0; j < K * d; ++j) m.eigvals[j] = cov[j];
        } else {
            m.eigvecs.resize(K * d * d);
            using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
            for (std::size_t k = 0; k < K; ++k) {
                Eigen::Map<const RowMat> C(cov + k * d * d, d, d);
                Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(C.transpose() * 0.5 + C * 0.5);
                if (es.info() != Eigen::Success)
                    throw std::invalid_argument("eigen-decomposition of covariance failed");
                Eigen::Map<RowMat> U(m.eigvecs.data() + k * d * d, d, d);
                U = es.eigenvectors();
                for (std::size_t i = 0; i < d; ++i) m.eigvals[k * d + i] = es.eigenvalues()[i];
            }
        }
        for (double v : m.eigvals)
            if (!(v > 0.0)) throw std::invalid_argument("covariances must be positive definite");
        return m;
    }
};

// S_t p ready for evaluation: everything that depends on t but not on the point.
struct SmoothedMixture {
    std::size_t K = 0, d = 0;
    CovKind kind = CovKind::isotropic;
    const double* eigvecs = nullptr;  // borrowed from GaussianMixtureData (full only)
    std::vector<double> log_coef;     // log pi_k - 1/2 sum log lambda_k(t) - d/2 log 2 pi
    std::vector<double> means;        // e^{-t} mu_k
    std::vector<double> inv_eig;      // 1 / (e^{-2t} lambda + sigma_t^2)
    std::vector<double> sqrt_eig;     // sqrt(e^{-2t} lambda + sigma_t^2), for sampling
    std::vector<double> cum_weights;  // cumulative pi_k, for sampling
    // For the vectorised kernels: the components with pi_k > 0, and (full only) the
    // precision matrices P_k = U_k diag(inv_eig_k) U_k^T, K * d * d row-major.
    std::vector<std::size_t> active;
    std::vector<double> prec;
    // Component-major copies for the per-point kernel (vectorised across components):
    // coordinate j of component k at j * K + k (means and inv_eig; isotropic/diagonal).
    std::vector<double> means_t, inv_t;
    // For the batched kernel (isotropic/diagonal): logits in base 2, log2(e) log_coef_k and
    // log2(e) inv_eig / 2 (K * d), so weights are 2^(l - max) (fastmath::exp2_weight).
    std::vector<double> lc2, hinv2;
    // Isotropic only: lc2_k + log2(inv_k) and lambda_k = 1 / inv_k (K each). The batched kernel
    // takes w'_k = w_k inv_k = 2^(l_k + log2 inv_k - max) straight from the exponential (no
    // multiplication a weight) and S = sum_k w'_k lambda_k (one multiply-add).
    std::vector<double> lc2f, lam;
};

inline SmoothedMixture smooth(const GaussianMixtureData& p, double t) {
    SmoothedMixture s;
    s.K = p.K;
    s.d = p.d;
    s.kind = p.kind;
    s.eigvecs = p.eigvecs.empty() ? nullptr : p.eigvecs.data();
    const double a = std::exp(-t);
    const double a2 = a * a;
    const double s2 = -std::expm1(-2.0 * t);  // sigma_t^2 = 1 - e^{-2t}, accurate for small t
    s.log_coef.resize(p.K);
    s.means.resize(p.K * p.d);
    s.inv_eig.resize(p.K * p.d);
    s.sqrt_eig.resize(p.K * p.d);
    s.cum_weights.resize(p.K);
    double cum = 0.0;
    const bool iso = p.kind == CovKind::isotropic;
    for (std::size_t k = 0; k < p.K; ++k) {
        double logdet = 0.0;
        // Isotropic: every coordinate has the same eigenvalue, so its inverse, square root and
        // log are computed once per component (the same numbers; d-fold fewer divisions,
        // square roots and logs, which took most of a step's smoothing at d = 64).
        const double lam_iso = a2 * p.eigvals[k * p.d] + s2;
        const double inv_iso = iso ? 1.0 / lam_iso : 0.0, sqrt_iso = iso ? std::sqrt(lam_iso) : 0.0;
        const double log_iso = iso ? std::log(lam_iso) : 0.0;
        for (std::size_t i = 0; i < p.d; ++i) {
            if (iso) {
                s.inv_eig[k * p.d + i] = inv_iso;
                s.sqrt_eig[k * p.d + i] = sqrt_iso;
                logdet += log_iso;
                s.means[k * p.d + i] = a * p.means[k * p.d + i];
                continue;
            }
            double lam = a2 * p.eigvals[k * p.d + i] + s2;
            s.inv_eig[k * p.d + i] = 1.0 / lam;
            s.sqrt_eig[k * p.d + i] = std::sqrt(lam);
            logdet += std::log(lam);
            s.means[k * p.d + i] = a * p.means[k * p.d + i];
        }
        s.log_coef[k] = p.log_weights[k] - 0.5 * logdet - 0.5 * static_cast<double>(p.d) * kLog2Pi;
        cum += std::exp(p.log_weights[k]);
        s.cum_weights[k] = cum;
    }
    for (auto& c : s.cum_weights) c /= cum;
    for (std::size_t k = 0; k < p.K; ++k)
        if (s.log_coef[k] != -std::numeric_limits<double>::infinity()) s.active.push_back(k);
    if (p.kind == CovKind::full) {
        using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        s.prec.resize(p.K * p.d * p.d);
        const Eigen::Index d = static_cast<Eigen::Index>(p.d);
        for (std::size_t k = 0; k < p.K; ++k) {
            Eigen::Map<const RowMat> U(p.eigvecs.data() + k * p.d * p.d, d, d);
            Eigen::Map<const Eigen::VectorXd> inv(s.inv_eig.data() + k * p.d, d);
            Eigen::Map<RowMat> P(s.prec.data() + k * p.d * p.d, d, d);
            P.noalias() = U * inv.asDiagonal() * U.transpose();
        }
    } else {
        s.means_t.resize(p.K * p.d);
        s.inv_t.resize(p.K * p.d);
        constexpr double kLog2e = 1.4426950408889634074;
        s.lc2.resize(p.K);
        s.hinv2.resize(p.K * p.d);
        for (std::size_t k = 0; k < p.K; ++k) s.lc2[k] = kLog2e * s.log_coef[k];
        if (p.kind == CovKind::isotropic) {
            s.lc2f.resize(p.K);
            s.lam.resize(p.K);
            for (std::size_t k = 0; k < p.K; ++k) {
                s.lc2f[k] = s.lc2[k] + std::log2(s.inv_eig[k * p.d]);
                s.lam[k] = a2 * p.eigvals[k * p.d] + s2;
            }
        }
        for (std::size_t i = 0; i < p.K * p.d; ++i) s.hinv2[i] = (0.5 * kLog2e) * s.inv_eig[i];
        for (std::size_t k = 0; k < p.K; ++k)
            for (std::size_t j = 0; j < p.d; ++j) {
                s.means_t[j * p.K + k] = s.means[k * p.d + j];
                s.inv_t[j * p.K + k] = s.inv_eig[k * p.d + j];
            }
    }
    return s;
}

struct MixtureWorkspace {
    std::vector<double> diff, z, g, acc, logit;
    explicit MixtureWorkspace(std::size_t d) : diff(d), z(d), g(d), acc(d) {}
};

namespace detail {

// Log density and score at one point for isotropic/diagonal covariances, vectorised across
// components: logits l_k = log_coef_k - 1/2 sum_j (x_j - mu_kj)^2 / lambda_kj, then a two-pass
// log-sum-exp (max, then weights e^{l_k - max} <= 1 with fastmath::exp_nonpositive).
MODELCOLLAPSE_HOT double mixture_eval_point_diag(const SmoothedMixture& m, const double* x, double* score,
                                      MixtureWorkspace& w) {
    const std::size_t K = m.K, d = m.d;
    if (w.logit.size() < K) w.logit.resize(K);
    double* l = w.logit.data();
    const double* lc = m.log_coef.data();
    {
        const double* mu = m.means_t.data();
        const double* inv = m.inv_t.data();
        const double x0 = x[0];
#pragma omp simd
        for (std::size_t k = 0; k < K; ++k) {
            const double di = x0 - mu[k];
            l[k] = di * di * inv[k];
        }
        for (std::size_t j = 1; j < d; ++j) {
            const double xj = x[j];
            const double* muj = mu + j * K;
            const double* invj = inv + j * K;
#pragma omp simd
            for (std::size_t k = 0; k < K; ++k) {
                const double di = xj - muj[k];
                l[k] += di * di * invj[k];
            }
        }
    }
    double M = -std::numeric_limits<double>::infinity();
    for (std::size_t k = 0; k < K; ++k) {
        l[k] = lc[k] - 0.5 * l[k];  // -inf for components with weight 0
        M = l[k] > M ? l[k] : M;
    }
    double S = 0.0;
#pragma omp simd reduction(+ : S)
    for (std::size_t k = 0; k < K; ++k) {
        const double wk = fastmath::exp_nonpositive(l[k] - M);
        l[k] = wk;
        S += wk;
    }
    if (score) {
        const double* mu = m.means_t.data();
        const double* inv = m.inv_t.data();
        for (std::size_t j = 0; j < d; ++j) {
            const double xj = x[j];
            const double* muj = mu + j * K;
            const double* invj = inv + j * K;
            double acc = 0.0;
#pragma omp simd reduction(+ : acc)
            for (std::size_t k = 0; k < K; ++k) acc += l[k] * ((xj - muj[k]) * invj[k]);
            score[j] = -acc / S;
        }
    }
    return M + std::log(S);
}

}  // namespace detail

// Log density of S_t p at x; writes the score into `score` when it is not null.
// Log-sum-exp over components: finite for points far from every mean.
inline double mixture_eval_point(const SmoothedMixture& m, const double* x, double* score,
                                 MixtureWorkspace& w) {
    if (m.kind != CovKind::full) return detail::mixture_eval_point_diag(m, x, score, w);
    const std::size_t d = m.d;
    double M = -std::numeric_limits<double>::infinity();
    double S = 0.0;
    if (score)
        for (std::size_t i = 0; i < d; ++i) w.acc[i] = 0.0;
    for (std::size_t k = 0; k < m.K; ++k) {
        if (m.log_coef[k] == -std::numeric_limits<double>::infinity()) continue;
        const double* mu = &m.means[k * d];
        const double* P = m.prec.data() + k * d * d;
        // g = P_k (x - mu_k) = C_k^{-1} (x - mu_k), quad = (x - mu_k) . g
        for (std::size_t i = 0; i < d; ++i) w.diff[i] = x[i] - mu[i];
        double quad = 0.0;
        for (std::size_t i = 0; i < d; ++i) {
            const double* row = P + i * d;
            double acc = 0.0;
            for (std::size_t j = 0; j < d; ++j) acc += row[j] * w.diff[j];
            w.g[i] = acc;
            quad += w.diff[i] * acc;
        }
        double l = m.log_coef[k] - 0.5 * quad;
        if (l > M) {
            double scale = std::exp(M - l);  // 0 when M = -inf
            S *= scale;
            if (score)
                for (std::size_t i = 0; i < d; ++i) w.acc[i] *= scale;
            M = l;
        }
        double wk = std::exp(l - M);
        S += wk;
        if (score)
            for (std::size_t i = 0; i < d; ++i) w.acc[i] += wk * w.g[i];
    }
    if (score)
        for (std::size_t i = 0; i < d; ++i) score[i] = -w.acc[i] / S;
    return M + std::log(S);
}

// Batched kernel for the reverse sampler: B points in structure-of-arrays form
// (coordinate j of point i at x[j * B + i]); writes the score in the same layout (and the
// log density into logp when it is not null). Vectorised across points.
struct MixtureBatchWorkspace {
    std::size_t cap = 0;
    std::vector<double> logit, mx, S, acc, diff, g, quad;
    // full = false: isotropic/diagonal only (no diff, g, quad: the full-covariance path's).
    MixtureBatchWorkspace(std::size_t K, std::size_t d, std::size_t B, bool full = true)
        : cap(B), logit(K * B), mx(B), S(B), acc(d * B), diff(full ? d * B : 0), g(full ? d * B : 0),
          quad(full ? B : 0) {}
};

#ifdef MODELCOLLAPSE_VECTOR_EXT
// G = P D for a d x d precision P (row-major) and d x B differences D, G (row j at j * B).
// Register-blocked: 4 rows of G times 4 samples sit in 4 vector accumulators while l runs
// over d, so each loaded strip of D feeds 4 rows. Always inlined into mixture_eval_batch, so
// it is compiled for AVX2 and for the baseline with it (out of line, the accumulators were
// spilled to the stack). Eigen's product is built for the portable baseline only and ran
// ~10x slower than this at d = 64.
__attribute__((always_inline)) inline void precision_times_diff(const double* __restrict P,
                                                                const double* __restrict D,
                                                                double* __restrict G, std::size_t d,
                                                                std::size_t B) {
    std::size_t j = 0;
    for (; j + 4 <= d; j += 4) {
        const double* P0 = P + j * d;
        const double* P1 = P0 + d;
        const double* P2 = P1 + d;
        const double* P3 = P2 + d;
        std::size_t i = 0;
        for (; i + 4 <= B; i += 4) {
            vec4d a0 = {0.0, 0.0, 0.0, 0.0}, a1 = a0, a2 = a0, a3 = a0;
            for (std::size_t l = 0; l < d; ++l) {
                const vec4d x = MODELCOLLAPSE_LOAD4(D + l * B + i);
                a0 += P0[l] * x;
                a1 += P1[l] * x;
                a2 += P2[l] * x;
                a3 += P3[l] * x;
            }
            MODELCOLLAPSE_STORE4(G + j * B + i, a0);
            MODELCOLLAPSE_STORE4(G + (j + 1) * B + i, a1);
            MODELCOLLAPSE_STORE4(G + (j + 2) * B + i, a2);
            MODELCOLLAPSE_STORE4(G + (j + 3) * B + i, a3);
        }
        for (; i < B; ++i)
            for (std::size_t r = 0; r < 4; ++r) {
                double a = 0.0;
                for (std::size_t l = 0; l < d; ++l) a += P0[r * d + l] * D[l * B + i];
                G[(j + r) * B + i] = a;
            }
    }
    for (; j < d; ++j)
        for (std::size_t i = 0; i < B; ++i) {
            double a = 0.0;
            for (std::size_t l = 0; l < d; ++l) a += P[j * d + l] * D[l * B + i];
            G[j * B + i] = a;
        }
}
#endif

#ifdef MODELCOLLAPSE_VECTOR_EXT
namespace detail {
// Isotropic/diagonal covariances, B a multiple of 8: tiles of 8 points (two vec4d per
// quantity) kept in registers through both passes, so no pass over the chunk's arrays is
// stored and reloaded per coordinate (that store/load traffic, not arithmetic, bounded the
// earlier per-coordinate loops at large d). Per tile: base-2 logits
// l_k = lc2_k - sum_j (x_j - mu_kj)^2 hinv2_kj and their maximum M (pass 1, logits parked in
// W, 8 per component), weights 2^(l_k - M) (exp2_weight4; the argument is clamped at -1020,
// where the weight is below 2^-1020 relative and so negligible), then per coordinate
// score_j = -sum_k w_k (x_j - mu_kj) inv_kj / sum_k w_k. The per-point operations do not
// depend on the tile, on B or on how components are grouped. D: the dimension at compile time
// (0: m.d at run time). ISO: isotropic covariances, where the per-coordinate factors move out
// of the sums: l_k = lc2_k - hinv2_k sum_j (x_j - mu_kj)^2 (one subtraction and one multiply-add
// a component and coordinate), weights w'_k = w_k inv_k straight from the exponential (the
// logits carry log2 inv_k: lc2f), S = sum_k w'_k lambda_k, T = sum_k w'_k and
// score_j = (sum_k w'_k mu_kj - x_j T) / S (one multiply-add a component and coordinate).
//
// Logits of G components for one tile of 8 points (pass 1), in base 2, stored at W (8 per
// component), with the running maximum M0, M1 updated in component order. One coordinate a
// step and G = 4 components at a time: 8 independent multiply-add chains, and each load of x
// feeds 4 components (two components x two coordinates, the earlier form, reloaded x for every
// pair and ran 1.45x slower at d = 64; bench/score_parts.cpp). Each component's sum runs over j
// in order whatever G, so the grouping does not change any number.
template <std::size_t G, bool ISO>
MODELCOLLAPSE_ALWAYS_INLINE void tile_logits(const double* x, std::size_t B, std::size_t i, std::size_t d,
                                             const std::size_t* act, const double* means, const double* hinv2,
                                             const double* lc2, double* W, vec4d& M0, vec4d& M1) {
    vec4d q0[G], q1[G];
    const double* mu[G];
    const double* h[G];
    for (std::size_t g = 0; g < G; ++g) {
        q0[g] = q1[g] = vec4d{0.0, 0.0, 0.0, 0.0};
        mu[g] = means + act[g] * d;
        h[g] = hinv2 + act[g] * d;
    }
    for (std::size_t j = 0; j < d; ++j) {
        const vec4d x0 = MODELCOLLAPSE_LOAD4(x + j * B + i), x1 = MODELCOLLAPSE_LOAD4(x + j * B + i + 4);
        for (std::size_t g = 0; g < G; ++g) {
            const vec4d e0 = x0 - mu[g][j], e1 = x1 - mu[g][j];
            if (ISO) {
                q0[g] += e0 * e0;
                q1[g] += e1 * e1;
            } else {
                q0[g] += (e0 * h[g][j]) * e0;
                q1[g] += (e1 * h[g][j]) * e1;
            }
        }
    }
    for (std::size_t g = 0; g < G; ++g) {
        const std::size_t k = act[g];
        vec4d a0 = q0[g], a1 = q1[g];
        if (ISO) {
            a0 *= hinv2[k * d];
            a1 *= hinv2[k * d];
        }
        const vec4d l0 = lc2[k] - a0, l1 = lc2[k] - a1;
        MODELCOLLAPSE_STORE4(W + 8 * g, l0);
        MODELCOLLAPSE_STORE4(W + 8 * g + 4, l1);
        M0 = l0 > M0 ? l0 : M0;
        M1 = l1 > M1 ? l1 : M1;
    }
}

// Isotropic score pass for R coordinates [j, j + R) of one tile: c_r = sum_k w'_k mu_k(j+r) in
// component order, then score = (c - x T) / S. R = 4: 8 independent multiply-add chains and no
// x in the loop (the form sum_k w'_k (x_j - mu_kj), two coordinates at a time, had 4 chains of
// a multiply-add and a subtraction each and ran 1.3x slower at d = 64). The sum for a
// coordinate does not depend on R. Against that form it cancels x_j T against c: the absolute
// error grows to ~eps (|x_j| + max_k |mu_kj|) T / S instead of ~eps max_k |x_j - mu_kj| inv_k.
template <std::size_t R>
MODELCOLLAPSE_ALWAYS_INLINE void tile_score_iso(const double* x, std::size_t B, std::size_t i, std::size_t j,
                                                std::size_t d, std::size_t A, const std::size_t* act,
                                                const double* means, const double* W, const vec4d& T0,
                                                const vec4d& T1, const vec4d& r0, const vec4d& r1, double* score) {
    vec4d c0[R], c1[R];
    for (std::size_t r = 0; r < R; ++r) c0[r] = c1[r] = vec4d{0.0, 0.0, 0.0, 0.0};
    for (std::size_t a = 0; a < A; ++a) {
        const double* mu = means + act[a] * d + j;
        const vec4d w0 = MODELCOLLAPSE_LOAD4(W + 8 * a), w1 = MODELCOLLAPSE_LOAD4(W + 8 * a + 4);
        for (std::size_t r = 0; r < R; ++r) {
            c0[r] += w0 * mu[r];
            c1[r] += w1 * mu[r];
        }
    }
    for (std::size_t r = 0; r < R; ++r) {
        const vec4d x0 = MODELCOLLAPSE_LOAD4(x + (j + r) * B + i), x1 = MODELCOLLAPSE_LOAD4(x + (j + r) * B + i + 4);
        MODELCOLLAPSE_STORE4(score + (j + r) * B + i, (c0[r] - x0 * T0) * r0);
        MODELCOLLAPSE_STORE4(score + (j + r) * B + i + 4, (c1[r] - x1 * T1) * r1);
    }
}

// LD: the row stride B at compile time (0: at run time), for the sampler's full chunks.
template <std::size_t D, bool ISO, std::size_t LD = 0>
MODELCOLLAPSE_ALWAYS_INLINE void mixture_batch_diag_tiles(const SmoothedMixture& m, std::size_t B_, const double* x,
                                                          double* score, double* logp, double* W) {
    const std::size_t d = D ? D : m.d, B = LD ? LD : B_;
    const std::size_t A = m.active.size();
    const std::size_t* act = m.active.data();
    const double* means = m.means.data();
    const double* inv = m.inv_eig.data();
    const double* hinv2 = m.hinv2.data();
    const double* lc = ISO ? m.lc2f.data() : m.lc2.data();
    const double* lam = m.lam.data();
    constexpr double inf = std::numeric_limits<double>::infinity();
    // The clamp's bound through memory the compiler cannot see into: with a literal constant
    // GCC builds z > lo ? z : lo as a compare and a blend, with a value in a register as one
    // max (the same result for every z, NaN included).
    double lo_s = -1020.0;
    asm("" : "+m"(lo_s));
    const vec4d lo = vec4d{0.0, 0.0, 0.0, 0.0} + lo_s;
    for (std::size_t i = 0; i < B; i += 8) {
        vec4d M0 = {-inf, -inf, -inf, -inf}, M1 = M0;
        std::size_t a = 0;
        for (; a + 4 <= A; a += 4) tile_logits<4, ISO>(x, B, i, d, act + a, means, hinv2, lc, W + 8 * a, M0, M1);
        for (; a < A; ++a) tile_logits<1, ISO>(x, B, i, d, act + a, means, hinv2, lc, W + 8 * a, M0, M1);
        vec4d S0 = {0.0, 0.0, 0.0, 0.0}, S1 = S0, T0 = S0, T1 = S0;
        for (std::size_t a = 0; a < A; ++a) {
            vec4d z0 = MODELCOLLAPSE_LOAD4(W + 8 * a) - M0, z1 = MODELCOLLAPSE_LOAD4(W + 8 * a + 4) - M1;
            z0 = z0 > lo ? z0 : lo;
            z1 = z1 > lo ? z1 : lo;
            fastmath::exp2_weight4(z0);
            fastmath::exp2_weight4(z1);
            MODELCOLLAPSE_STORE4(W + 8 * a, z0);
            MODELCOLLAPSE_STORE4(W + 8 * a + 4, z1);
            if (ISO) {  // z = w'_k = w_k inv_k
                const double lk = lam[act[a]];
                S0 += z0 * lk;
                S1 += z1 * lk;
                T0 += z0;
                T1 += z1;
            } else {
                S0 += z0;
                S1 += z1;
            }
        }
        if (score && ISO) {
            const vec4d r0 = 1.0 / S0, r1 = 1.0 / S1;
            std::size_t j = 0;
            for (; j + 4 <= d; j += 4) tile_score_iso<4>(x, B, i, j, d, A, act, means, W, T0, T1, r0, r1, score);
            for (; j < d; ++j) tile_score_iso<1>(x, B, i, j, d, A, act, means, W, T0, T1, r0, r1, score);
        } else if (score) {
            const vec4d r0 = -1.0 / S0, r1 = -1.0 / S1;
            // Two coordinates at a time (four independent chains), then the last.
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
                    const double i0 = inv[k * d + j], i1 = inv[k * d + j + 1];
                    c0 += w0 * ((x0 - m0) * i0);
                    c1 += w1 * ((x1 - m0) * i0);
                    g0 += w0 * ((y0 - m1) * i1);
                    g1 += w1 * ((y1 - m1) * i1);
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
                    const std::size_t k = act[a];
                    const double mkj = means[k * d + j], ikj = inv[k * d + j];
                    c0 += MODELCOLLAPSE_LOAD4(W + 8 * a) * ((x0 - mkj) * ikj);
                    c1 += MODELCOLLAPSE_LOAD4(W + 8 * a + 4) * ((x1 - mkj) * ikj);
                }
                MODELCOLLAPSE_STORE4(score + j * B + i, c0 * r0);
                MODELCOLLAPSE_STORE4(score + j * B + i + 4, c1 * r1);
            }
        }
        if (logp) {
            constexpr double kLn2 = 0.69314718055994530942;
            for (int l = 0; l < 4; ++l) {
                logp[i + l] = M0[l] * kLn2 + std::log(S0[l]);
                logp[i + 4 + l] = M1[l] * kLn2 + std::log(S1[l]);
            }
        }
    }
}
}  // namespace detail
#endif

MODELCOLLAPSE_HOT_FMA void mixture_eval_batch(const SmoothedMixture& m, std::size_t B, const double* x, double* score,
                               double* logp, MixtureBatchWorkspace& w) {
    const std::size_t d = m.d;
    double* __restrict mx = w.mx.data();
    double* __restrict S = w.S.data();
    double* __restrict acc = w.acc.data();
#ifdef MODELCOLLAPSE_VECTOR_EXT
    if (m.kind != CovKind::full && B % 8 == 0 && w.logit.size() >= 8 * m.active.size()) {
        double* W = w.logit.data();
        if (m.kind == CovKind::isotropic) {
            // A full sampler chunk (kSamplerChunk = 64 rows) with its stride known to the
            // compiler: constant offsets for the rows of x and the score (same numbers).
            if (d == 2 && B == 64)
                detail::mixture_batch_diag_tiles<2, true, 64>(m, B, x, score, logp, W);
            else if (d == 2)
                detail::mixture_batch_diag_tiles<2, true>(m, B, x, score, logp, W);
            else if (B == 64)
                detail::mixture_batch_diag_tiles<0, true, 64>(m, B, x, score, logp, W);
            else
                detail::mixture_batch_diag_tiles<0, true>(m, B, x, score, logp, W);
        } else if (d == 1) {
            detail::mixture_batch_diag_tiles<1, false>(m, B, x, score, logp, W);
        } else if (d == 2) {
            detail::mixture_batch_diag_tiles<2, false>(m, B, x, score, logp, W);
        } else {
            detail::mixture_batch_diag_tiles<0, false>(m, B, x, score, logp, W);
        }
        return;
    }
#endif
    if (m.kind != CovKind::full) {
        // Pass 1: logits of every active component, and their maximum.
        for (std::size_t a = 0; a < m.active.size(); ++a) {
            const std::size_t k = m.active[a];
            const double* mu = &m.means[k * d];
            const double* inv = &m.inv_eig[k * d];
            const double lc = m.log_coef[k];
            double* __restrict L = w.logit.data() + a * B;
            if (d == 2) {
                const double* x0 = x;
                const double* x1 = x + B;
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) {
                    const double d0 = x0[i] - mu[0], d1 = x1[i] - mu[1];
                    L[i] = lc - 0.5 * (d0 * d0 * inv[0] + d1 * d1 * inv[1]);
                }
            } else {
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) {
                    const double di = x[i] - mu[0];
                    L[i] = di * di * inv[0];
                }
                for (std::size_t j = 1; j < d; ++j) {
                    const double* xj = x + j * B;
                    const double mj = mu[j], ij = inv[j];
#pragma omp simd
                    for (std::size_t i = 0; i < B; ++i) {
                        const double di = xj[i] - mj;
                        L[i] += di * di * ij;
                    }
                }
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) L[i] = lc - 0.5 * L[i];
            }
            if (a == 0) {
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) mx[i] = L[i];
            } else {
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) mx[i] = L[i] > mx[i] ? L[i] : mx[i];
            }
        }
        // Pass 2: weights e^{l - max} <= 1 and the weighted sum of C_k^{-1} (x - mu_k).
#pragma omp simd
        for (std::size_t i = 0; i < B; ++i) S[i] = 0.0;
        for (std::size_t i = 0; i < d * B; ++i) acc[i] = 0.0;
        for (std::size_t a = 0; a < m.active.size(); ++a) {
            const std::size_t k = m.active[a];
            const double* mu = &m.means[k * d];
            const double* inv = &m.inv_eig[k * d];
            double* __restrict L = w.logit.data() + a * B;
            if (d == 2) {
                const double* x0 = x;
                const double* x1 = x + B;
                double* __restrict a0 = acc;
                double* __restrict a1 = acc + B;
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) {
                    const double wk = fastmath::exp_nonpositive(L[i] - mx[i]);
                    S[i] += wk;
                    a0[i] += wk * ((x0[i] - mu[0]) * inv[0]);
                    a1[i] += wk * ((x1[i] - mu[1]) * inv[1]);
                }
            } else {
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) {
                    const double wk = fastmath::exp_nonpositive(L[i] - mx[i]);
                    L[i] = wk;
                    S[i] += wk;
                }
                for (std::size_t j = 0; j < d; ++j) {
                    const double* xj = x + j * B;
                    double* __restrict aj = acc + j * B;
                    const double mj = mu[j], ij = inv[j];
#pragma omp simd
                    for (std::size_t i = 0; i < B; ++i) aj[i] += L[i] * ((xj[i] - mj) * ij);
                }
            }
        }
    } else {
        // Full covariances: per component, D = x - mu_k and G = P_k D (a small matrix
        // product), quad = sum_j D_j G_j; online log-sum-exp across components.
        using RowMat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
        const auto dd = static_cast<Eigen::Index>(d), BB = static_cast<Eigen::Index>(B);
        double* __restrict D = w.diff.data();
        double* __restrict G = w.g.data();
        double* __restrict q = w.quad.data();
        for (std::size_t a = 0; a < m.active.size(); ++a) {
            const std::size_t k = m.active[a];
            const double* mu = &m.means[k * d];
            const double* P = m.prec.data() + k * d * d;
            const double lc = m.log_coef[k];
            for (std::size_t j = 0; j < d; ++j) {
                const double mj = mu[j];
                const double* xj = x + j * B;
                double* __restrict Dj = D + j * B;
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) Dj[i] = xj[i] - mj;
            }
#ifdef MODELCOLLAPSE_VECTOR_EXT
            if (d >= 4) {
                precision_times_diff(P, D, G, d, B);
            } else
#endif
            if (d < 8) {
                for (std::size_t j = 0; j < d; ++j) {
                    double* __restrict Gj = G + j * B;
                    const double* Pj = P + j * d;
#pragma omp simd
                    for (std::size_t i = 0; i < B; ++i) Gj[i] = Pj[0] * D[i];
                    for (std::size_t l = 1; l < d; ++l) {
                        const double pjl = Pj[l];
                        const double* Dl = D + l * B;
#pragma omp simd
                        for (std::size_t i = 0; i < B; ++i) Gj[i] += pjl * Dl[i];
                    }
                }
            } else {
                Eigen::Map<RowMat, 0, Eigen::OuterStride<>> Gm(G, dd, BB, Eigen::OuterStride<>(BB));
                Eigen::Map<const RowMat, 0, Eigen::OuterStride<>> Dm(D, dd, BB, Eigen::OuterStride<>(BB));
                Eigen::Map<const RowMat> Pm(P, dd, dd);
                Gm.noalias() = Pm * Dm;
            }
#pragma omp simd
            for (std::size_t i = 0; i < B; ++i) q[i] = D[i] * G[i];
            for (std::size_t j = 1; j < d; ++j) {
                const double* Dj = D + j * B;
                const double* Gj = G + j * B;
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) q[i] += Dj[i] * Gj[i];
            }
            if (a == 0) {
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) {
                    mx[i] = lc - 0.5 * q[i];
                    S[i] = 1.0;
                }
                for (std::size_t i = 0; i < d * B; ++i) acc[i] = G[i];
            } else {
                // q <- weight of this component, rescaling factors kept in D's first row.
                double* __restrict alpha = w.logit.data();
#pragma omp simd
                for (std::size_t i = 0; i < B; ++i) {
                    const double l = lc - 0.5 * q[i];
                    const double M = l > mx[i] ? l : mx[i];
                    alpha[i] = fastmath::exp_nonpositive(mx[i] - M);
                    q[i] = fastmath::exp_nonpositive(l - M);
                    mx[i] = M;
                    S[i] = S[i] * alpha[i] + q[i];
                }
                for (std::size_t j = 0; j < d; ++j) {
                    double* __restrict aj = acc + j * B;
                    const double* Gj = G + j * B;
#pragma omp simd
                    for (std::size_t i = 0; i < B; ++i) aj[i] = aj[i] * alpha[i] + q[i] * Gj[i];
                }
            }
        }
    }
    for (std::size_t j = 0; j < d; ++j) {
        const double* aj = acc + j * B;
        double* __restrict sj = score + j * B;
#pragma omp simd
        for (std::size_t i = 0; i < B; ++i) sj[i] = -aj[i] / S[i];
    }
    if (logp)
        for (std::size_t i = 0; i < B; ++i) logp[i] = mx[i] + std::log(S[i]);
}

// Draw sample `index` of S_t p: component from uniform number 0 of stream
// (kInitChoice, index), then mean + U sqrt(lambda) z with z = normals [0, d) of stream
// (kInitNormal, index). `z` is scratch of size d.
inline void mixture_draw(const SmoothedMixture& m, std::uint64_t seed, std::uint64_t index,
                         double* out, double* z, std::uint64_t choice_purpose = rng::kInitChoice,
                         std::uint64_t normal_purpose = rng::kInitNormal) {
    const std::size_t d = m.d;
    double u;
    rng::fill_uniforms(seed, rng::make_stream(choice_purpose, index), 0, 1, &u);
    std::size_t k = 0;
    while (k + 1 < m.K && u >= m.cum_weights[k]) ++k;
    rng::fill_normals(seed, rng::make_stream(normal_purpose, index), 0, d, z);
    const double* mu = &m.means[k * d];
    const double* sq = &m.sqrt_eig[k * d];
    if (m.kind == CovKind::full) {
        // Symmetric square root U diag(sqrt(lambda)) U^T: unlike U diag(sqrt(lambda)) it does
        // not depend on the sign or order conventions of the eigen-solver, so every
        // implementation maps the same z to the same sample.
        const double* U = m.eigvecs + k * d * d;
        std::vector<double> w(d, 0.0);
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < d; ++j) w[j] += U[i * d + j] * z[i];
        for (std::size_t j = 0; j < d; ++j) w[j] *= sq[j];
        for (std::size_t i = 0; i < d; ++i) {
            double acc = 0.0;
            for (std::size_t j = 0; j < d; ++j) acc += U[i * d + j] * w[j];
            out[i] = mu[i] + acc;
        }
    } else {
        for (std::size_t i = 0; i < d; ++i) out[i] = mu[i] + sq[i] * z[i];
    }
}

}  // namespace modelcollapse
