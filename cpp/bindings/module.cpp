// The compiled core of modelcollapse. Each kernel family registers itself.
#include "bindings.hpp"

#ifndef MODELCOLLAPSE_VERSION
#define MODELCOLLAPSE_VERSION "dev"
#endif

PYBIND11_MODULE(_core, m) {
    m.doc() = "modelcollapse compiled kernels (private; use the modelcollapse package)";
    m.attr("__version__") = MODELCOLLAPSE_VERSION;
    m.def("hardware_threads", []() { return modelcollapse::resolve_threads(0); },
          "Number of threads used when threads=0 (all cores).");
    m.def("workers_started", []() { return modelcollapse::workers_started().load(); },
          "Worker threads parallel_for has started in this process (a test hook: a loop with one "
          "worker runs on the calling thread and starts none).");
    mcbind::register_random(m);
    // The sampler registers the Integrator enum, which the score models' sample_reverse
    // takes: it must be known before their signatures are written.
    mcbind::register_sampler(m);
    mcbind::register_mixture(m);
    mcbind::register_dae(m);
    mcbind::register_hermite(m);
    mcbind::register_retraining(m);
    mcbind::register_metrics(m);
    mcbind::register_hodge(m);
}
