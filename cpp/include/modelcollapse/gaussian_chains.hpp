// Independent Gaussian retraining chains (Bertrand et al., section 2.2 and 3).
//
// Each chain c holds a model N(mu_t, Sigma_t). Round t >= 1 draws m samples
// y = mu_{t-1} + L_{t-1} z (L the Cholesky factor of Sigma_{t-1}; the symmetric square root
// when Sigma is singular), pools them with the chain's n real points (unless fully
// synthetic) and refits by maximum likelihood with the unbiased covariance (divide by N - 1).
// Round 0 is either given (init) or fitted on the real points.
//
// Randomness (counter-based, identical for any number of threads):
//   real point i, coordinate j of chain c   = normal number i*d + j of stream (kGaussChainReal, c)
//   synthetic point i, coord j, round t>=1  = normal number ((t-1)*m + i)*d + j of stream
//                                             (kGaussChainSynth, c)
// Either source may be replaced by injected noise arrays (to compare implementations exactly).
#pragma once

#include <Eigen/Dense>
#include <Eigen/Eigenvalues>

#include <algorithm>
#include <cmath>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "parallel.hpp"
#include "random.hpp"

namespace modelcollapse {

struct GaussianChainsSpec {
    std::size_t n_chains = 0, n_real = 0, n_synth = 0, rounds = 0, d = 1;
    bool fully_synthetic = false;  // rounds >= 1 use the m synthetic points only
    bool init_given = false;       // theta_0 = (init_mean, init_cov), else fit on the real points
    std::uint64_t seed = 0;
};

namespace detail {

// L (row-major, lower) with L L^T = cov (row-major d x d): Cholesky, or the symmetric PSD
// square root (eigendecomposition) when cov is singular (a pivot <= 1e-12 max diag).
inline void psd_factor(const double* cov, std::size_t d, double* L) {
    // A pivot below kSingularTol * max diag counts as singular (same rule as the reference).
    constexpr double kSingularTol = 1e-12;
    double maxdiag = 0.0;
    for (std::size_t j = 0; j < d; ++j) maxdiag = std::max(maxdiag, cov[j * d + j]);
    bool ok = maxdiag > 0.0;
    for (std::size_t i = 0; i < d * d; ++i) L[i] = 0.0;
    for (std::size_t j = 0; j < d && ok; ++j) {
        double s = cov[j * d + j];
        for (std::size_t k = 0; k < j; ++k) s -= L[j * d + k] * L[j * d + k];
        if (!(s > kSingularTol * maxdiag)) {
            ok = false;
            break;
        }
        const double ljj = std::sqrt(s);
        L[j * d + j] = ljj;
        for (std::size_t i = j + 1; i < d; ++i) {
            double t = cov[i * d + j];
            for (std::size_t k = 0; k < j; ++k) t -= L[i * d + k] * L[j * d + k];
            L[i * d + j] = t / ljj;
        }
    }
    if (ok) return;
    Eigen::MatrixXd c(d, d);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d; ++j) c(i, j) = cov[i * d + j];
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> es(c);
    // eigenvalues below kSingularTol * the largest are rounding noise: zero them
    const double wmax = es.eigenvalues().maxCoeff();
    Eigen::VectorXd w = es.eigenvalues();
    for (Eigen::Index i = 0; i < w.size(); ++i) w(i) = w(i) > kSingularTol * wmax ? std::sqrt(w(i)) : 0.0;
    Eigen::MatrixXd S = es.eigenvectors() * w.asDiagonal() * es.eigenvectors().transpose();
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < d; ++j) L[i * d + j] = S(i, j);
}

// Mean and unbiased covariance of the N rows of x (N x d, row-major), two passes.
inline void fit_gaussian(const double* x, std::size_t N, std::size_t d, double* mean, double* cov) {
    for (std::size_t j = 0; j < d; ++j) mean[j] = 0.0;
    for (std::size_t i = 0; i < N; ++i)
        for (std::size_t j = 0; j < d; ++j) mean[j] += x[i * d + j];
    for (std::size_t j = 0; j < d; ++j) mean[j] /= static_cast<double>(N);
    for (std::size_t i = 0; i < d * d; ++i) cov[i] = 0.0;
    if (d == 1) {
        double s = 0.0;
        for (std::size_t i = 0; i < N; ++i) {
            const double u = x[i] - mean[0];
            s += u * u;
        }
        cov[0] = s / static_cast<double>(N - 1);
        return;
    }
    for (std::size_t i = 0; i < N; ++i) {
        const double* xi = x + i * d;
        for (std::size_t a = 0; a < d; ++a) {
            const double ua = xi[a] - mean[a];
            for (std::size_t b = 0; b <= a; ++b) cov[a * d + b] += ua * (xi[b] - mean[b]);
        }
    }
    for (std::size_t a = 0; a < d; ++a)
        for (std::size_t b = 0; b <= a; ++b) {
            cov[a * d + b] /= static_cast<double>(N - 1);
            cov[b * d + a] = cov[a * d + b];
        }
}

// rows[i] = mu + L z[i] for i < count (L lower triangular or full).
inline void affine_rows(const double* z, std::size_t count, std::size_t d, const double* mu, const double* L,
                        bool lower, double* rows) {
    for (std::size_t i = 0; i < count; ++i) {
        const double* zi = z + i * d;
        double* ri = rows + i * d;
        for (std::size_t a = 0; a < d; ++a) {
            double s = mu[a];
            const std::size_t kmax = lower ? a + 1 : d;
            for (std::size_t k = 0; k < kmax; ++k) s += L[a * d + k] * zi[k];
            ri[a] = s;
        }
    }
}

}  // namespace detail

// Outputs: means (n_chains, rounds + 1, d) and covs (n_chains, rounds + 1, d, d), row-major.
// data_mean (d), data_factor (d x d, L with L L^T = Sigma_data) generate the real points;
// init_mean / init_cov are read only when spec.init_given. noise_real (n_chains, n_real, d) and
// noise_synth (n_chains, rounds, n_synth, d) replace the generator when non-null.
inline void gaussian_chains(const GaussianChainsSpec& spec, const double* data_mean, const double* data_factor,
                            const double* init_mean, const double* init_cov, const double* noise_real,
                            const double* noise_synth, double* means, double* covs, int threads,
                            const PollFn& poll = PollFn()) {
    const std::size_t d = spec.d, n = spec.n_real, m = spec.n_synth, T = spec.rounds;
    if (d == 0) throw std::invalid_argument("d must be >= 1");
    const bool need_real = !(spec.fully_synthetic && spec.init_given);
    if (need_real && n < 2) throw std::invalid_argument("n_real must be >= 2");
    if (T > 0 && spec.fully_synthetic && m < 2) throw std::invalid_argument("n_synth must be >= 2 when fully synthetic");
    if (T > 0 && !spec.fully_synthetic && n + m < 2) throw std::invalid_argument("need n_real + n_synth >= 2");
    const std::size_t per_chain_mean = (T + 1) * d, per_chain_cov = (T + 1) * d * d;
    const std::size_t N = spec.fully_synthetic ? m : n + m;
    const std::size_t off = spec.fully_synthetic ? 0 : n;  // first synthetic row of the pool

    parallel_for(
        spec.n_chains, 8, threads,
        [&](std::size_t begin, std::size_t end, const StopToken& stop) {
            std::vector<double> real(need_real ? n * d : 0), pool(std::max(N, n) * d), z(std::max(n, m) * d);
            std::vector<double> L(d * d);
            for (std::size_t c = begin; c < end; ++c) {
                if (stop.stop_requested()) return;
                double* mc = means + c * per_chain_mean;
                double* cc = covs + c * per_chain_cov;
                if (need_real) {
                    const double* zr = noise_real ? noise_real + c * n * d : z.data();
                    if (!noise_real)
                        rng::fill_normals(spec.seed, rng::make_stream(rng::kGaussChainReal, c), 0, n * d, z.data());
                    detail::affine_rows(zr, n, d, data_mean, data_factor, false, real.data());
                    if (!spec.fully_synthetic) std::copy(real.begin(), real.end(), pool.begin());
                }
                if (spec.init_given) {
                    std::copy(init_mean, init_mean + d, mc);
                    std::copy(init_cov, init_cov + d * d, cc);
                } else {
                    detail::fit_gaussian(real.data(), n, d, mc, cc);
                }
                for (std::size_t t = 1; t <= T; ++t) {
                    // with few chains a chain is the whole run: check between rounds too
                    if (stop.stop_requested()) return;
                    const double* mu = mc + (t - 1) * d;
                    const double* cov = cc + (t - 1) * d * d;
                    if (m > 0) {
                        const double* zs = noise_synth ? noise_synth + ((c * T + (t - 1)) * m) * d : z.data();
                        if (!noise_synth)
                            rng::fill_normals(spec.seed, rng::make_stream(rng::kGaussChainSynth, c),
                                              static_cast<std::uint64_t>((t - 1) * m * d), m * d, z.data());
                        detail::psd_factor(cov, d, L.data());
                        detail::affine_rows(zs, m, d, mu, L.data(), false, pool.data() + off * d);
                    }
                    detail::fit_gaussian(pool.data(), N, d, mc + t * d, cc + t * d * d);
                }
            }
        },
        poll);
}

}  // namespace modelcollapse
