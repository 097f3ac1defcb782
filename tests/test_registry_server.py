"""Promotion at team scale: a real `mlflow server` on PostgreSQL, concurrent promotions, and a
server that dies at each step of a promotion."""

from __future__ import annotations

import dataclasses
import itertools
import os
import re
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from servers import MlflowServer, start_mlflow, stop_mlflow

from conftest import Workspace, git

pytestmark = pytest.mark.slow

PROMOTE = """
import sys
from mlci.registry import tags as vocab
from mlci.registry.models import promote
uri, name, run_id, sha, t = sys.argv[1:6]
p = promote(uri, name, run_id, sha, {vocab.COMMIT_TIME: t})
print(p.version, p.created)
"""

LOG_RUNS = """
import sys, mlflow, mlflow.sklearn, numpy as np
from sklearn.linear_model import LogisticRegression
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment(sys.argv[2])
model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
for _ in range(int(sys.argv[3])):
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                 pip_requirements=["scikit-learn"])
        print(run.info.run_id)
"""


def _client(server: MlflowServer):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(server.url, registry_uri=server.url)


def test_eight_concurrent_promotions_leave_one_consistent_champion(
    mlflow_server: MlflowServer,
) -> None:
    name = f"concurrent-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [sys.executable, "-c", LOG_RUNS, mlflow_server.url, name, "8"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    runs = re.findall(r"^[0-9a-f]{32}$", out, flags=re.M)
    assert len(runs) == 8
    # Commit times deliberately not in run order; two extra processes race on commit 3.
    times = [5, 1, 8, 3, 7, 2, 6, 4]
    jobs = [(runs[i], f"{i:040x}", str(times[i])) for i in range(8)]
    jobs += [(runs[3], f"{3:040x}", str(times[3]))] * 2
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", PROMOTE, mlflow_server.url, name, r, s, t],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r, s, t in jobs
    ]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err[-2000:]
    client = _client(mlflow_server)
    versions = client.search_model_versions(f"name = '{name}'")
    by_sha = {v.tags["mlci.git_sha"]: v for v in versions}
    assert len(versions) == 8 == len(by_sha), "one version per commit, no duplicates"
    newest = by_sha[f"{2:040x}"]  # commit time 8
    second = by_sha[f"{4:040x}"]  # commit time 7
    assert client.get_model_version_by_alias(name, "champion").version == newest.version
    assert client.get_model_version_by_alias(name, "previous").version == second.version
    # the audit trail of ten racing writers: every move names real versions, no move is shown
    # twice in a row, and it ends exactly where the aliases point
    from mlci.registry import releases

    moves = releases.moves(mlflow_server.url, name)
    real = {str(v.version) for v in versions} | {None}
    assert all(m.before in real and m.after in real for m in moves), moves
    for alias in ("champion", "previous"):
        mine = [(m.before, m.after) for m in moves if m.alias == alias]
        assert all(a != b for a, b in itertools.pairwise(mine)), mine
    last = {m.alias: m.after for m in moves}
    assert (last["champion"], last["previous"]) == (str(newest.version), str(second.version))


def test_promote_rollback_lineage_on_postgres(
    workspace: Workspace, mlflow_server: MlflowServer
) -> None:
    name = f"team-{uuid.uuid4().hex[:8]}"
    env = {
        "MLCI_MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLCI_MODEL_NAME": name,
        "MLCI_EXPERIMENT": name,
    }
    p = workspace.project
    first = workspace.mlci(p, "promote", **env)
    assert first.returncode == 0, first.stdout + first.stderr
    git(p, "checkout", "-q", "pr/tune-model")
    second = workspace.mlci(p, "promote", "--force", **env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "champion -> v2" in second.stdout
    client = _client(mlflow_server)
    assert client.get_model_version_by_alias(name, "champion").version in ("2", 2)
    lineage = workspace.mlci(p, "lineage", **env)
    assert f"git_sha: {git(p, 'rev-parse', 'HEAD').strip()}" in lineage.stdout
    back = workspace.mlci(p, "rollback", "--reason", "drift in prod", **env)
    assert back.returncode == 0, back.stderr
    assert "champion v2 -> v1" in back.stdout
    v1 = client.get_model_version_by_alias(name, "champion")
    assert str(v1.version) == "1"
    assert v1.tags["mlci.rollback.reason"] == "drift in prod"
    assert v1.tags["mlci.git_sha"] == git(p, "rev-parse", "main").strip()


def test_unreachable_server_is_exit_5_and_changes_nothing(workspace: Workspace) -> None:
    from servers import free_port

    uri = f"http://127.0.0.1:{free_port()}"
    proc = workspace.mlci(
        workspace.project,
        "rollback",
        "--reason",
        "x",
        MLCI_MLFLOW_TRACKING_URI=uri,
        MLFLOW_HTTP_REQUEST_MAX_RETRIES="0",
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"MLflow at {uri} failed" in proc.stderr
    assert "Traceback" not in proc.stderr


def _kill(server: MlflowServer) -> None:
    """The server dies: SIGKILL to its whole process group, no goodbye."""
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=20)


def _die_after(step: str, server: MlflowServer, dead: list[str]) -> Callable[[str], None]:
    """An ``on_step`` hook that kills the server once ``step`` is done."""

    def hook(done: str) -> None:
        if done == step and not dead:
            _kill(server)
            dead.append(done)

    return hook


def _alias(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _champion_files(server: MlflowServer, name: str, dest: Path) -> Path:
    """Download what ``champion`` points at, as a serving job would; the MLmodel must be there."""
    import mlflow

    mlflow.set_tracking_uri(server.url)
    mlflow.set_registry_uri(server.url)  # `models:` resolves through the registry
    got = mlflow.artifacts.download_artifacts(
        artifact_uri=f"models:/{name}@champion", dst_path=str(dest), tracking_uri=server.url
    )
    assert (Path(got) / "MLmodel").is_file(), list(Path(got).iterdir())
    return Path(got)


def test_server_death_at_each_promotion_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill `mlflow server` after each step of a promotion, start it again on the same stores:
    exit 5 with a clear message, `champion` on a version whose files download, and a re-run
    that converges to champion = new, previous = old."""
    import mlflow
    import mlflow.sklearn
    import numpy as np
    from mlflow.tracking import MlflowClient
    from sklearn.linear_model import LogisticRegression

    from mlci import git as mgit
    from mlci.ci import CIContext
    from mlci.errors import EXIT_EXTERNAL, MlflowError
    from mlci.promotion import promote as promotion
    from mlci.registry import history, releases
    from mlci.registry import models as registry
    from mlci.registry import tags as vocab
    from mlci.settings.config import Gate, Settings

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a dead server fails at once
    backend, artifacts = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts"
    server = start_mlflow(backend, artifacts, tmp_path / "server-0.log")
    try:
        repo = tmp_path / "repo"
        repo.mkdir()
        git(repo, "init", "-q", "-b", "main")
        shas = []
        for i in range(2):
            (repo / "params.yaml").write_text(f"train: {{seed: {i}}}\n")
            git(repo, "add", "params.yaml")
            git(repo, "commit", "-qm", f"commit {i}")
            shas.append(git(repo, "rev-parse", "HEAD").strip())
        old_sha, new_sha = shas
        mlflow.set_tracking_uri(server.url)
        exp = mlflow.set_experiment("death").experiment_id
        model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
        runs = []
        for sha, accuracy in ((old_sha, 0.90), (new_sha, 0.91)):
            with mlflow.start_run(experiment_id=exp, tags={"mlci.git_sha": sha}) as run:
                mlflow.log_metric("accuracy", accuracy)
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    serialization_format="cloudpickle",
                    pip_requirements=["scikit-learn"],
                )
            runs.append(run.info.run_id)
        ctx = CIContext(sha=new_sha, ref="refs/heads/main")
        steps = (registry.FOUND_RUN, registry.REGISTERED, registry.CANDIDATE, registry.CONVERGING)
        for i, step in enumerate(steps):
            name = f"death-{i}"
            settings = Settings(
                root=repo,
                mlflow_tracking_uri=server.url,
                experiment="death",
                model_name=name,
                gates=(Gate("accuracy", abs_tol=0.02),),
                comment=False,
            )
            old_time = {vocab.COMMIT_TIME: str(mgit.commit_time(repo, old_sha))}
            assert registry.promote(server.url, name, runs[0], old_sha, old_time).champion == "1"
            dead: list[str] = []
            with pytest.raises(MlflowError) as stopped:
                promotion.promote(repo, settings, ctx, on_step=_die_after(step, server, dead))
            assert dead == [step]
            err = stopped.value
            assert err.exit_code == EXIT_EXTERNAL
            assert f"MLflow at {server.url} failed" in err.message
            if step != registry.FOUND_RUN:
                assert f"while promoting '{name}' (after step '{step}')" in err.message
                assert "re-run `mlci promote`" in (err.fix or "")

            server = start_mlflow(backend, artifacts, tmp_path / f"server-{i + 1}.log")
            client = MlflowClient(server.url, registry_uri=server.url)
            # Every step before the last write leaves champion where it was, with its files.
            assert _alias(client, name, "champion") == "1", step
            assert _alias(client, name, "previous") == (
                "1" if step == registry.CONVERGING else None
            )
            _champion_files(server, name, tmp_path / f"before-{i}")
            versions = {str(v.version): v for v in client.search_model_versions(f"name = '{name}'")}
            if step == registry.REGISTERED:
                assert "mlci.promoted" not in versions["2"].tags, "registered, not yet a candidate"
            assert sorted(versions) == (["1"] if step == registry.FOUND_RUN else ["1", "2"])

            settings = dataclasses.replace(settings, mlflow_tracking_uri=server.url)
            again = promotion.promote(repo, settings, ctx)
            assert again.promotion is not None
            assert (again.promotion.version, again.promotion.champion) == ("2", "2")
            assert again.promotion.previous == "1"
            assert (_alias(client, name, "champion"), _alias(client, name, "previous")) == (
                "2",
                "1",
            )
            assert len(client.search_model_versions(f"name = '{name}'")) == 2, "no duplicate"
            _champion_files(server, name, tmp_path / f"after-{i}")
            # the trail: no gap and no duplicate, whichever step the server died after
            trail = [(m.alias, m.before, m.after) for m in releases.moves(server.url, name)]
            assert [t for t in trail if t[0] == "champion"] == [
                ("champion", None, "1"),
                ("champion", "1", "2"),
            ], (step, trail)
            assert [t for t in trail if t[0] == "previous"] == [("previous", None, "1")], trail
        # a move made outside mlci (or by a job that died before its record) is found
        client.set_registered_model_alias(name, "champion", "1")
        found = history.reconcile(
            client, name, registry.aliases(client, name), history.Context("a check")
        )
        assert found == 1
        last = releases.moves(server.url, name)[-1]
        assert (last.alias, last.before, last.after) == ("champion", "2", "1")
        assert last.why.startswith("found where the trail did not say")
    finally:
        stop_mlflow(server)


def test_writers_setting_one_tag_at_once_all_succeed(mlflow_server: MlflowServer) -> None:
    """Two releases (or promotions) that write the same tag at the same moment: MLflow's
    upsert is a read then an insert, so on PostgreSQL the second insert can hit the primary
    key. Every writer must still succeed, and the tag must hold one of the values written."""
    import threading

    from mlci.registry.tracking import set_model_tags

    client = _client(mlflow_server)
    name = f"tags-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    keys = [f"mlci.race.{i}" for i in range(12)]
    errors: list[BaseException] = []
    gate = threading.Barrier(6)

    def writer(who: int) -> None:
        own = _client(mlflow_server)
        for key in keys:
            gate.wait()
            try:
                set_model_tags(own, name, {key: f"writer-{who}"})
            except BaseException as exc:  # collected, asserted below
                errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors[:2]
    tags = client.get_registered_model(name).tags
    assert {k: tags.get(k, "")[:7] for k in keys} == dict.fromkeys(keys, "writer-")
