"""Signals and stage failures through `mlci run`: SIGTERM/SIGINT stop the stage's whole
process group and exit 143/130 with one line; the next run is not blocked by a lock; an mlci
stage's own documented error (exit code, message) survives `dvc repro`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from conftest import Workspace

pytestmark = pytest.mark.slow


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def _set_train_cmd(project: Path, cmd: str) -> str:
    path = project / "dvc.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    old = str(doc["stages"]["train"]["cmd"])
    doc["stages"]["train"]["cmd"] = cmd
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return old


def _slow_stage(pidfile: Path, *, ignore_term: bool) -> str:
    """A training stage that starts a grandchild, writes both PIDs and sleeps (SIGINT kills
    it without a traceback, so that mlci's line is all stderr holds)."""
    code = (
        "import os,signal,subprocess,time,pathlib;"
        + "signal.signal(signal.SIGINT,signal.SIG_DFL);"  # no KeyboardInterrupt traceback
        + ("signal.signal(signal.SIGTERM,signal.SIG_IGN);" * ignore_term)
        + "c=subprocess.Popen(['sleep','120']);"
        + f"pathlib.Path({str(pidfile)!r}).write_text(f'{{os.getpid()}} {{c.pid}}');"
        + "time.sleep(120)"
    )
    return f'python -c "{code}"'


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def _interrupt(workspace: Workspace, signum: int, *, ignore_term: bool) -> tuple[int, str, float]:
    """Start `mlci run --no-pull` with a slow training stage, send ``signum`` to mlci alone
    once the stage runs; returns the exit status, stderr and seconds from signal to exit."""
    p = workspace.project
    pidfile = workspace.work / "stage.pids"
    original = _set_train_cmd(p, _slow_stage(pidfile, ignore_term=ignore_term))
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlci", "run", "--no-pull", "--base", "main"],
        cwd=p,
        env=workspace.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not pids:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the stage never started"
            text = pidfile.read_text() if pidfile.exists() else ""
            pids = [int(x) for x in text.split()] if len(text.split()) == 2 else []
            time.sleep(0.1)
        sent = time.monotonic()
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=60)
        took = time.monotonic() - sent
        left = [pid for pid in pids if _alive(pid)]
        assert not left, f"stage processes still running: {left}"
    finally:
        for pid in pids:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
    _set_train_cmd(p, original)
    return proc.returncode, stderr, took


def _locks_free(project: Path) -> None:
    rwlock = project / ".dvc" / "tmp" / "rwlock"
    if rwlock.exists():
        doc = json.loads(rwlock.read_text() or "{}")
        assert set(doc) <= {"read", "write"} and not any(doc.values()), doc  # no entry left


def test_sigterm_stops_the_stage_group_and_exits_143(workspace: Workspace) -> None:
    """Today: mlci dies of the signal (-15), the stage runs on, no line, no report."""
    rc, stderr, took = _interrupt(workspace, signal.SIGTERM, ignore_term=True)
    assert rc == 143, stderr
    from mlci.signals import GRACE_S

    (line,) = _errors(stderr)
    assert line.startswith("error: interrupted: SIGTERM received while DVC stage 'train' ran")
    assert "fix: re-run" in line
    assert GRACE_S - 0.5 < took < GRACE_S + 20  # the stage ignored TERM: SIGKILL after grace
    report = (workspace.project / ".mlci" / "report.md").read_text(encoding="utf-8")
    assert "SIGTERM received" in report
    _locks_free(workspace.project)
    again = workspace.mlci(workspace.project, "run", "--no-pull", "--base", "main")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "lock" not in again.stderr.lower()


def test_sigint_to_mlci_alone_stops_the_stage_and_exits_130(workspace: Workspace) -> None:
    """Today: DVC ignores SIGINT in mlci while a stage runs; the check runs on (timeout)."""
    rc, stderr, took = _interrupt(workspace, signal.SIGINT, ignore_term=False)
    assert rc == 130, stderr
    (line,) = _errors(stderr)
    assert line.startswith("error: interrupted: SIGINT received while DVC stage 'train' ran")
    assert took < 20
    _locks_free(workspace.project)


def test_a_lock_left_by_a_killed_run_whose_pid_is_reused_does_not_block(
    workspace: Workspace,
) -> None:
    """A killed run's rwlock entry names a PID that a newer process has taken (containers
    start PIDs low again). Today DVC takes it for a live owner: exit 1, 'stage failed'."""
    p = workspace.project
    newer = subprocess.Popen(["sleep", "60"])
    try:
        rwlock = p / ".dvc" / "tmp" / "rwlock"
        rwlock.parent.mkdir(parents=True, exist_ok=True)
        owner = {"pid": newer.pid, "cmd": "mlci run"}
        outs = [str(p / "data" / "diabetes.csv"), str(p / "models" / "model.pkl")]
        rwlock.write_text(json.dumps({"write": dict.fromkeys(outs, owner)}))
        hour_ago = time.time() - 3600
        os.utime(rwlock, (hour_ago, hour_ago))
        proc = workspace.mlci(p, "run", "--base", "main")
    finally:
        newer.kill()
        newer.wait()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _locks_free(p)


def test_a_lock_held_by_a_live_process_names_the_lock_file_and_fix(
    workspace: Workspace,
) -> None:
    """Today: exit 1, 'stage failed in dvc repro', as if the stage's code were broken."""
    p = workspace.project
    rwlock = p / ".dvc" / "tmp" / "rwlock"
    rwlock.parent.mkdir(parents=True, exist_ok=True)
    owner = {"pid": os.getpid(), "cmd": "dvc repro"}  # pytest: alive, older than the file
    rwlock.write_text(json.dumps({"write": {str(p / "data" / "diabetes.csv"): owner}}))
    proc = workspace.mlci(p, "run", "--base", "main")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = _errors(proc.stderr)
    assert "DVC repository locked:" in line and ".dvc/tmp/rwlock" in line
    assert f"(PID {os.getpid()}): dvc repro" in line
    assert "fix: wait for that process" in line


def test_an_mlci_stage_error_keeps_its_exit_code_and_message(workspace: Workspace) -> None:
    """A stage that is an mlci command failing with a ConfigError (exit 2). Today: exit 1,
    'stage failed in dvc repro'."""
    p = workspace.project
    _set_train_cmd(p, "mlci train --params-file missing.yaml")
    direct = workspace.mlci(p, "train", "--params-file", "missing.yaml")
    assert direct.returncode == 2, direct.stderr
    (expected,) = _errors(direct.stderr)

    proc = workspace.mlci(p, "run", "--no-pull", "--base", "main")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = _errors(proc.stderr)[-1]
    title, message = expected.removeprefix("error: ").split(": ", 1)
    assert line == f"error: {title}: DVC stage 'train': {message}"
    assert "stage failed" not in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_mlflow_in_the_training_stage_is_exit_5(workspace: Workspace) -> None:
    """The PR changes a hyperparameter, so `dvc repro` runs `mlci train`, which cannot reach
    MLflow. Today: exit 1, 'stage failed in dvc repro'."""
    ci = workspace.clone()
    assert workspace.mlci(ci, "pull").returncode == 0
    uri = f"http://127.0.0.1:{_closed_port()}"
    proc = workspace.mlci(
        ci,
        "run",
        "--no-pull",
        "--base",
        "main",
        MLCI_MLFLOW_TRACKING_URI=uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr
    line = _errors(proc.stderr)[-1]
    assert "DVC stage 'train'" in line and uri in line
    report = (ci / ".mlci" / "report.md").read_text(encoding="utf-8")
    assert "**MLflow failed: DVC stage 'train': MLflow at http:" in report
