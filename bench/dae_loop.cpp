// The plain C++ loop a user would write for the DAE's online SGD (r = 2, tanh): the bench's
// peer for dae.train (bench/peers.py builds it with g++ -O3 -march=native, loads it with ctypes).
// xoshiro256+ for the bits, Marsaglia's polar method for the normals, one thread, three
// passes over the d coordinates per step. Same update as modelcollapse.reference.dae.sgd_step
// with alpha = beta = 1/2, p = 0, no weight decay (docs/dae.md, "Model and training").
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

struct Xoshiro256p {
    uint64_t s[4];
    explicit Xoshiro256p(uint64_t seed) {
        for (auto& x : s) {  // splitmix64 seeding
            seed += 0x9e3779b97f4a7c15ULL;
            uint64_t z = seed;
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
            x = z ^ (z >> 31);
        }
    }
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    uint64_t next() {
        const uint64_t r = s[0] + s[3], t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = rotl(s[3], 45);
        return r;
    }
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
};

// Marsaglia's polar method: a pair of normals per accepted point of the unit disc.
struct Polar {
    Xoshiro256p& g;
    double spare = 0.0;
    bool has = false;
    double operator()() {
        if (has) {
            has = false;
            return spare;
        }
        double u, v, s;
        do {
            u = 2.0 * g.uniform() - 1.0;
            v = 2.0 * g.uniform() - 1.0;
            s = u * u + v * v;
        } while (s >= 1.0 || s == 0.0);
        const double f = std::sqrt(-2.0 * std::log(s) / s);
        spare = v * f;
        has = true;
        return u * f;
    }
};

}  // namespace

extern "C" void dae_loop(int d, long n_steps, double lr, int K, const double* means, uint64_t seed, double* w,
                         double* b_out) {
    Xoshiro256p g(seed);
    Polar normal{g};
    const double sd = std::sqrt(static_cast<double>(d));
    std::vector<double> xt(d), x1(d);
    for (int i = 0; i < 2 * d; ++i) w[i] = normal();  // w (d, 2) row-major
    double b = 0.0;
    for (long step = 0; step < n_steps; ++step) {
        const int c = static_cast<int>(g.uniform() * K);
        const double* mu = means + static_cast<long>(c) * d;
        // pass 1: samples, xt and h = w^T xt / sqrt d
        double h0 = 0.0, h1 = 0.0;
        for (int i = 0; i < d; ++i) {
            const double a0 = normal();
            const double a1 = mu[i] + normal();
            x1[i] = a1;
            xt[i] = 0.5 * (a0 + a1);
            h0 += w[2 * i] * xt[i];
            h1 += w[2 * i + 1] * xt[i];
        }
        const double s0 = std::tanh(h0 / sd), s1 = std::tanh(h1 / sd);
        // pass 2: e = x1 - b xt - w s / sqrt d (kept in x1), w^T e and e . xt
        double g0 = 0.0, g1 = 0.0, ex = 0.0;
        for (int i = 0; i < d; ++i) {
            const double e = x1[i] - b * xt[i] - (w[2 * i] * s0 + w[2 * i + 1] * s1) / sd;
            x1[i] = e;
            g0 += w[2 * i] * e;
            g1 += w[2 * i + 1] * e;
            ex += e * xt[i];
        }
        const double back0 = (1.0 - s0 * s0) * g0 / sd, back1 = (1.0 - s1 * s1) * g1 / sd;
        const double c2 = 2.0 * lr / sd;
        // pass 3: w += (2 lr / sqrt d) (e s^T + xt back^T)
        for (int i = 0; i < d; ++i) {
            w[2 * i] += c2 * (x1[i] * s0 + xt[i] * back0);
            w[2 * i + 1] += c2 * (x1[i] * s1 + xt[i] * back1);
        }
        b += 2.0 * lr / (static_cast<double>(d) * d) * ex;
    }
    *b_out = b;
}
