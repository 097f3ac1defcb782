"""The ``mlci.monitor`` settings: which snapshot to watch, how to judge it, what to do on a breach.

Typed once, when they load; unknown keys are errors with a "did you mean". Until ``config.py``
knows the section, ``load`` reads it from the params file itself and hands ``config.load`` the
rest (``base_settings``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError
from mlci.git import branch_problem
from mlci.settings.gates import Gate, parse_gate, reject_unknown, suggest

ON_BREACH = ("issue", "pr", "dispatch", "rollback")


def _number(value: Any, where: str, *, positive: bool = True) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}", fix="give a number")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: expected a number, got {value!r}", fix="give a number"
        ) from None
    if positive and number <= 0:
        raise ConfigError(f"{where}: {value!r} is not positive", fix="give a number above 0")
    return number


@dataclass(frozen=True)
class LatencyGate:
    """Predict latency of the champion on the snapshot, per batch of ``batch_rows`` rows."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    batch_rows: int = 1000
    batches: int = 20  # at most this many batches are timed (after one warm-up)

    @classmethod
    def from_mapping(cls, raw: Any, where: str) -> LatencyGate:
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping", fix="write e.g. `latency: {p95_ms: 50}`"
            )
        known = [f.name for f in dataclasses.fields(cls)]
        reject_unknown(raw, known, where)
        values: dict[str, Any] = {}
        for key in ("p50_ms", "p95_ms"):
            if raw.get(key) is not None:
                values[key] = _number(raw[key], f"{where}.{key}")
        for key in ("batch_rows", "batches"):
            if raw.get(key) is not None:
                values[key] = int(_number(raw[key], f"{where}.{key}"))
        return cls(**values)

    def breaches(self, p50_ms: float, p95_ms: float) -> tuple[str, ...]:
        """A sentence per limit the measured latency is over (none: within its limits)."""
        found = []
        for name, limit, value in (("p50", self.p50_ms, p50_ms), ("p95", self.p95_ms, p95_ms)):
            if limit is not None and value > limit:
                found.append(
                    f"predict latency {name} is {value:.3g} ms per {self.batch_rows} rows, "
                    f"over the limit of {limit:g} ms"
                )
        return tuple(found)


@dataclass(frozen=True)
class MonitorSettings:
    snapshot: str | None = None
    label: str | None = None  # None: `train.target`, else the one column the model does not take
    gates: tuple[Gate, ...] | None = None  # None: the PR gates (`mlci.gates`)
    latency: LatencyGate = dataclasses.field(default_factory=LatencyGate)
    on_breach: str = "issue"
    workflow: str | None = None
    branch: str = "mlci/retrain"
    history: int = 10

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "mlci.monitor") -> MonitorSettings:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping", fix="write e.g. `monitor: {snapshot: data/new.csv}`"
            )
        known = [f.name for f in dataclasses.fields(cls)]
        reject_unknown(raw, known, where)
        values: dict[str, Any] = {}
        for key in ("snapshot", "label", "on_breach", "workflow", "branch"):
            if raw.get(key) is not None:
                values[key] = str(raw[key])
        if raw.get("gates") is not None:
            gates = raw["gates"]
            if not isinstance(gates, Mapping):
                raise ConfigError(
                    f"{where}.gates: expected a mapping of metric -> gate",
                    fix="write e.g. `gates: {accuracy: {direction: higher, abs_tol: 0.05}}`",
                )
            values["gates"] = tuple(parse_gate(str(m), g, where) for m, g in gates.items())
        if raw.get("latency") is not None:
            values["latency"] = LatencyGate.from_mapping(raw["latency"], f"{where}.latency")
        if raw.get("history") is not None:
            values["history"] = int(_number(raw["history"], f"{where}.history"))
        settings = cls(**values)
        return settings.checked(where)

    def checked(self, where: str = "mlci.monitor") -> MonitorSettings:
        if self.on_breach not in ON_BREACH:
            raise ConfigError(
                f"{where}.on_breach: '{self.on_breach}' is not one of {', '.join(ON_BREACH)}",
                fix=suggest(self.on_breach, list(ON_BREACH)),
            )
        if self.on_breach == "dispatch" and not self.workflow:
            raise ConfigError(
                f"{where}.on_breach is dispatch but no workflow is named",
                fix="set `workflow:` to the workflow file to dispatch, e.g. mlci-retrain.yml",
            )
        if self.workflow is not None and not re.fullmatch(
            r"[0-9]+|[A-Za-z0-9_][A-Za-z0-9_.-]*\.ya?ml", self.workflow
        ):
            raise ConfigError(
                f"{where}.workflow: {self.workflow!r} is not a workflow file name or id",
                fix="name the file in .github/workflows/ (e.g. `workflow: mlci-retrain.yml`), "
                "or its numeric id",
            )
        if self.snapshot is not None and (
            Path(self.snapshot).is_absolute() or ".." in Path(self.snapshot).parts
        ):
            raise ConfigError(
                f"{where}.snapshot: {self.snapshot!r} points outside the project",
                fix="give a path inside the repository",
            )
        problem = branch_problem(self.branch)
        if problem:
            raise ConfigError(
                f"{where}.branch: {self.branch!r} is not a branch mlci may push to: {problem}",
                fix="name a branch of its own for the retraining PR, e.g. `branch: mlci/retrain`",
            )
        return self

    def override(self, **flags: Any) -> MonitorSettings:
        """Flags (``None``: not given) over the file's settings."""
        given = {k: v for k, v in flags.items() if v is not None}
        where = "flag"
        if "on_breach" in given and given["on_breach"] not in ON_BREACH:
            where = "--on-breach"
        return dataclasses.replace(self, **given).checked(where)
