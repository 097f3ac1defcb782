"""The install step `mlci init` writes, run for real: it installs a local requirement
(``./vendor/tinypkg``, a directory with a pyproject.toml: no network) into a fresh venv, and
under act (host mode, loopback GitHub) the generated PR workflow installs it before mlci's step,
so the project's stage, which imports it, runs; without the step the same stage fails (exit 7).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from conftest import REPO_ROOT, git
from github_server import FakeGitHub

ACTION = "acme/mlci@0123456789abcdef0123456789abcdef01234567"
BIN = Path(sys.executable).parent


def _dvc(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: it is a test dependency (pip install -e '.[test]')")
    return found


def _install_script(text: str) -> str:
    from mlci.adopt.deps import STEP

    (job,) = yaml.safe_load(text)["jobs"].values()
    (step,) = [s for s in job["steps"] if s.get("name") == STEP]
    return str(step["run"])


TINYPKG_PYPROJECT = """\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "tinypkg"
version = "0.1.0"

[tool.setuptools]
py-modules = ["tinypkg"]
"""

# Offline: the requirement is a local directory, built with the setuptools the venv can see.
PIP_OFFLINE = {"PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0"}


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh, empty virtual environment that sees this one's packages (mlci, DVC, MLflow,
    pip, setuptools) through a ``.pth`` file: what pip installs with its Python lands in it, never
    in the shared environment."""
    where = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]
    (Path(site) / "zz-mlci-tests.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    return where


def _vendor(root: Path) -> None:
    pkg = root / "vendor" / "tinypkg"
    pkg.mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(TINYPKG_PYPROJECT)
    (pkg / "tinypkg.py").write_text("SCORE = 0.9\n")
    (root / "requirements.txt").write_text("./vendor/tinypkg\n")


def _importable(venv: Path, cwd: Path) -> bool:
    proc = subprocess.run(
        [str(venv / "bin" / "python"), "-P", "-c", "import tinypkg"], cwd=cwd, check=False
    )
    return proc.returncode == 0


def test_the_install_step_installs_a_local_requirement_in_a_fresh_venv(
    tmp_path: Path, venv: Path
) -> None:
    from mlci.adopt import deps
    from mlci.adopt.init import TEMPLATES, _adapt, with_install_step

    root = tmp_path / "project"
    root.mkdir()
    _vendor(root)
    sources = deps.find(root, root)
    text = _adapt((TEMPLATES / "mlci-promote.yml").read_text(), root, root, ACTION, sources)
    script = _install_script(with_install_step(text, sources))
    assert not _importable(venv, root)
    env = {**os.environ, **PIP_OFFLINE, "GITHUB_EVENT_NAME": "push"}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env['PATH']}"
    try:
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", script],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "Successfully installed tinypkg-0.1.0" in proc.stdout
        assert _importable(venv, tmp_path)
    finally:
        _uninstall(venv)


def _uninstall(venv: Path) -> None:
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-q", "-y", "tinypkg"],
        capture_output=True,
        check=False,
    )


# ---- under act: the generated PR workflow, run for real ----------------------------------------

TINY_DVC = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py]
    params: [train.bonus]
    metrics:
      - metrics.json:
          cache: false
"""
TINY_TRAIN = """\
import json
import tinypkg  # not one of mlci's dependencies: only requirements.txt brings it
import yaml
bonus = yaml.safe_load(open("params.yaml"))["train"]["bonus"]
json.dump({"accuracy": round(tinypkg.SCORE + bonus, 4)}, open("metrics.json", "w"))
"""


def _tiny_project(root: Path, remote: Path) -> tuple[str, ...]:
    """main: a baseline reproduced (with tinypkg on PYTHONPATH, not installed) and adopted with
    `mlci init`; branch ``pr/better``: a better model, not reproduced. Returns the init summary's
    dependency lines."""
    from mlci.adopt.init import init

    root.mkdir(parents=True)
    remote.mkdir()
    git(root, "init", "-q", "-b", "main")
    _vendor(root)
    (root / "dvc.yaml").write_text(TINY_DVC)
    (root / "train.py").write_text(TINY_TRAIN)
    (root / "params.yaml").write_text("train:\n  bonus: 0.0\n")
    (root / ".dvcignore").write_text("/mlci/\n")  # act's checkout gets mlci's sources beside it
    _dvc(root, "init", "-q")
    _dvc(root, "remote", "add", "-d", "store", str(remote))
    _dvc(root, "config", "core.analytics", "false")
    repro = subprocess.run(
        [sys.executable, "-m", "dvc", "repro", "-q"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root / "vendor" / "tinypkg")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert repro.returncode == 0, repro.stdout + repro.stderr
    result = init(root, root, action=ACTION)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "baseline, adopt mlci")
    git(root, "checkout", "-q", "-b", "pr/better")
    (root / "params.yaml").write_text((root / "params.yaml").read_text().replace("0.0", "0.02"))
    git(root, "commit", "-q", "-am", "a better model")
    return result.installs


def _for_act(text: str) -> str:
    """The generated workflow, runnable by act offline: the steps that download actions
    (setup-python, caches, artifacts) left out, and the mlci action taken from the checkout."""
    doc = yaml.safe_load(text)
    doc["on"] = doc.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    job = doc["jobs"]["check"]
    offline = ("actions/setup-python@", "actions/cache@", "actions/upload-artifact@")
    job["steps"] = [s for s in job["steps"] if not str(s.get("uses", "")).startswith(offline)]
    (mlci_step,) = [s for s in job["steps"] if s.get("id") == "mlci"]
    assert mlci_step["uses"] == ACTION
    mlci_step["uses"] = "./"
    return yaml.safe_dump(doc, sort_keys=False)


def _act(
    ci: Path, workflow: Path, event: Path, github: FakeGitHub, venv: Path, work: Path
) -> tuple[int, str]:
    """``act pull_request`` in host mode, as tests/test_action.py runs it, with ``python3`` the
    fresh venv's and pip offline."""
    env = {**os.environ, "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    settings = {
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": github.repo,
        "MLCI_MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}",
        "NO_COLOR": "1",
        **PIP_OFFLINE,
    }
    cmd = [_tool("act"), "pull_request", "-C", str(ci), "-W", str(workflow), "-e", str(event)]
    for label in ("self-hosted", "gpu"):
        cmd += ["-P", f"{label}=-self-hosted"]
    cmd += ["-s", f"GITHUB_TOKEN={github.token}"]
    for key, value in settings.items():
        cmd += ["--env", f"{key}={value}"]
    cmd += ["--action-cache-path", str(work / "act-cache"), "--no-cache-server"]
    cmd += ["--defaultbranch", "main"]
    proc = subprocess.run(
        cmd,
        cwd=ci,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    return proc.returncode, proc.stdout + proc.stderr


@pytest.mark.slow
def test_under_act_the_generated_pr_workflow_installs_the_projects_requirements(
    tmp_path: Path, venv: Path, github: FakeGitHub
) -> None:
    """The same PR, under act: without the install step its stage cannot import tinypkg (exit
    7); with the step `mlci init` wrote, tinypkg is installed and the check passes."""
    from mlci.adopt.deps import STEP

    installs = _tiny_project(tmp_path / "project", tmp_path / "remote")
    assert installs == ("requirements.txt: installed (pip install -r requirements.txt)",)
    ci = tmp_path / "ci"
    git(
        tmp_path,
        *("clone", "-q", "--depth", "1", "--branch", "pr/better", "--single-branch"),
        *((tmp_path / "project").as_uri(), str(ci)),
    )
    shutil.copy(REPO_ROOT / "action.yml", ci / "action.yml")
    shutil.copytree(REPO_ROOT / "mlci", ci / "mlci", ignore=shutil.ignore_patterns("__pycache__"))
    generated = (ci / ".github" / "workflows" / "mlci-pr.yml").read_text()
    head = git(ci, "rev-parse", "HEAD").strip()
    repo = {"full_name": github.repo, "default_branch": "main"}
    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "action": "synchronize",
                "number": 7,
                "pull_request": {
                    "number": 7,
                    "head": {"ref": "pr/better", "sha": head, "repo": {"full_name": github.repo}},
                    "base": {"ref": "main", "repo": repo},
                },
                "repository": repo,
            }
        )
    )
    assert not _importable(venv, ci)

    bare = tmp_path / "act-pr-bare.yml"  # what mlci init wrote before: mlci only
    doc = yaml.safe_load(_for_act(generated))
    doc["jobs"]["check"]["steps"] = [
        s for s in doc["jobs"]["check"]["steps"] if s.get("name") != STEP
    ]
    bare.write_text(yaml.safe_dump(doc, sort_keys=False))
    code, log = _act(ci, bare, event, github, venv, tmp_path)
    assert code != 0 and "exit status 7" in log, log[-6000:]
    assert "No module named 'tinypkg'" in log

    workflow = tmp_path / "act-pr.yml"
    workflow.write_text(_for_act(generated))
    try:
        code, log = _act(ci, workflow, event, github, venv, tmp_path)
    finally:
        _uninstall(venv)
    assert code == 0, log[-6000:]
    assert f"Main {STEP}" in log
    assert "Successfully installed tinypkg-0.1.0" in log
    assert "» reproduce" in log and "verdict: passed" in log
    comment = [c for c in github.comments[7] if "<!-- mlci-report:mlci -->" in c["body"]][-1]
    assert "| `accuracy` | 0.9000 | 0.9200 |" in comment["body"]
