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
    for (std::size_t k = 0; k < p.K; ++k) {
        double logdet = 0.0;
        for (std::size_t i = 0; i < p.d; ++i) {
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
    return s;
}

struct MixtureWorkspace {
    std::vector<double> diff, z, g, acc;
    explicit MixtureWorkspace(std::size_t d) : diff(d), z(d), g(d), acc(d) {}
};

// Log density of S_t p at x; writes the score into `score` when it is not null.
// Streamed (online) log-sum-exp over components: finite for points far from every mean.
inline double mixture_eval_point(const SmoothedMixture& m, const double* x, double* score,
                                 MixtureWorkspace& w) {
    const std::size_t d = m.d;
    double M = -std::numeric_limits<double>::infinity();
    double S = 0.0;
    if (score)
        for (std::size_t i = 0; i < d; ++i) w.acc[i] = 0.0;
    for (std::size_t k = 0; k < m.K; ++k) {
        if (m.log_coef[k] == -std::numeric_limits<double>::infinity()) continue;
        const double* mu = &m.means[k * d];
        const double* inv = &m.inv_eig[k * d];
        double quad = 0.0;
        if (m.kind == CovKind::full) {
            const double* U = m.eigvecs + k * d * d;
            for (std::size_t i = 0; i < d; ++i) w.diff[i] = x[i] - mu[i];
            for (std::size_t j = 0; j < d; ++j) w.z[j] = 0.0;
            for (std::size_t i = 0; i < d; ++i) {  // z = U^T diff
                const double di = w.diff[i];
                const double* row = U + i * d;
                for (std::size_t j = 0; j < d; ++j) w.z[j] += row[j] * di;
            }
            for (std::size_t j = 0; j < d; ++j) {
                quad += w.z[j] * w.z[j] * inv[j];
                w.z[j] *= inv[j];
            }
            if (score) {  // g = U (z / lambda) = C_t^{-1} (x - mu)
                for (std::size_t i = 0; i < d; ++i) {
                    const double* row = U + i * d;
                    double acc = 0.0;
                    for (std::size_t j = 0; j < d; ++j) acc += row[j] * w.z[j];
                    w.g[i] = acc;
                }
            }
        } else {
            for (std::size_t i = 0; i < d; ++i) {
                double di = x[i] - mu[i];
                quad += di * di * inv[i];
                w.g[i] = di * inv[i];
            }
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
