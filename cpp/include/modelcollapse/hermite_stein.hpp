// Stein-form accumulation for the gradient-part estimator (spec hodge.md section 4).
//
// Basis: normalised multivariate Hermite polynomials of the standardised point
// z = (x - loc) / scale, psi_a(x) = prod_i He_{a_i}(z_i) / sqrt(a_i!), for the multi-indices
// 1 <= |a| <= D (ordered by total degree, then lexicographically descending; see
// hermite_multi_indices). For samples x_n of p and model scores s_n:
//   b_a  = mean_n [ s_n . grad psi_a(x_n) + lap psi_a(x_n) ]
//   G_ab = mean_n [ grad psi_a(x_n) . grad psi_b(x_n) ]
//
// Instead of K^2 products per sample, the kernel accumulates Hermite moments
//   M[m]    = sum_n prod_i He_{m_i}(z_ni),        |m| <= 2D - 2
//   S[i][m] = sum_n s_ni prod_j He_{m_j}(z_nj),   |m| <= D - 1
// and assembles b and G with the linearisation He_a He_b = sum_k k! C(a,k) C(b,k) He_{a+b-2k}
// (exact identity). Samples are summed in fixed chunks whose partial sums are reduced in
// chunk order, so the result is bit-identical for any number of threads.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"

namespace modelcollapse {

// Largest Hermite basis the enumeration below accepts: kMaxHermiteEntries ints in all (1 GiB)
// and d <= kMaxHermiteDim (the enumeration recurses once per coordinate).
constexpr double kMaxHermiteEntries = double(1 << 28);
constexpr std::size_t kMaxHermiteDim = 16384;

// Number of multi-indices a in N^d with |a| <= hi, C(d + hi, hi); stops counting once past
// `cap` (the value returned is then > cap, not exact).
inline double hermite_index_count(std::size_t d, int hi, double cap) {
    if (d == 1) return static_cast<double>(hi) + 1.0;
    double c = 1.0;
    for (int j = 1; j <= hi && c <= cap; ++j) c = c * (static_cast<double>(d) + j) / j;
    return c;
}

// Throws std::invalid_argument when the multi-indices |a| <= hi in N^d cannot be enumerated
// (too many to hold, or d too deep for the enumeration).
inline void check_hermite_basis(std::size_t d, int hi) {
    if (d <= kMaxHermiteDim &&
        hermite_index_count(d, hi, kMaxHermiteEntries) * static_cast<double>(d) <= kMaxHermiteEntries)
        return;
    throw std::invalid_argument("the Hermite basis in d = " + std::to_string(d) + " up to degree " +
                                std::to_string(hi) + " is too large (over " +
                                std::to_string(static_cast<long long>(kMaxHermiteEntries)) +
                                " index entries, or d > " + std::to_string(kMaxHermiteDim) +
                                "); reduce the degree or the dimension");
}

// Multi-indices a in N^d with lo <= |a| <= hi, ordered by |a| then lexicographically
// descending (for d = 2: (1,0), (0,1), (2,0), (1,1), (0,2), ...). Flattened (count * d).
inline std::vector<int> hermite_multi_indices(std::size_t d, int lo, int hi) {
    check_hermite_basis(d, hi);
    std::vector<int> out;
    std::vector<int> a(d, 0);
    for (int deg = lo; deg <= hi; ++deg) {
        // enumerate compositions of deg into d parts, lexicographically descending
        std::vector<int> cur(d, 0);
        // recursive lambda via explicit stack
        struct Rec {
            static void go(std::size_t i, int left, std::size_t d, std::vector<int>& cur, std::vector<int>& out) {
                if (i + 1 == d) {
                    cur[i] = left;
                    out.insert(out.end(), cur.begin(), cur.end());
                    return;
                }
                for (int v = left; v >= 0; --v) {
                    cur[i] = v;
                    go(i + 1, left - v, d, cur, out);
                }
            }
        };
        if (d == 0) break;
        Rec::go(0, deg, d, cur, out);
    }
    (void)a;
    return out;
}

// He_0..He_L at z (probabilists' Hermite polynomials).
inline void hermite_values(double z, int L, double* h) {
    h[0] = 1.0;
    if (L >= 1) h[1] = z;
    for (int n = 1; n < L; ++n) h[n + 1] = z * h[n] - n * h[n - 1];
}

struct HermiteSteinResult {
    std::vector<int> indices;  // K * d
    std::size_t K = 0;
    std::vector<double> b;     // K
    std::vector<double> G;     // K * K
};

class HermiteMomentTable {
public:
    HermiteMomentTable(std::size_t d, int L) : d_(d), L_(L) {
        // size checks first: enumerating a basis that is then refused can take very long
        check_hermite_basis(d, L);
        double dense = 1.0;
        for (std::size_t i = 0; i < d; ++i) dense *= (L + 1);
        if (dense > 5e7) throw std::invalid_argument("hermite basis too large for the moment kernel (reduce degree or d)");
        list_ = hermite_multi_indices(d, 0, L);
        count_ = list_.size() / d;
        stride_.assign(d, 1);
        for (std::size_t i = 1; i < d; ++i) stride_[i] = stride_[i - 1] * (L + 1);
        lookup_.assign(static_cast<std::size_t>(dense), -1);
        for (std::size_t q = 0; q < count_; ++q) lookup_[dense_index(&list_[q * d])] = static_cast<int>(q);
    }
    std::size_t count() const { return count_; }
    const int* index(std::size_t q) const { return &list_[q * d_]; }
    std::size_t dense_index(const int* m) const {
        std::size_t k = 0;
        for (std::size_t i = 0; i < d_; ++i) k += static_cast<std::size_t>(m[i]) * stride_[i];
        return k;
    }
    int position(const int* m) const {  // -1 when |m| > L
        int tot = 0;
        for (std::size_t i = 0; i < d_; ++i) tot += m[i];
        if (tot > L_) return -1;
        return lookup_[dense_index(m)];
    }

private:
    std::size_t d_;
    int L_;
    std::vector<int> list_;
    std::size_t count_ = 0;
    std::vector<std::size_t> stride_;
    std::vector<int> lookup_;
};

// Linearisation coefficient k! C(a,k) C(b,k).
inline double lin_coef(int a, int b, int k) {
    double c = 1.0;
    for (int j = 0; j < k; ++j) c *= static_cast<double>(a - j) * static_cast<double>(b - j) / static_cast<double>(j + 1);
    return c;
}

// E[prod_i He_{a_i} He_{b_i}(z_i)] from the moment vector `mom` indexed by `tab`.
inline double product_expectation(const HermiteMomentTable& tab, const double* mom, std::size_t d, const int* a,
                                  const int* b, std::vector<int>& k, std::vector<int>& m) {
    for (std::size_t i = 0; i < d; ++i) {
        if (a[i] < 0 || b[i] < 0) return 0.0;
        k[i] = 0;
    }
    double total = 0.0;
    while (true) {
        double coef = 1.0;
        for (std::size_t i = 0; i < d; ++i) {
            coef *= lin_coef(a[i], b[i], k[i]);
            m[i] = a[i] + b[i] - 2 * k[i];
        }
        const int pos = tab.position(m.data());
        if (pos < 0) throw std::logic_error("hermite moment out of range");
        total += coef * mom[pos];
        // odometer over k_i in [0, min(a_i, b_i)]
        std::size_t i = 0;
        for (; i < d; ++i) {
            if (k[i] < std::min(a[i], b[i])) {
                ++k[i];
                break;
            }
            k[i] = 0;
        }
        if (i == d) break;
    }
    return total;
}

// x, s: (n, d) row-major; loc, scale: d. Returns b and G (means over the n samples).
inline HermiteSteinResult hermite_stein_system(std::size_t n, std::size_t d, const double* x, const double* s,
                                               const double* loc, const double* scale, int degree, int threads,
                                               const PollFn& poll) {
    if (degree < 1) throw std::invalid_argument("degree must be >= 1");
    if (n == 0) throw std::invalid_argument("need at least one sample");
    const int LG = 2 * degree - 2, LS = degree - 1;
    HermiteMomentTable tabG(d, LG), tabS(d, LS);
    const std::size_t nG = tabG.count(), nS = tabS.count();
    const std::size_t width = nG + d * nS;
    const std::size_t chunk = 2048;
    const std::size_t n_chunks = (n + chunk - 1) / chunk;
    std::vector<double> partial(n_chunks * width, 0.0);
    const int LH = std::max(LG, 0);
    // Flattened index lists for the inner loops.
    std::vector<int> idxG(nG * d), idxS(nS * d);
    for (std::size_t q = 0; q < nG; ++q)
        for (std::size_t i = 0; i < d; ++i) idxG[q * d + i] = tabG.index(q)[i];
    for (std::size_t q = 0; q < nS; ++q)
        for (std::size_t i = 0; i < d; ++i) idxS[q * d + i] = tabS.index(q)[i];

    parallel_for(
        n, chunk, threads,
        [&](std::size_t begin, std::size_t end, const StopToken& stop) {
            if (stop.stop_requested()) return;
            double* acc = &partial[(begin / chunk) * width];
            std::vector<double> H(d * (LH + 1));
            std::vector<double> prodS(nS);
            for (std::size_t r = begin; r < end; ++r) {
                if (stop.stop_requested()) return;  // rows can be costly at high degree
                const double* xr = x + r * d;
                for (std::size_t i = 0; i < d; ++i) hermite_values((xr[i] - loc[i]) / scale[i], LH, &H[i * (LH + 1)]);
                for (std::size_t q = 0; q < nG; ++q) {
                    const int* m = &idxG[q * d];
                    double p = H[m[0]];
                    for (std::size_t i = 1; i < d; ++i) p *= H[i * (LH + 1) + m[i]];
                    acc[q] += p;
                }
                const double* sr = s + r * d;
                for (std::size_t q = 0; q < nS; ++q) {
                    const int* m = &idxS[q * d];
                    double p = H[m[0]];
                    for (std::size_t i = 1; i < d; ++i) p *= H[i * (LH + 1) + m[i]];
                    prodS[q] = p;
                }
                for (std::size_t i = 0; i < d; ++i) {
                    double* a = acc + nG + i * nS;
                    const double si = sr[i];
                    for (std::size_t q = 0; q < nS; ++q) a[q] += si * prodS[q];
                }
            }
        },
        poll);
    std::vector<double> mom(width, 0.0);
    for (std::size_t c = 0; c < n_chunks; ++c)
        for (std::size_t q = 0; q < width; ++q) mom[q] += partial[c * width + q];
    for (double& v : mom) v /= static_cast<double>(n);

    HermiteSteinResult res;
    res.indices = hermite_multi_indices(d, 1, degree);
    res.K = res.indices.size() / d;
    const std::size_t K = res.K;
    res.b.assign(K, 0.0);
    res.G.assign(K * K, 0.0);
    std::vector<double> norm(K);
    for (std::size_t k = 0; k < K; ++k) {
        double f = 1.0;
        for (std::size_t i = 0; i < d; ++i)
            for (int j = 2; j <= res.indices[k * d + i]; ++j) f *= j;
        norm[k] = 1.0 / std::sqrt(f);
    }
    std::vector<int> a(d), bb(d), kk(d), mm(d), zero(d, 0);
    // b
    for (std::size_t k = 0; k < K; ++k) {
        const int* al = &res.indices[k * d];
        double val = 0.0;
        for (std::size_t i = 0; i < d; ++i) {
            if (al[i] < 1) continue;
            for (std::size_t j = 0; j < d; ++j) a[j] = al[j];
            a[i] -= 1;
            const int pos = tabS.position(a.data());
            val += al[i] / scale[i] * mom[nG + i * nS + pos];
            if (al[i] >= 2) {
                a[i] -= 1;
                val += al[i] * (al[i] - 1) / (scale[i] * scale[i]) * mom[tabG.position(a.data())];
            }
        }
        res.b[k] = val * norm[k];
    }
    // G (symmetric)
    for (std::size_t k = 0; k < K; ++k) {
        const int* al = &res.indices[k * d];
        for (std::size_t l = k; l < K; ++l) {
            const int* be = &res.indices[l * d];
            double val = 0.0;
            for (std::size_t i = 0; i < d; ++i) {
                if (al[i] < 1 || be[i] < 1) continue;
                for (std::size_t j = 0; j < d; ++j) {
                    a[j] = al[j];
                    bb[j] = be[j];
                }
                a[i] -= 1;
                bb[i] -= 1;
                val += static_cast<double>(al[i]) * be[i] / (scale[i] * scale[i]) *
                       product_expectation(tabG, mom.data(), d, a.data(), bb.data(), kk, mm);
            }
            val *= norm[k] * norm[l];
            res.G[k * K + l] = val;
            res.G[l * K + k] = val;
        }
    }
    return res;
}

// Per-sample evaluation of psi = sum_k beta_k psi_k: writes s.grad psi + lap psi (stein, n)
// and |grad psi|^2 (sq, n).
inline void hermite_stein_eval(std::size_t n, std::size_t d, const double* x, const double* s, const double* loc,
                               const double* scale, int degree, const double* beta, double* stein, double* sq,
                               int threads, const PollFn& poll) {
    const std::vector<int> idx = hermite_multi_indices(d, 1, degree);
    const std::size_t K = idx.size() / d;
    std::vector<double> norm(K);
    for (std::size_t k = 0; k < K; ++k) {
        double f = 1.0;
        for (std::size_t i = 0; i < d; ++i)
            for (int j = 2; j <= idx[k * d + i]; ++j) f *= j;
        norm[k] = beta[k] / std::sqrt(f);
    }
    const int L = degree;
    parallel_for(
        n, 1024, threads,
        [&](std::size_t begin, std::size_t end, const StopToken& stop) {
            if (stop.stop_requested()) return;
            std::vector<double> H(d * (L + 1)), grad(d);
            for (std::size_t r = begin; r < end; ++r) {
                if (stop.stop_requested()) return;
                const double* xr = x + r * d;
                for (std::size_t i = 0; i < d; ++i) hermite_values((xr[i] - loc[i]) / scale[i], L, &H[i * (L + 1)]);
                std::fill(grad.begin(), grad.end(), 0.0);
                double lap = 0.0;
                for (std::size_t k = 0; k < K; ++k) {
                    const int* al = &idx[k * d];
                    for (std::size_t i = 0; i < d; ++i) {
                        if (al[i] < 1) continue;
                        double rest = norm[k];
                        for (std::size_t j = 0; j < d; ++j)
                            if (j != i) rest *= H[j * (L + 1) + al[j]];
                        grad[i] += rest * al[i] / scale[i] * H[i * (L + 1) + al[i] - 1];
                        if (al[i] >= 2)
                            lap += rest * al[i] * (al[i] - 1) / (scale[i] * scale[i]) * H[i * (L + 1) + al[i] - 2];
                    }
                }
                const double* sr = s + r * d;
                double dot = 0.0, g2 = 0.0;
                for (std::size_t i = 0; i < d; ++i) {
                    dot += sr[i] * grad[i];
                    g2 += grad[i] * grad[i];
                }
                stein[r] = dot + lap;
                sq[r] = g2;
            }
        },
        poll);
}

}  // namespace modelcollapse
