// Truncated reverse-time sampler (conventions section 2): the whole time loop for a batch
// of samples, for any score model that provides `smooth(model, t)` and `eval_point`.
//
// dY = [Y + 2 s(t, Y)] dtau + sqrt(2) dW from t_0 = T down to t_N = delta.
// Step k uses the score at t_k and h_k = t_k - t_{k+1}. Sample i draws its step noise from
// stream (kStepNoise, i), normals [k * dpad, k * dpad + d) with dpad = d rounded up to even,
// so the output for a seed does not depend on how samples are spread over threads (nor on
// the chunking: every per-sample computation is the same whatever the batch it runs in).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <utility>
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

// Batched score evaluation for the sampler: B points in structure-of-arrays form (x[j * B + i]),
// score written in the same layout. Models without a batched kernel go point by point.
struct MixtureSamplerWorkspace {
    MixtureBatchWorkspace batch;
    MixtureSamplerWorkspace(const GaussianMixtureData& p, std::size_t B) : batch(p.K, p.d, B) {}
};
inline MixtureSamplerWorkspace make_sampler_workspace(const GaussianMixtureData& p, std::size_t B) {
    return MixtureSamplerWorkspace(p, B);
}
inline void score_batch(const SmoothedMixture& m, std::size_t B, const double* x, double* s,
                        MixtureSamplerWorkspace& w) {
    mixture_eval_batch(m, B, x, s, nullptr, w.batch);
}

// Fallback for every other model (empirical, perturbed scores, ...): point by point through
// the model's eval_point, so a new model type only needs smooth / eval_point / make_workspace.
template <class PointWorkspace>
struct PointSamplerWorkspace {
    PointWorkspace point;
    std::vector<double> y, s;
    PointSamplerWorkspace(PointWorkspace ws, std::size_t d) : point(std::move(ws)), y(d), s(d) {}
};
template <class Model>
auto make_sampler_workspace(const Model& model, std::size_t /*B*/) {
    return PointSamplerWorkspace<decltype(make_workspace(model))>(make_workspace(model), model.d);
}
template <class Smoothed, class PointWorkspace>
void score_batch(const Smoothed& m, std::size_t B, const double* x, double* s, PointSamplerWorkspace<PointWorkspace>& w) {
    const std::size_t d = w.y.size();
    for (std::size_t i = 0; i < B; ++i) {
        for (std::size_t j = 0; j < d; ++j) w.y[j] = x[j * B + i];
        eval_point(m, w.y.data(), w.s.data(), w.point);
        for (std::size_t j = 0; j < d; ++j) s[j * B + i] = w.s[j];
    }
}

// Samples per chunk of the sampler (the unit of work handed to a thread; results do not
// depend on it).
constexpr std::size_t kSamplerChunk = 64;

// Runs the reverse sampler; writes the final points to out (n, d).
//
// The time loop is outermost: at step k the smoothed model at t_k is built once, then the
// samples are processed in chunks of kSamplerChunk in structure-of-arrays form (score for
// the whole chunk, step noise for the whole chunk through rng::normal_pairs, update), all
// vectorised across samples. The state lives in `out` between steps. Each step is its own
// parallel_for, which polls on entry: Ctrl-C is seen within a poll interval however short
// the steps are.
template <class Model>
void reverse_sample(const Model& model, const ReverseConfig& cfg, double* out, const PollFn& poll) {
    const std::size_t n = cfg.n, d = cfg.d;
    if (cfg.times.size() < 2) throw std::invalid_argument("time grid needs at least 2 points");
    const std::size_t steps = cfg.times.size() - 1;
    const std::size_t dpad = d + (d % 2);
    const std::size_t half = dpad / 2;  // Philox blocks per sample and step

    std::vector<double> drift_coef(steps), score_coef(steps), noise_coef(steps);
    for (std::size_t k = 0; k < steps; ++k) {
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

    for (std::size_t i = 0; i < n * d; ++i) out[i] = cfg.init[i];
    for (std::size_t k = 0; k <= steps; ++k) {
        if (rec_pos[k] != static_cast<std::size_t>(-1))
            for (std::size_t i = 0; i < n * d; ++i) cfg.record[rec_pos[k] * n * d + i] = out[i];
        if (k == steps || n == 0) break;
        const auto at = smooth(model, cfg.times[k]);
        const double a = drift_coef[k], b = score_coef[k], c = noise_coef[k];
        parallel_for(
            n, kSamplerChunk, cfg.threads,
            [&](std::size_t begin, std::size_t end, const StopToken& stop) {
                if (stop.stop_requested()) return;  // cancelled: the whole call is discarded
                const std::size_t B = end - begin;
                auto ws = make_sampler_workspace(model, B);
                std::vector<double> y(d * B), s(d * B), xi(dpad * B);
                std::vector<std::uint64_t> stream(B), counter(B);
                for (std::size_t i = 0; i < B; ++i)
                    for (std::size_t j = 0; j < d; ++j) y[j * B + i] = out[(begin + i) * d + j];
                score_batch(at, B, y.data(), s.data(), ws);
                if (stochastic) {
                    if (cfg.noise) {
                        for (std::size_t i = 0; i < B; ++i) {
                            const double* src = cfg.noise + ((begin + i) * steps + k) * d;
                            for (std::size_t j = 0; j < d; ++j) xi[j * B + i] = src[j];
                        }
                    } else {
                        // Sample i, step k: normals [k dpad, k dpad + d) of stream
                        // (kStepNoise, i), i.e. blocks k * half + q, q < half; block q gives
                        // coordinates 2q and 2q + 1.
                        for (std::size_t i = 0; i < B; ++i) stream[i] = rng::make_stream(rng::kStepNoise, begin + i);
                        for (std::size_t q = 0; q < half; ++q) {
                            for (std::size_t i = 0; i < B; ++i) counter[i] = k * half + q;
                            rng::normal_pairs(cfg.seed, B, stream.data(), counter.data(), xi.data() + 2 * q * B,
                                              xi.data() + (2 * q + 1) * B);
                        }
                    }
                    for (std::size_t j = 0; j < d; ++j) {
                        double* __restrict yj = y.data() + j * B;
                        const double* sj = s.data() + j * B;
                        const double* xj = xi.data() + j * B;
#pragma omp simd
                        for (std::size_t i = 0; i < B; ++i) yj[i] = a * yj[i] + b * sj[i] + c * xj[i];
                    }
                } else {
                    for (std::size_t j = 0; j < d; ++j) {
                        double* __restrict yj = y.data() + j * B;
                        const double* sj = s.data() + j * B;
#pragma omp simd
                        for (std::size_t i = 0; i < B; ++i) yj[i] = a * yj[i] + b * sj[i];
                    }
                }
                for (std::size_t i = 0; i < B; ++i)
                    for (std::size_t j = 0; j < d; ++j) out[(begin + i) * d + j] = y[j * B + i];
            },
            poll);
    }
}

}  // namespace modelcollapse
