"""Publish a rendered report: file on disk, job summary, sticky PR comment, step outputs.

The file and the summary are written first, so a failure to post never loses the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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


def marker(report_name: str) -> str:
    from mlci.github import marker_for

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


def publish(settings: Settings, ctx: CIContext, markdown: str, verdict: Verdict) -> Published:
    from mlci import github

    path = write_report(settings, markdown, verdict)
    summary = False
    if settings.step_summary and ctx.step_summary:
        github.write_step_summary(ctx.step_summary, markdown)
        summary = True
    url: str | None = None
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
    if ctx.output:
        github.write_outputs(
            ctx.output,
            {"verdict": verdict.status, "report-path": str(path), "comment-url": url or ""},
        )
    return Published(path, summary, url, skipped, error)
