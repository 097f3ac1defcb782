"""Promotion and rollback on a real MLflow registry (SQLite store), and the promotion note on
the loopback GitHub API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import Workspace, git
from github_server import FakeGitHub

pytestmark = pytest.mark.slow


def _registry(workspace: Workspace):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(workspace.tracking_uri, registry_uri=workspace.tracking_uri)


def test_promote_rollback_and_lineage(workspace: Workspace) -> None:
    p = workspace.project
    main_sha = git(p, "rev-parse", "main").strip()

    proc = workspace.mlci(p, "promote")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "registered version 1; champion -> v1" in proc.stdout
    assert "## ✅ mlci promotion: promoted" in proc.stdout
    assert "no GitHub token and repository in this context: promotion note not posted" in (
        proc.stdout
    )
    assert (p / ".mlci" / "report-promotion.md").read_text() in proc.stdout
    client = _registry(workspace)
    v1 = client.get_model_version_by_alias("diabetes-progression", "champion")
    assert str(v1.version) == "1"
    assert v1.tags["mlci.git_sha"] == main_sha
    assert v1.tags["mlci.schema"] == "1" and v1.tags["mlci.backend"] == "sklearn"
    assert float(v1.tags["mlci.metric.accuracy"]) > 0.5
    # the commit's outputs are up to date: promotion retrains nothing, and the lineage comes
    # from its dvc.lock, split by kind, with the training's key
    assert "dvc repro --force" not in proc.stdout
    lock = (p / "dvc.lock").read_text()
    assert v1.tags["mlci.lineage.models.models/model.pkl"] in lock
    assert v1.tags["mlci.lineage.data.data/diabetes.csv"] in lock
    assert "mlci.lineage.metrics.metrics.json" in v1.tags
    assert "mlci.lineage.plots.plots/roc.json" in v1.tags
    assert v1.tags["mlci.training_stage"] == "train" and v1.tags["mlci.training_key"]

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


NOTE = "<!-- mlci-report:mlci-promotion -->"
MODEL = "diabetes-progression"


def github_env(github: FakeGitHub, work: Path, sha: str, **extra: str) -> dict[str, str]:
    """A push to main after a merge, as GitHub Actions describes it."""
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_SHA": sha,
        "GITHUB_REPOSITORY": github.repo,
        "GITHUB_TOKEN": github.token,
        "GITHUB_API_URL": github.url,
        "GITHUB_STEP_SUMMARY": str(work / "summary.md"),
        **extra,
    }


def _notes(comments: list[dict[str, Any]], login: str | None = None) -> list[dict[str, Any]]:
    """Comments with the promotion note's marker (by ``login`` only, when given)."""
    return [
        c for c in comments if NOTE in c["body"] and (login is None or c["user"]["login"] == login)
    ]


def test_promotion_note_is_one_sticky_comment_on_the_merged_pr(
    workspace: Workspace, github: FakeGitHub
) -> None:
    p = workspace.project
    sha = git(p, "rev-parse", "main").strip()
    github.add_comment(7, f"{NOTE} not ours: someone else's comment with our marker")
    env = github_env(github, workspace.work, sha, MLCI_PR_NUMBER="7")

    first = workspace.mlci(p, "promote", **env)
    assert first.returncode == 0, first.stdout + first.stderr
    ours = _notes(github.comments[7], "octocat")
    assert len(ours) == 1
    body = ours[0]["body"]
    run_id = _registry(workspace).get_model_version_by_alias(MODEL, "champion").run_id
    assert body.startswith(NOTE + "\n## ✅ mlci promotion: promoted")
    assert f"**`{MODEL}` v1 from `{sha[:7]}` is now `champion`.**" in body
    for row in (
        "| new version | v1 (registered now) |",
        "| champion | v1 (was none) |",
        "| previous | none |",
        f"| commit | `{sha}` |",
        f"| MLflow run | `{run_id}` |",
        "| metric | champion | this commit |",
    ):
        assert row in body, row
    assert "| `accuracy` | — |" in body  # gated metric, no champion to compare with yet
    assert "<!-- mlci-report:mlci -->" not in body  # not the PR check's sticky comment
    assert body in (workspace.work / "summary.md").read_text()
    assert body in first.stdout
    assert f"promotion note: {ours[0]['html_url']}" in first.stdout

    again = workspace.mlci(p, "promote", **env)
    assert again.returncode == 0, again.stdout + again.stderr
    ours_now = _notes(github.comments[7], "octocat")
    assert [c["id"] for c in ours_now] == [ours[0]["id"]], "updated, not a second comment"
    assert "| new version | v1 (registered before) |" in ours_now[0]["body"]
    assert len(github.requests_to("POST", r"/issues/7/comments$")) == 1
    assert len(github.requests_to("PATCH", r"/issues/comments/\d+$")) == 1
    assert not github.requests_to("GET", r"/commits/.*/pulls$"), "the context named the PR"
    assert not github.commit_comments
    assert github.violations == []


def test_promotion_note_on_a_commit_without_a_pr(workspace: Workspace, github: FakeGitHub) -> None:
    p = workspace.project
    sha = git(p, "rev-parse", "main").strip()
    proc = workspace.mlci(p, "promote", **github_env(github, workspace.work, sha))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(github.requests_to("GET", rf"/commits/{sha}/pulls$")) == 1
    [comment] = github.commit_comments[sha]
    assert comment["body"].startswith(NOTE + "\n## ✅ mlci promotion: promoted")
    assert f"| commit | `{sha}` |" in comment["body"]
    assert all(not _notes(cs) for cs in github.comments.values()), "no PR comment"
    assert f"promotion note: {comment['html_url']}" in proc.stdout
    assert comment["body"] in (workspace.work / "summary.md").read_text()
    again = workspace.mlci(p, "promote", **github_env(github, workspace.work, sha))
    assert again.returncode == 0, again.stdout + again.stderr
    [updated] = github.commit_comments[sha]  # a re-run updates the note, never adds one
    assert updated["id"] == comment["id"] and "(registered before)" in updated["body"]
    assert github.violations == []


def test_a_github_failure_keeps_the_promotion_and_the_summary(
    workspace: Workspace, github: FakeGitHub
) -> None:
    p = workspace.project
    sha = git(p, "rev-parse", "main").strip()
    github.fail(
        "POST",
        r"/issues/7/comments$",
        403,
        body={
            "message": "Resource not accessible by integration",
            "documentation_url": "https://docs.github.com/rest",
            "status": "403",
        },
    )
    env = github_env(github, workspace.work, sha, MLCI_PR_NUMBER="7")
    proc = workspace.mlci(p, "promote", **env)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "registered version 1; champion -> v1" in proc.stdout
    assert "GitHub refused access to pull request #7" in proc.stderr
    assert "permissions: pull-requests: write" in proc.stderr
    assert str(_registry(workspace).get_model_version_by_alias(MODEL, "champion").version) == "1"
    summary = (workspace.work / "summary.md").read_text()
    assert summary.startswith(NOTE + "\n## ✅ mlci promotion: promoted")
    assert f"| commit | `{sha}` |" in summary
    assert not _notes(github.comments[7])
    assert len(github.requests_to("POST", r"/issues/7/comments$")) == 1


def test_promotion_blocked_by_a_worse_model(workspace: Workspace, github: FakeGitHub) -> None:
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
    sha = git(p, "rev-parse", "HEAD").strip()
    github.merge_pull(8, sha)  # found through GET /commits/{sha}/pulls: no PR in the context
    env = github_env(github, workspace.work, sha, GITHUB_REF="refs/heads/worse")
    proc = workspace.mlci(p, "promote", "--force", **env)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "does not hold up against the champion" in proc.stderr
    client = _registry(workspace)
    assert str(client.get_model_version_by_alias("diabetes-progression", "champion").version) == "1"
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == 1, "nothing registered"
    [note] = _notes(github.comments[8])
    body = note["body"]
    assert body.startswith(NOTE + "\n## ❌ mlci promotion: not promoted")
    assert "`champion` stays v1" in body
    assert "| new version | not registered |" in body
    assert "| champion | v1 (unchanged) |" in body
    assert f"| commit | `{sha}` |" in body
    assert "**Failed gates**" in body and "❌ fail" in body
    assert "champion -> v" not in proc.stdout  # the action reads the new version from that
    assert body in (workspace.work / "summary.md").read_text()
    assert github.violations == []
