"""Publish a rendered report: file on disk, job summary, sticky PR comment, step outputs.

The file and the summary are written first, so a failure to post never loses the report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci import ci, report
from mlci.ci import CIContext
from mlci.config import Settings
from mlci.errors import GitHubError, MlciError
from mlci.markdown import code, fit, utf8_size
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


def client_for(settings: Settings, ctx: CIContext) -> Any | None:
    """The GitHub client of this run (token, repository, API URL), or None without them."""
    from mlci.github import GitHubClient

    token = ci.token()
    if not token or not ctx.repository:
        return None
    return GitHubClient(settings.github_api_url or DEFAULT_API_URL, token, ctx.repository)


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
    """File first, then the job summary, then the network; a network failure loses nothing.

    ``markdown`` is the full report and the file gets all of it. The job summary, the comment
    and the check run get it shortened once, by ``markdown.fit``, to their GitHub limits, with a
    note that names where the full report is.
    """
    path = write_report(settings, markdown, verdict)
    whole, in_summary = _summary_body(ctx, markdown, path)
    summary = to_step_summary(settings, ctx, in_summary)
    markdown = fit(markdown, _body_limit(settings), _where(path, ctx, summary and whole))
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


def _body_limit(settings: Settings) -> int:
    """Characters a comment or check-run body may have, the marker line included."""
    from mlci.github import CHECK_TEXT_LIMIT

    return min(report.COMMENT_LIMIT - len(marker(settings.report_name)) - 1, CHECK_TEXT_LIMIT)


def _summary_body(ctx: CIContext, markdown: str, path: Path) -> tuple[bool, str]:
    """What fits in the job summary next to what it holds already (GitHub takes 1 MiB), and
    whether that is the whole report."""
    from mlci.github import SUMMARY_LIMIT

    used = 0
    if ctx.step_summary:
        try:
            used = Path(ctx.step_summary).stat().st_size
        except OSError:
            used = 0
    budget = SUMMARY_LIMIT - used - 1  # the newline the summary writer may add
    body = fit(markdown, budget, _where(path, ctx), size=utf8_size)
    return body == markdown, body


def _where(path: Path, ctx: CIContext, in_summary: bool = False) -> str:
    """Where the full report is, as Markdown for the shortening note."""
    where = f"{code(str(path))} on the runner"
    if in_summary:
        where += " and in the job summary"
    return where + _run_link(ctx)


def _run_link(ctx: CIContext) -> str:
    """`` (workflow run: <URL>)`` when the run is known: its page shows the job summary and
    the uploaded artifacts."""
    import re

    url = ctx.run_url
    if not url:
        return ""
    if re.fullmatch(r"https?://[\w.:-]+(/[\w.~%-]+)*/?", url):
        return f" (workflow run: <{url}>)"
    return f" (workflow run: {code(url)})"


# ---- fork-safe publishing: the PR job saves, a workflow_run job (no PR code) posts ----

ARTIFACT_REPORT = "report.md"  # what `publish --from` posts: within GitHub's comment limit
ARTIFACT_FULL_REPORT = "report-full.md"  # the whole report, however long
ARTIFACT_META = "meta.json"
VERDICTS = ("passed", "failed", "data-invalid", "error")


def save_artifact(
    directory: Path, settings: Settings, ctx: CIContext, markdown: str, verdict: Verdict
) -> Path:
    """Write the report and what the publisher must check, for ``actions/upload-artifact``.

    ``markdown`` is the full report: it is saved whole as ``report-full.md``, and as
    ``report.md`` shortened to a comment (with the publisher's marker line) pointing to it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    (directory / ARTIFACT_FULL_REPORT).write_text(markdown, encoding="utf-8")
    where = f"{code(ARTIFACT_FULL_REPORT)} in the report artifact of the PR's check" + _run_link(
        ctx
    )
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


ARTIFACT_META_LIMIT = 64 * 1024  # bytes; what `save_artifact` writes is well under 1 KiB
ARTIFACT_META_DEPTH = 8  # nesting levels of meta.json; `save_artifact` writes one


def load_artifact(directory: Path) -> Artifact:
    """Read a saved report as untrusted input: sizes, types and markup are checked.

    Only regular files inside ``directory`` are read (no symlinks, FIFOs or devices), each
    bounded in size; meta.json also in depth. Every report marker is stripped, so the report
    can only ever be posted under the marker ``publish_artifact`` gives it.
    """
    import re

    from mlci.report import COMMENT_LIMIT

    raw = _read_artifact_file(directory, ARTIFACT_REPORT, 4 * COMMENT_LIMIT)
    meta = _parse_meta(_read_artifact_file(directory, ARTIFACT_META, ARTIFACT_META_LIMIT))
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
        raise _untrusted(f"pr_number {_shown(number)} is not a PR number")
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{40}", sha):
        raise _untrusted(f"head_sha {_shown(sha)} is not a commit SHA")
    status = meta.get("verdict")
    if status not in VERDICTS:
        raise _untrusted(f"verdict {_shown(status)} is not one of {', '.join(VERDICTS)}")
    name = meta.get("report_name") or "mlci"
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]{1,64}", name):
        raise _untrusted(f"report_name {_shown(name)} is not a plain name")
    summary = meta.get("summary", "")
    exit_code = meta.get("exit_code", 0)
    verdict = Verdict(
        str(status),
        (summary if isinstance(summary, str) else "")[:500],
        exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else 1,
    )
    return Artifact(_strip_markers(markdown), number, sha, verdict, name)


def _read_artifact_file(directory: Path, name: str, limit: int) -> bytes:
    """The bytes of ``directory/name``, a regular file of at most ``limit`` bytes.

    Checked before opening (lstat: no symlink, FIFO or device is opened) and on the open file
    (O_NOFOLLOW, fstat: the same regular file), then read no further than ``limit`` + 1.
    """
    import os
    import stat

    path = directory / name
    try:
        before = os.lstat(path)
    except OSError as exc:
        raise _untrusted(f"cannot read {path}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(before.st_mode):
        raise _untrusted(f"{path} is {_file_kind(before.st_mode)}, not a regular file")
    if before.st_nlink > 1:
        raise _untrusted(f"{path} has {before.st_nlink} hard links; a saved report has one")
    if before.st_size > limit:
        raise _untrusted(f"{path} is {before.st_size:,} bytes (limit {limit:,})")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    flags |= getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise _untrusted(f"cannot open {path}: {exc.strerror or exc}") from None
    try:
        opened = os.fstat(fd)
        if (opened.st_dev, opened.st_ino) != (before.st_dev, before.st_ino) or not stat.S_ISREG(
            opened.st_mode
        ):
            raise _untrusted(f"{path} was replaced while it was being read")
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, min(limit + 1 - size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except OSError as exc:
        raise _untrusted(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise _untrusted(f"{path} is over {limit:,} bytes")
    return b"".join(chunks)


def _file_kind(mode: int) -> str:
    import stat

    kinds = [
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ]
    return next((what for test, what in kinds if test(mode)), "not a plain file")


def _parse_meta(raw: bytes) -> dict[str, Any]:
    """meta.json as a flat-enough JSON object; anything else is a clean rejection."""
    try:
        meta = json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise _untrusted(f"{ARTIFACT_META} nests too deeply to parse") from None
    except ValueError as exc:  # not UTF-8, not JSON, or an integer too long to convert
        raise _untrusted(f"{ARTIFACT_META} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise _untrusted(f"{ARTIFACT_META} holds a JSON {type(meta).__name__}, not an object")
    if _depth_exceeds(meta, ARTIFACT_META_DEPTH):
        raise _untrusted(f"{ARTIFACT_META} nests deeper than {ARTIFACT_META_DEPTH} levels")
    return meta


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays/objects in ``value`` nest deeper than ``limit`` (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return False


def _shown(value: Any) -> str:
    """A short, one-line form of an untrusted value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _strip_markers(markdown: str) -> str:
    """``markdown`` with no report marker left, however markers were nested or split.

    Whole marker comments go first; then every leftover marker prefix, repeatedly, since
    removing one can join the text around it into another. At the end no ``MARKER_PREFIX``
    remains, so no marker of any report can be in the text.
    """
    import re

    from mlci.report import MARKER_PREFIX

    # Marker names hold no `<`, `>` or newline, so each match stops at the next `<`: linear.
    whole = re.compile(re.escape(MARKER_PREFIX) + r"[^<>\n]*-->")
    text = whole.sub("", markdown)
    while MARKER_PREFIX in text:
        text = whole.sub("", text).replace(MARKER_PREFIX, "")
    return text


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
    markdown = _with_saved_images(directory, settings, client, art)
    return publish(settings, ctx, marker(art.report_name) + "\n" + markdown, art.verdict)


def _with_saved_images(directory: Path, settings: Settings, client: Any, art: Artifact) -> str:
    """The artifact's report with the plot images it saved published (each checked as
    untrusted input) and linked in place of their placeholders."""
    import os

    from mlci import images
    from mlci.github import ContentsRefused

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
    summary = to_step_summary(settings, ctx, markdown)
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


def to_step_summary(settings: Settings, ctx: CIContext, markdown: str) -> bool:
    """Append to the job summary when there is one and it is wanted; whether it was."""
    if not (settings.step_summary and ctx.step_summary):
        return False
    from mlci import github

    github.write_step_summary(ctx.step_summary, markdown)
    return True
