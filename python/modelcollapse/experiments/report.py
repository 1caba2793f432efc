"""``modelcollapse report``: run the report experiments of every part and write one
self-contained HTML report (figures embedded) plus a Markdown twin and a JSON summary.

Which experiments: per part, the headline experiment, then every experiment registered with
``report=True`` (docs/claims.md, section "Reading the report"). The report opens with the
count of claims that hold, fail or are underpowered and links to every claim that does not
hold; each experiment then shows its claims (verdict, estimate, confidence interval rounded to
what the interval supports, comparison, number of seeds), its figures, its summary numbers
and the command that reproduces it.
"""
from __future__ import annotations

import base64
import html
import math
import re
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._checkpoint import atomic_write_text, dumps_strict
from ..results import versions
from . import load_all
from ._claims import (
    VERDICTS,
    Claim,
    claim_from_dict,
    format_estimate,
    format_number,
    format_target,
    interval_decimals,
)
from ._registry import Experiment

PART_ORDER = ("foundation", "truncation", "hodge", "retraining", "dae", "atlas")
PART_TITLES = {
    "foundation": "Foundation: exact laws and the truncated reverse sampler",
    "truncation": "Recursively trained diffusion models: the limiting collapse distribution",
    "hodge": "Diffusion models observe only gradients: Helmholtz-Hodge decomposition of score errors",
    "retraining": "Bertrand et al.: stability of iterative retraining on real + synthetic data",
    "dae": "Cui et al.: a two-layer denoising autoencoder trained by online SGD in high dimension",
    "atlas": "The collapse atlas: every remedy against every learner, with theory where it exists",
}
VERDICT_COLOURS = {"holds": "#1a7f37", "fails": "#cf222e", "underpowered": "#9a6700"}
SUMMARY_LIST_MAX = 8  # longer lists in a summary are shown as their first entries and the length


def headline_experiments() -> dict[str, Experiment]:
    """One experiment per part: the one flagged ``headline``, else the first by name."""
    chosen: dict[str, Experiment] = {}
    for name in sorted(load_all()):
        exp = load_all()[name]
        if exp.part not in chosen or (exp.headline and not chosen[exp.part].headline):
            chosen[exp.part] = exp
    order = [p for p in PART_ORDER if p in chosen] + sorted(p for p in chosen if p not in PART_ORDER)
    return {p: chosen[p] for p in order}


def report_experiments(preset: str | None = None) -> dict[str, list[Experiment]]:
    """Per part (in report order): the headline experiment, then the others registered with
    ``report=True`` (or with a tuple of presets that holds ``preset``; any preset when
    ``preset`` is None), by name."""
    registry = load_all()
    out: dict[str, list[Experiment]] = {}
    for part, head in headline_experiments().items():
        extra = sorted((e for e in registry.values() if e.part == part and e.report and e is not head
                        and (preset is None or preset in e.report_presets)), key=lambda e: e.name)
        out[part] = [head, *extra]
    return out


def report_left_out(preset: str) -> list[dict[str, Any]]:
    """The report experiments that the report of ``preset`` leaves out (registered for other
    presets only, e.g. D4 at ``quick``): name, part, the presets whose report has them and the
    commands that run them; the report's header lists them."""
    heads = {e.name for e in headline_experiments().values()}
    return [{"experiment": e.name, "part": e.part, "presets": list(e.report_presets),
             "report": f"modelcollapse report --preset {e.report_presets[0]}",
             "run": f"modelcollapse run {e.name} --preset {preset}"}
            for e in sorted(load_all().values(), key=lambda e: (e.part, e.name))
            if e.report and e.name not in heads and preset not in e.report_presets]


def _left_out_text(item: Mapping[str, Any], preset: str) -> str:
    presets = ", ".join(f"`{p}`" for p in item["presets"])
    return (f"`{item['experiment']}` ({item['part']}) is in the report at {presets} only, not at `{preset}`: "
            f"`{item['report']}` includes it; `{item['run']}` runs it alone")


# ----------------------------------------------------------------------------- number formatting
def format_value(value: Any) -> str:
    """A summary value for a reader: floats to 4 significant digits, long lists shortened."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return str(v) if not math.isfinite(v) else f"{v:.4g}"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (list, tuple)):
        shown = ", ".join(format_value(v) for v in value[:SUMMARY_LIST_MAX])
        more = f", ... ({len(value)} values)" if len(value) > SUMMARY_LIST_MAX else ""
        return f"[{shown}{more}]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _is_records(value: Any) -> bool:
    """A list of dicts: a table with named columns (e.g. one row per setting)."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, Mapping) for v in value)


def summary_rows(summary: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """``(quantity, value)`` rows of a summary; nested dicts become dotted names. Lists of
    dicts are tables of their own (:func:`summary_tables`) and are left out here."""
    rows: list[tuple[str, str]] = []
    for key, value in summary.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            rows += summary_rows(value, f"{name}.")
        elif not _is_records(value):
            rows.append((name, format_value(value)))
    return rows


def _record_cells(record: Mapping[str, Any], columns: Sequence[str]) -> list[str]:
    """A record's cells. With ``ci_low``/``ci_high`` the column before the interval is the
    estimate: it and the numbers after it are rounded to two significant digits of the
    interval's width (as a claim's, docs/claims.md), the columns before it are the setting
    (4 significant digits), and the two bounds are one ``95% CI`` cell."""
    lo, hi = record.get("ci_low"), record.get("ci_high")
    decimals = interval_decimals(lo, hi) if lo is not None and hi is not None else None
    first = columns.index("95% CI") - 1 if "95% CI" in columns else len(columns)
    cells = []
    for i, col in enumerate(columns):
        if col == "95% CI":
            cells.append("" if lo is None or hi is None else
                         f"[{format_number(lo, decimals)}, {format_number(hi, decimals)}]")
            continue
        v = record.get(col, "")
        real = isinstance(v, (float, np.floating)) and not isinstance(v, bool)
        rounded = real and decimals is not None and i >= first
        cells.append(format_number(v, decimals) if rounded else format_value(v))
    return cells


def summary_tables(summary: Mapping[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The summary as tables ``(title, columns, rows)`` of display strings: first the scalar
    entries as ``quantity | value`` (:func:`summary_rows`), then one table per list of records
    (a list of dicts, its keys the columns; ``ci_low``/``ci_high`` become one ``95% CI`` column
    and set the rounding of the row)."""
    tables: list[tuple[str, list[str], list[list[str]]]] = []
    rows = summary_rows(summary)
    if rows:
        tables.append(("", ["quantity", "value"], [[k, v] for k, v in rows]))

    def collect(mapping: Mapping[str, Any], prefix: str = "") -> None:
        for key, value in mapping.items():
            if isinstance(value, Mapping):
                collect(value, f"{prefix}{key}.")
            elif _is_records(value):
                columns: list[str] = []
                for rec in value:
                    columns += [c for c in rec if c not in columns]
                if "ci_low" in columns and "ci_high" in columns:
                    at = columns.index("ci_low")
                    columns = [c for c in columns if c not in ("ci_low", "ci_high")]
                    columns.insert(at, "95% CI")
                tables.append((f"{prefix}{key}", columns, [_record_cells(r, columns) for r in value]))

    collect(summary)
    return tables


def summary_text(summary: Mapping[str, Any]) -> list[str]:
    """The summary tables as aligned plain-text lines (the ``run`` command prints them)."""
    lines: list[str] = []
    for name, columns, rows in summary_tables(summary):
        widths = [max(len(str(x)) for x in [c, *(r[i] for r in rows)]) for i, c in enumerate(columns)]
        if name:
            lines.append(f"{name}:")
        for row in [columns, *rows]:
            lines.append(("  " + "  ".join(f"{cell:<{w}}" for cell, w in zip(row, widths))).rstrip())
    return lines


def _anchor(text: str) -> str:
    return "claim-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", text)


def _exp_anchor(name: str) -> str:
    return "exp-" + re.sub(r"[^A-Za-z0-9_.-]+", "-", name)


# ----------------------------------------------------------------------------- running
def _run_section(part: str, exp: Experiment, preset: str, out: Path, progress: bool) -> dict[str, Any]:
    exp_dir = out / part if exp.headline else out / part / exp.name
    command = f"modelcollapse run {exp.name} --preset {preset} --out {exp_dir}"
    base = dict(part=part, experiment=exp.name, claim=exp.claim or exp.description, command=command)
    start = time.perf_counter()
    try:
        result = exp.run(exp.make_config(preset), exp_dir, progress=progress)
        return dict(base, summary=result.summary, error=None, claims=[c.to_dict() for c in result.claims],
                    figures=[str(Path(f).relative_to(out)) for f in result.figures],
                    table=str((exp_dir / f"{exp.name}.parquet").relative_to(out)),
                    seconds=time.perf_counter() - start)
    except Exception:  # keep going: the report says what failed and why
        return dict(base, summary={}, figures=[], table=None, claims=[], error=traceback.format_exc(),
                    seconds=time.perf_counter() - start)


def build_report(preset: str, out_dir: str | Path, progress: bool = False, *,
                 experiments: Mapping[str, Sequence[Experiment]] | None = None) -> dict[str, Any]:
    """Run every part's report experiments with ``preset`` and write the report.

    Parameters
    ----------
    preset : str
        Preset of every experiment (``quick``, ``default``, ``paper``).
    out_dir : str or Path
        Output folder: ``report.html``, ``report.md``, ``report.json`` and one folder per part.
    progress : bool
        Progress bars.
    experiments : mapping part -> experiments, optional
        What to run; default :func:`report_experiments` of ``preset`` (the header names those
        left out at this preset, :func:`report_left_out`).

    Returns
    -------
    dict
        The paths written, the sections (per experiment: summary, claims or error), the
        verdict counts and the report experiments left out at this preset. A failing
        experiment is reported (with its traceback) instead of aborting the report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plan = report_experiments(preset) if experiments is None else experiments
    sections = [_run_section(part, exp, preset, out, progress) for part, exps in plan.items() for exp in exps]
    meta = {"preset": preset, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "versions": versions(),
            "counts": _counts(sections), "left_out": report_left_out(preset) if experiments is None else []}
    md_path, html_path, json_path = out / "report.md", out / "report.html", out / "report.json"
    # atomic (never half-written); strict JSON (non-finite floats as "inf" / "-inf" / "nan")
    atomic_write_text(md_path, render_markdown(sections, meta))
    atomic_write_text(html_path, render_html(sections, meta, out))
    atomic_write_text(json_path, dumps_strict({"meta": meta, "sections": sections}, indent=2, default=str))
    return {"markdown": md_path, "html": html_path, "json": json_path, "sections": sections,
            "counts": meta["counts"], "left_out": meta["left_out"]}


def _claims_of(section: Mapping[str, Any]) -> list[Claim]:
    return [c if isinstance(c, Claim) else claim_from_dict(c) for c in section.get("claims", [])]


def _counts(sections: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    claims = [c for s in sections for c in _claims_of(s)]
    counts = {v: sum(c.verdict == v for c in claims) for v in VERDICTS}
    counts["experiments failed"] = sum(1 for s in sections if s.get("error"))
    counts["experiments without claims"] = sum(1 for s in sections if not s.get("error") and not s.get("claims"))
    return counts


def _grouped(sections: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    parts: dict[str, list[Mapping[str, Any]]] = {}
    for s in sections:
        parts.setdefault(s["part"], []).append(s)
    return parts


def _not_holding(sections: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Claim]]:
    order = {"fails": 0, "underpowered": 1}
    rows = [(s, c) for s in sections for c in _claims_of(s) if c.verdict != "holds"]
    return sorted(rows, key=lambda sc: order.get(sc[1].verdict, 2))


# ----------------------------------------------------------------------------- Markdown
def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_claims(claims: Sequence[Claim]) -> list[str]:
    lines = ["| verdict | claim | estimate | 95% CI | held to | n | interval |", "|---|---|---|---|---|---|---|"]
    for c in claims:
        est, ci = format_estimate(c)
        verdict = f"**{c.verdict.upper()}**" if c.verdict != "holds" else c.verdict
        lines.append(f"| <a id=\"{_anchor(c.name)}\"></a>{verdict} | `{c.name}`: {_md_cell(c.statement)} | {est} "
                     f"| {ci} | {_md_cell(format_target(c, pm='±'))} | {c.n} | {_md_cell(c.method)} |")
    details = [f"* `{c.name}`: {_md_cell(c.detail)}" for c in claims if c.detail]
    return lines + ([""] + ["Tolerances and details:", ""] + details if details else []) + [""]


def render_markdown(sections: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """The Markdown report of :func:`build_report`'s sections."""
    counts = meta.get("counts") or _counts(sections)
    lines = ["# modelcollapse reproduction report", "",
             f"Preset `{meta['preset']}`, created {meta['created']}, "
             f"modelcollapse {meta['versions'].get('modelcollapse')}.", "",
             *[f"Not in this report: {_left_out_text(item, meta['preset'])}.\n" for item in meta.get("left_out", [])],
             "## Claims at a glance", "",
             "Every claim is a statistic over independent seeds with a 95% confidence interval, held to a "
             "comparison with a stated tolerance (docs/claims.md): **holds** when the whole interval satisfies it, "
             "**fails** when the whole interval violates it, **underpowered** when the run is too small to tell.", "",
             "| holds | fails | underpowered | experiments failed | experiments without claims |",
             "|---|---|---|---|---|",
             f"| {counts['holds']} | {counts['fails']} | {counts['underpowered']} | {counts['experiments failed']} "
             f"| {counts['experiments without claims']} |", ""]
    for s, c in _not_holding(sections):
        est, ci = format_estimate(c)
        lines.append(f"* **{c.verdict}**: [`{c.name}`](#{_anchor(c.name)}) ({s['experiment']}): {est} {ci} "
                     f"{format_target(c, pm='±')}")
    for s in sections:
        if s.get("error"):
            lines.append(f"* **experiment failed**: [`{s['experiment']}`](#{_exp_anchor(s['experiment'])})")
        elif not s.get("claims"):
            lines.append(f"* no claims: [`{s['experiment']}`](#{_exp_anchor(s['experiment'])})")
    lines.append("")
    for part, group in _grouped(sections).items():
        lines += [f"## {PART_TITLES.get(part, part)}", ""]
        for s in group:
            lines += [f"### <a id=\"{_exp_anchor(s['experiment'])}\"></a>Experiment `{s['experiment']}`", "",
                      str(s["claim"]), ""]
            if s.get("error"):
                lines += ["**This experiment failed:**", "", "```", s["error"].rstrip(), "```", ""]
            claims = _claims_of(s)
            if claims:
                lines += _md_claims(claims)
            elif not s.get("error"):
                lines += ["*This experiment declares no claims.*", ""]
            for fig in s.get("figures", []):   # click: the full-size PNG
                lines += [f"[![{s['experiment']}: {Path(fig).name}]({fig})]({fig})", ""]
            for name, columns, rows in summary_tables(s.get("summary") or {}):
                lines += [f"*{_md_cell(name)}*", ""] if name else []
                lines += ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
                lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in rows] + [""]
            lines += ["Reproduce:", "", "```bash", s["command"], "```", f"({s['seconds']:.1f} s)", ""]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- HTML
def _html_code(text: str) -> str:
    """Markdown-style `code` spans of ``text`` as HTML (the rest escaped)."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text))


def _html_verdict(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#444")
    return f"<span class='verdict {html.escape(verdict)}' style='color:{colour}'>{html.escape(verdict)}</span>"


def _html_claims(claims: Sequence[Claim]) -> str:
    esc = html.escape
    rows = []
    for c in claims:
        est, ci = format_estimate(c)
        detail = f"<br><small>{esc(c.detail)}</small>" if c.detail else ""
        rows.append(f"<tr id='{esc(_anchor(c.name))}' class='{esc(c.verdict)}'><td>{_html_verdict(c.verdict)}</td>"
                    f"<td><code>{esc(c.name)}</code>: {esc(c.statement)}{detail}</td><td>{esc(est)}</td>"
                    f"<td>{esc(ci)}</td><td>{esc(format_target(c, pm='±'))}</td><td>{c.n}</td>"
                    f"<td>{esc(c.method)}</td></tr>")
    return ("<table class='claims'><tr><th>verdict</th><th>claim</th><th>estimate</th><th>95% CI</th>"
            "<th>held to</th><th>n</th><th>interval</th></tr>" + "".join(rows) + "</table>")


def render_html(sections: Sequence[Mapping[str, Any]], meta: Mapping[str, Any], root: Path) -> str:
    """The self-contained HTML report (figures under ``root`` embedded)."""
    esc = html.escape
    counts = meta.get("counts") or _counts(sections)
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>modelcollapse report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
             "img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption{color:#555;font-size:90%}"
             "caption{text-align:left;font-style:italic}table{border-collapse:collapse;margin:0.5em 0}"
             "td,th{border:1px solid #ccc;padding:2px 8px;vertical-align:top}"
             "pre{background:#f6f6f6;padding:8px;overflow-x:auto}.err{color:#a00}.verdict{font-weight:bold}"
             "tr.fails{background:#ffebe9}tr.underpowered{background:#fff8c5}small{color:#555}</style></head><body>",
             "<h1>modelcollapse reproduction report</h1>",
             f"<p>Preset <code>{esc(meta['preset'])}</code>, created {esc(meta['created'])}, "
             f"modelcollapse {esc(str(meta['versions'].get('modelcollapse')))}.</p>",
             *[f"<p class='left-out'>Not in this report: {_html_code(_left_out_text(item, meta['preset']))}.</p>"
               for item in meta.get("left_out", [])],
             "<h2>Claims at a glance</h2>",
             "<p>Every claim is a statistic over independent seeds with a 95% confidence interval, held to a "
             "comparison with a stated tolerance (docs/claims.md): <b>holds</b> when the whole interval satisfies "
             "it, <b>fails</b> when the whole interval violates it, <b>underpowered</b> when the run is too small "
             "to tell.</p>",
             "<table class='counts'><tr>" + "".join(f"<th>{esc(k)}</th>" for k in counts) + "</tr><tr>"
             + "".join(f"<td>{_html_verdict(k) if k in VERDICTS else ''} {v}</td>" for k, v in counts.items())
             + "</tr></table>"]
    items = []
    for s, c in _not_holding(sections):
        est, ci = format_estimate(c)
        items.append(f"<li>{_html_verdict(c.verdict)}: <a href='#{esc(_anchor(c.name))}'><code>{esc(c.name)}</code>"
                     f"</a> ({esc(s['experiment'])}): {esc(est)} {esc(ci)} {esc(format_target(c, pm='±'))}</li>")
    for s in sections:
        link = f"<a href='#{esc(_exp_anchor(s['experiment']))}'><code>{esc(s['experiment'])}</code></a>"
        if s.get("error"):
            items.append(f"<li class='err'>experiment failed: {link}</li>")
        elif not s.get("claims"):
            items.append(f"<li>no claims: {link}</li>")
    if items:
        parts.append("<ul>" + "".join(items) + "</ul>")
    for part, group in _grouped(sections).items():
        parts.append(f"<h2>{esc(PART_TITLES.get(part, part))}</h2>")
        for s in group:
            parts.append(f"<h3 id='{esc(_exp_anchor(s['experiment']))}'>Experiment <code>{esc(s['experiment'])}"
                         f"</code></h3><p>{esc(str(s['claim']))}</p>")
            if s.get("error"):
                parts.append(f"<p class='err'>This experiment failed:</p><pre>{esc(s['error'])}</pre>")
            claims = _claims_of(s)
            if claims:
                parts.append(_html_claims(claims))
            elif not s.get("error"):
                parts.append("<p><i>This experiment declares no claims.</i></p>")
            for fig in s.get("figures", []):   # embedded; a click opens the full-size PNG next to the report
                data = base64.b64encode((root / fig).read_bytes()).decode("ascii")
                parts.append(f"<figure><a href='{esc(fig)}' title='open the full-size figure'><img alt='"
                             f"{esc(s['experiment'])}: {esc(Path(fig).name)}' src='data:image/png;base64,{data}'></a>"
                             f"<figcaption>{esc(Path(fig).name)} (click to enlarge)</figcaption></figure>")
            for name, columns, rows in summary_tables(s.get("summary") or {}):
                head = "".join(f"<th>{esc(c)}</th>" for c in columns)
                body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows)
                caption = f"<caption>{esc(name)}</caption>" if name else ""
                parts.append(f"<table class='summary'>{caption}<tr>{head}</tr>{body}</table>")
            parts.append(f"<p>Reproduce ({s['seconds']:.1f} s):</p><pre>{esc(s['command'])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
