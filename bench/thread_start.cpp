// Where does a newly started thread run, and how soon? The library starts its worker threads per
// call (parallel.hpp, parallel_for; dae.hpp, BlockPrefetcher), and the calling thread works at
// once. Each trial starts a thread while the caller computes, records how long the thread took to
// run its first instruction and on which CPU (caller's CPU * 10 + the thread's), then the caller
// computes alone for ~6 ms (as between kernel calls). On the 2-vCPU development VM (2026-12-01,
// 40 trials): most threads started on the other vCPU within 40-110 us, but 3 of 40 were placed on
// the caller's own, busy vCPU ("00") and started ~2.8 ms late, with the other vCPU idle: a
// two-thread call that lasts a few milliseconds then runs on one thread (docs/dae.md,
// "Performance").
//
//   g++ -O2 -pthread bench/thread_start.cpp -o /tmp/thread_start && /tmp/thread_start [trials]
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;
static volatile double sink;

static double spin(long n) {
    double a = 1.0;
    for (long i = 0; i < n; ++i) a = a * 1.0000001 + 1e-9;
    return a;
}

int main(int argc, char** argv) {
    const int trials = argc > 1 ? std::atoi(argv[1]) : 40;
    int late = 0;
    for (int it = 0; it < trials; ++it) {
        std::atomic<bool> started{false};
        double start_us = 0.0;
        int cpu_thread = -1;
        const auto t0 = Clock::now();
        const int cpu_caller = sched_getcpu();
        std::thread t([&] {
            start_us = 1e6 * std::chrono::duration<double>(Clock::now() - t0).count();
            cpu_thread = sched_getcpu();
            started = true;
            sink = spin(2000000);
        });
        double a = 1.0;  // the caller works meanwhile, as worker 0 does
        for (long i = 0; i < 8000000 && !started.load(std::memory_order_relaxed); ++i) a = a * 1.0000001 + 1e-9;
        sink = a;
        t.join();
        late += start_us > 1000.0;
        std::printf("%.0fus(%d%d) ", start_us, cpu_caller, cpu_thread);
        sink = spin(6000000);
    }
    std::printf("\n%d of %d threads started over 1 ms late\n", late, trials);
    return 0;
}
