"""Failures meet the documented exit code and one line that names the place and the fix:
unreadable data (3), an unreachable MLflow (5), a gate on an unknown metric (2, with "did you
mean"), and a failed fetch of the base branch (git's own reason)."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import Workspace

DATA = "data/diabetes.csv"


def _errors(proc: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in proc.stderr + proc.stdout
    return [line for line in proc.stderr.splitlines() if line.startswith("error:")]


def _latin1(csv: str) -> bytes:
    """The same table as Excel on Windows saves it: one more text column, not UTF-8."""
    lines = csv.splitlines()
    lines[0] += ",clinic"
    lines[1:] = [
        f"{line},{'Hôpital Nord' if i == 2 else 'Zentrum'}" for i, line in enumerate(lines[1:])
    ]
    return ("\n".join(lines) + "\n").encode("latin-1")


BAD_DATA = {
    "binary": (lambda csv: bytes(range(256)) * 8, "binary, not CSV text (a NUL byte at offset 0)"),
    "empty": (lambda csv: b"", "empty (0 bytes)"),
    "latin-1": (_latin1, "not UTF-8 (byte 0xf4 at offset"),
}


@pytest.mark.parametrize("kind", BAD_DATA)
def test_unreadable_data_is_invalid_data(workspace: Workspace, kind: str) -> None:
    make, why = BAD_DATA[kind]
    p = workspace.project
    csv = p / DATA
    csv.write_bytes(make(csv.read_text(encoding="utf-8")))

    proc = workspace.mlci(p, "validate", "--out", "reports/validation.json")
    assert proc.returncode == 3, proc.stderr
    named = [line for line in _errors(proc) if DATA in line and why in line]
    assert len(named) == 1, proc.stderr
    assert "fix:" in named[0]
    saved = (p / "reports" / "validation.json").read_text(encoding="utf-8")
    assert why in saved and '"ok": false' in saved

    proc = workspace.mlci(p, "run", "--no-pull", "--base", "main")
    assert proc.returncode == 3, proc.stderr
    assert any(DATA in line and why in line for line in _errors(proc)), proc.stderr
    report = (p / ".mlci" / "report.md").read_text(encoding="utf-8")
    assert why in report


def test_a_malformed_csv_names_its_line_and_utf16_is_named(tmp_path: Path) -> None:
    from mlci.checks import frames
    from mlci.errors import DataInvalid

    bad = tmp_path / "t.csv"
    bad.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(
        DataInvalid,
        match=r"t\.csv: not a well-formed CSV table: Expected 2 fields in line 3, saw 3$",
    ):
        frames.read_table(bad, "t.csv")
    bad.write_text("a,b\n1,2\n", encoding="utf-16")
    with pytest.raises(DataInvalid, match="UTF-16 text, not UTF-8") as caught:
        frames.read_table(bad, "t.csv")
    assert caught.value.fix and "iconv -f utf-16" in caught.value.fix
    pq = tmp_path / "t.parquet"
    pq.write_bytes(b"PAR1 not really")
    with pytest.raises(DataInvalid, match=r"t\.parquet: not a readable Parquet file"):
        frames.read_table(pq, "t.parquet")


def test_an_unreadable_file_does_not_hide_the_others(tmp_path: Path) -> None:
    """Every configured file is still validated; the unreadable one is a failure entry."""
    from mlci.checks import validation
    from mlci.example import copy_files, write_data

    copy_files(tmp_path)
    write_data(tmp_path / "data" / "diabetes.csv")
    (tmp_path / "data" / "old.csv").write_bytes("patient_id\n1\n\xe9\n".encode("latin-1"))
    report = validation.validate(
        tmp_path,
        {"data/old.csv": "schemas/diabetes.yaml", "data/diabetes.csv": "schemas/diabetes.yaml"},
    )
    old, good = report.files
    assert good.ok and good.rows == 442
    assert not old.ok and not old.readable and old.rows == 0
    (failure,) = old.failures
    assert failure.column == validation.UNREADABLE
    assert failure.check.startswith("not UTF-8 (byte 0xe9 at offset 13, line 3)")
    assert "iconv -f cp1252 -t utf-8" in failure.check
    assert not report.ok and report.failure_count == 1


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_unreachable_mlflow_is_exit_5_at_once(workspace: Workspace, command: str) -> None:
    p = workspace.project
    uri = f"http://mlci:s3cret@127.0.0.1:{_closed_port()}"
    model = p / "models" / "model.pkl"
    before = model.stat().st_mtime_ns
    started = time.monotonic()
    proc = workspace.mlci(p, command, MLCI_MLFLOW_TRACKING_URI=uri)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert time.monotonic() - started < 30  # no minutes of HTTP retries
    (line,) = _errors(proc)
    public = uri.replace("mlci:s3cret@", "")
    assert f"MLflow at {public} failed: connection refused" in line
    assert "MLCI_MLFLOW_TRACKING_URI" in line
    assert "s3cret" not in proc.stdout + proc.stderr
    if command == "train":  # it fails before training, not after
        assert model.stat().st_mtime_ns == before


def test_a_gate_on_an_unknown_metric_says_did_you_mean(workspace: Workspace) -> None:
    p = workspace.project
    params = p / "params.yaml"
    params.write_text(params.read_text().replace("    roc_auc: {", "    roc_acu: {"))
    proc = workspace.mlci(p, "compare", "--base", "main")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = _errors(proc)
    assert "gate 'roc_acu' names a metric that neither main nor the PR has" in line
    assert "did you mean 'roc_auc'?" in line


def test_a_vanished_metric_fails_its_gate_with_a_hint() -> None:
    from mlci.settings.gates import Gate
    from mlci.verdict.metrics import FAIL, compare

    c = compare({"accuracy": 0.9}, {"acc": 0.9}, [Gate("accuracy")], base_rev="main")
    (failed,) = c.failed
    assert failed.status == FAIL
    assert failed.message == "accuracy vanished: the PR no longer produces it; did you mean 'acc'?"


def test_a_failed_fetch_of_the_base_names_command_remote_reason_and_fix(
    workspace: Workspace,
) -> None:
    ci = workspace.clone()
    gone = workspace.work / "moved-away.git"
    subprocess.run(["git", "remote", "set-url", "origin", str(gone)], cwd=ci, check=True)
    proc = workspace.mlci(ci, "compare", "--base", "main")
    assert proc.returncode == 5, proc.stdout + proc.stderr
    (line,) = _errors(proc)
    assert (
        "`git fetch --no-tags --depth=1 origin +refs/heads/main:refs/remotes/origin/main`" in line
    )
    assert f"origin is {gone}" in line
    assert f"'{gone}' does not appear to be a git repository" in line
    assert "the repository exists" not in line  # git's advice, not its reason
    assert "branch 'main' exists on it, or pass --base" in line
