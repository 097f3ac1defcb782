"""``mlci demo``: a full PR check on the bundled example, on real parts.

Builds a throwaway git repo from the example, pushes its data to a local DVC remote, commits
a baseline on ``main``, makes a PR branch that changes a hyperparameter, clones it the way
``actions/checkout`` does (depth 1, one branch), and runs ``mlci run`` there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from mlci import console
from mlci.errors import ConfigError, StageError
from mlci.example import copy_files
from mlci.project import repro
from mlci.training.worker import python_command

GIT_ENV = {
    "GIT_AUTHOR_NAME": "mlci demo",
    "GIT_AUTHOR_EMAIL": "demo@mlci.invalid",
    "GIT_COMMITTER_NAME": "mlci demo",
    "GIT_COMMITTER_EMAIL": "demo@mlci.invalid",
}


def _git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise StageError(
            f"git {' '.join(args)} failed: {proc.stderr.strip()}",
            fix="check that git works on this machine",
        )
    return proc.stdout


def prepare_env(work: Path) -> None:
    """Environment for the demo's own process and the stages it starts."""
    os.environ.update(GIT_ENV)
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ["MLCI_MLFLOW_TRACKING_URI"] = f"sqlite:///{(work / 'mlflow.db').as_posix()}"
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")


def build_project(project: Path, remote: Path) -> None:
    """Baseline on main: example files, DVC with a local remote, reproduced and pushed."""
    project.mkdir(parents=True)
    remote.mkdir(parents=True)
    _git(project, "init", "-q", "-b", "main")
    copy_files(project)
    (project / ".gitignore").write_text(".mlci/\n", encoding="utf-8")
    from dvc.repo import Repo

    Repo.init(str(project)).close()
    # Relative to .dvc/, so a clone beside the project finds the same remote. (DVC's config
    # API would take a relative path as relative to the current directory instead.)
    url = os.path.relpath(remote, project / ".dvc")
    (project / ".dvc" / "config").write_text(
        f"[core]\n    remote = local\n    analytics = false\n"
        f"['remote \"local\"']\n    url = {url}\n",
        encoding="utf-8",
    )
    with console.group("baseline on main: dvc repro"):
        repro.reproduce(project)
    repo = Repo(str(project))
    try:
        repo.push()
    finally:
        repo.close()
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "Baseline model")


def open_pr(project: Path, regress: bool) -> str:
    """A PR branch that changes one hyperparameter."""
    _git(project, "checkout", "-q", "-b", "pr/tune-model")
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text(encoding="utf-8"))
    change = {"max_depth": 1, "n_estimators": 3} if regress else {"max_depth": 5}
    text = params_path.read_text(encoding="utf-8")
    for key, value in change.items():
        old = params["train"]["params"][key]
        text = text.replace(f"    {key}: {old}\n", f"    {key}: {value}\n", 1)
    params_path.write_text(text, encoding="utf-8")
    summary = ", ".join(f"{k} -> {v}" for k, v in change.items())
    _git(project, "commit", "-q", "-am", f"Tune the model: {summary}")
    return summary


def run_demo(directory: Path | None, *, regress: bool = False) -> int:
    """Build the demo and run the check; returns ``mlci run``'s exit code."""
    work = (directory or Path(tempfile.mkdtemp(prefix="mlci-demo-"))).resolve()
    if directory is not None and work.exists() and any(work.iterdir()):
        raise ConfigError(f"{work} is not empty", fix="pass an empty or new --dir")
    work.mkdir(parents=True, exist_ok=True)
    prepare_env(work)
    project, remote, checkout = work / "project", work / "dvc-remote", work / "ci-checkout"
    console.info(f"demo workspace: {work}")
    build_project(project, remote)
    summary = open_pr(project, regress)
    console.step(f"PR branch pr/tune-model: {summary}")
    if checkout.exists():
        shutil.rmtree(checkout)
    _git(
        work,
        "clone",
        "-q",
        "--depth",
        "1",
        "--branch",
        "pr/tune-model",
        "--single-branch",
        project.as_uri(),
        str(checkout),
    )
    console.step(f"CI checkout (depth 1, one branch): {checkout}")
    console.step("mlci run --base main")
    proc = subprocess.run(
        [*python_command(), "-m", "mlci", "run", "--base", "main"], cwd=checkout, check=False
    )
    console.info(
        f"\ndemo workspace kept at {work}; report: {checkout / '.mlci' / 'report.md'}; "
        f"MLflow: {os.environ['MLCI_MLFLOW_TRACKING_URI']}"
    )
    console.info(f"mlci run exit code: {proc.returncode}")
    return proc.returncode
