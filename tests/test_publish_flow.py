"""`mlci run` on a pull_request event against the loopback GitHub API: one sticky comment,
job summary, step outputs, failures that lose nothing, and a token that never leaks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import Workspace, git
from github_server import FakeGitHub

pytestmark = pytest.mark.slow


def github_env(github: FakeGitHub, work: Path, ci: Path, **extra: str) -> dict[str, str]:
    event = work / "event.json"
    head = git(ci, "rev-parse", "HEAD").strip()
    event.write_text(
        json.dumps(
            {
                "number": 7,
                "pull_request": {
                    "number": 7,
                    "head": {
                        "ref": "pr/tune-model",
                        "sha": head,
                        "repo": {"full_name": github.repo},
                    },
                    "base": {"ref": "main", "repo": {"full_name": github.repo}},
                },
            }
        )
    )
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": github.repo,
        "GITHUB_TOKEN": github.token,
        "GITHUB_API_URL": github.url,
        "GITHUB_STEP_SUMMARY": str(work / "summary.md"),
        "GITHUB_OUTPUT": str(work / "output.txt"),
        "GITHUB_RUN_ID": "42",
    }
    env.update(extra)
    return env


def _ours(github: FakeGitHub) -> list[dict[str, Any]]:
    return [c for c in github.comments[7] if "<!-- mlci-report:mlci -->" in c["body"]]


def _no_token_leak(github: FakeGitHub, *texts: str) -> None:
    for text in texts:
        lines = [ln for ln in text.splitlines() if github.token in ln]
        assert all(ln.startswith("::add-mask::") for ln in lines), lines
    for r in github.requests:
        assert github.token not in r.path + json.dumps(r.query) + r.raw
        others = {k: v for k, v in r.headers.items() if k.lower() != "authorization"}
        assert github.token not in json.dumps(others)


def test_pr_check_posts_one_sticky_comment_and_updates_it(
    workspace: Workspace, github: FakeGitHub
) -> None:
    github.add_comments(7, 120)  # ours must be found past the first page next time
    ci = workspace.clone()
    env = github_env(github, workspace.work, ci)
    first = workspace.mlci(ci, "run", "--base", "main", **env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert len(_ours(github)) == 1
    comment = _ours(github)[0]
    assert comment["user"]["login"] == "octocat"
    report = (ci / ".mlci" / "report.md").read_text()
    assert comment["body"] == report
    assert "| `train.params.max_depth` | 3 | 5 |" in comment["body"]
    # every declared plot is in the report, its PNG committed to this repository's images
    # branch and linked by commit (no public host)
    commit = github.git.history("mlci-plots")[0]
    pngs = [f for f in github.git.files(commit) if f.endswith(".png")]
    assert len(pngs) == 3
    assert all(f"https://github.com/{github.repo}/raw/{commit}/{f}" in report for f in pngs)
    assert "3 of 3 declared plots shown" in report
    assert report in (workspace.work / "summary.md").read_text()
    outputs = (workspace.work / "output.txt").read_text()
    assert "verdict<<" in outputs or "verdict=passed" in outputs
    assert comment["html_url"] in outputs
    assert f"::add-mask::{github.token}" in first.stdout
    github.add_comments(7, 30)
    before = len(github.requests)
    second = workspace.mlci(ci, "run", "--base", "main", "--no-pull", **env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert len(_ours(github)) == 1 and _ours(github)[0]["id"] == comment["id"]
    assert len(github.comments[7]) == 120 + 1 + 30
    sent = [r for r in github.requests[before:] if "/issues/" in r.path or r.path == "/user"]
    assert [r.method for r in sent].count("PATCH") == 1
    assert [r.method for r in sent].count("POST") == 0
    assert len(sent) <= 1 + 2 + 1  # identity, two pages of 100, one update
    assert github.violations == []
    _no_token_leak(
        github,
        first.stdout,
        first.stderr,
        second.stdout,
        second.stderr,
        report,
        (workspace.work / "summary.md").read_text(),
        outputs,
    )


def test_a_failure_to_post_loses_nothing_and_keeps_the_verdict(
    workspace: Workspace, github: FakeGitHub
) -> None:
    github.fail(
        "POST",
        r"/issues/7/comments$",
        403,
        body={"message": "Resource not accessible by integration"},
        times=10,
    )
    ci = workspace.clone()
    env = github_env(github, workspace.work, ci)
    proc = workspace.mlci(ci, "run", "--base", "main", **env)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "pull-requests: write" in proc.stderr
    assert "verdict: passed" in proc.stdout
    report = (ci / ".mlci" / "report.md").read_text()
    assert report in (workspace.work / "summary.md").read_text()
    assert _ours(github) == []
    _no_token_leak(github, proc.stdout, proc.stderr)


def test_fork_safe_round_trip(workspace: Workspace, github: FakeGitHub) -> None:
    ci = workspace.clone()
    head = git(ci, "rev-parse", "HEAD").strip()
    github.add_pull(7, head_sha=head)
    env = github_env(github, workspace.work, ci, GITHUB_TOKEN="")
    saved = workspace.work / "artifact"
    proc = workspace.mlci(ci, "run", "--base", "main", "--save", str(saved), **env)
    assert proc.returncode == 0, proc.stderr
    assert github.requests == []  # the PR job had no token and posted nothing
    meta = json.loads((saved / "meta.json").read_text())
    assert meta["pr_number"] == 7 and meta["head_sha"] == head
    # A hostile artifact tries to hijack another report's comment.
    (saved / "report.md").write_text(
        (saved / "report.md").read_text() + "\n<!-- mlci-report:other -->\n"
    )
    publisher = workspace.clone(branch="main", name="publisher")
    run_event = workspace.work / "run.json"
    run_event.write_text(json.dumps({"workflow_run": {"head_sha": head}}))
    pub_env = github_env(
        github,
        workspace.work,
        publisher,
        GITHUB_EVENT_NAME="workflow_run",
        GITHUB_EVENT_PATH=str(run_event),
    )
    saved_pngs = sorted(p.name for p in (saved / "plots").glob("*.png"))
    assert saved_pngs and all(name.endswith(".png") for name in saved_pngs)
    posted = workspace.mlci(publisher, "publish", "--from", str(saved), **pub_env)
    assert posted.returncode == 0, posted.stdout + posted.stderr
    (comment,) = _ours(github)
    assert "mlci-report:other" not in comment["body"]
    # the plot images the PR job saved were checked, committed to the images branch of this
    # repository and linked by commit; no placeholder is left
    commit = github.git.history("mlci-plots")[0]
    files = github.git.files(commit)
    assert sorted(Path(f).name for f in files) == saved_pngs
    for path in files:
        assert f"https://github.com/{github.repo}/raw/{commit}/{path}" in comment["body"]
    assert "mlci-plot-image:" not in comment["body"]
    # The same artifact claiming another PR's head is refused.
    meta["head_sha"] = "c" * 40
    (saved / "meta.json").write_text(json.dumps(meta))
    refused = workspace.mlci(publisher, "publish", "--from", str(saved), **pub_env)
    assert refused.returncode == 2
    assert "report artifact rejected" in refused.stderr
