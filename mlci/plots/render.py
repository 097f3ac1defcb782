"""Plots for GitHub: Mermaid ``xychart-beta`` charts, confusion tables, and the PNGs
:mod:`mlci.plots.png` rendered (in a child process) placed by their links.

Pure: it takes data and returns Markdown. Which Markdown form a plot gets is one table,
:data:`MARKDOWN`, keyed by DVC template name; a template without an entry (a custom one) is
shown as its PNG only.

Every string from data (plot ids, titles, labels, class names) is made inert: through
:func:`mlci.markdown.inert` in Markdown, and reduced to a safe character set inside Mermaid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from mlci.markdown import code, inert
from mlci.plots.collect import Plot, PlotSet, Series
from mlci.plots.legend import BASE, LEGEND, PR
from mlci.report.images import Links, PlotImage, placeholder
from mlci.settings.plots import PlotSettings

MAX_CLASSES = 20  # confusion matrices wider than this are not tables
SECTION_LIMIT = 40_000  # characters of the plots section; later plots are named only
_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._-/:()+=,")  # no %%


# ---- Mermaid ----


def label(text: object, limit: int = 60) -> str:
    """``text`` reduced to characters that mean nothing to Mermaid or Markdown."""
    s = "".join(c if c in _SAFE else " " for c in str(text))
    s = " ".join(s.split())[:limit]
    return s or "-"


def number(value: float) -> str:
    """A number as Mermaid reads it: plain decimal, no exponent, 6 significant digits."""
    s = f"{value:.6g}"
    if "e" in s:
        s = format(Decimal(s), "f")
    return "0" if s in ("-0", "") else s


def _float(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


Points = Sequence[tuple[float, float]]


def resample(series: Sequence[Points], budget: int) -> tuple[list[float], list[list[float]]]:
    """Every series on one evenly spaced x grid of at most ``budget`` points.

    Where a series has several points in a grid cell, the one that deviates most from the line
    between its neighbours is kept (largest-triangle), so peaks and dips survive thinning;
    where it has none, it is interpolated linearly; outside its x range it is held flat. When
    the x values are already evenly spaced and few enough, the grid is exactly them.
    """
    xs = sorted({x for s in series for x, _ in s})
    if not xs:
        return [], [[] for _ in series]
    n = max(1, min(budget, len(xs)))
    lo, hi = xs[0], xs[-1]
    grid = [lo + (hi - lo) * i / (n - 1) for i in range(n)] if n > 1 else [lo]
    return grid, [_on_grid(sorted(s), grid) for s in series]


def _interp(points: Sequence[tuple[float, float]], x: float) -> float:
    if x <= points[0][0]:
        return points[0][1]
    if x >= points[-1][0]:
        return points[-1][1]
    lo, hi = 0, len(points) - 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if points[mid][0] <= x else (lo, mid)
    (x0, y0), (x1, y1) = points[lo], points[hi]
    return y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0)


def _on_grid(points: list[tuple[float, float]], grid: list[float]) -> list[float]:
    if not points:
        return []
    half = (grid[-1] - grid[0]) / (len(grid) - 1) / 2 if len(grid) > 1 else math.inf
    cells: list[list[tuple[float, float]]] = [[] for _ in grid]
    for x, y in points:
        i = 0 if half == math.inf else min(int((x - grid[0]) / (2 * half) + 0.5), len(grid) - 1)
        cells[i].append((x, y))
    out: list[float] = []
    for i, g in enumerate(grid):
        if not cells[i]:
            out.append(_interp(points, g))
            continue
        if len(cells[i]) == 1 or i in (0, len(grid) - 1):  # the ends stay the ends
            gaps = [abs(p[0] - g) for p in cells[i]]
            out.append(cells[i][gaps.index(min(gaps))][1])
            continue
        a = (grid[i - 1], out[-1]) if out else cells[i][0]
        bx = grid[i + 1] if i + 1 < len(grid) else g
        b = (bx, _interp(points, bx))
        areas = [
            abs((a[0] - b[0]) * (p[1] - a[1]) - (a[0] - p[0]) * (b[1] - a[1])) for p in cells[i]
        ]
        out.append(cells[i][areas.index(max(areas))][1])
    return out


def _xy(s: Series, x: str, y: str) -> list[tuple[Any, float]]:
    out = []
    for d in s.points:
        v = _float(d.get(y))
        if v is not None and x in d:
            out.append((d[x], v))
    return out


def _sources(plot: Plot) -> dict[str, dict[str, Series]]:
    by: dict[str, dict[str, Series]] = {}
    for s in plot.series():
        by.setdefault(s.source, {})[s.rev] = s
    return by


def _init(colours: Sequence[str]) -> str:
    palette = ", ".join(colours)
    return '%%{init: {"themeVariables": {"xyChart": {"plotColorPalette": "' + palette + '"}}}}%%'


def _chart(
    title: str,
    x_axis: str,
    y_label: str,
    lines: list[str],
    revs: Sequence[str],
    horizontal: bool = False,
) -> str:
    head = "xychart-beta horizontal" if horizontal else "xychart-beta"
    colours = [BASE.hex if r == "base" else PR.hex for r in revs]
    body = [
        _init(colours),
        head,
        f'    title "{label(title, 80)}"',
        x_axis,
        f'    y-axis "{label(y_label)}"',
    ]
    return "```mermaid\n" + "\n".join(body + lines) + "\n```"


def _series_line(kind: str, values: Sequence[float]) -> str:
    return f"    {kind} [{', '.join(number(v) for v in values)}]"


def line_chart(plot: Plot, settings: PlotSettings) -> list[str]:
    """One chart per data source: base and PR as two lines on a shared x grid."""
    blocks = []
    sources = _sources(plot)
    for source, revs in sources.items():
        title = plot.title if len(sources) == 1 else f"{plot.title}: {source}"
        present = [revs[r] for r in ("base", "pr") if r in revs]
        raw = [_xy(s, plot.x, plot.y) for s in present]
        numeric = [[(fx, y) for x, y in r if (fx := _float(x)) is not None] for r in raw]
        if all(len(n) == len(r) for n, r in zip(numeric, raw, strict=True)):
            grid, values = resample(numeric, settings.max_points)
            if not grid:
                continue
            axis = f'    x-axis "{label(plot.x_label)}" {number(grid[0])} --> {number(grid[-1])}'
            if len(grid) == 1:
                axis = f'    x-axis "{label(plot.x_label)}" [{number(grid[0])}]'
        else:  # categories: in order of first appearance, the first max_points of them
            cats = list(dict.fromkeys(str(x) for r in raw for x, _ in r))[: settings.max_points]
            values = [[dict((str(x), y) for x, y in r).get(c, math.nan) for c in cats] for r in raw]
            values = [[0.0 if math.isnan(v) else v for v in vs] for vs in values]
            axis = f'    x-axis "{label(plot.x_label)}" [{", ".join(_quoted(c) for c in cats)}]'
        lines = [_series_line("line", v) for v in values]
        blocks.append(_chart(title, axis, plot.y_label, lines, [s.rev for s in present]))
    return blocks


def _quoted(text: str) -> str:
    return f'"{label(text, 30)}"'


def bar_chart(plot: Plot, settings: PlotSettings) -> list[str]:
    """Horizontal bars for the base, a line for the PR, per category (DVC's ``y`` field)."""
    blocks = []
    sources = _sources(plot)
    for source, revs in sources.items():
        per = {
            r: {str(d.get(plot.y)): _float(d.get(plot.x)) for d in s.points}
            for r, s in revs.items()
        }
        cats = list(dict.fromkeys(c for r in ("base", "pr") for c in per.get(r, {})))
        cats = cats[: settings.max_points]
        lines, order = [], []
        for rev, kind in (("base", "bar"), ("pr", "line")):
            if rev in per:
                lines.append(_series_line(kind, [per[rev].get(c) or 0.0 for c in cats]))
                order.append(rev)
        axis = f'    x-axis "{label(plot.y_label)}" [{", ".join(_quoted(c) for c in cats)}]'
        title = plot.title if len(sources) == 1 else f"{plot.title}: {source}"
        blocks.append(_chart(title, axis, plot.x_label, lines, order, horizontal=True))
    return blocks


# ---- confusion matrices ----


def confusion_table(plot: Plot, settings: PlotSettings, *, normalized: bool = False) -> list[str]:
    """Rows: actual class (DVC's ``y``); columns: predicted (``x``); each cell base -> PR."""
    tables = []
    for source, revs in _sources(plot).items():
        counts: dict[str, dict[tuple[str, str], int]] = {}
        for rev, s in revs.items():
            c = counts.setdefault(rev, {})
            for d in s.points:
                key = (str(d.get(plot.y)), str(d.get(plot.x)))
                c[key] = c.get(key, 0) + 1
        classes = sorted({k for c in counts.values() for pair in c for k in pair})
        if len(classes) > MAX_CLASSES:
            tables.append(f"{len(classes)} classes: too many for a table (limit {MAX_CLASSES}).")
            continue
        head = f"| actual ╲ predicted | {' | '.join(inert(c, 40) for c in classes)} |"
        rows = [head, "|" + "---|" * (len(classes) + 1)]
        for actual in classes:
            cells = [_cell(counts, actual, p, classes, normalized) for p in classes]
            rows.append(f"| **{inert(actual, 40)}** | {' | '.join(cells)} |")
        if len(_sources(plot)) > 1:
            rows.insert(0, f"{code(source)}\n")
        tables.append("\n".join(rows))
    return tables


def _cell(
    counts: Mapping[str, Mapping[tuple[str, str], int]],
    actual: str,
    predicted: str,
    classes: Sequence[str],
    normalized: bool,
) -> str:
    def value(rev: str) -> float | None:
        if rev not in counts:
            return None
        n = counts[rev].get((actual, predicted), 0)
        if not normalized:
            return n
        total = sum(counts[rev].get((actual, p), 0) for p in classes)
        return 100.0 * n / total if total else 0.0

    def fmt(v: float) -> str:
        return f"{v:.1f}%" if normalized else f"{v:g}"

    base, pr = value("base"), value("pr")
    if base is None or pr is None:
        only = pr if base is None else base
        return fmt(only) if only is not None else ""
    if base == pr:
        return fmt(pr)
    delta = pr - base
    sign = "+" if delta > 0 else "−"
    change = f"{abs(delta):.1f}" if normalized else f"{abs(delta):g}"
    return f"{fmt(base)} → **{fmt(pr)}** ({sign}{change}{' pp' if normalized else ''})"


Renderer = Callable[[Plot, PlotSettings], list[str]]
MARKDOWN: dict[str, Renderer] = {
    "linear": line_chart,
    "simple": line_chart,
    "smooth": line_chart,
    "scatter": line_chart,
    "scatter_jitter": line_chart,
    "bar_horizontal": bar_chart,
    "bar_horizontal_sorted": bar_chart,
    "confusion": confusion_table,
    "confusion_normalized": lambda p, s: confusion_table(p, s, normalized=True),
}


# ---- the report section ----


def section(
    plotset: PlotSet,
    links: Links | None = None,
    settings: PlotSettings | None = None,
    problems: Mapping[str, str] | None = None,
    images: Sequence[PlotImage] = (),
) -> str:
    """The report's "Plots" section: every plot folded in ``<details>``, then every plot that
    is not shown with its reason. Images are embedded by ``links`` or left as placeholders."""
    settings = settings or PlotSettings()
    links = links or Links()
    problems = problems or {}
    by_plot: dict[str, list[PlotImage]] = {}
    for img in images:
        by_plot.setdefault(img.plot_id, []).append(img)
    shown = plotset.shown()
    out = ["### Plots", ""]
    out.append(
        f"{len(shown)} of {len(plotset.plots) + len(plotset.hidden)} declared plots shown, "
        f"base {code(plotset.base[:12])} against this PR. {LEGEND}"
    )
    out.append("")
    if links.note:
        out += [f"> {links.note}", ""]
    # (plot id, reason as Markdown): reasons from DVC or data are made inert here
    missing = [(p.id, inert(p.problem)) for p in plotset.plots if p.problem]
    missing += [(h, "left out by `plots.show`") for h in plotset.hidden]
    used = sum(len(x) + 1 for x in out)
    for plot in shown:
        block = _plot_block(plot, settings, links, problems.get(plot.id), by_plot.get(plot.id, []))
        if used + len(block) > SECTION_LIMIT:
            missing.append((plot.id, "left out to keep the report within GitHub's size limit"))
            continue
        used += len(block)
        out += [block, ""]
    if plotset.errors:
        out += [f"- ⚠️ DVC could not read the plot definitions, {inert(e)}" for e in plotset.errors]
        out.append("")
    if missing:
        out += ["Not shown:", ""]
        out += [f"- {code(pid)}: {reason}" for pid, reason in missing]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _plot_block(
    plot: Plot,
    settings: PlotSettings,
    links: Links,
    problem: str | None,
    images: Sequence[PlotImage],
) -> str:
    render = MARKDOWN.get(plot.template) if plot.kind == "vega" else None
    what = "image" if plot.kind == "image" else f"template {code(plot.template)}"
    lines = [
        "<details>",
        f"<summary>{inert(plot.title or plot.id)} <sub>({what})</sub></summary>",
        "",
    ]
    if render is not None:
        lines += [b + "\n" for b in render(plot, settings)]
    elif plot.kind == "vega":
        lines += [f"Template {code(plot.template)} has no Markdown form; see its image.", ""]
    for img in images:
        url = links.urls.get(img.key)
        if url:
            lines.append(f"![{inert(img.alt)}]({url})")
        elif img.key in links.left_out:
            lines.append(f"- no image of {inert(img.alt)}: {inert(links.left_out[img.key])}")
        else:
            lines.append(placeholder(img.key))
    if problem:
        lines.append(f"- no image: {inert(problem)}")
    lines += [f"- {inert(n)}" for n in plot.notes]
    lines += ["", "</details>"]
    return "\n".join(lines)
