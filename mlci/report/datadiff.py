"""The report's "What changed in the data" section: per data file, rows added, removed and
changed against the base, columns added, removed and retyped, and the cells that changed most.
Pure: diffs in, Markdown out; every string from data goes through ``inert`` or ``code``."""

from __future__ import annotations

from collections.abc import Sequence

from mlci.checks.datadiff import TOP, Cell, FileDiff
from mlci.markdown import code, inert
from mlci.report.data_sections import fmt

MASKED = "(masked)"


def data_diff_section(diffs: Sequence[FileDiff]) -> str:
    """The section, or "" when no file was compared or none changed."""
    changed = [d for d in diffs if not d.identical]
    if not changed:
        return ""
    out = ["### What changed in the data\n"]
    for d in changed:
        out += _file(d)
    same = [code(d.path) for d in diffs if d.identical]
    if same:
        out.append(f"Identical to base: {', '.join(same)}.\n")
    return "\n".join(out)


def _file(d: FileDiff) -> list[str]:
    head = f"**{code(d.path)}**"
    if d.base_rows is None:
        return [f"{head}: new file, {d.rows:,} rows\n"]
    out = [f"{head}: rows {d.base_rows:,} → {d.rows:,}; {_rows(d)}\n"]
    columns = _columns(d)
    if columns:
        out.append(f"Columns: {columns}.\n")
    if d.note:
        out.append(f"<sub>{inert(d.note, 300)}</sub>\n")
    if d.cells:
        out += _cells(d)
    return out


def _rows(d: FileDiff) -> str:
    if d.added is None or d.removed is None:
        return "rows not compared"
    counts = f"+{d.added:,} added, −{d.removed:,} removed"
    if not d.keys:
        return f"{counts} (rows matched whole: no key, so no row counts as changed)"
    keys = ", ".join(code(k) for k in d.keys)
    source = {"mlci.data_keys": " (`mlci.data_keys`)", "schema": " (unique in the schema)"}
    where = source.get(d.key_source, f" ({inert(d.key_source)})" if d.key_source else "")
    n = d.changed_cells
    cells = f" ({n:,} cell{'' if n == 1 else 's'})" if d.changed else ""
    return f"{counts}, {d.changed or 0:,} changed{cells}; matched by {keys}{where}"


def _columns(d: FileDiff) -> str:
    parts = [f"+{code(c)}" for c in d.columns_added]
    parts += [f"−{code(c)}" for c in d.columns_removed]
    parts += [f"{code(c)} {code(b)} → {code(h)}" for c, b, h in d.retyped]
    return ", ".join(parts)


def _cells(d: FileDiff) -> list[str]:
    keys = ", ".join(code(k, cell=True) for k in d.keys)
    out = [
        "<details><summary>Cells that changed most</summary>\n",
        f"| row ({keys}) | column | base | PR | change |",
        "|---|---|---:|---:|---:|",
    ]
    out += [_cell_row(c) for c in d.cells]
    per_column = ", ".join(f"{code(c)} {n:,}" for c, n in d.by_column[:10])
    more = f" and {len(d.by_column) - 10} more columns" if len(d.by_column) > 10 else ""
    masked = "; values of flagged columns are masked" if any(c.masked for c in d.cells) else ""
    shown = (
        "all shown"
        if len(d.cells) == d.changed_cells
        else f"shown: at most the {TOP} largest numeric changes, then {TOP} others"
    )
    out.append(
        f"\n<sub>{d.changed_cells:,} changed cells by column: {per_column}{more}; "
        f"{shown}{masked}.</sub>"
    )
    out.append("\n</details>\n")
    return out


def _cell_row(c: Cell) -> str:
    key = MASKED if c.key is None else code(c.key, 60, cell=True)
    base, head = (MASKED, MASKED) if c.masked else (_value(c.base), _value(c.head))
    delta = "—" if c.delta is None else f"{c.delta:+.4g}"
    return f"| {key} | {code(c.column, cell=True)} | {base} | {head} | {delta} |"


def _value(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return code(value, 60, cell=True)
    return fmt(value)
