// Two-thread scaling of the DAE's SGD kernel, in one process (issue 16): one replica trained
// with the sample-drawing helper (dae::BlockPrefetcher, 2 threads) and without it (1 thread),
// interleaved rounds, medians; with the helper, how many pieces of normals each thread drew
// and how long each waited (MODELCOLLAPSE_DAE_STATS); and the cost of handing a flag from one
// thread to the other and back (spin on an atomic vs a condition variable).
//
//   g++ -O3 -fno-math-errno -fopenmp-simd -pthread -DMODELCOLLAPSE_DAE_STATS -Icpp/include \
//       bench/dae_threads.cpp -o /tmp/dae_threads && /tmp/dae_threads [rounds]
//
// Each two-thread run's wall time is split, per thread, by Linux's scheduler accounting
// (/proc/thread-self/schedstat, getrusage(RUSAGE_THREAD): parallel.hpp, SchedSample) into useful
// work (CPU time outside the waits), synchronisation wait (CPU time spinning for the other
// thread; the helper's sleep on its condition variable), run-queue delay (runnable but not on a
// CPU: preempted by other jobs or not yet scheduled) and the rest (blocked: thread start and
// join; or steal, the VM's vCPU taken by the hypervisor: /proc/stat's steal over the runs is
// printed too). `--json` prints these medians (rounds' min and max) for d = 1e4 and 1e5 as one
// JSON object (bench/bounds.py records them).
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
#include <unistd.h>
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
    mc::SchedSample sched;  // the calling (SGD) thread's scheduler accounting over the run
};

// The machine's steal time so far (all CPUs, seconds; /proc/stat's eighth field of "cpu").
double steal_seconds() {
    std::FILE* f = std::fopen("/proc/stat", "r");
    if (!f) return 0.0;
    unsigned long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int got = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                                &v[5], &v[6], &v[7]);
    std::fclose(f);
    return got == 8 ? static_cast<double>(v[7]) / static_cast<double>(sysconf(_SC_CLK_TCK)) : 0.0;
}

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
    const mc::SchedSample s0 = mc::sched_sample();
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = thread_cpu();
    train(W.data(), b, v, rec, o.st);
    o.cpu = thread_cpu() - c0;
    o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    o.sched = mc::sched_sample() - s0;
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

// Per-round values of one problem size, by name, in the order first added.
struct Series {
    std::vector<std::string> names;
    std::vector<std::vector<double>> vals;
    void add(const std::string& n, double v) {
        for (std::size_t k = 0; k < names.size(); ++k)
            if (names[k] == n) {
                vals[k].push_back(v);
                return;
            }
        names.push_back(n);
        vals.push_back({v});
    }
    const std::vector<double>& operator[](const std::string& n) const {
        for (std::size_t k = 0; k < names.size(); ++k)
            if (names[k] == n) return vals[k];
        std::fprintf(stderr, "no series %s\n", n.c_str());
        std::exit(2);
    }
    double med(const std::string& n) const { return median((*this)[n]); }
    double lo(const std::string& n) const { auto& v = (*this)[n]; return *std::min_element(v.begin(), v.end()); }
    double hi(const std::string& n) const { auto& v = (*this)[n]; return *std::max_element(v.begin(), v.end()); }
};

// One round's split of the two-thread run `c` (and the one-thread run `a` of the same round).
// Shares are of the two-thread run's wall time T2 (the SGD thread's wall: it starts and joins
// the helper). Per thread: work + sync + rq + rest = its wall time.
void split(const Out& a, const Out& c, Series& sr) {
    const double T2 = c.sched.wall, T1 = a.sched.wall;
    const mc::dae::PrefetchStats& st = c.st;
    sr.add("t1_s", T1);
    sr.add("t2_s", T2);
    sr.add("speedup_wall", T1 / T2);
    sr.add("t1_rq_share", a.sched.rq / T1);  // the 1-thread run's own preemption
    // SGD thread
    const double sgd_sync = st.wait_sgd_cpu_s, sgd_work = c.sched.cpu - sgd_sync;
    sr.add("sgd_work_share", sgd_work / T2);
    sr.add("sgd_sync_share", sgd_sync / T2);
    sr.add("sgd_rq_share", c.sched.rq / T2);
    sr.add("sgd_rest_share", (T2 - c.sched.cpu - c.sched.rq) / T2);
    // off a CPU while waiting for the helper: run-queue delay inside the waits
    sr.add("sgd_rq_in_wait_share", std::max(0.0, st.wait_sgd_s - st.wait_sgd_cpu_s) / T2);
    sr.add("sgd_nivcsw", static_cast<double>(c.sched.nivcsw));
    sr.add("sgd_nvcsw", static_cast<double>(c.sched.nvcsw));
    // helper thread (its life is inside T2)
    const double hw = st.helper_wall_s;
    sr.add("helper_work_share", (st.helper_cpu_s - st.helper_wait_cpu_s) / T2);
    sr.add("helper_sync_share", st.helper_wait_cpu_s / T2);  // spinning for a free buffer
    sr.add("helper_rq_share", st.helper_rq_s / T2);
    sr.add("helper_sleep_share", std::max(0.0, hw - st.helper_cpu_s - st.helper_rq_s) / T2);  // on its cv
    sr.add("helper_outside_share", (T2 - hw) / T2);  // before its start and after its end
    sr.add("helper_nivcsw", static_cast<double>(st.helper_nivcsw));
    // The speed-up with no run-queue delay in either run (each run's wall less its calling
    // thread's delay; the SGD thread's waits that the helper's delay caused stay in: a lower
    // estimate), and with the SGD thread's waits removed too, up to the helper's delay (upper).
    const double t2_norq = T2 - c.sched.rq, t1_norq = T1 - a.sched.rq;
    sr.add("speedup_no_rq", t1_norq / t2_norq);
    sr.add("speedup_no_rq_hi", t1_norq / (t2_norq - std::min(sgd_sync, st.helper_rq_s)));
    // work only (CPU time): the 2-thread work over the 1-thread, and the speed-up it allows
    const double work2 = sgd_work + st.helper_work_cpu_s;
    const double per_piece = st.helper_work_cpu_s / std::max<double>(1.0, double(st.pieces_helper));
    sr.add("work_over_1thread", work2 / a.cpu);
    sr.add("speedup_work_bound", a.cpu / std::max(work2 / 2.0, sgd_work - per_piece * double(st.pieces_sgd)));
    sr.add("helper_piece_share", double(st.pieces_helper) / double(st.pieces_helper + st.pieces_sgd));
}

int main(int argc, char** argv) {
    int rounds = 9;
    bool json = false;
    for (int k = 1; k < argc; ++k) {
        if (std::strcmp(argv[k], "--json") == 0)
            json = true;
        else
            rounds = std::atoi(argv[k]);
    }
    if (!json) handoff(20000);
    std::atomic<bool> never{false};
    mc::StopToken stop(&never);
    const std::size_t sizes[][2] = {{1000, 4000}, {10000, 600}, {100000, 60}};
    if (json) std::printf("{\"rounds\": %d", rounds);
    for (auto& sz : sizes) {
        if (json && sz[0] < 10000) continue;
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
        std::vector<double> t_old;
        Series sr;
        double steal2 = 0.0, wall2 = 0.0;
        run(pb, make(false));  // warm-up: page faults
        for (int k = 0; k < rounds; ++k) {
            Out a = run(pb, make(false));
            const double s0 = steal_seconds();
            Out c = run(pb, make(true));
            steal2 += steal_seconds() - s0;
            wall2 += c.seconds;
            split(a, c, sr);
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
        // steal over all the 2-thread runs, as a share of both CPUs' time (USER_HZ ticks: coarse)
        sr.add("steal_share", steal2 / (2.0 * wall2));
        if (json) {
            std::printf(", \"d%zu\": {\"n_steps\": %zu", pb.d, pb.n_steps);
            for (auto& n : sr.names)
                std::printf(", \"%s\": [%.6g, %.6g, %.6g]", n.c_str(), sr.med(n), sr.lo(n), sr.hi(n));
            std::printf("}");
            continue;
        }
        auto pct = [&](const char* n) { return 100.0 * sr.med(n); };
        std::printf("d=%zu, %zu steps, %d rounds: 1 thread %.4g s, 2 threads %.4g s, speed-up %.2fx (rounds %.2f to "
                    "%.2f)",
                    pb.d, pb.n_steps, rounds, sr.med("t1_s"), sr.med("t2_s"), sr.med("speedup_wall"),
                    sr.lo("speedup_wall"), sr.hi("speedup_wall"));
        if (!t_old.empty())
            std::printf("; old 2 threads %.4g s, speed-up %.2fx, new over old %.2fx", median(t_old),
                        sr.med("t1_s") / median(t_old), median(t_old) / sr.med("t2_s"));
        std::printf("\n  helper drew %.0f%% of the pieces\n", pct("helper_piece_share"));
        std::printf("  2-thread wall time (medians, %% of it): SGD thread work %.1f, sync wait %.1f, run queue %.1f "
                    "(%.1f inside its waits), rest %.1f; helper work %.1f, sync spin %.1f, sleep %.1f, run queue "
                    "%.1f, outside its life %.1f; involuntary switches SGD %.0f, helper %.0f; 1-thread run's run "
                    "queue %.1f%%; steal %.1f%% of both CPUs\n",
                    pct("sgd_work_share"), pct("sgd_sync_share"), pct("sgd_rq_share"), pct("sgd_rq_in_wait_share"),
                    pct("sgd_rest_share"), pct("helper_work_share"), pct("helper_sync_share"),
                    pct("helper_sleep_share"), pct("helper_rq_share"), pct("helper_outside_share"),
                    sr.med("sgd_nivcsw"), sr.med("helper_nivcsw"), pct("t1_rq_share"), pct("steal_share"));
        std::printf("  speed-up without run-queue delay %.2fx (rounds %.2f to %.2f), also without the SGD waits the "
                    "helper's delay explains %.2fx (%.2f to %.2f)\n",
                    sr.med("speedup_no_rq"), sr.lo("speedup_no_rq"), sr.hi("speedup_no_rq"), sr.med("speedup_no_rq_hi"),
                    sr.lo("speedup_no_rq_hi"), sr.hi("speedup_no_rq_hi"));
        std::printf("  CPU time of the 2-thread run's work over the 1-thread run's: %.3f (rounds %.3f to %.3f); "
                    "speed-up it allows on 2 idle cores: %.2fx (rounds %.2f to %.2f)\n",
                    sr.med("work_over_1thread"), sr.lo("work_over_1thread"), sr.hi("work_over_1thread"),
                    sr.med("speedup_work_bound"), sr.lo("speedup_work_bound"), sr.hi("speedup_work_bound"));
    }
    if (json) std::printf("}\n");
    return 0;
}
