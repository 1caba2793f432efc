// Two-thread scaling of the DAE's SGD kernel, in one process (issue 16): one replica trained
// with the sample-drawing helper (dae::BlockPrefetcher, 2 threads) and without it (1 thread),
// interleaved rounds, medians; with the helper, how many pieces of normals each thread drew
// and how long each waited (MODELCOLLAPSE_DAE_STATS); and the cost of handing a flag from one
// thread to the other and back (spin on an atomic vs a condition variable).
//
//   g++ -O3 -fno-math-errno -fopenmp-simd -pthread -DMODELCOLLAPSE_DAE_STATS -Icpp/include \
//       bench/dae_threads.cpp -o /tmp/dae_threads && /tmp/dae_threads [rounds]
//
// With -DWITH_OLD=path/to/old/dae.hpp (its namespace renamed dae_old) the old kernel is
// timed in the same rounds (before/after comparisons). Results are checked bit-identical.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#include "modelcollapse/dae.hpp"
#ifdef WITH_OLD
#include WITH_OLD
#endif

namespace mc = modelcollapse;

struct Problem {
    std::size_t d, n_steps;
    std::vector<double> means, scales;
    mc::dae::Target tg;
    mc::dae::Schedule sched;
    mc::dae::Hyper hy;
    Problem(std::size_t d_, std::size_t n) : d(d_), n_steps(n), means(3 * d_, 0.0), scales(3 * d_, 1.0) {
        for (int k = 0; k < 3; ++k) {
            means[k * d] = 3.0 * std::cos(2.0943951023931953 * k);
            means[k * d + 1] = 3.0 * std::sin(2.0943951023931953 * k);
        }
        tg.d = d;
        tg.K = 3;
        tg.means = means.data();
        tg.scales = scales.data();
        tg.cum_weights = {1.0 / 3, 2.0 / 3, 1.0};
        sched.alpha = {0.6, 0.3};
        sched.beta = {0.4, 0.7};
        sched.p = {0.0, 0.0};
        hy.lr = 0.2;
    }
};

double thread_cpu() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

struct Out {
    double seconds, cpu;  // wall clock; CPU time of the calling (SGD) thread
    std::vector<double> W;
    mc::dae::PrefetchStats st;
};

template <class Train>
Out run(const Problem& pb, Train train) {
    const std::size_t d = pb.d;
    std::vector<double> W(2 * d);
    mc::rng::fill_normals(7, 3, 0, W.size(), W.data());
    double b = 0.0, v[2] = {0.0, 0.0};
    std::vector<double> Q(8), bb(2), vv(4);
    std::vector<std::size_t> steps(2);
    mc::dae::Recorder rec;
    rec.every = pb.n_steps;
    rec.n_rec = 2;
    rec.Q = Q.data();
    rec.b = bb.data();
    rec.v = vv.data();
    rec.steps = steps.data();
    Out o;
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu();
    train(W.data(), b, v, rec, o.st);
    o.cpu = thread_cpu() - c0;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    o.W = W;
    return o;
}

double median(std::vector<double> x) {
    std::sort(x.begin(), x.end());
    return x[x.size() / 2];
}

// Round trip of a flag between two threads: spinning on an atomic, and through a mutex and
// a condition variable (what the old helper used to wait for a released buffer).
void handoff(int n) {
    std::atomic<int> turn{0};
    std::thread t([&] {
        for (int i = 0; i < n; ++i) {
            while (turn.load(std::memory_order_acquire) != 2 * i + 1) __builtin_ia32_pause();
            turn.store(2 * i + 2, std::memory_order_release);
        }
    });
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        turn.store(2 * i + 1, std::memory_order_release);
        while (turn.load(std::memory_order_acquire) != 2 * i + 2) __builtin_ia32_pause();
    }
    const double spin = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n;
    t.join();
    std::mutex m;
    std::condition_variable cv;
    int state = 0;
    std::thread u([&] {
        for (int i = 0; i < n; ++i) {
            std::unique_lock<std::mutex> l(m);
            cv.wait(l, [&] { return state == 2 * i + 1; });
            state = 2 * i + 2;
            cv.notify_all();
        }
    });
    t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; ++i) {
        std::unique_lock<std::mutex> l(m);
        state = 2 * i + 1;
        cv.notify_all();
        cv.wait(l, [&] { return state == 2 * i + 2; });
    }
    const double cvs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / n;
    u.join();
    std::printf("hand-off round trip: spin %.3g us, condition variable %.3g us (%d round trips each)\n", spin * 1e6,
                cvs * 1e6, n);
}

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 9;
    handoff(20000);
    std::atomic<bool> never{false};
    mc::StopToken stop(&never);
    const std::size_t sizes[][2] = {{1000, 4000}, {10000, 600}, {100000, 60}};
    for (auto& sz : sizes) {
        Problem pb(sz[0], sz[1]);
        mc::dae::Trainer<2> tr(pb.d, 2, pb.hy, pb.sched);
        auto make = [&](bool prefetch) {
            return [&, prefetch](double* W, double& b, double* v, const mc::dae::Recorder& rec,
                                 mc::dae::PrefetchStats& st) {
                mc::dae::train_replica<2>(tr, pb.tg, 1, 0, pb.n_steps, W, b, v, rec, stop, false, prefetch, &st);
            };
        };
#ifdef WITH_OLD
        mc::dae_old::Trainer<2> tr_old(pb.d, 2, *reinterpret_cast<const mc::dae_old::Hyper*>(&pb.hy),
                                      *reinterpret_cast<const mc::dae_old::Schedule*>(&pb.sched));
        mc::dae_old::Target tg_old;
        tg_old.d = pb.tg.d;
        tg_old.K = pb.tg.K;
        tg_old.means = pb.tg.means;
        tg_old.scales = pb.tg.scales;
        tg_old.cum_weights = pb.tg.cum_weights;
        auto old2 = [&](double* W, double& b, double* v, const mc::dae::Recorder& rec, mc::dae::PrefetchStats&) {
            mc::dae_old::Recorder r2;
            std::memcpy(static_cast<void*>(&r2), &rec, sizeof r2);
            mc::dae_old::train_replica<2>(tr_old, tg_old, 1, 0, pb.n_steps, W, b, v, r2, stop, false, true);
        };
#endif
        std::vector<double> t1, t2, t_old, ws, wh, share, over, est;
        std::vector<double> ref;
        for (int k = 0; k < rounds; ++k) {
            Out a = run(pb, make(false));
            Out c = run(pb, make(true));
            t1.push_back(a.seconds);
            t2.push_back(c.seconds);
            const double per = 1.0 / (pb.n_steps / mc::dae::block_steps(pb.d) + 1.0);
            ws.push_back(c.st.wait_sgd_s * 1e6 * per);
            wh.push_back(c.st.wait_helper_s * 1e6 * per);
            share.push_back(double(c.st.pieces_helper) / double(c.st.pieces_helper + c.st.pieces_sgd));
            // Load-independent view (CPU times, not wall): the work of the 2-thread run (the SGD
            // thread outside its waits plus the helper's) over the 1-thread run's CPU time, and the
            // speed-up it allows on two idle cores when the pieces are split to balance the threads:
            // the SGD arithmetic (the SGD thread's work less its pieces, at the helper's CPU time a
            // piece) cannot move.
            const double sgd_work = c.cpu - c.st.wait_sgd_cpu_s, work2 = sgd_work + c.st.helper_work_cpu_s;
            const double per_piece = c.st.helper_work_cpu_s / std::max<double>(1.0, double(c.st.pieces_helper));
            over.push_back(work2 / a.cpu);
            est.push_back(a.cpu / std::max(work2 / 2.0, sgd_work - per_piece * double(c.st.pieces_sgd)));
            if (a.W != c.W) {
                std::printf("d=%zu: 1 and 2 threads differ\n", pb.d);
                return 1;
            }
#ifdef WITH_OLD
            Out o = run(pb, old2);
            t_old.push_back(o.seconds);
            if (o.W != a.W) {
                std::printf("d=%zu: old and new differ\n", pb.d);
                return 1;
            }
#endif
        }
        std::printf("d=%zu, %zu steps, %d rounds: 1 thread %.4g s, 2 threads %.4g s, speed-up %.2fx (rounds %.2f to "
                    "%.2f)",
                    pb.d, pb.n_steps, rounds, median(t1), median(t2), median(t1) / median(t2),
                    [&] { std::vector<double> r; for (int k = 0; k < rounds; ++k) r.push_back(t1[k] / t2[k]);
                          return *std::min_element(r.begin(), r.end()); }(),
                    [&] { std::vector<double> r; for (int k = 0; k < rounds; ++k) r.push_back(t1[k] / t2[k]);
                          return *std::max_element(r.begin(), r.end()); }());
        if (!t_old.empty())
            std::printf("; old 2 threads %.4g s, speed-up %.2fx, new over old %.2fx", median(t_old),
                        median(t1) / median(t_old), median(t_old) / median(t2));
        std::printf("\n  helper drew %.0f%% of the pieces; waits per block: SGD thread %.3g us, helper %.3g us\n",
                    100 * median(share), median(ws), median(wh));
        std::printf("  CPU time of the 2-thread run's work over the 1-thread run's: %.3f (rounds %.3f to %.3f); "
                    "speed-up it allows on 2 idle cores: %.2fx (rounds %.2f to %.2f)\n",
                    median(over), *std::min_element(over.begin(), over.end()), *std::max_element(over.begin(), over.end()),
                    median(est), *std::min_element(est.begin(), est.end()), *std::max_element(est.begin(), est.end()));
    }
    return 0;
}
