"""One typed outcome: every verdict's icon, check-run conclusion, commit state and exit code in
one enum, the verdict of a comparison (with or without gates), and the verdict file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci.check import pipeline
from mlci.check.pipeline import CheckState
from mlci.checks.validation import Failure, FileResult, ValidationReport
from mlci.errors import ConfigError, DataInvalid, ExternalError, GateFailed
from mlci.settings.gates import Gate
from mlci.verdict import outcome
from mlci.verdict.metrics import compare
from mlci.verdict.outcome import Outcome, Verdict


@pytest.mark.parametrize(
    "o, icon, conclusion, state, code",
    [
        (Outcome.PASSED, "✅", "success", "success", 0),
        (Outcome.REPORTED, "⚪", "neutral", "success", 0),
        (Outcome.FAILED, "❌", "failure", "failure", 4),
        (Outcome.DATA_INVALID, "🛑", "failure", "failure", 3),
        (Outcome.ERROR, "⚠️", "failure", "error", 1),
    ],
)
def test_one_table(o: Outcome, icon: str, conclusion: str, state: str, code: int) -> None:
    assert (o.icon, o.conclusion, o.state, o.exit_code) == (icon, conclusion, state, code)
    assert Verdict(o).exit_code == code
    assert o.failing == (code != 0)


def test_values_are_the_action_outputs_and_differ_from_monitor() -> None:
    from mlci.monitor.result import Status

    assert outcome.VALUES == ("passed", "reported", "failed", "data-invalid", "error")
    # the monitor's statuses answer another question: no member name is shared but ERROR
    assert {o.name for o in Outcome} & {s.name for s in Status} == {"ERROR"}
    assert Outcome is not Status


def test_an_error_verdict_keeps_its_errors_exit_code() -> None:
    v = Verdict.of_error(ExternalError("MLflow at http://x failed", fix="start it"))
    assert v.outcome is Outcome.ERROR and v.exit_code == 5
    assert v.summary == "external service failed: MLflow at http://x failed; fix: start it"
    assert v.error() is None  # raised as the error it came from


def test_failing_verdicts_make_their_errors() -> None:
    gate = Verdict(Outcome.FAILED, "1 gate(s) failed: acc").error()
    assert isinstance(gate, GateFailed) and gate.exit_code == 4
    assert gate.fix == "see the report's failed gates"
    data = Verdict(Outcome.DATA_INVALID, "bad rows").error(fix="fix the rows")
    assert isinstance(data, DataInvalid) and data.fix == "fix the rows"
    assert Verdict(Outcome.REPORTED, "x").error() is None
    assert Verdict(Outcome.PASSED, "x").error() is None


def test_comparison_with_gates_decides() -> None:
    failed = outcome.of_comparison(compare({"acc": 0.9}, {"acc": 0.8}, [Gate("acc")]))
    assert failed.outcome is Outcome.FAILED and failed.summary == "1 gate(s) failed: acc"
    c = compare({"acc": 0.9, "loss": 0.2}, {"acc": 0.95, "loss": 0.3}, [Gate("acc")])
    passed = outcome.of_comparison(c)
    assert passed.outcome is Outcome.PASSED
    assert passed.summary == "all 1 gate passed; ungated, 1 metric got worse: loss"


def test_no_gates_is_reported_not_judged_and_counts_what_got_worse() -> None:
    # issue 15: Dice fell 16 % and the loss rose 7.5x, with no gates: never a green pass
    base = {"val/dice": 0.81, "val_loss": 0.04, "step": 9, "lr": 0.01, "n": 3}
    head = {"val/dice": 0.68, "val_loss": 0.30, "step": 9, "lr": 0.02, "n": 3}
    v = outcome.of_comparison(compare(base, head, []))
    assert v.outcome is Outcome.REPORTED and v.exit_code == 0
    assert v.summary == (
        "reported, not judged: no gates are configured; "
        "2 of 2 metrics with a known direction got worse: val/dice, val_loss"
    )
    better = outcome.of_comparison(compare(base, {**head, "val/dice": 0.9, "val_loss": 0.01}, []))
    assert better.outcome is Outcome.REPORTED
    assert "none of the 2 metrics with a known direction got worse" in better.summary
    unknown = outcome.of_comparison(compare({"n": 1}, {"n": 2}, []))
    assert "no metric name says which way is better" in unknown.summary


def test_verdict_of_a_check() -> None:
    bad = ValidationReport(
        (FileResult("data.csv", "s.yaml", 3, (Failure("age", "ge(0)", 1, ("-1",)),)),)
    )
    v = pipeline.verdict_of(CheckState(validation=bad))
    assert v.outcome is Outcome.DATA_INVALID and v.exit_code == 3
    none = pipeline.verdict_of(CheckState(comparison=compare({"loss": 1.0}, {"loss": 2.0}, [])))
    assert none.outcome is Outcome.REPORTED


def test_verdict_file_round_trip_and_rejection(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    v = Verdict(Outcome.REPORTED, "reported, not judged: no gates are configured")
    report.with_suffix(".json").write_text(json.dumps(v.to_json()))
    assert Verdict.load(report) == v
    # no verdict beside a report: posted as not judged, never as a green pass
    alone = tmp_path / "other.md"
    assert Verdict.load(alone).outcome is Outcome.REPORTED
    report.with_suffix(".json").write_text(json.dumps({"verdict": "green"}))
    with pytest.raises(ConfigError, match="verdict 'green' is not one of passed, reported"):
        Verdict.load(report)
