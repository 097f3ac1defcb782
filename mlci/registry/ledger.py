"""The shadow ledger: what each monitor window showed of a version, on the version itself.

A challenger gets one entry per window (its metrics beside the champion's on the same rows,
and whether it was no worse under the gates); a champion gets one per window too, which tells
how long it has been in service (automatic rollback acts only within its probation). The entry's
key is the window's snapshot digest, so a re-run of the same window, or two jobs judging it at
once, write the same entry: a window counts once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlci.registry import tags as vocab
from mlci.registry.tracking import set_version_tags

CHALLENGER = "challenger"
CHAMPION = "champion"


@dataclass(frozen=True)
class Window:
    key: str
    at: str
    role: str  # challenger or champion
    passed: bool
    against: str | None = None  # the champion version a challenger was judged against
    metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    failed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "role": self.role,
            "passed": self.passed,
            "against": self.against,
            "metrics": self.metrics,
            "champion_metrics": self.champion_metrics,
            "failed": list(self.failed),
        }


def tag(window: Window) -> tuple[str, str]:
    """The version tag that records ``window``: name and JSON value (bounded)."""
    text = json.dumps(window.to_json(), sort_keys=True)
    if len(text) > 5000:  # many metrics: keep the verdict, drop the figures
        slim = {**window.to_json(), "metrics": {}, "champion_metrics": {}}
        text = json.dumps(slim, sort_keys=True)[:5000]
    return f"{vocab.LEDGER}{window.role}.{window.key}", text


def record(client: Any, name: str, version: str, window: Window) -> None:
    key, value = tag(window)
    set_version_tags(client, name, version, {key: value})


def read(tags: Mapping[str, Any] | None, role: str | None = None) -> list[Window]:
    """The windows a version's tags record (of ``role`` only, when given), oldest first."""
    out: list[Window] = []
    for name, value in (tags or {}).items():
        if not name.startswith(vocab.LEDGER):
            continue
        kind, _, key = name[len(vocab.LEDGER) :].partition(".")
        if role is not None and kind != role:
            continue
        try:
            raw = json.loads(str(value))
        except ValueError:
            continue
        if not isinstance(raw, dict):
            continue
        out.append(
            Window(
                key=key,
                at=str(raw.get("at", "")),
                role=kind,
                passed=raw.get("passed") is True,
                against=None if raw.get("against") is None else str(raw["against"]),
                metrics=_numbers(raw.get("metrics")),
                champion_metrics=_numbers(raw.get("champion_metrics")),
                failed=tuple(str(f) for f in raw.get("failed") or ()),
            )
        )
    return sorted(out, key=lambda w: (w.at, w.key))


def _numbers(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        return {}
    out = {}
    for k, v in raw.items():
        try:
            out[str(k)] = float(v)
        except (TypeError, ValueError):
            continue
    return out


def streak(windows: list[Window]) -> int:
    """Consecutive passed windows at the end: what probation counts."""
    n = 0
    for window in reversed(windows):
        if not window.passed:
            break
        n += 1
    return n
