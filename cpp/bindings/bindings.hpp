// Shared helpers for the pybind11 layer: array types, shape checks that raise ValueError,
// and running pure C++ work with the GIL released while Ctrl-C stays responsive.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <utility>

#include <modelcollapse/parallel.hpp>

namespace py = pybind11;

namespace mcbind {

using darray = py::array_t<double, py::array::c_style | py::array::forcecast>;

inline void require_ndim(const darray& a, py::ssize_t ndim, const char* name) {
    if (a.ndim() != ndim)
        throw py::value_error(std::string(name) + " must be a " + std::to_string(ndim) +
                              "-D array, got " + std::to_string(a.ndim()) + "-D");
}

inline void require_dim(const darray& a, py::ssize_t axis, py::ssize_t size, const char* name) {
    if (a.shape(axis) != size)
        throw py::value_error(std::string(name) + " has size " + std::to_string(a.shape(axis)) +
                              " along axis " + std::to_string(axis) + ", expected " +
                              std::to_string(size));
}

// Poll function for modelcollapse::parallel_for: at most every kPollInterval it takes the
// GIL briefly and asks Python whether a signal (Ctrl-C) is pending; in between a call costs
// one clock read, so kernels may call it between every time step or block. The pending
// exception stays set for the caller. Call it only on the thread that released the GIL
// (Python runs signal handlers on the main thread only).
inline modelcollapse::PollFn python_poll() {
    return modelcollapse::throttled([]() {
        py::gil_scoped_acquire gil;
        return PyErr_CheckSignals() != 0;
    });
}

// Runs fn(poll) without the GIL. A Ctrl-C during the run surfaces as KeyboardInterrupt.
// Inline loops (no parallel_for) call poll() between steps and throw Cancelled when it says
// stop; see poll_or_cancel.
template <class Fn>
void run_without_gil(Fn&& fn) {
    bool cancelled = false;
    {
        py::gil_scoped_release release;
        try {
            fn(python_poll());
        } catch (const modelcollapse::Cancelled&) {
            cancelled = true;
        }
    }
    if (cancelled) {
        if (PyErr_Occurred()) throw py::error_already_set();
        throw py::value_error("computation cancelled");
    }
}

// For loops that run on the calling thread: throws Cancelled (turned into KeyboardInterrupt
// by run_without_gil) when poll says stop. Cheap enough to call once per step.
inline void poll_or_cancel(const modelcollapse::PollFn& poll) {
    if (modelcollapse::poll_says_stop(poll)) throw modelcollapse::Cancelled();
}

void register_random(py::module_& m);
void register_mixture(py::module_& m);
void register_sampler(py::module_& m);
void register_dae(py::module_& m);
void register_hermite(py::module_& m);
void register_retraining(py::module_& m);
void register_metrics(py::module_& m);
void register_hodge(py::module_& m);

}  // namespace mcbind
