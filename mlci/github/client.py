"""GitHub's REST API for one repository, as mlci uses it: one sticky PR comment, check runs,
commit statuses and pull-request lookups here; issues and pulls (``github_issues``) and the Git
Data API (``github_git_api``) through its bases. Every request goes through
``github_http.HttpClient._request``; the runner's own files are ``runner``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import requests

from mlci.errors import GitHubError
from mlci.github.approvals import Approvals
from mlci.github.git_data import ContentsRefused, GitData
from mlci.github.http import (
    CommentResult,
    Why,
    json_body,
    newest_own,
)
from mlci.github.issues import IssueResult, IssuesAndPulls, PullResult
from mlci.github.runner import write_outputs, write_step_summary
from mlci.limits import CHECK_TEXT_LIMIT, COMMENT_LIMIT, SUMMARY_LIMIT

ANNOTATION_BATCH = 50  # annotations per check-run request
STATUS_DESCRIPTION_LIMIT = 140  # characters of a commit status description


@dataclass(frozen=True)
class Annotation:
    path: str
    message: str
    title: str
    level: str = "failure"
    start_line: int = 1
    end_line: int = 1

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "start_line": self.start_line,
            "end_line": max(self.end_line, self.start_line),
            "annotation_level": self.level,
            "message": self.message,
            "title": self.title,
        }


class GitHubClient(IssuesAndPulls, GitData, Approvals):
    """GitHub's REST API for one repository, as mlci uses it (comments, check runs, statuses,
    pull requests; issues and the Git Data API through its bases)."""

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r}, repository={self.repository!r})"

    def iter_comments(self, pr_number: int) -> Iterator[dict[str, Any]]:
        """Every comment on a PR, oldest first, across all pages (following ``Link: next``)."""
        why = Why(f"pull request #{pr_number} in {self.repository}", "pull-requests: read")
        url = f"/repos/{self.repository}/issues/{pr_number}/comments"
        yield from self._pages(url, why, {"per_page": 100}, "comment")

    def upsert_comment(
        self, pr_number: int, body: str, marker: str, *, author: str | None = None
    ) -> CommentResult:
        """Update our newest comment carrying ``marker``, or create one; delete nothing."""
        why = Why(f"pull request #{pr_number} in {self.repository}", "pull-requests: write")
        repo = self.repository
        return self._upsert_marked(
            lambda login: self._own_comment(pr_number, marker, login),
            f"/repos/{repo}/issues/{pr_number}/comments",
            lambda comment: f"/repos/{repo}/issues/comments/{comment['id']}",
            body,
            marker,
            why,
            author,
        )

    def upsert_commit_comment(
        self, sha: str, body: str, marker: str, *, author: str | None = None
    ) -> CommentResult:
        """The same on commit ``sha`` (where there is no PR to comment on): our newest comment
        there carrying ``marker`` is updated, else one is created."""
        why = Why(f"commit {sha[:12]} in {self.repository}", "contents: write")
        listing = f"/repos/{self.repository}/commits/{sha}/comments"

        def own(login: str) -> dict[str, Any] | None:
            found = self._pages(listing, why, {"per_page": 100}, "comment")
            return newest_own(found, marker, login)

        return self._upsert_marked(
            own,
            listing,
            lambda comment: f"/repos/{self.repository}/comments/{comment['id']}",
            body,
            marker,
            why,
            author,
        )

    def _upsert_marked(
        self,
        own: Callable[[str], dict[str, Any] | None],
        create: str,
        update: Callable[[Mapping[str, Any]], str],
        body: str,
        marker: str,
        why: Why,
        author: str | None,
    ) -> CommentResult:
        """Update the newest comment ``own`` finds for the token's login, else POST one to
        ``create``: a POST whose answer was lost is looked for again, never sent twice."""
        if marker not in body:
            body = f"{marker}\n{body}"
        if len(body) > COMMENT_LIMIT:
            raise GitHubError(
                f"the comment is {len(body):,} characters; GitHub takes at most {COMMENT_LIMIT:,}",
                fix="shorten it (details fold into the job summary)",
            )
        login = author or self.identity()
        payload = {"body": body}

        def created_already() -> requests.Response | None:
            """An unanswered POST may have made the comment: update it, never post twice."""
            found = own(login)
            return (
                None if found is None else self._request("PATCH", update(found), why, json=payload)
            )

        newest = own(login)
        if newest is not None:
            resp = self._request("PATCH", update(newest), why, json=payload)
        else:
            resp = self._request("POST", create, why, json=payload, reconcile=created_already)
        data = json_body(resp)
        return CommentResult(int(data["id"]), str(data["html_url"]), newest is None)

    def _own_comment(self, pr_number: int, marker: str, login: str) -> dict[str, Any] | None:
        """The newest comment ``login`` wrote that carries ``marker``, or None."""
        return newest_own(self.iter_comments(pr_number), marker, login)

    def create_check_run(
        self,
        head_sha: str,
        name: str,
        conclusion: str,
        title: str,
        summary: str,
        annotations: Sequence[Annotation] = (),
    ) -> str:
        """A completed check run with annotations in batches of 50; returns its html_url."""
        why = Why(f"commit {head_sha[:12]} in {self.repository}", "checks: write")
        if len(summary) > CHECK_TEXT_LIMIT:
            raise GitHubError(
                f"the check summary is {len(summary):,} characters; GitHub takes at most "
                f"{CHECK_TEXT_LIMIT:,}",
                fix="shorten it with mlci.markdown.fit (this is a bug in mlci; please report it)",
            )
        batches = [
            [a.to_json() for a in annotations[i : i + ANNOTATION_BATCH]]
            for i in range(0, len(annotations), ANNOTATION_BATCH)
        ]
        output: dict[str, Any] = {"title": title, "summary": summary}
        if batches:
            output["annotations"] = batches[0]
        # Names this very request, so that after a lost answer we find what it made, if anything.
        external_id = f"mlci-{uuid.uuid4().hex}"

        def created_already() -> requests.Response | None:
            """An unanswered POST may have made the run: update it (without annotations, which
            a PATCH would add twice), never create a second one."""
            found = self._find_check_run(head_sha, name, external_id)
            if found is None:
                return None
            path = f"/repos/{self.repository}/check-runs/{found['id']}"
            return self._request(
                "PATCH", path, why, json={"output": {"title": title, "summary": summary}}
            )

        resp = self._request(
            "POST",
            f"/repos/{self.repository}/check-runs",
            why,
            json={
                "name": name,
                "head_sha": head_sha,
                "external_id": external_id,
                "status": "completed",
                "conclusion": conclusion,
                "output": output,
            },
            reconcile=created_already,
        )
        data = json_body(resp)
        path = f"/repos/{self.repository}/check-runs/{data['id']}"
        sent = len(batches[0]) if batches else 0
        for batch in batches[1:]:
            sent += len(batch)
            self._request(
                "PATCH",
                path,
                why,
                json={"output": {"title": title, "summary": summary, "annotations": batch}},
                reconcile=partial(self._check_run_holds, path, why, sent),
            )
        return str(data["html_url"])

    def _check_run_holds(self, path: str, why: Why, annotations: int) -> requests.Response | None:
        """The check run, if it already holds ``annotations`` annotations (a PATCH adds its
        batch to them: after a lost answer, sending it again would add it twice)."""
        resp = self._request("GET", path, why)
        run = json_body(resp)
        output = (run.get("output") if isinstance(run, dict) else None) or {}
        return resp if int(output.get("annotations_count") or 0) >= annotations else None

    def _find_check_run(self, head_sha: str, name: str, external_id: str) -> dict[str, Any] | None:
        """The check run named ``name`` on ``head_sha`` that carries ``external_id``, or None."""
        why = Why(f"commit {head_sha[:12]} in {self.repository}", "checks: read")
        url = f"/repos/{self.repository}/commits/{head_sha}/check-runs"
        params = {"check_name": name, "filter": "all", "per_page": 100}
        for run in self._pages(url, why, params, "check run", key="check_runs"):
            if run.get("external_id") == external_id and run.get("head_sha") == head_sha:
                return run
        return None

    def set_commit_status(
        self,
        sha: str,
        state: str,
        description: str,
        context: str,
        target_url: str | None = None,
    ) -> None:
        """A commit status: the fallback where check runs are not permitted."""
        why = Why(f"commit {sha[:12]} in {self.repository}", "statuses: write")
        if len(description) > STATUS_DESCRIPTION_LIMIT:
            description = description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
        payload: dict[str, Any] = {"state": state, "description": description, "context": context}
        if target_url:
            payload["target_url"] = target_url
        self._request("POST", f"/repos/{self.repository}/statuses/{sha}", why, json=payload)

    def pull_request(self, number: int) -> dict[str, Any]:
        why = Why(f"pull request #{number} in {self.repository}", "pull-requests: read")
        data = json_body(self._request("GET", f"/repos/{self.repository}/pulls/{number}", why))
        if not isinstance(data, dict):
            raise GitHubError(f"GitHub answered pull request #{number} with something else")
        return data

    def pull_for_commit(self, sha: str) -> int | None:
        """The PR that merged ``sha`` (else the first one GitHub associates with it), or None.

        One page of up to 100 is plenty: a commit belongs to a handful of PRs at most.
        """
        why = Why(f"commit {sha[:12]} in {self.repository}", "pull-requests: read")
        resp = self._request(
            "GET", f"/repos/{self.repository}/commits/{sha}/pulls", why, params={"per_page": 100}
        )
        page = json_body(resp)
        if not isinstance(page, list):
            raise GitHubError(f"GitHub answered the PRs of commit {sha[:12]} with something else")
        pulls = [p for p in page if isinstance(p, dict) and p.get("number")]
        merged = [p for p in pulls if p.get("merge_commit_sha") == sha]
        chosen = merged or [p for p in pulls if p.get("merged_at")] or pulls
        return int(chosen[0]["number"]) if chosen else None


__all__ = [
    "CHECK_TEXT_LIMIT",
    "COMMENT_LIMIT",
    "SUMMARY_LIMIT",
    "Annotation",
    "CommentResult",
    "ContentsRefused",
    "GitHubClient",
    "IssueResult",
    "PullResult",
    "write_outputs",
    "write_step_summary",
]
