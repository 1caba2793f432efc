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

// Parts of a sampler step, for the microbenchmarks that split its time (bench/bounds.py):
// a run without a part leaves it out (no score: s = 0; no noise: xi = 0, nothing drawn; no
// update: y never moves). Every public call runs all of them.
enum SamplerPart : unsigned { kPartScore = 1u, kPartNoise = 2u, kPartUpdate = 4u, kAllParts = 7u };

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
    unsigned parts = kAllParts;  // a benchmark hook (SamplerPart); always kAllParts in the library
};

inline double eval_point(const SmoothedMixture& m, const double* x, double* s, MixtureWorkspace& w) {
    return mixture_eval_point(m, x, s, w);
}
inline double eval_point(const SmoothedEmpirical& m, const double* x, double* s, EmpiricalWorkspace& w) {
    return empirical_eval_point(m, x, s, w);
}
inline MixtureWorkspace make_workspace(const GaussianMixtureData& p) { return MixtureWorkspace(p.d); }
inline EmpiricalWorkspace make_workspace(const EmpiricalData& e) { return EmpiricalWorkspace(e.n, e.d); }

// Batched score evaluation for the sampler: B points in structure-of-arrays form with row
// stride ld >= B, a multiple of kSamplerLanes (x[j * ld + i]), score written in the same
// layout. Kernels may compute the padding lanes [B, ld) too (their values are finite and
// never read). Models without a batched kernel go point by point.
struct MixtureSamplerWorkspace {
    MixtureBatchWorkspace batch;
    // The (x - mu) and precision-product buffers only for full covariances: zeroing them per
    // chunk was the largest part of a diagonal chunk's set-up at d = 64.
    MixtureSamplerWorkspace(const GaussianMixtureData& p, std::size_t B)
        : batch(p.K, p.d, B, p.kind == CovKind::full) {}
};
inline MixtureSamplerWorkspace make_sampler_workspace(const GaussianMixtureData& p, std::size_t B) {
    return MixtureSamplerWorkspace(p, B);
}
inline void score_batch(const SmoothedMixture& m, std::size_t /*B*/, std::size_t ld, const double* x, double* s,
                        MixtureSamplerWorkspace& w) {
    mixture_eval_batch(m, ld, x, s, nullptr, w.batch);
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
void score_batch(const Smoothed& m, std::size_t B, std::size_t ld, const double* x, double* s,
                 PointSamplerWorkspace<PointWorkspace>& w) {
    const std::size_t d = w.y.size();
    for (std::size_t i = 0; i < B; ++i) {
        for (std::size_t j = 0; j < d; ++j) w.y[j] = x[j * ld + i];
        eval_point(m, w.y.data(), w.s.data(), w.point);
        for (std::size_t j = 0; j < d; ++j) s[j * ld + i] = w.s[j];
    }
}

// One step's update y <- a y + b s + c xi over m = d * B values (xi null: no noise term).
// Compiled with FMA where available: a y + b s + c xi then rounds once or twice instead of
// five times (results within a few ulp of the plain form; the tests compare the sampler
// with its numpy twin at rtol = atol = 1e-10).
MODELCOLLAPSE_HOT_FMA void sampler_update(std::size_t m, double a, double b, double c, double* __restrict y,
                                          const double* __restrict s, const double* __restrict xi) {
    if (xi) {
#pragma omp simd
        for (std::size_t i = 0; i < m; ++i) y[i] = a * y[i] + b * s[i] + c * xi[i];
    } else {
#pragma omp simd
        for (std::size_t i = 0; i < m; ++i) y[i] = a * y[i] + b * s[i];
    }
}

// Samples per chunk of the sampler (the unit of work handed to a thread; results do not
// depend on it, nor on the number of threads).
constexpr std::size_t kSamplerChunk = 64;
// A chunk's rows are padded to a multiple of this many samples (the mixture kernel's tile).
constexpr std::size_t kSamplerLanes = 8;

// Bytes of the smoothed models the sampler prepares ahead of a parallel region (one per
// time step of the region); a model type without a footprint counts as small.
inline std::size_t smoothed_footprint(const SmoothedMixture& s) {
    return sizeof(double) * (6 * s.means.size() + s.prec.size() + 3 * s.K) + sizeof(SmoothedMixture);
}
inline std::size_t smoothed_footprint(const SmoothedEmpirical& s) {
    return sizeof(double) * (s.centers.size() + s.scaled.size()) + sizeof(SmoothedEmpirical);
}
template <class Smoothed>
std::size_t smoothed_footprint(const Smoothed&) {
    return sizeof(Smoothed);
}
// Budget for the smoothed models of one parallel region: every chunk walks through all of
// them, so they should stay in the shared cache (an empirical law of n = 1e4 points in 2-D
// takes 480 kB per step; a Gaussian mixture with K = 8, d = 2 about 1 kB, so 200 steps are
// one region).
constexpr std::size_t kSamplerRegionBytes = std::size_t(4) << 20;

// Runs the reverse sampler; writes the final points to out (n, d).
//
// Samples are independent given the score model, so the loop over time steps runs inside
// each chunk of kSamplerChunk samples: one parallel region for the whole call (or one per
// block of steps whose smoothed models exceed kSamplerRegionBytes), and each chunk keeps
// its state in structure-of-arrays form, in its own workspaces allocated once, from the
// first step of the region to the last (transposed from and to `out` once per region).
// The smoothed models of the region's steps are built once, before it, on the calling
// thread. Per step a chunk computes the score (vectorised across its samples), draws the
// step noise through rng::normal_pairs and updates. Workers check the stop flag at every
// step, and the calling thread polls every kPollInterval while they run, so Ctrl-C is seen
// within a poll interval however short the steps are.
template <class Model>
void reverse_sample(const Model& model, const ReverseConfig& cfg, double* out, const PollFn& poll) {
    const std::size_t n = cfg.n, d = cfg.d;
    if (cfg.times.size() < 2) throw std::invalid_argument("time grid needs at least 2 points");
    const std::size_t steps = cfg.times.size() - 1;
    const std::size_t dpad = d + (d % 2);
    const std::size_t half = dpad / 2;  // generator blocks (2 normals each) per sample and step

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
    if (n == 0) return;  // the recorded states are empty too
    using Smoothed = decltype(smooth(model, cfg.times[0]));
    std::vector<Smoothed> at;
    std::size_t k0 = 0;
    while (k0 < steps) {
        // The region: steps [k0, k1), the smoothed models of as many steps as fit the budget
        // (at least one).
        at.clear();
        std::size_t bytes = 0, k1 = k0;
        while (k1 < steps && (k1 == k0 || bytes < kSamplerRegionBytes)) {
            at.push_back(smooth(model, cfg.times[k1]));
            bytes += smoothed_footprint(at.back());
            ++k1;
        }
        const bool last = k1 == steps;
        parallel_for(
            n, kSamplerChunk, cfg.threads,
            [&](std::size_t begin, std::size_t end, const StopToken& stop) {
                const std::size_t B = end - begin;
                const std::size_t ld = (B + kSamplerLanes - 1) / kSamplerLanes * kSamplerLanes;
                auto ws = make_sampler_workspace(model, ld);
                // Padding lanes start at 0 and get no noise: they stay finite.
                std::vector<double> y(d * ld, 0.0), s(d * ld, 0.0), xi(stochastic ? dpad * ld : 0, 0.0);
                std::vector<std::uint64_t> stream(B), counter(B);
                for (std::size_t i = 0; i < B; ++i) stream[i] = rng::make_stream(rng::kStepNoise, begin + i);
                for (std::size_t i = 0; i < B; ++i)
                    for (std::size_t j = 0; j < d; ++j) y[j * ld + i] = out[(begin + i) * d + j];
                auto record = [&](std::size_t k) {
                    if (rec_pos[k] == static_cast<std::size_t>(-1)) return;
                    double* dst = cfg.record + (rec_pos[k] * n + begin) * d;
                    for (std::size_t i = 0; i < B; ++i)
                        for (std::size_t j = 0; j < d; ++j) dst[i * d + j] = y[j * ld + i];
                };
                for (std::size_t k = k0; k < k1; ++k) {
                    if (stop.stop_requested()) return;  // cancelled: the whole call is discarded
                    record(k);
                    if (cfg.parts & kPartScore) score_batch(at[k - k0], B, ld, y.data(), s.data(), ws);
                    const double a = drift_coef[k], b = score_coef[k], c = noise_coef[k];
                    if (stochastic) {
                        if (!(cfg.parts & kPartNoise)) {
                            // benchmark hook: xi stays 0
                        } else if (cfg.noise) {
                            for (std::size_t i = 0; i < B; ++i) {
                                const double* src = cfg.noise + ((begin + i) * steps + k) * d;
                                for (std::size_t j = 0; j < d; ++j) xi[j * ld + i] = src[j];
                            }
                        } else {
                            // Sample i, step k: normals [k dpad, k dpad + d) of stream
                            // (kStepNoise, i), i.e. blocks k * half + q, q < half; block q
                            // gives coordinates 2q and 2q + 1.
                            for (std::size_t q = 0; q < half; ++q) {
                                for (std::size_t i = 0; i < B; ++i) counter[i] = k * half + q;
                                rng::normal_pairs(cfg.seed, B, stream.data(), counter.data(), xi.data() + 2 * q * ld,
                                                  xi.data() + (2 * q + 1) * ld);
                            }
                        }
                        if (cfg.parts & kPartUpdate) sampler_update(d * ld, a, b, c, y.data(), s.data(), xi.data());
                    } else if (cfg.parts & kPartUpdate) {
                        sampler_update(d * ld, a, b, 0.0, y.data(), s.data(), nullptr);
                    }
                }
                if (last) record(steps);
                for (std::size_t i = 0; i < B; ++i)
                    for (std::size_t j = 0; j < d; ++j) out[(begin + i) * d + j] = y[j * ld + i];
            },
            poll);
        k0 = k1;
    }
}

}  // namespace modelcollapse
