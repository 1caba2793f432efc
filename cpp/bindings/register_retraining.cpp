#include <modelcollapse/gaussian_chains.hpp>
#include <modelcollapse/random.hpp>

#include <optional>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;

static py::tuple gaussian_chains(const darray& data_mean, const darray& data_factor, std::optional<darray> init_mean,
                                 std::optional<darray> init_cov, py::ssize_t n_real, py::ssize_t n_synth,
                                 py::ssize_t rounds, py::ssize_t n_chains, bool fully_synthetic, std::uint64_t seed,
                                 int threads, std::optional<darray> noise_real, std::optional<darray> noise_synth) {
    require_ndim(data_mean, 1, "data_mean");
    const py::ssize_t d = data_mean.shape(0);
    if (d < 1) throw py::value_error("data_mean must not be empty");
    require_ndim(data_factor, 2, "data_factor");
    require_dim(data_factor, 0, d, "data_factor");
    require_dim(data_factor, 1, d, "data_factor");
    if (n_real < 0 || n_synth < 0 || rounds < 0 || n_chains < 0)
        throw py::value_error("n_real, n_synth, rounds and n_chains must be >= 0");
    if (init_mean.has_value() != init_cov.has_value())
        throw py::value_error("give both init_mean and init_cov, or neither");
    mc::GaussianChainsSpec spec;
    spec.n_chains = n_chains;
    spec.n_real = n_real;
    spec.n_synth = n_synth;
    spec.rounds = rounds;
    spec.d = d;
    spec.fully_synthetic = fully_synthetic;
    spec.init_given = init_mean.has_value();
    spec.seed = seed;
    if (spec.init_given) {
        require_ndim(*init_mean, 1, "init_mean");
        require_dim(*init_mean, 0, d, "init_mean");
        require_ndim(*init_cov, 2, "init_cov");
        require_dim(*init_cov, 0, d, "init_cov");
        require_dim(*init_cov, 1, d, "init_cov");
    }
    if (noise_real) {
        require_ndim(*noise_real, 3, "noise_real");
        require_dim(*noise_real, 0, n_chains, "noise_real");
        require_dim(*noise_real, 1, n_real, "noise_real");
        require_dim(*noise_real, 2, d, "noise_real");
    }
    if (noise_synth) {
        require_ndim(*noise_synth, 4, "noise_synth");
        require_dim(*noise_synth, 0, n_chains, "noise_synth");
        require_dim(*noise_synth, 1, rounds, "noise_synth");
        require_dim(*noise_synth, 2, n_synth, "noise_synth");
        require_dim(*noise_synth, 3, d, "noise_synth");
    }
    py::array_t<double> means({n_chains, rounds + 1, d});
    py::array_t<double> covs({n_chains, rounds + 1, d, d});
    const double* im = spec.init_given ? init_mean->data() : nullptr;
    const double* ic = spec.init_given ? init_cov->data() : nullptr;
    const double* nr = noise_real ? noise_real->data() : nullptr;
    const double* ns = noise_synth ? noise_synth->data() : nullptr;
    double* pm = means.mutable_data();
    double* pc = covs.mutable_data();
    const double* dm = data_mean.data();
    const double* df = data_factor.data();
    try {
        run_without_gil([&](const mc::PollFn& poll) {
            mc::gaussian_chains(spec, dm, df, im, ic, nr, ns, pm, pc, threads, poll);
        });
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return py::make_tuple(means, covs);
}

void register_retraining(py::module_& m) {
    m.attr("PURPOSE_GAUSS_CHAIN_REAL") = static_cast<int>(mc::rng::kGaussChainReal);
    m.attr("PURPOSE_GAUSS_CHAIN_SYNTH") = static_cast<int>(mc::rng::kGaussChainSynth);
    m.def("gaussian_chains", &gaussian_chains, py::arg("data_mean"), py::arg("data_factor"),
          py::arg("init_mean") = py::none(), py::arg("init_cov") = py::none(), py::arg("n_real"),
          py::arg("n_synth"), py::arg("rounds"), py::arg("n_chains"), py::arg("fully_synthetic"),
          py::arg("seed"), py::arg("threads") = 0, py::arg("noise_real") = py::none(),
          py::arg("noise_synth") = py::none(),
          "Independent Gaussian retraining chains; returns (means (C, T+1, d), covs (C, T+1, d, d)).");
}

}  // namespace mcbind
