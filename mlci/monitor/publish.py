"""Publish a monitor result: report file, job summary, step outputs, one living issue per
model, and on a breach the retraining pull request (or a workflow dispatch).

The file and the summary come first, so a GitHub failure loses nothing; it is kept on the
result (``publish_error``) and never hides the status.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci.ci import CIContext
from mlci.errors import MlciError
from mlci.markdown import inert
from mlci.monitor import report as monitor_report
from mlci.report import deliver
from mlci.settings.config import Settings
from mlci.settings.monitor import MonitorSettings

if TYPE_CHECKING:
    from mlci.github.client import PullResult
    from mlci.monitor.result import MonitorResult

REPORT = ".mlci/monitor.md"


def facts(result: MonitorResult) -> dict[str, Any]:
    """What ``.mlci/monitor.json`` says beside the report."""
    return {
        "status": result.status.value,
        "exit_code": result.status.exit_code if result.error is None else result.error.exit_code,
        "summary": result.summary,
        "issue_url": result.issue_url,
        "pr_url": result.pr_url,
        "run": monitor_report.entry(result),
    }


def client(settings: Settings, ctx: CIContext) -> Any | None:
    """The GitHub client for this run, or None without a token and repository."""
    from mlci.report.publish import Publisher

    return Publisher(settings, ctx).client


def publish(
    root: Path, settings: Settings, ms: MonitorSettings, ctx: CIContext, result: MonitorResult
) -> None:

    gh = client(settings, ctx)
    links: list[str] = []
    history: list[dict[str, Any]] = [monitor_report.entry(result)]
    if gh is not None and result.error is None:
        try:
            history, links = _to_github(root, settings, ms, ctx, result, gh)
        except MlciError as exc:
            result.publish_error = exc
    markdown = monitor_report.render(result, history, links=links)
    result.report_path = deliver.record(settings, ctx, root / REPORT, markdown, facts(result)).path
    deliver.outputs(
        ctx,
        {
            "status": result.status.value,
            "report-path": str(result.report_path),
            "issue-url": result.issue_url or "",
            "pr-url": result.pr_url or "",
            "challenger-ready": "true"
            if result.shadow is not None and result.shadow.ready
            else "false",
            "rolled-back": "" if result.rolled_back is None else result.rolled_back[1],
        },
    )


def _to_github(
    root: Path,
    settings: Settings,
    ms: MonitorSettings,
    ctx: CIContext,
    result: MonitorResult,
    gh: Any,
) -> tuple[list[dict[str, Any]], list[str]]:
    """The issue (and the retraining PR or dispatch); returns the trend and the links shown."""
    mark = monitor_report.marker(settings.model_name)
    found = gh.issue_find(mark)
    history = [*monitor_report.history_of(found.get("body") if found else None)]
    history = [*history, monitor_report.entry(result)][-max(ms.history, 1) :]
    links: list[str] = []
    is_open = found is not None and found.get("state") == "open"
    if not result.status.breach:
        if is_open:
            body = monitor_report.render(result, history) + monitor_report.encode(history)
            gh.issue_update(int(found["number"]), body=f"{mark}\n{body}")
            gh.issue_close(int(found["number"]), monitor_report.closing_comment(result))
            result.issue_url = str(found["html_url"])
        return history, links
    if ms.on_breach == "pr":
        from mlci.monitor import retrain

        reserved = {
            ctx.default_branch or "": "repository's default branch",
            settings.promote_branch or "": "promotion branch",
            settings.plots.branch: "plot images branch",
        }
        try:
            proposal = retrain.propose(root, settings, ms, result, gh, _base_branch(ctx), reserved)
        except MlciError as exc:  # said in the issue too, which is still updated; raised after
            result.publish_error = exc
            links.append(f"no retraining pull request: {inert(exc.one_line(), 600)}")
        else:
            _proposed(result, proposal, links)
    if ms.on_breach == "dispatch" and not is_open:
        # no inputs: a workflow that declares none answers 422 to any
        gh.workflow_dispatch(str(ms.workflow), _base_branch(ctx))
        result.dispatched = str(ms.workflow)
        links.append(f"workflow {ms.workflow} dispatched on {_base_branch(ctx)}")
    body = monitor_report.render(result, history, links=links) + monitor_report.encode(history)
    title = monitor_report.issue_title(settings.model_name, result.status.value)
    issue = gh.issue_upsert(title, body, mark)
    result.issue_url = issue.url
    return history, links


def _proposed(result: MonitorResult, proposal: PullResult | None, links: list[str]) -> None:
    if proposal is not None:
        result.pr_url = proposal.url
        verb = "opened" if proposal.created else "updated"
        links.append(f"retraining pull request {verb}: {proposal.url}")
    else:
        links.append("no retraining pull request: " + "; ".join(result.notes[-1:]))


def _base_branch(ctx: CIContext) -> str:
    if ctx.ref and ctx.ref.startswith("refs/heads/"):
        return ctx.ref.removeprefix("refs/heads/")
    return ctx.default_branch or "main"
