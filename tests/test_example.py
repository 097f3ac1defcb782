"""The bundled example: the repo root's pipeline, `dvc repro` in it, and `mlci demo`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlci.example import FILES

from conftest import REPO_ROOT, git


def test_root_example_is_the_bundled_example() -> None:
    for name in FILES:
        bundled = (REPO_ROOT / "mlci" / "example" / name).read_text()
        assert (REPO_ROOT / name).read_text() == bundled, f"{name} differs from mlci/example"


@pytest.mark.slow
def test_dvc_repro_runs_the_root_pipeline(tmp_path: Path) -> None:
    import os

    for name in (*FILES, ".dvc/config", ".dvcignore"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO_ROOT / name, tmp_path / name)
    git(tmp_path, "init", "-q")
    env = dict(os.environ, MLCI_MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for stage in ("data", "validate", "train", "evaluate"):
        assert f"Running stage '{stage}'" in proc.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert 0.5 < metrics["roc_auc"] <= 1.0
    assert json.loads((tmp_path / "reports" / "validation.json").read_text())["ok"] is True
    again = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert "didn't change, skipping" in again.stdout
    assert "Running stage" not in again.stdout


@pytest.mark.slow
def test_demo_runs_a_full_pr_check(tmp_path: Path) -> None:
    work = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "mlci", "demo", "--dir", str(work)],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = (work / "ci-checkout" / ".mlci" / "report.md").read_text()
    assert report in proc.stdout
    head = json.loads((work / "ci-checkout" / "metrics.json").read_text())
    assert f"{head['roc_auc']:.4f}" in report
    assert "| `train.params.max_depth` | 3 | 5 |" in report
    assert "verdict: passed" in proc.stdout
    run_id = json.loads((work / "ci-checkout/reports/train.json").read_text())["mlflow_run_id"]
    assert f"MLflow run {run_id}" in proc.stdout
    assert (work / "mlflow.db").exists()
    assert any((work / "dvc-remote").rglob("*"))
