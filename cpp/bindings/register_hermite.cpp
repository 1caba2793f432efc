// Bindings for the Hermite-moment kernel (modelcollapse.hermite).
#include <modelcollapse/hermite.hpp>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;

using iarray = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

static py::tuple hermite_moments(const darray& x, const iarray& parent, const iarray& dim, const iarray& order,
                                 bool with_squares, int threads) {
    require_ndim(x, 2, "x");
    const auto n = x.shape(0);
    const auto d = x.shape(1);
    if (n < 1 || d < 1) throw py::value_error("x must be a non-empty (n, d) array");
    if (parent.ndim() != 1 || dim.ndim() != 1 || order.ndim() != 1)
        throw py::value_error("parent, dim and order must be 1-D index arrays");
    const auto M = parent.shape(0);
    if (dim.shape(0) != M || order.shape(0) != M || M < 1)
        throw py::value_error("parent, dim and order must have the same non-zero length");
    mc::HermiteIndexTable tab;
    tab.d = static_cast<std::size_t>(d);
    tab.parent.assign(parent.data(), parent.data() + M);
    tab.dim.assign(dim.data(), dim.data() + M);
    tab.order.assign(order.data(), order.data() + M);
    if (tab.parent[0] != -1) throw py::value_error("the first multi-index must be the zero index (parent -1)");
    std::int64_t max_order = 0;
    for (py::ssize_t m = 1; m < M; ++m) {
        if (tab.parent[m] < 0 || tab.parent[m] >= m)
            throw py::value_error("parent[m] must lie in [0, m): multi-indices must be in graded order");
        if (tab.dim[m] < 0 || tab.dim[m] >= d) throw py::value_error("dim[m] must lie in [0, d)");
        if (tab.order[m] < 1) throw py::value_error("order[m] must be >= 1");
        max_order = std::max(max_order, tab.order[m]);
    }
    if (max_order > 100000) throw py::value_error("degree too large");
    tab.degree = static_cast<std::size_t>(max_order);
    py::array_t<double> mean(M);
    py::array_t<double> sq(with_squares ? M : 0);
    double* mp = mean.mutable_data();
    double* sp = with_squares ? sq.mutable_data() : nullptr;
    const double* xp = x.data();
    run_without_gil([&](const mc::PollFn& poll) {
        mc::hermite_moments(xp, static_cast<std::size_t>(n), tab, mp, sp, threads, poll);
    });
    return py::make_tuple(mean, with_squares ? py::object(sq) : py::object(py::none()));
}

void register_hermite(py::module_& m) {
    m.def("hermite_moments", &hermite_moments, py::arg("x"), py::arg("parent"), py::arg("dim"), py::arg("order"),
          py::arg("with_squares") = false, py::arg("threads") = 0,
          "Sample means of orthonormal Hermite products h_alpha (and of h_alpha^2). Internal: use "
          "modelcollapse.hermite.hermite_moments.");
}

}  // namespace mcbind
