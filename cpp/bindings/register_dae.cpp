// Bindings for the high-dimensional DAE: online SGD (replicas over threads), the samples it
// draws (for exact tests), training on injected samples, and the generative sampler.
// Activations are the bound enum _core.Activation; the scalar settings and the time grid of
// training travel in one bound struct, _core.DaeTrainOptions (named read-write fields).
#include <modelcollapse/dae.hpp>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;
namespace dae = modelcollapse::dae;

namespace {

// Settings of dae_train and dae_train_injected (the fields the latter does not use are
// marked). The time grid is either uniform (one t ~ U(0, 1) per step, p_t = p0 + p1 t) or
// the points (alpha, beta, p).
struct TrainOptions {
    double lr = 0.2;
    double weight_decay = 0.0;
    bool train_b = true;
    dae::Activation activation = dae::Activation::kTanh;
    bool uniform = false;
    std::vector<double> alpha, beta, p;
    double p0 = 0.0, p1 = 0.0;
    // dae_train only
    std::uint64_t seed = 0;
    py::ssize_t n_steps = 0;
    py::ssize_t record_every = 1;
    bool random_init = true;  // N(0, init_scale^2) weights drawn per replica, else w0
    double init_scale = 1.0;
    bool sequential = false;  // data rows in order instead of uniform draws
    int threads = 0;
};

dae::Hyper make_hyper(const TrainOptions& o) { return dae::Hyper{o.lr, o.weight_decay, o.train_b, o.activation}; }

dae::Schedule make_schedule(const TrainOptions& o) {
    dae::Schedule s;
    s.uniform = o.uniform;
    s.p0 = o.p0;
    s.p1 = o.p1;
    if (!o.uniform) {
        if (o.alpha.empty()) throw py::value_error("the time grid must have at least one point");
        if (o.beta.size() != o.alpha.size() || o.p.size() != o.alpha.size())
            throw py::value_error("alpha, beta and p must have the same length");
        s.alpha = o.alpha;
        s.beta = o.beta;
        s.p = o.p;
    }
    return s;
}

dae::Target make_target(const darray& means, const darray& scales, const darray& weights, const darray& data,
                        py::ssize_t d, bool sequential) {
    dae::Target tg;
    tg.sequential = sequential;
    tg.d = static_cast<std::size_t>(d);
    require_ndim(means, 2, "means");
    require_ndim(scales, 2, "scales");
    require_ndim(weights, 1, "weights");
    require_ndim(data, 2, "data");
    const py::ssize_t K = means.shape(0);
    tg.K = static_cast<std::size_t>(K);
    if (data.shape(0) > 0) {
        require_dim(data, 1, d, "data");
        tg.data = data.data();
        tg.n_data = static_cast<std::size_t>(data.shape(0));
    }
    if (K > 0) require_dim(means, 1, d, "means");
    if (tg.data == nullptr) {
        if (K < 1) throw py::value_error("means must have at least one row (component)");
        require_dim(scales, 0, K, "scales");
        require_dim(scales, 1, d, "scales");
        require_dim(weights, 0, K, "weights");
        tg.scales = scales.data();
        double acc = 0.0;
        for (py::ssize_t k = 0; k < K; ++k) {
            double wk = weights.data()[k];
            if (!(wk >= 0.0)) throw py::value_error("weights must be non-negative");
            acc += wk;
            tg.cum_weights.push_back(acc);
        }
        if (!(acc > 0.0)) throw py::value_error("weights must have a positive sum");
        for (auto& c : tg.cum_weights) c /= acc;
        tg.cum_weights.back() = 1.0;
    }
    tg.means = K > 0 ? means.data() : nullptr;
    return tg;
}

// Weights cross the boundary as d x r (row i = coordinate i); the kernels store them r x d
// (row j = hidden unit j).
void to_unit_major(const double* src, py::ssize_t d, py::ssize_t r, double scale, double* W) {
    for (py::ssize_t i = 0; i < d; ++i)
        for (py::ssize_t j = 0; j < r; ++j) W[j * d + i] = scale * src[i * r + j];
}

void to_coord_major(const double* W, py::ssize_t d, py::ssize_t r, double* dst) {
    for (py::ssize_t i = 0; i < d; ++i)
        for (py::ssize_t j = 0; j < r; ++j) dst[i * r + j] = W[j * d + i];
}

// Weights (reps, d, r) or (d, r): sets d and r, checks d >= 1 and r in [1, kMaxR].
void weight_shape(const darray& w, const char* name, py::ssize_t& d, py::ssize_t& r) {
    d = w.shape(w.ndim() - 2);
    r = w.shape(w.ndim() - 1);
    if (d < 1 || r < 1) throw py::value_error(std::string(name) + " must have d >= 1 rows and r >= 1 columns");
    if (r > dae::kMaxR) throw py::value_error("r must be <= 64");
}

void require_vector(const darray& v, py::ssize_t size, const char* name) {
    require_ndim(v, 1, name);
    require_dim(v, 0, size, name);
}

template <class F>
void dispatch_r(int r, F&& f) {
    switch (r) {
        case 1: f(std::integral_constant<int, 1>()); break;
        case 2: f(std::integral_constant<int, 2>()); break;
        case 3: f(std::integral_constant<int, 3>()); break;
        case 4: f(std::integral_constant<int, 4>()); break;
        case 5: f(std::integral_constant<int, 5>()); break;
        case 6: f(std::integral_constant<int, 6>()); break;
        case 7: f(std::integral_constant<int, 7>()); break;
        case 8: f(std::integral_constant<int, 8>()); break;
        default: f(std::integral_constant<int, 0>()); break;
    }
}

// The recorded history of all replicas: (reps, n_rec, ...) arrays and the step numbers.
struct History {
    std::size_t every, n_rec;
    py::ssize_t reps, r, K, R;
    py::array_t<double> Q, M, G, b, v;

    History(py::ssize_t reps_, py::ssize_t r_, py::ssize_t K_, py::ssize_t R_, std::size_t n_steps, std::size_t every_)
        : every(every_), n_rec(dae::n_records(n_steps, every_)), reps(reps_), r(r_), K(K_), R(R_) {
        const auto n = static_cast<py::ssize_t>(n_rec);
        Q = py::array_t<double>({reps, n, r, r});
        M = py::array_t<double>({reps, n, K, r});
        G = py::array_t<double>({reps, n, r, R});
        b = py::array_t<double>({reps, n});
        v = py::array_t<double>({reps, n, r});
    }

    // The recorder of replica k (pointers into the arrays; call with the GIL held).
    dae::Recorder recorder(std::size_t k, const double* observe) {
        dae::Recorder rec;
        rec.every = every;
        rec.n_rec = n_rec;
        rec.observe = observe;
        rec.R = static_cast<std::size_t>(R);
        rec.Q = Q.mutable_data() + k * n_rec * r * r;
        rec.M = K > 0 ? M.mutable_data() + k * n_rec * K * r : nullptr;
        rec.G = R > 0 ? G.mutable_data() + k * n_rec * r * R : nullptr;
        rec.b = b.mutable_data() + k * n_rec;
        rec.v = v.mutable_data() + k * n_rec * r;
        return rec;
    }

    py::array_t<std::int64_t> steps(std::size_t n_steps) const {
        py::array_t<std::int64_t> out(static_cast<py::ssize_t>(n_rec));
        std::size_t slot = 0;
        out.mutable_data()[slot++] = 0;
        for (std::size_t s = 1; s <= n_steps; ++s)
            if (s % every == 0 || s == n_steps) out.mutable_data()[slot++] = static_cast<std::int64_t>(s);
        return out;
    }
};

py::dict train(const darray& means, const darray& scales, const darray& weights, const darray& data,
               const darray& w0, const darray& b0, const darray& v0, const darray& observe, const TrainOptions& o) {
    require_ndim(w0, 3, "w0");
    const py::ssize_t reps = w0.shape(0);
    py::ssize_t d, r;
    weight_shape(w0, "w0", d, r);
    if (reps < 1) throw py::value_error("w0 must have shape (replicas>=1, d>=1, r>=1)");
    if (o.n_steps < 0) throw py::value_error("n_steps must be >= 0");
    if (o.record_every < 1) throw py::value_error("record_every must be >= 1");
    require_vector(b0, reps, "b0");
    require_ndim(v0, 2, "v0");
    require_dim(v0, 0, reps, "v0");
    require_dim(v0, 1, r, "v0");
    require_ndim(observe, 2, "observe");
    const py::ssize_t R = observe.shape(1);
    if (R > 0) require_dim(observe, 0, d, "observe");
    const dae::Target tg = make_target(means, scales, weights, data, d, o.sequential);
    const dae::Schedule sched = make_schedule(o);
    const dae::Hyper hy = make_hyper(o);
    const auto n_steps = static_cast<std::size_t>(o.n_steps);
    History hist(reps, r, static_cast<py::ssize_t>(tg.K), R, n_steps, static_cast<std::size_t>(o.record_every));
    const double* obs = R > 0 ? observe.data() : nullptr;
    std::vector<dae::Recorder> recs;
    for (py::ssize_t k = 0; k < reps; ++k) recs.push_back(hist.recorder(static_cast<std::size_t>(k), obs));
    py::array_t<double> w_out({reps, d, r}), b_out(reps), v_out({reps, r});
    double *wo = w_out.mutable_data(), *bo = b_out.mutable_data(), *vo = v_out.mutable_data();
    const double *w0p = w0.data(), *b0p = b0.data(), *v0p = v0.data();

    // With fewer replicas than threads, each worker runs one replica and the spare threads
    // become sample-drawing helpers (dae::BlockPrefetcher), one per replica k < n_spare.
    // This changes nothing in the results, only which thread draws the normals.
    const std::size_t n_threads = mc::resolve_threads(o.threads);
    const std::size_t n_spare = n_threads > static_cast<std::size_t>(reps) ? n_threads - reps : 0;
    run_without_gil([&](const mc::PollFn& poll) {
        dispatch_r(static_cast<int>(r), [&](auto rc) {
            constexpr int RC = decltype(rc)::value;
            dae::Trainer<RC> tr(static_cast<std::size_t>(d), static_cast<int>(r), hy, sched);
            mc::parallel_for(
                static_cast<std::size_t>(reps), 1, o.threads,
                [&](std::size_t beg, std::size_t end, const mc::StopToken& stop) {
                    std::vector<double> W(static_cast<std::size_t>(r * d));
                    for (std::size_t k = beg; k < end; ++k) {
                        if (o.random_init) {
                            std::vector<double> tmp(static_cast<std::size_t>(d * r));
                            mc::rng::fill_normals(o.seed, mc::rng::make_stream(mc::rng::kDaeInit, k), 0, tmp.size(),
                                                  tmp.data());
                            to_unit_major(tmp.data(), d, r, o.init_scale, W.data());
                        } else {
                            to_unit_major(w0p + k * d * r, d, r, 1.0, W.data());
                        }
                        double b = b0p[k];
                        std::vector<double> v(v0p + k * r, v0p + (k + 1) * r);
                        dae::train_replica<RC>(tr, tg, o.seed, k, n_steps, W.data(), b, v.data(), recs[k], stop,
                                               o.uniform, k < n_spare);
                        to_coord_major(W.data(), d, r, wo + k * d * r);
                        bo[k] = b;
                        std::copy(v.begin(), v.end(), vo + k * r);
                    }
                },
                poll);
        });
    });
    py::dict out;
    out["w"] = w_out;
    out["b"] = b_out;
    out["v"] = v_out;
    out["steps"] = hist.steps(n_steps);
    out["Q"] = hist.Q;
    out["M"] = hist.M;
    out["G"] = hist.G;
    out["b_hist"] = hist.b;
    out["v_hist"] = hist.v;
    return out;
}

py::tuple train_injected(const darray& w0, double b0, const darray& v0, const darray& x0s, const darray& x1s,
                         const darray& ts, const TrainOptions& o) {
    require_ndim(w0, 2, "w0");
    py::ssize_t d, r;
    weight_shape(w0, "w0", d, r);
    require_vector(v0, r, "v0");
    require_ndim(x0s, 2, "x0s");
    require_ndim(x1s, 2, "x1s");
    require_ndim(ts, 1, "ts");
    const py::ssize_t n = x0s.shape(0);
    require_dim(x0s, 1, d, "x0s");
    require_dim(x1s, 0, n, "x1s");
    require_dim(x1s, 1, d, "x1s");
    if (o.uniform) require_dim(ts, 0, n, "ts");
    const dae::Schedule sched = make_schedule(o);
    const dae::Hyper hy = make_hyper(o);
    std::vector<double> W(static_cast<std::size_t>(r * d));
    to_unit_major(w0.data(), d, r, 1.0, W.data());
    double b = b0;
    std::vector<double> v(v0.data(), v0.data() + r);
    const double *px0 = x0s.data(), *px1 = x1s.data(), *pts = ts.data();
    run_without_gil([&](const mc::PollFn& poll) {
        dispatch_r(static_cast<int>(r), [&](auto rc) {
            constexpr int RC = decltype(rc)::value;
            dae::Trainer<RC> tr(static_cast<std::size_t>(d), static_cast<int>(r), hy, sched);
            for (py::ssize_t s = 0; s < n; ++s) {
                if (s % 64 == 0) poll_or_cancel(poll);  // throttled: a clock read most times
                tr.step(W.data(), b, v.data(), px0 + s * d, px1 + s * d, o.uniform ? pts[s] : 0.0);
            }
        });
    });
    py::array_t<double> w_out({d, r}), v_out(r);
    to_coord_major(W.data(), d, r, w_out.mutable_data());
    std::copy(v.begin(), v.end(), v_out.mutable_data());
    return py::make_tuple(w_out, b, v_out);
}

py::tuple draw(const darray& means, const darray& scales, const darray& weights, const darray& data, py::ssize_t d,
               std::uint64_t seed, std::uint64_t replica, py::ssize_t n_steps, bool sequential) {
    if (n_steps < 0 || d < 1) throw py::value_error("n_steps must be >= 0 and d >= 1");
    dae::Target tg = make_target(means, scales, weights, data, d, sequential);
    py::array_t<double> x0({n_steps, d}), x1({n_steps, d}), t(n_steps);
    dae::draw_samples(tg, seed, replica, static_cast<std::size_t>(n_steps), x0.mutable_data(), x1.mutable_data(),
                      t.mutable_data());
    return py::make_tuple(x0, x1, t);
}

// out[i, q] = scale * sum_k A[k, q] X[k] for A (d, cols) stored column q at stride cols.
void project(const double* A, py::ssize_t d, py::ssize_t cols, const double* X, double scale, double* out) {
    for (py::ssize_t q = 0; q < cols; ++q) {
        double a = 0.0;
        for (py::ssize_t k = 0; k < d; ++k) a += A[k * cols + q] * X[k];
        out[q] = a * scale;
    }
}

py::tuple sample(const darray& w, const darray& v, dae::Activation act, const darray& delta, const darray& kappa,
                 const darray& kstar, const darray& noise, const darray& p, py::ssize_t n_samples,
                 std::uint64_t seed, const darray& observe, bool return_full, const darray& injected,
                 int threads) {
    require_ndim(w, 2, "w");
    py::ssize_t d, r;
    weight_shape(w, "w", d, r);
    require_vector(v, r, "v");
    require_ndim(delta, 1, "delta");
    const py::ssize_t n = delta.shape(0);
    require_vector(kappa, n, "kappa");
    require_vector(kstar, n, "kstar");
    require_vector(noise, n, "noise");
    require_vector(p, n, "p");
    if (n_samples < 0) throw py::value_error("n_samples must be >= 0");
    require_ndim(observe, 2, "observe");
    const py::ssize_t R = observe.shape(1);
    if (R > 0) require_dim(observe, 0, d, "observe");
    const bool inj = injected.ndim() == 3 && injected.shape(0) > 0;
    if (inj) {
        require_dim(injected, 0, n_samples, "noise_array");
        require_dim(injected, 1, n + 1, "noise_array");
        require_dim(injected, 2, d, "noise_array");
    }
    dae::SamplerCoefs co;
    co.delta.assign(delta.data(), delta.data() + n);
    co.kappa.assign(kappa.data(), kappa.data() + n);
    co.kstar.assign(kstar.data(), kstar.data() + n);
    co.noise.assign(noise.data(), noise.data() + n);
    co.p.assign(p.data(), p.data() + n);
    std::vector<double> W(static_cast<std::size_t>(r * d));
    to_unit_major(w.data(), d, r, 1.0, W.data());
    std::vector<double> vv(v.data(), v.data() + r);
    py::array_t<double> full(return_full ? std::vector<py::ssize_t>{n_samples, d} : std::vector<py::ssize_t>{0, d});
    py::array_t<double> proj({n_samples, R}), zout({n_samples, r});
    double* fp = full.mutable_data();
    double* pp = proj.mutable_data();
    double* zp = zout.mutable_data();
    const double* obs = R > 0 ? observe.data() : nullptr;
    const double* injp = inj ? injected.data() : nullptr;
    const double sd = 1.0 / std::sqrt(static_cast<double>(d));
    run_without_gil([&](const mc::PollFn& poll) {
        dispatch_r(static_cast<int>(r), [&](auto rc) {
            constexpr int RC = decltype(rc)::value;
            mc::parallel_for(
                static_cast<std::size_t>(n_samples), 16, threads,
                [&](std::size_t beg, std::size_t end, const mc::StopToken& stop) {
                    std::vector<double> X(d), buf(d);
                    for (std::size_t i = beg; i < end; ++i) {
                        if (stop.stop_requested()) return;
                        dae::sample_one<RC>(W.data(), d, static_cast<int>(r), vv.data(), act, co, X.data(), seed, i,
                                            injp ? injp + i * (n + 1) * d : nullptr, buf.data());
                        if (return_full) std::copy(X.begin(), X.end(), fp + i * d);
                        project(obs, d, R, X.data(), 1.0, pp + i * R);
                        // Z = w^T X / sqrt d (W is the r x d copy)
                        for (py::ssize_t j = 0; j < r; ++j) {
                            double a = 0.0;
                            for (py::ssize_t k = 0; k < d; ++k) a += W[j * d + k] * X[k];
                            zp[i * r + j] = a * sd;
                        }
                    }
                },
                poll);
        });
    });
    return py::make_tuple(full, proj, zout);
}

}  // namespace

void register_dae(py::module_& m) {
    m.attr("PURPOSE_DAE_INIT") = static_cast<int>(mc::rng::kDaeInit);
    // Names match modelcollapse.dae.ACTIVATIONS (erf is erf(h), not erf(h / sqrt 2)).
    py::enum_<dae::Activation>(m, "Activation", "Activation sigma of the DAE's hidden layer.")
        .value("tanh", dae::Activation::kTanh)
        .value("relu", dae::Activation::kRelu)
        .value("linear", dae::Activation::kLinear)
        .value("erf", dae::Activation::kErf)
        .value("sigmoid", dae::Activation::kSigmoid);
    py::class_<TrainOptions>(m, "DaeTrainOptions",
                             "Settings of dae_train / dae_train_injected (see modelcollapse.dae.train).")
        .def(py::init<>())
        .def_readwrite("lr", &TrainOptions::lr)
        .def_readwrite("weight_decay", &TrainOptions::weight_decay)
        .def_readwrite("train_b", &TrainOptions::train_b)
        .def_readwrite("activation", &TrainOptions::activation)
        .def_readwrite("uniform", &TrainOptions::uniform, "one t ~ U(0, 1) per step instead of the grid")
        .def_readwrite("alpha", &TrainOptions::alpha, "time grid: alpha_t (unused when uniform)")
        .def_readwrite("beta", &TrainOptions::beta, "time grid: beta_t")
        .def_readwrite("p", &TrainOptions::p, "time grid: p_t")
        .def_readwrite("p0", &TrainOptions::p0, "uniform mode: p_t = p0 + p1 t")
        .def_readwrite("p1", &TrainOptions::p1)
        .def_readwrite("seed", &TrainOptions::seed, "dae_train only")
        .def_readwrite("n_steps", &TrainOptions::n_steps, "dae_train only")
        .def_readwrite("record_every", &TrainOptions::record_every, "dae_train only")
        .def_readwrite("random_init", &TrainOptions::random_init, "dae_train only: N(0, init_scale^2) weights, else w0")
        .def_readwrite("init_scale", &TrainOptions::init_scale, "dae_train only")
        .def_readwrite("sequential", &TrainOptions::sequential, "dae_train only: data rows in order")
        .def_readwrite("threads", &TrainOptions::threads, "dae_train only");
    m.def("dae_train", &train, py::arg("means"), py::arg("scales"), py::arg("weights"), py::arg("data"),
          py::arg("w0"), py::arg("b0"), py::arg("v0"), py::arg("observe"), py::arg("options"),
          "Online SGD of the tied two-layer DAE, replicas over threads (see modelcollapse.dae.train).");
    m.def("dae_train_injected", &train_injected, py::arg("w0"), py::arg("b0"), py::arg("v0"), py::arg("x0s"),
          py::arg("x1s"), py::arg("ts"), py::arg("options"),
          "SGD steps on given samples (x0s, x1s, ts); returns (w, b, v).");
    m.def("dae_draw", &draw, py::arg("means"), py::arg("scales"), py::arg("weights"), py::arg("data"), py::arg("d"),
          py::arg("seed"), py::arg("replica"), py::arg("n_steps"), py::arg("sequential") = false,
          "The (x0, x1, t) samples dae_train draws for one replica.");
    m.def("dae_sample", &sample, py::arg("w"), py::arg("v"), py::arg("activation"), py::arg("delta"),
          py::arg("kappa"), py::arg("kstar"), py::arg("noise"), py::arg("p"), py::arg("n_samples"), py::arg("seed"),
          py::arg("observe"), py::arg("return_full"), py::arg("noise_array"), py::arg("threads") = 0,
          "Euler-Maruyama generative sampler with the trained DAE drift; returns (X, E^T X, w^T X / sqrt d).");
}

}  // namespace mcbind
