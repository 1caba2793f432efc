// Metrics kernels: exact and binned Gaussian KDE, sliced Wasserstein.
#include <modelcollapse/kde.hpp>
#include <modelcollapse/wasserstein.hpp>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;

static void check_samples_weights(const darray& samples, const darray& weights) {
    require_ndim(samples, 2, "samples");
    require_ndim(weights, 1, "weights");
    if (samples.shape(0) < 1 || samples.shape(1) < 1)
        throw py::value_error("samples must be a non-empty (n, d) array");
    require_dim(weights, 0, samples.shape(0), "weights");
}

static void check_bandwidth(const darray& H, py::ssize_t d) {
    require_ndim(H, 2, "bandwidth");
    require_dim(H, 0, d, "bandwidth");
    require_dim(H, 1, d, "bandwidth");
}

static py::array_t<double> kde_exact(const darray& samples, const darray& weights, const darray& H,
                                     const darray& points, int threads) {
    check_samples_weights(samples, weights);
    const auto n = samples.shape(0), d = samples.shape(1);
    check_bandwidth(H, d);
    require_ndim(points, 2, "points");
    require_dim(points, 1, d, "points");
    const auto m = points.shape(0);
    py::array_t<double> out(m);
    double* o = out.mutable_data();
    try {
        run_without_gil([&](const mc::PollFn& poll) {
            mc::kde::exact(samples.data(), weights.data(), n, d, H.data(), points.data(), m, o, threads, poll);
        });
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return out;
}

// axes: list of (start, step, count) per dimension (d = 1 or 2).
static py::array_t<double> kde_exact_grid(const darray& samples, const darray& weights, const darray& H,
                                          const std::vector<std::tuple<double, double, py::ssize_t>>& axes,
                                          int threads) {
    check_samples_weights(samples, weights);
    const auto n = samples.shape(0), d = samples.shape(1);
    check_bandwidth(H, d);
    if (d != 1 && d != 2) throw py::value_error("exact grid KDE supports d = 1 or 2");
    if (static_cast<py::ssize_t>(axes.size()) != d) throw py::value_error("axes must have one entry per dimension");
    std::vector<mc::kde::GridAxis> ax(d);
    std::vector<py::ssize_t> shape;
    for (py::ssize_t a = 0; a < d; ++a) {
        auto [start, step, count] = axes[a];
        if (count < 1 || !(step > 0.0) || !std::isfinite(start) || !std::isfinite(step))
            throw py::value_error("each grid axis needs count >= 1, a finite start and a finite step > 0");
        ax[a] = mc::kde::GridAxis{start, step, static_cast<std::size_t>(count)};
        shape.push_back(count);
    }
    py::array_t<double> out(shape);
    double* o = out.mutable_data();
    try {
        run_without_gil([&](const mc::PollFn& poll) {
            mc::kde::exact_grid(samples.data(), weights.data(), n, d, H.data(), ax.data(), o, threads, poll);
        });
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return out;
}

// axes: list of (start, step, count, refine, pad) per dimension.
static py::array_t<double> kde_binned(const darray& samples, const darray& weights, const darray& H,
                                      const std::vector<std::tuple<double, double, py::ssize_t, py::ssize_t, py::ssize_t>>& axes,
                                      double R, int threads) {
    check_samples_weights(samples, weights);
    const auto n = samples.shape(0), d = samples.shape(1);
    check_bandwidth(H, d);
    if (d != 1 && d != 2) throw py::value_error("binned KDE supports d = 1 or 2");
    if (static_cast<py::ssize_t>(axes.size()) != d) throw py::value_error("axes must have one entry per dimension");
    if (!(R > 0.0)) throw py::value_error("truncation radius must be > 0");
    std::vector<mc::kde::Axis> ax(d);
    std::vector<py::ssize_t> shape;
    double fine_cells = 1.0;
    for (py::ssize_t a = 0; a < d; ++a) {
        auto [start, step, count, refine, pad] = axes[a];
        if (count < 1 || refine < 1 || pad < 0 || !(step > 0.0))
            throw py::value_error("each axis needs count >= 1, refine >= 1, pad >= 0, step > 0");
        ax[a] = mc::kde::Axis{start, step, static_cast<std::size_t>(count), static_cast<std::size_t>(refine),
                              static_cast<std::size_t>(pad)};
        fine_cells *= static_cast<double>(ax[a].fine_count());
        shape.push_back(count);
    }
    if (fine_cells > 2e8) throw py::value_error("binned KDE: the binning grid would exceed 2e8 cells; use a coarser grid or a larger tol");
    py::array_t<double> out(shape);
    double* o = out.mutable_data();
    try {
        run_without_gil([&](const mc::PollFn& poll) {
            mc::kde::binned(samples.data(), weights.data(), n, d, H.data(), ax.data(), R, o, threads, poll);
        });
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return out;
}

static py::array_t<double> sliced_projections(std::uint64_t seed, py::ssize_t n_projections, py::ssize_t d) {
    if (n_projections < 1 || d < 1) throw py::value_error("n_projections and d must be >= 1");
    py::array_t<double> out({n_projections, d});
    double* o = out.mutable_data();
    run_without_gil([&](const mc::PollFn& poll) {
        for (py::ssize_t l = 0; l < n_projections; ++l) {
            poll_or_cancel(poll);
            mc::wasserstein::projection(seed, l, d, o + l * d);
        }
    });
    return out;
}

static py::array_t<double> sliced_wp_pow(const darray& x, const darray& y, const darray& theta, double p,
                                         int threads) {
    require_ndim(x, 2, "x");
    require_ndim(y, 2, "y");
    require_ndim(theta, 2, "projections");
    const auto n = x.shape(0), m = y.shape(0), d = x.shape(1);
    if (n < 1 || m < 1) throw py::value_error("x and y must be non-empty");
    require_dim(y, 1, d, "y");
    require_dim(theta, 1, d, "projections");
    if (!(p >= 1.0)) throw py::value_error("p must be >= 1");
    const auto L = theta.shape(0);
    py::array_t<double> out(L);
    double* o = out.mutable_data();
    run_without_gil([&](const mc::PollFn& poll) {
        mc::wasserstein::sliced_wp_pow(x.data(), n, y.data(), m, d, theta.data(), L, p, o, threads, poll);
    });
    return out;
}

static double wasserstein_1d_pow(const darray& u, const darray& v, double p) {
    require_ndim(u, 1, "x");
    require_ndim(v, 1, "y");
    if (u.shape(0) < 1 || v.shape(0) < 1) throw py::value_error("x and y must be non-empty");
    std::vector<double> a(u.data(), u.data() + u.shape(0)), b(v.data(), v.data() + v.shape(0));
    double r = 0.0;
    // One work item on one worker, so that the calling thread can poll for Ctrl-C while the
    // (possibly long) sorts run; they look at the stop flag between blocks.
    run_without_gil([&](const mc::PollFn& poll) {
        mc::parallel_for(
            1, 1, 1,
            [&](std::size_t, std::size_t, const mc::StopToken& stop) {
                std::vector<std::uint64_t> s1, s2;
                mc::wasserstein::radix_sort(a.data(), a.size(), s1, s2, stop);
                mc::wasserstein::radix_sort(b.data(), b.size(), s1, s2, stop);
                if (stop.stop_requested()) return;
                r = mc::wasserstein::wp_pow_sorted(a.data(), a.size(), b.data(), b.size(), p);
            },
            poll);
    });
    return r;
}

void register_metrics(py::module_& m) {
    m.def("kde_exact", &kde_exact, py::arg("samples"), py::arg("weights"), py::arg("bandwidth"),
          py::arg("points"), py::arg("threads") = 0,
          "Exact Gaussian KDE sum_i w_i N(z; x_i, H) at the rows of points.");
    m.def("kde_exact_grid", &kde_exact_grid, py::arg("samples"), py::arg("weights"), py::arg("bandwidth"),
          py::arg("axes"), py::arg("threads") = 0,
          "Exact Gaussian KDE on a regular grid (d = 1, 2): axes = [(start, step, count)] per dim.");
    m.def("kde_binned", &kde_binned, py::arg("samples"), py::arg("weights"), py::arg("bandwidth"),
          py::arg("axes"), py::arg("radius"), py::arg("threads") = 0,
          "Binned Gaussian KDE on a regular grid: axes = [(start, step, count, refine, pad)] per dim.");
    m.def("sliced_projections", &sliced_projections, py::arg("seed"), py::arg("n_projections"), py::arg("d"),
          "Unit directions used by sliced_wp_pow (ARS-7 stream purpose 8, index = projection).");
    m.def("sliced_wp_pow", &sliced_wp_pow, py::arg("x"), py::arg("y"), py::arg("projections"), py::arg("p") = 2.0,
          py::arg("threads") = 0, "Per-direction W_p^p between the projections of x and y.");
    m.def("wasserstein_1d_pow", &wasserstein_1d_pow, py::arg("x"), py::arg("y"), py::arg("p") = 1.0,
          "Exact 1-D W_p^p between two empirical laws (uniform weights).");
    m.attr("PURPOSE_SLICED_PROJECTION") = static_cast<int>(mc::rng::kSlicedProjection);
}

}  // namespace mcbind
