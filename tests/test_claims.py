"""The claims layer's verdict logic (docs/claims.md): each branch of decide() and the
interval builders, checked against hand-computed cases."""
import math

import numpy as np
import pytest

from modelcollapse.experiments._claims import bootstrap_ci, claim, claim_from_interval, claims_frame, decide, mean_ci


@pytest.mark.parametrize("lo,hi,cmp,target,tol,expected", [
    (0.1, 0.2, "<=", 0.25, 0.0, "holds"),
    (0.3, 0.4, "<=", 0.25, 0.0, "fails"),
    (0.2, 0.3, "<=", 0.25, 0.0, "underpowered"),
    (0.3, 0.4, "<=", 0.25, 0.16, "holds"),       # tolerance widens the bound
    (0.3, 0.4, ">=", 0.25, 0.0, "holds"),
    (0.1, 0.2, ">=", 0.25, 0.0, "fails"),
    (0.16, 0.2, ">=", 0.25, 0.1, "holds"),
    (0.95, 1.05, "~", 1.0, 0.1, "holds"),
    (1.2, 1.3, "~", 1.0, 0.1, "fails"),
    (0.5, 0.7, "~", 1.0, 0.1, "fails"),
    (1.05, 1.15, "~", 1.0, 0.1, "underpowered"),
    (0.95, 1.05, "~", 1.0, 0.0, "underpowered"),  # zero tolerance never holds
    (-math.inf, math.inf, "<=", 0.0, 1.0, "underpowered"),
])
def test_decide_branches(lo, hi, cmp, target, tol, expected):
    assert decide(lo, hi, cmp, target, tol) == expected


def test_decide_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tolerance"):
        decide(0, 1, "~", 0, -1)
    with pytest.raises(ValueError, match="comparison"):
        decide(0, 1, "<", 0, 0)


def test_mean_ci_is_student_t():
    x = np.array([1.0, 2.0, 3.0, 4.0])
    m, lo, hi = mean_ci(x, 0.95)
    # t_{0.975, 3} = 3.182446; sd = 1.290994; half width = 3.182446 * 1.290994 / 2
    assert m == 2.5
    assert hi - m == pytest.approx(3.182446305 * 1.2909944487 / 2, rel=1e-8)
    assert m - lo == pytest.approx(hi - m)


def test_mean_ci_degenerate_inputs_are_underpowered():
    assert mean_ci([1.0])[1:] == (-math.inf, math.inf)
    assert mean_ci([1.0, np.nan])[1:] == (-math.inf, math.inf)
    c = claim("x", "one seed", [0.5], "<=", 1.0)
    assert c.verdict == "underpowered" and c.n == 1


def test_claim_verdicts_follow_the_data():
    rng = np.random.default_rng(1)
    good = 1.0 + 0.01 * rng.standard_normal(20)
    bad = 1.5 + 0.01 * rng.standard_normal(20)
    assert claim("a", "s", good, "~", 1.0, 0.05).verdict == "holds"
    assert claim("a", "s", bad, "~", 1.0, 0.05).verdict == "fails"
    assert claim("a", "s", bad, "<=", 1.0).verdict == "fails"
    assert claim("a", "s", good, "<=", 1.1).verdict == "holds"


def test_bootstrap_ci_covers_the_mean_and_is_seeded():
    x = np.arange(100.0)
    est, lo, hi = bootstrap_ci(np.mean, x, n_boot=500, seed=3)
    assert est == 49.5 and lo < 49.5 < hi
    # sd of the mean is 29.01/10 = 2.9: the 95% interval is about +-5.7
    assert 4.0 < hi - est < 7.5 and 4.0 < est - lo < 7.5
    assert bootstrap_ci(np.mean, x, n_boot=500, seed=3) == (est, lo, hi)


def test_claim_from_interval_and_frame():
    c = claim_from_interval("b.rho", "rho_diff >= 0", 0.3, 0.1, 0.5, ">=", 0.0, n=8)
    assert c.verdict == "holds" and c.method == "bootstrap"
    with pytest.raises(ValueError, match="ci_low"):
        claim_from_interval("b", "s", 0.3, 0.5, 0.1, ">=", 0.0, n=8)
    df = claims_frame([c])
    assert list(df["verdict"]) == ["holds"] and df["ci_high"].dtype == float
