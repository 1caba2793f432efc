// Perturbed score models for the Helmholtz-Hodge study of score errors (spec hodge.md):
// s_theta(t, x) = grad log p_t(x) + sum_j e_j(t, x), p_t = S_t p for a Gaussian mixture p.
//
// Error terms (all time-dependent through the forward flow; c_t = e^{-t} c,
// l_t^2 = e^{-2t} l^2 + sigma_t^2, g_t(x) = exp(-|x - c_t|^2 / (2 l_t^2))):
//   matrix          e = M grad log p_t                (M = cA, A antisymmetric: invisible)
//   linear          e = E (x - c_t) + f               (E = uQ symmetric: gradient of u V_t,
//                                                      V_t = 1/2 (x - c_t)^T Q (x - c_t))
//   gradient_bump   e = a grad g_t = -a g_t (x - c_t) / l_t^2     (gradient of a g_t)
//   solenoidal_bump e = a A grad(g_t p_t) / p_t = a A (grad g_t + g_t grad log p_t)
//                                                     (div(p_t e) = a sum_ij A_ij d_i d_j (g p) = 0)
//   fourier         e = sum_j v_j cos(w_j . x + b_j)  (a generic smooth field: both parts)
//
// The model plugs into reverse_sample (sampler.hpp) and def_score_methods (score_eval.hpp)
// through smooth(model, t), eval_point and make_workspace. eval_point returns log p_t (the
// true log density) and writes the model score.
#pragma once

#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <vector>

#include "mixture.hpp"
#include "sampler.hpp"

namespace modelcollapse {

enum class TermKind : int { matrix = 0, linear = 1, gradient_bump = 2, solenoidal_bump = 3, fourier = 4 };

struct ScoreTerm {
    TermKind kind = TermKind::matrix;
    std::vector<double> mat;     // d*d row-major: M (matrix), E (linear), A (solenoidal_bump)
    std::vector<double> vec;     // d: f (linear)
    std::vector<double> center;  // d: c (linear, bumps)
    double amp = 1.0;            // a (bumps)
    double width2 = 1.0;         // l^2 (bumps)
    std::size_t n_freq = 0;      // fourier: J
    std::vector<double> omega;   // J*d
    std::vector<double> phase;   // J
    std::vector<double> coef;    // J*d (v_j)
};

struct PerturbedScoreData {
    GaussianMixtureData base;
    std::size_t d = 0;
    std::vector<ScoreTerm> terms;
};

struct SmoothedPerturbed {
    SmoothedMixture base;
    std::size_t d = 0;
    const std::vector<ScoreTerm>* terms = nullptr;
    std::vector<double> centers;  // n_terms * d: c_t
    std::vector<double> width2;   // n_terms: l_t^2
};

struct PerturbedWorkspace {
    MixtureWorkspace mix;
    std::vector<double> sstar, err, tmp;
    explicit PerturbedWorkspace(std::size_t d) : mix(d), sstar(d), err(d), tmp(d) {}
};

inline SmoothedPerturbed smooth(const PerturbedScoreData& m, double t) {
    SmoothedPerturbed s;
    s.base = smooth(m.base, t);
    s.d = m.d;
    s.terms = &m.terms;
    const double a = std::exp(-t);
    const double s2 = -std::expm1(-2.0 * t);
    const std::size_t T = m.terms.size();
    s.centers.assign(T * m.d, 0.0);
    s.width2.assign(T, 1.0);
    for (std::size_t j = 0; j < T; ++j) {
        const ScoreTerm& term = m.terms[j];
        if (!term.center.empty())
            for (std::size_t i = 0; i < m.d; ++i) s.centers[j * m.d + i] = a * term.center[i];
        s.width2[j] = a * a * term.width2 + s2;
    }
    return s;
}

inline PerturbedWorkspace make_workspace(const PerturbedScoreData& m) { return PerturbedWorkspace(m.d); }

// Adds term j's error at x (given the true score sstar) to err.
inline void add_term_error(const SmoothedPerturbed& sm, std::size_t j, const double* x, const double* sstar,
                           double* err, std::vector<double>& tmp) {
    const std::size_t d = sm.d;
    const ScoreTerm& term = (*sm.terms)[j];
    const double* c = &sm.centers[j * d];
    switch (term.kind) {
        case TermKind::matrix: {
            const double* M = term.mat.data();
            for (std::size_t i = 0; i < d; ++i) {
                double acc = 0.0;
                for (std::size_t k = 0; k < d; ++k) acc += M[i * d + k] * sstar[k];
                err[i] += acc;
            }
            break;
        }
        case TermKind::linear: {
            const double* E = term.mat.data();
            for (std::size_t k = 0; k < d; ++k) tmp[k] = x[k] - c[k];
            for (std::size_t i = 0; i < d; ++i) {
                double acc = term.vec[i];
                for (std::size_t k = 0; k < d; ++k) acc += E[i * d + k] * tmp[k];
                err[i] += acc;
            }
            break;
        }
        case TermKind::gradient_bump:
        case TermKind::solenoidal_bump: {
            const double l2 = sm.width2[j];
            double r2 = 0.0;
            for (std::size_t k = 0; k < d; ++k) {
                tmp[k] = x[k] - c[k];
                r2 += tmp[k] * tmp[k];
            }
            const double g = term.amp * std::exp(-0.5 * r2 / l2);
            if (term.kind == TermKind::gradient_bump) {
                for (std::size_t i = 0; i < d; ++i) err[i] -= g * tmp[i] / l2;
            } else {
                // v = grad g + g s* ; err += A v
                for (std::size_t k = 0; k < d; ++k) tmp[k] = g * (sstar[k] - tmp[k] / l2);
                const double* A = term.mat.data();
                for (std::size_t i = 0; i < d; ++i) {
                    double acc = 0.0;
                    for (std::size_t k = 0; k < d; ++k) acc += A[i * d + k] * tmp[k];
                    err[i] += acc;
                }
            }
            break;
        }
        case TermKind::fourier: {
            for (std::size_t q = 0; q < term.n_freq; ++q) {
                const double* w = &term.omega[q * d];
                double arg = term.phase[q];
                for (std::size_t k = 0; k < d; ++k) arg += w[k] * x[k];
                const double cs = std::cos(arg);
                const double* v = &term.coef[q * d];
                for (std::size_t i = 0; i < d; ++i) err[i] += v[i] * cs;
            }
            break;
        }
    }
}

// Full evaluation at x: returns log p_t(x); writes (when not null) the true score, the
// error of the selected terms (mask == nullptr: all terms) and the model score.
inline double perturbed_eval_point(const SmoothedPerturbed& sm, const double* x, double* true_score, double* error,
                                   double* model_score, const unsigned char* mask, PerturbedWorkspace& w) {
    const std::size_t d = sm.d;
    const bool need_score = true_score || error || model_score;
    const double logp = mixture_eval_point(sm.base, x, need_score ? w.sstar.data() : nullptr, w.mix);
    if (!need_score) return logp;
    for (std::size_t i = 0; i < d; ++i) w.err[i] = 0.0;
    const std::size_t T = sm.terms->size();
    for (std::size_t j = 0; j < T; ++j)
        if (!mask || mask[j]) add_term_error(sm, j, x, w.sstar.data(), w.err.data(), w.tmp);
    for (std::size_t i = 0; i < d; ++i) {
        if (true_score) true_score[i] = w.sstar[i];
        if (error) error[i] = w.err[i];
        if (model_score) model_score[i] = w.sstar[i] + w.err[i];
    }
    return logp;
}

// Model-score protocol used by reverse_sample and def_score_methods.
inline double eval_point(const SmoothedPerturbed& sm, const double* x, double* s, PerturbedWorkspace& w) {
    if (!s) return perturbed_eval_point(sm, x, nullptr, nullptr, nullptr, nullptr, w);
    const std::size_t d = sm.d;
    const double logp = mixture_eval_point(sm.base, x, w.sstar.data(), w.mix);
    for (std::size_t i = 0; i < d; ++i) w.err[i] = 0.0;
    for (std::size_t j = 0; j < sm.terms->size(); ++j) add_term_error(sm, j, x, w.sstar.data(), w.err.data(), w.tmp);
    for (std::size_t i = 0; i < d; ++i) s[i] = w.sstar[i] + w.err[i];
    return logp;
}

}  // namespace modelcollapse
