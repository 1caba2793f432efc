// Where a two-thread parallel_for run's wall time goes (issue 16, "two-thread scaling"): the
// exact grid KDE (kde::exact_grid, the bench's "kde exact" cases) and the 2-D Hermite moments
// (hermite_moments, the bench's hermite_2d_deg10) and the empirical score (the loop of
// EmpiricalScore.score, cpp/bindings/score_eval.hpp: n = m = 1e4, d = 2, t = 0.1 and 1.0) on one
// and on two threads,
// interleaved rounds, medians. parallel_for records, per worker, Linux's scheduler accounting
// (parallel.hpp, SchedSample, MODELCOLLAPSE_THREAD_STATS): CPU time, run-queue delay
// (runnable, not on a CPU: preempted or not yet scheduled), the rest of its life (blocked),
// and the items it ran (the calling thread is one of the workers); and the wall time outside
// the longest worker's life (set-up, thread starts, the reduction, the join). `--json` prints
// the medians (rounds' min and max) as one JSON object (bench/bounds.py records them).
//
//   g++ -O3 -fno-math-errno -fopenmp-simd -pthread -DMODELCOLLAPSE_THREAD_STATS -Icpp/include \
//       -isystem $(python -m cmeel cmake)/include/eigen3 bench/thread_split.cpp -o /tmp/thread_split
//   /tmp/thread_split [rounds]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "modelcollapse/hermite.hpp"
#include "modelcollapse/sampler.hpp"
#include "modelcollapse/kde.hpp"

namespace mc = modelcollapse;

static double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

struct Run {
    double wall;
    mc::SchedSample caller;
    std::vector<mc::SchedSample> workers;
    std::vector<std::size_t> items;
    std::vector<double> out;
};

template <class F>
Run timed(F f, std::size_t m) {
    mc::LoopStats ls;
    mc::loop_stats() = &ls;
    Run r;
    r.out.assign(m, 0.0);
    const mc::SchedSample s0 = mc::sched_sample();
    f(r.out.data());
    r.caller = mc::sched_sample() - s0;
    r.wall = r.caller.wall;
    mc::loop_stats() = nullptr;
    r.workers = ls.workers;
    r.items = ls.items;
    return r;
}

// Times call(1) and call(2) interleaved for `rounds` rounds and prints (or, with json, emits
// as "key": {...}) the medians of the split; true when the two results differ.
template <class Call>
bool split_case(Call call, std::size_t G, int rounds, bool json, const char* key, const char* what, std::size_t grid) {
    timed(call(1), G);
    timed(call(2), G);  // warm-up
    std::vector<double> sp, work, outside, w_cpu, w_rq, w_rest, imb, sp_norq, one_rq;
    for (int r = 0; r < rounds; ++r) {
        Run a = timed(call(1), G), c = timed(call(2), G);
        if (a.out != c.out) {
            std::printf("%s: 1 and 2 threads differ\n", what);
            return true;
        }
        const double T1 = a.wall, T2 = c.wall;
        sp.push_back(T1 / T2);
        one_rq.push_back(a.caller.rq / T1);
        double cpu = 0, rq = 0, rest = 0, life = 0, mx = 0, mn = 1e30;
        for (auto& s : c.workers) {
            cpu += s.cpu;
            rq += s.rq;
            rest += s.wall - s.cpu - s.rq;
            life = std::max(life, s.wall);
            mx = std::max(mx, s.cpu);
            mn = std::min(mn, s.cpu);
        }
        const double nw = static_cast<double>(c.workers.size());
        // CPU time, 2-thread over 1-thread: the workers' (the caller's included) plus the
        // caller's outside its worker part (set-up, thread starts, reduction)
        double caller_rest = c.caller.cpu;
        for (auto& s : c.workers) caller_rest = std::min(caller_rest, c.caller.cpu - s.cpu);
        work.push_back((cpu + std::max(0.0, caller_rest)) / a.caller.cpu);
        outside.push_back((T2 - life) / T2);  // set-up, thread start, reduction, join
        w_cpu.push_back(cpu / nw / T2);
        w_rq.push_back(rq / nw / T2);
        w_rest.push_back(rest / nw / T2);
        imb.push_back(mx / std::max(mn, 1e-12));
        // each run's wall less its run-queue delay (1 thread: the caller's; 2: the workers' mean)
        sp_norq.push_back((T1 - a.caller.rq) / (T2 - rq / nw));
    }
    auto mm = [](const std::vector<double>& v) {
        return std::make_pair(*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()));
    };
    if (json) {
        const std::pair<const char*, const std::vector<double>*> fields[] = {
            {"speedup_wall", &sp}, {"work_over_1thread", &work}, {"outside_workers_share", &outside},
            {"worker_cpu_share", &w_cpu}, {"worker_rq_share", &w_rq}, {"worker_blocked_share", &w_rest},
            {"worker_cpu_max_over_min", &imb}, {"t1_rq_share", &one_rq}, {"speedup_no_rq", &sp_norq}};
        std::printf(", \"%s\": {\"grid\": %zu", key, grid);
        for (auto& f : fields)
            std::printf(", \"%s\": [%.6g, %.6g, %.6g]", f.first, median(*f.second), mm(*f.second).first,
                        mm(*f.second).second);
        std::printf("}");
        return false;
    }
    std::printf("%s, %d rounds: 2 threads %.2fx (rounds %.2f to %.2f); CPU time 2-thread over 1-thread %.3f; "
                "of the 2-thread wall: outside the longest worker's life %.1f%% (set-up, starts, reduction, "
                "join); per worker (the caller is one) on a CPU %.1f%%, run queue %.1f%%, blocked %.1f%%; "
                "busiest over idlest worker (CPU) %.2f; 1-thread run's run queue %.1f%%; without run-queue delay "
                "%.2fx (rounds %.2f to %.2f)\n",
                what, rounds, median(sp), mm(sp).first, mm(sp).second, median(work), 100 * median(outside),
                100 * median(w_cpu), 100 * median(w_rq), 100 * median(w_rest), median(imb), 100 * median(one_rq),
                median(sp_norq), mm(sp_norq).first, mm(sp_norq).second);
    return false;
}

int main(int argc, char** argv) {
    int rounds = 15;
    bool json = false;
    for (int k = 1; k < argc; ++k) {
        if (std::string(argv[k]) == "--json")
            json = true;
        else
            rounds = std::atoi(argv[k]);
    }
    if (json) std::printf("{\"rounds\": %d", rounds);
    struct Case {
        std::size_t n, d, m_axis;
    } cases[] = {{5000, 1, 1000}, {50000, 1, 1000}, {5000, 2, 100}};
    for (const Case& cs : cases) {
        // the bench's data (bench/cases_metrics.py _data): N(0, I), a third at 0.5 x + 2
        std::mt19937_64 g(0);
        std::normal_distribution<double> nd;
        std::vector<double> x(cs.n * cs.d), w(cs.n, 1.0 / cs.n);
        for (std::size_t i = 0; i < cs.n; ++i)
            for (std::size_t a = 0; a < cs.d; ++a) x[i * cs.d + a] = i < cs.n / 3 ? 0.5 * nd(g) + 2.0 : nd(g);
        // Scott's bandwidth: n^(-2 / (d + 4)) times the sample covariance
        std::vector<double> mean(cs.d, 0.0), H(cs.d * cs.d, 0.0);
        for (std::size_t i = 0; i < cs.n; ++i)
            for (std::size_t a = 0; a < cs.d; ++a) mean[a] += x[i * cs.d + a] / cs.n;
        for (std::size_t i = 0; i < cs.n; ++i)
            for (std::size_t a = 0; a < cs.d; ++a)
                for (std::size_t b = 0; b < cs.d; ++b)
                    H[a * cs.d + b] += (x[i * cs.d + a] - mean[a]) * (x[i * cs.d + b] - mean[b]) / (cs.n - 1);
        const double f = std::pow(double(cs.n), -2.0 / (cs.d + 4.0));
        for (double& h : H) h *= f;
        mc::kde::GridAxis axes[2];
        for (std::size_t a = 0; a < cs.d; ++a) {
            axes[a].start = -5.0;
            axes[a].step = 11.0 / (cs.m_axis - 1);
            axes[a].count = cs.m_axis;
        }
        const std::size_t G = cs.d == 1 ? cs.m_axis : cs.m_axis * cs.m_axis;
        auto call = [&](int threads) {
            return [&, threads](double* out) {
                mc::kde::exact_grid(x.data(), w.data(), cs.n, cs.d, H.data(), axes, out, threads);
            };
        };
        char key[64];
        std::snprintf(key, sizeof key, "kde_exact_%zud_n%zu", cs.d, cs.n);
        char what[96];
        std::snprintf(what, sizeof what, "kde exact_grid d=%zu n=%zu grid %zu^%zu", cs.d, cs.n, cs.m_axis, cs.d);
        if (split_case(call, G, rounds, json, key, what, cs.m_axis)) return 1;
    }
    {
        // hermite_moments 2-D, total degree <= 10 (66 moments), 1e6 samples (the bench's hermite_2d_deg10)
        const std::size_t n = 1000000, D = 10;
        std::mt19937_64 g(0);
        std::normal_distribution<double> nd;
        std::vector<double> x(2 * n);
        for (double& v : x) v = nd(g);
        mc::HermiteIndexTable tab;
        tab.d = 2;
        tab.degree = D;
        tab.parent = {-1};
        tab.dim = {0};
        tab.order = {0};
        std::vector<std::pair<std::size_t, std::size_t>> idx = {{0, 0}};
        for (std::size_t k = 1; k <= D; ++k)  // graded: total degree k, first coordinate's degree falling
            for (std::size_t a0 = k + 1; a0-- > 0;) {
                const std::size_t a1 = k - a0;
                const std::pair<std::size_t, std::size_t> par = a1 > 0 ? std::make_pair(a0, a1 - 1) : std::make_pair(a0 - 1, a1);
                const std::size_t pm = std::find(idx.begin(), idx.end(), par) - idx.begin();
                tab.parent.push_back(static_cast<std::int64_t>(pm));
                tab.dim.push_back(a1 > 0 ? 1 : 0);
                tab.order.push_back(static_cast<std::int64_t>(a1 > 0 ? a1 : a0));
                idx.push_back({a0, a1});
            }
        const std::size_t M = tab.parent.size();
        auto call = [&](int threads) {
            return [&, threads](double* out) { mc::hermite_moments(x.data(), n, tab, out, nullptr, threads); };
        };
        if (split_case(call, M, rounds, json, "hermite_2d_deg10", "hermite_moments d=2 degree 10, 1e6 samples", 0))
            return 1;
    }
    {
        // the bench's "empirical score n=m=1e+04 d=2": data and query points N(0, I)
        const std::size_t n = 10000, m = 10000, d = 2;
        std::mt19937_64 g(1);
        std::normal_distribution<double> nd;
        std::vector<double> X(n * d), Y(m * d);
        for (double& v : X) v = nd(g);
        for (double& v : Y) v = nd(g);
        const mc::EmpiricalData data = mc::EmpiricalData::build(n, d, X.data());
        for (double t : {0.1, 1.0}) {
            // the loop of for_each_point (score_eval.hpp): smoothing, then chunks of 256 points
            auto call = [&, t](int threads) {
                return [&, t, threads](double* out) {
                    auto sm = mc::smooth(data, t);
                    mc::parallel_for(m, 256, threads, [&](std::size_t b, std::size_t e, const mc::StopToken&) {
                        auto ws = mc::make_workspace(data);
                        for (std::size_t i = b; i < e; ++i) out[i] = mc::eval_point(sm, Y.data() + i * d, nullptr, ws);
                    });
                };
            };
            const char* key = t == 0.1 ? "emp_score_t01" : "emp_score_t1";
            char what[96];
            std::snprintf(what, sizeof what, "empirical score n=m=1e4 d=2 t=%g (log p)", t);
            if (split_case(call, m, rounds, json, key, what, 0)) return 1;
        }
    }
    if (json) std::printf("}\n");
    return 0;
}
