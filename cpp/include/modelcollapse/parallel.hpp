// Thread pool-free parallel loop with cooperative cancellation.
//
// Work is cut into chunks handed out through an atomic counter, so the partition of the
// work (and therefore every result that depends only on the item index) does not depend on
// the number of threads. The calling thread does not work: it polls `poll` every few
// milliseconds (the bindings use it to check for Ctrl-C) and raises `Cancelled` when asked.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace modelcollapse {

// Returns true when the computation must stop (e.g. the user pressed Ctrl-C).
using PollFn = std::function<bool()>;

struct Cancelled : std::runtime_error {
    Cancelled() : std::runtime_error("computation cancelled") {}
};

// Read-only view on the stop flag, handed to loop bodies that run for a long time.
class StopToken {
  public:
    explicit StopToken(const std::atomic<bool>* flag = nullptr) : flag_(flag) {}
    bool stop_requested() const { return flag_ && flag_->load(std::memory_order_relaxed); }

  private:
    const std::atomic<bool>* flag_;
};

inline unsigned resolve_threads(int threads) {
    if (threads > 0) return static_cast<unsigned>(threads);
    unsigned hc = std::thread::hardware_concurrency();
    return hc == 0 ? 1u : hc;
}

// Runs body(begin, end, stop_token) over [0, n) in chunks of `chunk` items on `threads`
// workers. With an empty `poll` and a single thread everything runs inline.
template <class Body>
void parallel_for(std::size_t n, std::size_t chunk, int threads, Body&& body,
                  const PollFn& poll = PollFn()) {
    if (n == 0) return;
    chunk = std::max<std::size_t>(chunk, 1);
    std::size_t n_chunks = (n + chunk - 1) / chunk;
    unsigned n_workers = std::min<std::size_t>(resolve_threads(threads), n_chunks);

    std::atomic<bool> stop{false};
    StopToken token(&stop);
    if (n_workers == 1 && !poll) {
        for (std::size_t b = 0; b < n; b += chunk) body(b, std::min(n, b + chunk), token);
        return;
    }

    std::atomic<std::size_t> next{0};
    std::atomic<unsigned> running{n_workers};
    std::mutex mutex;
    std::condition_variable done_cv;
    std::exception_ptr error;

    auto worker = [&]() {
        try {
            while (!stop.load(std::memory_order_relaxed)) {
                std::size_t c = next.fetch_add(1);
                if (c >= n_chunks) break;
                std::size_t b = c * chunk;
                body(b, std::min(n, b + chunk), token);
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
    pool.reserve(n_workers);
    for (unsigned i = 0; i < n_workers; ++i) pool.emplace_back(worker);

    bool cancelled = false;
    {
        std::unique_lock<std::mutex> lock(mutex);
        while (running.load() != 0) {
            done_cv.wait_for(lock, std::chrono::milliseconds(20));
            if (poll && running.load() != 0 && !stop.load()) {
                lock.unlock();
                bool want_stop = poll();
                lock.lock();
                if (want_stop) {
                    cancelled = true;
                    stop.store(true);
                }
            }
        }
    }
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
    if (cancelled) throw Cancelled();
}

}  // namespace modelcollapse
