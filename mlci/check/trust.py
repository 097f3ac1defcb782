"""The trust boundary: whose code is about to run, and may it run here.

A pull request's own files may never widen what it may do. Two rules live here:

* the fork guard: a fork's code never runs where secrets or a write token are present, unless
  the workflow (never the PR) allows it; when the event cannot tell whether the code is a
  fork's (``issue_comment``), GitHub's API is asked, and a run that cannot find out refuses;
* (in :mod:`mlci.settings.config`) settings that widen trust or choose where a token goes come only
  from the workflow or the base branch.
"""

from __future__ import annotations

import dataclasses

from mlci import ci
from mlci.ci import CIContext
from mlci.errors import GitHubError, UntrustedCode
from mlci.settings.config import Settings

FORK_SAFE_DOC = "README, 'Pull requests from forks: two workflows'"


def resolve_fork(settings: Settings, ctx: CIContext) -> CIContext:
    """``ctx`` with ``from_fork`` decided; asks the API when the payload could not tell.

    Fails closed: without a token, a repository or a PR number to ask with, or when the API
    does not answer, the code is treated as a fork's.
    """
    if not ctx.fork_unknown:
        return ctx
    token = ci.token()
    if not (token and ctx.repository and ctx.pr_number):
        return dataclasses.replace(ctx, from_fork=True, fork_unknown=False)
    from mlci.github.client import GitHubClient

    client = GitHubClient(
        settings.github_api_url or ci.DEFAULT_API_URL, token, ctx.repository, max_tries=2
    )
    try:
        pull = client.pull_request(ctx.pr_number)
    except GitHubError as exc:
        raise UntrustedCode(
            f"cannot tell whether PR #{ctx.pr_number}'s code comes from a fork "
            f"({ctx.event_name} events do not say, and the API failed: {exc.message})",
            fix="give the job `pull-requests: read`, or run the check on `pull_request`",
        ) from None
    head = pull.get("head")
    head = head if isinstance(head, dict) else {}
    repo = head.get("repo")
    repo = repo if isinstance(repo, dict) else None
    name = repo.get("full_name") if repo else None
    fork = not isinstance(name, str) or name != ctx.repository
    sha = head.get("sha")
    return dataclasses.replace(
        ctx,
        from_fork=fork,
        fork_unknown=False,
        head_repo=name if isinstance(name, str) else None,
        head_sha=sha if isinstance(sha, str) else ctx.head_sha,
    )


def guard(settings: Settings, ctx: CIContext) -> CIContext:
    """Refuse to run a fork's code where secrets are present; returns the resolved context.

    ``settings.allow_untrusted`` overrides the refusal; it is honoured only from the workflow
    or the base branch (see :mod:`mlci.settings.config`), never from the PR's own files.
    """
    if not ctx.secrets_present or settings.allow_untrusted:
        return ctx
    ctx = resolve_fork(settings, ctx)
    if ctx.untrusted_code:
        runner = "a self-hosted runner" if ctx.self_hosted else "this runner"
        origin = ctx.head_repo or "a deleted or unknown repository"
        raise UntrustedCode(
            f"the PR comes from the fork {origin} and this {ctx.event_name} job has secrets "
            f"on {runner}: training it would run untrusted code",
            fix=f"run the check on `pull_request` and publish from a `workflow_run` job "
            f"(see {FORK_SAFE_DOC}), or set the action input allow-untrusted "
            "(MLCI_ALLOW_UNTRUSTED=true in the workflow)",
        )
    return ctx
