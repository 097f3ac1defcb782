"""Show your math, end to end on the bundled example: one `mlci run` of the PR branch (trained
once for the module) with gates on pseudo-metrics, then `mlci report` on a PR model that cannot
be scored. The report's three sections compare base and PR; a latency gate fails with exit 4."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import Workspace, git

pytestmark = pytest.mark.slow

NUMBER = r"-?[0-9][0-9.,e+-]*"
QUICK = {"seconds": 6}  # the measurements' time budget: a third for latency, a third per model


def _settings(ci: Path, **mlci: object) -> None:
    path = ci / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["mlci"].update(mlci)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def checked(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Workspace, Path, subprocess.CompletedProcess[str]]:
    work = tmp_path_factory.mktemp("math") / "work"
    shutil.copytree(template, work, symlinks=True)
    ws = Workspace(work)
    ci = ws.clone()
    gates = yaml.safe_load((ci / "params.yaml").read_text())["mlci"]["gates"]
    gates["mlci.latency_p95_ms"] = {"direction": "lower", "max": 0.0001}  # no model is this fast
    gates["mlci.model_mb"] = {"direction": "lower", "rel_tol": 100.0}
    _settings(ci, gates=gates, cost={"runner_hour": 0.36, "currency": "USD"}, explain=QUICK)
    return ws, ci, ws.mlci(ci, "run", "--base", "main")


def test_a_latency_gate_fails_the_check_with_exit_4(
    checked: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    _, ci, proc = checked
    assert proc.returncode == 4, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert "## ❌ mlci: failed" in report
    failed = report[report.index("**Failed gates**") : report.index("Gates that passed")]
    assert "`mlci.latency_p95_ms` = " in failed and "is above the maximum 0.0001" in failed
    assert "mlci.model_mb" not in failed  # the size gate passed
    assert re.search(r"✅ pass: `mlci.model_mb` ", report)
    assert "insight" not in proc.stderr  # no traceback of these sections


def test_the_sections_show_base_and_pr(
    checked: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    _, ci, _ = checked
    report = (ci / ".mlci" / "report.md").read_text()
    run = report[report.index("### What it costs to run") :]
    for label in ("predict one row, p95 (ms)", "batch of 1,000 rows, p50 (ms)", "model size (MB)"):
        row = next(line for line in run.splitlines() if line.startswith(f"| {label}"))
        assert re.fullmatch(rf"\| .+ \| {NUMBER} \| {NUMBER} \| [+-]{NUMBER}%? \|", row), row
    assert "- base model: `models/model.pkl at main (" in run
    assert "- PR model: `models/model.pkl (this PR)`" in run
    assert "Measured in this job on 133 evaluation rows, base and PR called in turn" in run
    drivers = report[report.index("### What drives the predictions") :]
    assert "Permutation importance" in drivers and "on the same 133 rows" in drivers
    rows = [line for line in drivers.splitlines() if line.startswith("| `")]
    assert 3 <= len(rows) <= 20
    for row in rows[:3]:
        assert re.fullmatch(rf"\| `\w+` \| {NUMBER} \| {NUMBER} \| \d+ → \d+( [↑↓])? \|", row), row
    train = report[report.index("### What it costs to train") :]
    assert re.search(
        rf"\| training \(fit\) time, as recorded \| {NUMBER} s \| {NUMBER} s \|", train
    )
    assert re.search(rf"\| cost · `mlci.cost` \| — \| {NUMBER} USD \|", train)
    assert "Cost = runner_hour 0.36 × " in train
    assert report.index("### What it costs to run") < report.index("<summary>Run facts</summary>")
    assert "| stage insight |" in report  # its own time, beside the other stages'


def test_a_model_the_base_has_byte_for_byte_is_not_measured_again(
    checked: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    ws, ci, _ = checked
    git(ci, "add", "-A")
    git(ci, "commit", "-q", "-m", "The trained PR, as pushed")  # its dvc.lock: this model
    proc = ws.mlci(ci, "report", "--base", "HEAD")
    report = (ci / ".mlci" / "report.md").read_text()
    assert "the PR's model is the base's (models/model.pkl at HEAD" in report, report
    assert "| predict one row, p95 (ms)" not in report  # nothing loaded, nothing timed
    assert "`mlci.latency_p95_ms`" not in report.split("Gates that passed")[0]  # not failed
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_model_that_cannot_be_scored_is_named_not_crashed(
    checked: tuple[Workspace, Path, subprocess.CompletedProcess[str]],
) -> None:
    ws, ci, _ = checked
    (ci / "broken_model.py").write_text(
        "class Broken:\n    def predict(self, x):\n        raise RuntimeError('no scoring today')\n"
    )
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import pickle, broken_model; "
            "open('models/model.pkl', 'wb').write(pickle.dumps(broken_model.Broken()))",
        ],
        cwd=ci,
        check=True,
    )
    gates = {
        "accuracy": {"direction": "higher", "abs_tol": 0.02},
        "mlci.latency_p95_ms": {"direction": "lower", "max": 1000, "required": False},
    }
    _settings(ci, gates=gates, explain=QUICK)
    proc = ws.mlci(ci, "report", "--base", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert (
        "- PR model: `models/model.pkl (this PR)`; latency not available: predict raised "
        "RuntimeError: no scoring today" in report
    )
    assert "- base model: `models/model.pkl at main (" in report  # still timed
    assert "is not available (optional gate): predict raised RuntimeError" in report
    assert (
        "_Not available: permutation importance needs a scikit-learn estimator; the model is a "
        "broken_model.Broken._" in report
    )
    assert "Traceback" not in proc.stderr
    assert re.search(r"\| model size \(MB\) · `mlci.model_mb` \| 0\.\d+ \| [0-9.]+e-05 \|", report)
