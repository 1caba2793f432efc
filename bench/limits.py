"""Estimated hardware limits of the hot kernels on the reference machine, as data.

The reference machine: 2 cores of an AMD Zen 4 at 3.65 GHz. Each core has two 256-bit
FMA/multiply pipes (and two add pipes); counting every vector instruction as one lane-op
on the FMA pipes, a core retires 2 pipes x 4 float64 lanes = 8 lane-ops per cycle,
2 x 8 x 3.65e9 = 5.84e10 lane-ops/s on 2 cores (float32: twice that). Each kernel's limit
is  min(compute, memory):  PEAK_OPS / (lane-ops per item)  and  BANDWIDTH / (bytes per item).
The lane-op counts per item are written next to each limit (docs/benchmarks.md, "Limits",
gives the derivations in words); exp and log count 15 lane-ops (range reduction and a
degree-11-13 polynomial), tanh 20, a standard normal 30 (Box-Muller or polar: the uniform
bits, a log, a square root and a sine/cosine or division per pair, halved).

run.py stores each case's limit (items/s) with its records; summarize.py prints the
project's throughput as a % of it. On another machine the numbers are the reference
machine's, not that machine's: read the % as "of the 2-core Zen 4".
"""
from __future__ import annotations

FREQ_HZ = 3.65e9
CORES = 2
LANE_OPS_PER_CYCLE = 8  # per core: 2 FMA pipes x 4 float64 lanes (256-bit)
PEAK_OPS = FREQ_HZ * CORES * LANE_OPS_PER_CYCLE  # 5.84e10 float64 lane-ops/s
# Sustained DRAM bandwidth for 2 cores (streaming copy, read + write), an estimate for a
# 2-vCPU slice of a DDR5 server: only the normals limit depends on it.
BANDWIDTH_BPS = 2.0e10

EXP = 15.0
TANH = 20.0
NORMAL = 30.0


def _limit(ops_per_item: float, bytes_per_item: float = 0.0) -> float:
    compute = PEAK_OPS / ops_per_item
    memory = BANDWIDTH_BPS / bytes_per_item if bytes_per_item else float("inf")
    return min(compute, memory)


def mixture_score(K: int, d: int) -> float:
    """Points/s. Per point and component: |x|^2 - 2 a x.mu_k in d FMA, logit 2, exp, the
    weighted sum of mu_k in d FMA: K (2 d + 2 + EXP); then d ops for x sum_k r_k / v_k."""
    return _limit(K * (2 * d + 2 + EXP) + 2 * d)


def reverse_em(K: int, d: int) -> float:
    """Sample-steps/s: the score, d normals and the update (2 d FMA)."""
    return _limit(K * (2 * d + 2 + EXP) + 2 * d + d * NORMAL + 2 * d)


def normals() -> float:
    """Normals/s: NORMAL lane-ops and one 8-byte store each (2 GB/s per 2.5e8 normals)."""
    return _limit(NORMAL, 8.0)


def dae_sgd(d: int) -> float:
    """Steps/s at r = 2: per coordinate 2 normals (x0 and the component noise) and 16
    lane-ops of arithmetic (xt 2, h 2, residual 3, w^T e 2, e.xt 1, the rank-2 update 4,
    loads/stores 2), split over both cores (no synchronisation cost counted)."""
    return _limit(d * (2 * NORMAL + 16.0))


def empirical_score(d: int) -> float:
    """Pairs/s: per (query, sample) pair d FMA for the GEMM-form distance, 2 for the logit
    and its running max, EXP, 1 for the weight sum and d FMA for the weighted sum of samples."""
    return _limit(2 * d + 3 + EXP)


def kde_exact_grid() -> float:
    """Pairs/s of the exact KDE on a regular 1-D/2-D grid: the Gaussian along an axis
    follows exp(-(z + h)^2/2) = exp(-z^2/2) r, r <- r q (exponential-free recurrence), so a
    pair costs 2 multiplies and 1 FMA into the sum: 3 lane-ops."""
    return _limit(3.0)


def kde_exact_grid_separable(m0: int, m1: int) -> float:
    """Pairs/s of the exact 2-D grid KDE with a diagonal bandwidth (the separable kernel since
    issue 16): the grid is the matrix product of per-axis factors, 1 FMA a pair, plus the
    (m0 + m1) factors of a sample, each 2 multiplies and its share of the 16 + m/16
    exponentials of a row of m: ((m0 + m1) 2 + (32 + (m0 + m1) / 16) EXP) / (m0 m1) a pair
    (0.11 lane-ops at 100 x 100). The bench's Scott bandwidths are full (correlated data) and
    keep the recurrences: kde_exact_grid."""
    factors = 2.0 * (m0 + m1) + (32.0 + (m0 + m1) / 16.0) * EXP
    return _limit(1.0 + factors / (m0 * m1))


def hermite(n_moments_per_sample: float = 1.0, recurrence_ops: float = 3.0) -> float:
    """Sample-moments/s. 1-D: h_{n+1} = a_n x h_n - b_n h_{n-1} (mul + FMA) and the add into
    the moment: 3 lane-ops per sample-moment. 2-D total degree <= m: the (m + 1) 1-D values
    per axis (3 lane-ops each) and one FMA per (sample, moment) for the products."""
    return _limit(recurrence_ops / n_moments_per_sample)


def hermite_2d(degree: int) -> float:
    n_mom = (degree + 1) * (degree + 2) // 2
    return _limit((n_mom + 2 * (degree + 1) * 3.0) / n_mom)
