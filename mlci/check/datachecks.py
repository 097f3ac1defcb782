"""The data checks of a PR: schema validation, a personal-data scan and drift against the base.

Work is skipped where content hashes say the answer is known: a file identical to base has
exactly zero drift, and a file scanned before keeps its findings, so a no-op check never loads
the data.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from mlci.checks import drift, frames, privacy, validation
from mlci.checks.cache import JsonCache
from mlci.project import data
from mlci.settings.config import Settings


def _table_at(root: Path, sha: str, path: str) -> Any | None:
    """A data file as it was at ``sha``: from git if tracked there, else through DVC."""
    raw = data.read_at(root, sha, path)
    return None if raw is None else frames.table_from_bytes(raw, f"{path} at {sha[:7]}")


def check_data(
    root: Path, settings: Settings, base_sha: str | None
) -> tuple[validation.ValidationReport, drift.DriftReport | None, privacy.PiiReport]:
    """Schema validation, personal-data scan and drift against the base revision."""
    report_ = validation.validate(root, settings.validate, settings.sensitive_columns)
    rows = {f.path: f.rows for f in report_.files}
    thresholds = settings.drift
    allow = sorted(settings.pii.allow)
    cache = JsonCache(root / ".mlci" / "pii.json")
    findings: list[privacy.Finding] = []
    drifts: list[drift.FileDrift] = []
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
            continue
        base = _table_at(root, base_sha, path)
        if base is None:
            drifts.append(drift.FileDrift(path, None, len(head()), note="new file: not on base"))
        else:
            drifts.append(drift.compare_frames(path, base, head(), thresholds))
    cache.save()
    pii = privacy.PiiReport(tuple(findings), settings.pii.block)
    drift_report = drift.DriftReport(tuple(drifts), thresholds) if base_sha else None
    return report_, drift_report, pii
