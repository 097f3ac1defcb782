"""A DVC project in a sub-directory of its git repository (`dvc init --subdir`), run from that
directory and from below it, with a pandera schema given as a module kept in the repository
(`myschemas:schema`, no `PYTHONPATH=.`). Today: 'no dvc.yaml in <git root>', and 'No module
named myschemas'."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import git

pytestmark = pytest.mark.slow

TRAIN = """import json, os, sys, yaml
p = yaml.safe_load(open("cfg/params.yaml"))["fit"]
rows = open("data/points.csv").read().splitlines()[1:]
os.makedirs("results", exist_ok=True)
json.dump({"score": p["alpha"] * len(rows)}, open("results/scores.json", "w"))
"""
DVC_YAML = """stages:
  fit:
    cmd: python scripts/fit.py
    deps: [scripts/fit.py, data/points.csv]
    params:
      - cfg/params.yaml:
          - fit.alpha
    metrics:
      - results/scores.json:
          cache: false
"""
SCHEMA = """import pandera.pandas as pa

schema = pa.DataFrameSchema({"a": pa.Column(int, pa.Check.ge(0)), "b": pa.Column(int)})
"""
SETTINGS = """mlci:
  validate:
    data/points.csv: myschemas:schema
  gates:
    score: {direction: higher}
"""


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(args), cwd=cwd, capture_output=True, text=True, check=False, timeout=300
    )


def dvc(cwd: Path, *args: str) -> str:
    proc = _run(cwd, sys.executable, "-m", "dvc", *args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture(scope="module")
def mono(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """repo/{README, web/, ml/ (the DVC project)}; main reproduced and pushed, branch `pr`
    (checked out) raises fit.alpha, reproduced in the work tree."""
    work = tmp_path_factory.mktemp("mono")
    repo = work / "repo"
    ml = repo / "ml"
    for d in (repo / "web", ml / "scripts", ml / "cfg", ml / "data"):
        d.mkdir(parents=True)
    git(repo, "init", "-q")
    (repo / "README").write_text("a monorepo\n")
    (repo / "web" / "index.html").write_text("<p>hi</p>\n")
    dvc(ml, "init", "-q", "--subdir")
    dvc(ml, "remote", "add", "-d", "store", str(work / "remote"))
    (ml / "scripts" / "fit.py").write_text(TRAIN)
    (ml / "cfg" / "params.yaml").write_text("fit:\n  alpha: 1\n")
    (ml / "params.yaml").write_text(SETTINGS)
    (ml / "myschemas.py").write_text(SCHEMA)
    (ml / "dvc.yaml").write_text(DVC_YAML)
    (ml / "data" / "points.csv").write_text("a,b\n1,2\n3,4\n")
    dvc(ml, "add", "-q", "data/points.csv")
    dvc(ml, "repro", "-q")
    dvc(ml, "push", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "baseline")
    git(repo, "checkout", "-qb", "pr")
    (ml / "cfg" / "params.yaml").write_text("fit:\n  alpha: 3\n")
    git(repo, "commit", "-qam", "alpha=3")
    return repo


def test_a_sub_directory_project_runs_from_its_directory_and_below(mono: Path) -> None:
    ml = mono / "ml"
    for cwd in (ml, ml / "scripts"):
        proc = _run(cwd, sys.executable, "-m", "mlci", "run", "--base", "main")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        report = (ml / ".mlci" / "report.md").read_text(encoding="utf-8")
        diff = json.loads(dvc(ml, "metrics", "diff", "main", "--json"))["results/scores.json"]
        old, new = diff["score"]["old"], diff["score"]["new"]
        assert (old, new) == (2, 6)  # the base's metrics were read from ml/, not the top level
        assert f"| `score` | {old} | {new} |" in report
        params = json.loads(dvc(ml, "params", "diff", "main", "--json"))["cfg/params.yaml"]
        alpha = params["fit.alpha"]
        assert f"| `cfg/params.yaml:fit.alpha` | {alpha['old']} | {alpha['new']} |" in report
        assert "| `data/points.csv` | `myschemas:schema` | 2 | ✅ valid" in report
        assert "up to date" in dvc(ml, "status")  # dvc.lock is what DVC itself would write
    assert not (mono / ".mlci").exists()  # nothing at the top level


def test_doctor_names_the_project_root(mono: Path) -> None:
    proc = _run(mono / "ml" / "scripts", sys.executable, "-m", "mlci", "doctor")
    assert proc.returncode == 0, proc.stderr
    rows = dict(line.split(None, 1) for line in proc.stdout.splitlines() if "  " in line)
    assert rows["dvc.yaml"].strip() == "found"
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(("project root", "git prefix"))]
    assert lines[0].split(None, 2)[2].startswith(str((mono / "ml").resolve()))
    assert lines[1].split(None, 2)[2] == "ml/"
    assert os.path.isdir(mono / "ml" / ".dvc")
