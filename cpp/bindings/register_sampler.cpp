#include <modelcollapse/sampler.hpp>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;

void register_sampler(py::module_& m) {
    // Bound as an enum (not integer codes): Python passes _core.Integrator.<name>.
    py::enum_<mc::Integrator>(m, "Integrator", "Time integrator of the reverse sampler.")
        .value("euler_maruyama", mc::Integrator::euler_maruyama)
        .value("exponential", mc::Integrator::exponential)
        .value("ode", mc::Integrator::ode);
    m.def(
        "sampler_noise",
        [](std::uint64_t seed, py::ssize_t n, py::ssize_t steps, py::ssize_t d, int threads) {
            if (n < 0 || steps < 0 || d < 1) throw py::value_error("need n >= 0, steps >= 0, d >= 1");
            py::array_t<double> out({n, steps, d});
            double* p = out.mutable_data();
            const std::size_t dpad = d + (d % 2);
            run_without_gil([&](const mc::PollFn& poll) {
                mc::parallel_for(
                    n, 64, threads,
                    [&](std::size_t b, std::size_t e, const mc::StopToken& stop) {
                        for (std::size_t i = b; i < e; ++i) {
                            if (stop.stop_requested()) return;
                            for (py::ssize_t k = 0; k < steps; ++k)
                                mc::rng::fill_normals(seed, mc::rng::make_stream(mc::rng::kStepNoise, i), k * dpad,
                                                      d, p + (i * steps + k) * d);
                        }
                    },
                    poll);
            });
            return out;
        },
        py::arg("seed"), py::arg("n"), py::arg("steps"), py::arg("d"), py::arg("threads") = 0,
        "The step noise the reverse sampler draws internally for `seed`, as an (n, steps, d) array.");
    // Benchmark hook (bench/bounds.py): the mixture sampler with parts of each step left out,
    // so their shares of a step's time can be measured in one process. Not for results.
    m.def(
        "_sampler_parts",
        // model as an object: this module registers before GaussianMixtureCore is bound, so a typed
        // argument would show as a C++ type in the signature (and break the stub generator)
        [](const py::object& model_obj, const darray& times, std::uint64_t seed, const darray& init,
           unsigned parts, int threads) {
            const auto& model = model_obj.cast<const mc::GaussianMixtureData&>();
            require_ndim(times, 1, "times");
            require_ndim(init, 2, "init");
            require_dim(init, 1, static_cast<py::ssize_t>(model.d), "init");
            if (times.shape(0) < 2) throw py::value_error("times needs at least 2 points");
            if (parts > mc::kAllParts) throw py::value_error("parts must be a mask of 1 (score), 2 (noise), 4 (update)");
            mc::ReverseConfig cfg;
            cfg.n = init.shape(0);
            cfg.d = model.d;
            cfg.times.assign(times.data(), times.data() + times.shape(0));
            for (std::size_t k = 0; k + 1 < cfg.times.size(); ++k)
                if (!(cfg.times[k] > cfg.times[k + 1])) throw py::value_error("times must be strictly decreasing");
            cfg.seed = seed;
            cfg.init = init.data();
            cfg.threads = threads;
            cfg.parts = parts;
            py::array_t<double> out({init.shape(0), init.shape(1)});
            double* po = out.mutable_data();
            run_without_gil([&](const mc::PollFn& poll) { mc::reverse_sample(model, cfg, po, poll); });
            return out;
        },
        py::arg("model"), py::arg("times"), py::arg("seed"), py::arg("init"), py::arg("parts"), py::arg("threads") = 1,
        "Benchmark hook: the Euler-Maruyama sampler of a GaussianMixtureCore with only the step parts in the mask `parts` "
        "(1 score, 2 noise, 4 update); returns the final points.");
}

}  // namespace mcbind
