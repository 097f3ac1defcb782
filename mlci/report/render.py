"""Render the PR report as GitHub-flavoured Markdown. Pure: data in, text out.

Order: verdict first, then gates and metrics, params, data, slices, plots (rendered by
``plot_render``), run facts. The promotion note is ``promotion_note``. Every string
from data goes through ``markdown.inert`` or ``markdown.code``. ``render`` makes the full
report (the file on disk); ``fit`` shortens it for a comment, a check run or a job summary:
verdict and gates stay, rows are dropped, and a note says where the full report is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mlci import markdown
from mlci.checks.datadiff import FileDiff
from mlci.checks.drift import DriftReport
from mlci.checks.privacy import PiiReport
from mlci.checks.validation import ValidationReport
from mlci.errors import MlciError, StageFailed
from mlci.markdown import code, fit, inert
from mlci.project.remote import PullResult
from mlci.report.data_sections import drift_section, fmt, pii_section, validation_section
from mlci.report.datadiff import data_diff_section
from mlci.report.insight import insight_sections
from mlci.report.runtime import stack_change
from mlci.verdict.directions import gates_yaml, is_counter, suggest_gates
from mlci.verdict.metrics import FAIL, NEW, PASS, SKIPPED, Comparison, MetricDiff
from mlci.verdict.outcome import Outcome, Verdict

__all__ = ["Outcome", "ReportInput", "Verdict", "render"]  # the verdict lives in mlci.outcome

MARKER_PREFIX = markdown.marker_prefix("report")


def marker_for(report_name: str) -> str:
    """The hidden marker that finds a report's comment again: ``<!-- mlci-report:NAME -->``."""
    return markdown.marker("report", report_name)


@dataclass(frozen=True)
class ReportInput:
    name: str
    verdict: Verdict
    comparison: Comparison | None = None
    validation: ValidationReport | None = None
    drift: DriftReport | None = None
    data_diff: tuple[FileDiff, ...] = ()  # what changed in each data file against the base
    pii: PiiReport | None = None
    pulled: PullResult | None = None
    facts: Mapping[str, Any] = field(default_factory=dict)
    timings: Mapping[str, float] = field(default_factory=dict)
    head_sha: str | None = None
    plots: str = ""  # the rendered Plots section (see mlci.plot_render.section)
    notes: Sequence[str] = ()
    full_report_hint: str = "the job summary or the report artifact"
    error: MlciError | None = None  # what stopped the check: shown in full, with its fix
    params_only: Comparison | None = None  # the params diff when metrics could not be compared


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
    sha = f" · {code(inp.head_sha[:7])}" if inp.head_sha else ""
    base = ""
    if inp.comparison is not None:
        b = inp.comparison
        base = f" vs {code(b.base_rev)}" + (f" ({code(b.base_sha[:7])})" if b.base_sha else "")
    summary = inert(inp.verdict.summary, 500)
    return (
        f"## {inp.verdict.icon} {inert(inp.name)}: {inert(inp.verdict.status)}\n\n"
        f"{f'**{summary}**' if summary else inert(inp.verdict.status)}{base}{sha}\n"
    )


def _changed(m: MetricDiff) -> bool:
    return bool(m.base != m.head)


def _row_order(m: MetricDiff) -> tuple[bool, bool, bool, str]:
    """Failed gates first, then the other gates, then changed metrics, then the rest."""
    return (m.status != FAIL, m.gate is None, not _changed(m), m.name)


def _gate_line(m: MetricDiff) -> str:
    """A gate's message with its metric's name as code (the message starts with it)."""
    if m.name and m.message.startswith(m.name):
        return code(m.name) + inert(m.message[len(m.name) :], 400)
    return inert(m.message, 400)


def metrics_section(c: Comparison) -> str:
    lines = []
    for note in c.notices:
        lines.append(f"> [!NOTE]\n> {inert(note, 500)}\n")
    main = [m for m in c.metrics if not m.name.startswith("slices.")]
    idle = [m.name for m in main if m.gate is None and is_counter(m.name) and not _changed(m)]
    main = [m for m in main if m.name not in idle]
    if not main:
        lines.append("_No metrics found: declare them under `metrics:` in dvc.yaml._\n")
        return "\n".join(lines)
    failed = c.failed
    if failed:
        lines.append("**Failed gates**\n")
        lines.extend(f"- ❌ {_gate_line(m)}" for m in failed)
        lines.append("")
    gated = sorted((m for m in c.gated if m.status != FAIL), key=_row_order)
    if gated:
        lines.append("<details><summary>Gates that passed</summary>\n")
        lines.extend(f"- {_gate(m)}: {_gate_line(m)}" for m in gated)
        lines.append("\n</details>\n")
    lines.append("### Metrics\n")
    lines.append("| metric | base | PR | change | rel. | | gate |")
    lines.append("|---|---:|---:|---:|---:|:-:|---|")
    for m in sorted(main, key=_row_order):
        lines.append(
            f"| {code(m.name, cell=True)} | {fmt(m.base)} | {fmt(m.head)} | {_signed(m.change)} "
            f"| {_signed(m.rel_change, pct=True)} | {_arrow(m)} | {_gate(m)} |"
        )
    if idle:
        shown = ", ".join(code(n) for n in idle[:10])
        lines.append(f"\n<sub>Unchanged counters not shown: {shown}.</sub>")
    if not c.gated:
        lines.append(_suggested_gates(main))
    return "\n".join(lines) + "\n"


def _suggested_gates(rows: Sequence[MetricDiff]) -> str:
    """A ready-to-paste ``gates:`` block from the metrics whose names say their direction
    (plain names only: see ``directions.gates_yaml``)."""
    found = suggest_gates(m.name for m in rows)
    if not found:
        return ""
    block = "\n".join(["mlci:", *gates_yaml(found)])
    return (
        "\n<details><summary>Gates to paste into params.yaml (directions read from the metric "
        "names; add <code>abs_tol</code> / <code>rel_tol</code> for noise)</summary>\n\n"
        f"```yaml\n{block}\n```\n\n</details>"
    )


def params_section(c: Comparison) -> str:
    if not c.params:
        return "### Params\n\nNo params changed.\n"
    rows = ["### Params\n", "| param | base | PR |", "|---|---|---|"]
    rows += [f"| {code(p.name, cell=True)} | {fmt(p.base)} | {fmt(p.head)} |" for p in c.params]
    return "\n".join(rows) + "\n"


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
        f"| {code(m.name[7:], cell=True)} | {fmt(m.base)} | {fmt(m.head)} | {_signed(m.change)} |"
        for m in rows
    ]
    return "\n".join(out) + "\n\n</details>\n"


def _gpu_text(gpu: Any) -> str:
    if not isinstance(gpu, Mapping):
        return "not recorded"
    if not gpu.get("available"):
        return str(gpu.get("reason", "not recorded"))
    gpus = gpu.get("gpus")
    names = (
        ", ".join(str(g.get("name", "?")) for g in gpus if isinstance(g, Mapping))
        if isinstance(gpus, list)
        else ""
    )
    util = gpu.get("util_mean")
    return names + (f" · mean util {util:.0f}%" if _number(util) else "")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def facts_section(inp: ReportInput) -> str:
    """Run facts from the training JSON and the pull: keys are ours, values are data."""
    f = inp.facts
    rows = ["<details><summary>Run facts</summary>\n", "| | |", "|---|---|"]
    duration = f.get("duration_s")
    found = f.get("training")
    training: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    # A reused training's facts name a run in the job that trained it, not in this one.
    run_id = training.get("run_id") or (None if training else f.get("mlflow_run_id"))
    items: list[tuple[str, str | None]] = [
        ("backend", _inert_or_none(f.get("backend"))),
        ("device", _inert_or_none(f.get("device"))),
        ("GPU", inert(_gpu_text(f["gpu"])) if "gpu" in f else None),  # mlci's trainer only
        ("training time", f"{duration:.1f}s" if _number(duration) else None),
        ("MLflow run", None if run_id is None else code(run_id, cell=True)),
        ("MLflow", None if run_id is None else _inert_or_none(f.get("mlflow_tracking_uri"))),
    ]
    if training:
        items.insert(0, ("training", inert(training.get("summary"), 300)))
        items += [("note", inert(n, 300)) for n in training.get("notes") or []]
    if inp.pulled is not None:
        remote = f"{inert(inp.pulled.remote)} ({inp.pulled.files} files fetched)"
        items.append(("DVC remote", remote))
    lineage = f.get("lineage") if isinstance(f.get("lineage"), Mapping) else None
    if lineage is not None:
        items += _lineage_rows(lineage)
    elif inp.pulled is not None:
        items += [
            (f"data {code(v.path, cell=True)}", code(v.md5[:12], cell=True))
            for v in inp.pulled.versions[:20]
        ]
    items += [(f"stage {inert(k)}", f"{v:.1f}s") for k, v in inp.timings.items()]
    rows += [f"| {k} | {v} |" for k, v in items if v is not None]
    return "\n".join(rows) + "\n\n</details>\n"


LINEAGE_GROUPS = (("data", "data"), ("models", "model"), ("metrics", "metrics"), ("plots", "plot"))


def _lineage_rows(lineage: Mapping[str, Any], limit: int = 30) -> list[tuple[str, str | None]]:
    """The ``dvc.lock`` hashes after the run, by kind; the training's key."""
    rows: list[tuple[str, str | None]] = []
    for group, label in LINEAGE_GROUPS:
        files = lineage.get(group)
        if isinstance(files, Mapping):
            rows += [
                (f"{label} {code(p, cell=True)}", code(str(h)[:12], cell=True))
                for p, h in list(files.items())[:limit]
            ]
    key = lineage.get("key")
    if key:
        stage = inert(lineage.get("stage") or "?")
        rows.append((f"training inputs (stage {stage})", code(str(key)[:12], cell=True)))
    return rows


def _inert_or_none(value: Any) -> str | None:
    return None if value is None else inert(value)


def failure_section(err: MlciError) -> str:
    """What stopped the check and its fix, never shortened (the verdict line may be); for a
    failed pipeline stage also its command, exit status and the end of its stderr, folded."""
    out = ["### What failed\n", f"{inert(err.message, None)}\n"]
    if err.fix:
        out.append(f"**Fix:** {inert(err.fix, None)}\n")
    if isinstance(err, StageFailed):
        tail = list(err.stderr_tail)
        what = f"last {len(tail)} lines of its stderr" if tail else "it wrote nothing to stderr"
        out.append(
            f"<details><summary>Stage <code>{inert(err.stage)}</code>: command, exit status, "
            f"{what}</summary>\n"
        )
        out.append(f"- command: {code(err.command, None)}")
        out.append(f"- exit status: {err.returncode}\n")
        if tail:
            out.append("<pre>" + "\n".join(inert(line, 300) for line in tail) + "</pre>")
        out.append("\n</details>\n")
    return "\n".join(out)


def rebuilt_notice(pulled: PullResult) -> str:
    """The outputs the DVC remote lacked, which ``dvc repro`` rebuilt, and the fix."""
    paths = ", ".join(code(p) for p in pulled.missing[:20])
    more = f" and {len(pulled.missing) - 20} more" if len(pulled.missing) > 20 else ""
    return (
        f"> [!WARNING]\n> The DVC remote {code(pulled.remote)} lacks {len(pulled.missing)} "
        f"output(s): {paths}{more}. They were rebuilt here by `dvc repro`. Fix: run "
        "`dvc push` where they were produced (`dvc status -c` lists what the remote lacks).\n"
    )


def render(inp: ReportInput, marker: str = "", limit: int | None = None) -> str:
    """The whole report; with ``limit``, shortened by :func:`fit` to that many characters
    with a pointer to ``inp.full_report_hint``."""
    head = (marker + "\n" if marker else "") + heading(inp) + stack_change(inp.facts)
    sections: list[str] = []
    if inp.error is not None and (
        isinstance(inp.error, StageFailed) or len(inp.verdict.summary) > 500  # heading cuts
    ):
        sections.append(failure_section(inp.error))
    if inp.pulled is not None and inp.pulled.missing:
        sections.append(rebuilt_notice(inp.pulled))
    sections += [f"> [!WARNING]\n> {inert(n, 500)}\n" for n in inp.notes]
    if inp.comparison is not None:
        sections.append(metrics_section(inp.comparison))
    if inp.validation is not None:
        sections.append(validation_section(inp.validation))
    if inp.pii is not None:
        sections.append(pii_section(inp.pii))
    if inp.drift is not None:
        sections.append(drift_section(inp.drift))
    sections.append(data_diff_section(inp.data_diff))
    if inp.comparison is not None:
        sections.append(params_section(inp.comparison))
        sections.append(slices_section(inp.comparison))
    elif inp.params_only is not None:
        sections.append(params_section(inp.params_only))
    sections.append(insight_sections(inp.facts))  # show your math: cost, what drives it
    sections.append(inp.plots)
    sections.append(facts_section(inp))
    sections.append("<sub>Generated by mlci.</sub>\n")
    full = head + "\n" + "\n".join(s for s in sections if s)
    return full if limit is None else fit(full, limit, inp.full_report_hint)
