"""A DVC project laid out unlike the example, and the jobs of a PR's lifecycle around it.

The project trains with its own script (`python src/fit.py`, a tiny scikit-learn model
pickled), declares its model as a DVC `artifacts:` entry of `type: model`, and keeps its
metrics in a sub-directory. Every training appends a line to ``$TRAIN_LOG``, so a test counts
trainings across jobs. Shared by the tests and ``bench/lifecycle.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = "acme/churn"

DVC_YAML = """\
stages:
  featurize:
    cmd: python src/featurize.py
    deps: [src/featurize.py, raw/points.csv]
    outs: [features/table.json]
  fit:
    cmd: python src/fit.py
    deps: [src/fit.py, features/table.json]
    params: [model.C]
    outs: [models/clf.pkl]
  score:
    cmd: python src/score.py
    deps: [src/score.py, models/clf.pkl, features/table.json]
    metrics:
      - reports/eval/scores.json:
          cache: false
artifacts:
  churn-clf:
    path: models/clf.pkl
    type: model
"""

FEATURIZE = """\
import csv, json, pathlib
rows = [[float(v) for v in r] for r in csv.reader(open("raw/points.csv"))]
pathlib.Path("features").mkdir(exist_ok=True)
json.dump(rows, open("features/table.json", "w"))
"""

FIT = """\
import json, os, pickle, pathlib, yaml
from sklearn.linear_model import LogisticRegression
c = yaml.safe_load(open("params.yaml"))["model"]["C"]
rows = json.load(open("features/table.json"))
model = LogisticRegression(C=c).fit([r[:2] for r in rows], [int(r[2]) for r in rows])
pathlib.Path("models").mkdir(exist_ok=True)
pickle.dump(model, open("models/clf.pkl", "wb"))
if os.environ.get("TRAIN_LOG"):
    with open(os.environ["TRAIN_LOG"], "a") as fh:
        fh.write(f"C={c}\\n")
"""

SCORE = """\
import json, pickle, pathlib
model = pickle.load(open("models/clf.pkl", "rb"))
rows = json.load(open("features/table.json"))
acc = model.score([r[:2] for r in rows], [int(r[2]) for r in rows])
pathlib.Path("reports/eval").mkdir(parents=True, exist_ok=True)
json.dump({"quality": {"accuracy": acc}, "rows": len(rows)}, open("reports/eval/scores.json", "w"))
"""

POINTS = "".join(f"{i % 7},{(i * 3) % 5},{int(i % 7 + (i * 3) % 5 > 5)}\n" for i in range(40))


def run(cwd: Path, *cmd: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stdout}{proc.stderr}")
    return proc.stdout


def git(cwd: Path, *args: str) -> str:
    return run(cwd, "git", *args)


def dvc(cwd: Path, *args: str) -> str:
    return run(cwd, sys.executable, "-m", "dvc", *args)


def build(origin: Path, remote: Path, *, declare: bool = True) -> None:
    """``origin`` (the repository on GitHub): main trained, pushed without the run-cache."""
    origin.mkdir(parents=True)
    remote.mkdir(parents=True)
    git(origin, "init", "-q", "-b", "main")
    git(origin, "config", "receive.denyCurrentBranch", "ignore")
    for name, text in (("featurize.py", FEATURIZE), ("fit.py", FIT), ("score.py", SCORE)):
        (origin / "src").mkdir(exist_ok=True)
        (origin / "src" / name).write_text(text)
    (origin / "raw").mkdir()
    (origin / "raw" / "points.csv").write_text(POINTS)
    dvc_yaml = DVC_YAML if declare else DVC_YAML.split("artifacts:")[0]
    if not declare:  # two cached outputs: no single output names the model
        dvc_yaml = dvc_yaml.replace("outs: [models/clf.pkl]", "outs: [models/clf.pkl, models/x]")
    (origin / "dvc.yaml").write_text(dvc_yaml)
    (origin / "params.yaml").write_text("model:\n  C: 1.0\n")
    (origin / ".gitignore").write_text(".mlci/\n")
    dvc(origin, "init", "-q")
    dvc(origin, "remote", "add", "-d", "store", str(remote))
    dvc(origin, "config", "core.analytics", "false")
    if declare:
        dvc(origin, "repro", "-q")
        dvc(origin, "push", "-q")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "baseline")


def open_pr(origin: Path, branch: str, c: float) -> str:
    """A PR branch that changes one param, committed without running anything."""
    git(origin, "checkout", "-q", "-b", branch, "main")
    (origin / "params.yaml").write_text(f"model:\n  C: {c}\n")
    git(origin, "commit", "-qam", f"model.C = {c}")
    sha = git(origin, "rev-parse", "HEAD").strip()
    git(origin, "checkout", "-q", "main")
    return sha


def clone(origin: Path, dest: Path, branch: str) -> Path:
    """As actions/checkout clones: depth 1, one branch."""
    git(dest.parent, "clone", "-q", "--depth", "1", "--branch", branch, "--single-branch",
        origin.as_uri(), str(dest))  # fmt: skip
    return dest


def pr_env(work: Path, pr: int, head_sha: str, *, fork: bool = False) -> dict[str, str]:
    event = work / f"event-{pr}.json"
    head_repo = "mallory/churn" if fork else REPO
    event.write_text(
        json.dumps(
            {
                "number": pr,
                "pull_request": {
                    "number": pr,
                    "head": {"sha": head_sha, "ref": "pr", "repo": {"full_name": head_repo}},
                    "base": {"ref": "main", "repo": {"full_name": REPO}},
                },
                "repository": {"full_name": REPO, "default_branch": "main"},
            }
        )
    )
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_BASE_REF": "main",
        "GITHUB_HEAD_REF": "pr",
        "GITHUB_SHA": head_sha,
        "GITHUB_REF": f"refs/pull/{pr}/merge",
    }


def push_env(sha: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": sha,
    }


def mlci(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLCI_"))}
    full["MLCI_WARM_RECORDER"] = os.environ.get("MLCI_WARM_RECORDER", "0")
    full.update(env)
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args],
        cwd=cwd,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def trainings(log: Path) -> int:
    return len(log.read_text().splitlines()) if log.exists() else 0


def remote_files(remote: Path) -> set[str]:
    return {str(p.relative_to(remote)) for p in remote.rglob("*") if p.is_file()}
