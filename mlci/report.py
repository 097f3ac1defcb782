"""Render the PR report as GitHub-flavoured Markdown. Pure: data in, text out.

Order: verdict first, then gates and metrics, params, data, slices, plots, run facts. Plots are
inline Mermaid, which GitHub renders in comments, so nothing is uploaded anywhere. A report
never exceeds GitHub's comment limit: detail is folded, then dropped, then cut with a pointer.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlci.data import PullResult
from mlci.drift import DriftReport
from mlci.metrics import FAIL, NEW, PASS, SKIPPED, Comparison, MetricDiff
from mlci.privacy import PiiReport
from mlci.validation import ValidationReport

COMMENT_LIMIT = 65536
MARKER_PREFIX = "<!-- mlci-report:"
ICONS = {"passed": "✅", "failed": "❌", "data-invalid": "🛑", "error": "⚠️"}


def marker_for(report_name: str) -> str:
    """The hidden marker that finds a report's comment again: ``<!-- mlci-report:NAME -->``."""
    name = re.sub(r"[^A-Za-z0-9._/ +:@-]", "-", report_name.strip())
    name = re.sub(r"-{2,}", "-", name).strip(" -") or "default"
    return f"{MARKER_PREFIX}{name} -->"


@dataclass(frozen=True)
class Verdict:
    status: str  # passed | failed | data-invalid | error
    summary: str
    exit_code: int = 0

    @property
    def icon(self) -> str:
        return ICONS.get(self.status, "•")


@dataclass(frozen=True)
class ReportInput:
    name: str
    verdict: Verdict
    comparison: Comparison | None = None
    validation: ValidationReport | None = None
    drift: DriftReport | None = None
    pii: PiiReport | None = None
    pulled: PullResult | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    head_sha: str | None = None
    roc: Sequence[Mapping[str, float]] = ()
    notes: Sequence[str] = ()
    full_report_hint: str = "the job summary or the report artifact"


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _cell(str(value))
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.4f}"


def _cell(text: str) -> str:
    """Make untrusted text safe inside a table cell: no pipes, no markup, no newlines."""
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")
    return text.replace("<", "&lt;").replace(">", "&gt;").replace("`", "'")[:200]


def _signed(value: float | None, pct: bool = False) -> str:
    if value is None:
        return "—"
    if pct:
        return f"{value * 100:+.2f}%"
    return f"{value:+.4f}"


def _arrow(diff: MetricDiff) -> str:
    if diff.change is None or abs(diff.change) < 1e-12:
        return "→"
    up = diff.change > 0
    better = diff.better
    if better is None:
        return "↑" if up else "↓"
    return ("🟢 " if better else "🔴 ") + ("↑" if up else "↓")


def _gate(diff: MetricDiff) -> str:
    if diff.gate is None:
        return ""
    return {PASS: "✅ pass", FAIL: "❌ fail", NEW: "🆕 new", SKIPPED: "⏭ skipped"}.get(
        diff.status, diff.status
    )


def heading(inp: ReportInput) -> str:
    sha = f" · `{inp.head_sha[:7]}`" if inp.head_sha else ""
    base = ""
    if inp.comparison is not None:
        b = inp.comparison
        base = f" vs `{b.base_rev}`" + (f" (`{b.base_sha[:7]}`)" if b.base_sha else "")
    return (
        f"## {inp.verdict.icon} {inp.name}: {inp.verdict.status}\n\n"
        f"**{_cell(inp.verdict.summary)}**{base}{sha}\n"
    )


def metrics_section(c: Comparison) -> str:
    lines = []
    for note in c.notices:
        lines.append(f"> [!NOTE]\n> {_cell(note)}\n")
    main = [m for m in c.metrics if not m.name.startswith("slices.")]
    if not main:
        lines.append("_No metrics found: declare them under `metrics:` in dvc.yaml._\n")
        return "\n".join(lines)
    lines.append("### Metrics\n")
    lines.append("| metric | base | PR | change | rel. | | gate |")
    lines.append("|---|---:|---:|---:|---:|:-:|---|")
    for m in sorted(main, key=lambda d: (d.gate is None, d.name)):
        lines.append(
            f"| `{_cell(m.name)}` | {fmt(m.base)} | {fmt(m.head)} | {_signed(m.change)} "
            f"| {_signed(m.rel_change, pct=True)} | {_arrow(m)} | {_gate(m)} |"
        )
    failed = c.failed
    if failed:
        lines.append("\n**Failed gates**\n")
        lines.extend(f"- ❌ {_cell(m.message)}" for m in failed)
    gated = [m for m in c.gated if m.status != FAIL]
    if gated:
        lines.append("\n<details><summary>Gates that passed</summary>\n")
        lines.extend(f"- {_gate(m)}: {_cell(m.message)}" for m in gated)
        lines.append("\n</details>")
    return "\n".join(lines) + "\n"


def params_section(c: Comparison) -> str:
    if not c.params:
        return "### Params\n\nNo params changed.\n"
    rows = ["### Params\n", "| param | base | PR |", "|---|---|---|"]
    rows += [f"| `{_cell(p.name)}` | {fmt(p.base)} | {fmt(p.head)} |" for p in c.params]
    return "\n".join(rows) + "\n"


def validation_section(v: ValidationReport) -> str:
    if not v.files:
        return "### Data\n\nNo data validation configured (`mlci.validate`).\n"
    rows = ["### Data validation\n", "| file | schema | rows | result |", "|---|---|---:|---|"]
    for f in v.files:
        result = "✅ valid" if f.ok else f"❌ {sum(x.count for x in f.failures)} failures"
        if f.cached:
            result += " (unchanged since it last passed: not re-validated)"
        rows.append(f"| `{_cell(f.path)}` | `{_cell(f.schema)}` | {f.rows} | {result} |")
    bad = [f for f in v.files if not f.ok]
    for f in bad:
        rows.append(
            f"\n<details open><summary>Failures in <code>{_cell(f.path)}</code></summary>\n"
        )
        rows.append("| column | check | failing rows | sample values |")
        rows.append("|---|---|---:|---|")
        for x in f.failures:
            samples = ", ".join(f"`{_cell(s)}`" for s in x.samples) or "_hidden_"
            rows.append(f"| `{_cell(x.column)}` | `{_cell(x.check)}` | {x.count} | {samples} |")
        rows.append("\n</details>")
    return "\n".join(rows) + "\n"


def drift_section(d: DriftReport, top: int = 10) -> str:
    if not d.files:
        return ""
    t = d.thresholds
    out = [
        f"### Drift against base\n\n<sub>flagged when PSI > {t.psi:g}, KS > {t.ks:g} with "
        f"p < {t.ks_pvalue:g}, or category distance > {t.tvd:g}; "
        f"{'fails the check' if t.fail else 'a warning, not a failure'}</sub>\n"
    ]
    for f in d.files:
        base_rows = "—" if f.base_rows is None else str(f.base_rows)
        head = f"**`{_cell(f.path)}`**: rows {base_rows} → {f.rows}"
        if f.note:
            out.append(f"{head} ({_cell(f.note)})\n")
            continue
        flagged = f.drifted
        out.append(f"{head}; {len(flagged)} of {len(f.columns)} columns drifted\n")
        if not f.columns:
            continue
        out.append("<details><summary>Columns by drift</summary>\n")
        out.append("| column | kind | PSI / distance | KS | p | new / vanished | |")
        out.append("|---|---|---:|---:|---:|---|:-:|")
        for c in f.columns[:top] if not flagged else f.columns[: max(top, len(flagged))]:
            cats = ", ".join(
                [*(f"+{_cell(v)}" for v in c.new), *(f"-{_cell(v)}" for v in c.vanished)]
            )
            out.append(
                f"| `{_cell(c.column)}` | {c.kind} | {c.score:.4f} | {fmt(c.ks)} | "
                f"{fmt(c.ks_pvalue)} | {cats} | {'⚠️' if c.drifted else ''} |"
            )
        out.append("\n</details>\n")
    return "\n".join(out)


def pii_section(p: PiiReport) -> str:
    if not p.found:
        return ""
    out = [
        "### Personal data\n",
        f"{'🛑 blocking' if p.block else '⚠️ warning'}: values are never shown.\n",
        "| file | column | kind | rows |",
        "|---|---|---|---:|",
    ]
    out += [
        f"| `{_cell(f.path)}` | `{_cell(f.column)}` | {f.kind} | {f.count} |" for f in p.findings
    ]
    return "\n".join(out) + "\n"


def slices_section(c: Comparison) -> str:
    rows = [m for m in c.metrics if m.name.startswith("slices.")]
    if not rows:
        return ""
    out = [
        "<details><summary>Slices</summary>\n",
        "| slice | base | PR | change |",
        "|---|---:|---:|---:|",
    ]
    out += [
        f"| `{_cell(m.name[7:])}` | {fmt(m.base)} | {fmt(m.head)} | {_signed(m.change)} |"
        for m in rows
    ]
    return "\n".join(out) + "\n\n</details>\n"


def roc_chart(points: Sequence[Mapping[str, float]]) -> str:
    """The ROC curve as an inline Mermaid chart (TPR at FPR 0, 0.1, ..., 1)."""
    if len(points) < 2:
        return ""
    fpr = [float(p["fpr"]) for p in points]
    tpr = [float(p["tpr"]) for p in points]
    grid = [i / 10 for i in range(11)]
    values = []
    for g in grid:
        best = max((t for f, t in zip(fpr, tpr, strict=True) if f <= g + 1e-12), default=0.0)
        values.append(round(best, 3))
    xs = ", ".join(f'"{g:.1f}"' for g in grid)
    return (
        "<details><summary>ROC curve (PR)</summary>\n\n```mermaid\nxychart-beta\n"
        '    title "ROC (TPR by FPR)"\n'
        f'    x-axis [{xs}]\n    y-axis "TPR" 0 --> 1\n'
        f"    line [{', '.join(str(v) for v in values)}]\n```\n\n</details>\n"
    )


def facts_section(inp: ReportInput) -> str:
    f = inp.facts
    rows = ["<details><summary>Run facts</summary>\n", "| | |", "|---|---|"]
    gpu = f.get("gpu") or {}
    if gpu.get("available"):
        names = ", ".join(g["name"] for g in gpu.get("gpus", []))
        util = gpu.get("util_mean")
        gpu_text = names + (f" · mean util {util:.0f}%" if util is not None else "")
    else:
        gpu_text = str(gpu.get("reason", "not recorded"))
    items = [
        ("backend", f.get("backend")),
        ("device", f.get("device")),
        ("GPU", gpu_text),
        ("training time", f"{f['duration_s']:.1f}s" if "duration_s" in f else None),
        ("MLflow run", f.get("mlflow_run_id")),
        ("MLflow", f.get("mlflow_tracking_uri")),
    ]
    if inp.pulled is not None:
        items.append(("DVC remote", f"{inp.pulled.remote} ({inp.pulled.files} files fetched)"))
        items += [(f"data `{v.path}`", v.md5[:12]) for v in inp.pulled.versions[:20]]
    items += [(f"stage {k}", f"{v:.1f}s") for k, v in inp.timings.items()]
    rows += [f"| {k} | {_cell(str(v))} |" for k, v in items if v is not None]
    return "\n".join(rows) + "\n\n</details>\n"


def render(inp: ReportInput, marker: str = "", limit: int = COMMENT_LIMIT) -> str:
    """The whole report, within ``limit`` characters."""
    head = (marker + "\n" if marker else "") + heading(inp)
    sections: list[str] = []
    sections += [f"> [!WARNING]\n> {_cell(n)}\n" for n in inp.notes]
    if inp.comparison is not None:
        sections.append(metrics_section(inp.comparison))
    if inp.validation is not None:
        sections.append(validation_section(inp.validation))
    if inp.pii is not None:
        sections.append(pii_section(inp.pii))
    if inp.drift is not None:
        sections.append(drift_section(inp.drift))
    if inp.comparison is not None:
        sections.append(params_section(inp.comparison))
        sections.append(slices_section(inp.comparison))
    sections.append(roc_chart(inp.roc))
    sections.append(facts_section(inp))
    sections.append("<sub>Generated by mlci.</sub>\n")
    return fit(head, [s for s in sections if s], limit, inp.full_report_hint)


def fit(head: str, sections: list[str], limit: int, hint: str) -> str:
    """Join sections; past ``limit`` drop from the end, then cut, always with a pointer."""
    body = head + "\n" + "\n".join(sections)
    if len(body) <= limit:
        return body
    note = (
        f"\n\n> [!IMPORTANT]\n> This report was cut to fit GitHub's {limit:,}-character "
        f"limit. The full report is in {hint}.\n"
    )
    kept = list(sections)
    while kept and len(head + "\n" + "\n".join(kept) + note) > limit:
        kept.pop()
    body = head + "\n" + "\n".join(kept)
    if len(body + note) > limit:
        body = body[: limit - len(note)]
        # Never leave a half-open <details> or code fence behind the cut.
        if body.count("```") % 2:
            body += "\n```"
        body += "\n</details>" * max(0, body.count("<details") - body.count("</details>"))
        body = body[: limit - len(note)]
    return body + note


# ---- the promotion note (``mlci promote``) ----


@dataclass(frozen=True)
class PromotionFacts:
    """What ``mlci promote`` found and did, for the note (plain data)."""

    model: str
    git_sha: str
    run_id: str
    comparison: Comparison
    champion_before: str | None
    version: str | None = None
    created: bool = False
    champion: str | None = None
    previous: str | None = None
    refused: bool = False


def promotion_note(report_name: str, f: PromotionFacts, marker: str = "") -> str:
    """The note as Markdown (pure): what happened, the versions, the commit, the run, and the
    gated metrics against the champion (the PR report's metrics table)."""
    model, short = f"`{fmt(f.model)}`", f"`{fmt(f.git_sha[:7])}`"
    was = f"v{f.champion_before}" if f.champion_before else "none"
    if f.refused or f.version is None:
        icon, status = "❌", "not promoted"
        stays = f"`champion` stays {was}" if f.champion_before else "there is still no `champion`"
        summary = f"{model} from {short} does not hold up against the champion: {stays}"
        rows = [("new version", "not registered"), ("champion", f"{was} (unchanged)")]
        rows.append(("previous", "unchanged"))
    else:
        version = f"v{f.version}" + (" (registered now)" if f.created else " (registered before)")
        if f.champion == f.version:
            icon, status = "✅", "promoted"
            summary = f"{model} v{f.version} from {short} is now `champion`"
        else:
            icon, status = "☑️", "registered"
            summary = f"{model} v{f.version} is registered; `champion` stays v{f.champion}"
            summary += ", a newer commit's model"
        moved = "" if f"v{f.champion}" == was else f" (was {was})"
        rows = [("new version", version), ("champion", f"v{f.champion}{moved}")]
        rows.append(("previous", f"v{f.previous}" if f.previous else "none"))
    rows = [("model", model), *rows, ("commit", f"`{fmt(f.git_sha)}`")]
    rows += [("MLflow run", f"`{fmt(f.run_id)}`")]
    head = (
        marker + "\n" if marker else ""
    ) + f"## {icon} {fmt(report_name)} promotion: {status}\n\n"
    head += f"**{summary}.**\n"
    table = "| | |\n|---|---|\n" + "".join(f"| {k} | {v} |\n" for k, v in rows)
    gated = metrics_section(f.comparison).replace(
        "| metric | base | PR |", "| metric | champion | this commit |", 1
    )
    sections = [table, gated, "<sub>Generated by mlci promote.</sub>\n"]
    return fit(head, sections, COMMENT_LIMIT, "the job summary")
