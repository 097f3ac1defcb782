"""The warm recorder: ``mlci train`` and ``mlci evaluate`` run alone record through a recorder
an earlier command left, without importing MLflow; it ends when idle, a killed one is replaced
and loses nothing, and there is none in CI, when turned off, or where its directory is not
provably this user's."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci.errors import ConfigError
from mlci.training import warm

from conftest import Workspace

IMPORTED_MLFLOW = "| mlflow\n"  # a line of PYTHONPROFILEIMPORTTIME's for `import mlflow`


@pytest.fixture
def runtime(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """This test's own runtime directory and the environment the commands run with (the
    recorder's name is a digest of it, so this process finds the same one); every warm recorder
    started under it is killed after the test."""
    run = Path(tempfile.mkdtemp(prefix="rt-"))  # short: a Unix socket's path is
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(run))
    monkeypatch.setenv("MLCI_MLFLOW_TRACKING_URI", workspace.tracking_uri)
    monkeypatch.setenv(warm.LINGER_ENV, "120")
    monkeypatch.delenv("CI", raising=False)
    yield run / f"mlci-warm-{os.geteuid()}"
    for pid in (run / f"mlci-warm-{os.geteuid()}").glob("*.pid"):
        with contextlib.suppress(OSError, ValueError):
            os.kill(int(pid.read_text()), signal.SIGKILL)
    shutil.rmtree(run, ignore_errors=True)


def _train(workspace: Workspace, **env: str) -> tuple[str, str]:
    proc = workspace.mlci(workspace.project, "train", PYTHONPROFILEIMPORTTIME="1", **env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_id = json.loads((workspace.project / "reports" / "train.json").read_text())
    return proc.stdout + proc.stderr, str(run_id["mlflow_run_id"])


def _whole_run(uri: str, run_id: str) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    run = MlflowClient(uri).get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["backend"] == "sklearn"
    mlflow.set_tracking_uri(uri)
    model = mlflow.sklearn.load_model(f"runs:/{run_id}/model")
    assert hasattr(model, "predict")


@pytest.mark.slow
def test_commands_alone_record_through_the_recorder_the_first_one_left(
    workspace: Workspace, runtime: Path
) -> None:
    first, first_id = _train(workspace)
    assert "(recorded by a warm recorder)" in first
    pid = warm.running(workspace.tracking_uri)
    assert pid is not None and (runtime / "lock").exists()
    assert oct(runtime.stat().st_mode & 0o777) == "0o700"

    second, second_id = _train(workspace)
    assert "(recorded by a warm recorder)" in second and second_id != first_id
    assert IMPORTED_MLFLOW not in second  # the training process never loaded MLflow
    assert warm.running(workspace.tracking_uri) == pid  # the same recorder answered

    proc = workspace.mlci(workspace.project, "evaluate", PYTHONPROFILEIMPORTTIME="1")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert IMPORTED_MLFLOW not in proc.stderr
    from mlflow.tracking import MlflowClient

    metrics = MlflowClient(workspace.tracking_uri).get_run(second_id).data.metrics
    assert {"accuracy", "roc_auc"} <= set(metrics)  # evaluation landed on the training's run
    for run_id in (first_id, second_id):
        _whole_run(workspace.tracking_uri, run_id)


@pytest.mark.slow
def test_an_idle_recorder_ends_and_a_killed_one_is_replaced_losing_nothing(
    workspace: Workspace, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(warm.LINGER_ENV, "1")
    _, run_id = _train(workspace)
    pid = warm.running(workspace.tracking_uri)
    assert pid is not None and _gone(pid, 60)
    left = {p.name for p in runtime.iterdir()}  # socket and pid file gone, only its log
    assert left == {"lock", f"{warm.key(workspace.tracking_uri)}.log"}
    _whole_run(workspace.tracking_uri, run_id)

    monkeypatch.setenv(warm.LINGER_ENV, "120")  # another setting: another recorder's name
    _train(workspace)
    pid = warm.running(workspace.tracking_uri)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid, 10)
    assert warm.address(workspace.tracking_uri) is not None
    assert Path(str(warm.address(workspace.tracking_uri))).exists()  # a socket nobody serves
    out, run_id = _train(workspace)
    assert "(recorded by a warm recorder)" in out
    assert warm.running(workspace.tracking_uri) not in (None, pid)
    _whole_run(workspace.tracking_uri, run_id)


@pytest.mark.slow
@pytest.mark.parametrize(
    "env",
    [{"CI": "true"}, {"MLCI_RECORDER": "off"}, {warm.LINGER_ENV: "0"}],
    ids=["ci", "recorder-off", "zero"],
)
def test_none_in_ci_or_when_turned_off(
    workspace: Workspace, runtime: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    monkeypatch.delenv(warm.LINGER_ENV)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out, run_id = _train(workspace)
    assert "warm recorder" not in out and IMPORTED_MLFLOW in out  # recorded here or in a worker
    assert not runtime.exists() or not list(runtime.glob("*.sock"))
    _whole_run(workspace.tracking_uri, run_id)


def test_a_bad_setting_is_one_clear_error(
    workspace: Workspace, runtime: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(warm.LINGER_ENV, "soon")
    with pytest.raises(ConfigError, match="MLCI_WARM_RECORDER='soon' is not a number"):
        warm.linger()
    proc = workspace.mlci(workspace.project, "train")
    assert proc.returncode == 2, proc.stderr
    assert "MLCI_WARM_RECORDER='soon'" in proc.stderr and "Traceback" not in proc.stderr


def test_a_directory_not_provably_this_users_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setenv(warm.LINGER_ENV, "60")
    mine = tmp_path / f"mlci-warm-{os.geteuid()}"
    assert warm.home() == mine and oct(mine.stat().st_mode & 0o777) == "0o700"
    mine.chmod(0o755)  # others could plant a socket in it
    assert warm.home() is None and warm.address("sqlite:///x.db") is None
    mine.rmdir()
    (tmp_path / "elsewhere").mkdir(mode=0o700)
    mine.symlink_to(tmp_path / "elsewhere")
    assert warm.home() is None


def test_its_name_changes_with_what_decides_where_and_how_runs_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    one = warm.key("sqlite:///a.db")
    assert warm.key("sqlite:///b.db") != one
    monkeypatch.setenv("AWS_PROFILE", "other")
    assert warm.key("sqlite:///a.db") != one
    monkeypatch.delenv("AWS_PROFILE")
    monkeypatch.setenv("UNRELATED_SETTING", "x")
    assert warm.key("sqlite:///a.db") == one


def test_a_store_named_relative_to_the_directory_gets_a_recorder_per_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    names = {}
    for uri in ("sqlite:///mlflow.db", "mlruns", "file:mlruns", "sqlite:////abs/mlflow.db"):
        for where in ("a", "b"):
            monkeypatch.chdir(tmp_path / where)
            names[uri, where] = warm.key(uri)
    for uri in ("sqlite:///mlflow.db", "mlruns", "file:mlruns"):
        assert names[uri, "a"] != names[uri, "b"], uri
    assert names["sqlite:////abs/mlflow.db", "a"] == names["sqlite:////abs/mlflow.db", "b"]


def _gone(pid: int, timeout: float) -> bool:
    """Whether process ``pid`` ended within ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False
