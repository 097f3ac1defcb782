"""The CI context: who runs us, on which event, for which PR, with which token.

Read once from the environment and the event payload; nothing here talks to the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError

DEFAULT_API_URL = "https://api.github.com"


@dataclass(frozen=True)
class CIContext:
    on_github: bool = False
    event_name: str | None = None
    repository: str | None = None
    pr_number: int | None = None
    base_ref: str | None = None
    head_ref: str | None = None
    head_sha: str | None = None
    sha: str | None = None
    ref: str | None = None
    default_branch: str | None = None
    actor: str | None = None
    from_fork: bool = False
    fork_unknown: bool = False
    head_repo: str | None = None
    self_hosted: bool = False
    step_summary: str | None = None
    output: str | None = None
    run_url: str | None = None
    has_token: bool = False

    @property
    def can_comment(self) -> bool:
        return bool(self.has_token and self.repository and self.pr_number)

    @property
    def secrets_present(self) -> bool:
        """Whether this job holds secrets or a write token while it may run a PR's code.

        ``pull_request`` jobs of forks get neither; ``pull_request_target``, ``issue_comment``
        and ``workflow_run`` jobs get both.
        """
        return self.event_name == "pull_request_target" or (
            self.has_token and self.event_name != "pull_request"
        )

    @property
    def untrusted_code(self) -> bool:
        """Code from a fork would run while secrets are present (as far as the payload tells;
        ``fork_unknown`` asks :func:`mlci.check.trust.resolve_fork` to find out)."""
        return self.from_fork and self.secrets_present


def token(env: Mapping[str, str] | None = None) -> str | None:
    env = os.environ if env is None else env
    return env.get("MLCI_GITHUB_TOKEN") or env.get("GITHUB_TOKEN") or None


def _payload(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(
            f"GITHUB_EVENT_PATH {path}: cannot read the event payload ({exc})",
            fix="point GITHUB_EVENT_PATH at the event JSON",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"GITHUB_EVENT_PATH {path}: the event payload is a {type(data).__name__}, "
            "not a JSON object",
            fix="point GITHUB_EVENT_PATH at the event JSON GitHub wrote",
        )
    return data


class _Event:
    """Typed access to the event payload: a field of the wrong shape is exit 2, by name."""

    def __init__(self, data: Mapping[str, Any], path: str | None) -> None:
        self.data = data
        self.path = path

    def _get(self, dotted: str) -> Any:
        value: Any = self.data
        walked: list[str] = []
        for key in dotted.split("."):
            if value is None:
                return None
            if not isinstance(value, Mapping):
                self._wrong(".".join(walked), value, "an object")
            walked.append(key)
            value = value.get(key)
        return value

    def _wrong(self, field: str, value: Any, expected: str) -> None:
        raise ConfigError(
            f"GITHUB_EVENT_PATH {self.path}: field '{field}' is {type(value).__name__}, "
            f"expected {expected}",
            fix="point GITHUB_EVENT_PATH at the event JSON GitHub wrote for this event",
        )

    def obj(self, dotted: str) -> Mapping[str, Any] | None:
        value = self._get(dotted)
        if value is not None and not isinstance(value, Mapping):
            self._wrong(dotted, value, "an object or null")
        return None if value is None else dict(value)

    def text(self, dotted: str) -> str | None:
        value = self._get(dotted)
        if value is not None and not isinstance(value, str):
            self._wrong(dotted, value, "a string")
        return value or None

    def number(self, dotted: str) -> int | None:
        value = self._get(dotted)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self._wrong(dotted, value, "a positive integer")
        return int(value)


def _pr_number(env: Mapping[str, str], event: _Event) -> int | None:
    raw = env.get("MLCI_PR_NUMBER")
    if raw:
        if not raw.strip().isdigit() or int(raw) <= 0:
            raise ConfigError(
                f"MLCI_PR_NUMBER={raw!r} is not a pull request number",
                fix="set MLCI_PR_NUMBER to the PR's number, or leave it unset",
            )
        return int(raw)
    if event.obj("issue.pull_request") is not None:
        return event.number("issue.number")
    return event.number("pull_request.number") or event.number("number")


def _fork(event_name: str | None, event: _Event) -> tuple[bool, bool, str | None]:
    """(from a fork, cannot tell from the payload, head repository) for this event.

    A PR whose head repository is null was opened from a fork that has since been deleted:
    a fork. An ``issue_comment`` on a PR names no head at all: the API must be asked.
    """
    if event.obj("pull_request") is not None:
        head = event.obj("pull_request.head")
        head_repo = event.text("pull_request.head.repo.full_name")
        base_repo = event.text("pull_request.base.repo.full_name") or event.text(
            "repository.full_name"
        )
        if head is not None and event.obj("pull_request.head.repo") is None:
            return True, False, None
        return bool(head_repo and base_repo and head_repo != base_repo), False, head_repo
    if event.obj("workflow_run") is not None:
        head_repo = event.text("workflow_run.head_repository.full_name")
        base_repo = event.text("workflow_run.repository.full_name") or event.text(
            "repository.full_name"
        )
        return bool(head_repo and base_repo and head_repo != base_repo), False, head_repo
    if event_name == "issue_comment" and event.obj("issue.pull_request") is not None:
        return False, True, None
    return False, False, None


def detect(env: Mapping[str, str] | None = None) -> CIContext:
    env = os.environ if env is None else env
    path = env.get("GITHUB_EVENT_PATH")
    event = _Event(_payload(path), path)
    event_name = env.get("GITHUB_EVENT_NAME") or None
    from_fork, fork_unknown, head_repo = _fork(event_name, event)
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    run_url = None
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return CIContext(
        on_github=env.get("GITHUB_ACTIONS") == "true",
        event_name=event_name,
        repository=env.get("GITHUB_REPOSITORY") or None,
        pr_number=_pr_number(env, event),
        base_ref=env.get("GITHUB_BASE_REF") or event.text("pull_request.base.ref"),
        head_ref=env.get("GITHUB_HEAD_REF") or event.text("pull_request.head.ref"),
        head_sha=event.text("pull_request.head.sha")
        or event.text("workflow_run.head_sha")
        or env.get("GITHUB_SHA")
        or None,
        sha=env.get("GITHUB_SHA") or None,
        ref=env.get("GITHUB_REF") or None,
        default_branch=event.text("repository.default_branch"),
        actor=env.get("GITHUB_ACTOR") or None,
        from_fork=from_fork,
        fork_unknown=fork_unknown,
        head_repo=head_repo,
        self_hosted=env.get("RUNNER_ENVIRONMENT") == "self-hosted",
        step_summary=env.get("GITHUB_STEP_SUMMARY") or None,
        output=env.get("GITHUB_OUTPUT") or None,
        run_url=run_url,
        has_token=token(env) is not None,
    )
