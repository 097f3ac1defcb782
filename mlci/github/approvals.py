"""Who approved: the reviewers of a workflow run's environment, and the reviews of a pull
request. Read from GitHub's API only, never from a repository's files, so nothing a pull
request changed can forge an approval."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlci.github.http import HttpClient, Why


@dataclass(frozen=True)
class Approval:
    login: str
    how: str  # "environment <name>" or "review of PR #n"
    comment: str = ""


class Approvals(HttpClient):
    def run_approvals(self, run_id: str) -> list[Approval]:
        """The approvals of a workflow run's deployment reviews (environment protection)."""
        why = Why(f"the approvals of workflow run {run_id} in {self.repository}", "actions: read")
        url = f"/repos/{self.repository}/actions/runs/{run_id}/approvals"
        resp = self._request("GET", url, why)
        found: list[Approval] = []
        page: Any = resp.json() if resp.content else []
        for item in page if isinstance(page, list) else []:
            if not isinstance(item, dict) or item.get("state") != "approved":
                continue
            login = str((item.get("user") or {}).get("login") or "")
            names = [str(e.get("name")) for e in item.get("environments") or [] if e]
            if login:
                how = f"environment {', '.join(names)}" if names else "environment"
                found.append(Approval(login, how, str(item.get("comment") or "")[:200]))
        return found

    def pull_approvals(self, number: int) -> tuple[str | None, list[Approval]]:
        """The author of PR ``number`` and the approving reviews by anyone else (each
        reviewer's latest review decides: an approval later withdrawn does not count)."""
        pr = self._request(
            "GET",
            f"/repos/{self.repository}/pulls/{number}",
            Why(f"pull request #{number} in {self.repository}", "pull-requests: read"),
        ).json()
        author = str(((pr or {}).get("user") or {}).get("login") or "") or None
        why = Why(f"the reviews of pull request #{number}", "pull-requests: read")
        url = f"/repos/{self.repository}/pulls/{number}/reviews"
        latest: dict[str, str] = {}
        for review in self._pages(url, why, {"per_page": 100}, "review"):
            login = str((review.get("user") or {}).get("login") or "")
            state = str(review.get("state") or "")
            if login and state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
                latest[login] = state
        approved = [
            Approval(login, f"review of PR #{number}")
            for login, state in latest.items()
            if state == "APPROVED" and login != author
        ]
        return author, approved
