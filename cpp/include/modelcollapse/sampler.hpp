// Truncated reverse-time sampler (conventions section 2): the whole time loop for a batch
// of samples, for any score model that provides `smooth(model, t)` and `eval_point`.
//
// dY = [Y + 2 s(t, Y)] dtau + sqrt(2) dW from t_0 = T down to t_N = delta.
// Step k uses the score at t_k and h_k = t_k - t_{k+1}. Sample i draws its step noise from
// stream (kStepNoise, i), normals [k * dpad, k * dpad + d) with dpad = d rounded up to even,
// so the output for a seed does not depend on how samples are spread over threads.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "empirical.hpp"
#include "mixture.hpp"
#include "parallel.hpp"
#include "random.hpp"

namespace modelcollapse {

enum class Integrator : int { euler_maruyama = 0, exponential = 1, ode = 2 };

struct ReverseConfig {
    std::size_t n = 0, d = 0;
    std::vector<double> times;  // t_0 = T > t_1 > ... > t_N = delta
    Integrator integrator = Integrator::euler_maruyama;
    std::uint64_t seed = 0;
    const double* noise = nullptr;  // optional (n, N, d) injected noise
    const double* init = nullptr;   // (n, d) initial points
    std::vector<std::size_t> record_steps;  // step indices in [0, N] to store (sorted)
    double* record = nullptr;               // (record_steps.size(), n, d)
    int threads = 0;
};

inline double eval_point(const SmoothedMixture& m, const double* x, double* s, MixtureWorkspace& w) {
    return mixture_eval_point(m, x, s, w);
}
inline double eval_point(const SmoothedEmpirical& m, const double* x, double* s, EmpiricalWorkspace& w) {
    return empirical_eval_point(m, x, s, w);
}
inline MixtureWorkspace make_workspace(const GaussianMixtureData& p) { return MixtureWorkspace(p.d); }
inline EmpiricalWorkspace make_workspace(const EmpiricalData& e) { return EmpiricalWorkspace(e.n, e.d); }

// Runs the reverse sampler; writes the final points to out (n, d).
template <class Model>
void reverse_sample(const Model& model, const ReverseConfig& cfg, double* out, const PollFn& poll) {
    const std::size_t n = cfg.n, d = cfg.d;
    if (cfg.times.size() < 2) throw std::invalid_argument("time grid needs at least 2 points");
    const std::size_t steps = cfg.times.size() - 1;
    const std::size_t dpad = d + (d % 2);

    // Everything that depends only on the time is computed once, not once per sample.
    using Smoothed = decltype(smooth(model, 0.0));
    std::vector<Smoothed> at;
    at.reserve(steps);
    std::vector<double> drift_coef(steps), score_coef(steps), noise_coef(steps);
    for (std::size_t k = 0; k < steps; ++k) {
        at.push_back(smooth(model, cfg.times[k]));
        const double h = cfg.times[k] - cfg.times[k + 1];
        switch (cfg.integrator) {
            case Integrator::euler_maruyama:
                drift_coef[k] = 1.0 + h;
                score_coef[k] = 2.0 * h;
                noise_coef[k] = std::sqrt(2.0 * h);
                break;
            case Integrator::exponential:
                drift_coef[k] = std::exp(h);
                score_coef[k] = 2.0 * std::expm1(h);
                noise_coef[k] = std::sqrt(std::expm1(2.0 * h));
                break;
            case Integrator::ode:
                drift_coef[k] = 1.0 + h;
                score_coef[k] = h;
                noise_coef[k] = 0.0;
                break;
        }
    }
    const bool stochastic = cfg.integrator != Integrator::ode;
    std::vector<std::size_t> rec_pos(steps + 1, static_cast<std::size_t>(-1));
    for (std::size_t r = 0; r < cfg.record_steps.size(); ++r) rec_pos[cfg.record_steps[r]] = r;

    parallel_for(
        n, 64, cfg.threads,
        [&](std::size_t begin, std::size_t end, const StopToken& stop) {
            auto ws = make_workspace(model);
            std::vector<double> y(d), s(d), xi(dpad);
            for (std::size_t i = begin; i < end; ++i) {
                if (stop.stop_requested()) return;
                for (std::size_t j = 0; j < d; ++j) y[j] = cfg.init[i * d + j];
                const std::uint64_t stream = rng::make_stream(rng::kStepNoise, i);
                for (std::size_t k = 0; k <= steps; ++k) {
                    if (rec_pos[k] != static_cast<std::size_t>(-1))
                        for (std::size_t j = 0; j < d; ++j) cfg.record[(rec_pos[k] * n + i) * d + j] = y[j];
                    if (k == steps) break;
                    eval_point(at[k], y.data(), s.data(), ws);
                    if (stochastic) {
                        if (cfg.noise) {
                            const double* src = cfg.noise + (i * steps + k) * d;
                            for (std::size_t j = 0; j < d; ++j) xi[j] = src[j];
                        } else {
                            rng::fill_normals(cfg.seed, stream, k * dpad, d, xi.data());
                        }
                    }
                    const double a = drift_coef[k], b = score_coef[k], c = noise_coef[k];
                    if (stochastic)
                        for (std::size_t j = 0; j < d; ++j) y[j] = a * y[j] + b * s[j] + c * xi[j];
                    else
                        for (std::size_t j = 0; j < d; ++j) y[j] = a * y[j] + b * s[j];
                }
                for (std::size_t j = 0; j < d; ++j) out[i * d + j] = y[j];
            }
        },
        poll);
}

}  // namespace modelcollapse
