#include <modelcollapse/random.hpp>

#include <algorithm>

#include "bindings.hpp"

namespace mcbind {

namespace mc = modelcollapse;

// Numbers per fill call when a stream is long: a look at the stop flag between pieces keeps
// Ctrl-C responsive. Even, so every piece starts on the same block parity as one long fill
// (fill_normals gives the same numbers however a run is split).
constexpr std::size_t kFillPiece = std::size_t(1) << 20;

// Work items of normals(): piece o of stream s holds numbers [o kPiece, (o + 1) kPiece) of
// it. Every number is a pure function of (seed, stream, counter), so splitting a long stream
// (a 1-D shape is one stream) into pieces spread over threads gives the same numbers as one
// fill, for any thread count. Even, so every piece starts on the same block parity.
constexpr std::size_t kPiece = std::size_t(1) << 15;

static py::array_t<double> normals(std::uint64_t seed, std::uint64_t purpose,
                                   std::uint64_t stream_start, py::ssize_t n_streams,
                                   py::ssize_t per_stream, std::uint64_t first, int threads) {
    if (n_streams < 0 || per_stream < 0) throw py::value_error("sizes must be non-negative");
    if (purpose > 255) throw py::value_error("purpose must be < 256");
    py::array_t<double> out({n_streams, per_stream});
    double* p = out.mutable_data();
    const std::size_t len = static_cast<std::size_t>(per_stream);
    const std::size_t pieces = len == 0 ? 0 : (len + kPiece - 1) / kPiece;
    const std::size_t items = static_cast<std::size_t>(n_streams) * pieces;
    // About kPiece numbers per chunk of work items whatever the stream length (short streams
    // are grouped), so that threads get work from a few tens of thousands of numbers on.
    const std::size_t grain = std::max<std::size_t>(1, kPiece / std::max<std::size_t>(len, 1));
    run_without_gil([&](const mc::PollFn& poll) {
        mc::parallel_for(items, grain, threads,
                         [&](std::size_t b, std::size_t e, const mc::StopToken& stop) {
                             for (std::size_t item = b; item < e; ++item) {
                                 if (stop.stop_requested()) return;
                                 const std::size_t s = item / pieces, o = (item % pieces) * kPiece;
                                 const std::uint64_t stream = mc::rng::make_stream(purpose, stream_start + s);
                                 mc::rng::fill_normals(seed, stream, first + o, std::min(kPiece, len - o),
                                                       p + s * len + o);
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
    m.def("ars_block",
          [](std::array<std::uint64_t, 2> ctr, std::array<std::uint64_t, 2> key, int rounds, bool hardware) {
              if (rounds < 1 || rounds > 10) throw py::value_error("rounds must be in [1, 10]");
              mc::rng::Block b = mc::rng::ars_portable(ctr[0], ctr[1], key[0], key[1], rounds);
#ifdef MODELCOLLAPSE_ARS_AESNI
              if (hardware && mc::rng::cpu_has_aes()) {
                  std::uint64_t lo = ctr[0], hi = ctr[1];
                  if (rounds == 7)
                      mc::rng::ars_aesni<7>(1, &lo, &hi, key[0], key[1]);
                  else if (rounds == 10)
                      mc::rng::ars_aesni<10>(1, &lo, &hi, key[0], key[1]);
                  else
                      throw py::value_error("the AES-instruction path is compiled for rounds 7 and 10");
                  b = mc::rng::Block{lo, hi};
              }
#endif
              return std::array<std::uint64_t, 2>{b.lo, b.hi};
          },
          py::arg("counter"), py::arg("key"), py::arg("rounds") = 7, py::arg("hardware") = false,
          "One ARS block (counter and key as (low, high) 64-bit halves), by the portable rounds or "
          "(hardware=True, where the CPU has them) the AES instructions: for known-answer tests.");
    m.attr("ARS_AESNI") = [] {
#ifdef MODELCOLLAPSE_ARS_AESNI
        return mc::rng::cpu_has_aes();
#else
        return false;
#endif
    }();
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
