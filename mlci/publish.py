"""Publish a rendered report: file on disk, job summary, sticky PR comment, step outputs.

The file and the summary are written first, so a failure to post never loses the report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci import ci
from mlci.ci import CIContext
from mlci.config import Settings
from mlci.errors import GitHubError, MlciError
from mlci.report import Verdict

DEFAULT_API_URL = ci.DEFAULT_API_URL


@dataclass(frozen=True)
class Published:
    report_path: Path
    summary_written: bool = False
    comment_url: str | None = None
    skipped: str | None = None
    error: MlciError | None = None
    check_url: str | None = None


def marker(report_name: str) -> str:
    from mlci.report import marker_for

    return marker_for(report_name)


def write_report(settings: Settings, markdown: str, verdict: Verdict) -> Path:
    path = settings.report_file
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    path.with_suffix(".json").write_text(
        json.dumps(
            {
                "verdict": verdict.status,
                "summary": verdict.summary,
                "exit_code": verdict.exit_code,
                "report": str(path),
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def post_comment(settings: Settings, ctx: CIContext, markdown: str) -> str:
    from mlci.github import GitHubClient

    token = ci.token()
    if not token or not ctx.repository or not ctx.pr_number:
        raise GitHubError(
            "no GitHub context to post to", fix="run on a pull_request event with GITHUB_TOKEN set"
        )
    client = GitHubClient(settings.github_api_url or DEFAULT_API_URL, token, ctx.repository)
    result = client.upsert_comment(ctx.pr_number, markdown, marker(settings.report_name))
    return result.url


CONCLUSIONS = {
    "passed": "success",
    "failed": "failure",
    "data-invalid": "failure",
    "error": "failure",
}
STATES = {"passed": "success", "failed": "failure", "data-invalid": "failure", "error": "error"}


def post_check(
    settings: Settings, ctx: CIContext, markdown: str, verdict: Verdict, annotations: Sequence[Any]
) -> str | None:
    """A check run with annotations; a commit status where the token may not create one."""
    from mlci.github import GitHubClient

    token = ci.token()
    if not token or not ctx.repository or not ctx.head_sha:
        return None
    client = GitHubClient(settings.github_api_url or DEFAULT_API_URL, token, ctx.repository)
    name = f"mlci: {settings.report_name}"
    try:
        return client.create_check_run(
            ctx.head_sha,
            name,
            CONCLUSIONS[verdict.status],
            verdict.summary[:200] or verdict.status,
            markdown,
            annotations,
        )
    except GitHubError as exc:
        if "checks: write" not in exc.one_line():
            raise
    client.set_commit_status(
        ctx.head_sha, STATES[verdict.status], verdict.summary, name, ctx.run_url
    )
    return None


def publish(
    settings: Settings,
    ctx: CIContext,
    markdown: str,
    verdict: Verdict,
    annotations: Sequence[Any] = (),
) -> Published:
    """File first, then the job summary, then the network; a network failure loses nothing."""
    path = write_report(settings, markdown, verdict)
    summary = _to_step_summary(settings, ctx, markdown)
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
            url = post_comment(settings, ctx, markdown)
        except GitHubError as exc:
            error = exc
    if settings.check_run and error is None:
        try:
            check_url = post_check(settings, ctx, markdown, verdict, annotations)
        except GitHubError as exc:
            error = exc
    if ctx.output:
        from mlci import github

        github.write_outputs(
            ctx.output,
            {
                "verdict": verdict.status,
                "report-path": str(path),
                "comment-url": url or "",
                "check-url": check_url or "",
            },
        )
    return Published(path, summary, url, skipped, error, check_url)


# ---- fork-safe publishing: the PR job saves, a workflow_run job (no PR code) posts ----

ARTIFACT_REPORT = "report.md"
ARTIFACT_META = "meta.json"
VERDICTS = ("passed", "failed", "data-invalid", "error")


def save_artifact(
    directory: Path, settings: Settings, ctx: CIContext, markdown: str, verdict: Verdict
) -> Path:
    """Write the report and what the publisher must check, for ``actions/upload-artifact``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ARTIFACT_REPORT).write_text(markdown, encoding="utf-8")
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


@dataclass(frozen=True)
class Artifact:
    markdown: str
    pr_number: int
    head_sha: str
    verdict: Verdict
    report_name: str


def _untrusted(message: str) -> MlciError:
    from mlci.errors import ConfigError

    return ConfigError(
        f"report artifact rejected: {message}",
        fix="publish only artifacts made by `mlci report --save` in the PR job",
    )


def load_artifact(directory: Path) -> Artifact:
    """Read a saved report as untrusted input: sizes, types and markup are checked."""
    import re

    from mlci.report import COMMENT_LIMIT, MARKER_PREFIX

    try:
        raw = (directory / ARTIFACT_REPORT).read_bytes()
        meta = json.loads((directory / ARTIFACT_META).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _untrusted(f"cannot read {directory}: {exc}") from None
    if len(raw) > 4 * COMMENT_LIMIT:
        raise _untrusted(f"{ARTIFACT_REPORT} is {len(raw):,} bytes")
    try:
        markdown = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _untrusted(f"{ARTIFACT_REPORT} is not UTF-8") from None
    if len(markdown) > COMMENT_LIMIT:
        raise _untrusted(
            f"{ARTIFACT_REPORT} has {len(markdown):,} characters (limit {COMMENT_LIMIT:,})"
        )
    number, sha = meta.get("pr_number"), meta.get("head_sha")
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise _untrusted(f"pr_number {number!r} is not a PR number")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise _untrusted(f"head_sha {sha!r} is not a commit SHA")
    status = meta.get("verdict")
    if status not in VERDICTS:
        raise _untrusted(f"verdict {status!r} is not one of {', '.join(VERDICTS)}")
    name = str(meta.get("report_name") or "mlci")
    if not re.fullmatch(r"[\w.-]{1,64}", name):
        raise _untrusted(f"report_name {name!r} is not a plain name")
    # A foreign marker could make this comment take over another report's sticky comment.
    markdown = re.sub(re.escape(MARKER_PREFIX) + r".*?-->", "", markdown, flags=re.S)
    exit_code = meta.get("exit_code", 0)
    verdict = Verdict(
        str(status),
        str(meta.get("summary", ""))[:500],
        exit_code if isinstance(exit_code, int) else 1,
    )
    return Artifact(markdown, number, sha, verdict, name)


def publish_artifact(directory: Path, settings: Settings, ctx: CIContext) -> Published:
    """Post a saved report after checking it belongs to the PR and commit it claims."""
    import dataclasses

    from mlci.github import GitHubClient

    art = load_artifact(directory)
    token = ci.token()
    if not token or not ctx.repository:
        raise GitHubError(
            "no token or repository to publish with",
            fix="run in a workflow_run job with GITHUB_TOKEN set",
        )
    client = GitHubClient(settings.github_api_url or DEFAULT_API_URL, token, ctx.repository)
    pr = client.pull_request(art.pr_number)
    real_head = (pr.get("head") or {}).get("sha")
    if real_head != art.head_sha:
        raise _untrusted(
            f"PR #{art.pr_number}'s head is {str(real_head)[:12]}, not "
            f"{art.head_sha[:12]} as the artifact claims"
        )
    if ctx.head_sha and ctx.event_name == "workflow_run" and ctx.head_sha != art.head_sha:
        raise _untrusted(f"the workflow run built {ctx.head_sha[:12]}, not {art.head_sha[:12]}")
    settings = dataclasses.replace(settings, report_name=art.report_name)
    ctx = dataclasses.replace(ctx, pr_number=art.pr_number)
    return publish(settings, ctx, marker(art.report_name) + "\n" + art.markdown, art.verdict)


# ---- the promotion note: what a merge did to the registry, where reviewers look ----


def promotion_marker(report_name: str) -> str:
    """The note's own sticky marker, apart from the PR check's report."""
    return marker(f"{report_name}-promotion")


def post_promotion_note(settings: Settings, ctx: CIContext, git_sha: str, markdown: str) -> str:
    """Post the note where reviewers see it; returns its URL.

    On the PR that merged ``git_sha`` (the CI context's, else the one GitHub associates with
    the commit) as a sticky comment of its own; with no PR, as a comment on the commit.
    """
    from mlci.github import GitHubClient

    token = ci.token()
    if not token or not ctx.repository:
        raise GitHubError(
            "no GitHub context to post to", fix="set GITHUB_TOKEN and GITHUB_REPOSITORY"
        )
    client = GitHubClient(settings.github_api_url or DEFAULT_API_URL, token, ctx.repository)
    number = ctx.pr_number or client.pull_for_commit(git_sha)
    if number:
        marker_ = promotion_marker(settings.report_name)
        return client.upsert_comment(number, markdown, marker_).url
    return client.create_commit_comment(git_sha, markdown).url


def publish_promotion(settings: Settings, ctx: CIContext, git_sha: str, markdown: str) -> Published:
    """File and job summary first, then GitHub. A posting failure is returned, never raised:
    the registry was changed (or not) already, and that outcome must stay visible."""

    report = settings.report_file
    path = report.with_name(f"{report.stem}-promotion{report.suffix or '.md'}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    summary = _to_step_summary(settings, ctx, markdown)
    url: str | None = None
    skipped: str | None = None
    error: MlciError | None = None
    if not settings.comment:
        skipped = "comments are switched off (mlci.comment: false): promotion note not posted"
    elif not (ctx.has_token and ctx.repository):
        skipped = "no GitHub token and repository in this context: promotion note not posted"
    else:
        try:
            url = post_promotion_note(settings, ctx, git_sha, markdown)
        except GitHubError as exc:
            error = exc
    return Published(path, summary, url, skipped, error)


def _to_step_summary(settings: Settings, ctx: CIContext, markdown: str) -> bool:
    """Append to the job summary when there is one and it is wanted; whether it was."""
    if not (settings.step_summary and ctx.step_summary):
        return False
    from mlci import github

    github.write_step_summary(ctx.step_summary, markdown)
    return True
