// Bindings for the Helmholtz-Hodge study: perturbed score models (a compiled score-model
// type usable by the reverse sampler) and the Stein/Hermite accumulation kernel.
#include <modelcollapse/hermite_stein.hpp>
#include <modelcollapse/mixture.hpp>
#include <modelcollapse/perturbed_score.hpp>

#include "bindings.hpp"
#include "score_eval.hpp"

namespace mcbind {

namespace mc = modelcollapse;

static std::vector<double> vec_of(const py::dict& t, const char* key, std::size_t size, const char* what) {
    if (!t.contains(key)) throw py::value_error(std::string("term is missing '") + key + "' (" + what + ")");
    darray a = darray::ensure(t[key]);
    if (!a) throw py::type_error(std::string("term '") + key + "' must be a float array");
    if (static_cast<std::size_t>(a.size()) != size)
        throw py::value_error(std::string("term '") + key + "' must have " + std::to_string(size) + " entries, got " +
                              std::to_string(a.size()));
    std::vector<double> v(a.data(), a.data() + a.size());
    for (double x : v)
        if (!std::isfinite(x)) throw py::value_error(std::string("term '") + key + "' must be finite");
    return v;
}

static mc::PerturbedScoreData make_perturbed(const mc::GaussianMixtureData& base, const py::list& terms) {
    mc::PerturbedScoreData m;
    m.base = base;
    m.d = base.d;
    const std::size_t d = base.d;
    for (auto item : terms) {
        py::dict t = py::reinterpret_borrow<py::dict>(item);
        mc::ScoreTerm term;
        if (!t.contains("kind")) throw py::value_error("term is missing 'kind' (a TermKind)");
        py::object kind = t["kind"];
        // Only the bound enum: an integer would silently depend on the order of mc::TermKind.
        if (!py::isinstance<mc::TermKind>(kind))
            throw py::type_error("term 'kind' must be a modelcollapse._core.TermKind, got " +
                                 std::string(py::str(py::type::of(kind).attr("__name__"))));
        term.kind = kind.cast<mc::TermKind>();
        switch (term.kind) {
            case mc::TermKind::matrix:
                term.mat = vec_of(t, "mat", d * d, "d x d matrix");
                break;
            case mc::TermKind::linear:
                term.mat = vec_of(t, "mat", d * d, "d x d matrix");
                term.vec = vec_of(t, "vec", d, "offset f");
                term.center = vec_of(t, "center", d, "centre");
                break;
            case mc::TermKind::gradient_bump:
            case mc::TermKind::solenoidal_bump:
                if (term.kind == mc::TermKind::solenoidal_bump) term.mat = vec_of(t, "mat", d * d, "antisymmetric A");
                term.center = vec_of(t, "center", d, "centre");
                term.amp = t["amp"].cast<double>();
                term.width2 = t["width2"].cast<double>();
                if (!(term.width2 > 0.0) || !std::isfinite(term.amp))
                    throw py::value_error("bump needs width2 > 0 and a finite amplitude");
                break;
            case mc::TermKind::fourier: {
                darray om = darray::ensure(t["omega"]);
                if (!om || om.ndim() != 2 || static_cast<std::size_t>(om.shape(1)) != d)
                    throw py::value_error("fourier term 'omega' must have shape (J, d)");
                term.n_freq = om.shape(0);
                term.omega = vec_of(t, "omega", term.n_freq * d, "frequencies");
                term.phase = vec_of(t, "phase", term.n_freq, "phases");
                term.coef = vec_of(t, "coef", term.n_freq * d, "vector coefficients");
                break;
            }
        }
        m.terms.push_back(std::move(term));
    }
    return m;
}

void register_hodge(py::module_& m) {
    py::enum_<mc::TermKind>(m, "TermKind",
                            "Kind of a compiled error term of a perturbed score model (mc::TermKind): matrix "
                            "(e = M grad log p_t), linear (E (x - c_t) + f), gradient_bump (a grad g_t), "
                            "solenoidal_bump (a A grad(g_t p_t) / p_t), fourier (sum_j v_j cos(w_j . x + b_j)).")
        .value("matrix", mc::TermKind::matrix)
        .value("linear", mc::TermKind::linear)
        .value("gradient_bump", mc::TermKind::gradient_bump)
        .value("solenoidal_bump", mc::TermKind::solenoidal_bump)
        .value("fourier", mc::TermKind::fourier);

    auto cls = py::class_<mc::PerturbedScoreData>(m, "PerturbedScoreCore",
                                                  "Compiled perturbed score model (use modelcollapse.hodge.PerturbedScore).")
                   .def(py::init(&make_perturbed), py::arg("base"), py::arg("terms"))
                   .def_property_readonly("dim", [](const mc::PerturbedScoreData& p) { return p.d; })
                   .def_property_readonly("n_terms", [](const mc::PerturbedScoreData& p) { return p.terms.size(); })
                   .def(
                       "fields",
                       [](const mc::PerturbedScoreData& model, const darray& x, double t, py::object mask_obj,
                          int threads) {
                           check_points(model, x);
                           if (!(t >= 0.0)) throw py::value_error("t must be >= 0");
                           std::vector<unsigned char> mask;
                           if (!mask_obj.is_none()) {
                               auto v = mask_obj.cast<std::vector<bool>>();
                               if (v.size() != model.terms.size())
                                   throw py::value_error("mask must have one entry per term");
                               for (bool b : v) mask.push_back(b ? 1 : 0);
                           }
                           const std::size_t n = x.shape(0), d = model.d;
                           py::array_t<double> logp(static_cast<py::ssize_t>(n));
                           py::array_t<double> ts({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(d)});
                           py::array_t<double> er({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(d)});
                           const double* px = x.data();
                           double *pl = logp.mutable_data(), *pt = ts.mutable_data(), *pe = er.mutable_data();
                           const unsigned char* pm = mask.empty() ? nullptr : mask.data();
                           for_each_point(model, t, n, threads, [&](const auto& sm, std::size_t i, auto& ws) {
                               pl[i] = mc::perturbed_eval_point(sm, px + i * d, pt + i * d, pe + i * d, nullptr, pm,
                                                                ws);
                           });
                           return py::make_tuple(logp, ts, er);
                       },
                       py::arg("x"), py::arg("t"), py::arg("mask") = py::none(), py::arg("threads") = 0,
                       "(log p_t, true score, error of the selected terms) at the rows of x.");
    def_score_methods<mc::PerturbedScoreData>(cls);

    m.def(
        "hermite_multi_indices",
        [](std::size_t d, int degree) {
            if (d < 1 || degree < 1) throw py::value_error("need d >= 1 and degree >= 1");
            auto idx = mc::hermite_multi_indices(d, 1, degree);
            py::array_t<int> out({static_cast<py::ssize_t>(idx.size() / d), static_cast<py::ssize_t>(d)});
            std::copy(idx.begin(), idx.end(), out.mutable_data());
            return out;
        },
        py::arg("d"), py::arg("degree"), "Hermite multi-indices 1 <= |a| <= degree in the basis order.");

    m.def(
        "hermite_stein_system",
        [](const darray& x, const darray& s, const darray& loc, const darray& scale, int degree, int threads) {
            require_ndim(x, 2, "x");
            require_ndim(s, 2, "score");
            const auto n = x.shape(0), d = x.shape(1);
            require_dim(s, 0, n, "score");
            require_dim(s, 1, d, "score");
            require_ndim(loc, 1, "loc");
            require_dim(loc, 0, d, "loc");
            require_ndim(scale, 1, "scale");
            require_dim(scale, 0, d, "scale");
            if (n < 1 || d < 1) throw py::value_error("x must be a non-empty (n, d) array");
            if (degree < 1) throw py::value_error("degree must be >= 1");
            for (py::ssize_t i = 0; i < d; ++i)
                if (!(scale.data()[i] > 0.0)) throw py::value_error("scale must be > 0");
            mc::HermiteSteinResult res;
            const double *px = x.data(), *ps = s.data(), *pl = loc.data(), *pc = scale.data();
            run_without_gil([&](const mc::PollFn& poll) {
                res = mc::hermite_stein_system(n, d, px, ps, pl, pc, degree, threads, poll);
            });
            const auto K = static_cast<py::ssize_t>(res.K);
            py::array_t<double> b(K), G({K, K});
            std::copy(res.b.begin(), res.b.end(), b.mutable_data());
            std::copy(res.G.begin(), res.G.end(), G.mutable_data());
            return py::make_tuple(b, G);
        },
        py::arg("x"), py::arg("score"), py::arg("loc"), py::arg("scale"), py::arg("degree"), py::arg("threads") = 0,
        "(b, G) of the normalised Hermite basis: b_k = mean(s.grad psi_k + lap psi_k), G = mean(grad psi grad psi^T).");

    m.def(
        "hermite_stein_eval",
        [](const darray& x, const darray& s, const darray& loc, const darray& scale, int degree, const darray& beta,
           int threads) {
            require_ndim(x, 2, "x");
            require_ndim(s, 2, "score");
            const auto n = x.shape(0), d = x.shape(1);
            require_dim(s, 0, n, "score");
            require_dim(s, 1, d, "score");
            require_dim(loc, 0, d, "loc");
            require_dim(scale, 0, d, "scale");
            if (degree < 1) throw py::value_error("degree must be >= 1");
            const auto K = static_cast<py::ssize_t>(mc::hermite_multi_indices(d, 1, degree).size() / d);
            require_ndim(beta, 1, "beta");
            require_dim(beta, 0, K, "beta");
            py::array_t<double> stein(n), sq(n);
            const double *px = x.data(), *ps = s.data(), *pl = loc.data(), *pc = scale.data(), *pb = beta.data();
            double *pst = stein.mutable_data(), *psq = sq.mutable_data();
            run_without_gil([&](const mc::PollFn& poll) {
                mc::hermite_stein_eval(n, d, px, ps, pl, pc, degree, pb, pst, psq, threads, poll);
            });
            return py::make_tuple(stein, sq);
        },
        py::arg("x"), py::arg("score"), py::arg("loc"), py::arg("scale"), py::arg("degree"), py::arg("beta"),
        py::arg("threads") = 0,
        "Per sample, for psi = sum beta_k psi_k: (s.grad psi + lap psi, |grad psi|^2).");
}

}  // namespace mcbind
