"""Figures legible at the report's column width, summaries as tables, settings with help (issue 15).

The figure checks run real figure code (a tiny demo run, a tiny retraining-gaussian run and the
neural-retraining figure functions on synthetic samples) with a hook on ``Figure.savefig`` that
applies :func:`modelcollapse.experiments._plotting.figure_problems` to every figure saved.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from modelcollapse.experiments import load_all
from modelcollapse.experiments._plotting import MAX_WIDTH_PX, figure_problems, panels, pyplot
from modelcollapse.experiments.report import summary_tables, summary_text


def _png_width(path) -> int:
    with open(path, "rb") as fh:
        head = fh.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big")


@pytest.fixture
def figure_hook(monkeypatch):
    """Every figure saved while the test runs: its problems (figure_problems), by figure title."""
    found: dict[str, list[str]] = {}
    original = Figure.savefig

    def hook(self, *args, **kwargs):
        name = self._suptitle.get_text()[:60] if self._suptitle is not None else f"figure {len(found)}"
        found[name] = figure_problems(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", hook)
    return found


def test_experiment_figures_have_labels_fitting_titles_and_report_width(tmp_path, figure_hook):
    """Kills (checked): a panel's axis labels dropped (demo's ``ax.set(xlabel="x1", ylabel="x2")``),
    a 5-panel figure on one row (``panels(5, ncols=5)``: 1900 px), a title left unwrapped."""
    from modelcollapse.experiments import retraining_neural as rn

    reg = load_all()
    figures = []
    for name, over in (("demo", dict(rounds=2, n_samples=300, steps=20, n_seeds=2)),
                       ("retraining-gaussian", dict(n_chains=100, rounds=8, seeds=2, contraction_rounds=4))):
        exp = reg[name]
        figures += exp.run_fn(exp.make_config("quick", over), tmp_path, False).figures
    cfg = rn.NeuralRetrainingConfig()   # default: 2 synthetic ratios x 5 rounds + the real data = 11 panels
    rng = np.random.default_rng(0)
    real = rng.normal(size=(400, 2))
    dens = {lam: {r: rng.normal(size=(400, 2)) * (1 - 0.05 * r) for r in range(cfg.rounds + 1)}
            for lam in cfg.density_ratios}
    table = pd.DataFrame([dict(metric=m, synthetic_ratio=lam, round=r, value=float(rng.random()))
                          for m in ("w1", "w2", "precision", "recall", "std", "param_distance")
                          for lam in (0.5, math.inf) for r in range(4) for _ in range(2)])
    figures += [rn._plot_densities("ddpm", cfg, dens, real, tmp_path), rn._plot_metrics("ddpm", table, tmp_path)]
    assert len(figure_hook) == len(figures) == 4
    assert {k: v for k, v in figure_hook.items() if v} == {}
    for f in figures:
        assert _png_width(f) <= MAX_WIDTH_PX, f


def test_figure_problems_flags_what_the_report_cannot_show():
    fig, axes = panels(2)
    axes[0].plot([0, 1], [0, 1])
    axes[0].set_xlabel("x")                                      # no y label
    axes[1].plot([0, 1], [0, 1])
    axes[1].set(xlabel="x", ylabel="y", title="a title far too long for its panel " * 3)
    problems = figure_problems(fig)
    assert any("panel 0" in p and "no y label" in p for p in problems)
    assert any("panel 1" in p and "title is" in p for p in problems)
    assert any("px wide" in p for p in figure_problems(pyplot().figure(figsize=(20, 3))))
    fig, (ax,) = panels(1)
    ax.plot([0, 1], [0, 1])
    ax.set(xlabel="x", ylabel="y", title="short")
    assert figure_problems(fig) == []
    pyplot().close("all")


def test_summary_records_are_tables_with_named_columns_rounded_to_the_interval():
    """Kills (checked): CI rounding applied to the setting columns (a, delta) too, or not at all."""
    summary = {"n": 3, "rates": [
        {"distance": "W2", "a": 0.1, "delta": 0.2, "fitted rate": 0.71054321, "ci_low": 0.70123, "ci_high": 0.72011,
         "sharp rate": 0.7368063, "bound": 0.77709},
        {"distance": "TV", "a": 0.5, "delta": 0.01, "fitted rate": 0.4781, "ci_low": 0.4769, "ci_high": 0.4793,
         "sharp rate": 0.495, "bound": 0.5}]}
    tables = summary_tables(summary)
    assert tables[0] == ("", ["quantity", "value"], [["n", "3"]])
    name, columns, rows = tables[1]
    assert name == "rates"
    assert columns == ["distance", "a", "delta", "fitted rate", "95% CI", "sharp rate", "bound"]
    assert rows[0] == ["W2", "0.1", "0.2", "0.711", "[0.701, 0.720]", "0.737", "0.777"]   # CI width 0.019: 3 decimals
    assert rows[1] == ["TV", "0.5", "0.01", "0.4781", "[0.4769, 0.4793]", "0.4950", "0.5000"]
    text = "\n".join(summary_text(summary))
    assert "rates:" in text and "0.71054321" not in text and "[0.701, 0.720]" in text


def test_every_setting_of_every_experiment_has_help():
    """``modelcollapse show NAME`` explains every key. Kills (checked): one field's comment deleted."""
    missing = [(name, row["key"]) for name, exp in sorted(load_all().items())
               for row in exp.describe("quick") if not row["help"].strip()]
    assert missing == []
