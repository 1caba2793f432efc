"""The one place the experiments get matplotlib from, lay out and save figures with.

Figures are drawn off-screen (the Agg backend: experiments run on servers and in workers
without a display) and saved atomically, like every other result file, so an interrupted
run never leaves a truncated PNG.

One style for every figure (docs/claims.md, section "Reading the report"): the report shows
a figure in a column about 1100 px wide, so a figure is at most :data:`MAX_COLS` panels of
:data:`PANEL_SIZE` inches per row (:func:`panels` wraps longer rows), saved at :data:`DPI`
(at most :data:`MAX_WIDTH_PX` pixels wide), with fonts (:data:`STYLE`) that stay readable at
that width. :func:`figure_problems` lists what makes a figure unreadable (an axis without a
label, a title wider than its panel, overlapping titles); the tests run it on every figure.
"""
from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._checkpoint import atomic_file

#: Font sizes (points) and defaults shared by every figure.
STYLE: dict[str, Any] = {
    "font.size": 10, "axes.titlesize": 10, "axes.labelsize": 10, "xtick.labelsize": 9, "ytick.labelsize": 9,
    "legend.fontsize": 8, "figure.titlesize": 11, "legend.framealpha": 0.85, "axes.grid": False,
    "savefig.dpi": 100, "figure.dpi": 100,
}
#: Panels per row: three 3.8-inch panels at 100 dpi fill the report's column.
MAX_COLS = 3
#: Size (width, height) of one panel in inches.
PANEL_SIZE = (3.8, 3.0)
#: Resolution of the saved PNGs.
DPI = 100
#: Widest figure (pixels) the report column shows without shrinking the fonts below ~8 px.
MAX_WIDTH_PX = 1250


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the off-screen Agg backend with :data:`STYLE` (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rc: Any = plt.rcParams   # typed with a closed set of keys; STYLE's are among them
    rc.update(STYLE)
    return plt


def panels(n: int, *, ncols: int | None = None, size: tuple[float, float] = PANEL_SIZE, title: str | None = None,
           **kwargs: Any) -> tuple[Any, list[Any]]:
    """A figure of ``n`` panels wrapped to at most ``ncols`` (default :data:`MAX_COLS`) per row.

    Parameters
    ----------
    n : int
        Number of panels (>= 1).
    ncols : int, optional
        Panels per row, at most :data:`MAX_COLS`.
    size : (float, float)
        Width and height of one panel in inches.
    title : str, optional
        The figure's caption-like title (what is compared), wrapped to the figure's width.
    **kwargs
        Passed to ``plt.subplots`` (``sharex``, ``sharey``, ...).

    Returns
    -------
    (Figure, list of Axes)
        The figure (constrained layout: titles, labels and colorbars get their space) and its
        ``n`` panels in reading order; the unused cells of the last row are removed.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    cols = min(n, ncols or MAX_COLS, MAX_COLS)
    rows = math.ceil(n / cols)
    plt = pyplot()
    # the figure title gets its own height, so the panels keep theirs
    lines = wrap(title, 0.95 * size[0] * cols, STYLE["figure.titlesize"]).count("\n") + 1 if title else 0
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows + lines * 1.5 * STYLE[
        "figure.titlesize"] / 72), squeeze=False, layout="constrained", **kwargs)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        fig.delaxes(ax)
    if title:
        suptitle(fig, title)
    return fig, flat[:n]


def _chars(width_in: float, fontsize: float) -> int:
    """Characters of a ``fontsize`` text that fit in ``width_in`` inches (average glyph ~0.55 em)."""
    return max(12, int(width_in * 72 / (0.55 * fontsize)))


def wrap(text: str, width_in: float, fontsize: float | None = None) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points."""
    size = fontsize or STYLE["axes.titlesize"]
    return "\n".join(textwrap.fill(part, _chars(width_in, size)) for part in str(text).split("\n"))


def title(ax: Any, text: str, **kwargs: Any) -> Any:
    """Set a panel title wrapped to the panel's width (titles never overlap their neighbours)."""
    fontsize = kwargs.pop("fontsize", STYLE["axes.titlesize"])
    width = ax.get_position().width * ax.figure.get_figwidth()
    return ax.set_title(wrap(text, width, fontsize), fontsize=fontsize, **kwargs)


def suptitle(fig: Any, text: str, **kwargs: Any) -> Any:
    """The figure title (what the figure compares), wrapped to the figure's width."""
    fontsize = kwargs.pop("fontsize", STYLE["figure.titlesize"])
    return fig.suptitle(wrap(text, 0.95 * fig.get_figwidth(), fontsize), fontsize=fontsize, **kwargs)


def legend_below(fig: Any, axes: Sequence[Any] | Any, *, ncols: int | None = None, **kwargs: Any) -> Any:
    """One legend for the figure, under the panels (it covers no data): the distinct labels of ``axes``."""
    seen: dict[str, Any] = {}
    for ax in (axes if isinstance(axes, Sequence) else [axes]):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            if label and not label.startswith("_"):
                seen.setdefault(label, handle)
    if not seen:
        return None
    cols = ncols or max(1, min(len(seen), int(fig.get_figwidth() // 2.6)))
    # the figure grows by the legend's height, so the panels keep theirs
    size = kwargs.get("fontsize", STYLE["legend.fontsize"])
    fig.set_figheight(fig.get_figheight() + math.ceil(len(seen) / cols) * 1.6 * size / 72 + 0.25)
    return fig.legend(list(seen.values()), list(seen), loc="outside lower center", ncols=cols, **kwargs)


def legend_outside(ax: Any, **kwargs: Any) -> Any:
    """A panel's legend to the right of the panel (for long legends that would cover the data)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, **kwargs)


def figure_problems(fig: Any, max_width_px: int = MAX_WIDTH_PX) -> list[str]:
    """What makes ``fig`` unreadable in the report, one line each ([] when nothing).

    Checks: the width at :data:`DPI` is at most ``max_width_px``; every panel that shows data
    has an x and a y label (a colorbar: its label); no panel title is wider than 1.1 times its
    panel and no axis label longer than its side; no two titles or axis labels overlap.
    """
    problems: list[str] = []
    width = fig.get_figwidth() * DPI
    if width > max_width_px:
        problems.append(f"figure is {width:.0f} px wide at {DPI} dpi (> {max_width_px})")
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    boxes = []
    if fig._suptitle is not None and fig._suptitle.get_text():
        boxes.append(("figure title", fig._suptitle.get_window_extent(renderer)))
    for i, ax in enumerate(fig.axes):
        if not ax.get_visible():
            continue
        name = f"panel {i} ({ax.get_title()[:40]!r})"
        if ax.get_label() == "<colorbar>":
            if not (ax.get_ylabel() or ax.get_xlabel()):
                problems.append(f"colorbar {i} has no label")
            continue
        has_data = bool(ax.lines or ax.collections or ax.images or ax.patches or ax.containers)
        if has_data and not ax.get_xlabel():
            problems.append(f"{name} has no x label")
        if has_data and not ax.get_ylabel():
            problems.append(f"{name} has no y label")
        frame = ax.get_window_extent(renderer)
        for axis, label, size in (("x", ax.xaxis.label, frame.width), ("y", ax.yaxis.label, frame.height)):
            if label.get_text():
                box = label.get_window_extent(renderer)
                if max(box.width, box.height) > 1.15 * size:
                    problems.append(f"{name}: {axis} label {label.get_text()!r} is longer than its panel")
                boxes.append((f"{name} {axis} label", box))
        for t in (ax.title, ax._left_title, ax._right_title):
            if not t.get_text():
                continue
            box = t.get_window_extent(renderer)
            if box.width > 1.1 * ax.get_window_extent(renderer).width:
                problems.append(f"{name}: title is {box.width:.0f} px wide, its panel "
                                f"{ax.get_window_extent(renderer).width:.0f} px")
            boxes.append((name + " title", box))
    for i, (na, a) in enumerate(boxes):
        for nb, b in boxes[i + 1:]:
            if a.overlaps(b):
                problems.append(f"{na} overlaps {nb}")
    return problems


def fit_titles(fig: Any) -> None:
    """Wrap every panel title to its panel's width and the figure title to the figure's
    (a long title otherwise runs into its neighbour's or off the figure)."""
    fig.draw_without_rendering()   # the panels' widths after the layout
    for ax in fig.axes:
        if ax.get_label() == "<colorbar>" or not ax.get_title():
            continue
        text = " ".join(ax.get_title().split())   # re-wrap titles already broken by hand
        width = ax.get_position().width * fig.get_figwidth()
        ax.set_title(wrap(text, width, ax.title.get_fontsize()))
    sup = fig._suptitle
    if sup is not None and sup.get_text():
        sup.set_text(wrap(" ".join(sup.get_text().split()), 0.95 * fig.get_figwidth(), sup.get_fontsize()))


def save_figure(fig: Any, path: str | Path, *, dpi: int = DPI, tight: bool = True) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically, close it, and return the path.

    Titles are wrapped to their panels first (:func:`fit_titles`); ``tight`` saves with
    ``bbox_inches="tight"``, so nothing is cut off."""
    path = Path(path)
    plt = pyplot()
    fit_titles(fig)
    try:
        with atomic_file(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi, **({"bbox_inches": "tight"} if tight else {}))
    finally:
        plt.close(fig)
    return path
