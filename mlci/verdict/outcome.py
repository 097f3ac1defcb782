"""The one vocabulary of a PR check's result: an :class:`Outcome`, and a :class:`Verdict`.

Each outcome carries everything that is said about it elsewhere: its ``verdict`` output value,
its icon in the report, its check-run conclusion, its commit-status state and its exit code.
Nothing else compares verdict strings. (``mlci monitor`` has its own ``monitor.result.Status``:
healthy / drift / degraded / error, for a different question.)

``REPORTED`` is the neutral outcome of a check without gates: the metrics are reported, not
judged. It exits 0, as nothing the user configured failed, and its check run is ``neutral``
(grey, not green). A commit status has no neutral state, so the fallback is ``success`` with a
description that says "not judged". Pure: no I/O except :meth:`Verdict.load`.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.errors import (
    EXIT_DATA_INVALID,
    EXIT_GATE_FAILED,
    EXIT_OK,
    EXIT_UNEXPECTED,
    ConfigError,
    DataInvalid,
    GateFailed,
    MlciError,
)
from mlci.verdict.metrics import Comparison


class Outcome(enum.Enum):
    """What a PR check concluded; the value is the action's ``verdict`` output."""

    PASSED = "passed"
    REPORTED = "reported"  # no gates: reported, not judged
    FAILED = "failed"  # a gate failed: the model regressed
    DATA_INVALID = "data-invalid"
    ERROR = "error"

    @property
    def icon(self) -> str:
        return _ICONS[self]

    @property
    def conclusion(self) -> str:
        """The check run's conclusion."""
        return _CONCLUSIONS[self]

    @property
    def state(self) -> str:
        """The commit status's state (the fallback where check runs are not permitted)."""
        return _STATES[self]

    @property
    def exit_code(self) -> int:
        """The exit code; an ``ERROR`` verdict carries its error's own (see ``Verdict``)."""
        return _EXIT_CODES[self]

    @property
    def failing(self) -> bool:
        return self in (Outcome.FAILED, Outcome.DATA_INVALID, Outcome.ERROR)

    @classmethod
    def parse(cls, value: object, where: str) -> Outcome:
        try:
            return cls(value)
        except ValueError:
            known = ", ".join(o.value for o in cls)
            raise ConfigError(
                f"{where}: verdict {value!r} is not one of {known}",
                fix="write the report with `mlci run` or `mlci report` of this mlci version",
            ) from None


_ICONS = {
    Outcome.PASSED: "✅",
    Outcome.REPORTED: "⚪",
    Outcome.FAILED: "❌",
    Outcome.DATA_INVALID: "🛑",
    Outcome.ERROR: "⚠️",
}
_CONCLUSIONS = {
    Outcome.PASSED: "success",
    Outcome.REPORTED: "neutral",
    Outcome.FAILED: "failure",
    Outcome.DATA_INVALID: "failure",
    Outcome.ERROR: "failure",
}
_STATES = {
    Outcome.PASSED: "success",
    Outcome.REPORTED: "success",
    Outcome.FAILED: "failure",
    Outcome.DATA_INVALID: "failure",
    Outcome.ERROR: "error",
}
_EXIT_CODES = {
    Outcome.PASSED: EXIT_OK,
    Outcome.REPORTED: EXIT_OK,
    Outcome.FAILED: EXIT_GATE_FAILED,
    Outcome.DATA_INVALID: EXIT_DATA_INVALID,
    Outcome.ERROR: EXIT_UNEXPECTED,
}
VALUES = tuple(o.value for o in Outcome)


@dataclass(frozen=True)
class Verdict:
    """An outcome with its one-line summary. ``code`` is the exit code of an ``ERROR``
    verdict (its error's); every other outcome has its own fixed exit code."""

    outcome: Outcome
    summary: str = ""
    code: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.outcome, Outcome):  # a value such as "failed"
            object.__setattr__(self, "outcome", Outcome(self.outcome))
        if self.outcome is not Outcome.ERROR:  # fixed by the outcome: nothing to carry
            object.__setattr__(self, "code", None)

    @property
    def status(self) -> str:
        """The outcome's value: the ``verdict`` output and the report's word."""
        return self.outcome.value

    @property
    def icon(self) -> str:
        return self.outcome.icon

    @property
    def exit_code(self) -> int:
        if self.outcome is Outcome.ERROR and self.code is not None:
            return self.code
        return self.outcome.exit_code

    @classmethod
    def of_error(cls, error: MlciError) -> Verdict:
        return cls(Outcome.ERROR, f"{error.title}: {error.one_line()}", error.exit_code)

    def error(self, fix: str | None = None) -> MlciError | None:
        """The error that makes a failing gate or data verdict its exit (``fix`` defaults to
        the report's section); None otherwise: an ``ERROR`` verdict is raised as the error it
        came from, and the others exit 0."""
        if self.outcome is Outcome.FAILED:
            return gate_failed(self.summary, fix or "see the report's failed gates")
        if self.outcome is Outcome.DATA_INVALID:
            return DataInvalid(self.summary, fix=fix or "see the report's data validation section")
        return None

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.status, "summary": self.summary, "exit_code": self.exit_code}

    @classmethod
    def from_json(cls, data: Mapping[str, Any], where: str) -> Verdict:
        """A verdict as :meth:`to_json` wrote it; an unknown verdict is a ConfigError."""
        outcome = Outcome.parse(data.get("verdict"), where)
        summary = data.get("summary")
        code = data.get("exit_code")
        return cls(
            outcome,
            summary if isinstance(summary, str) else "",
            code if isinstance(code, int) and not isinstance(code, bool) else None,
        )

    @classmethod
    def load(cls, report: Path) -> Verdict:
        """The verdict saved beside a report (``report.json`` next to ``report.md``). A report
        with none is ``REPORTED``: posted as not judged, never as a green pass."""
        meta = report.with_suffix(".json")
        if not meta.is_file():
            return cls(Outcome.REPORTED, f"reported, not judged: no verdict beside {report.name}")
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"{meta}: not a verdict file ({exc})",
                fix="write the report again with `mlci report` or `mlci run`",
            ) from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{meta}: expected a JSON object", fix="run `mlci report` again")
        return cls.from_json(data, str(meta))


def gate_failed(summary: str, fix: str) -> GateFailed:
    """The one way to make the exit of a failed gate (PR check, `compare`, promotion)."""
    return GateFailed(summary, fix=fix)


def of_comparison(c: Comparison) -> Verdict:
    """The verdict of a comparison: failed gates, no gates (reported, not judged), or passed.

    Explicit gates always decide. Without them the verdict is neutral and counts the metrics
    whose name says which way is better and that got worse.
    """
    if c.failed:
        names = ", ".join(m.name for m in c.failed)
        return Verdict(Outcome.FAILED, f"{len(c.failed)} gate(s) failed: {names}")
    worse = _worse_summary(c)
    if not c.gated:
        return Verdict(Outcome.REPORTED, f"reported, not judged: no gates are configured; {worse}")
    extra = "" if c.has_baseline else " (no baseline on base)"
    ungated = [m.name for m in c.worsened]
    tail = (
        f"; ungated, {_count(ungated, 'metric')} got worse: {name_list(ungated)}" if ungated else ""
    )
    return Verdict(Outcome.PASSED, f"all {_count(c.gated, 'gate')} passed{extra}{tail}")


def _worse_summary(c: Comparison) -> str:
    known = c.directed
    if not c.has_baseline:
        return f"no baseline to compare {_count(known, 'metric')} with a known direction"
    if not known:
        return "no metric name says which way is better"
    worse = [m.name for m in c.worsened]
    if not worse:
        return f"none of the {_count(known, 'metric')} with a known direction got worse"
    return f"{len(worse)} of {_count(known, 'metric')} with a known direction got worse: " + (
        name_list(worse)
    )


def _count(items: Any, word: str) -> str:
    n = len(items)
    return f"{n} {word}{'' if n == 1 else 's'}"


def name_list(names: list[str], shown: int = 5) -> str:
    """The first ``shown`` names, and how many more."""
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more
