#!/usr/bin/env python3
"""Mutation check: break a formula on purpose and make sure some test notices.

Each mutant below names a file, one exact source snippet, its replacement and the tests
that must fail once the replacement is made. For every mutant the script copies
``python/`` (with the compiled ``_core*.so``) to a temporary folder, applies the
replacement there, and runs the mutant's tests against the copy (``PYTHONPATH`` points at
it); the working tree is never edited, so nothing needs restoring. Verdicts:

- ``killed``: the tests failed (what we want);
- ``timeout``: the tests ran past ``--timeout`` (counted as killed, but shown);
- ``SURVIVED``: the tests passed with the mutation in place: a test is missing or too weak;
- ``ERROR``: pytest could not run (exit code 2-5: collection error, no test selected...),
  so the mutant says nothing; fix its test selection.

A snippet that is not found exactly once stops the run before anything is executed, so
that mutants cannot silently rot when the code moves. The exit code is 1 when any mutant
survives or errs, 2 for a broken mutant definition or a failing baseline.

C++ mutants (``--cpp``) patch a copy of ``cpp/`` and rebuild the extension in a temporary
CMake build folder (a full build first, then an incremental one per mutant: minutes each on
2 cores), so they are not part of the default run.

Usage::

    python .ci/mutate.py                      # the Python mutants (about 8 minutes on 2 cores)
    python .ci/mutate.py --list               # the mutants and their tests
    python .ci/mutate.py --only truncation.*  # by name (fnmatch patterns, repeatable)
    python .ci/mutate.py --jobs 2             # mutants in parallel
    python .ci/mutate.py --cpp --only 'cpp.*' # the C++ mutants (rebuilds; slow)

See docs/reliability.md, section "Mutation testing".
"""
from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutant:
    """One deliberate bug: ``old`` (found exactly once in ``file``) becomes ``new``, and
    ``tests`` (pytest node ids, paths, or "-k" expressions) must then fail."""

    name: str
    file: str          # relative to the repository root
    old: str
    new: str
    tests: tuple[str, ...]
    why: str           # the bug in words

    @property
    def is_cpp(self) -> bool:
        return self.file.startswith("cpp/")


PKG = "python/modelcollapse/"
T_TRUNC = "tests/truncation/test_truncation.py"
T_HERM = "tests/truncation/test_hermite.py"
T_A5 = "tests/truncation/test_a5_prediction.py"
T_RETR = "tests/retraining/test_retraining_gaussian.py"
T_LOOP = "tests/recursion/test_recursion_loop.py"
T_HODGE = "tests/hodge/test_hodge.py"
T_DAE = "tests/dae/test_dae.py"
T_MET = "tests/test_metrics.py"


def M(name: str, file: str, old: str, new: str, tests: str | tuple[str, ...], why: str) -> Mutant:
    return Mutant(name, file, old, new, (tests,) if isinstance(tests, str) else tuple(tests), why)


MUTANTS: list[Mutant] = [
    # ------------------------------------------------------------------ truncation
    M("truncation.a5_noise_1_minus_a",
      PKG + "experiments/truncation/_digits.py",
      "(1 - a) ** 2 * (V + s_rounds[k - 1] / m)",
      "(1 - a) * (V + s_rounds[k - 1] / m)",
      f"{T_A5}::test_a5_law_energy_matches_prediction_given_the_real_set",
      "A5 prediction: the synthetic noise V_k shrinks by (1-a), not (1-a)^2"),
    M("truncation.a5_noise_dropped",
      PKG + "experiments/truncation/_digits.py",
      "return B[-1] ** 2 * e_p, B[-1] ** 2 * e_r + V",
      "return B[-1] ** 2 * e_p, B[-1] ** 2 * e_r",
      f"{T_A5}::test_a5_law_energy_matches_prediction_given_the_real_set",
      "A5 prediction without the synthetic sets' noise V_K"),
    M("truncation.a5_bias_not_squared",
      PKG + "experiments/truncation/_digits.py",
      "return B[-1] ** 2 * e_p, B[-1] ** 2 * e_r + V",
      "return B[-1] ** 2 * e_p, B[-1] * e_r + V",
      f"{T_A5}::test_a5_law_energy_matches_prediction_given_the_real_set",
      "A5 prediction: energy scaled by B instead of B^2"),
    M("truncation.a5_real_set_noise_twice",
      PKG + "experiments/truncation/_digits.py",
      "s_rounds, n, a, rounds, e_real=real)",
      "s_rounds, n, a, rounds, e_real=real + s_rounds[0] / n)",
      f"{T_A5}::test_a5_law_energy_matches_prediction_given_the_real_set",
      "A5: s_n/N of the real set added although the prediction is conditional on R (it holds only on average)"),
    M("truncation.a5_law_energy_single_delta",
      PKG + "experiments/truncation/_digits.py",
      "law=np.exp(-2 * nn * A5_DELTA)",
      "law=np.exp(-nn * A5_DELTA)",
      f"{T_A5}::test_a5_seed_energies_law_energy_is_mehler_of_the_training_set",
      "A5: the model law's energy smoothed by e^(-n delta) instead of e^(-2 n delta)"),
    M("truncation.bias_factor_mixing",
      PKG + "truncation/_laws.py",
      "out[k] = np.exp(-n * deltas[k]) * (a + (1 - a) * out[k - 1])",
      "out[k] = np.exp(-n * deltas[k]) * (a + (1 - 0.5 * a) * out[k - 1])",
      f"{T_TRUNC}::test_bias_factors_recurrence_and_moments",
      "wrong weight of the previous round in the bias-factor recurrence B_{n,k}"),
    M("truncation.transfer_2delta",
      PKG + "truncation/_laws.py",
      "e = np.exp(-nn * delta)",
      "e = np.exp(-2.0 * nn * delta)",
      f"{T_TRUNC}::test_limit_is_fixed_point_and_transfer_function",
      "delta -> 2 delta in the transfer function H_n"),
    M("truncation.contraction_no_sqrt",
      PKG + "truncation/_laws.py",
      "return math.sqrt(1.0 - a) * math.exp(-delta)",
      "return (1.0 - a) * math.exp(-delta)",
      ("tests/truncation", "-kcontraction_factor or robustness"),
      "W2 contraction factor rho = (1 - a) e^-delta instead of sqrt(1 - a) e^-delta"),
    M("truncation.mixing_ignored",
      PKG + "truncation/_laws.py",
      "q = outputs[-1].mix_with_base(a)",
      "q = outputs[-1].mix_with_base(0.0)",
      f"{T_TRUNC}::test_exact_recursion_matches_direct_iteration",
      "the exact recursion ignores the real-data fraction a"),
    M("truncation.limit_2delta",
      PKG + "truncation/_laws.py",
      "return SmoothedLaw(data_law, w / w.sum(), (j + shift) * delta), err",
      "return SmoothedLaw(data_law, w / w.sum(), (j + shift) * 2.0 * delta), err",
      f"{T_TRUNC}::test_limit_is_fixed_point_and_transfer_function",
      "delta -> 2 delta in the limit law's smoothing times"),
    M("truncation.smooth_half_time",
      PKG + "truncation/_laws.py",
      "return SmoothedLaw(self.base, self.weights.copy(), self.times + t)",
      "return SmoothedLaw(self.base, self.weights.copy(), self.times + 0.5 * t)",
      f"{T_TRUNC}::test_exact_recursion_matches_direct_iteration",
      "a smoothed law advances by t/2 instead of t"),
    M("truncation.hermite_factor_half",
      PKG + "truncation/_laws.py",
      "e = np.exp(-np.multiply.outer(n, self.times))",
      "e = np.exp(-0.5 * np.multiply.outer(n, self.times))",
      f"{T_TRUNC}::test_bias_factors_recurrence_and_moments",
      "Mehler factor e^{-n t / 2} instead of e^{-n t} for the Hermite coordinates of a smoothed law"),
    M("truncation.hermite_gaussian_moment_factor",
      PKG + "truncation/_hermite_basis.py",
      "g[m + 1] = (mean * g[m] + np.sqrt(m) * (var - 1.0) * g[m - 1]) / np.sqrt(m + 1)",
      "g[m + 1] = (mean * g[m] + m * (var - 1.0) * g[m - 1]) / np.sqrt(m + 1)",
      T_HERM,
      "sqrt(m) -> m in the exact Gaussian moment recurrence (the unnormalised one's factor)"),
    M("truncation.hermite_se_uncentred",
      PKG + "truncation/_hermite.py",
      "var = np.clip(sq - mean ** 2, 0.0, None) * n / max(n - 1, 1)",
      "var = np.clip(sq, 0.0, None) * n / max(n - 1, 1)",
      "tests/truncation/test_hermite_guards.py",
      "standard errors of the sample Hermite moments from E[h^2] instead of Var[h]"),
    M("truncation.gram_charlier_norm",
      PKG + "truncation/_hermite.py",
      "phi = np.exp(-0.5 * np.sum(pts ** 2, axis=1)) / (2 * math.pi) ** (d / 2)",
      "phi = np.exp(-0.5 * np.sum(pts ** 2, axis=1)) / (2 * math.pi) ** d",
      (T_HERM, "-kgram_charlier"),
      "wrong normalisation of the Gaussian weight in the Gram-Charlier series"),
    M("reference.hermite_recurrence",
      PKG + "reference/hermite.py",
      "h[m + 1] = (x * h[m] - np.sqrt(m) * h[m - 1]) / np.sqrt(m + 1)",
      "h[m + 1] = (x * h[m] - m * h[m - 1]) / np.sqrt(m + 1)",
      f"{T_HERM}::test_cpp_equals_reference",
      "numpy twin of the Hermite-moments kernel: wrong factor in the normalised recurrence"),
    # ------------------------------------------------------------------ retraining (Gaussian)
    M("retraining.alpha_n",
      PKG + "retraining/gaussian.py",
      "np.exp(gammaln(n_arr / 2) - gammaln((n_arr - 1) / 2))",
      "np.exp(gammaln((n_arr + 1) / 2) - gammaln(n_arr / 2))",
      f"{T_RETR}::test_alpha_matches_chi_mean_and_limits",
      "alpha(n)'s Gamma ratio taken at n + 1 (Proposition 1)"),
    M("retraining.contraction_rate",
      PKG + "retraining/gaussian.py",
      "return lam / (1.0 + lam)",
      "return lam / (2.0 + lam)",
      (f"{T_RETR}::test_infinite_sample_map_contracts_at_lambda_over_one_plus_lambda",
       f"{T_RETR}::test_mixed_chains_contract_at_measured_rate"),
      "contraction rate lambda/(2 + lambda) instead of lambda/(1 + lambda)"),
    M("retraining.chains_mixing_ignored",
      PKG + "retraining/gaussian.py",
      "m = (n if fully else int(math.floor(lam * n + 1e-9))) if n_synthetic is None else",
      "m = n if n_synthetic is None else",
      f"{T_RETR}::test_mixed_chains_contract_at_measured_rate",
      "simulate_chains draws n synthetic points per round whatever lambda is"),
    M("retraining.mixed_map_cross_term",
      PKG + "retraining/gaussian.py",
      "+ lam / (1 + lam) ** 2 * np.einsum(\"...i,...j->...ij\", diff, diff))",
      "+ lam / (1 + lam) * np.einsum(\"...i,...j->...ij\", diff, diff))",
      (f"{T_RETR}::test_infinite_sample_map_contracts_at_lambda_over_one_plus_lambda",
       f"{T_RETR}::test_finite_sample_expected_map_tends_to_infinite_map"),
      "wrong factor of the mean-mismatch term of the infinite-sample covariance map"),
    M("retraining.expected_map_biased",
      PKG + "retraining/gaussian.py",
      "e_cov = ((n - 1) / (N - 1) * rc + m / N * c",
      "e_cov = (n / N * rc + m / N * c",
      f"{T_RETR}::test_mixed_one_round_expectation",
      "finite-sample expected map: (n-1)/(N-1) -> n/N in front of the real covariance"),
    M("retraining.theorem2_geometric_sum",
      PKG + "retraining/gaussian.py",
      "geom = (1 - rho ** (t + 1)) / (1 - rho)",
      "geom = (1 - rho ** t) / (1 - rho)",
      "tests/retraining/test_retraining_gaussian_guards.py",
      "Theorem 2's sum over l <= t loses its last term"),
    M("reference.chains_biased_covariance",
      PKG + "reference/retraining.py",
      "return mean, np.einsum(\"cni,cnj->cij\", xc, xc) / (x.shape[1] - 1)",
      "return mean, np.einsum(\"cni,cnj->cij\", xc, xc) / x.shape[1]",
      f"{T_RETR}::test_cpp_matches_numpy_reference_same_seed",
      "numpy twin of the Gaussian-chains kernel refits with the biased covariance"),
    # ------------------------------------------------------------------ the retraining loop
    M("recursion.mixing_ratio_ignored",
      PKG + "recursion/_workflows.py",
      "return n if math.isinf(lam) else int(math.floor(lam * n + 1e-9))",
      "return n",
      f"{T_LOOP}::test_training_set_sizes",
      "workflow 'mix' draws n synthetic points whatever lambda is"),
    M("recursion.real_data_dropped",
      PKG + "recursion/_workflows.py",
      "train = synthetic if math.isinf(plan.lam) else np.concatenate([real, synthetic])",
      "train = synthetic",
      (f"{T_LOOP}::test_training_set_sizes", f"{T_LOOP}::test_fully_synthetic_gaussian_collapses_mixed_stays"),
      "workflow 'mix' trains on the synthetic points only"),
    M("recursion.resolve_mixing",
      PKG + "recursion/_loop.py",
      "return (math.inf if a == 0.0 else (1.0 - a) / a), a",
      "return (math.inf if a == 0.0 else 1.0 / a), a",
      f"{T_LOOP}::test_resolve_mixing",
      "real_fraction a -> lambda = 1/a instead of (1 - a)/a"),
    M("recursion.subsample_real_only",
      PKG + "recursion/_workflows.py",
      "train = train[np.sort(pick)]",
      "train = real[np.sort(pick) % len(real)]",
      "tests/recursion/test_workflows_remedies.py::test_accumulate_subsample_draws_a_fixed_budget_from_the_whole_pool",
      "accumulate-subsample draws its budget from the real data only"),
    M("recursion.fresh_reuses_block0",
      PKG + "recursion/_workflows.py",
      "        return self.array[t * self.n:(t + 1) * self.n]",
      "        return self.base",
      "tests/recursion/test_workflows_remedies.py::test_fresh_array_uses_a_new_block_every_round",
      "workflow 'fresh' trains on round 0's real block every round"),
    M("recursion.temperature_on_std",
      PKG + "recursion/_remedies.py",
      "return _shrink(source(k), math.sqrt(tau))",
      "return _shrink(source(k), tau)",
      "tests/recursion/test_workflows_remedies.py::test_temperature_scales_the_synthetic_variance_by_tau",
      "the generic temperature scales the variance by tau^2 instead of tau"),
    M("recursion.langevin_noise",
      PKG + "recursion/_remedies.py",
      "x = x + h * s + math.sqrt(2.0 * h) * rng.standard_normal(x.shape)",
      "x = x + h * s + math.sqrt(h) * rng.standard_normal(x.shape)",
      "tests/recursion/test_workflows_remedies.py::test_self_correction_langevin_contracts_the_mean_exactly",
      "self-correction's Langevin step has noise sqrt(h) instead of sqrt(2h)"),
    M("recursion.verification_least_likely",
      PKG + "recursion/_remedies.py",
      "keep = np.argsort(-self._scores(cand), kind=\"stable\")[:n]",
      "keep = np.argsort(self._scores(cand), kind=\"stable\")[:n]",
      "tests/recursion/test_workflows_remedies.py::test_verification_keeps_the_most_likely_candidates",
      "verification keeps the least likely candidates"),
    M("recursion.memorization_second_neighbour",
      PKG + "recursion/_metrics.py",
      "nn_ref = cKDTree(ref).query(ref, k=2)[0][:, 1]",
      "nn_ref = cKDTree(ref).query(ref, k=3)[0][:, 2]",
      "tests/recursion/test_atlas_metrics.py::test_memorization_threshold_and_fraction",
      "the memorisation threshold uses the second nearest neighbour"),
    M("recursion.memorization_unscaled",
      PKG + "recursion/_metrics.py",
      "thr = kappa * float(np.median(nn_ref)) * (len(ref) / len(train)) ** (1.0 / ref.shape[1])",
      "thr = kappa * float(np.median(nn_ref))",
      "tests/recursion/test_atlas_metrics.py::test_memorization_baseline_does_not_depend_on_the_training_set_size",
      "the memorisation threshold ignores the training set's size (accumulate looks memorising)"),
    M("retraining.replace_mean_walk",
      PKG + "retraining/_gaussian_workflows.py",
      "e[t] = g ** 2 * e[t - 1] + w / m",
      "e[t] = g ** 2 * e[t - 1] + (g ** 2 * tau + noise) / m",
      "tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
      "replace's random-walk increment ignores the shrinking covariance"),
    M("retraining.replace_temperature_ignored",
      PKG + "retraining/_gaussian_workflows.py",
      "            w = g ** 2 * tau * c[t - 1] + noise\n            e[t] = g ** 2",
      "            w = g ** 2 * c[t - 1] + noise\n            e[t] = g ** 2",
      ("tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
       "tests/retraining/test_workflow_theory.py::test_sampling_bias_in_the_loop_matches_the_tempered_curves"),
      "the tempered replace curve forgets that tau shrinks the covariance"),
    M("retraining.correction_noise",
      PKG + "retraining/_gaussian_workflows.py",
      "nu = 2.0 * h * k if a2 == 1.0 else 2.0 * h * (1.0 - g ** 2) / (1.0 - a2)",
      "nu = 2.0 * h * k if a2 == 1.0 else h * (1.0 - g ** 2) / (1.0 - a2)",
      ("tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
       "tests/retraining/test_workflow_theory.py::test_self_correction_in_the_loop_matches_the_corrected_curves"),
      "the corrected curves halve the Langevin noise"),
    M("retraining.accumulate_increment",
      PKG + "retraining/_gaussian_workflows.py",
      "e[t] = ((prev + m * g) / pool) ** 2 * e[t - 1] + m * w / pool ** 2",
      "e[t] = ((prev + m * g) / pool) ** 2 * e[t - 1] + m / pool ** 2",
      "tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
      "accumulate's mean-error increment ignores c_t"),
    M("retraining.mix_contraction_squared",
      PKG + "retraining/_gaussian_workflows.py",
      "v = rho ** 2 * v + tau * m * c[t - 1] / N ** 2",
      "v = rho * v + tau * m * c[t - 1] / N ** 2",
      "tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
      "mix's mean deviation variance contracts by rho instead of rho^2"),
    M("retraining.fresh_real_term",
      PKG + "retraining/_gaussian_workflows.py",
      "e[t] = n / N ** 2 + (m * g / N) ** 2 * e[t - 1] + m * w / N ** 2",
      "e[t] = (m * g / N) ** 2 * e[t - 1] + m * w / N ** 2",
      "tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
      "fresh's error drops the new real sample's variance n/N^2"),
    M("retraining.subsample_without_replacement",
      PKG + "retraining/_gaussian_workflows.py",
      "e[t] = p + s * (pool - budget) / (budget * pool * (pool - 1))",
      "e[t] = p + s / (budget * (pool - 1))",
      "tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
      "accumulate-subsample's subsample variance forgets the finite-population correction"),
    M("retraining.subsample_pool_cross_term",
      PKG + "retraining/_gaussian_workflows.py",
      "p = ((prev ** 2 + 2 * prev * m * g) * p",
      "p = ((prev ** 2 + prev * m * g) * p",
      "tests/retraining/test_workflow_theory.py::test_workflow_curves_match_many_small_chains",
      "accumulate-subsample's pool mean drops half its cross term with the model's mean"),
    M("atlas.fixed_skip_trained",
      PKG + "experiments/atlas/_setup.py",
      "        return _dae(config, train_b=False)\n    return learner",
      "        return _dae(config, train_b=True)\n    return learner",
      "tests/test_atlas.py::test_theory_overlays_hold_and_a_broken_contraction_fails",
      "the fixed-skip remedy trains the DAE's skip (atlas.fixed_skip_variance: 0.005, not 1)"),
    M("atlas.annealed_constant_delta",
      PKG + "experiments/atlas/_setup.py",
      "return FittedModelLearner(EmpiricalLearner(), anneal_schedule(config), config.rounds",
      "return FittedModelLearner(EmpiricalLearner(), config.truncation_delta, config.rounds",
      "tests/test_atlas.py::test_theory_overlays_hold_and_a_broken_contraction_fails",
      "the annealed remedy samples at the constant delta"),
    M("atlas.hellinger_cell_volume",
      PKG + "experiments/atlas/_setup.py",
      "_metrics.kde(zw, grid)))) * grid.cell_volume",
      "_metrics.kde(zw, grid))))",
      "tests/test_atlas.py::test_hellinger_of_a_collapsed_cloud_is_a_number",
      "the collapsed cloud's Bhattacharyya sum forgets the cell volume"),
    # ------------------------------------------------------------------ hodge
    M("hodge.kl_integrals_halved",
      PKG + "hodge/_bounds.py",
      "li, gi = float(weights @ l2), float(weights @ gr)",
      "li, gi = 0.5 * float(weights @ l2), 0.5 * float(weights @ gr)",
      "tests/hodge/test_hodge_guards.py",
      "the Girsanov and marginal KL bounds use half the time integrals"),
    M("hodge.time_nodes_jacobian",
      PKG + "hodge/_common.py",
      "return t, 0.5 * (hi - lo) * w * t",
      "return t, 0.5 * (hi - lo) * w",
      "tests/hodge/test_hodge_guards.py",
      "the log-time quadrature drops the Jacobian e^u"),
    M("hodge.stein_estimator_noise",
      PKG + "hodge/_stein.py",
      "stein, sq = basis.per_sample(ev, beta)",
      "stein, sq = np.random.default_rng(len(ev)).normal(size=(2, len(ev)))",
      (f"{T_HODGE}::test_estimator_vs_lyapunov_closed_form",
       f"{T_HODGE}::test_estimator_lower_bound_on_mixture_with_large_solenoidal_error"),
      "the cross-fitted Stein gradient-part estimator evaluates noise instead of the fitted psi"),
    M("hodge.experiment_auto_ridge",
      PKG + "experiments/hodge/_setup.py",
      "dict(degree=self.degree, ridge=self.ridge)",
      "dict(degree=self.degree)",
      f"{T_HODGE}::test_experiment_estimator_settings_do_not_shrink",
      "the hodge experiment's estimator falls back to ridge 'auto' (shrinks the bias-corrected value)"),
    M("hodge.gaussian_gradient_drops_constant",
      PKG + "hodge/_gaussian.py",
      "gradient=float(np.trace(S @ C @ S) + f @ f),",
      "gradient=float(np.trace(S @ C @ S)),",
      (f"{T_HODGE}::test_gaussian_energies_match_monte_carlo", f"{T_HODGE}::test_estimator_vs_lyapunov_closed_form"),
      "Gaussian closed form: the constant error f is left out of the gradient part"),
    M("reference.hodge_laplacian",
      PKG + "reference/hodge.py",
      "d2 = idx * (idx - 1) * Hpad[:, cols[None, :], idx] / scale**2",
      "d2 = idx * idx * Hpad[:, cols[None, :], idx] / scale**2",
      f"{T_HODGE}::test_hermite_system_matches_reference",
      "numpy twin of the Stein/Hermite kernel: wrong second-derivative factor"),
    M("reference.hodge_bump_width",
      PKG + "reference/hodge.py",
      "l2 = a * a * float(term[\"width2\"]) + s2",
      "l2 = a * float(term[\"width2\"]) + s2",
      f"{T_HODGE}::test_fields_match_reference",
      "numpy twin of the perturbed-score kernel: bump width shrinks with e^-t, not e^-2t"),
    # ------------------------------------------------------------------ dae
    M("dae.weight_decay_G",
      PKG + "dae/_odes.py",
      "dG -= 0.5 * pb.weight_decay * G",
      "dG -= pb.weight_decay * G",
      "tests/dae/test_dae_guards.py",
      "the training ODE's weight-decay term on G (lambda/2) doubled"),
    M("dae.weight_decay_Q_dropped",
      PKG + "dae/_odes.py",
      "dQ -= pb.weight_decay * Q",
      "dQ -= 0.0 * Q",
      "tests/dae/test_dae_guards.py",
      "the training ODE's weight-decay term on Q dropped"),
    M("dae.quadratic_term_factor",
      PKG + "dae/_theory.py",
      "dQ += 2.0 * pb.lr * (Aee * si.T @ S[j]",
      "dQ += pb.lr * (Aee * si.T @ S[j]",
      f"{T_DAE}::test_ode_quadratic_term_matters_and_multi_time_grid",
      "the O(eta) term of dQ loses its factor 2"),
    M("dae.dG_term_dropped",
      PKG + "dae/_theory.py",
      "- ((s * wn[:, None]).T @ s) @ G + (u * wn[:, None]).T @ xt",
      "- ((s * wn[:, None]).T @ s) @ G",
      f"{T_DAE}::test_ode_matches_simulation_trimodal_and_fluctuations_shrink",
      "the <u xi_t^T> term of dG dropped"),
    M("dae.skip_rate",
      PKG + "dae/_theory.py",
      "K = rho_bar * mo[\"beta2\"] + mo[\"alpha2\"]",
      "K = rho_bar * mo[\"beta\"] + mo[\"alpha2\"]",
      f"{T_DAE}::test_skip_closed_form_matches_simulation",
      "skip connection's closed form: E[beta] instead of E[beta^2] in the rate K"),
    M("dae.skip_ode_term",
      PKG + "dae/_odes.py",
      "db = float(pb.tw @ (pb.ts * rb - b * (pb.ts**2 * rb + (1 - pb.ts) ** 2)))",
      "db = float(pb.tw @ (pb.ts * rb - b * pb.ts**2 * rb))",
      f"{T_DAE}::test_ode_matches_simulation_trimodal_and_fluctuations_shrink",
      "the alpha_t^2 term of db/dtau dropped"),
    M("dae.generation_map_bulk",
      PKG + "experiments/dae/_generations.py",
      "th.theory_target(m[keep], gt[\"v\"], gt[\"weights\"][keep]",
      "th.theory_target(m[keep], 0.0, gt[\"weights\"][keep]",
      "tests/dae/test_dae_experiments.py::test_d4_generations",
      "D4 generation map: the previous generation's off-W variance v dropped from the next target"),
    M("dae.d4_ode_weight_decay",
      PKG + "experiments/dae/_generations.py",
      "lr=lr, weight_decay=cfg.weight_decay,",
      "lr=lr, weight_decay=2.0 * cfg.weight_decay,",
      "tests/dae/test_dae_experiments.py::test_d4_generations",
      "D4 theory: the ODEs of generation >= 2 integrated with twice the weight decay"),
    M("dae.d4_gap_claim_sign",
      PKG + "experiments/dae/_generations.py",
      "(h - floor) - (hs - fs), \">=\"",
      "(hs - fs) - (h - floor), \">=\"",
      "tests/dae/test_dae_experiments.py::test_d4_gap_claim_pairs_lr_and_small_lr_per_seed",
      "D4 claim: the lr vs lr / 16 gap taken the other way round"),
    M("dae.generation_map_weights",
      PKG + "experiments/dae/_generations.py",
      "th.theory_target(m[keep], gt[\"v\"], gt[\"weights\"][keep]",
      "th.theory_target(m[keep], gt[\"v\"], np.ones(int(keep.sum()))",
      "tests/dae/test_dae_experiments.py::test_d4_generations",
      "D4 generation map: the atoms' masses of nu ignored (equal weights)"),
    M("dae.spectral_spike_in_Qc",
      PKG + "dae/_spectral.py",
      "Qc = np.einsum(\"l,lab->ab\", rc, q) + (Gs * prho[c, spk]) @ Gs.T",
      "Qc = np.einsum(\"l,lab->ab\", rc, q) + Gs @ Gs.T",
      "tests/dae/test_dae_spectral.py::test_spikes_match_simulation_and_are_not_levels",
      "spectral closure: the spikes' eigenvalues left out of Q_c (G_s G_s^T instead of G_s diag(rho_s) G_s^T)"),
    M("dae.spectral_xi1_eigenvalue",
      PKG + "dae/_spectral.py",
      "xi1 = tg.m[c] + ((lam1 - Mc) @ (Qcp @ G)) * prho[c]",
      "xi1 = tg.m[c] + ((lam1 - Mc) @ (Qcp @ G))",
      "tests/dae/test_dae_spectral.py::test_spikes_match_simulation_and_are_not_levels",
      "spectral closure: E[xi_1 | lambda_1] without the direction's eigenvalue (Cov(lambda_1, xi_1) = G)"),
    M("dae.spectral_xi1_conditioning",
      PKG + "dae/_spectral.py",
      "xi1 = tg.m[c] + ((lam1 - Mc) @ (Qcp @ G)) * prho[c]",
      "xi1 = tg.m[c] + ((lam1 - Mc) @ (Qp @ G)) * prho[c]",
      "tests/dae/test_dae_spectral.py::test_spikes_match_simulation_and_are_not_levels",
      "spectral closure: E[xi_1 | lambda_1] conditioned with Q^+ (the lambda_0 covariance) instead of Q_c^+"),
    M("dae.spectral_quadratic_factor",
      PKG + "dae/_spectral.py",
      "co = 2.0 * pb.lr * tg.fractions",
      "co = pb.lr * tg.fractions",
      "tests/dae/test_dae_spectral.py::test_single_level_equals_isotropic_ode",
      "spectral closure: the O(eta) term of dq_l loses its factor 2 (too small at lr = 0.2 for the "
      "simulation tests to see: the reduction to the isotropic ODE catches it)"),
    M("reference.dae_weight_decay",
      PKG + "reference/dae.py",
      "w_new = w - lr * grad_w - lr * weight_decay / d * w",
      "w_new = w - lr * grad_w - 2.0 * lr * weight_decay / d * w",
      f"{T_DAE}::test_cpp_step_matches_reference_injected",
      "numpy twin of the DAE SGD kernel: weight decay doubled"),
    # ------------------------------------------------------------------ metrics
    M("metrics.hellinger_half",
      PKG + "metrics/_divergences.py",
      "h2 = min(max(0.5 * float(np.sum((np.sqrt(pv) - np.sqrt(qv)) ** 2)) * cv, 0.0), 1.0)",
      "h2 = min(max(float(np.sum((np.sqrt(pv) - np.sqrt(qv)) ** 2)) * cv, 0.0), 1.0)",
      f"{T_MET}::test_hellinger_densities_closed_form",
      "Hellinger without the 1/2 (H^2 = int (sqrt p - sqrt q)^2)"),
    M("metrics.w2_exact_no_root",
      PKG + "metrics/_wasserstein.py",
      "return max(cost, 0.0) ** (1.0 / p)",
      "return max(cost, 0.0)",
      f"{T_MET}::test_exact_and_sliced_w2_vs_gaussian_closed_form",
      "exact W_p returns W_p^p"),
    M("metrics.gaussian_w2_cross",
      PKG + "metrics/_gaussian.py",
      "w2 = float(np.sum((m1 - m2) ** 2) + np.trace(C1 + C2 - 2.0 * cross))",
      "w2 = float(np.sum((m1 - m2) ** 2) + np.trace(C1 + C2 - cross))",
      f"{T_MET}::test_exact_and_sliced_w2_vs_gaussian_closed_form",
      "Gaussian W2 closed form: cross term without its factor 2"),
    M("metrics.kde_scott",
      PKG + "metrics/_kde.py",
      "rf = neff ** (-1.0 / (d + 4))",
      "rf = neff ** (-1.0 / (d + 5))",
      f"{T_MET}::test_exact_kde_matches_scipy",
      "Scott's bandwidth factor n^(-1/(d+5)) instead of n^(-1/(d+4))"),
    M("metrics.kde_silverman",
      PKG + "metrics/_kde.py",
      "rf = (neff * (d + 2) / 4.0) ** (-1.0 / (d + 4))",
      "rf = (neff * (d + 2) / 2.0) ** (-1.0 / (d + 4))",
      f"{T_MET}::test_exact_kde_matches_scipy",
      "Silverman's bandwidth factor with /2 instead of /4"),
    M("reference.kde_normalisation",
      PKG + "reference/metrics.py",
      "log_norm = -0.5 * d * LOG_2PI - np.log(np.diag(chol)).sum()",
      "log_norm = -0.5 * d * LOG_2PI",
      f"{T_MET}::test_exact_kde_matches_scipy",
      "numpy twin of the exact KDE forgets the kernel's determinant"),
    # ------------------------------------------------------------------ foundation
    M("mixture.smooth_variance",
      PKG + "mixture.py",
      "cov = a * a * self._cov + s2\n",
      "cov = a * self._cov + s2\n",
      "tests/test_mixture.py::test_smooth_closed_form_semigroup_and_limit",
      "S_t of an isotropic/diagonal mixture scales the covariance by e^-t, not e^-2t"),
    M("empirical.smoothed_sampling_noise",
      PKG + "empirical.py",
      "return np.exp(-t) * self._samples[idx] + np.sqrt(-np.expm1(-2.0 * t)) * z",
      "return np.exp(-t) * self._samples[idx] + np.sqrt(-np.expm1(-t)) * z",
      "tests/test_empirical_guards.py",
      "smoothed empirical samples with noise variance 1 - e^-t"),
    M("reference.empirical_temperature",
      PKG + "reference/empirical.py",
      "logits = -0.5 * d2 / s2",
      "logits = -d2 / s2",
      "tests/test_empirical.py::test_cpp_vs_numpy_vs_mixture",
      "numpy twin of the empirical score at temperature 1/2 (logits doubled)"),
    M("sampler.time_grid_quadratic",
      PKG + "reference/sampler.py",
      "times = delta + (T - delta) * (1.0 - k) ** 2",
      "times = delta + (T - delta) * (1.0 - k) ** 3",
      "tests/test_sampler_guards.py",
      "the 'quadratic' time grid is cubic (the grid is shared by both backends)"),
    M("sampler.time_grid_log",
      PKG + "reference/sampler.py",
      "times = T * (delta / T) ** k",
      "times = T * (delta / T) ** (k * k)",
      "tests/test_sampler_guards.py",
      "the 'log' time grid is not geometric (the grid is shared by both backends)"),
    M("reference.sampler_em_noise",
      PKG + "reference/sampler.py",
      "return y + h * (y + 2.0 * s) + np.sqrt(2.0 * h) * xi",
      "return y + h * (y + 2.0 * s) + np.sqrt(h) * xi",
      "tests/test_sampler.py::test_cpp_equals_numpy_with_injected_noise",
      "numpy twin of the reverse sampler: Euler-Maruyama noise sqrt(h) instead of sqrt(2h)"),
    # the ziggurat normal transform's numpy twin (the core must equal it bit for bit)
    M("reference.ziggurat_wedge_dropped",
      PKG + "reference/random.py",
      "w_ok = wedge & (y < _exp_nonpositive(-0.5 * (x * x)))",
      "w_ok = wedge",
      "tests/test_random.py::test_slow_path_words_match_the_twin_one_by_one_and_in_runs",
      "numpy twin of the ziggurat: every wedge point accepted (no test against the curve)"),
    M("reference.ziggurat_tail_dropped",
      PKG + "reference/random.py",
      "out[idx[t_done]] = _signed(zt.R + xt[t_done], wi[t_done])",
      "out[idx[t_done]] = _signed(zt.R + 0.0 * xt[t_done], wi[t_done])",
      "tests/test_random.py::test_slow_path_words_match_the_twin_one_by_one_and_in_runs",
      "numpy twin of the ziggurat: the tail's points replaced by r"),
    M("reference.ziggurat_slow_key_reuse",
      PKG + "reference/random.py",
      "(seed, 2 * k + h))",
      "(seed, h))",
      "tests/test_random.py::test_slow_path_words_match_the_twin_one_by_one_and_in_runs",
      "numpy twin of the ziggurat: the slow path draws under the main key (seed, 0) (k = 0)"),
    M("reference.ziggurat_sign_ignored",
      PKG + "reference/random.py",
      "| ((w & np.uint64(0x100)) << np.uint64(55))).view",
      "| np.uint64(0)).view",
      "tests/test_random.py::test_normals_match_numpy_twin",
      "numpy twin of the ziggurat: the word's sign bit ignored (every normal >= 0)"),
    # ------------------------------------------------------------------ C++ kernels (--cpp)
    M("cpp.ziggurat_wedge_dropped",
      "cpp/include/modelcollapse/random.hpp",
      "y < fastmath::exp_nonpositive(-0.5 * (x * x)) ? ones : 0.0",
      "true ? ones : 0.0",
      "tests/test_random.py::test_slow_path_words_match_the_twin_one_by_one_and_in_runs",
      "ziggurat slow path: every wedge point accepted (no test against the curve)"),
    M("cpp.ziggurat_slow_key_reuse",
      "cpp/include/modelcollapse/random.hpp",
      "const std::uint64_t key = 2 * static_cast<std::uint64_t>(k);",
      "const std::uint64_t key = 0;",
      "tests/test_random.py::test_slow_path_words_match_the_twin_one_by_one_and_in_runs",
      "ziggurat slow path: its blocks drawn under the main key (seed, 0) (k = 0)"),
    M("cpp.ziggurat_table_entry",
      "cpp/include/modelcollapse/ziggurat_tables.hpp",
      "0x1.04d32278ebbb4p-53,",
      "0x1.04d32278ebbb4p-53 * (1 + 1e-6),",
      ("tests/test_random.py::test_long_runs_match_numpy_twin", "tests/test_random.py::test_ziggurat_tables_are_the_generators"),
      "ziggurat tables: one layer's width off by 1e-6 relative"),
    M("cpp.sampler_em_noise",
      "cpp/include/modelcollapse/sampler.hpp",
      "noise_coef[k] = std::sqrt(2.0 * h);",
      "noise_coef[k] = std::sqrt(h);",
      "tests/test_sampler.py::test_cpp_equals_numpy_with_injected_noise",
      "reverse-sampler kernel: Euler-Maruyama noise sqrt(h) instead of sqrt(2h)"),
    M("cpp.chains_biased_covariance",
      "cpp/include/modelcollapse/gaussian_chains.hpp",
      "cov[a * d + b] /= static_cast<double>(N - 1);",
      "cov[a * d + b] /= static_cast<double>(N);",
      f"{T_RETR}::test_cpp_matches_numpy_reference_same_seed",
      "Gaussian-chains kernel refits with the biased covariance (d > 1)"),
    M("cpp.empirical_temperature",
      "cpp/include/modelcollapse/empirical.hpp",
      "const double c = -0.5 / s.s2;",
      "const double c = -1.0 / s.s2;",
      ("tests/test_empirical.py::test_cpp_vs_numpy_vs_mixture", "tests/test_empirical_guards.py"),
      "empirical-score kernel (general-d path; d = 2 has its own) at temperature 1/2"),
    M("cpp.hermite_recurrence",
      "cpp/include/modelcollapse/hermite.hpp",
      "sq[m] = std::sqrt(static_cast<double>(m));",
      "sq[m] = static_cast<double>(m);",
      "tests/truncation/test_hermite_kernels.py::test_generic_kernel_beyond_the_fused_size_equals_the_twin",
      "Hermite-moments kernel: m instead of sqrt(m) in the normalised recurrence"),
    M("cpp.hermite_monic_coefficient",
      "cpp/include/modelcollapse/hermite.hpp",
      "s.mval[k] = static_cast<double>(k);",
      "s.mval[k] = static_cast<double>(k + 1);",
      "tests/truncation/test_hermite_kernels.py::test_fused_kernel_equals_the_twin",
      "fused Hermite kernels: k + 1 instead of k in the monic recurrence He_{k+1} = x He_k - k He_{k-1}"),
    M("cpp.hermite_fused_dropped_term",
      "cpp/include/modelcollapse/hermite.hpp",
      "                    a[i][c] += pv * gv[c];",
      "                    if (c < 2) a[i][c] += pv * gv[c];",
      "tests/truncation/test_hermite_kernels.py::test_fused_kernel_equals_the_twin",
      "fused d-D Hermite kernel: a register tile's third column left out of the sums"),
    M("cpp.hermite_chain_rescale",
      "cpp/include/modelcollapse/hermite.hpp",
      "            c[v] *= r;\n            p[v] *= r;",
      "            c[v] *= r;",
      "tests/truncation/test_hermite_kernels.py::test_fused_1d_chain_high_degree_equals_the_twin",
      "scaled Hermite recurrence: g_{k-1} not rescaled with g_k (a wrong term from the next step on)"),
]


# ---------------------------------------------------------------------------- machinery

def check_definitions(mutants: list[Mutant]) -> list[str]:
    """Problems with the mutant definitions: duplicate names, snippets not found exactly once,
    no-op replacements, missing test paths."""
    problems = []
    seen = set()
    for m in mutants:
        if m.name in seen:
            problems.append(f"{m.name}: duplicate name")
        seen.add(m.name)
        path = ROOT / m.file
        if not path.is_file():
            problems.append(f"{m.name}: {m.file} does not exist")
            continue
        count = path.read_text().count(m.old)
        if count != 1:
            problems.append(f"{m.name}: the snippet occurs {count} times in {m.file} (must be exactly once): {m.old!r}")
        if m.old == m.new:
            problems.append(f"{m.name}: the replacement equals the snippet")
        if not m.tests:
            problems.append(f"{m.name}: no tests")
        for t in m.tests:
            if not t.startswith("-") and not (ROOT / t.split("::")[0]).exists():
                problems.append(f"{m.name}: test path {t.split('::')[0]} does not exist")
    return problems


def _ignore(_dir: str, names: list[str]) -> set[str]:
    return {n for n in names if n in ("__pycache__", ".pytest_cache", ".hypothesis")}


def _pytest_cmd(tests: tuple[str, ...]) -> list[str]:
    # -x: the first failure kills the mutant; no cache: parallel runs must not share state.
    return [sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:cacheprovider",
            "-o", "addopts=", *tests]


def _env(pythonpath: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(pythonpath)   # the copy only: never the tree's python/
    env.setdefault("OMP_NUM_THREADS", "1")
    env.setdefault("MKL_NUM_THREADS", "1")
    env.setdefault("OPENBLAS_NUM_THREADS", "1")
    return env


def _run(cmd: list[str], env: dict[str, str], timeout: float) -> tuple[int | None, str, float]:
    """(exit code or None on timeout, output, seconds); the whole process group is killed on timeout."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        rc = None
    return rc, out, time.perf_counter() - t0


def _core_library() -> Path | None:
    """The compiled _core*.so: the one built into python/modelcollapse/ (CONTRIBUTING.md), else
    the installed package's (CI installs with pip, so the tree holds no build)."""
    built = sorted((ROOT / "python" / "modelcollapse").glob("_core*.so"))
    if built:
        return built[0]
    found = subprocess.run([sys.executable, "-c", "import importlib.util as u; print(u.find_spec('modelcollapse._core').origin)"],
                           cwd=tempfile.gettempdir(), capture_output=True, text=True)
    path = Path(found.stdout.strip()) if found.returncode == 0 else None
    return path if path is not None and path.is_file() else None


def _apply(m: Mutant, root: Path) -> None:
    """Replace the snippet in the copy under ``root`` (and drop its stale bytecode)."""
    target = root / m.file
    src = target.read_text()
    assert src.count(m.old) == 1, m.name
    target.write_text(src.replace(m.old, m.new))
    cache = target.parent / "__pycache__"
    if cache.is_dir():
        for pyc in cache.glob(target.stem + ".*.pyc"):
            pyc.unlink()


class _CppBuilder:
    """One CMake build tree over a private copy of the sources; each C++ mutant is applied to
    the copy, built incrementally, and the copy restored afterwards (the tree is never touched)."""

    def __init__(self, work: Path, jobs: int, log) -> None:
        self.src = work / "cpp-src"
        self.build = work / "cpp-build"
        self.jobs = jobs
        self.log = log
        self.lock = threading.Lock()
        self.src.mkdir()
        # cmake/: the compiler launcher (cmake/objcache.py) CMakeLists.txt points at
        for item in ("CMakeLists.txt", "cmake", "cpp", "pyproject.toml"):
            p = ROOT / item
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, self.src / item)
        pybind_dir = subprocess.check_output([sys.executable, "-m", "pybind11", "--cmakedir"], text=True).strip()
        gen = ["-G", "Ninja"] if shutil.which("ninja") else []
        self.log("configuring and building an unmutated C++ core (a few minutes)...")
        subprocess.run(["cmake", "-S", str(self.src), "-B", str(self.build), *gen, "-DCMAKE_BUILD_TYPE=Release",
                        f"-Dpybind11_DIR={pybind_dir}", f"-DPython_EXECUTABLE={sys.executable}",
                        "-DSKBUILD_PROJECT_VERSION=0.1.0"], check=True, stdout=subprocess.DEVNULL)
        self._build()

    def _build(self) -> None:
        res = subprocess.run(["cmake", "--build", str(self.build), "-j", str(self.jobs)], capture_output=True,
                             text=True)
        if res.returncode != 0:   # the compiler's messages go to stdout: show them, not only the exit code
            raise RuntimeError(f"C++ build failed in {self.build}:\n{res.stdout[-4000:]}{res.stderr[-2000:]}")

    def build_mutant(self, m: Mutant, pkg: Path) -> None:
        """Build ``m`` and put its _core*.so into the package copy ``pkg``."""
        with self.lock:
            target = self.src / m.file
            original = target.read_text()
            try:
                _apply(m, self.src)
                self._build()
                for old in pkg.glob("_core*.so"):
                    old.unlink()
                for so in self.build.glob("_core*.so"):
                    shutil.copy2(so, pkg / so.name)
            finally:
                target.write_text(original)


@dataclasses.dataclass
class Result:
    mutant: Mutant
    verdict: str
    seconds: float
    output: str = ""


def run_mutant(m: Mutant, work: Path, base: Path, timeout: float, builder: _CppBuilder | None) -> Result:
    t0 = time.perf_counter()
    root = work / m.name
    shutil.copytree(base, root / "python", symlinks=True)
    try:
        if m.is_cpp:
            assert builder is not None
            try:
                builder.build_mutant(m, root / "python" / "modelcollapse")
            except subprocess.CalledProcessError as exc:
                # A mutant that does not compile says nothing about the tests.
                return Result(m, "ERROR", time.perf_counter() - t0, f"build failed: {exc}")
        else:
            _apply(m, root)
        rc, out, _ = _run(_pytest_cmd(m.tests), _env(root / "python"), timeout)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    verdict = {None: "timeout", 0: "SURVIVED", 1: "killed"}.get(rc, "ERROR")
    return Result(m, verdict, time.perf_counter() - t0, out)


def _select(patterns: list[str] | None, with_cpp: bool) -> list[Mutant]:
    if patterns:
        chosen = [m for m in MUTANTS if any(fnmatch.fnmatchcase(m.name, p) for p in patterns)]
        if not chosen:
            sys.exit(f"mutate.py: no mutant matches {patterns} (see --list)")
        if not with_cpp and any(m.is_cpp for m in chosen):
            sys.exit("mutate.py: C++ mutants need --cpp (they rebuild the extension)")
        return chosen
    return [m for m in MUTANTS if with_cpp or not m.is_cpp]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", action="store_true", help="list the mutants and their tests, run nothing")
    ap.add_argument("--only", action="append", metavar="NAME",
                    help="run the mutants whose name matches (fnmatch pattern; repeatable)")
    ap.add_argument("--jobs", type=int, default=1, help="mutants run in parallel (default 1)")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's tests (default 300)")
    ap.add_argument("--cpp", action="store_true", help="include the C++ mutants (rebuilds the extension per mutant)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip the check that the selected tests pass on the unmutated copy")
    ap.add_argument("--show-output", action="store_true", help="print pytest's output of every mutant")
    args = ap.parse_args(argv)

    problems = check_definitions(MUTANTS)
    if problems:
        print("mutate.py: broken mutant definitions (fix them before running):", *problems, sep="\n  ", file=sys.stderr)
        return 2
    selected = _select(args.only, args.cpp)
    if args.list:
        for m in selected:
            print(f"{m.name}\n    {m.file}: {m.why}\n    tests: {' '.join(m.tests)}")
        print(f"{len(selected)} mutants ({sum(m.is_cpp for m in selected)} C++)")
        return 0
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    core = _core_library()
    if core is None:
        print("mutate.py: no compiled core: build the extension into python/modelcollapse/ or install the package "
              "(CONTRIBUTING.md)", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, flush=True)

    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="modelcollapse-mutate-") as tmp:
        work = Path(tmp)
        base = work / "base"
        shutil.copytree(ROOT / "python", base, ignore=_ignore, symlinks=True)
        if core.parent != ROOT / "python" / "modelcollapse":
            shutil.copy2(core, base / "modelcollapse" / core.name)
        # Bytecode compiled once for the base; each copy recompiles only its mutated file.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(base)], check=True)
        env = _env(base)
        where = subprocess.run([sys.executable, "-c", "import modelcollapse; print(modelcollapse.__file__)"],
                               cwd=ROOT, env=env, capture_output=True, text=True)
        if where.returncode != 0 or not where.stdout.strip().startswith(str(base)):
            print(f"mutate.py: the copy is not what gets imported: {where.stdout}{where.stderr}", file=sys.stderr)
            return 2
        if not args.no_baseline:
            tests = tuple(dict.fromkeys(t for m in selected for t in m.tests))
            log(f"baseline: {len(tests)} test selections on the unmutated copy...")
            rc, out, sec = _run(_pytest_cmd(tests), env, args.timeout * 2)
            if rc != 0:
                print(out[-4000:], f"\nmutate.py: the baseline fails (exit {rc}) in {sec:.0f} s: fix the tests first",
                      file=sys.stderr)
                return 2
            log(f"baseline passes ({sec:.0f} s)")
        builder = _CppBuilder(work, max(args.jobs, 2), log) if any(m.is_cpp for m in selected) else None

        results: list[Result] = []
        width = max(len(m.name) for m in selected)

        def one(m: Mutant) -> Result:
            r = run_mutant(m, work, base, args.timeout, builder)
            log(f"  {m.name:<{width}}  {r.verdict:<8}  {r.seconds:6.1f} s")
            if args.show_output or r.verdict in ("SURVIVED", "ERROR"):
                log("    | " + "\n    | ".join(r.output.strip().splitlines()[-15:]))
            return r

        log(f"running {len(selected)} mutants with {args.jobs} job(s)...")
        # C++ mutants share one build tree: they run one at a time, after the Python ones.
        py = [m for m in selected if not m.is_cpp]
        with ThreadPoolExecutor(max_workers=args.jobs) as pool:
            results += list(pool.map(one, py))
        results += [one(m) for m in selected if m.is_cpp]

    total = time.perf_counter() - t_start
    print(f"\n{'mutant':<{width}}  {'verdict':<8}  seconds")
    for r in sorted(results, key=lambda r: MUTANTS.index(r.mutant)):
        print(f"{r.mutant.name:<{width}}  {r.verdict:<8}  {r.seconds:7.1f}")
    counts = {v: sum(r.verdict == v for r in results) for v in ("killed", "timeout", "SURVIVED", "ERROR")}
    print(f"\n{len(results)} mutants: " + ", ".join(f"{n} {v}" for v, n in counts.items()) +
          f"; {total:.0f} s in all with {args.jobs} job(s)")
    return 1 if counts["SURVIVED"] or counts["ERROR"] else 0


if __name__ == "__main__":
    sys.exit(main())
