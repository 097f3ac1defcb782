from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci import ci
from mlci.check.trust import guard
from mlci.errors import EXIT_USAGE, UntrustedCode
from mlci.settings import config


def _event(tmp_path: Path, head_repo: str, base_repo: str = "octo/demo") -> str:
    payload = {
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"ref": "feat", "sha": "a" * 40, "repo": {"full_name": head_repo}},
            "base": {"ref": "main", "repo": {"full_name": base_repo}},
        },
        "repository": {"default_branch": "main"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload))
    return str(path)


def test_detect_reads_the_pull_request_payload(tmp_path: Path) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": _event(tmp_path, "octo/demo"),
        "GITHUB_REPOSITORY": "octo/demo",
        "GITHUB_TOKEN": "t0ken-value",
        "GITHUB_RUN_ID": "9",
    }
    ctx = ci.detect(env)
    assert (ctx.pr_number, ctx.base_ref, ctx.head_ref, ctx.head_sha) == (
        7,
        "main",
        "feat",
        "a" * 40,
    )
    assert ctx.can_comment and not ctx.from_fork and not ctx.untrusted_code
    assert ctx.run_url == "https://github.com/octo/demo/actions/runs/9"
    assert "t0ken-value" not in repr(ctx)


def test_no_context_outside_github(tmp_path: Path) -> None:
    ctx = ci.detect({})
    assert not ctx.on_github and not ctx.can_comment and ctx.pr_number is None


@pytest.mark.parametrize(
    "event, fork, untrusted",
    [
        ("pull_request", True, False),
        ("pull_request_target", True, True),
        ("pull_request_target", False, False),
        ("workflow_run", True, True),
    ],
)
def test_fork_guard(tmp_path: Path, event: str, fork: bool, untrusted: bool) -> None:
    env = {
        "GITHUB_EVENT_NAME": event,
        "GITHUB_TOKEN": "x" * 8,
        "GITHUB_EVENT_PATH": _event(tmp_path, "evil/demo" if fork else "octo/demo"),
    }
    ctx = ci.detect(env)
    assert ctx.untrusted_code is untrusted
    settings = config.load(tmp_path, env={})
    if untrusted:
        with pytest.raises(UntrustedCode) as err:
            guard(settings, ctx)
        assert err.value.exit_code == EXIT_USAGE
        assert "evil/demo" in err.value.message and "workflow_run" in err.value.one_line()
        guard(config.load(tmp_path, env={"MLCI_ALLOW_UNTRUSTED": "true"}), ctx)
    else:
        guard(settings, ctx)
