"""The data checks of a PR: schema validation, a personal-data scan, and drift and the
row-level diff against the base.

Work is skipped where content hashes say the answer is known: a file identical to base has
exactly zero drift and no changed row, and a file scanned before keeps its findings, so a no-op
check never loads the data. Drift and the diff share the two tables each file is read into.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci.checks import datadiff, drift, frames, privacy, validation
from mlci.checks.cache import JsonCache, private
from mlci.project import data
from mlci.settings.config import Settings


def _table_at(root: Path, sha: str, path: str) -> Any | None:
    """A data file as it was at ``sha``: from git if tracked there, else through DVC."""
    raw = data.read_at(root, sha, path)
    return None if raw is None else frames.table_from_bytes(raw, f"{path} at {sha[:7]}")


def row_keys(root: Path, settings: Settings, path: str) -> tuple[tuple[str, ...], str]:
    """The columns that name one row of ``path`` and where they come from: ``mlci.data_keys``,
    else the first column its YAML schema marks ``unique: true``; else none (whole rows)."""
    if path in settings.data_keys:
        return tuple(settings.data_keys[path]), "mlci.data_keys"
    spec = settings.validate.get(path, "")
    if not spec.endswith((".yaml", ".yml")):  # a Python schema would have to be imported
        return (), ""
    import yaml

    try:
        doc = yaml.safe_load((root / spec).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):  # its validation says why
        return (), ""
    columns = doc.get("columns") if isinstance(doc, Mapping) else None
    unique = [
        str(name)
        for name, column in (columns.items() if isinstance(columns, Mapping) else ())
        if isinstance(column, Mapping) and column.get("unique") is True
    ]
    return ((unique[0],), "schema") if unique else ((), "")


def check_data(
    root: Path, settings: Settings, base_sha: str | None, *, use_cache: bool = True
) -> tuple[
    validation.ValidationReport,
    drift.DriftReport | None,
    privacy.PiiReport,
    tuple[datadiff.FileDiff, ...],
]:
    """Schema validation, personal-data scan, and drift and the row-level diff against the
    base revision. ``use_cache=False`` after the pull request's own code ran in this job (it
    could read the clone's cache secret and write an entry): nothing cached is believed."""
    report_ = validation.validate(
        root, settings.validate, settings.sensitive_columns, use_cache=use_cache
    )
    rows = {f.path: f.rows for f in report_.files}
    thresholds = settings.drift
    allow = sorted(settings.pii.allow)
    cache = JsonCache(private(root, "pii.json") if use_cache else None)
    findings: list[privacy.Finding] = []
    drifts: list[drift.FileDrift] = []
    diffs: list[datadiff.FileDiff] = []
    unreadable = {f.path for f in report_.files if not f.readable}
    for path in settings.validate:
        if path in unreadable:  # its validation failure says why; nothing to scan or compare
            continue
        md5 = data.file_md5(root / path)
        frame: list[Any] = []

        def head(path: str = path, frame: list[Any] = frame) -> Any:
            if not frame:
                frame.append(frames.read_table(root / path))
            return frame[0]

        key = f"{md5}:{','.join(allow)}"
        found = cache.get(key)
        if found is None:
            found = [dataclasses.asdict(f) for f in privacy.scan_frame(path, head(), allow)]
            cache.put(key, found)
        findings.extend(privacy.Finding(**{**f, "path": path}) for f in found)
        if base_sha is None:
            continue
        if data.base_md5(root, base_sha, path) == md5:
            n = rows.get(path, 0)
            drifts.append(drift.FileDrift(path, n, n, note="identical to base: no drift"))
            diffs.append(datadiff.unchanged_file(path, n))
            continue
        base = _table_at(root, base_sha, path)
        if base is None:
            drifts.append(drift.FileDrift(path, None, len(head()), note="new file: not on base"))
            diffs.append(datadiff.new_file(path, len(head())))
        else:
            drifts.append(drift.compare_frames(path, base, head(), thresholds))
            keys, source = row_keys(root, settings, path)
            masked = {f["column"] for f in found} | set(settings.sensitive_columns)
            diffs.append(datadiff.diff_frames(path, base, head(), keys, source, masked))
    cache.save()
    pii = privacy.PiiReport(tuple(findings), settings.pii.block)
    drift_report = drift.DriftReport(tuple(drifts), thresholds) if base_sha else None
    return report_, drift_report, pii, tuple(diffs)
