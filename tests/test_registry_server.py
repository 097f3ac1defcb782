"""Promotion at team scale: a real `mlflow server` on PostgreSQL, concurrent promotions."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid

import pytest
from servers import MlflowServer

from conftest import Workspace, git

pytestmark = pytest.mark.slow

PROMOTE = """
import sys
from mlci.registry import promote
uri, name, run_id, sha, t = sys.argv[1:6]
p = promote(uri, name, run_id, sha, {"commit_time": t})
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

    return MlflowClient(server.url)


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
