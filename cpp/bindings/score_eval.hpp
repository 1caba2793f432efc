// Methods shared by every compiled score model: batched, threaded logpdf and score at a
// time t, and the reverse sampler. A model type provides smooth(model, t), eval_point and
// make_workspace (see modelcollapse/sampler.hpp).
#pragma once

#include <modelcollapse/sampler.hpp>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;

template <class Model>
std::size_t model_dim(const Model& m) {
    return m.d;
}

template <class Model>
void check_points(const Model& model, const darray& x) {
    require_ndim(x, 2, "x");
    require_dim(x, 1, static_cast<py::ssize_t>(model_dim(model)), "x");
}

// Runs fn(smoothed_model, i, workspace) for every point i < m, threaded, without the GIL:
// the loop shared by every batched evaluation of a compiled score model.
template <class Model, class Fn>
void for_each_point(const Model& model, double t, std::size_t m, int threads, Fn&& fn) {
    run_without_gil([&](const mc::PollFn& poll) {
        auto sm = mc::smooth(model, t);
        mc::parallel_for(
            m, 256, threads,
            [&](std::size_t b, std::size_t e, const mc::StopToken& stop) {
                auto ws = mc::make_workspace(model);
                for (std::size_t i = b; i < e; ++i) {
                    if (stop.stop_requested()) return;
                    fn(sm, i, ws);
                }
            },
            poll);
    });
}

template <class Model>
py::tuple eval_batch(const Model& model, const darray& x, double t, bool want_score, int threads) {
    check_points(model, x);
    const std::size_t m = x.shape(0), d = model_dim(model);
    py::array_t<double> logp(static_cast<py::ssize_t>(m));
    py::array_t<double> score;
    if (want_score) score = py::array_t<double>({static_cast<py::ssize_t>(m), static_cast<py::ssize_t>(d)});
    const double* px = x.data();
    double* pl = logp.mutable_data();
    double* ps = want_score ? score.mutable_data() : nullptr;
    for_each_point(model, t, m, threads, [&](const auto& sm, std::size_t i, auto& ws) {
        pl[i] = mc::eval_point(sm, px + i * d, ps ? ps + i * d : nullptr, ws);
    });
    return py::make_tuple(logp, want_score ? py::object(score) : py::object(py::none()));
}

template <class Model, class Cls>
void def_score_methods(Cls& cls) {
    cls.def(
        "logpdf",
        [](const Model& model, const darray& x, double t, int threads) {
            if (!(t >= 0.0)) throw py::value_error("t must be >= 0");
            return py::object(eval_batch(model, x, t, false, threads)[0]);
        },
        py::arg("x"), py::arg("t") = 0.0, py::arg("threads") = 0, "Log density of S_t p at the rows of x.");
    cls.def(
        "score",
        [](const Model& model, const darray& x, double t, int threads) {
            if (!(t >= 0.0)) throw py::value_error("t must be >= 0");
            return py::object(eval_batch(model, x, t, true, threads)[1]);
        },
        py::arg("x"), py::arg("t") = 0.0, py::arg("threads") = 0, "Score of S_t p at the rows of x.");
    cls.def(
        "sample_reverse",
        [](const Model& model, const darray& times, mc::Integrator integrator, std::uint64_t seed, const darray& init,
           py::object noise, std::vector<std::size_t> record_steps, int threads) {
            require_ndim(times, 1, "times");
            check_points(model, init);
            const std::size_t n = init.shape(0), d = model_dim(model);
            if (times.shape(0) < 2) throw py::value_error("times needs at least 2 points");
            mc::ReverseConfig cfg;
            cfg.n = n;
            cfg.d = d;
            cfg.times.assign(times.data(), times.data() + times.shape(0));
            for (std::size_t k = 0; k + 1 < cfg.times.size(); ++k)
                if (!(cfg.times[k] > cfg.times[k + 1]))
                    throw py::value_error("times must be strictly decreasing");
            if (!(cfg.times.back() >= 0.0)) throw py::value_error("times must be >= 0");
            const std::size_t steps = cfg.times.size() - 1;
            cfg.integrator = integrator;
            cfg.seed = seed;
            cfg.init = init.data();
            cfg.threads = threads;
            darray noise_arr;
            if (!noise.is_none()) {
                noise_arr = darray::ensure(noise);
                if (!noise_arr) throw py::type_error("noise must be a float array");
                require_ndim(noise_arr, 3, "noise");
                require_dim(noise_arr, 0, static_cast<py::ssize_t>(n), "noise");
                require_dim(noise_arr, 1, static_cast<py::ssize_t>(steps), "noise");
                require_dim(noise_arr, 2, static_cast<py::ssize_t>(d), "noise");
                cfg.noise = noise_arr.data();
            }
            for (std::size_t r = 0; r < record_steps.size(); ++r) {
                if (record_steps[r] > steps) throw py::value_error("record_steps must be in [0, steps]");
                if (r > 0 && record_steps[r] <= record_steps[r - 1])
                    throw py::value_error("record_steps must be strictly increasing");
            }
            cfg.record_steps = record_steps;
            py::array_t<double> out({static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(d)});
            py::array_t<double> rec({static_cast<py::ssize_t>(record_steps.size()), static_cast<py::ssize_t>(n),
                                     static_cast<py::ssize_t>(d)});
            cfg.record = rec.mutable_data();
            double* po = out.mutable_data();
            run_without_gil([&](const mc::PollFn& poll) { mc::reverse_sample(model, cfg, po, poll); });
            return py::make_tuple(out, rec);
        },
        py::arg("times"), py::arg("integrator"), py::arg("seed"), py::arg("init"), py::arg("noise") = py::none(),
        py::arg("record_steps") = std::vector<std::size_t>{}, py::arg("threads") = 0,
        "Reverse-time sampler over the grid `times` (decreasing); returns (final points, recorded states).");
}

}  // namespace mcbind
