"""Whatever fails, `mlci run` leaves a report (on disk and in the job summary), exits with the
documented code and says it once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Workspace
from github_server import FakeGitHub

pytestmark = pytest.mark.slow


def _errors(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith(("::error", "error:"))]


def test_a_settings_error_still_writes_a_report(workspace: Workspace) -> None:
    p = workspace.project
    params = p / "params.yaml"
    params.write_text(params.read_text().replace("  model_name:", "  modle_name:"))
    summary, outputs = workspace.work / "summary.md", workspace.work / "outputs.txt"
    proc = workspace.mlci(
        p, "run", "--no-pull", GITHUB_STEP_SUMMARY=str(summary), GITHUB_OUTPUT=str(outputs)
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert len(_errors(proc.stderr)) == 1
    report = (p / ".mlci" / "report.md").read_text()
    assert "modle_name" in report and "configuration error" in report
    assert report in summary.read_text()
    meta = json.loads((p / ".mlci" / "report.json").read_text())
    assert meta["verdict"] == "error" and meta["exit_code"] == 2
    assert "verdict=error" in outputs.read_text().splitlines()


def test_a_broken_event_file_is_exit_2_with_a_report(workspace: Workspace) -> None:
    event = workspace.work / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 7, "head": ["not", "an", "object"]}}))
    p = workspace.project
    proc = workspace.mlci(
        p,
        "run",
        "--no-pull",
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_EVENT_PATH=str(event),
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = _errors(proc.stderr)
    assert "'pull_request.head'" in line and "Traceback" not in proc.stderr
    assert "pull_request.head" in (p / ".mlci" / "report.md").read_text()


def test_a_missing_params_file_is_exit_2_not_a_green_check(workspace: Workspace) -> None:
    p = workspace.project
    proc = workspace.mlci(p, "run", "--no-pull", MLCI_PARAMS_FILE="config/params.yml")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = _errors(proc.stderr)
    assert "config/params.yml" in line and "does not exist" in line
    assert "config/params.yml" in (p / ".mlci" / "report.md").read_text()


def test_a_posting_failure_is_said_once(workspace: Workspace, github: FakeGitHub) -> None:
    github.fail("POST", r"/issues/7/comments$", 502, times=20)
    github.fail("GET", r"/issues/7/comments", 502, times=20)
    ci = workspace.clone()
    event = workspace.work / "event.json"
    event.write_text(json.dumps({"number": 7, "pull_request": {"number": 7}}))
    proc = workspace.mlci(
        ci,
        "run",
        "--base",
        "main",
        GITHUB_ACTIONS="true",
        GITHUB_EVENT_NAME="pull_request",
        GITHUB_EVENT_PATH=str(event),
        GITHUB_REPOSITORY=github.repo,
        GITHUB_TOKEN=github.token,
        GITHUB_API_URL=github.url,
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert len(_errors(proc.stdout + proc.stderr)) == 1, proc.stdout + proc.stderr
    assert "verdict: passed" in proc.stdout
    assert Path(ci / ".mlci" / "report.md").exists()
