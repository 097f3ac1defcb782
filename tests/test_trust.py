"""The trust boundary: a pull request's own files never widen what it may do, and the fork
question is decided from the event, else from GitHub's API, else by refusing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlci import ci
from mlci.check import trust
from mlci.errors import EXIT_USAGE, ConfigError, UntrustedCode
from mlci.settings import config

from conftest import Workspace, git
from github_server import FakeGitHub

EVIL = "http://127.0.0.1:9/evil-api"


def _write_event(tmp_path: Path, payload: Any) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return str(path)


def _pr_event(head_repo: Any, number: int = 7) -> dict[str, Any]:
    return {
        "number": number,
        "pull_request": {
            "number": number,
            "head": {"ref": "feat", "sha": "a" * 40, "repo": head_repo},
            "base": {"ref": "main", "repo": {"full_name": "octo/demo"}},
        },
        "repository": {"full_name": "octo/demo", "default_branch": "main"},
    }


def _comment_event(number: int) -> dict[str, Any]:
    return {
        "action": "created",
        "issue": {
            "number": number,
            "pull_request": {"url": f"https://api.github.com/repos/octo/demo/pulls/{number}"},
        },
        "comment": {"body": "/mlci run"},
        "repository": {"full_name": "octo/demo", "default_branch": "main"},
    }


def _ctx(tmp_path: Path, event: str, payload: Any, **extra: str) -> ci.CIContext:
    env = {
        "GITHUB_EVENT_NAME": event,
        "GITHUB_EVENT_PATH": _write_event(tmp_path, payload),
        "GITHUB_REPOSITORY": "octo/demo",
        "GITHUB_TOKEN": "x" * 8,
        **extra,
    }
    return ci.detect(env)


# -- the fork question ---------------------------------------------------------------------------


def test_a_deleted_fork_is_a_fork(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, "pull_request_target", _pr_event(None))
    assert ctx.from_fork and ctx.untrusted_code
    with pytest.raises(UntrustedCode) as err:
        trust.guard(config.load(tmp_path, env={}), ctx)
    assert "deleted or unknown repository" in err.value.message


def test_issue_comment_cannot_tell_and_asks_the_api(
    tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    github.add_pull(9, head_sha="c" * 40, head_repo="evil/demo")
    github.add_pull(10, head_sha="d" * 40, head_repo=None)
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    settings = config.load(tmp_path, env={"GITHUB_API_URL": github.url})
    own = _ctx(tmp_path, "issue_comment", _comment_event(7))
    assert own.pr_number == 7 and own.fork_unknown and not own.untrusted_code
    resolved = trust.guard(settings, own)
    assert not resolved.from_fork and resolved.head_sha == "a" * 40
    for number, origin in ((9, "evil/demo"), (10, "deleted or unknown")):
        ctx = _ctx(tmp_path, "issue_comment", _comment_event(number))
        with pytest.raises(UntrustedCode) as err:
            trust.guard(settings, ctx)
        assert origin in err.value.message
    asked = [r.path for r in github.requests_to("GET", r"/pulls/\d+$")]
    assert asked == [f"/repos/{github.repo}/pulls/{n}" for n in (7, 9, 10)]
    assert not github.violations


def test_issue_comment_refuses_when_the_api_cannot_answer(
    tmp_path: Path, github: FakeGitHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", github.token)
    github.fail("GET", r"/pulls/7$", 404, times=5)
    ctx = _ctx(tmp_path, "issue_comment", _comment_event(7))
    with pytest.raises(UntrustedCode) as err:
        trust.guard(config.load(tmp_path, env={"GITHUB_API_URL": github.url}), ctx)
    assert "cannot tell" in err.value.message and "pull-requests: read" in err.value.one_line()
    # without a token to ask with, the same event is a fork's: fail closed
    monkeypatch.delenv("GITHUB_TOKEN")
    no_token = dataclasses_replace(ctx, has_token=True)
    with pytest.raises(UntrustedCode):
        trust.guard(config.load(tmp_path, env={}), no_token)


def dataclasses_replace(ctx: ci.CIContext, **changes: Any) -> ci.CIContext:
    import dataclasses

    return dataclasses.replace(ctx, **changes)


@pytest.mark.parametrize(
    "payload, field",
    [
        ([1, 2], "not a JSON object"),
        ({"pull_request": []}, "'pull_request'"),
        ({"pull_request": {"head": "feat"}}, "'pull_request.head'"),
        ({"pull_request": {"number": "7"}}, "'pull_request.number'"),
        ({"issue": {"number": 3, "pull_request": True}}, "'issue.pull_request'"),
        ({"repository": {"default_branch": 5}}, "'repository.default_branch'"),
    ],
)
def test_an_event_of_the_wrong_shape_is_a_usage_error(
    tmp_path: Path, payload: Any, field: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _ctx(tmp_path, "pull_request", payload)
    assert err.value.exit_code == EXIT_USAGE and field in err.value.message


# -- settings that widen trust --------------------------------------------------------------------


def _repo_with_pr(tmp_path: Path, base_mlci: str, pr_mlci: str) -> Path:
    root = tmp_path / "repo"
    root.mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    (root / "params.yaml").write_text(f"mlci:\n  report_name: base\n{base_mlci}")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "base")
    git(root, "checkout", "-q", "-b", "pr")
    (root / "params.yaml").write_text(f"mlci:\n  report_name: pr\n{pr_mlci}")
    git(root, "commit", "-qam", "pr")
    return root


HOSTILE = f"  allow_untrusted: true\n  github_api_url: {EVIL}\n  mlflow_tracking_uri: {EVIL}\n"


@pytest.mark.parametrize("event", ["pull_request", "pull_request_target"])
def test_a_pr_cannot_widen_trust_through_its_files(tmp_path: Path, event: str) -> None:
    root = _repo_with_pr(tmp_path, "", HOSTILE)
    env = {"GITHUB_EVENT_NAME": event, "GITHUB_BASE_REF": "main"}
    s = config.load(root, env=env)
    assert s.report_name == "pr"  # ordinary settings are the PR's
    assert s.allow_untrusted is False and s.github_api_url is None
    assert EVIL not in s.tracking_uri
    assert len(s.notes) == 3 and all("base branch 'main'" in n for n in s.notes)
    # the workflow may still set them
    env2 = {**env, "MLCI_ALLOW_UNTRUSTED": "true", "GITHUB_API_URL": "http://ghes/api"}
    s2 = config.load(root, env=env2)
    assert s2.allow_untrusted and s2.github_api_url == "http://ghes/api"


def test_trust_keys_come_from_the_base_branch(tmp_path: Path) -> None:
    base = "  github_api_url: http://ghes/api/v3\n"
    root = _repo_with_pr(tmp_path, base, HOSTILE)
    env = {"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_BASE_REF": "main"}
    assert config.load(root, env=env).github_api_url == "http://ghes/api/v3"
    same = _repo_with_pr(tmp_path / "same", base, base)
    s = config.load(same, env=env)
    assert s.github_api_url == "http://ghes/api/v3" and s.notes == ()


def test_trust_keys_fail_closed_where_the_base_is_unknown(tmp_path: Path) -> None:
    root = _repo_with_pr(tmp_path, HOSTILE, HOSTILE)
    for env in (
        {"GITHUB_EVENT_NAME": "issue_comment"},
        {"GITHUB_EVENT_NAME": "merge_group"},
        {"GITHUB_EVENT_NAME": "pull_request_target", "GITHUB_BASE_REF": "no-such-branch"},
    ):
        s = config.load(root, env=env)
        assert not s.allow_untrusted and s.github_api_url is None, env
    # the repository's own code (a push, a schedule, a laptop) is trusted
    for env in ({"GITHUB_EVENT_NAME": "push"}, {}):
        s = config.load(root, env=env)
        assert s.allow_untrusted and s.github_api_url == EVIL


def test_a_params_file_that_does_not_exist_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("mlci:\n  report_name: x\n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path, env={"MLCI_PARAMS_FILE": "parms.yaml"})
    assert err.value.exit_code == EXIT_USAGE and "parms.yaml" in err.value.message
    with pytest.raises(ConfigError):
        config.load(tmp_path, {"params_file": "nope.yaml"}, env={})


# -- end to end: a fork's PR on pull_request_target -----------------------------------------------


@pytest.mark.slow
def test_a_forks_params_cannot_switch_off_the_guard_or_steal_the_token(
    workspace: Workspace, github: FakeGitHub
) -> None:
    attacker = FakeGitHub().start()
    try:
        ci_dir = workspace.clone()
        params = ci_dir / "params.yaml"
        params.write_text(
            params.read_text().replace(
                "mlci:\n",
                f"mlci:\n  allow_untrusted: true\n  github_api_url: {attacker.url}\n",
            )
        )
        git(ci_dir, "commit", "-qam", "take over")
        head = git(ci_dir, "rev-parse", "HEAD").strip()
        event = _pr_event({"full_name": "evil/demo"})
        event["pull_request"]["head"]["sha"] = head
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "pull_request_target",
            "GITHUB_EVENT_PATH": _write_event(workspace.work, event),
            "GITHUB_REPOSITORY": github.repo,
            "GITHUB_BASE_REF": "main",
            "GITHUB_TOKEN": github.token,
            "GITHUB_API_URL": github.url,
            "GITHUB_STEP_SUMMARY": str(workspace.work / "summary.md"),
        }
        proc = workspace.mlci(ci_dir, "run", "--base", "main", **env)
        assert proc.returncode == EXIT_USAGE, proc.stdout + proc.stderr
        assert "evil/demo" in proc.stderr and "refusing untrusted code" in proc.stderr
        assert "allow_untrusted is ignored" in proc.stdout + proc.stderr
        assert attacker.requests == []  # the token never went to the PR's API URL
        assert "reproduce" not in proc.stdout  # no stage of the fork's ran
        report = (ci_dir / ".mlci" / "report.md").read_text()
        assert "refusing untrusted code" in report
        assert "refusing untrusted code" in (workspace.work / "summary.md").read_text()
        posted = [c["body"] for c in github.comments[7]]
        assert len(posted) == 1 and "refusing untrusted code" in posted[0]
        assert not github.violations
    finally:
        attacker.stop()


@pytest.mark.parametrize("path", ["/home/runner/.bashrc", "../../actions-runner/.env"])
def test_the_settings_file_cannot_write_the_report_outside_the_project(
    tmp_path: Path, path: str
) -> None:
    (tmp_path / "params.yaml").write_text(f"mlci:\n  report_path: {path}\n")
    with pytest.raises(ConfigError) as err:
        config.load(tmp_path, env={})
    assert "outside the project" in err.value.message
    # the workflow may choose any place
    (tmp_path / "params.yaml").write_text("mlci:\n  report_name: x\n")
    assert config.load(tmp_path, {"report_path": "/tmp/r.md"}, env={}).report_path == "/tmp/r.md"


def test_the_images_branch_is_a_trust_key(tmp_path: Path) -> None:
    """`plots.branch` chooses where the token writes: a PR's own value is ignored."""
    root = _repo_with_pr(
        tmp_path, "  plots: {branch: mlci-plots}\n", "  plots: {branch: release, max_points: 30}\n"
    )
    env = {"GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "main"}
    s = config.load(root, env=env)
    assert s.plots.branch == "mlci-plots" and s.plots.max_points == 30
    assert any("plots.branch is ignored" in n for n in s.notes)
    assert config.load(root, env={"GITHUB_EVENT_NAME": "push"}).plots.branch == "release"


def test_the_monitors_branch_and_workflow_are_trust_keys(tmp_path: Path) -> None:
    """Where `mlci monitor` pushes with the token and what it dispatches: never a PR's choice."""
    root = _repo_root_with_monitor(tmp_path)
    s = config.load(root, env={"GITHUB_EVENT_NAME": "pull_request", "GITHUB_BASE_REF": "main"})
    assert s.monitor.branch == "mlci/retrain" and s.monitor.workflow is None
    assert sum("monitor." in n for n in s.notes) == 2
    own = config.load(root, env={"GITHUB_EVENT_NAME": "schedule"})
    assert own.monitor.branch == "main" and own.monitor.workflow == "deploy.yml"


def _repo_root_with_monitor(tmp_path: Path) -> Path:
    return _repo_with_pr(
        tmp_path,
        "",
        "  monitor: {snapshot: data/new.csv, branch: main, workflow: deploy.yml}\n",
    )
