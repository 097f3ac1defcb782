"""Promotion and rollback on a real MLflow registry (SQLite store)."""

from __future__ import annotations

import pytest

from conftest import Workspace, git

pytestmark = pytest.mark.slow


def _registry(workspace: Workspace):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(workspace.tracking_uri)


def test_promote_rollback_and_lineage(workspace: Workspace) -> None:
    p = workspace.project
    main_sha = git(p, "rev-parse", "main").strip()

    proc = workspace.mlci(p, "promote")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "registered version 1; champion -> v1" in proc.stdout
    client = _registry(workspace)
    v1 = client.get_model_version_by_alias("diabetes-progression", "champion")
    assert str(v1.version) == "1"
    assert v1.tags["mlci.git_sha"] == main_sha
    assert v1.tags["mlci.data.data/diabetes.csv"]
    assert float(v1.tags["mlci.metric.accuracy"]) > 0.5

    again = workspace.mlci(p, "promote")
    assert again.returncode == 0
    assert "already registered as version 1" in again.stdout
    assert len(client.search_model_versions("name = 'diabetes-progression'")) == 1

    git(p, "checkout", "-q", "pr/tune-model")
    refused = workspace.mlci(p, "promote")
    assert refused.returncode == 2
    assert "refusing to promote from pr/tune-model" in refused.stderr

    forced = workspace.mlci(p, "promote", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "champion -> v2, previous -> v1" in forced.stdout
    assert str(client.get_model_version_by_alias("diabetes-progression", "previous").version) == "1"

    lineage = workspace.mlci(p, "lineage")
    assert lineage.returncode == 0
    pr_sha = git(p, "rev-parse", "HEAD").strip()
    assert f"git_sha: {pr_sha}" in lineage.stdout
    assert "run_id: " in lineage.stdout

    back = workspace.mlci(p, "rollback", "--reason", "latency regression")
    assert back.returncode == 0, back.stderr
    assert "champion v2 -> v1" in back.stdout
    champion = client.get_model_version_by_alias("diabetes-progression", "champion")
    assert str(champion.version) == "1"
    assert champion.tags["mlci.rollback.reason"] == "latency regression"
    assert champion.tags["mlci.rollback.from_version"] == "2"

    nothing = workspace.mlci(p, "rollback", "--reason", "again")
    assert nothing.returncode == 2
    assert "no previous version" in nothing.stderr


def test_promotion_blocked_by_a_worse_model(workspace: Workspace) -> None:
    p = workspace.project
    assert workspace.mlci(p, "promote").returncode == 0
    git(p, "checkout", "-q", "-b", "worse")
    text = (
        (p / "params.yaml")
        .read_text()
        .replace("max_depth: 3", "max_depth: 1")
        .replace("n_estimators: 200", "n_estimators: 2")
    )
    (p / "params.yaml").write_text(text)
    git(p, "commit", "-qam", "worse")
    proc = workspace.mlci(p, "promote", "--force")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "does not hold up against the champion" in proc.stderr
    client = _registry(workspace)
    assert str(client.get_model_version_by_alias("diabetes-progression", "champion").version) == "1"
