"""Zero configuration on a DVC project laid out unlike the example, and agreement with DVC.

The project has no `mlci:` settings at all; nested metric files, two params files (one of
them not `params.yaml`), metrics in a git-tracked file *and* in a DVC-tracked output
directory (only in the DVC remote, never in git), plots under that directory. The PR changes
one parameter in the second params file. `mlci run` in a depth-1 CI clone must report every
metric and param change, say that no gates are configured and pass, and its numbers must be
the ones `dvc metrics diff` and `dvc params diff` give for the same two revisions.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import git

pytestmark = pytest.mark.slow

DVC_YAML = """\
stages:
  prepare:
    cmd: python src/prepare.py
    deps: [src/prepare.py]
    params: [prep.rows]
    outs: [data/rows.json]
  train:
    cmd: python src/train.py
    deps: [src/train.py, data/rows.json]
    params:
      - seed
      - config/model.yaml:
          - model.lr
          - model.layers
    outs:
      - out
    metrics:
      - eval/summary.json:
          cache: false
metrics:
  - out/metrics.json
plots:
  - out/curve.csv:
      x: step
      y: loss
"""

PREPARE = """\
import json, pathlib, yaml
rows = yaml.safe_load(open("params.yaml"))["prep"]["rows"]
pathlib.Path("data").mkdir(exist_ok=True)
json.dump(list(range(rows)), open("data/rows.json", "w"))
"""

# Deterministic "training": the numbers depend on the params, nothing else.
TRAIN = """\
import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
m = yaml.safe_load(open("config/model.yaml"))["model"]
rows = json.load(open("data/rows.json"))
lr, layers = m["lr"], m["layers"]
loss = round(1.0 / (1.0 + 100 * lr * layers) + p["seed"] / 1000, 6)
pathlib.Path("out").mkdir(exist_ok=True)
json.dump({"loss": loss, "val": {"acc": round(1 - loss / 2, 6)}, "n": len(rows)},
          open("out/metrics.json", "w"))
with open("out/curve.csv", "w") as fh:
    fh.write("step,loss\\n" + "".join(f"{s},{loss * (10 - s) / 10:.4f}\\n" for s in range(10)))
pathlib.Path("eval").mkdir(exist_ok=True)
json.dump({"test": {"auc": round(0.5 + lr * 10, 6), "ece": 0.031}, "n": len(rows) // 4},
          open("eval/summary.json", "w"))
"""


def dvc(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root, remote = tmp_path / "project", tmp_path / "remote"
    root.mkdir()
    remote.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "src").mkdir()
    (root / "config").mkdir()
    (root / "src" / "prepare.py").write_text(PREPARE)
    (root / "src" / "train.py").write_text(TRAIN)
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text("seed: 7\nprep:\n  rows: 40\n")
    (root / "config" / "model.yaml").write_text("model:\n  lr: 0.01\n  layers: 2\n")
    dvc(root, "init", "-q")
    dvc(root, "remote", "add", "-d", "store", str(remote))
    dvc(root, "config", "core.analytics", "false")
    dvc(root, "repro", "-q")
    dvc(root, "push", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline")
    git(root, "checkout", "-q", "-b", "pr/lr")
    (root / "config" / "model.yaml").write_text("model:\n  lr: 0.02\n  layers: 2\n")
    git(root, "commit", "-q", "-am", "raise the learning rate")
    return root


def mlci(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_zero_config_run_reports_everything_and_agrees_with_dvc(
    project: Path, tmp_path: Path
) -> None:
    assert "out/metrics.json" not in git(project, "ls-files")  # only in the DVC remote
    ci = tmp_path / "ci"
    git(
        tmp_path,
        *("clone", "-q", "--depth", "1", "--branch", "pr/lr", "--single-branch"),
        *(project.as_uri(), str(ci)),
    )
    proc = mlci(ci, "run", "--base", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no gates are configured" in proc.stdout
    report = (ci / ".mlci" / "report.md").read_text()
    for name in ("loss", "val.acc", "test.auc", "test.ece"):
        assert f"| `{name}` |" in report, name
    # `n` is in both files: each keeps its own, named by its file
    assert "| `out/metrics.json:n` | 40 | 40 |" in report
    assert "| `eval/summary.json:n` | 10 | 10 |" in report
    assert "| `config/model.yaml:model.lr` | 0.0100 | 0.0200 |" in report
    # the clone had no DVC cache: rows.json and the `out` directory came from the remote
    fetched = re.search(r"store \((\d+) files fetched\)", report)
    assert fetched and int(fetched.group(1)) >= 3, report

    compared = mlci(ci, "compare", "--base", "main", "--json")
    assert compared.returncode == 0, compared.stderr
    ours: dict[str, Any] = json.loads(compared.stdout)
    assert ours["gates"] == 0 and ours["passed"] is True
    metrics = {m["name"]: m for m in ours["metrics"]}
    params = {p["name"]: p for p in ours["params"]}

    # `origin/main` is what mlci fetched into the shallow clone for the base.
    theirs = json.loads(dvc(ci, "metrics", "diff", "origin/main", "--all", "--json"))
    seen = 0
    for path, values in theirs.items():
        for key, d in values.items():
            name = key if key in metrics else f"{path}:{key}"
            assert metrics[name]["base"] == d["old"], (name, metrics[name], d)
            assert metrics[name]["head"] == d["new"], (name, metrics[name], d)
            if d.get("diff") is not None:
                assert metrics[name]["change"] == pytest.approx(d["diff"], abs=1e-9)
            seen += 1
    assert seen == len(metrics) == 6
    assert metrics["loss"]["base"] != metrics["loss"]["head"]  # DVC-tracked, really retrained

    changed = json.loads(dvc(ci, "params", "diff", "origin/main", "--json"))
    assert changed, "dvc saw no param change"
    for path, values in changed.items():
        for key, d in values.items():
            name = key if path == "params.yaml" else f"{path}:{key}"
            assert (params[name]["base"], params[name]["head"]) == (d["old"], d["new"]), name
    assert set(params) == {"config/model.yaml:model.lr"}
