"""Metrics benchmarks: exact KDE vs scipy.stats.gaussian_kde and the numpy reference,
binned KDE vs KDEpy's FFTKDE (accuracy reported against the exact KDE), the binned KDE
with a full bandwidth (KDEpy has none: compared with its diagonal case by bench/goals.py),
sliced W2 vs POT.

Ratios are taken in the same run (``baseline`` names the denominator).
"""
from __future__ import annotations

import numpy as np

import limits
from modelcollapse import metrics as M
from modelcollapse.reference import metrics as R
from run import Case


def _data(n, d, seed=0):
    g = np.random.default_rng(seed)
    x = g.normal(size=(n, d))
    x[: n // 3] = x[: n // 3] * 0.5 + 2.0  # two clusters
    return x


def _exact_case(n, d, quick):
    m_axis = (200 if quick else 1000) if d == 1 else (30 if quick else 100)
    n = n // 10 if quick else n

    def setup():
        from scipy.stats import gaussian_kde

        x = _data(n, d)
        grid = M.Grid.regular([-5.0] * d, [6.0] * d, m_axis)
        return {"x": x, "grid": grid, "pts": grid.points(), "scipy": gaussian_kde(x.T)}

    def check(out):
        ref = out["scipy"]
        for k in ("cpp", "cpp_1thread", "cpp (points)", "numpy"):
            if k in out:
                np.testing.assert_allclose(np.ravel(out[k]), ref, rtol=1e-10)

    # "cpp": the grid (regular tensor grid: exponential-free recurrences); "cpp (points)":
    # the same grid passed as an (m, d) array of arbitrary points (one exp per pair).
    impls = {
        "cpp": lambda s: M.kde(s["x"], s["grid"]),
        "cpp_1thread": lambda s: M.kde(s["x"], s["grid"], threads=1),
        "scipy": lambda s: s["scipy"](s["pts"].T),
    }
    if n * m_axis ** d <= 5e7:
        impls["cpp (points)"] = lambda s: M.kde(s["x"], s["pts"])
        impls["numpy"] = lambda s: R.kde_exact(s["x"], np.full(len(s["x"]), 1 / len(s["x"])),
                                               s["scipy"].covariance, s["pts"])
    return Case(name=f"kde exact d={d} n={n} grid={m_axis}^{d}", setup=setup, impls=impls,
                work=n * m_axis ** d, unit="pairs", baseline="scipy", check=check, limit=limits.kde_exact_grid(),
                params={"n": n, "d": d, "grid": m_axis})


def _binned_case(n, d, quick):
    m_axis = (200 if quick else 1000) if d == 1 else (30 if quick else 100)
    n = n // 10 if quick else n

    def setup():
        x = _data(n, d)
        # KDEpy needs every sample strictly inside the grid and an isotropic bandwidth.
        lo, hi = x.min() - 3.0, x.max() + 3.0
        grid = M.Grid.regular([lo] * d, [hi] * d, m_axis)
        h = float(np.sqrt(np.min(np.diag(M.kde_bandwidth(x)))))
        exact = M.kde(x, grid, h)
        return {"x": x, "grid": grid, "h": h, "exact": exact, "pts": grid.points()}

    def kdepy(s):
        from KDEpy import FFTKDE

        vals = FFTKDE(kernel="gaussian", bw=s["h"]).fit(s["x"]).evaluate(s["pts"] if d == 2 else s["grid"].axes[0])
        return vals.reshape(s["grid"].shape)

    def check(out):
        ex, cv = SETUP_CACHE["exact"], SETUP_CACHE["cv"]
        errs = {k: M.hellinger_grid(ex, np.maximum(v, 0), cv) for k, v in out.items()}
        print("    Hellinger to exact KDE: " + ", ".join(f"{k}={v:.2e}" for k, v in errs.items()))
        assert errs["cpp (same grid)"] <= 1.01 * errs["KDEpy"] + 1e-12, errs
        assert errs["cpp (tol=1e-3)"] <= 1e-3, errs

    SETUP_CACHE: dict = {}

    def setup_cached():
        s = setup()
        SETUP_CACHE.update(exact=s["exact"], cv=s["grid"].cell_volume)
        return s

    impls = {
        "cpp (same grid)": lambda s: M.kde(s["x"], s["grid"], s["h"], method="binned", tol=None),
        "cpp_1thread": lambda s: M.kde(s["x"], s["grid"], s["h"], method="binned", tol=None, threads=1),
        "cpp (tol=1e-3)": lambda s: M.kde(s["x"], s["grid"], s["h"], method="binned"),
        "KDEpy": kdepy,
    }
    return Case(name=f"kde binned d={d} n={n} grid={m_axis}^{d}", setup=setup_cached, impls=impls,
                work=n, unit="samples", baseline="KDEpy", check=check, params={"n": n, "d": d, "grid": m_axis})


def _binned_full_case(n, quick):
    """The binned KDE with a full (non-diagonal) bandwidth, the default for correlated 2-D
    data ("scott" is the sample covariance times a factor). KDEpy has isotropic bandwidths
    only: bench/goals.py compares this case's time with KDEpy's in the diagonal case of the
    same n and grid, and says that the two accuracies are not the same computation's."""
    m_axis = 30 if quick else 100
    n = n // 10 if quick else n
    cache: dict = {}

    def setup():
        x = _data(n, 2) @ np.array([[1.0, 0.6], [0.0, 0.8]])  # correlated: the bandwidth is not diagonal
        lo, hi = x.min() - 3.0, x.max() + 3.0
        grid = M.Grid.regular([lo] * 2, [hi] * 2, m_axis)
        H = M.kde_bandwidth(x)
        cache.update(exact=M.kde(x, grid, H), cv=grid.cell_volume)
        return {"x": x, "grid": grid, "H": H}

    def check(out):
        errs = {k: M.hellinger_grid(cache["exact"], np.maximum(v, 0), cache["cv"]) for k, v in out.items()}
        print("    Hellinger to exact KDE: " + ", ".join(f"{k}={v:.2e}" for k, v in errs.items()))
        assert errs["cpp (tol=1e-3)"] <= 1e-3, errs

    impls = {
        "cpp (same grid)": lambda s: M.kde(s["x"], s["grid"], s["H"], method="binned", tol=None),
        "cpp (tol=1e-3)": lambda s: M.kde(s["x"], s["grid"], s["H"], method="binned"),
    }
    return Case(name=f"kde binned full-H d=2 n={n} grid={m_axis}^2", setup=setup, impls=impls, work=n,
                unit="samples", baseline="cpp (same grid)", project="cpp (same grid)", check=check,
                params={"n": n, "d": 2, "grid": m_axis, "bandwidth": "scott (full)"})


def _sliced_case(quick):
    n = 10_000 if quick else 100_000
    d, L = 10, 50

    def setup():
        g = np.random.default_rng(1)
        return {"x": g.normal(size=(n, d)), "y": g.normal(size=(n, d)) * 1.2 + 0.3}

    def pot(s):
        import ot

        return ot.sliced_wasserstein_distance(s["x"], s["y"], n_projections=L, seed=0, p=2)

    def check(out):
        # Different random directions: agreement within the Monte Carlo spread only.
        assert abs(out["cpp"] - out["POT"]) < 0.1 * out["POT"], out

    impls = {
        "cpp": lambda s: M.wasserstein(s["x"], s["y"], 2, method="sliced", n_projections=L, seed=0),
        "numpy": lambda s: M.wasserstein(s["x"], s["y"], 2, method="sliced", n_projections=L, seed=0, backend="numpy"),
        "POT": pot,
    }
    return Case(name=f"sliced W2 n={n} d={d} L={L}", setup=setup, impls=impls, work=n * L, unit="proj-points",
                baseline="POT", check=check, params={"n": n, "d": d, "n_projections": L})


def cases(quick: bool) -> list[Case]:
    out = [_exact_case(5000, 1, quick), _exact_case(5000, 2, quick), _exact_case(50_000, 1, quick),
           _exact_case(50_000, 2, quick), _binned_case(5000, 1, quick), _binned_case(5000, 2, quick),
           _binned_case(50_000, 1, quick), _binned_case(50_000, 2, quick), _binned_full_case(5000, quick),
           _binned_full_case(50_000, quick), _sliced_case(quick)]
    return out
