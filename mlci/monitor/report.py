"""The monitor's Markdown: verdict, drift, metrics, latency, and a trend of the last runs.

Pure: a result and the history in, Markdown out. The history travels inside the issue body as
a hidden, base64-encoded JSON comment, so the issue itself is the store and no run depends on
another's files. Every string that comes from data (column names, values) is rendered inert.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mlci import markdown
from mlci.markdown import code, fit, inert, plain_title

if TYPE_CHECKING:
    from mlci.monitor.result import MonitorResult

MARKER_PREFIX = markdown.marker_prefix("monitor")
_HISTORY = re.compile(r"<!-- mlci-monitor-history:([A-Za-z0-9+/=]*) -->")
BODY_LIMIT = 60_000  # below GitHub's 65,536 characters, with room for the marker and history


def marker(model_name: str) -> str:
    """The hidden marker of the model's living issue: one per model name, exactly
    (``markdown.marker``: ``fraud v2`` and ``fraud_v2`` never share an issue)."""
    return markdown.marker("monitor", model_name)


def history_of(body: str | None) -> list[dict[str, Any]]:
    """The runs an issue body recorded (none when it has no readable history)."""
    found = _HISTORY.search(body or "")
    if not found:
        return []
    try:
        runs = json.loads(base64.b64decode(found.group(1)).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return []
    return [r for r in runs if isinstance(r, dict)] if isinstance(runs, list) else []


def entry(result: MonitorResult) -> dict[str, Any]:
    """This run, as one row of the trend."""
    d = result.drift
    c = result.comparison
    return {
        "at": result.at,
        "status": result.status.value,
        "version": result.champion.version if result.champion else None,
        "rows": result.rows,
        "drifted": [col.column for col in d.drifted] if d else [],
        "max_score": max((col.score for col in d.columns), default=0.0) if d else None,
        "metrics": {m.name: m.head for m in c.gated} if c else {},
        "failed": [m.name for m in c.failed] if c else [],
        "p95_ms": result.latency.p95_ms if result.latency else None,
    }


def encode(history: Sequence[dict[str, Any]]) -> str:
    raw = json.dumps(list(history), sort_keys=True, default=str).encode("utf-8")
    return f"<!-- mlci-monitor-history:{base64.b64encode(raw).decode('ascii')} -->"


def _num(value: Any, digits: int = 4) -> str:
    return f"{value:.{digits}g}" if isinstance(value, (int, float)) else "—"


def drift_section(result: MonitorResult) -> list[str]:
    d = result.drift
    if d is None:
        return []
    t = result.thresholds
    lines = [
        "### Drift against the champion's training data",
        "",
        f"{len(d.drifted)} of {len(d.columns)} columns drifted ({d.base_rows} training rows, "
        f"{d.rows} snapshot rows; thresholds: PSI > {t.psi:g}, KS > {t.ks:g} with p < "
        f"{t.ks_pvalue:g}, TVD > {t.tvd:g} or a new category).",
        "",
        "| column | kind | score | KS | drifted |",
        "|---|---|---|---|---|",
    ]
    for col in d.columns:
        ks = "—" if col.ks is None else f"{col.ks:.4g} (p={col.ks_pvalue:.2g})"
        new = f" new: {', '.join(inert(v, 40) for v in col.new)}" if col.new else ""
        mark = "⚠️ yes" if col.drifted else "no"
        lines.append(
            f"| {code(col.column, 80, cell=True)} | {col.kind} | {col.score:.4g} | {ks} | "
            f"{mark}{new} |"
        )
    return [*lines, ""]


def metrics_section(result: MonitorResult) -> list[str]:
    c = result.comparison
    if c is None:
        return ["### Accuracy", "", "Not judged: the snapshot carries no labels.", ""]
    lines = [
        f"### Accuracy on the snapshot against {inert(c.base_rev)}",
        "",
        "| metric | at promotion | on the snapshot | change | gate |",
        "|---|---|---|---|---|",
    ]
    for m in c.gated or c.metrics:
        verdict = {"fail": "❌ failed", "pass": "✅ holds"}.get(m.status, m.status)
        change = "—" if m.change is None else f"{m.change:+.4g}"
        lines.append(
            f"| {code(m.name, 80, cell=True)} | {_num(m.base)} | {_num(m.head)} | {change} | "
            f"{verdict} |"
        )
    lines += [f"- {inert(m.message, 300)}" for m in c.failed]
    return [*lines, ""]


def latency_section(result: MonitorResult) -> list[str]:
    lat = result.latency
    if lat is None:
        return []
    lines = [
        "### Predict latency",
        "",
        f"p50 {lat.p50_ms:.3g} ms, p95 {lat.p95_ms:.3g} ms per batch of {lat.batch_rows} rows "
        f"({lat.batches} batches timed).",
    ]
    lines += [f"- ❌ {b}" for b in result.latency_breaches]
    return [*lines, ""]


def shadow_section(result: MonitorResult) -> list[str]:
    """The challenger beside the champion on this window, and how far its probation is."""
    sh = result.shadow
    if sh is None:
        return []
    state = "✅ no worse" if sh.passed else "❌ worse under the gates"
    lines = [
        f"### Challenger v{inert(sh.version)} in shadow beside champion v{inert(sh.against)}",
        "",
        f"This window: {state}. Probation: {sh.streak} of {sh.probation} windows passed in a "
        f"row ({sh.windows} judged).",
        "",
        "| metric | champion | challenger | change | gate |",
        "|---|---|---|---|---|",
    ]
    c = sh.comparison
    for m in (c.gated or c.metrics) if c is not None else ():
        verdict = {"fail": "❌ worse", "pass": "✅ holds"}.get(m.status, m.status)
        change = "—" if m.change is None else f"{m.change:+.4g}"
        lines.append(
            f"| {code(m.name, 80, cell=True)} | {_num(m.base)} | {_num(m.head)} | {change} | "
            f"{verdict} |"
        )
    if sh.latency is not None and sh.champion_latency is not None:
        lines += [
            "",
            f"Predict latency, measured in turn: champion p95 {sh.champion_latency.p95_ms:.3g} ms, "
            f"challenger p95 {sh.latency.p95_ms:.3g} ms per batch of {sh.latency.batch_rows} rows.",
        ]
    if sh.ready:
        lines += [
            "",
            "> [!TIP]",
            f"> The challenger passed its probation: run the release workflow (`mlci release`) "
            f"to make v{inert(sh.version)} the champion.",
        ]
    return [*lines, ""]


def trend_section(history: Sequence[dict[str, Any]]) -> list[str]:
    if not history:
        return []
    lines = [
        f"### Trend (last {len(history)} runs)",
        "",
        "| run (UTC) | status | champion | rows | drifted columns | max score | gated metrics "
        "| p95 ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in reversed(history):
        drifted = ", ".join(inert(c, 40) for c in run.get("drifted") or []) or "none"
        gated = run.get("metrics") or {}
        shown = ", ".join(f"{inert(k, 40)} {_num(v)}" for k, v in gated.items()) or "—"
        version = f"v{run['version']}" if run.get("version") else "—"
        lines.append(
            f"| {inert(run.get('at'), 30)} | {inert(run.get('status'), 20)} | {version} | "
            f"{_num(run.get('rows'), 9)} | {drifted} | {_num(run.get('max_score'))} | {shown} | "
            f"{_num(run.get('p95_ms'))} |"
        )
    return [*lines, ""]


def render(
    result: MonitorResult,
    history: Sequence[dict[str, Any]] = (),
    *,
    links: Sequence[str] = (),
) -> str:
    """The report: verdict first, then what was found, then the trend and the history."""
    name = result.champion.name if result.champion else "the model"
    head = f"## {result.status.icon} mlci monitor: {result.status.value}"
    lines = [head, ""]
    if result.champion is not None:
        lines.append(
            f"**{code(name)} v{result.champion.version} (`champion`) on {code(result.snapshot)}"
            f" ({result.rows} rows):** {inert(result.summary, 1000)}"
        )
    else:
        lines.append(f"**{inert(result.summary, 1000)}**")
    lines.append("")
    if result.rolled_back is not None:
        before, after = result.rolled_back
        lines += [
            "> [!CAUTION]",
            f"> Rolled back automatically: `champion` moved from v{inert(before)} back to "
            f"v{inert(after)} (`monitor.on_breach: rollback`, within the probation). "
            "`mlci history` keeps the reason and the evidence.",
            "",
        ]
    lines += [f"- {link}" for link in links]
    lines += [f"- {inert(note, 300)}" for note in result.notes]
    if links or result.notes:
        lines.append("")
    if result.error is None:
        lines += drift_section(result) + metrics_section(result) + latency_section(result)
        lines += shadow_section(result)
    lines += trend_section(history)
    lines.append(
        "<sub>mlci monitor never promotes: a retraining pull request is gated by the PR check "
        "and merged by a person.</sub>"
    )
    markdown = "\n".join(lines) + "\n"
    return fit(markdown, BODY_LIMIT, "the job summary")


def issue_title(model_name: str, status: str) -> str:
    return plain_title(f"mlci monitor: {model_name} champion {status}")


def closing_comment(result: MonitorResult) -> str:
    version = f" v{result.champion.version}" if result.champion else ""
    return (
        f"✅ mlci monitor: healthy again at {result.at}: the champion{version} holds on "
        f"{code(result.snapshot)} ({inert(result.summary, 300)}). Closing."
    )
