"""Publish a rendered report: file on disk, job summary, sticky PR comment, step outputs.

The file and the summary are written first, so a failure to post never loses the report.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci import ci
from mlci.ci import CIContext
from mlci.errors import GitHubError, MlciError
from mlci.markdown import code, fit
from mlci.report import deliver
from mlci.report.artifact import (
    ARTIFACT_FULL_REPORT,
    ARTIFACT_META,
    ARTIFACT_REPORT,
    Artifact,
    load_artifact,
    untrusted,
)
from mlci.settings.config import Settings
from mlci.verdict.outcome import Verdict

if TYPE_CHECKING:
    from mlci.github.client import GitHubClient

DEFAULT_API_URL = ci.DEFAULT_API_URL


@dataclass(frozen=True)
class Published:
    report_path: Path
    summary_written: bool = False
    comment_url: str | None = None
    skipped: str | None = None
    error: MlciError | None = None
    check_url: str | None = None


UNVERIFIED = " (reported by the PR's job)"  # the check-run name of a report from an artifact


def marker(report_name: str) -> str:
    from mlci.report.render import marker_for

    return marker_for(report_name)


def write_report(
    settings: Settings, markdown: str, verdict: Verdict, facts: Mapping[str, Any] | None = None
) -> Path:
    """The report on disk alone (no summary): where it is not published."""
    return deliver.record(
        settings, CIContext(), settings.report_file, markdown, _facts(settings, verdict, facts)
    ).path


def _facts(
    settings: Settings, verdict: Verdict, facts: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The report's JSON beside it: the verdict, where the report is, and ``facts``."""
    return {**verdict.to_json(), "report": str(settings.report_file), **(facts or {})}


class Publisher:
    """GitHub for one run, built once from the CI context: the client (token, repository, API
    URL; retries and rate-limit waits said through ``on_wait``), the report's marker and the
    check-run fallback. ``client`` is None where there is no token or repository."""

    def __init__(
        self,
        settings: Settings,
        ctx: CIContext,
        on_wait: Callable[[str], None] | None = None,
        *,
        unverified: bool = False,
    ) -> None:
        self.settings = settings
        self.ctx = ctx
        # A report from an artifact (a fork's job): its verdict is the job's claim, which this
        # side cannot verify, so its check never passes under the check's own name.
        self.unverified = unverified
        token = ci.token()
        self.client: GitHubClient | None = None
        if token and ctx.repository:  # else HTTP is never loaded (~40 ms)
            from mlci.github.client import GitHubClient

            api = settings.github_api_url or DEFAULT_API_URL
            self.client = GitHubClient(api, token, ctx.repository, on_retry=on_wait)

    def _need(self, *what: object) -> GitHubClient:
        if self.client is None or not all(what):
            raise GitHubError(
                "no GitHub context to post to",
                fix="run on a pull_request event with GITHUB_TOKEN (and GITHUB_REPOSITORY) set",
            )
        return self.client

    def comment(self, markdown: str) -> str:
        """Upsert the report's one sticky comment on the PR; its URL."""
        client = self._need(self.ctx.pr_number)
        assert self.ctx.pr_number is not None
        return client.upsert_comment(self.ctx.pr_number, markdown, self.marker).url

    @property
    def marker(self) -> str:
        return marker(self.settings.report_name)

    def check(self, markdown: str, verdict: Verdict, annotations: Sequence[Any]) -> str | None:
        """A check run with annotations; a commit status where GitHub refuses check runs to this
        token (403: `checks: write` missing, or not an App/Actions token)."""
        if self.client is None or not self.ctx.head_sha:
            return None
        name = f"mlci: {self.settings.report_name}"
        conclusion, title = verdict.outcome.conclusion, verdict.summary[:200] or verdict.status
        if self.unverified:
            name += UNVERIFIED
            # a claimed pass is neutral (never green); a claimed failure only hurts the claimant
            conclusion = "neutral" if conclusion == "success" else conclusion
            title = f"reported by the PR's job, not verified: {title}"[:200]
        try:
            return self.client.create_check_run(
                self.ctx.head_sha, name, conclusion, title, markdown, annotations
            )
        except GitHubError as exc:
            if exc.status != 403:
                raise
        description = f"unverified: {verdict.summary}" if self.unverified else verdict.summary
        self.client.set_commit_status(
            self.ctx.head_sha, verdict.outcome.state, description, name, self.ctx.run_url
        )
        return None

    def promotion_note(self, git_sha: str, markdown: str) -> str:
        """The note where reviewers see it: on the PR that merged ``git_sha`` (the context's,
        else the one GitHub associates with the commit) as a sticky comment of its own; with
        no PR, as a sticky comment on the commit."""
        client = self._need()
        number = self.ctx.pr_number or _pull_for_commit(client, git_sha)
        marker_ = promotion_marker(self.settings.report_name)
        if number:
            return client.upsert_comment(number, markdown, marker_).url
        return client.upsert_commit_comment(git_sha, markdown, marker_).url


def publish(
    settings: Settings,
    ctx: CIContext,
    markdown: str,
    verdict: Verdict,
    annotations: Sequence[Any] = (),
    publisher: Publisher | None = None,
    facts: Mapping[str, Any] | None = None,
) -> Published:
    """File first, then the job summary, then the network; a network failure loses nothing.

    ``markdown`` is the full report and the file gets all of it. The job summary, the comment
    and the check run get it shortened once, by ``markdown.fit``, to their GitHub limits, with a
    note that names where the full report is.
    """
    publisher = publisher or Publisher(settings, ctx)
    rec = deliver.record(
        settings, ctx, settings.report_file, markdown, _facts(settings, verdict, facts)
    )
    path, summary = rec.path, rec.summary_written
    markdown = fit(markdown, _body_limit(settings), deliver.where(path, ctx, rec.whole_in_summary))
    url: str | None = None
    check_url: str | None = None
    error: MlciError | None = None
    skipped: str | None = None
    if not settings.comment:
        skipped = "comments are switched off (mlci.comment: false)"
    elif not ctx.can_comment:
        skipped = "no pull request and token in this context: report written to disk only"
    else:
        try:
            url = publisher.comment(markdown)
        except GitHubError as exc:
            error = exc
    if settings.check_run and error is None:
        try:
            check_url = publisher.check(markdown, verdict, annotations)
        except GitHubError as exc:
            error = exc
    deliver.outputs(
        ctx,
        {
            "verdict": verdict.status,
            "report-path": str(path),
            "comment-url": url or "",
            "check-url": check_url or "",
        },
    )
    return Published(path, summary, url, skipped, error, check_url)


def _body_limit(settings: Settings) -> int:
    """Characters a comment or check-run body may have, the marker line included."""
    from mlci.limits import CHECK_TEXT_LIMIT, COMMENT_LIMIT

    return min(COMMENT_LIMIT - len(marker(settings.report_name)) - 1, CHECK_TEXT_LIMIT)


# ---- fork-safe publishing: the PR job saves (mlci/artifact.py), a workflow_run job posts ----


def save_artifact(
    directory: Path, settings: Settings, ctx: CIContext, markdown: str, verdict: Verdict
) -> Path:
    """Write the report and what the publisher must check, for ``actions/upload-artifact``.

    ``markdown`` is the full report: it is saved whole as ``report-full.md``, and as
    ``report.md`` shortened to a comment (with the publisher's marker line) pointing to it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ARTIFACT_FULL_REPORT).write_text(markdown, encoding="utf-8")
    where = f"{code(ARTIFACT_FULL_REPORT)} in the report artifact of the PR's check"
    where += deliver.run_link(ctx)
    body = fit(markdown, _body_limit(settings), where)
    (directory / ARTIFACT_REPORT).write_text(body, encoding="utf-8")
    meta = {
        "pr_number": ctx.pr_number,
        "head_sha": ctx.head_sha,
        "verdict": verdict.status,
        "summary": verdict.summary,
        "exit_code": verdict.exit_code,
        "report_name": settings.report_name,
        "repository": ctx.repository,
    }
    (directory / ARTIFACT_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return directory


def publish_artifact(directory: Path, settings: Settings, ctx: CIContext) -> Published:
    """Post a saved report after checking it belongs to the PR and commit it claims."""
    import dataclasses

    art = load_artifact(directory)
    publisher = Publisher(settings, ctx)
    if publisher.client is None:
        raise GitHubError(
            "no token or repository to publish with",
            fix="run in a workflow_run job with GITHUB_TOKEN set",
        )
    client = publisher.client
    pr = client.pull_request(art.pr_number)
    real_head = (pr.get("head") or {}).get("sha")
    if real_head != art.head_sha:
        raise untrusted(
            f"PR #{art.pr_number}'s head is {str(real_head)[:12]}, not "
            f"{art.head_sha[:12]} as the artifact claims"
        )
    if ctx.head_sha and ctx.event_name == "workflow_run" and ctx.head_sha != art.head_sha:
        raise untrusted(f"the workflow run built {ctx.head_sha[:12]}, not {art.head_sha[:12]}")
    if art.report_name != settings.report_name:
        raise untrusted(
            f"its report_name {art.report_name!r} is not the one this job publishes "
            f"({settings.report_name!r}: `report-name` input, --report-name or "
            "mlci.report_name); a PR's artifact cannot post under another report's marker"
        )
    ctx = dataclasses.replace(ctx, pr_number=art.pr_number)
    markdown = _with_saved_images(directory, settings, client, art)
    publisher = Publisher(settings, ctx, unverified=True)  # the PR is the artifact's
    body = marker(art.report_name) + "\n" + markdown
    return publish(settings, ctx, body, art.verdict, publisher=publisher)


def _with_saved_images(directory: Path, settings: Settings, client: Any, art: Artifact) -> str:
    """The artifact's report with the plot images it saved published (each checked as
    untrusted input) and linked in place of their placeholders."""
    import os

    from mlci.github.client import ContentsRefused
    from mlci.report import images

    folder = directory / "plots"
    if settings.plots.images == "off" or folder.is_symlink() or not folder.is_dir():
        return art.markdown
    try:
        links, alts = images.publish_saved(
            client,
            folder,
            settings.plots,
            run_name=f"pr{art.pr_number}-{art.head_sha[:12]}",
            server_url=os.environ.get("GITHUB_SERVER_URL", "https://github.com"),
        )
    except ContentsRefused:
        if settings.plots.images == "on":
            raise
        return art.markdown
    return images.fill(art.markdown, links, alts)


# ---- the promotion note: what a merge did to the registry, where reviewers look ----


def promotion_marker(report_name: str) -> str:
    """The note's own sticky marker, apart from the PR check's report."""
    return marker(f"{report_name}-promotion")


def merged_pr(settings: Settings, ctx: CIContext, git_sha: str) -> int | None:
    """The PR that brought ``git_sha``: the context's, else the one GitHub associates with the
    commit (a push after a merge). Never raises: the number labels a version, and a GitHub
    that cannot say (no token, no permission, down) must not stop a promotion."""
    if ctx.pr_number is not None or not (ctx.has_token and ctx.repository):
        return ctx.pr_number
    client = Publisher(settings, ctx).client
    try:
        return None if client is None else _pull_for_commit(client, git_sha)
    except GitHubError:
        return None


_PULLS: dict[tuple[str, str], int | None] = {}  # (repository, commit) -> its PR, once a run


def _pull_for_commit(client: GitHubClient, git_sha: str) -> int | None:
    """``client.pull_for_commit``, asked once per commit in a process (the version's tag and
    the promotion note both need it); an answer that failed is not kept."""
    key = (client.repository, git_sha)
    if key not in _PULLS:
        _PULLS[key] = client.pull_for_commit(git_sha)
    return _PULLS[key]


def publish_promotion(
    settings: Settings,
    ctx: CIContext,
    git_sha: str,
    markdown: str,
    publisher: Publisher | None = None,
) -> Published:
    """File and job summary first, then GitHub. A posting failure is returned, never raised:
    the registry was changed (or not) already, and that outcome must stay visible."""

    report = settings.report_file
    path = report.with_name(f"{report.stem}-promotion{report.suffix or '.md'}")
    summary = deliver.record(settings, ctx, path, markdown).summary_written
    url: str | None = None
    skipped: str | None = None
    error: MlciError | None = None
    if not settings.comment:
        skipped = "comments are switched off (mlci.comment: false): promotion note not posted"
    elif not (ctx.has_token and ctx.repository):
        skipped = "no GitHub token and repository in this context: promotion note not posted"
    else:
        try:
            url = (publisher or Publisher(settings, ctx)).promotion_note(git_sha, markdown)
        except GitHubError as exc:
            error = exc
    return Published(path, summary, url, skipped, error)
