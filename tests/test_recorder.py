"""The MLflow recorder ``mlci run`` starts: stages record through it without importing MLflow,
a request for another store is declined and recorded where it was meant to go, its errors come
back as the same error, and it leaves nothing behind."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import MlflowError
from mlci.project import lineage
from mlci.registry import tags as vocab
from mlci.training import leftovers, recorder

from conftest import Workspace


def _exported_model(tmp_path: Path) -> Path:
    from sklearn.dummy import DummyClassifier

    from mlci.training.sklearn import SklearnTrainer

    export = tmp_path / "export"
    export.mkdir()
    model = DummyClassifier().fit([[0], [1]], [0, 1])
    SklearnTrainer().export_model(model, export).save(export)
    return export


def test_a_run_recorded_through_the_recorder_is_a_whole_run(tmp_path: Path) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    export = _exported_model(tmp_path)
    with recorder.serving(uri, "e", tmp_path) as path:
        assert os.environ[recorder.RECORDER_ENV] == path and recorder.available()
        remote = recorder.Remote(uri, "other-experiment", tmp_path)
        ids = remote.finish("n", {"seed": 1}, {vocab.TASK: "t"}, export)
        assert remote.where == "mlci run's recorder"
        logged = recorder.request(
            "log_metrics", uri, run_id=ids["mlflow_run_id"], metrics={"accuracy": 0.75}
        )
        assert logged == {"logged": True}
        missing = recorder.request("log_metrics", uri, run_id="0" * 32, metrics={"a": 1.0})
        assert missing == {"logged": False}  # a run of another job's store: nothing to add
    client = MlflowClient(uri)
    run = client.get_run(ids["mlflow_run_id"])
    assert run.info.status == "FINISHED" and run.info.run_name == "n"
    assert client.get_experiment(run.info.experiment_id).name == "other-experiment"
    assert run.data.params == {"seed": "1"} and run.data.tags["mlci.task"] == "t"
    assert run.data.metrics == {"accuracy": 0.75}
    mlflow.set_tracking_uri(uri)
    assert mlflow.sklearn.load_model(f"runs:/{run.info.run_id}/model").predict([[1]]) == [0]


def test_another_store_is_declined_and_recorded_where_it_was_meant_to_go(tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    served = f"sqlite:///{tmp_path / 'served.db'}"
    meant = f"sqlite:///{tmp_path / 'meant.db'}"
    export = _exported_model(tmp_path)
    with recorder.serving(served, "e", tmp_path):
        assert recorder.request("log_metrics", meant, run_id="x", metrics={}) is None
        remote = recorder.Remote(meant, "e", tmp_path)
        ids = remote.finish("n", {}, {}, export)
        assert remote.where == "the training process"
    assert MlflowClient(meant).get_run(ids["mlflow_run_id"]).info.status == "FINISHED"
    assert (
        MlflowClient(served).search_runs(
            [e.experiment_id for e in MlflowClient(served).search_experiments()]
        )
        == []
    )


def test_its_errors_come_back_as_the_same_error(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    uri = f"sqlite:///{blocked}/mlflow.db"
    failed = r"MLflow at sqlite:///.*not-a-dir/mlflow\.db failed"
    with recorder.serving(uri, "e", tmp_path), pytest.raises(MlflowError, match=failed):
        recorder.Remote(uri, "e", tmp_path).finish("n", {}, {}, _exported_model(tmp_path))


def test_no_recorder_gone_recorder_or_off_means_record_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.delenv(recorder.RECORDER_ENV, raising=False)
    assert not recorder.available() and recorder.request("log_metrics", uri) is None
    with recorder.serving(uri, "e", tmp_path) as path:
        directory = Path(path).parent
        assert directory.stat().st_mode & 0o777 == 0o700  # only this user reaches the socket
    assert not directory.exists()  # socket and directory removed
    assert recorder.RECORDER_ENV not in os.environ  # the stages after it record themselves
    monkeypatch.setenv(recorder.RECORDER_ENV, path)  # a stale name: the recorder is gone
    assert not recorder.available() and recorder.request("log_metrics", uri) is None
    monkeypatch.setenv(recorder.RECORDER_ENV, "off")
    assert not recorder.wanted() and recorder.request("log_metrics", uri) is None


def test_a_recorder_that_cannot_start_is_no_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A temporary directory too deep for a Unix socket's path (107 bytes on Linux): no
    recorder, no error; the stages record themselves."""
    deep = tmp_path / ("d" * 120)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    monkeypatch.delenv(recorder.RECORDER_ENV, raising=False)
    with recorder.serving(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", tmp_path) as path:
        assert path is None and recorder.RECORDER_ENV not in os.environ
    assert list(deep.iterdir()) == []  # its directory is gone too


def test_it_ends_with_its_check_even_while_mlflow_still_loads(tmp_path: Path) -> None:
    """A no-op check ends before MLflow has loaded: the recorder ends with it, it does not
    linger (nor keep a pipe of the caller's open)."""
    code = (
        "import sys, time; from pathlib import Path; from mlci.training import recorder\n"
        "with recorder.serving(sys.argv[1], 'e', Path('.')): pass\n"
        "print('done', flush=True)\n"
    )
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tmp = tmp_path / "t"  # its own: it looks at nothing another program left
    tmp.mkdir()
    _plant(tmp / "mlci-rec-older", None)  # a killed check's, of an mlci before owner files
    proc = subprocess.run(
        [sys.executable, "-c", code, uri],
        cwd=tmp_path,
        env={**os.environ, "TMPDIR": str(tmp)},
        capture_output=True,
        text=True,
        timeout=60,  # the pipes close only when the recorder, which inherits them, has ended
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    assert [p.name for p in tmp.iterdir()] == ["mlci-rec-older"]  # its own is gone


_KILLED = (
    "import sys, time; from pathlib import Path; from mlci.training import recorder\n"
    "with recorder.serving(sys.argv[1], 'e', Path('.')) as path:\n"
    "    time.sleep(1 if sys.argv[2] == 'loading' else 0)  # its recorder imports MLflow\n"
    "    if sys.argv[2] == 'serving':\n"
    "        recorder.request('log_metrics', sys.argv[1], run_id='0' * 32, metrics={'a': 1.0})\n"
    "    print(path, flush=True)\n"
    "    time.sleep(600)\n"
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("when", ["starting", "loading", "serving"])
def test_a_killed_check_leaves_no_recorder_behind(tmp_path: Path, when: str) -> None:
    """`mlci run` killed (SIGKILL: no finally runs) while its recorder starts, imports MLflow,
    or serves: the recorder ends by itself and removes its directory."""
    tmp = tmp_path / "t"
    tmp.mkdir()
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    with (tmp_path / "stderr").open("w") as stderr:
        check = subprocess.Popen(
            [sys.executable, "-c", _KILLED, uri, when],
            cwd=tmp_path,
            env={**os.environ, "TMPDIR": str(tmp)},
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    assert check.stdout is not None
    with check, check.stdout:
        path = check.stdout.readline().strip()
        assert Path(path).parent.parent == tmp, (tmp_path / "stderr").read_text()
        [child] = _children(check.pid)
        born = leftovers.start_time(child)
        check.kill()
    deadline = time.monotonic() + 60
    while leftovers.start_time(child) == born or list(tmp.iterdir()):
        assert time.monotonic() < deadline, (leftovers.start_time(child), list(tmp.iterdir()))
        time.sleep(0.05)


def test_the_next_check_removes_only_what_killed_checks_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before it starts its recorder, a check removes the directories of this user's killed
    checks, those it can prove stale, and nothing else."""
    tmp = tmp_path / "t"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    me = leftovers.identity(os.getpid())
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as gone:
        killed = leftovers.identity(gone.pid)
        gone.kill()
    _plant(tmp / "mlci-rec-killed", killed)
    _plant(tmp / "mlci-rec-reused", {**me, "started": "1"})  # its pid names another process now
    _plant(tmp / "mlci-rec-unbound", killed, sock=None)  # killed before it bound its socket
    _plant(tmp / "mlci-rec-older", None, age=7200)  # an older mlci's: nobody listens, for long
    listening: list[socket.socket] = []
    _plant(tmp / "mlci-rec-alive", me)
    _plant(tmp / "mlci-rec-orphan", killed, sock=listening)  # its recorder lives on: it leaves
    _plant(tmp / "mlci-rec-elsewhere", {**killed, "machine": "another host"})
    _plant(tmp / "mlci-rec-recent", None)  # an older mlci's, killed minutes ago: not proof
    _plant(tmp / "mlci-rec-older-alive", None, sock=listening, age=7200)
    _plant(tmp / "mlci-rec-older-empty", None, sock=None, age=7200)
    _plant(tmp / "mlci-rec-garbled", "{not json")
    _plant(tmp / "mlci-rec-open", killed, mode=0o755)
    _plant(tmp / "other-rec-killed", killed)
    _plant(tmp_path / "elsewhere", killed)
    (tmp / "mlci-rec-link").symlink_to(tmp_path / "elsewhere")
    (tmp / "mlci-rec-file").write_text("")
    kept = {"mlci-rec-alive", "mlci-rec-orphan", "mlci-rec-elsewhere", "mlci-rec-recent"}
    kept |= {"mlci-rec-older-alive", "mlci-rec-older-empty", "mlci-rec-garbled"}
    kept |= {"mlci-rec-open", "other-rec-killed", "mlci-rec-link", "mlci-rec-file"}
    if os.geteuid() == 0:  # another user's: as root, one can be made
        _plant(tmp / "mlci-rec-nobody", killed)
        os.chown(tmp / "mlci-rec-nobody", 65534, 65534)
        kept.add("mlci-rec-nobody")
    try:
        with recorder.serving(f"sqlite:///{tmp_path / 'mlflow.db'}", "e", tmp_path) as path:
            assert path is not None and Path(path).parent.parent == tmp
            assert {p.name for p in tmp.iterdir()} == kept | {Path(path).parent.name}
    finally:
        for listener in listening:
            listener.close()
    assert {p.name for p in tmp.iterdir()} == kept
    assert (tmp_path / "elsewhere" / "owner").exists()  # a link is never followed


def _plant(
    directory: Path,
    owner: dict[str, Any] | str | None,
    sock: list[socket.socket] | str | None = "refused",
    mode: int = 0o700,
    age: float = 0,
) -> None:
    """A recorder's directory as a killed check leaves it: an owner file (None: as an mlci
    before owner files made it) and a socket nobody listens on (or one listening, kept in
    ``sock``)."""
    directory.mkdir(mode=0o700)
    if owner is not None:
        (directory / "owner").write_text(owner if isinstance(owner, str) else json.dumps(owner))
    if sock is not None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(directory / "sock"))
        if isinstance(sock, list):
            listener.listen(1)
            sock.append(listener)
        else:
            listener.close()
    directory.chmod(mode)
    if age:
        os.utime(directory, (time.time() - age, time.time() - age))


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if entry.isdigit() and stat.rsplit(")", 1)[1].split()[1] == str(pid):
            found.append(int(entry))
    return found


@pytest.mark.slow
def test_a_pr_check_records_training_and_evaluation_through_its_recorder(
    workspace: Workspace,
) -> None:
    """`mlci run` on a changed hyperparameter: the train stage's run is recorded by the
    check's recorder (the stage says so), evaluation's metrics and the check's key tag land on
    that same run, and the stage processes never import MLflow."""
    from mlflow.tracking import MlflowClient

    clone = workspace.clone()
    proc = workspace.mlci(clone, "run", "--base", "main", PYTHONPROFILEIMPORTTIME="1")
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    assert "(recorded by mlci run's recorder)" in proc.stdout
    facts = json.loads((clone / "reports" / "train.json").read_text())
    run = MlflowClient(workspace.tracking_uri).get_run(facts["mlflow_run_id"])
    assert {"accuracy", "roc_auc"} <= set(run.data.metrics)
    key = lineage.read(clone, "models/model.pkl").key
    assert key and run.data.tags.get(vocab.TRAINING_KEY) == key, sorted(run.data.tags)
    # every `import mlflow` in the log is the recorder's own: exactly one process imported it
    assert log.count("| mlflow\n") == 1, log.count("| mlflow\n")


@pytest.mark.slow
def test_a_projects_own_script_is_recorded_through_the_recorder(tmp_path: Path) -> None:
    """A project unlike the example (its own `python src/fit.py`, model declared as a DVC
    artifact, metrics in a sub-directory): the check records the training's run, key and
    lineage through its recorder, so no process but the recorder imports MLflow."""
    from lifecycle import build, clone, mlci, open_pr, pr_env
    from mlflow.tracking import MlflowClient

    origin, remote = tmp_path / "origin", tmp_path / "remote"
    build(origin, remote)
    sha = open_pr(origin, "pr/own-script", 0.3)
    job = clone(origin, tmp_path / "job", "pr/own-script")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {"MLCI_MLFLOW_TRACKING_URI": uri, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = mlci(job, "run", "--base", "main", **env, **pr_env(tmp_path, 5, sha))
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-3000:]
    client = MlflowClient(uri)
    [run] = client.search_runs([e.experiment_id for e in client.search_experiments()])
    key = lineage.read(job, "models/clf.pkl").key
    assert key and run.data.tags[vocab.TRAINING_KEY] == key
    assert run.data.tags["mlci.recorded"] == "true" and run.data.tags["mlci.pr"] == "5"
    assert run.data.params == {"model.C": "0.3"}
    assert run.data.metrics == {"quality.accuracy": pytest.approx(_accuracy(job)), "rows": 40.0}
    assert log.count("| mlflow\n") == 1, log.count("| mlflow\n")


def _accuracy(job: Path) -> float:
    return float(json.loads((job / "reports/eval/scores.json").read_text())["quality"]["accuracy"])
