#include <modelcollapse/empirical.hpp>
#include <modelcollapse/mixture.hpp>

#include "bindings.hpp"
#include "score_eval.hpp"

namespace mcbind {

namespace mc = modelcollapse;

static mc::GaussianMixtureData make_mixture(const darray& weights, const darray& means, int kind,
                                            const darray& cov) {
    require_ndim(weights, 1, "weights");
    require_ndim(means, 2, "means");
    const auto K = weights.shape(0);
    require_dim(means, 0, K, "means");
    const auto d = means.shape(1);
    if (K < 1 || d < 1) throw py::value_error("a mixture needs at least one component and d >= 1");
    switch (kind) {
        case 0:
            require_ndim(cov, 1, "covariances (isotropic)");
            require_dim(cov, 0, K, "covariances (isotropic)");
            break;
        case 1:
            require_ndim(cov, 2, "covariances (diagonal)");
            require_dim(cov, 0, K, "covariances (diagonal)");
            require_dim(cov, 1, d, "covariances (diagonal)");
            break;
        case 2:
            require_ndim(cov, 3, "covariances (full)");
            require_dim(cov, 0, K, "covariances (full)");
            require_dim(cov, 1, d, "covariances (full)");
            require_dim(cov, 2, d, "covariances (full)");
            break;
        default:
            throw py::value_error("kind must be 0 (isotropic), 1 (diagonal) or 2 (full)");
    }
    try {
        return mc::GaussianMixtureData::build(K, d, static_cast<mc::CovKind>(kind), weights.data(),
                                              means.data(), cov.data());
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
}

static mc::EmpiricalData make_empirical(const darray& samples) {
    require_ndim(samples, 2, "samples");
    if (samples.shape(0) < 1 || samples.shape(1) < 1)
        throw py::value_error("samples must be a non-empty (n, d) array");
    return mc::EmpiricalData::build(samples.shape(0), samples.shape(1), samples.data());
}

void register_mixture(py::module_& m) {
    auto gm = py::class_<mc::GaussianMixtureData>(m, "GaussianMixtureCore",
                                                  "Compiled Gaussian mixture (use modelcollapse.GaussianMixture).")
                  .def(py::init(&make_mixture), py::arg("weights"), py::arg("means"), py::arg("kind"),
                       py::arg("covariances"))
                  .def_property_readonly("n_components", [](const mc::GaussianMixtureData& g) { return g.K; })
                  .def_property_readonly("dim", [](const mc::GaussianMixtureData& g) { return g.d; })
                  .def(
                      "sample",
                      [](const mc::GaussianMixtureData& g, py::ssize_t n, double t, std::uint64_t seed,
                         std::uint64_t stream_start, int threads) {
                          if (n < 0) throw py::value_error("n must be >= 0");
                          if (!(t >= 0.0)) throw py::value_error("t must be >= 0");
                          py::array_t<double> out({n, static_cast<py::ssize_t>(g.d)});
                          double* p = out.mutable_data();
                          auto sm = mc::smooth(g, t);
                          run_without_gil([&](const mc::PollFn& poll) {
                              mc::parallel_for(
                                  n, 1024, threads,
                                  [&](std::size_t b, std::size_t e, const mc::StopToken& stop) {
                                      std::vector<double> z(g.d);
                                      for (std::size_t i = b; i < e; ++i) {
                                          if (stop.stop_requested()) return;
                                          mc::mixture_draw(sm, seed, stream_start + i, p + i * g.d, z.data());
                                      }
                                  },
                                  poll);
                          });
                          return out;
                      },
                      py::arg("n"), py::arg("t"), py::arg("seed"), py::arg("stream_start") = 0,
                      py::arg("threads") = 0,
                      "Samples of S_t p; sample i uses streams (INIT_CHOICE, stream_start + i) and "
                      "(INIT_NORMAL, stream_start + i).");
    def_score_methods<mc::GaussianMixtureData>(gm);

    auto em = py::class_<mc::EmpiricalData>(m, "EmpiricalScoreCore",
                                            "Compiled smoothed empirical law (use modelcollapse.EmpiricalScore).")
                  .def(py::init(&make_empirical), py::arg("samples"))
                  .def_property_readonly("n_points", [](const mc::EmpiricalData& e) { return e.n; })
                  .def_property_readonly("dim", [](const mc::EmpiricalData& e) { return e.d; });
    def_score_methods<mc::EmpiricalData>(em);
}

}  // namespace mcbind
