#include <modelcollapse/random.hpp>

#include <algorithm>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;

// Numbers per fill call when a stream is long: a look at the stop flag between pieces keeps
// Ctrl-C responsive. Even, so every piece starts on the same block parity as one long fill
// (fill_normals gives the same numbers however a run is split).
constexpr std::size_t kFillPiece = std::size_t(1) << 20;

static py::array_t<double> normals(std::uint64_t seed, std::uint64_t purpose,
                                   std::uint64_t stream_start, py::ssize_t n_streams,
                                   py::ssize_t per_stream, std::uint64_t first, int threads) {
    if (n_streams < 0 || per_stream < 0) throw py::value_error("sizes must be non-negative");
    if (purpose > 255) throw py::value_error("purpose must be < 256");
    py::array_t<double> out({n_streams, per_stream});
    double* p = out.mutable_data();
    run_without_gil([&](const mc::PollFn& poll) {
        mc::parallel_for(static_cast<std::size_t>(n_streams), 256, threads,
                         [&](std::size_t b, std::size_t e, const mc::StopToken& stop) {
                             const std::size_t len = static_cast<std::size_t>(per_stream);
                             for (std::size_t s = b; s < e; ++s) {
                                 const std::uint64_t stream = mc::rng::make_stream(purpose, stream_start + s);
                                 for (std::size_t o = 0; o < len; o += kFillPiece) {
                                     if (stop.stop_requested()) return;
                                     mc::rng::fill_normals(seed, stream, first + o, std::min(kFillPiece, len - o),
                                                           p + s * len + o);
                                 }
                             }
                         },
                         poll);
    });
    return out;
}

static py::array_t<double> uniforms(std::uint64_t seed, std::uint64_t purpose,
                                    std::uint64_t stream_start, py::ssize_t n_streams,
                                    py::ssize_t per_stream, std::uint64_t first) {
    if (n_streams < 0 || per_stream < 0) throw py::value_error("sizes must be non-negative");
    if (purpose > 255) throw py::value_error("purpose must be < 256");
    py::array_t<double> out({n_streams, per_stream});
    double* p = out.mutable_data();
    run_without_gil([&](const mc::PollFn& poll) {
        const std::size_t len = static_cast<std::size_t>(per_stream);
        for (py::ssize_t s = 0; s < n_streams; ++s) {
            const std::uint64_t stream = mc::rng::make_stream(purpose, stream_start + s);
            for (std::size_t o = 0; o < len; o += kFillPiece) {
                poll_or_cancel(poll);
                mc::rng::fill_uniforms(seed, stream, first + o, std::min(kFillPiece, len - o), p + s * len + o);
            }
        }
    });
    return out;
}

void register_random(py::module_& m) {
    m.def("philox4x32_10",
          [](std::array<std::uint32_t, 4> ctr, std::array<std::uint32_t, 2> key) {
              auto b = mc::rng::philox4x32_10(ctr[0], ctr[1], ctr[2], ctr[3], key[0], key[1]);
              return std::array<std::uint32_t, 4>{b.w[0], b.w[1], b.w[2], b.w[3]};
          },
          py::arg("counter"), py::arg("key"), "One Philox4x32-10 block (for known-answer tests).");
    m.def("normals", &normals, py::arg("seed"), py::arg("purpose"), py::arg("stream_start"),
          py::arg("n_streams"), py::arg("per_stream"), py::arg("first") = 0, py::arg("threads") = 0,
          "Standard normals: row s is stream make_stream(purpose, stream_start + s), numbers "
          "[first, first + per_stream).");
    m.def("uniforms", &uniforms, py::arg("seed"), py::arg("purpose"), py::arg("stream_start"),
          py::arg("n_streams"), py::arg("per_stream"), py::arg("first") = 0,
          "Uniforms in (0, 1), same layout as normals().");
    m.attr("PURPOSE_USER") = static_cast<int>(mc::rng::kUser);
    m.attr("PURPOSE_STEP_NOISE") = static_cast<int>(mc::rng::kStepNoise);
    m.attr("PURPOSE_INIT_NORMAL") = static_cast<int>(mc::rng::kInitNormal);
    m.attr("PURPOSE_INIT_CHOICE") = static_cast<int>(mc::rng::kInitChoice);
    m.attr("PURPOSE_TRAINING") = static_cast<int>(mc::rng::kTraining);
}

}  // namespace mcbind
