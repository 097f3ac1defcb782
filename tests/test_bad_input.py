"""Each kind of bad input: one clear line, the documented exit code, no traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import Workspace, git


def _one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr + proc.stdout
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def _mlci(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_not_a_git_repo(tmp_path: Path) -> None:
    proc = _mlci(tmp_path, "run")
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "not inside a git repository" in line and "fix:" in line


def test_no_dvc_yaml(tmp_path: Path) -> None:
    git(tmp_path, "init", "-q")
    proc = _mlci(tmp_path, "run")
    assert proc.returncode == 2
    assert "no dvc.yaml" in _one_error_line(proc)
    assert (tmp_path / ".mlci" / "report.md").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    proc = _mlci(tmp_path, "--debug", "run")
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr


def test_dvc_remote_missing(workspace: Workspace) -> None:
    ci = workspace.clone()
    config = ci / ".dvc" / "config"
    config.write_text("")
    proc = workspace.mlci(ci, "run", "--base", "main")
    assert proc.returncode == 5
    line = _one_error_line(proc)
    assert "no DVC remote is configured" in line and "dvc remote add" in line
    assert "error" in (ci / ".mlci" / "report.md").read_text().splitlines()[1]


def test_dvc_remote_unreachable(workspace: Workspace) -> None:
    ci = workspace.clone()
    shutil.rmtree(workspace.remote)
    proc = workspace.mlci(ci, "pull")
    assert proc.returncode == 5
    line = _one_error_line(proc)
    assert "'local'" in line and "unreachable" in line


def test_dvc_remote_lacks_objects(workspace: Workspace) -> None:
    ci = workspace.clone()
    shutil.rmtree(workspace.remote)
    workspace.remote.mkdir()
    proc = workspace.mlci(ci, "pull")
    # every output of the example is built by a stage: not an error, a warning that names them
    # and the fix (source data missing from the remote is exit 5: tests/test_degrade.py)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warning = proc.stdout + proc.stderr
    assert "lacks" in warning and "data/diabetes.csv" in warning and "dvc push" in warning


def test_base_branch_missing(workspace: Workspace) -> None:
    ci = workspace.clone()
    proc = workspace.mlci(ci, "compare", "--base", "no-such-branch")
    assert proc.returncode == 2
    assert "base branch 'no-such-branch' does not exist on origin" in _one_error_line(proc)


def test_shallow_clone_fetches_the_base(workspace: Workspace) -> None:
    ci = workspace.clone()
    assert not git(ci, "branch", "-r", "--list", "origin/main").strip()
    proc = workspace.mlci(ci, "compare", "--base", "main")
    assert proc.returncode == 0, proc.stderr
    assert git(ci, "branch", "-r", "--list", "origin/main").strip() == "origin/main"


def test_no_metrics_on_base_is_no_baseline(workspace: Workspace) -> None:
    p = workspace.project
    git(p, "checkout", "-q", "--orphan", "empty")
    git(p, "rm", "-rq", "--cached", ".")
    (p / "README").write_text("nothing yet\n")
    git(p, "add", "README")
    git(p, "commit", "-qm", "empty")
    git(p, "checkout", "-qf", "main")
    proc = workspace.mlci(p, "compare", "--base", "empty")
    assert proc.returncode == 0, proc.stderr
    assert "no baseline" in proc.stdout
    assert "🆕 new" in proc.stdout


def test_malformed_params(workspace: Workspace) -> None:
    p = workspace.project
    (p / "params.yaml").write_text("train:\n  seed: 1\n  bad: [unclosed\n")
    proc = workspace.mlci(p, "compare", "--base", "main")
    assert proc.returncode == 2
    assert "params.yaml line" in _one_error_line(proc)


def test_unknown_mlci_key(workspace: Workspace) -> None:
    p = workspace.project
    text = (p / "params.yaml").read_text().replace("  model_name:", "  modle_name:")
    (p / "params.yaml").write_text(text)
    proc = workspace.mlci(p, "compare", "--base", "main")
    assert proc.returncode == 2
    line = _one_error_line(proc)
    assert "unknown key 'modle_name'" in line and "did you mean 'model_name'" in line


def test_non_numeric_metric_fails_its_gate(workspace: Workspace) -> None:
    p = workspace.project
    metrics = json.loads((p / "metrics.json").read_text())
    metrics["accuracy"] = "high"
    (p / "metrics.json").write_text(json.dumps(metrics))
    proc = workspace.mlci(p, "compare", "--base", "main")
    assert proc.returncode == 4
    assert "is not a number on the PR: 'high'" in proc.stdout
    assert "accuracy" in _one_error_line(proc)
