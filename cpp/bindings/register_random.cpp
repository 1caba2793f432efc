#include <modelcollapse/random.hpp>

#include <algorithm>
#include <string>

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

// out (optional): a C-contiguous float64 array of n_streams * per_stream numbers to fill
// instead of a new one (a fresh 80 MB array costs its page faults, ~1 ns a number on one
// thread; docs/foundation.md, "Randomness"). isa: the transform's level (-1: the one every
// kernel uses, rng::normals_isa(); tests compare the levels).
static py::array_t<double> normals(std::uint64_t seed, std::uint64_t purpose, std::uint64_t stream_start,
                                   py::ssize_t n_streams, py::ssize_t per_stream, std::uint64_t first, int threads,
                                   int isa, const py::object& out_arg) {
    if (n_streams < 0 || per_stream < 0) throw py::value_error("sizes must be non-negative");
    if (purpose > 255) throw py::value_error("purpose must be < 256");
    if (isa != -1 && isa != 0 && isa != 3 && isa != 4) throw py::value_error("isa must be -1, 0, 3 or 4");
    if (isa > mc::rng::normals_isa_available())
        throw py::value_error("isa " + std::to_string(isa) + " is not available on this CPU or build (highest: " +
                              std::to_string(mc::rng::normals_isa_available()) + ")");
    py::array_t<double> out;
    if (out_arg.is_none()) {
        out = py::array_t<double>({n_streams, per_stream});
    } else {
        if (!py::isinstance<py::array_t<double, py::array::c_style>>(out_arg))
            throw py::type_error("out must be a C-contiguous float64 numpy array");
        out = out_arg.cast<py::array_t<double>>();
        if (!out.writeable()) throw py::value_error("out must be writeable");
        if (out.size() != n_streams * per_stream)
            throw py::value_error("out must hold n_streams * per_stream = " + std::to_string(n_streams * per_stream) +
                                  " numbers, got " + std::to_string(out.size()));
    }
    double* p = out.mutable_data();
    const std::size_t len = static_cast<std::size_t>(per_stream);
    const std::size_t pieces = len == 0 ? 0 : (len + kPiece - 1) / kPiece;
    const std::size_t items = static_cast<std::size_t>(n_streams) * pieces;
    // About kPiece numbers per chunk of work items whatever the stream length (short streams
    // are grouped), so that threads get work from a few tens of thousands of numbers on.
    const std::size_t grain = std::max<std::size_t>(1, kPiece / std::max<std::size_t>(len, 1));
    auto piece = [&](std::size_t item) {
        const std::size_t s = item / pieces, o = (item % pieces) * kPiece;
        const std::uint64_t stream = mc::rng::make_stream(purpose, stream_start + s);
        mc::rng::fill_normals(seed, stream, first + o, std::min(kPiece, len - o), p + s * len + o, isa);
    };
    const std::size_t chunks = (items + grain - 1) / grain;
    const unsigned workers = static_cast<unsigned>(std::min<std::size_t>(mc::resolve_threads(threads), chunks));
    run_without_gil([&](const mc::PollFn& poll) {
        if (workers <= 1) {
            // One worker: the calling thread fills the pieces itself, looking at the stop flag
            // between chunks (parallel_for would start a thread and wait on it; the pieces
            // and so the numbers are the same).
            for (std::size_t b = 0; b < items; b += grain) {
                poll_or_cancel(poll);
                for (std::size_t item = b; item < std::min(items, b + grain); ++item) piece(item);
            }
            return;
        }
        mc::parallel_for(items, grain, threads,
                         [&](std::size_t b, std::size_t e, const mc::StopToken& stop) {
                             for (std::size_t item = b; item < e; ++item) {
                                 if (stop.stop_requested()) return;
                                 piece(item);
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
          py::arg("isa") = -1, py::arg("out") = py::none(),
          "Standard normals: row s is stream make_stream(purpose, stream_start + s), numbers "
          "[first, first + per_stream); into out (C-contiguous float64, n_streams * per_stream numbers) "
          "if given. isa: the transform's instruction-set level (-1: NORMALS_ISA, the one every "
          "kernel uses; 0 baseline, 3 x86-64-v3, 4 x86-64-v4; at most NORMALS_ISA_AVAILABLE).");
    m.attr("NORMALS_ISA") = mc::rng::normals_isa();
    m.attr("NORMALS_ISA_AVAILABLE") = mc::rng::normals_isa_available();
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
