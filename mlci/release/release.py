"""``mlci release``: make the challenger the champion once it passed its probation in shadow
and someone approved, as ``mlci.release.approval`` (a trust key: a pull request cannot relax
it) asks:

- ``environment``: a required reviewer of the GitHub environment the release job runs in
  approved this workflow run (read from the run's approvals);
- ``review``: an approving review of the merged pull request by someone other than its author
  (for plans without environment reviewers);
- ``none``: nobody (said in the trail).

Approvals come from GitHub's API only, never from files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from mlci.ci import CIContext
from mlci.errors import ConfigError, GateFailed
from mlci.registry import history, ledger
from mlci.registry import models as registry
from mlci.registry import tags as vocab
from mlci.settings.config import Settings


class ReleaseRefused(GateFailed):
    """A release its probation or its approval does not allow (exit 4, like a failed gate)."""


@dataclass(frozen=True)
class ReleaseResult:
    name: str
    version: str
    before: str | None
    champion: str | None
    previous: str | None
    streak: int
    probation: int
    forced: bool
    approvals: tuple[str, ...] = field(default_factory=tuple)  # "login (how)"


def release(settings: Settings, ctx: CIContext, *, force: bool = False) -> ReleaseResult:
    from mlci.registry import releases

    uri, name, rs = settings.tracking_uri, settings.model_name, settings.release
    mv = registry.alias_version(uri, name, registry.CHALLENGER)
    if mv is None:
        raise ConfigError(
            f"model '{name}' has no challenger to release",
            fix="merge a change with mlci.release.strategy: challenger first; "
            "`mlci history` shows every move",
        )
    version = str(mv.version)
    streak = ledger.streak(ledger.read(mv.tags, ledger.CHALLENGER))
    if streak < rs.probation and not force:
        raise ReleaseRefused(
            f"challenger v{version} has passed {streak} of {rs.probation} probation windows in "
            "a row; the champion stays",
            fix="let `mlci monitor` judge more windows, or `mlci release --force` (recorded as "
            "forced in the trail)",
        )
    approvals = _approvals(settings, ctx, mv)
    why = history.Context(
        "release" + (f" (forced at {streak} of {rs.probation} windows)" if force else ""),
        actor=ctx.actor or os.environ.get("GITHUB_ACTOR"),
        approved_by=tuple(approvals),
        git_sha=vocab.git_sha(mv.tags),
        pr=vocab.pr(mv.tags),
        run_url=ctx.run_url,
        forced=force and streak < rs.probation,
    )
    done = releases.release(uri, name, version, why)
    return ReleaseResult(
        name,
        version,
        done.before,
        done.champion,
        done.previous,
        streak,
        rs.probation,
        why.forced,
        tuple(approvals),
    )


def _approvals(settings: Settings, ctx: CIContext, mv: object) -> list[str]:
    """Who approved, as ``login (how)``; raises ``ReleaseRefused`` when nobody did."""
    mode = settings.release.approval
    if mode == "none":
        return []
    from mlci.report.publish import Publisher

    client = Publisher(settings, ctx).client
    if client is None:
        raise ReleaseRefused(
            f"mlci.release.approval is '{mode}' but there is no GitHub token and repository "
            "to read the approval from",
            fix="run the release workflow (`mlci init` writes mlci-release.yml), or set "
            "mlci.release.approval: none on the default branch",
        )
    if mode == "environment":
        run_id = os.environ.get("GITHUB_RUN_ID", "")
        env = settings.release.environment
        found = client.run_approvals(run_id) if run_id.isdigit() else []
        if not found:
            raise ReleaseRefused(
                f"no reviewer of the environment '{env}' approved this workflow run",
                fix=f"run the release workflow with `environment: {env}` and required reviewers "
                "(Settings -> Environments; private repositories need GitHub Enterprise), or "
                "set mlci.release.approval: review",
            )
        return [f"{a.login} ({a.how})" for a in found]
    tags = getattr(mv, "tags", None) or {}
    sha = vocab.git_sha(tags)
    number = vocab.pr(tags)
    pr = (
        int(number)
        if number and number.isdigit()
        else (client.pull_for_commit(sha) if sha else None)
    )
    if pr is None:
        raise ReleaseRefused(
            "mlci.release.approval is 'review' but no pull request merged the challenger's commit",
            fix="merge through a reviewed pull request, or use approval: environment",
        )
    author, found = client.pull_approvals(pr)
    if not found:
        raise ReleaseRefused(
            f"PR #{pr} has no approving review by anyone but its author"
            + (f" ({author})" if author else ""),
            fix="have another person approve the pull request, then run the release again",
        )
    return [f"{a.login} ({a.how})" for a in found]
