"""Claims: what an experiment says, as named statements checked against measurements.

Every sentence an experiment or the report states about its results is a :class:`Claim`:
a statistic estimated over an ensemble of seeds (or with a bootstrap), its confidence
interval, the comparison it is held to, a tolerance that says how far from the target the
statement still counts as true, and a verdict (docs/claims.md):

``holds``
    the whole confidence interval lies where the statement is true;
``fails``
    the whole confidence interval lies where the statement is false;
``underpowered``
    the interval straddles the boundary: the run is too small to decide, and says so.

For an agreement claim (``estimate ~ target`` within ``tolerance``) this is a two one-sided
test (TOST) at the interval's level: ``holds`` needs the interval inside
``[target - tolerance, target + tolerance]``, ``fails`` needs it outside. A tolerance of 0
can never hold, so a tolerance must be chosen and its derivation stated in ``detail``
(for example three standard errors of the theory's own Monte Carlo noise, or the size of a
deviation that would change the scientific conclusion).
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

Verdict = Literal["holds", "fails", "underpowered"]
Comparison = Literal["<=", ">=", "~"]
VERDICTS: tuple[str, ...] = ("holds", "fails", "underpowered")


@dataclasses.dataclass(frozen=True)
class Claim:
    """One checked statement: estimate, confidence interval, comparison and verdict.

    Attributes
    ----------
    name : str
        Short stable identifier, e.g. ``"demo.sampler_tracks_exact_laws"``.
    statement : str
        The sentence as a reader sees it, with the comparison written out.
    estimate : float
        Point estimate of the statistic (mean over seeds unless ``method`` says otherwise).
    ci_low, ci_high : float
        Confidence interval of the statistic at level ``level``.
    comparison : {"<=", ">=", "~"}
        ``"<="``: statistic at most ``target + tolerance``; ``">="``: at least
        ``target - tolerance``; ``"~"``: within ``tolerance`` of ``target``.
    target : float
        The theoretical value, bound or threshold.
    tolerance : float
        The slack the statement allows (>= 0), derivation in ``detail``.
    verdict : {"holds", "fails", "underpowered"}
    n : int
        Number of independent replicates (seeds, or bootstrap samples' source size).
    level : float
        Confidence level of the interval.
    method : str
        How the interval was made (``"t over seeds"``, ``"bootstrap"``, ...).
    detail : str
        Where the tolerance comes from, and anything a reviewer should know.
    """

    name: str
    statement: str
    estimate: float
    ci_low: float
    ci_high: float
    comparison: Comparison
    target: float
    tolerance: float
    verdict: Verdict
    n: int
    level: float = 0.95
    method: str = "t over seeds"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_interval(estimate: float, ci_low: float, ci_high: float) -> None:
    if not all(math.isfinite(v) for v in (estimate, ci_low, ci_high)):
        return  # a non-finite interval gives "underpowered" below, never a silent "holds"
    if ci_low > ci_high:
        raise ValueError(f"ci_low ({ci_low}) must be <= ci_high ({ci_high})")


def decide(ci_low: float, ci_high: float, comparison: Comparison, target: float, tolerance: float) -> Verdict:
    """The verdict of an interval against a comparison (see the module docstring)."""
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be finite and >= 0, got {tolerance}")
    if comparison not in ("<=", ">=", "~"):
        raise ValueError(f"comparison must be '<=', '>=' or '~', got {comparison!r}")
    if not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return "underpowered"
    if comparison == "<=":
        bound = target + tolerance
        return "holds" if ci_high <= bound else "fails" if ci_low > bound else "underpowered"
    if comparison == ">=":
        bound = target - tolerance
        return "holds" if ci_low >= bound else "fails" if ci_high < bound else "underpowered"
    lo, hi = target - tolerance, target + tolerance
    if lo <= ci_low and ci_high <= hi:
        return "holds"
    if ci_high < lo or ci_low > hi:
        return "fails"
    return "underpowered"


def mean_ci(values: Sequence[float] | np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval of independent replicates.

    Returns ``(mean, low, high)``; with fewer than two finite values the interval is
    ``(-inf, inf)`` (so any claim built on it is ``underpowered``).
    """
    x = np.asarray(values, dtype=float).ravel()
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if x.size == 0 or not np.all(np.isfinite(x)):
        return (float("nan"), -math.inf, math.inf)
    m = float(x.mean())
    if x.size < 2:
        return (m, -math.inf, math.inf)
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return (m, m - half, m + half)


def mean_ci_fields(values: Sequence[float] | np.ndarray, estimate: str = "mean") -> dict[str, float | None]:
    """``{estimate: mean, "ci_low": ..., "ci_high": ...}`` of :func:`mean_ci`, the bounds None when
    there is no interval (fewer than two replicates): a row of a summary table, whose
    ``ci_low``/``ci_high`` become one ``95% CI`` column that sets the row's rounding."""
    m, lo, hi = mean_ci(values)
    finite = math.isfinite(lo) and math.isfinite(hi)
    return {estimate: m, "ci_low": lo if finite else None, "ci_high": hi if finite else None}


def bootstrap_ci(statistic: Callable[[np.ndarray], float], data: np.ndarray, *, n_boot: int = 2000,
                 level: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Percentile bootstrap: ``(statistic(data), low, high)``, resampling rows of ``data``."""
    arr = np.asarray(data)
    if arr.shape[0] < 2:
        raise ValueError(f"data needs at least 2 rows for a bootstrap, got {arr.shape[0]}")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.shape[0], size=(n_boot, arr.shape[0]))
    boots = np.array([statistic(arr[i]) for i in idx], dtype=float)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(boots[np.isfinite(boots)], [alpha, 1 - alpha]) if np.isfinite(boots).any() \
        else (-math.inf, math.inf)
    return (float(statistic(arr)), float(lo), float(hi))


def claim(name: str, statement: str, values: Sequence[float] | np.ndarray, comparison: Comparison,
          target: float, tolerance: float = 0.0, *, level: float = 0.95, detail: str = "") -> Claim:
    """A claim about the mean of per-seed values, with a Student-t interval over seeds.

    Parameters
    ----------
    name, statement : str
        Identifier and human sentence.
    values : array_like
        One value of the statistic per independent seed.
    comparison : {"<=", ">=", "~"}
    target : float
        Theory value or bound.
    tolerance : float
        Allowed slack (>= 0); for ``"~"`` it must be positive for the claim to be able to hold.
    level : float
        Confidence level.
    detail : str
        The derivation of the tolerance.

    Examples
    --------
    >>> c = claim("demo.mean_is_one", "the mean is 1 within 0.1", [0.98, 1.01, 1.02, 0.99, 1.0],
    ...           "~", 1.0, 0.1)
    >>> c.verdict
    'holds'
    """
    x = np.asarray(values, dtype=float).ravel()
    est, lo, hi = mean_ci(x, level)
    return Claim(name, statement, est, lo, hi, comparison, float(target), float(tolerance),
                 decide(lo, hi, comparison, target, tolerance), int(x.size), level, "t over seeds", detail)


def claim_from_interval(name: str, statement: str, estimate: float, ci_low: float, ci_high: float,
                        comparison: Comparison, target: float, tolerance: float = 0.0, *, n: int,
                        level: float = 0.95, method: str = "bootstrap", detail: str = "") -> Claim:
    """A claim from an interval computed elsewhere (bootstrap, exact binomial, ...)."""
    _check_interval(estimate, ci_low, ci_high)
    return Claim(name, statement, float(estimate), float(ci_low), float(ci_high), comparison, float(target),
                 float(tolerance), decide(ci_low, ci_high, comparison, target, tolerance), int(n), level,
                 method, detail)


def claims_frame(claims: Sequence[Claim]) -> pd.DataFrame:
    """One row per claim, columns in :class:`Claim`'s field order."""
    cols = [f.name for f in dataclasses.fields(Claim)]
    return pd.DataFrame([c.to_dict() for c in claims], columns=cols)


def claim_from_dict(d: dict[str, Any]) -> Claim:
    """Rebuild a :class:`Claim` from :meth:`Claim.to_dict` output (a sidecar entry or a
    Parquet row); unknown keys are ignored, so later fields do not break old readers."""
    names = {f.name for f in dataclasses.fields(Claim)}
    missing = [k for k in ("name", "statement", "estimate", "ci_low", "ci_high", "comparison", "target",
                           "tolerance", "verdict", "n") if k not in d]
    if missing:
        raise ValueError(f"claim record lacks {', '.join(missing)}")
    kw = {k: v for k, v in d.items() if k in names}
    for k in ("estimate", "ci_low", "ci_high", "target", "tolerance", "level"):
        if k in kw:
            kw[k] = float(kw[k])
    kw["n"] = int(kw["n"])
    return Claim(**kw)


def interval_decimals(low: float, high: float) -> int | None:
    """Decimals an interval ``[low, high]`` supports: two significant digits of its width.

    ``None`` when the interval is infinite or empty (then numbers get 4 significant digits).
    Negative for wide intervals (-1: round to tens).
    """
    width = float(high) - float(low)
    if not math.isfinite(width) or width <= 0:
        return None
    return 1 - int(math.floor(math.log10(width)))


def claim_decimals(c: Claim) -> int | None:
    """Decimals a claim's interval supports (:func:`interval_decimals` of its CI)."""
    return interval_decimals(c.ci_low, c.ci_high)


def format_number(value: float, decimals: int | None) -> str:
    """``value`` rounded to ``decimals`` places (see :func:`claim_decimals`); ``inf``, ``-inf``
    and ``nan`` as such; scientific notation when fixed point would need more than 6 decimals
    or the value is 1e6 or more."""
    v = float(value)
    if not math.isfinite(v):
        return str(v)
    if decimals is None:
        return f"{v:.4g}"
    if v == 0:
        return "0"
    mag = int(math.floor(math.log10(abs(v))))
    if decimals > 6 or mag >= 6:
        sig = max(1, mag + decimals + 1)
        return f"{v:.{sig - 1}e}"
    text = f"{round(v, decimals):.0f}" if decimals <= 0 else f"{v:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text  # no "-0.000"


def format_estimate(c: Claim) -> tuple[str, str]:
    """``("estimate", "[low, high]")`` rounded to what the interval supports."""
    d = claim_decimals(c)
    return format_number(c.estimate, d), f"[{format_number(c.ci_low, d)}, {format_number(c.ci_high, d)}]"


def format_target(c: Claim, pm: str = "+-") -> str:
    """The comparison as written: ``"~ 1 +- 0.05"``, ``"<= 0.25"``, ``">= 0 - 0.1"`` (target and
    tolerance are inputs, not estimates: 3 significant digits; ``pm`` spells plus-minus)."""
    if c.comparison == "~":
        return f"~ {c.target:.3g} {pm} {c.tolerance:.3g}"
    if not c.tolerance:
        return f"{c.comparison} {c.target:.3g}"
    sign = "+" if c.comparison == "<=" else "-"
    return f"{c.comparison} {c.target:.3g} {sign} {c.tolerance:.3g}"


def format_claim(c: Claim) -> str:
    """One readable line, verdict first: ``[holds] statement: estimate [CI] ~ target +- tol
    (n=5, t over seeds)``, the estimate and CI rounded to two significant digits of the CI width.

    Examples
    --------
    >>> c = claim("demo.mean_is_one", "the mean is 1 within 0.1", [0.98, 1.01, 1.02, 0.99, 1.0], "~", 1.0, 0.1)
    >>> format_claim(c)
    '[holds] demo.mean_is_one: the mean is 1 within 0.1: 1.000 [0.980, 1.020] ~ 1 +- 0.1 (n=5, t over seeds)'
    """
    est, ci = format_estimate(c)
    return f"[{c.verdict}] {c.name}: {c.statement}: {est} {ci} {format_target(c)} (n={c.n}, {c.method})"


def load_claims(path: str | Path) -> dict[Path, list[Claim]]:
    """The saved claims under ``path``, per file, without running anything.

    ``path`` is a results folder (searched recursively, so a report or sweep folder works),
    a ``<name>_claims.parquet`` file or a ``<name>.json`` sidecar. A folder's
    ``<name>_claims.parquet`` files are read; a sidecar whose claims have no Parquet twin
    is read too (non-finite bounds come back as floats either way).
    """
    from ..results import load_sidecar

    root = Path(path)
    if not root.exists():
        raise ValueError(f"path {str(root)!r} does not exist")
    if root.is_file():
        files = [root]
    else:
        files = sorted(root.rglob("*_claims.parquet"))
        covered = {f.with_name(f.name[: -len("_claims.parquet")] + ".json") for f in files}
        files += [f for f in sorted(root.rglob("*.json")) if f not in covered]
    out: dict[Path, list[Claim]] = {}
    for f in files:
        if f.name.endswith("_claims.parquet"):
            records = pd.read_parquet(f).to_dict("records")
        elif f.suffix == ".json":
            try:
                side = load_sidecar(f)
            except (ValueError, UnicodeDecodeError):
                if root.is_file():
                    raise ValueError(f"{f} is not a JSON sidecar") from None
                continue  # some other JSON file in the folder
            records = side.get("claims", []) if isinstance(side, dict) else []
        else:
            raise ValueError(f"path must be a folder, a *_claims.parquet file or a JSON sidecar, got {str(f)!r}")
        if records:
            out[f] = [claim_from_dict(r) for r in records]
    return out


def verdict_counts(claims: Sequence[Claim]) -> dict[str, int]:
    """``{"holds": ., "fails": ., "underpowered": .}`` for a list of claims."""
    return {v: sum(c.verdict == v for c in claims) for v in VERDICTS}


__all__ = ["Claim", "Verdict", "Comparison", "VERDICTS", "decide", "mean_ci", "bootstrap_ci", "claim",
           "claim_from_interval", "claims_frame", "claim_from_dict", "claim_decimals", "interval_decimals", "format_number",
           "format_estimate", "format_target", "format_claim", "load_claims", "verdict_counts"]
