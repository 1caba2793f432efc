// Bindings for the high-dimensional DAE: online SGD (replicas over threads), the samples it
// draws (for exact tests), training on injected samples, and the generative sampler.
#include <modelcollapse/dae.hpp>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;
namespace dae = modelcollapse::dae;

namespace {

dae::Activation to_act(int a) {
    if (a < 0 || a > 4) throw py::value_error("activation code must be in 0..4");
    return static_cast<dae::Activation>(a);
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

dae::Schedule make_schedule(bool uniform, const darray& alpha, const darray& beta, const darray& p, double p0,
                            double p1) {
    dae::Schedule s;
    s.uniform = uniform;
    s.p0 = p0;
    s.p1 = p1;
    if (!uniform) {
        require_ndim(alpha, 1, "alpha");
        require_ndim(beta, 1, "beta");
        require_ndim(p, 1, "p");
        if (alpha.shape(0) < 1) throw py::value_error("the time grid must have at least one point");
        require_dim(beta, 0, alpha.shape(0), "beta");
        require_dim(p, 0, alpha.shape(0), "p");
        s.alpha.assign(alpha.data(), alpha.data() + alpha.shape(0));
        s.beta.assign(beta.data(), beta.data() + beta.shape(0));
        s.p.assign(p.data(), p.data() + p.shape(0));
    }
    return s;
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

py::dict train(const darray& means, const darray& scales, const darray& weights, const darray& data,
               const darray& w0, const darray& b0, const darray& v0, bool random_init, double init_scale,
               std::uint64_t seed, py::ssize_t n_steps, py::ssize_t record_every, double lr, double weight_decay,
               bool train_b, int activation, bool uniform, const darray& alpha, const darray& beta,
               const darray& p, double p0, double p1, const darray& observe, int threads, bool sequential) {
    require_ndim(w0, 3, "w0");
    const py::ssize_t reps = w0.shape(0), d = w0.shape(1), r = w0.shape(2);
    if (reps < 1 || d < 1 || r < 1) throw py::value_error("w0 must have shape (replicas>=1, d>=1, r>=1)");
    if (r > dae::kMaxR) throw py::value_error("r must be <= 64");
    if (n_steps < 0) throw py::value_error("n_steps must be >= 0");
    if (record_every < 1) throw py::value_error("record_every must be >= 1");
    require_ndim(b0, 1, "b0");
    require_dim(b0, 0, reps, "b0");
    require_ndim(v0, 2, "v0");
    require_dim(v0, 0, reps, "v0");
    require_dim(v0, 1, r, "v0");
    require_ndim(observe, 2, "observe");
    const py::ssize_t R = observe.shape(1);
    if (R > 0) require_dim(observe, 0, d, "observe");
    dae::Target tg = make_target(means, scales, weights, data, d, sequential);
    dae::Schedule sched = make_schedule(uniform, alpha, beta, p, p0, p1);
    dae::Hyper hy{lr, weight_decay, train_b, to_act(activation)};
    const std::size_t every = static_cast<std::size_t>(record_every);
    const std::size_t n_rec = dae::n_records(static_cast<std::size_t>(n_steps), every);
    const py::ssize_t K = static_cast<py::ssize_t>(tg.K);

    py::array_t<double> w_out({reps, d, r});
    py::array_t<double> b_out(reps), v_out({reps, r});
    py::array_t<double> Q({reps, (py::ssize_t)n_rec, r, r}), M({reps, (py::ssize_t)n_rec, K, r}),
        G({reps, (py::ssize_t)n_rec, r, R}), bh({reps, (py::ssize_t)n_rec}), vh({reps, (py::ssize_t)n_rec, r});
    py::array_t<std::int64_t> steps_out((py::ssize_t)n_rec);
    std::vector<std::size_t> steps(n_rec);
    double* wo = w_out.mutable_data();
    double* bo = b_out.mutable_data();
    double* vo = v_out.mutable_data();
    const double* w0p = w0.data();
    const double* b0p = b0.data();
    const double* v0p = v0.data();
    double *Qp = Q.mutable_data(), *Mp = M.mutable_data(), *Gp = G.mutable_data(), *bhp = bh.mutable_data(),
           *vhp = vh.mutable_data();
    const double* obs = R > 0 ? observe.data() : nullptr;

    // With fewer replicas than threads, each worker runs one replica and the spare threads
    // become sample-drawing helpers (dae::BlockPrefetcher), one per replica k < n_spare.
    // This changes nothing in the results, only which thread draws the normals.
    const std::size_t n_threads = mc::resolve_threads(threads);
    const std::size_t n_spare = n_threads > static_cast<std::size_t>(reps) ? n_threads - reps : 0;
    run_without_gil([&](const mc::PollFn& poll) {
        dispatch_r(static_cast<int>(r), [&](auto rc) {
            constexpr int RC = decltype(rc)::value;
            dae::Trainer<RC> tr(static_cast<std::size_t>(d), static_cast<int>(r), hy, sched);
            mc::parallel_for(
                static_cast<std::size_t>(reps), 1, threads,
                [&](std::size_t beg, std::size_t end, const mc::StopToken& stop) {
                    std::vector<double> W(static_cast<std::size_t>(r * d));
                    for (std::size_t k = beg; k < end; ++k) {
                        // initial weights, stored r x d
                        if (random_init) {
                            std::vector<double> tmp(static_cast<std::size_t>(d * r));
                            mc::rng::fill_normals(seed, mc::rng::make_stream(mc::rng::kDaeInit, k), 0, tmp.size(),
                                                  tmp.data());
                            for (py::ssize_t i = 0; i < d; ++i)
                                for (py::ssize_t j = 0; j < r; ++j) W[j * d + i] = init_scale * tmp[i * r + j];
                        } else {
                            const double* src = w0p + k * d * r;
                            for (py::ssize_t i = 0; i < d; ++i)
                                for (py::ssize_t j = 0; j < r; ++j) W[j * d + i] = src[i * r + j];
                        }
                        double b = b0p[k];
                        std::vector<double> v(v0p + k * r, v0p + (k + 1) * r);
                        dae::Recorder rec;
                        rec.every = every;
                        rec.n_rec = n_rec;
                        rec.observe = obs;
                        rec.R = static_cast<std::size_t>(R);
                        rec.Q = Qp + k * n_rec * r * r;
                        rec.M = K > 0 ? Mp + k * n_rec * K * r : nullptr;
                        rec.G = R > 0 ? Gp + k * n_rec * r * R : nullptr;
                        rec.b = bhp + k * n_rec;
                        rec.v = vhp + k * n_rec * r;
                        dae::train_replica<RC>(tr, tg, seed, k, static_cast<std::size_t>(n_steps), W.data(), b,
                                               v.data(), rec, stop, uniform, k < n_spare);
                        double* dst = wo + k * d * r;
                        for (py::ssize_t i = 0; i < d; ++i)
                            for (py::ssize_t j = 0; j < r; ++j) dst[i * r + j] = W[j * d + i];
                        bo[k] = b;
                        for (py::ssize_t j = 0; j < r; ++j) vo[k * r + j] = v[j];
                    }
                },
                poll);
        });
    });
    {
        std::size_t slot = 0;
        steps[slot++] = 0;
        for (std::size_t s = 1; s <= static_cast<std::size_t>(n_steps); ++s)
            if (s % every == 0 || s == static_cast<std::size_t>(n_steps)) steps[slot++] = s;
        for (std::size_t i = 0; i < n_rec; ++i) steps_out.mutable_data()[i] = static_cast<std::int64_t>(steps[i]);
    }
    py::dict out;
    out["w"] = w_out;
    out["b"] = b_out;
    out["v"] = v_out;
    out["steps"] = steps_out;
    out["Q"] = Q;
    out["M"] = M;
    out["G"] = G;
    out["b_hist"] = bh;
    out["v_hist"] = vh;
    return out;
}

py::tuple train_injected(const darray& w0, double b0, const darray& v0, const darray& x0s, const darray& x1s,
                         const darray& ts, double lr, double weight_decay, bool train_b, int activation,
                         bool uniform, const darray& alpha, const darray& beta, const darray& p, double p0,
                         double p1) {
    require_ndim(w0, 2, "w0");
    const py::ssize_t d = w0.shape(0), r = w0.shape(1);
    if (r < 1 || r > dae::kMaxR) throw py::value_error("r must be in [1, 64]");
    require_ndim(v0, 1, "v0");
    require_dim(v0, 0, r, "v0");
    require_ndim(x0s, 2, "x0s");
    require_ndim(x1s, 2, "x1s");
    require_ndim(ts, 1, "ts");
    const py::ssize_t n = x0s.shape(0);
    require_dim(x0s, 1, d, "x0s");
    require_dim(x1s, 0, n, "x1s");
    require_dim(x1s, 1, d, "x1s");
    if (uniform) require_dim(ts, 0, n, "ts");
    dae::Schedule sched = make_schedule(uniform, alpha, beta, p, p0, p1);
    dae::Hyper hy{lr, weight_decay, train_b, to_act(activation)};
    std::vector<double> W(static_cast<std::size_t>(r * d));
    for (py::ssize_t i = 0; i < d; ++i)
        for (py::ssize_t j = 0; j < r; ++j) W[j * d + i] = w0.data()[i * r + j];
    double b = b0;
    std::vector<double> v(v0.data(), v0.data() + r);
    const double *px0 = x0s.data(), *px1 = x1s.data(), *pts = ts.data();
    run_without_gil([&](const mc::PollFn& poll) {
        dispatch_r(static_cast<int>(r), [&](auto rc) {
            constexpr int RC = decltype(rc)::value;
            dae::Trainer<RC> tr(static_cast<std::size_t>(d), static_cast<int>(r), hy, sched);
            for (py::ssize_t s = 0; s < n; ++s) {
                if (s % 64 == 0) poll_or_cancel(poll);  // throttled: a clock read most times
                tr.step(W.data(), b, v.data(), px0 + s * d, px1 + s * d, uniform ? pts[s] : 0.0);
            }
        });
    });
    py::array_t<double> w_out({d, r}), v_out(r);
    for (py::ssize_t i = 0; i < d; ++i)
        for (py::ssize_t j = 0; j < r; ++j) w_out.mutable_data()[i * r + j] = W[j * d + i];
    for (py::ssize_t j = 0; j < r; ++j) v_out.mutable_data()[j] = v[j];
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

py::tuple sample(const darray& w, const darray& v, int activation, const darray& delta, const darray& kappa,
                 const darray& kstar, const darray& noise, const darray& p, py::ssize_t n_samples,
                 std::uint64_t seed, const darray& observe, bool return_full, const darray& injected,
                 int threads) {
    require_ndim(w, 2, "w");
    const py::ssize_t d = w.shape(0), r = w.shape(1);
    if (r < 1 || r > dae::kMaxR) throw py::value_error("r must be in [1, 64]");
    require_ndim(v, 1, "v");
    require_dim(v, 0, r, "v");
    for (auto* a : {&delta, &kappa, &kstar, &noise, &p}) require_ndim(*a, 1, "schedule coefficients");
    const py::ssize_t n = delta.shape(0);
    require_dim(kappa, 0, n, "kappa");
    require_dim(kstar, 0, n, "kstar");
    require_dim(noise, 0, n, "noise");
    require_dim(p, 0, n, "p");
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
    dae::Activation act = to_act(activation);
    std::vector<double> W(static_cast<std::size_t>(r * d));
    for (py::ssize_t i = 0; i < d; ++i)
        for (py::ssize_t j = 0; j < r; ++j) W[j * d + i] = w.data()[i * r + j];
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
                        for (py::ssize_t q = 0; q < R; ++q) {
                            double a = 0.0;
                            for (py::ssize_t k = 0; k < d; ++k) a += obs[k * R + q] * X[k];
                            pp[i * R + q] = a;
                        }
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
    m.def("dae_train", &train, py::arg("means"), py::arg("scales"), py::arg("weights"), py::arg("data"),
          py::arg("w0"), py::arg("b0"), py::arg("v0"), py::arg("random_init"), py::arg("init_scale"),
          py::arg("seed"), py::arg("n_steps"), py::arg("record_every"), py::arg("lr"), py::arg("weight_decay"),
          py::arg("train_b"), py::arg("activation"), py::arg("uniform"), py::arg("alpha"), py::arg("beta"),
          py::arg("p"), py::arg("p0"), py::arg("p1"), py::arg("observe"), py::arg("threads") = 0,
          py::arg("sequential") = false,
          "Online SGD of the tied two-layer DAE, replicas over threads (see modelcollapse.dae.train).");
    m.def("dae_train_injected", &train_injected, py::arg("w0"), py::arg("b0"), py::arg("v0"), py::arg("x0s"),
          py::arg("x1s"), py::arg("ts"), py::arg("lr"), py::arg("weight_decay"), py::arg("train_b"),
          py::arg("activation"), py::arg("uniform"), py::arg("alpha"), py::arg("beta"), py::arg("p"),
          py::arg("p0"), py::arg("p1"), "SGD steps on given samples (x0s, x1s, ts); returns (w, b, v).");
    m.def("dae_draw", &draw, py::arg("means"), py::arg("scales"), py::arg("weights"), py::arg("data"), py::arg("d"),
          py::arg("seed"), py::arg("replica"), py::arg("n_steps"), py::arg("sequential") = false,
          "The (x0, x1, t) samples dae_train draws for one replica.");
    m.def("dae_sample", &sample, py::arg("w"), py::arg("v"), py::arg("activation"), py::arg("delta"),
          py::arg("kappa"), py::arg("kstar"), py::arg("noise"), py::arg("p"), py::arg("n_samples"), py::arg("seed"),
          py::arg("observe"), py::arg("return_full"), py::arg("noise_array"), py::arg("threads") = 0,
          "Euler-Maruyama generative sampler with the trained DAE drift; returns (X, E^T X, w^T X / sqrt d).");
}

}  // namespace mcbind
