"""The report's data sections (validation, personal data, drift) and the one formatter of a
number in a table cell. Pure: reports in, Markdown out."""

from __future__ import annotations

import math
from typing import Any

from mlci.checks.drift import DriftReport
from mlci.checks.privacy import PiiReport
from mlci.checks.validation import ValidationReport
from mlci.markdown import code, inert


def fmt(value: Any) -> str:
    """A value for a table cell: numbers rounded, anything else inert text."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return inert(value)
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}" if abs(value) >= 1e4 or (value and abs(value) < 1e-3) else f"{value:.4f}"


def validation_section(v: ValidationReport) -> str:
    if not v.files:
        return "### Data\n\nNo data validation configured (`mlci.validate`).\n"
    rows = ["### Data validation\n", "| file | schema | rows | result |", "|---|---|---:|---|"]
    for f in v.files:
        result = "✅ valid" if f.ok else f"❌ {sum(x.count for x in f.failures)} failures"
        if f.cached:
            result += " (unchanged since it last passed: not re-validated)"
        rows.append(
            f"| {code(f.path, cell=True)} | {code(f.schema, cell=True)} | {f.rows} | {result} |"
        )
    bad = [f for f in v.files if not f.ok]
    for f in bad:
        rows.append(
            f"\n<details open><summary>Failures in <code>{inert(f.path)}</code></summary>\n"
        )
        rows.append("| column | check | failing rows | sample values |")
        rows.append("|---|---|---:|---|")
        for x in f.failures:
            samples = ", ".join(code(s, 100, cell=True) for s in x.samples) or "_hidden_"
            column, check = code(x.column, cell=True), code(x.check, cell=True)
            rows.append(f"| {column} | {check} | {x.count} | {samples} |")
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
        head = f"**{code(f.path)}**: rows {base_rows} → {f.rows}"
        if f.note:
            out.append(f"{head} ({inert(f.note, 500)})\n")
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
                [*(f"+{inert(v, 60)}" for v in c.new), *(f"-{inert(v, 60)}" for v in c.vanished)]
            )
            out.append(
                f"| {code(c.column, cell=True)} | {inert(c.kind)} | {c.score:.4f} | {fmt(c.ks)} | "
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
        f"| {code(f.path, cell=True)} | {code(f.column, cell=True)} | {inert(f.kind)} | {f.count} |"
        for f in p.findings
    ]
    return "\n".join(out) + "\n"
