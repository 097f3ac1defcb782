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
    def untrusted_code(self) -> bool:
        """Code from a fork would run while secrets are present.

        ``pull_request_target`` runs with the base repository's secrets and a write token; a
        fork's PR head checked out there (or on any non-``pull_request`` event) is untrusted.
        """
        if not self.from_fork:
            return False
        return self.event_name == "pull_request_target" or (
            self.has_token and self.event_name != "pull_request"
        )


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
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"GITHUB_EVENT_PATH {path}: cannot read the event payload ({exc})",
            fix="point GITHUB_EVENT_PATH at the event JSON",
        ) from None
    return data if isinstance(data, dict) else {}


def detect(env: Mapping[str, str] | None = None) -> CIContext:
    env = os.environ if env is None else env
    event = _payload(env.get("GITHUB_EVENT_PATH"))
    pr = event.get("pull_request") or {}
    number = pr.get("number") or event.get("number")
    if env.get("MLCI_PR_NUMBER"):
        number = env["MLCI_PR_NUMBER"]
    head_repo = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    base_repo = ((pr.get("base") or {}).get("repo") or {}).get("full_name")
    repo_info = event.get("repository") or {}
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    run_url = None
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    return CIContext(
        on_github=env.get("GITHUB_ACTIONS") == "true",
        event_name=env.get("GITHUB_EVENT_NAME") or None,
        repository=env.get("GITHUB_REPOSITORY") or None,
        pr_number=int(number) if number else None,
        base_ref=env.get("GITHUB_BASE_REF") or (pr.get("base") or {}).get("ref") or None,
        head_ref=env.get("GITHUB_HEAD_REF") or (pr.get("head") or {}).get("ref") or None,
        head_sha=(pr.get("head") or {}).get("sha")
        or (event.get("workflow_run") or {}).get("head_sha")
        or env.get("GITHUB_SHA")
        or None,
        sha=env.get("GITHUB_SHA") or None,
        ref=env.get("GITHUB_REF") or None,
        default_branch=repo_info.get("default_branch") or None,
        actor=env.get("GITHUB_ACTOR") or None,
        from_fork=bool(head_repo and base_repo and head_repo != base_repo),
        head_repo=head_repo or None,
        self_hosted=env.get("RUNNER_ENVIRONMENT") == "self-hosted",
        step_summary=env.get("GITHUB_STEP_SUMMARY") or None,
        output=env.get("GITHUB_OUTPUT") or None,
        run_url=run_url,
        has_token=token(env) is not None,
    )
