"""The one hand-over sequence every mlci report follows: the whole report on disk (with its
facts as JSON beside it), then the job summary (fitted to what GitHub takes), then the step
outputs. The network comes after, and a failure there loses nothing.

The PR check (``report.publish``), the promotion note and the monitor all deliver through
``record`` and ``outputs``, so settings such as ``step_summary: false`` hold for each of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.ci import CIContext
from mlci.markdown import code, fit, utf8_size
from mlci.settings.config import Settings


@dataclass(frozen=True)
class Recorded:
    path: Path
    summary_written: bool = False
    whole_in_summary: bool = False  # the summary holds the report unshortened


def record(
    settings: Settings,
    ctx: CIContext,
    path: Path,
    markdown: str,
    facts: Mapping[str, Any] | None = None,
) -> Recorded:
    """``markdown`` whole at ``path`` (``facts`` as JSON at ``path`` with ``.json``), then in
    the job summary when there is one and it is wanted, shortened to the room left there with
    a note that says where the full report is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown, encoding="utf-8")
    if facts is not None:
        path.with_suffix(".json").write_text(
            json.dumps(dict(facts), indent=2) + "\n", encoding="utf-8"
        )
    if not (settings.step_summary and ctx.step_summary):
        return Recorded(path)
    whole, body = _summary_body(ctx, markdown, path)
    from mlci.github import client as github

    github.write_step_summary(ctx.step_summary, body)
    return Recorded(path, True, whole)


def outputs(ctx: CIContext, values: Mapping[str, str]) -> None:
    """The step's outputs (``$GITHUB_OUTPUT``), where the step has them."""
    if ctx.output:
        from mlci.github import client as github

        github.write_outputs(ctx.output, dict(values))


def _summary_body(ctx: CIContext, markdown: str, path: Path) -> tuple[bool, str]:
    """What fits in the job summary next to what it holds already (GitHub takes 1 MiB), and
    whether that is the whole report."""
    from mlci.limits import SUMMARY_LIMIT

    used = 0
    if ctx.step_summary:
        try:
            used = Path(ctx.step_summary).stat().st_size
        except OSError:
            used = 0
    budget = SUMMARY_LIMIT - used - 1  # the newline the summary writer may add
    body = fit(markdown, budget, where(path, ctx), size=utf8_size)
    return body == markdown, body


def where(path: Path, ctx: CIContext, in_summary: bool = False) -> str:
    """Where the full report is, as Markdown for the shortening note."""
    shown = f"{code(str(path))} on the runner"
    if in_summary:
        shown += " and in the job summary"
    return shown + run_link(ctx)


def run_link(ctx: CIContext) -> str:
    """`` (workflow run: <URL>)`` when the run is known: its page shows the job summary and
    the uploaded artifacts."""
    url = ctx.run_url
    if not url:
        return ""
    if re.fullmatch(r"https?://[\w.:-]+(/[\w.~%-]+)*/?", url):
        return f" (workflow run: <{url}>)"
    return f" (workflow run: {code(url)})"
