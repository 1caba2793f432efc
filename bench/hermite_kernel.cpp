// Where the Hermite-moment kernels' time goes, in one process (issue 16; docs/truncation.md,
// "Performance"): interleaved rounds, medians of each thread's CPU time (a shared machine's
// other jobs do not count), ns per sample-moment.
//
//   g++ -O3 -fno-math-errno -fopenmp-simd -pthread -Icpp/include bench/hermite_kernel.cpp \
//       -o /tmp/hermite_kernel && /tmp/hermite_kernel [rounds]
//
// Parts (1-D: degree 30, N = 2^20 samples; d-D: total degree, N = 2^18):
//   1d_kernel        the fused 1-D kernel (hermite_chain_1d), samples streamed from memory
//   1d_cached        the same on 4096 samples (32 KiB, in L1) run N / 4096 times
//   1d_bare          its recurrence alone: the same steps, nothing summed (the last value kept)
//   1d_sum_only      the accumulation alone: the 16 samples' x added to lane[k] at every step,
//                    no recurrence
//   fma_peak         10 independent multiply-add chains: the core's FMA throughput, one FMA a
//                    lane-op, as a scale for the rest
//   2d_deg10_new / 2d_deg10_old, ...: hermite_moments on one thread (the fused d-D kernel where
//                    it applies: not at d = 10, degree 2) against the kernel of -DWITH_OLD (the
//                    header before a change: its namespace renamed modelcollapse::hermite_old),
//                    same table; 2d_deg10_squares_new / _old: the same with the squares' means
//   2d_deg10_blocks  the fused 2-D kernel's blocks of 128 samples as hermite_moments runs them
//   2d_deg10_blocks_no_sums   the same blocks with no tiles: the recurrences of both coordinates,
//                    the stores of their values into the block's rows, the block overhead
//   2d_deg10_recurrences_bare the recurrences alone (x loaded with a stride of 2, nothing stored)
//   2d_deg10_stores_only      the stores alone: x's values stored to the 2 x 11 rows, no recurrence
//   2d_deg10_sums_only        the register tiles alone, on one block's values (in L1)
// Two threads (wall clock, both cores): fma_peak on 1 and 2 threads (does the second vCPU add
// FMA throughput?), and hermite_moments 1-D at threads = 1 and 2.
//
// With -DWITH_OLD=path/to/old/hermite.hpp (its namespace renamed modelcollapse::hermite_old)
// the old kernels are timed in the same rounds and the results compared.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "modelcollapse/hermite.hpp"
#ifdef WITH_OLD
#include WITH_OLD
#endif

namespace mc = modelcollapse;
using mc::vec4d;
using mc::vec4d_u;

// the bench's own loops get the instruction set of the kernels' vector clone (FMA, AVX2)
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define BENCH_V3 __attribute__((noinline, target("arch=x86-64-v3")))
#else
#define BENCH_V3 __attribute__((noinline))
#endif

static double thread_cpu() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}
static double wall() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// graded multi-indices |alpha| <= D in d coordinates, as the Python side builds them
template <class Tab>
static Tab graded_table(std::size_t d, std::size_t D) {
    std::vector<std::vector<std::int64_t>> idx;
    std::vector<std::int64_t> a(d, 0);
    for (std::size_t t = 0; t <= D; ++t) {
        std::fill(a.begin(), a.end(), 0);
        a[0] = static_cast<std::int64_t>(t);
        while (true) {  // compositions of t, lexicographically decreasing
            idx.push_back(a);
            std::int64_t j = -1;
            for (std::int64_t i = static_cast<std::int64_t>(d) - 2; i >= 0; --i)
                if (a[static_cast<std::size_t>(i)] > 0) {
                    j = i;
                    break;
                }
            if (j < 0) break;
            std::int64_t rest = 0;
            for (std::size_t i = static_cast<std::size_t>(j) + 1; i < d; ++i) rest += a[i];
            a[static_cast<std::size_t>(j)] -= 1;
            for (std::size_t i = static_cast<std::size_t>(j) + 1; i < d; ++i) a[i] = 0;
            a[static_cast<std::size_t>(j) + 1] = rest + 1;
        }
    }
    Tab tab;
    tab.d = d;
    tab.degree = D;
    for (std::size_t m = 0; m < idx.size(); ++m) {
        std::int64_t j = -1;
        for (std::size_t i = 0; i < d; ++i)
            if (idx[m][i]) j = static_cast<std::int64_t>(i);
        if (j < 0) {
            tab.parent.push_back(-1);
            tab.dim.push_back(0);
            tab.order.push_back(0);
            continue;
        }
        auto par = idx[m];
        par[static_cast<std::size_t>(j)] = 0;
        std::size_t pm = 0;
        while (idx[pm] != par) ++pm;
        tab.parent.push_back(static_cast<std::int64_t>(pm));
        tab.dim.push_back(j);
        tab.order.push_back(idx[m][static_cast<std::size_t>(j)]);
    }
    return tab;
}

// the recurrence alone: hermite_chain_1d's steps with nothing summed but the last value
BENCH_V3 static void bare_1d(const double* x, std::size_t n, std::size_t D, const mc::HermiteScaled& sc,
                                              vec4d* sink) {
    vec4d xv[4], live[4];
    for (std::size_t i = 0; i + mc::kHermLanes <= n; i += mc::kHermLanes) {
        for (int v = 0; v < 4; ++v) {
            xv[v] = MODELCOLLAPSE_LOAD4(x + i + 4 * v);
            live[v] = xv[v] * 0.0 + 1.0;
        }
        mc::hermite_scaled_run(xv, live, D, sc, [&](std::size_t k, const vec4d* c) {
            if (k == D) *sink += (c[0] + c[2]) + (c[1] + c[3]);
        });
    }
}

// the accumulation alone: lane[k] += the four vectors' sum at every step, no recurrence
BENCH_V3 static void sum_only_1d(const double* x, std::size_t n, std::size_t D, vec4d_u* lane) {
    for (std::size_t i = 0; i + mc::kHermLanes <= n; i += mc::kHermLanes) {
        vec4d c[4];
        for (int v = 0; v < 4; ++v) c[v] = MODELCOLLAPSE_LOAD4(x + i + 4 * v);
        for (std::size_t k = 0; k <= D; ++k) lane[k] += (c[0] + c[2]) + (c[1] + c[3]);
    }
}

// the d-D kernel's recurrences alone: per 16 samples each coordinate's values loaded from x
// (a stride of d doubles) and run to degree D, nothing stored (the last value kept)
BENCH_V3 static void bare_dd(const double* x, std::size_t n, std::size_t d, std::size_t D,
                             const mc::HermiteScaled& sc, vec4d* sink) {
    vec4d xv[4], live[4];
    for (std::size_t b = 0; b + mc::kHermLanes <= n; b += mc::kHermLanes)
        for (std::size_t i = 0; i < d; ++i) {
            mc::hermite_load16(x, b, mc::kHermLanes, d, i, xv, live);
            mc::hermite_scaled_run(xv, live, D, sc, [&](std::size_t k, const vec4d* c) {
                if (k == D) *sink += (c[0] + c[2]) + (c[1] + c[3]);
            });
        }
}

// the d-D kernel's stores alone: per 16 samples each coordinate's values loaded from x and
// stored to the D + 1 rows of a block's buffer, as the recurrences' values are (no recurrence)
BENCH_V3 static void stores_dd(const double* x, std::size_t n, std::size_t d, std::size_t D, double* g) {
    vec4d xv[4], live[4];
    for (std::size_t b = 0; b + mc::kHermLanes <= n; b += mc::kHermLanes) {
        const std::size_t o = b % mc::kHermBlock;
        for (std::size_t i = 0; i < d; ++i) {
            mc::hermite_load16(x, b, mc::kHermLanes, d, i, xv, live);
            double* gi = g + i * (D + 1) * mc::kHermBlock + o;
            for (std::size_t k = 0; k <= D; ++k)
                for (int v = 0; v < 4; ++v) MODELCOLLAPSE_STORE4(gi + k * mc::kHermBlock + 4 * v, xv[v]);
        }
    }
}

// the tiles alone: one block's values (in L1) summed n / kHermBlock times
BENCH_V3 static void tiles_only(const mc::HermiteFusedWork& w, const std::vector<mc::HermiteTile>& tiles,
                                const std::size_t* run_begin, const std::size_t* len, std::size_t d, std::size_t D,
                                std::size_t n, vec4d_u* acc) {
    for (std::size_t b = 0; b < n; b += mc::kHermBlock)
        mc::hermite_tiles_run(w.prow.data(), tiles, w.g + (d - 1) * (D + 1) * mc::kHermBlock, mc::kHermBlock,
                              run_begin, len, acc, nullptr);
}

BENCH_V3 static void fma_peak(std::size_t iters, vec4d* sink) {
    vec4d a[10];
    for (int k = 0; k < 10; ++k) a[k] = *sink + k;
    const vec4d m = *sink * 0.0 + 0.999999, b = *sink * 0.0 + 1e-7;
    for (std::size_t i = 0; i < iters; ++i)
        for (int k = 0; k < 10; ++k) a[k] = a[k] * m + b;
    for (int k = 0; k < 10; ++k) *sink += a[k];
}

struct Part {
    std::string name;
    double items;
    std::function<void()> run;
    bool wall_clock = false;
    std::vector<double> t;
};

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
    const std::size_t D1 = 30, N1 = std::size_t{1} << 20, NC = 4096, N2 = std::size_t{1} << 18;
    std::mt19937_64 gen(1);
    std::normal_distribution<double> nd(0.0, 1.0);
    std::vector<double> x1(N1), xd(N2 * 10);
    for (auto& v : x1) v = 1.2 * nd(gen) + 0.3;
    for (auto& v : xd) v = nd(gen);
    const mc::HermiteScaled sc1 = mc::hermite_scaled(D1, 32);
    std::vector<double> lane_mem(4 * (D1 + 1), 0.0);
    vec4d_u* lane = reinterpret_cast<vec4d_u*>(lane_mem.data());
    vec4d sink = {0, 0, 0, 0};
    std::vector<Part> parts;
    const double sm1 = static_cast<double>(N1) * (D1 + 1);
    parts.push_back({"1d_kernel", sm1, [&] { mc::hermite_chain_1d(x1.data(), 0, N1, D1, sc1, lane, nullptr); }});
    parts.push_back({"1d_cached", sm1, [&] {
                         for (std::size_t r = 0; r < N1 / NC; ++r)
                             mc::hermite_chain_1d(x1.data(), 0, NC, D1, sc1, lane, nullptr);
                     }});
    parts.push_back({"1d_bare", sm1, [&] { bare_1d(x1.data(), N1, D1, sc1, &sink); }});
    parts.push_back({"1d_sum_only", sm1, [&] { sum_only_1d(x1.data(), N1, D1, lane); }});
    parts.push_back({"fma_peak", sm1, [&] { fma_peak(N1 * (D1 + 1) / 40, &sink); }});  // one vector FMA = 4 items
    const mc::HermiteIndexTable tab1 = graded_table<mc::HermiteIndexTable>(1, D1);
    std::vector<double> out(20000), out_old(20000);
    parts.push_back({"1d_moments_1thread", sm1,
                     [&] { mc::hermite_moments(x1.data(), N1, tab1, out.data(), nullptr, 1); }, true});
    parts.push_back({"1d_moments_2threads", sm1,
                     [&] { mc::hermite_moments(x1.data(), N1, tab1, out.data(), nullptr, 2); }, true});
    parts.push_back({"fma_peak_1thread", sm1, [&] { fma_peak(N1 * (D1 + 1) / 40, &sink); }, true});
    parts.push_back({"fma_peak_2threads", sm1, [&] {  // each thread half of fma_peak_1thread's work
                         vec4d s2 = sink;
                         std::thread t([&] { fma_peak(N1 * (D1 + 1) / 80, &s2); });
                         fma_peak(N1 * (D1 + 1) / 80, &sink);
                         t.join();
                         sink += s2;
                     }, true});
    // two threads, each the fused 1-D kernel on half the samples with its own lane sums: in
    // separate cache lines, or with thread 1's first sums in the line of thread 0's last ones
    // (two small blocks from one malloc arena lie that close: false sharing)
    std::vector<double> lanes2(4 * (D1 + 1) * 2 + 64, 0.0);
    double* base = lanes2.data() + (8 - reinterpret_cast<std::uintptr_t>(lanes2.data()) / 8 % 8) % 8;  // 64-byte aligned
    for (int shared = 0; shared < 2; ++shared) {
        const std::size_t off = shared ? 4 * (D1 + 1) + 2 : 4 * (D1 + 1) + 8 + 32;
        parts.push_back({shared ? "1d_2threads_shared_line" : "1d_2threads_own_lines", sm1, [&, off] {
                             std::thread t([&] {
                                 mc::hermite_chain_1d(x1.data(), N1 / 2, N1, D1, sc1,
                                                      reinterpret_cast<vec4d_u*>(base + off), nullptr);
                             });
                             mc::hermite_chain_1d(x1.data(), 0, N1 / 2, D1, sc1, reinterpret_cast<vec4d_u*>(base),
                                                  nullptr);
                             t.join();
                         }, true});
    }
#ifdef WITH_OLD
    const auto tab1o = graded_table<mc::hermite_old::HermiteIndexTable>(1, D1);
    parts.push_back({"1d_moments_1thread_old", sm1,
                     [&] { mc::hermite_old::hermite_moments(x1.data(), N1, tab1o, out_old.data(), nullptr, 1); }});
#endif
    // d-D: the kernel hermite_moments picks against the old generic one, one thread
    struct DCase {
        std::size_t d, D;
    };
    for (DCase c : {DCase{2, 10}, DCase{2, 30}, DCase{3, 8}, DCase{5, 4}, DCase{10, 2}}) {
        auto tab = std::make_shared<mc::HermiteIndexTable>(graded_table<mc::HermiteIndexTable>(c.d, c.D));
        const double sm = static_cast<double>(N2) * static_cast<double>(tab->parent.size());
        const std::string tag = std::to_string(c.d) + "d_deg" + std::to_string(c.D);
        parts.push_back({tag + "_new", sm, [&, tab] {
                             mc::hermite_moments(xd.data(), N2, *tab, out.data(), nullptr, 1);
                         }});
#ifdef WITH_OLD
        auto tabo = std::make_shared<mc::hermite_old::HermiteIndexTable>(
            graded_table<mc::hermite_old::HermiteIndexTable>(c.d, c.D));
        parts.push_back({tag + "_old", sm, [&, tabo] {
                             mc::hermite_old::hermite_moments(xd.data(), N2, *tabo, out_old.data(), nullptr, 1);
                         }});
        if (c.d == 2 && c.D == 10) {  // with the squares (standard errors)
            parts.push_back({tag + "_squares_new", sm, [&, tab] {
                                 mc::hermite_moments(xd.data(), N2, *tab, out.data(), out.data() + 10000, 1);
                             }});
            parts.push_back({tag + "_squares_old", sm, [&, tabo] {
                                 mc::hermite_old::hermite_moments(xd.data(), N2, *tabo, out_old.data(),
                                                                  out_old.data() + 10000, 1);
                             }});
        }
        mc::hermite_moments(xd.data(), N2, *tab, out.data(), nullptr, 1);
        mc::hermite_old::hermite_moments(xd.data(), N2, *tabo, out_old.data(), nullptr, 1);
        double worst = 0.0;
        for (std::size_t m = 0; m < tab->parent.size(); ++m)
            worst = std::max(worst, std::abs(out[m] - out_old[m]) / (1.0 + std::abs(out_old[m])));
        std::printf("%s: new vs old, max |diff| / (1 + |old|) = %.3g\n", tag.c_str(), worst);
#endif
    }
#ifdef WITH_OLD
    mc::hermite_moments(x1.data(), N1, tab1, out.data(), nullptr, 1);
    mc::hermite_old::hermite_moments(x1.data(), N1, tab1o, out_old.data(), nullptr, 1);
    double worst = 0.0;
    for (std::size_t m = 0; m <= D1; ++m)
        worst = std::max(worst, std::abs(out[m] - out_old[m]) / (1.0 + std::abs(out_old[m])));
    std::printf("1d_deg30: new vs old, max |diff| / (1 + |old|) = %.3g\n", worst);
#endif
    // the fused 2-D kernel (degree 10) split: its blocks as hermite_moments runs them; the same
    // blocks with no tiles (the per-coordinate recurrences, the loads of x, the stores of the
    // values, the block overhead); the tiles alone on one block's values (the sums)
    {
        const std::size_t d = 2, D = 10;
        const mc::HermiteIndexTable tab = graded_table<mc::HermiteIndexTable>(d, D);
        const std::size_t M = tab.parent.size();
        auto sc = std::make_shared<mc::HermiteScaled>(mc::hermite_scaled(D, 24));
        auto plan = std::make_shared<mc::HermiteFusedPlan>();
        mc::hermite_fused_plan(tab, *sc, *plan);
        auto len = std::make_shared<std::vector<std::size_t>>();
        auto tiles = std::make_shared<std::vector<mc::HermiteTile>>();
        mc::hermite_tiles(*plan, *len, *tiles);
        auto none = std::make_shared<std::vector<mc::HermiteTile>>();
        std::printf("2d_deg10: %zu tiles\n", tiles->size());
        auto blocks = [&, sc, plan, len, d, D, M](std::shared_ptr<std::vector<mc::HermiteTile>> tl) {
            return [&, sc, plan, len, tl, d, D, M] {
                mc::HermiteFusedWork w(d, D, *plan);
                mc::HermiteScratch lanes(4 * M);
                for (std::size_t b0 = 0; b0 < N2; b0 += mc::kHermBlock)
                    mc::hermite_fused_block(xd.data(), b0, mc::kHermBlock, d, D, *sc, *plan, *tl, len->data(), w,
                                            lanes.v4(), nullptr);
                sink += lanes.v4()[1] + MODELCOLLAPSE_LOAD4(w.g + 5);
            };
        };
        const double sm = static_cast<double>(N2) * static_cast<double>(M);
        parts.push_back({"2d_deg10_blocks", sm, blocks(tiles)});
        parts.push_back({"2d_deg10_blocks_no_sums", sm, blocks(none)});
        auto wk = std::make_shared<mc::HermiteFusedWork>(d, D, *plan);
        {
            mc::HermiteScratch lanes(4 * M);
            mc::hermite_fused_block(xd.data(), 0, mc::kHermBlock, d, D, *sc, *plan, *tiles, len->data(), *wk,
                                    lanes.v4(), nullptr);
        }
        parts.push_back({"2d_deg10_recurrences_bare", sm, [&, sc, d, D] { bare_dd(xd.data(), N2, d, D, *sc, &sink); }});
        auto gbuf = std::make_shared<mc::HermiteScratch>(d * (D + 1) * mc::kHermBlock);  // 64-byte aligned
        parts.push_back({"2d_deg10_stores_only", sm, [&, gbuf, d, D] {
                             stores_dd(xd.data(), N2, d, D, gbuf->p);
                             sink += MODELCOLLAPSE_LOAD4(gbuf->p + 8);
                         }});
        parts.push_back({"2d_deg10_sums_only", sm, [&, plan, len, tiles, wk, d, D, M] {
                             mc::HermiteScratch lanes(4 * M);
                             tiles_only(*wk, *tiles, plan->run_begin.data(), len->data(), d, D, N2, lanes.v4());
                             sink += lanes.v4()[3];
                         }});
    }
    for (auto& p : parts) p.run();  // warm-up
    for (int r = 0; r < rounds; ++r)
        for (auto& p : parts) {
            const double t0 = p.wall_clock ? wall() : thread_cpu();
            p.run();
            p.t.push_back((p.wall_clock ? wall() : thread_cpu()) - t0);
        }
    std::printf("%-26s %12s %10s %10s  (ns per sample-moment; %d rounds)\n", "part", "median", "min", "max", rounds);
    for (auto& p : parts) {
        std::vector<double> t = p.t;
        std::sort(t.begin(), t.end());
        const double f = 1e9 / p.items;
        std::printf("%-26s %12.4f %10.4f %10.4f%s\n", p.name.c_str(), t[t.size() / 2] * f, t.front() * f,
                    t.back() * f, p.wall_clock ? "  (wall clock)" : "");
    }
    std::printf("(sink %g)\n", sink[0] + lane_mem[5]);
    return 0;
}
