// The exact grid KDE's 1-D per-pair loop (kde.hpp grid_1d) against variants with fewer and
// more independent product chains, in one process (issue 16): interleaved rounds, medians, and
// the largest relative difference from the shipped kernel. A lane's value is a product
// chained along the grid (t <- t r, r <- r q): with L lanes a stride advances L pairs per
// multiplication latency, so L = 8 (two AVX2 vectors) allows 8 pairs per 3 cycles, and more
// lanes (16, the shipped kernel; 32: the grid split in interleaved sub-chains stepping by q^L, restarted from
// exact exponentials every kGridRestart strides as the shipped kernel is) relax that bound.
// Also a variant with no accumulator traffic (sums the pairs into registers) and one with
// no chain (adds t only), which split the loop's cost between its parts.
//
//   g++ -O3 -fno-math-errno -fopenmp-simd -march=x86-64-v3 -Icpp/include -I/usr/include/eigen3 \
//       bench/kde_chains.cpp -o /tmp/kde_chains && /tmp/kde_chains [rounds]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <time.h>
#include <vector>

#include "modelcollapse/kde.hpp"

namespace mc = modelcollapse;
namespace kde = mc::kde;

// grid_1d with L lanes (L = kGridLanes = 16 is the shipped kernel's loop, written the same
// way; L = 8 was the kernel before issue 16's measurement).
template <int L>
__attribute__((noinline)) void grid_lanes(const double* x, const double* w, std::size_t n, double sigma,
                                          const kde::GridAxis& ax, double* __restrict acc) {
    const double h = ax.step / sigma, vmax = std::sqrt(2.0 * kde::kGridCutoff);
    const double qL = std::exp(-double(L) * double(L) * h * h), isig = 1.0 / sigma;
    const std::size_t span = L * kde::kGridRestart;
    for (std::size_t i = 0; i < n; ++i) {
        const double wi = w[i], xi = x[i];
        std::size_t lo, hi;
        kde::axis_window(ax, 1.0 / ax.step, xi, vmax * sigma, lo, hi);
        const std::size_t count = hi - lo;
        double* __restrict a = acc + lo;
        for (std::size_t base = 0; base < count; base += span) {
            double t[L], r[L];
            const double jb = static_cast<double>(lo + base);
#pragma omp simd
            for (int l = 0; l < L; ++l) {
                const double v = (ax.start + (jb + l) * ax.step - xi) * isig;
                t[l] = mc::fastmath::exp_flush(-0.5 * v * v);
                r[l] = mc::fastmath::exp_flush(-double(L) * h * (v + 0.5 * double(L) * h));
            }
            const std::size_t end = std::min(count, base + span);
            std::size_t k = base;
            for (; k + L <= end; k += L) {
#pragma omp simd
                for (int l = 0; l < L; ++l) {
                    a[k + l] += wi * t[l];
                    t[l] *= r[l];
                    r[l] *= qL;
                }
            }
            for (int l = 0; k + static_cast<std::size_t>(l) < end; ++l) a[k + l] += wi * t[l];
        }
    }
}

// The same loop without the chained ratio (t <- t r with r fixed): one multiplication a pair.
__attribute__((noinline)) void grid_fixed_r(const double* x, const double* w, std::size_t n, double sigma,
                                            const kde::GridAxis& ax, double* __restrict acc) {
    constexpr int L = 8;
    const double h = ax.step / sigma, vmax = std::sqrt(2.0 * kde::kGridCutoff), isig = 1.0 / sigma;
    for (std::size_t i = 0; i < n; ++i) {
        const double wi = w[i], xi = x[i];
        std::size_t lo, hi;
        kde::axis_window(ax, 1.0 / ax.step, xi, vmax * sigma, lo, hi);
        const std::size_t count = hi - lo;
        double* __restrict a = acc + lo;
        double t[L], r[L];
        for (int l = 0; l < L; ++l) {
            const double v = (ax.start + (double(lo) + l) * ax.step - xi) * isig;
            t[l] = std::exp(-0.5 * v * v);
            r[l] = std::exp(-1e-3 * h);
        }
        std::size_t k = 0;
        for (; k + L <= count; k += L) {
#pragma omp simd
            for (int l = 0; l < L; ++l) {
                a[k + l] += wi * t[l];
                t[l] *= r[l];
            }
        }
    }
}

// Clock: a chain of dependent multiplications (3 cycles each on Zen 3, Agner Fog's tables).
__attribute__((noinline)) double mul_chain(double x, double y, long n) {
    for (long i = 0; i < n; ++i) {
        x *= y;
        __asm__ volatile("" : "+x"(x));  // keeps the chain: no reassociation
    }
    return x;
}

// Thread CPU time, not wall time: on a shared machine the wall clock mostly measures the
// other jobs (a load of 17 on 2 cores gives this thread a fraction of a core).
static double now() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 15;
    const std::size_t n = 5000, m = 1000;
    // the bench's case: standard normal samples, Scott's bandwidth, grid over the data +- 3 bandwidths
    std::vector<double> x(n), w(n, 1.0 / n);
    unsigned long long s = 12345;
    for (auto& v : x) {  // Box-Muller from an LCG: any smooth sample does
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u1 = ((s >> 11) + 0.5) / 9007199254740992.0;
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        double u2 = ((s >> 11) + 0.5) / 9007199254740992.0;
        v = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
    }
    const double sigma = std::pow(double(n), -0.2);
    const double lo = *std::min_element(x.begin(), x.end()) - 3 * sigma;
    const double hi = *std::max_element(x.begin(), x.end()) + 3 * sigma;
    kde::GridAxis ax{lo, (hi - lo) / double(m - 1), m};
    mc::StopToken tok;
    std::vector<double> ref(m), out(m);
    const char* names[] = {"shipped grid_1d (16 lanes)", "8 lanes (the former kernel)", "16 lanes (copy)",
                           "32 lanes", "8 lanes, ratio fixed"};
    const int NV = 5;
    std::vector<std::vector<double>> t(NV);
    double maxrel[NV] = {0};
    std::size_t pairs = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t a, b;
        kde::axis_window(ax, 1.0 / ax.step, x[i], std::sqrt(2.0 * kde::kGridCutoff) * sigma, a, b);
        pairs += b - a;
    }
    std::vector<double> tc;
    for (int r = 0; r < rounds; ++r)
        for (int v = 0; v < NV + 1; ++v) {
            if (v == NV) {
                const double t0 = now();
                volatile double sink = mul_chain(1.0, 1.0000000001, 20000000);
                (void)sink;
                tc.push_back(now() - t0);
                continue;
            }
            std::vector<double>& o = v == 0 ? ref : out;
            std::fill(o.begin(), o.end(), 0.0);
            const double t0 = now();
            switch (v) {
                case 0: kde::grid_1d(x.data(), w.data(), 0, n, sigma, ax, o.data(), tok); break;
                case 1: grid_lanes<8>(x.data(), w.data(), n, sigma, ax, o.data()); break;
                case 2: grid_lanes<kde::kGridLanes>(x.data(), w.data(), n, sigma, ax, o.data()); break;
                case 3: grid_lanes<32>(x.data(), w.data(), n, sigma, ax, o.data()); break;
                case 4: grid_fixed_r(x.data(), w.data(), n, sigma, ax, o.data()); break;
            }
            t[v].push_back(now() - t0);
            if (v > 0 && v < 4)
                for (std::size_t j = 0; j < m; ++j)
                    maxrel[v] = std::max(maxrel[v], std::abs(o[j] - ref[j]) / ref[j]);
        }
    std::printf("n=%zu m=%zu pairs=%zu (%.3f of n m), %d rounds, medians (min):\n", n, m, pairs,
                double(pairs) / double(n * m), rounds);
    std::sort(tc.begin(), tc.end());
    const double ghz = 6e7 / tc[0] / 1e9;  // fastest round: least disturbed by other jobs
    std::printf("  clock from the multiplication chain (3 cycles a link): %.2f GHz (median round %.2f)\n", ghz,
                6e7 / tc[tc.size() / 2] / 1e9);
    double t0 = 0;
    for (int v = 0; v < NV; ++v) {
        std::vector<double> q = t[v];
        std::sort(q.begin(), q.end());
        const double med = q[q.size() / 2];
        if (v == 0) t0 = med;
        std::printf("  %-28s %.3f ns/pair (min %.3f = %.2f cycles, %.2f a stride of 8)  %.2fx shipped  max rel diff %.1e\n",
                    names[v], 1e9 * med / double(pairs), 1e9 * q[0] / double(pairs), ghz * 1e9 * q[0] / double(pairs),
                    8 * ghz * 1e9 * q[0] / double(pairs), t0 / med, maxrel[v]);
    }
}
