"""Shared fixtures: an isolated environment, a template git + DVC repo built once per session
(baseline on main, a PR branch), and the loopback GitHub server (``github``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import mlflow_server, postgres  # noqa: F401  (fixtures)

from github_server import github  # noqa: F401  (fixture)

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)


@pytest.fixture(scope="session", autouse=True)
def private_tmp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """This session's own temporary directory, for this process (``tempfile``) and every
    process it starts (``TMPDIR``): no test reads, nor trips over, what other programs left in
    the machine's. It is made in that directory, not under pytest's basetemp, because the
    PostgreSQL server (``servers.py``) runs as the ``postgres`` user under root and must reach
    its data directory in it (basetemp is private to root); mode 0711 lets it pass, not list.
    The path stays short, as Unix sockets (107 bytes) made in it need."""
    tmp_path_factory.getbasetemp()  # pytest's own stays where it was
    saved_env, saved_dir = os.environ.get("TMPDIR"), tempfile.tempdir
    private = Path(tempfile.mkdtemp(prefix="mlci-tests-"))
    private.chmod(0o711)
    os.environ["TMPDIR"] = tempfile.tempdir = str(private)
    try:
        yield private
    finally:
        tempfile.tempdir = saved_dir
        if saved_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = saved_env
        shutil.rmtree(private, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """No test touches $HOME, global git/DVC config or the network."""
    home = tmp_path_factory.mktemp("home")
    gitconfig = home / ".gitconfig"
    gitconfig.write_text(
        "[user]\n\tname = mlci tests\n\temail = tests@mlci.invalid\n"
        '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
    )
    mp = pytest.MonkeyPatch()
    for var in list(os.environ):
        if var.startswith(
            ("GITHUB_", "MLCI_", "RUNNER_", "MLFLOW_TRACKING_", "MLFLOW_REGISTRY_")
        ) or var in ("ACTIONS_RUNTIME_TOKEN",):
            mp.delenv(var)
    mp.setenv("HOME", str(home))
    mp.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    mp.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    mp.setenv("GIT_CONFIG_GLOBAL", str(gitconfig))
    mp.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for k, v in {
        "GIT_AUTHOR_NAME": "mlci tests",
        "GIT_AUTHOR_EMAIL": "tests@mlci.invalid",
        "GIT_COMMITTER_NAME": "mlci tests",
        "GIT_COMMITTER_EMAIL": "tests@mlci.invalid",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }.items():
        mp.setenv(k, v)
    mp.setenv("DVC_NO_ANALYTICS", "1")
    mp.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mp.setenv("MLCI_WARM_RECORDER", "0")  # as in CI: no recorder outlives a test's command
    mp.setenv("NO_COLOR", "1")
    mp.setenv("PATH", BIN + os.pathsep + os.environ["PATH"])
    yield home
    mp.undo()


@pytest.fixture(autouse=True)
def no_mlflow_uri_leaks() -> Iterator[None]:
    """`mlflow.set_tracking_uri` / `set_registry_uri` in a test set os.environ, which every
    later subprocess would inherit: put them back after each test."""
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if "mlflow" in sys.modules:  # and MLflow's own in-process globals behind them
        from mlflow.tracking._model_registry import utils as registry_utils
        from mlflow.tracking._tracking_service import utils as tracking_utils

        registry_utils._registry_uri = None
        tracking_utils._tracking_uri = None


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory, isolated_env: Path) -> Path:
    """Built once: work/{project, dvc-remote, mlflow.db}; main has a baseline, and branch
    ``pr/tune-model`` changes one hyperparameter (committed, not reproduced)."""
    from mlci.adopt.demo import build_project, open_pr

    work = tmp_path_factory.mktemp("template")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLCI_MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    try:
        build_project(work / "project", work / "dvc-remote")
        open_pr(work / "project", regress=False)
        git(work / "project", "checkout", "-q", "main")
    finally:
        mp.undo()
    return work


class Workspace:
    """A private copy of the template: the project, its DVC remote and MLflow store."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.project = work / "project"
        self.remote = work / "dvc-remote"
        self.tracking_uri = f"sqlite:///{work / 'mlflow.db'}"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env["MLCI_MLFLOW_TRACKING_URI"] = self.tracking_uri
        env.update(extra)
        return env

    def clone(self, branch: str = "pr/tune-model", name: str = "ci") -> Path:
        """A checkout like actions/checkout makes: depth 1, one branch, no base branch."""
        dest = self.work / name
        git(
            self.work,
            "clone",
            "-q",
            "--depth",
            "1",
            "--branch",
            branch,
            "--single-branch",
            self.project.as_uri(),
            str(dest),
        )
        return dest

    def mlci(self, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mlci", *args],
            cwd=cwd,
            env=self.env(**env),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )


@pytest.fixture
def workspace(template: Path, tmp_path: Path) -> Workspace:
    work = tmp_path / "work"
    shutil.copytree(template, work, symlinks=True)
    return Workspace(work)
