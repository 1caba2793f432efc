// Microbenchmarks that split the normal generator's time (issue 16: goal <= 1.5 ns a normal on
// one core): the shipped bulk call (fill_normals, one stream) against its stages, each run alone
// over batches of kBatch = 128 blocks kept in cache (16 batches in turn, so that the slow path
// sees a typical number of rejected words, ~50, not one batch's few): the ARS-7 rounds (ars_blocks), the whole
// ziggurat transform (fast path at the x86-64-v3 level, then the slow path on the words it
// rejected), the fast path alone (x = u * width[i], accepted if u < accept[i]: a table load, a
// multiplication and a compare a normal) and the slow path alone (wedge tests and tail tries of
// the batch's ~1.5% rejected words, each drawing ARS blocks from its own counter space).
// bench/bounds.py builds this file with the extension's flags (no -march; the library's v3
// function carries its own target attribute), loads it with ctypes and times each part with the
// others, interleaved; mc_normals_add_chain gives the core's clock (one dependent add a cycle)
// so that times convert to cycles. bench/ziggurat_parts.cpp holds the go/no-go measurement
// against the Box-Muller transform the ziggurat replaced.
#include <cstddef>
#include <cstdint>

#include "modelcollapse/random.hpp"

using namespace modelcollapse;
using namespace modelcollapse::rng;

namespace {

enum Part : int {
    kFill = 0,       // fill_normals(seed, stream, first, 256, out): the shipped bulk call, load-time level
    kArs = 1,        // ars_blocks on 128 counters (set up as fill_normals does)
    kTransform = 2,  // the ziggurat on 128 cached blocks: fast path (v3), rejects queued, the slow
                     // path once every kSets batches (as fill_normals runs it once a call)
    kFast = 3,       // its fast path alone (v3)
    kSlow = 4,       // its slow path alone, on the batches' rejected words (queued, then run)
};

constexpr std::uint64_t kSeed = 1, kStream = 5;
constexpr std::size_t kSets = 16;
alignas(64) std::uint64_t g_lo[kSets][kBatch], g_hi[kSets][kBatch];
std::uint32_t g_rejected[kSets][2 * kBatch];
std::size_t g_rejected_n[kSets];
alignas(64) double g_z[2 * kBatch];
detail::ZigguratQueue g_queue;

// The rejects of cached batch s into the queue, as normals_run queues them.
void queue_rejects(std::size_t s, const std::uint32_t* rejected, std::size_t n) {
    const std::uint64_t c = s * kBatch;
    for (std::size_t e = 0; e < n; ++e) {
        const std::uint32_t t = rejected[e];
        g_queue.push(t & 1 ? g_hi[s][t / 2] : g_lo[s][t / 2], c + t / 2, kStream, t & 1, g_z + t);
    }
}

void setup() {
    for (std::size_t s = 0; s < kSets; ++s) {
        for (std::size_t q = 0; q < kBatch; ++q) {
            g_lo[s][q] = s * kBatch + q;
            g_hi[s][q] = kStream;
        }
        ars_blocks(kBatch, g_lo[s], g_hi[s], kSeed);
        g_rejected_n[s] = normals_fn(3)(kBatch, g_lo[s], g_hi[s], g_z, nullptr, true, g_rejected[s]);
    }
}

}  // namespace

extern "C" {

// reps calls of one part, each over kBatch blocks (2 kBatch normals).
void mc_normals_part(int part, long reps) {
    static const bool ready = (setup(), true);
    (void)ready;
    const detail::NormalsFn fast = normals_fn(3);
    alignas(64) std::uint64_t lo[kBatch], hi[kBatch];
    std::uint32_t rejected[2 * kBatch];
    for (long r = 0; r < reps; ++r) {
        const std::size_t s = static_cast<std::size_t>(r) % kSets;
        switch (part) {
            case kFill:
                fill_normals(kSeed, 0, static_cast<std::uint64_t>(r) * 2 * kBatch, 2 * kBatch, g_z);
                break;
            case kArs:
                for (std::size_t q = 0; q < kBatch; ++q) {
                    lo[q] = static_cast<std::uint64_t>(r) * kBatch + q;
                    hi[q] = 0;
                }
                ars_blocks(kBatch, lo, hi, kSeed);
                g_z[r & 127] = static_cast<double>(lo[r & 127]);
                break;
            case kTransform:
                queue_rejects(s, rejected, fast(kBatch, g_lo[s], g_hi[s], g_z, nullptr, true, rejected));
                if (s == kSets - 1) detail::ziggurat_slow(g_queue, kSeed);  // once a "call" of kSets batches
                break;
            case kFast: fast(kBatch, g_lo[s], g_hi[s], g_z, nullptr, true, rejected); break;
            case kSlow:
                queue_rejects(s, g_rejected[s], g_rejected_n[s]);
                if (s == kSets - 1) detail::ziggurat_slow(g_queue, kSeed);
                break;
            default: break;
        }
        asm volatile("" ::: "memory");
    }
    if (g_queue.n[0] + g_queue.n[1] > 0) detail::ziggurat_slow(g_queue, kSeed);
}

// Normals per call of mc_normals_part.
long mc_normals_per_call() { return static_cast<long>(2 * kBatch); }

// Share of the cached batches' normals that the fast path rejects (the slow path's work).
double mc_normals_slow_share() {
    mc_normals_part(kFast, 0);
    std::size_t n = 0;
    for (std::size_t s = 0; s < kSets; ++s)
        n += g_rejected_n[s];
    return static_cast<double>(n) / (2.0 * kBatch * kSets);
}

// n x 4 dependent integer adds: one a cycle, so the time per add is the core's clock period.
void mc_normals_add_chain(long n) {
    long a = 0;
    for (long i = 0; i < n; ++i) asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(a));
}

}  // extern "C"
