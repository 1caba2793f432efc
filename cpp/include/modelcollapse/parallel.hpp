// Thread pool-free parallel loop with cooperative cancellation.
//
// Work is cut into chunks handed out through an atomic counter, so the partition of the
// work (and therefore every result that depends only on the item index) does not depend on
// the number of threads. The calling thread is one of the workers and polls `poll` between its
// chunks and through its token (the bindings use it to check for Ctrl-C); once it runs out of
// chunks it polls every few milliseconds until the others finish, and raises `Cancelled` when asked.
// It also polls once on entry, so a caller that runs many short loops in a row (one per
// time step, say) notices Ctrl-C too; `throttled` makes such frequent polls cheap.
//
// If the system refuses to start a worker thread (address-space or process limits), the
// loop runs on the workers that did start and the calling thread (the results do not depend
// on their number): never std::terminate.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>
#if defined(MODELCOLLAPSE_THREAD_STATS) && defined(__linux__)
#include <sys/resource.h>
#include <time.h>
#include <cstdio>
#endif

namespace modelcollapse {

// Returns true when the computation must stop (e.g. the user pressed Ctrl-C).
using PollFn = std::function<bool()>;

struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("computation cancelled") {}
};

// View on the stop flag, handed to loop bodies that run for a long time. A loop run on the
// calling thread (parallel_for with one worker) has no other thread to poll for it: its token
// asks `poll` itself, but only on the thread that made it (bodies may hand the token to a
// helper thread, as the DAE's BlockPrefetcher does, and a poll is meant for its owner
// thread), and raises the flag when the poll says stop. The polls are throttled (one clock
// read a call between real polls, bindings.hpp python_poll), so bodies may ask per item.
class StopToken {
  public:
    explicit StopToken(const std::atomic<bool>* flag = nullptr) : flag_(flag) {}
    StopToken(std::atomic<bool>* flag, const PollFn* poll)
        : flag_(flag), raise_(flag), poll_(poll && *poll ? poll : nullptr), owner_(std::this_thread::get_id()) {}
    bool stop_requested() const {
        if (flag_ && flag_->load(std::memory_order_relaxed)) return true;
        if (poll_ && std::this_thread::get_id() == owner_ && (*poll_)()) {
            raise_->store(true, std::memory_order_relaxed);
            return true;
        }
        return false;
    }

  private:
    const std::atomic<bool>* flag_;
    std::atomic<bool>* raise_ = nullptr;
    const PollFn* poll_ = nullptr;
    std::thread::id owner_;
};

#if defined(MODELCOLLAPSE_THREAD_STATS) && defined(__linux__)
// Bench-only (bench/dae_threads.cpp): where the calling thread's wall time went, from Linux's
// per-thread scheduler accounting. CLOCK_THREAD_CPUTIME_ID gives the time on a CPU,
// /proc/thread-self/schedstat the time runnable but waiting on a run queue (preempted or not
// yet scheduled) and the number of timeslices; getrusage(RUSAGE_THREAD) the voluntary (blocked, yielded) and involuntary
// (preempted) context switches. Wall time less CPU time less run-queue delay is time the thread
// was not runnable (blocked, sleeping) or its vCPU was taken by the hypervisor (steal).
// Never compiled into the extension: a sample costs a file read (a few microseconds).
struct SchedSample {
    // wall clock read before and after the others: a delay on the run queue while sampling is
    // counted in run_delay only once the thread runs again, so a difference (end - start) takes
    // the end's later reading and the start's earlier one, and such a delay lands in both the
    // wall time and the run queue (end) or in the wall time only (start), never in the run queue
    // alone
    double wall_begin = 0.0, wall = 0.0, cpu = 0.0, rq = 0.0;  // seconds
    long slices = 0, nvcsw = 0, nivcsw = 0;
    SchedSample operator-(const SchedSample& o) const {
        SchedSample r;
        r.wall = wall - o.wall_begin;
        r.wall_begin = 0.0;
        r.cpu = cpu - o.cpu;
        r.rq = rq - o.rq;
        r.slices = slices - o.slices;
        r.nvcsw = nvcsw - o.nvcsw;
        r.nivcsw = nivcsw - o.nivcsw;
        return r;
    }
};

inline SchedSample sched_sample() {
    SchedSample s;
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s.wall_begin = static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    // CPU time from the clock (exact now); schedstat's own run time is brought up to date
    // only at scheduler events (ticks, switches), its run-queue delay is exact while running
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    s.cpu = static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    unsigned long long run = 0, wait = 0, slices = 0;
    if (std::FILE* f = std::fopen("/proc/thread-self/schedstat", "r")) {
        if (std::fscanf(f, "%llu %llu %llu", &run, &wait, &slices) != 3) run = wait = slices = 0;
        std::fclose(f);
    }
    s.rq = 1e-9 * static_cast<double>(wait);
    s.slices = static_cast<long>(slices);
    rusage ru;
    if (getrusage(RUSAGE_THREAD, &ru) == 0) {
        s.nvcsw = ru.ru_nvcsw;
        s.nivcsw = ru.ru_nivcsw;
    }
    clock_gettime(CLOCK_MONOTONIC, &ts);
    s.wall = static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
    return s;
}

// Bench-only: when set, every parallel_for with two or more workers records each worker's
// scheduler accounting over its life and the items it ran (bench/thread_split.cpp).
struct LoopStats {
    std::mutex mutex;
    std::vector<SchedSample> workers;
    std::vector<std::size_t> items;
};
inline LoopStats*& loop_stats() {
    static LoopStats* p = nullptr;
    return p;
}
#endif

// Worker threads parallel_for has started in this process: a test hook (a loop with one
// worker must start none, tests/test_threads_safety.py), read through _core.
inline std::atomic<unsigned long long>& workers_started() {
    static std::atomic<unsigned long long> count{0};
    return count;
}

// Thread creation failed for every worker (the message says why and what to do).
struct ThreadStartError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Most worker threads a loop may use: more only oversubscribes the machine, and each
// thread reserves a stack, so thousands of them can exhaust an address-space limit.
constexpr int kMaxThreads = 256;

// threads = 0 means all cores (at most kMaxThreads); 1..kMaxThreads is taken as is.
// Anything else is a caller error (std::invalid_argument, a ValueError in Python).
inline unsigned resolve_threads(int threads) {
    if (threads < 0 || threads > kMaxThreads)
        throw std::invalid_argument("threads must be in [0, " + std::to_string(kMaxThreads) +
                                    "] (0 = all cores), got " + std::to_string(threads));
    if (threads > 0) return static_cast<unsigned>(threads);
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1u : std::min<unsigned>(hc, kMaxThreads);
}

// How often a throttled poll really polls.
constexpr std::chrono::milliseconds kPollInterval{20};

// Wraps `poll` so that calling it costs one clock read except every `interval`, when it
// calls `poll`; once `poll` has said stop, every later call says stop without calling it.
// Meant for the one thread that owns the poll (the caller of the compiled function): kernels
// call it between time steps or blocks, however short they are.
inline PollFn throttled(PollFn poll, std::chrono::steady_clock::duration interval = kPollInterval) {
    if (!poll) return poll;
    struct State {
        PollFn poll;
        std::chrono::steady_clock::duration interval;
        std::chrono::steady_clock::time_point next;
        bool stopped = false;
    };
    auto st = std::make_shared<State>();
    st->poll = std::move(poll);
    st->interval = interval;
    st->next = std::chrono::steady_clock::now() + interval;
    return [st]() {
        if (st->stopped) return true;
        const auto now = std::chrono::steady_clock::now();
        if (now < st->next) return false;
        st->next = now + st->interval;
        st->stopped = st->poll();
        return st->stopped;
    };
}

// True when `poll` is set and asks to stop.
inline bool poll_says_stop(const PollFn& poll) { return poll && poll(); }

// Runs body(begin, end, stop_token) over [0, n) in chunks of `chunk` items on `threads`
// workers. With a single worker (threads = 1, or a single chunk) everything runs on the
// calling thread, which polls between chunks and through the token (StopToken above): a
// thread start costs tens of microseconds, most of a small kernel's time (the binned KDE's,
// bench/bounds.py `kde_binned_1d_kernel`). With w > 1 workers, w - 1 threads start and the
// calling thread is the w-th. The chunks are the same either way.
template <class Body>
void parallel_for(std::size_t n, std::size_t chunk, int threads, Body&& body,
                  const PollFn& poll = PollFn()) {
    if (n == 0) return;
    if (poll_says_stop(poll)) throw Cancelled();
    chunk = std::max<std::size_t>(chunk, 1);
    std::size_t n_chunks = (n + chunk - 1) / chunk;
    unsigned n_workers = std::min<std::size_t>(resolve_threads(threads), n_chunks);

    std::atomic<bool> stop{false};
    if (n_workers == 1) {
        const StopToken own(&stop, &poll);
        for (std::size_t b = 0; b < n; b += chunk) {
            if (b > 0 && poll_says_stop(poll)) throw Cancelled();
            body(b, std::min(n, b + chunk), own);
            if (stop.load(std::memory_order_relaxed)) throw Cancelled();
        }
        return;
    }
    StopToken token(&stop);
    // The calling thread works too, as worker 0 (its token polls, as with one worker): a loop on
    // w workers starts w - 1 threads, and the caller does not sleep while they work and wait for
    // a wake-up at the end (a thread start and a wake-up cost tens of microseconds each,
    // bench/thread_split.cpp; issue 16, the two-thread rows of sub-millisecond kernels).
    const StopToken own(&stop, &poll);

    std::atomic<std::size_t> next{0};
    std::atomic<unsigned> running{n_workers};
    std::mutex mutex;
    std::condition_variable done_cv;
    std::exception_ptr error;

    auto worker = [&](const StopToken& tok, bool caller) {
#if defined(MODELCOLLAPSE_THREAD_STATS) && defined(__linux__)
        const SchedSample s0 = sched_sample();
        std::size_t items = 0;
        struct Record {  // however the worker ends
            const SchedSample& s0;
            const std::size_t& items;
            ~Record() {
                if (LoopStats* ls = loop_stats()) {
                    const SchedSample d = sched_sample() - s0;
                    std::lock_guard<std::mutex> lock(ls->mutex);
                    ls->workers.push_back(d);
                    ls->items.push_back(items);
                }
            }
        } record{s0, items};
#endif
        try {
            while (!stop.load(std::memory_order_relaxed)) {
                // the caller polls between its chunks too (throttled: one clock read)
                if (caller && poll_says_stop(poll)) {
                    stop.store(true);
                    break;
                }
                std::size_t c = next.fetch_add(1);
                if (c >= n_chunks) break;
                std::size_t b = c * chunk;
                body(b, std::min(n, b + chunk), tok);
#if defined(MODELCOLLAPSE_THREAD_STATS) && defined(__linux__)
                items += std::min(n, b + chunk) - b;
#endif
            }
        } catch (...) {
            std::lock_guard<std::mutex> lock(mutex);
            if (!error) error = std::current_exception();
            stop.store(true);
        }
        std::lock_guard<std::mutex> lock(mutex);
        if (--running == 0) done_cv.notify_all();
    };

    std::vector<std::thread> pool;
    try {
        pool.reserve(n_workers - 1);
        for (unsigned i = 1; i < n_workers; ++i) {
            pool.emplace_back(worker, std::cref(token), false);
            workers_started().fetch_add(1, std::memory_order_relaxed);
        }
    } catch (const std::exception&) {  // std::system_error (EAGAIN) or std::bad_alloc
    }
    if (pool.size() + 1 < n_workers) {
        // The workers that started (the caller at least) share all the chunks.
        std::lock_guard<std::mutex> lock(mutex);
        running -= n_workers - 1 - static_cast<unsigned>(pool.size());
    }
    worker(own, true);

    {
        std::unique_lock<std::mutex> lock(mutex);
        while (running.load() != 0) {
            done_cv.wait_for(lock, std::chrono::milliseconds(10));
            if (poll && running.load() != 0 && !stop.load()) {
                lock.unlock();
                bool want_stop = poll();
                lock.lock();
                if (want_stop) stop.store(true);
            }
        }
    }
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    // the flag is raised only by an error (rethrown above) or a poll that said stop
    if (stop.load()) throw Cancelled();
}

}  // namespace modelcollapse
