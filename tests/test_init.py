"""`mlci init` and the neutral verdict, on a DVC project laid out unlike the example.

The project has its own scripts (`python src/prepare.py`, `python src/train.py`), data added
with `dvc add`, params in a sub-directory (`config/train.yaml`), DVCLive-style metrics
(`dvclive/metrics.json` with `step`, `train/`, `val/`) and no `mlci:` settings. Its PR lowers
Dice by 16 % and raises the loss 7.5x. Without gates `mlci run` must say "reported, not judged"
(exit 0), never "passed"; after `mlci init` the written settings gate the same PR (exit 4).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, git

pytestmark = pytest.mark.slow

DVC_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py, data/raw.csv]
    outs: [data/prepared.csv]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/prepared.csv]
    params:
      - config/train.yaml:
          - model.quality
    metrics:
      - dvclive/metrics.json:
          cache: false
"""

PREPARE = """\
import csv
rows = list(csv.DictReader(open("data/raw.csv")))
with open("data/prepared.csv", "w", newline="") as fh:
    w = csv.writer(fh)
    w.writerow(["id", "x", "label"])
    w.writerows([r["id"], float(r["x"]) * 2, r["label"]] for r in rows)
"""

# A deterministic "training" in the layout DVCLive writes: the numbers follow the params.
TRAIN = """\
import json, pathlib, yaml
q = yaml.safe_load(open("config/train.yaml"))["model"]["quality"]
loss = round(0.04 if q > 0.8 else 0.30, 4)
out = pathlib.Path("dvclive")
out.mkdir(exist_ok=True)
json.dump({"step": 9, "lr_used": 0.01, "train": {"loss": loss / 2},
           "val": {"dice": q, "loss": loss}}, open(out / "metrics.json", "w"))
"""


def _dvc(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def mlci(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory, isolated_env: Path) -> Iterator[Path]:
    work = tmp_path_factory.mktemp("init")
    root, remote = work / "project", work / "remote"
    for d in (root / "src", root / "config", root / "data", remote):
        d.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "src" / "prepare.py").write_text(PREPARE)
    (root / "src" / "train.py").write_text(TRAIN)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "config" / "train.yaml").write_text("model:\n  quality: 0.81\n")
    rows = "".join(f"{i},{i / 10:.1f},{'ab'[i % 2]}\n" for i in range(1, 31))
    (root / "data" / "raw.csv").write_text("id,x,label\n" + rows)
    _dvc(root, "init", "-q")
    _dvc(root, "remote", "add", "-d", "store", str(remote))
    _dvc(root, "config", "core.analytics", "false")
    _dvc(root, "add", "-q", "data/raw.csv")
    _dvc(root, "repro", "-q")
    _dvc(root, "push", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline")
    git(root, "checkout", "-q", "-b", "pr/worse")
    (root / "config" / "train.yaml").write_text("model:\n  quality: 0.68\n")
    git(root, "commit", "-q", "-am", "a worse model")
    git(root, "checkout", "-q", "main")
    yield root


def _clone(project: Path, dest: Path) -> Path:
    git(
        dest.parent,
        *("clone", "-q", "--depth", "1", "--branch", "pr/worse", "--single-branch"),
        *(project.as_uri(), str(dest)),
    )
    return dest


def test_without_gates_a_regression_is_reported_not_judged(project: Path, tmp_path: Path) -> None:
    ci = _clone(project, tmp_path / "ci")
    proc = mlci(ci, "run", "--base", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = json.loads((ci / ".mlci" / "report.json").read_text())
    assert meta["verdict"] == "reported" and meta["exit_code"] == 0
    assert meta["summary"].startswith("reported, not judged: no gates are configured; 3 of 3")
    report = (ci / ".mlci" / "report.md").read_text()
    assert "## ⚪ mlci: reported" in report and "✅ passed" not in report
    assert "| `val.dice` | 0.8100 | 0.6800 | -0.1300 | -16.05% | 🔴 ↓ |" in report
    assert "| `val.loss` | 0.0400 | 0.3000 | +0.2600 | +650.00% | 🔴 ↑ |" in report
    assert "| `step` |" not in report  # a constant counter
    assert "    val.dice: higher\n    val.loss: lower" in report  # the gates to paste
    assert "⚪ verdict: reported" in proc.stdout


def test_init_writes_settings_schemas_and_workflows_that_gate(
    project: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(project, repo)
    sha = "0123456789abcdef0123456789abcdef01234567"
    proc = mlci(repo, "init", "--action", f"acme/mlci@{sha}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "wrote params.yaml" in out and "wrote schemas/raw.yaml" in out
    assert "git add params.yaml schemas/raw.yaml schemas/prepared.yaml" in out

    settings = yaml.safe_load((repo / "params.yaml").read_text())["mlci"]
    assert settings["gates"] == {"train.loss": "lower", "val.dice": "higher", "val.loss": "lower"}
    assert settings["validate"] == {
        "data/raw.csv": "schemas/raw.yaml",
        "data/prepared.csv": "schemas/prepared.yaml",
    }
    assert "#   lr_used" in (repo / "params.yaml").read_text()  # named, not gated

    import pandera.pandas as pa

    raw_text = (repo / "schemas" / "raw.yaml").read_text()
    raw = pa.DataFrameSchema.from_yaml(raw_text)
    assert set(raw.columns) == {"id", "x", "label"}
    # types and categories, never today's ranges (an id or an x may grow)
    assert [c.name for c in raw.columns["label"].checks] == ["isin"]
    assert not raw.columns["id"].checks and not raw.columns["x"].checks

    for name in ("mlci-pr.yml", "mlci-publish.yml", "mlci-promote.yml"):
        text = (repo / ".github" / "workflows" / name).read_text()
        assert f"uses: acme/mlci@{sha}" in text and "uses: ./" not in text
        assert "pyproject.toml" not in text  # the project has none: no pip cache keyed on it
        assert "Install the project's dependencies" not in text  # nor any other to install
        assert yaml.safe_load(text)["jobs"]

    again = mlci(repo, "init")
    assert again.returncode == 2
    assert "would overwrite" in again.stderr and "--force" in again.stderr
    forced = mlci(repo, "init", "--force", "--action", f"acme/mlci@{sha}")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert (repo / "params.yaml").read_text().count("mlci:") == 1

    # one commit, and the same PR is now gated by the written settings
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Adopt mlci")
    git(repo, "checkout", "-q", "pr/worse")
    git(repo, "merge", "-q", "--no-edit", "main")
    ci = _clone(repo, tmp_path / "ci")
    run = mlci(ci, "run", "--base", "main")
    assert run.returncode == 4, run.stdout + run.stderr
    meta = json.loads((ci / ".mlci" / "report.json").read_text())
    assert meta["verdict"] == "failed"
    assert meta["summary"] == "3 gate(s) failed: train.loss, val.dice, val.loss"
    report = (ci / ".mlci" / "report.md").read_text()
    assert "| `data/raw.csv` | `schemas/raw.yaml` | 30 | ✅ valid" in report


def test_templates_are_the_repositorys_workflows() -> None:
    from mlci.adopt.init import TEMPLATES, WORKFLOWS

    for name in WORKFLOWS:
        shipped = (TEMPLATES / name).read_text()
        assert shipped == (REPO_ROOT / ".github" / "workflows" / name).read_text(), name


def test_a_sub_directory_project_gets_its_working_directory(tmp_path: Path) -> None:
    from mlci.adopt.init import PLACEHOLDER, TEMPLATES, _adapt

    (tmp_path / "requirements.txt").write_text("mlci\n")
    text = _adapt((TEMPLATES / "mlci-pr.yml").read_text(), tmp_path / "ml", tmp_path, None)
    step = next(s for s in yaml.safe_load(text)["jobs"]["check"]["steps"] if s.get("id") == "mlci")
    assert step["uses"] == PLACEHOLDER.split(" #")[0]
    assert step["with"]["working-directory"] == "ml"
    assert "path: ml/.dvc/cache" in text and "hashFiles('ml/dvc.lock')" in text
    assert "path: ml/mlci-report/" in text
    assert "cache-dependency-path: requirements.txt" in text


def test_a_bad_action_reference_is_refused(project: Path) -> None:
    proc = mlci(project, "init", "--action", "acme/mlci@v1\nrun: curl evil")
    assert proc.returncode == 2
    assert "is not an action reference" in proc.stderr
    assert not (project / "params.yaml").exists()
