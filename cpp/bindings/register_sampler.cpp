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
}

}  // namespace mcbind
