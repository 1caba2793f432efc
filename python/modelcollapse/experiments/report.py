"""``modelcollapse report``: run the headline experiment of every part and write one
self-contained HTML report (figures embedded) plus a Markdown twin and a JSON summary."""
from __future__ import annotations

import base64
import html
import time
import traceback
from pathlib import Path
from typing import Any

from .._checkpoint import atomic_write_text, dumps_strict
from ..results import versions
from . import load_all
from ._registry import Experiment

PART_ORDER = ("foundation", "truncation", "hodge", "retraining", "dae")
PART_TITLES = {
    "foundation": "Foundation: exact laws and the truncated reverse sampler",
    "truncation": "Recursively trained diffusion models: the limiting collapse distribution",
    "hodge": "Diffusion models observe only gradients: Helmholtz-Hodge decomposition of score errors",
    "retraining": "Bertrand et al.: stability of iterative retraining on real + synthetic data",
    "dae": "Cui et al.: a two-layer denoising autoencoder trained by online SGD in high dimension",
}


def headline_experiments() -> dict[str, Experiment]:
    """One experiment per part: the one flagged ``headline``, else the first by name."""
    chosen: dict[str, Experiment] = {}
    for name in sorted(load_all()):
        exp = load_all()[name]
        if exp.part not in chosen or (exp.headline and not chosen[exp.part].headline):
            chosen[exp.part] = exp
    order = [p for p in PART_ORDER if p in chosen] + sorted(p for p in chosen if p not in PART_ORDER)
    return {p: chosen[p] for p in order}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)


def build_report(preset: str, out_dir: str | Path, progress: bool = False) -> dict[str, Any]:
    """Run every part's headline experiment with ``preset`` and write the report.

    Returns a dict with the paths written and, per part, the summary or the error.
    A failing experiment is reported (with its traceback) instead of aborting the report.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    sections = []
    for part, exp in headline_experiments().items():
        exp_dir = out / part
        command = f"modelcollapse run {exp.name} --preset {preset} --out {exp_dir}"
        start = time.perf_counter()
        try:
            result = exp.run(exp.make_config(preset), exp_dir, progress=progress)
            sections.append(dict(part=part, experiment=exp.name, claim=exp.claim or exp.description,
                                 command=command, summary=result.summary, error=None,
                                 figures=[str(Path(f).relative_to(out)) for f in result.figures],
                                 table=str((exp_dir / f"{exp.name}.parquet").relative_to(out)),
                                 seconds=time.perf_counter() - start))
        except Exception:  # keep going: the report says what failed and why
            sections.append(dict(part=part, experiment=exp.name, claim=exp.claim or exp.description,
                                 command=command, summary={}, figures=[], table=None,
                                 error=traceback.format_exc(), seconds=time.perf_counter() - start))
    meta = {"preset": preset, "created": time.strftime("%Y-%m-%d %H:%M:%S"), "versions": versions()}
    md_path, html_path, json_path = out / "report.md", out / "report.html", out / "report.json"
    # atomic (never half-written); strict JSON (non-finite floats as "inf" / "-inf" / "nan")
    atomic_write_text(md_path, _markdown(sections, meta))
    atomic_write_text(html_path, _html(sections, meta, out))
    atomic_write_text(json_path, dumps_strict({"meta": meta, "sections": sections}, indent=2, default=str))
    return {"markdown": md_path, "html": html_path, "json": json_path, "sections": sections}


def _markdown(sections: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    lines = ["# modelcollapse reproduction report", "",
             f"Preset `{meta['preset']}`, created {meta['created']}, "
             f"modelcollapse {meta['versions'].get('modelcollapse')}.", ""]
    for s in sections:
        title = PART_TITLES.get(s["part"], s["part"])
        lines += [f"## {title}", "", f"Experiment `{s['experiment']}`. {s['claim']}", ""]
        if s["error"]:
            lines += ["**This experiment failed:**", "", "```", s["error"].rstrip(), "```", ""]
        for fig in s["figures"]:
            lines += [f"![{s['experiment']}]({fig})", ""]
        if s["summary"]:
            lines += ["| quantity | value |", "|---|---|"]
            lines += [f"| {k} | {_fmt(v)} |" for k, v in s["summary"].items()] + [""]
        lines += ["Reproduce:", "", "```bash", s["command"], "```", f"({s['seconds']:.1f} s)", ""]
    return "\n".join(lines)


def _html(sections: list[dict[str, Any]], meta: dict[str, Any], root: Path) -> str:
    esc = html.escape
    parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>modelcollapse report</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.45}"
             "img{max-width:100%;border:1px solid #ddd}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:2px 8px}pre{background:#f6f6f6;padding:8px;overflow-x:auto}"
             ".err{color:#a00}</style></head><body>",
             "<h1>modelcollapse reproduction report</h1>",
             f"<p>Preset <code>{esc(meta['preset'])}</code>, created {esc(meta['created'])}, "
             f"modelcollapse {esc(str(meta['versions'].get('modelcollapse')))}.</p>"]
    for s in sections:
        parts.append(f"<h2>{esc(PART_TITLES.get(s['part'], s['part']))}</h2>")
        parts.append(f"<p>Experiment <code>{esc(s['experiment'])}</code>. {esc(s['claim'])}</p>")
        if s["error"]:
            parts.append(f"<p class='err'>This experiment failed:</p><pre>{esc(s['error'])}</pre>")
        for fig in s["figures"]:
            data = base64.b64encode((root / fig).read_bytes()).decode("ascii")
            parts.append(f"<p><img alt='{esc(s['experiment'])}' src='data:image/png;base64,{data}'></p>")
        if s["summary"]:
            rows = "".join(f"<tr><td>{esc(str(k))}</td><td>{esc(_fmt(v))}</td></tr>" for k, v in s["summary"].items())
            parts.append(f"<table><tr><th>quantity</th><th>value</th></tr>{rows}</table>")
        parts.append(f"<p>Reproduce ({s['seconds']:.1f} s):</p><pre>{esc(s['command'])}</pre>")
    parts.append("</body></html>")
    return "\n".join(parts)
