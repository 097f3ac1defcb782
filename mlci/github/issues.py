"""Issues, pull requests and workflow dispatches: what ``mlci monitor`` needs for its living
issue and its retraining pull request."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from mlci.errors import GitHubError
from mlci.github.http import (
    CommentResult,
    HttpClient,
    Why,
    check_body,
    json_body,
    newest_own,
)


@dataclass(frozen=True)
class IssueResult:
    number: int
    url: str
    created: bool
    reopened: bool = False


@dataclass(frozen=True)
class PullResult:
    number: int
    url: str
    created: bool


class IssuesAndPulls(HttpClient):
    # -- issues (mlci monitor: one living issue per model) --------------------------------------

    def issue_find(self, marker: str, *, author: str | None = None) -> dict[str, Any] | None:
        """The newest issue (open or closed) ``author`` (default: the token's identity) opened
        whose body carries ``marker``, across all pages; pull requests are not issues here."""
        login = author or self.identity()
        why = Why(f"the issues of {self.repository}", "issues: read")
        params = {"state": "all", "sort": "created", "direction": "desc", "per_page": 100}
        issues = (
            i
            for i in self._pages(f"/repos/{self.repository}/issues", why, params, "issue")
            if "pull_request" not in i
        )
        return newest_own(issues, marker, login)

    def issue_upsert(
        self, title: str, body: str, marker: str, *, author: str | None = None
    ) -> IssueResult:
        """Update (and reopen) our issue carrying ``marker``, or open one; never a second."""
        if marker not in body:
            body = f"{marker}\n{body}"
        check_body(body, "issue body")
        found = self.issue_find(marker, author=author)
        if found is not None:
            reopened = found.get("state") == "closed"
            data = self.issue_update(int(found["number"]), title=title, body=body, state="open")
            return IssueResult(int(data["number"]), str(data["html_url"]), False, reopened)
        why = Why(f"the issues of {self.repository}", "issues: write")

        def created_already() -> requests.Response | None:
            """An unanswered POST may have opened the issue: update it, never open two."""
            again = self.issue_find(marker, author=author)
            if again is None:
                return None
            path = f"/repos/{self.repository}/issues/{again['number']}"
            return self._request("PATCH", path, why, json={"title": title, "body": body})

        resp = self._request(
            "POST",
            f"/repos/{self.repository}/issues",
            why,
            json={"title": title, "body": body},
            reconcile=created_already,
        )
        data = json_body(resp)
        return IssueResult(int(data["number"]), str(data["html_url"]), True, False)

    def issue_update(self, number: int, **fields: Any) -> dict[str, Any]:
        """PATCH an issue's ``title``, ``body``, ``state`` or ``state_reason`` (None left out)."""
        why = Why(f"issue #{number} in {self.repository}", "issues: write")
        payload = {k: v for k, v in fields.items() if v is not None}
        if "body" in payload:
            check_body(str(payload["body"]), "issue body")
        path = f"/repos/{self.repository}/issues/{number}"
        data = json_body(self._request("PATCH", path, why, json=payload))
        if not isinstance(data, dict):
            raise GitHubError(f"GitHub answered issue #{number} with something else")
        return data

    def issue_comment(self, number: int, body: str) -> CommentResult:
        """A new comment on issue (or pull request) ``number``; a POST whose answer was lost
        is looked for (by a hidden name of this very request), never sent twice."""
        # Names this very request, so that after a lost answer we find what it made, if anything.
        body = f"{body}\n\n<!-- mlci-post: {uuid.uuid4().hex} -->"
        check_body(body, "comment")
        why = Why(f"issue #{number} in {self.repository}", "issues: write")
        path = f"/repos/{self.repository}/issues/{number}/comments"

        def created_already() -> requests.Response | None:
            for comment in self._pages(path, why, {"per_page": 100}, "comment"):
                if comment.get("body") == body:
                    one = f"/repos/{self.repository}/issues/comments/{comment['id']}"
                    return self._request("PATCH", one, why, json={"body": body})  # no change
            return None

        data = json_body(self._request("POST", path, why, json={"body": body},
                                       reconcile=created_already))  # fmt: skip
        return CommentResult(int(data["id"]), str(data["html_url"]), True)

    def issue_close(self, number: int, comment: str | None = None) -> dict[str, Any]:
        """Close issue ``number`` as completed, saying why in a comment first."""
        if comment:
            self.issue_comment(number, comment)
        return self.issue_update(number, state="closed", state_reason="completed")

    # -- pull requests (mlci monitor: one retraining PR on a fixed branch) ----------------------

    def pulls_list(self, *, head: str | None = None, state: str = "open") -> list[dict[str, Any]]:
        """Pull requests in ``state``; ``head`` is a branch of this repository."""
        why = Why(f"the pull requests of {self.repository}", "pull-requests: read")
        params: dict[str, Any] = {"state": state, "per_page": 100}
        if head:
            params["head"] = f"{self.repository.split('/')[0]}:{head}"
        url = f"/repos/{self.repository}/pulls"
        return list(self._pages(url, why, params, "pull request"))

    def pulls_upsert(self, head: str, base: str, title: str, body: str) -> PullResult:
        """Update the open pull request from branch ``head``, or open one: at most one."""
        check_body(body, "pull request body")
        why = Why(f"the pull requests of {self.repository}", "pull-requests: write")
        found = self.pulls_list(head=head)
        if found:
            number = int(found[0]["number"])
            path = f"/repos/{self.repository}/pulls/{number}"
            data = json_body(self._request("PATCH", path, why, json={"title": title, "body": body}))
            return PullResult(number, str(data["html_url"]), False)

        def created_already() -> requests.Response | None:
            again = self.pulls_list(head=head)
            if not again:
                return None
            path = f"/repos/{self.repository}/pulls/{again[0]['number']}"
            return self._request("PATCH", path, why, json={"title": title, "body": body})

        payload = {"title": title, "head": head, "base": base, "body": body}
        resp = self._request(
            "POST", f"/repos/{self.repository}/pulls", why, json=payload, reconcile=created_already
        )
        data = json_body(resp)
        return PullResult(int(data["number"]), str(data["html_url"]), True)

    # -- workflows ------------------------------------------------------------------------------

    def workflow_dispatch(
        self, workflow: str, ref: str, inputs: Mapping[str, str] | None = None
    ) -> None:
        """Start ``workflow`` (file name or id) on ``ref`` through ``workflow_dispatch``."""
        why = Why(f"workflow {workflow} in {self.repository}", "actions: write")
        payload: dict[str, Any] = {"ref": ref}
        if inputs:
            payload["inputs"] = dict(inputs)
        path = f"/repos/{self.repository}/actions/workflows/{quote(workflow, safe='')}/dispatches"
        self._request("POST", path, why, json=payload)
