"""What a monitor run found: its status, the champion it judged, and the result every later
step (report, issue, retraining PR) reads."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.checks.drift import FileDrift
from mlci.errors import EXIT_DRIFT, EXIT_GATE_FAILED, MlciError
from mlci.settings.datachecks import Thresholds
from mlci.verdict import metrics

# Exit code of a drift-only breach (see README, "Exit codes"). A degraded model exits 4, as
# any failed gate does; a crash or a service stays 1 or 5: a scheduler tells all three apart.


class Status(enum.Enum):
    """One vocabulary: the step output, its icon, its exit code."""

    HEALTHY = "healthy"
    DRIFT = "drift"
    DEGRADED = "degraded"
    ERROR = "error"

    @property
    def icon(self) -> str:
        return {"healthy": "✅", "drift": "⚠️", "degraded": "❌", "error": "💥"}[self.value]

    @property
    def breach(self) -> bool:
        return self in (Status.DRIFT, Status.DEGRADED)

    @property
    def exit_code(self) -> int:
        return {"healthy": 0, "drift": EXIT_DRIFT, "degraded": EXIT_GATE_FAILED, "error": 1}[
            self.value
        ]


@dataclass(frozen=True)
class Champion:
    name: str
    version: str
    run_id: str
    git_sha: str | None
    data: dict[str, str]  # training data path -> DVC md5, from the lineage tags
    metrics: dict[str, float]  # recorded at promotion
    backend: str = "sklearn"
    task: str | None = None  # None: not recorded; the monitor asks the model


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    batch_rows: int
    batches: int


@dataclass
class MonitorResult:
    status: Status
    champion: Champion | None = None
    snapshot: str = ""
    rows: int = 0
    drift: FileDrift | None = None
    thresholds: Thresholds = field(default_factory=Thresholds)
    comparison: metrics.Comparison | None = None
    latency: Latency | None = None
    latency_breaches: tuple[str, ...] = ()
    labelled: bool = False
    notes: list[str] = field(default_factory=list)
    error: MlciError | None = None
    at: str = ""
    shadow: Any = None  # monitor.shadow.Shadow: the challenger beside the champion
    rolled_back: tuple[str, str] | None = None  # (from, to): the guard moved champion back
    served: int = 0  # monitor windows the champion has served (its ledger)
    # filled by publishing
    report_path: Path | None = None
    issue_url: str | None = None
    pr_url: str | None = None
    dispatched: str | None = None
    publish_error: MlciError | None = None

    @property
    def summary(self) -> str:
        if self.error is not None:
            return self.error.one_line()
        parts = []
        if self.drift is not None and self.drift.drifted:
            cols = ", ".join(c.column for c in self.drift.drifted)
            parts.append(f"drift in {len(self.drift.drifted)} column(s): {cols}")
        if self.comparison is not None and self.comparison.failed:
            parts.append(
                f"{len(self.comparison.failed)} gate(s) failed: "
                + ", ".join(m.name for m in self.comparison.failed)
            )
        parts.extend(self.latency_breaches)
        if not parts:
            gated = len(self.comparison.gated) if self.comparison is not None else 0
            return f"no drift; {gated} gate(s) hold" if self.labelled else "no drift (no labels)"
        return "; ".join(parts)
