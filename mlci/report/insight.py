"""The report's "show your math" sections: what the model costs to run, what drives its
predictions, what it costs to train, base against PR (measured by :mod:`mlci.check.insight`).

A section that could not be computed says "not available" and why. Pure: the check's
:class:`mlci.insight.result.Insight` in (under the facts' ``insight`` key), Markdown out; every
string from data (paths, revisions, feature names, reasons, the currency) through
``markdown.inert`` or ``markdown.code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlci.insight import pseudo
from mlci.insight.result import (
    FACTS_KEY,
    Drivers,
    Insight,
    RunCost,
    Side,
    Timings,
    TrainCost,
    Unavailable,
)
from mlci.insight.timing import Spread
from mlci.markdown import code, inert
from mlci.report.data_sections import fmt


def insight_sections(facts: Mapping[str, Any]) -> str:
    """The three sections, or nothing when the check did not get as far as measuring."""
    found = facts.get(FACTS_KEY)
    if not isinstance(found, Insight):
        return ""
    parts = [run_section(found.run), drivers_section(found.drivers), train_section(found.train)]
    tail = f"<sub>Measuring these took {found.seconds:.1f} s.</sub>\n"
    return "\n".join(parts) + "\n" + tail


def _missing(why: str) -> str:
    return f"_Not available: {inert(why, 400)}._\n"


def _change(base: float | None, head: float | None) -> str:
    if base is None or head is None:
        return "—"
    if base == 0:
        return f"{head - base:+.4g}"
    return f"{(head - base) / abs(base) * 100:+.1f}%"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g}"


def _timings(side: Side | Unavailable) -> Timings | None:
    if isinstance(side, Side) and isinstance(side.timings, Timings):
        return side.timings
    return None


def run_section(run: RunCost | Unavailable) -> str:
    out = ["### What it costs to run\n"]
    if isinstance(run, Unavailable):
        return "\n".join([*out, _missing(run.why)])
    b, h = _timings(run.base), _timings(run.head)
    rows: list[tuple[str, float | None, float | None]] = [
        ("predict one row, p50 (ms)", _pick(b, "row", "p50"), _pick(h, "row", "p50")),
        (
            f"predict one row, p95 (ms) · {code(pseudo.LATENCY_P95, cell=True)}",
            _pick(b, "row", "p95"),
            _pick(h, "row", "p95"),
        ),
        (
            f"batch of {run.batch_rows:,} rows, p50 (ms) · {code(pseudo.BATCH, cell=True)}",
            _pick(b, "batch", "p50"),
            _pick(h, "batch", "p50"),
        ),
        (
            f"batch of {run.batch_rows:,} rows, p95 (ms)",
            _pick(b, "batch", "p95"),
            _pick(h, "batch", "p95"),
        ),
        (
            f"model size (MB) · {code(pseudo.MODEL_MB, cell=True)}",
            _mb(run.base),
            _mb(run.head),
        ),
    ]
    out += ["| | base | PR | change |", "|---|---:|---:|---:|"]
    out += [f"| {name} | {_ms(x)} | {_ms(y)} | {_change(x, y)} |" for name, x, y in rows]
    out.append("")
    out += _side_lines("base", run.base) + _side_lines("PR", run.head)
    shown = h if h is not None else b
    if shown is not None:
        out.append(
            f"\nMeasured in this job on {run.rows:,} evaluation rows, base and PR called in turn "
            f"({shown.row.n} single-row calls and {shown.batch.n} batches each, after a "
            "warm-up), so machine noise "
            f"hits both alike. Spread (p25–p75) of one row: base {_spread(b)}, PR {_spread(h)}; "
            "a gate's tolerance should sit above it."
        )
    if run.note:
        out.append(f"\n{inert(run.note, 400)}.")
    return "\n".join(out) + "\n"


def _pick(t: Timings | None, which: str, stat: str) -> float | None:
    if t is None:
        return None
    found: Spread = getattr(t, which)
    value: float = getattr(found, stat)
    return value


def _mb(side: Side | Unavailable) -> float | None:
    return side.size_mb if isinstance(side, Side) else None


def _spread(t: Timings | None) -> str:
    if t is None:
        return "—"
    rel = t.row.iqr_rel
    pct = f" (±{rel * 50:.0f}% of the median)" if rel is not None else ""
    return f"{t.row.p25:.3g}–{t.row.p75:.3g} ms{pct}"


def _side_lines(name: str, side: Side | Unavailable) -> list[str]:
    if isinstance(side, Unavailable):
        return [f"- {name} model: not available: {inert(side.why, 400)}"]
    line = f"- {name} model: {code(side.label, 300)}"
    if isinstance(side.timings, Unavailable):
        line += f"; latency not available: {inert(side.timings.why, 400)}"
    return [line]


def drivers_section(d: Drivers | Unavailable) -> str:
    out = ["### What drives the predictions\n"]
    if isinstance(d, Unavailable):
        return "\n".join([*out, _missing(d.why)])
    out.append(
        f"Permutation importance: how much {inert(d.scoring)} drops when one feature's values "
        f"are shuffled ({d.repeats} repeats, seed 0, on the same {d.rows:,} rows for both "
        f"models; took {d.seconds:.1f} s, at most {d.budget_s:.3g} s per model).\n"
    )
    out += ["| feature | base | PR | rank base → PR |", "|---|---:|---:|---|"]
    for f in d.features:
        rank = f"{f.base_rank or '—'} → {f.head_rank or '—'}"
        moved = ""
        if f.base_rank is not None and f.head_rank is not None and f.base_rank != f.head_rank:
            moved = " ↑" if f.head_rank < f.base_rank else " ↓"
        out.append(
            f"| {code(f.name, 100, cell=True)} | {_imp(f.base)} | {_imp(f.head)} | {rank}{moved} |"
        )
    if d.base_why:
        out.append(f"\nBase: not available: {inert(d.base_why, 400)}.")
    if d.entered:
        out.append(f"\nEntered the top {d.top}: {_names(d.entered)}.")
    if d.left:
        out.append(f"\nLeft the top {d.top}: {_names(d.left)}.")
    return "\n".join(out) + "\n"


def _imp(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(code(n, 100) for n in names)


def train_section(t: TrainCost | Unavailable) -> str:
    out = ["### What it costs to train\n"]
    if isinstance(t, Unavailable):
        return "\n".join([*out, _missing(t.why)])
    out += ["| | base | PR |", "|---|---:|---:|"]
    out.append(f"| training (fit) time, as recorded | {_s(t.fit_base_s)} | {_s(t.fit_head_s)} |")
    out.append(f"| reproduce stage in this check, wall | — | {_s(t.wall_s)} |")
    out.append(f"| reproduce stage in this check, CPU | — | {_s(t.cpu_s)} |")
    if t.gpu_hours is not None:
        out.append(f"| GPU-hours trained here | — | {t.gpu_hours:.4f} |")
    unit = f" {inert(t.currency, 20)}" if t.currency else ""
    if t.money is not None:
        out.append(f"| cost · {code(pseudo.COST, cell=True)} | — | {fmt(t.money)}{unit} |")
    out.append("")
    if t.note:
        out.append(f"{inert(t.note, 300)}.\n")
    if t.money is not None:
        out.append(f"Cost = {inert(t.formula, 300)} = {fmt(t.money)}{unit}.")
    else:
        out.append(
            "No money shown: no rate is set (`mlci.cost: {runner_hour, gpu_hour, currency}`)."
        )
    return "\n".join(out) + "\n"


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"
