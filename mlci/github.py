"""GitHub's REST API, as mlci uses it: one sticky PR comment, check runs, commit statuses, and
the runner's files for the job summary and step outputs.

Every request goes through ``GitHubClient._request``: auth and API-version headers, retries with
backoff on 5xx and network errors, waits on rate limits within a bound, spacing of mutating
requests, and errors that name the fix. The token is only ever put in the ``Authorization``
header.
"""

from __future__ import annotations

import base64
import random
import re
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.auth import AuthBase

from mlci.errors import GitHubError
from mlci.report import COMMENT_LIMIT, MARKER_PREFIX, marker_for

CHECK_TEXT_LIMIT = 65535
SUMMARY_LIMIT = 1024 * 1024
ANNOTATION_BATCH = 50
STATUS_DESCRIPTION_LIMIT = 140
API_VERSION = "2022-11-28"
FALLBACK_IDENTITY = "github-actions[bot]"
MAX_TRIES = 5
MUTATION_SPACING_S = 1.0
SECONDARY_LIMIT_WAIT_S = 60.0

_TOKEN_SECRET = "GITHUB_TOKEN (or MLCI_GITHUB_TOKEN)"


@dataclass(frozen=True)
class CommentResult:
    id: int
    url: str
    created: bool


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


class _BearerAuth(AuthBase):
    """Sets the token header; passing auth also keeps requests from applying ~/.netrc."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r

    def __repr__(self) -> str:
        return "_BearerAuth(***)"


@dataclass(frozen=True)
class _Why:
    """What a request is for, so an error can say which resource and which permission."""

    target: str
    permission: str | None = None


class ContentsRefused(GitHubError):
    """The token may not write the repository's contents (``permissions: contents: write``)."""

    title = "GitHub refused to write contents"


class GitHubClient:
    def __init__(
        self,
        api_url: str,
        token: str,
        repository: str,
        *,
        timeout: float = 10.0,
        max_wait_s: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        on_retry: Callable[[str], None] | None = None,
        max_tries: int = MAX_TRIES,
    ) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", repository):
            raise GitHubError(
                f"repository {repository!r} is not of the form owner/name",
                fix="set GITHUB_REPOSITORY (or the repository setting) to owner/name",
            )
        if not token:
            raise GitHubError("no GitHub token", fix=f"set {_TOKEN_SECRET}")
        self.api_url = api_url.rstrip("/")
        self.repository = repository
        self.timeout = timeout
        self.max_wait_s = max_wait_s
        self.max_tries = max(1, max_tries)
        self.requests_made = 0
        self._sleep = sleep
        self._on_retry = on_retry
        self._auth = _BearerAuth(token)
        self._session = requests.Session()
        self._session.headers.update(
            {
                "Accept": "application/vnd.github+json",
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": "mlci",
            }
        )
        self._identity: str | None = None
        self._last_mutation: float | None = None
        self._random = random.Random()

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r}, repository={self.repository!r})"

    # -- public API ---------------------------------------------------------------------------

    def identity(self) -> str:
        """The login the token acts as; ``github-actions[bot]`` for an integration token."""
        if self._identity is None:
            resp = self._request("GET", "/user", _Why("the authenticated user"), allow=(401, 403))
            if resp.status_code in (401, 403):
                # GITHUB_TOKEN cannot read /user ("Resource not accessible by integration").
                self._identity = FALLBACK_IDENTITY
            else:
                self._identity = str(_json(resp)["login"])
        return self._identity

    def iter_comments(self, pr_number: int) -> Iterator[dict[str, Any]]:
        """Every comment on a PR, oldest first, across all pages (following ``Link: next``)."""
        why = _Why(f"pull request #{pr_number} in {self.repository}", "pull-requests: read")
        url = f"/repos/{self.repository}/issues/{pr_number}/comments"
        yield from self._pages(url, why, {"per_page": 100}, "comment")

    def upsert_comment(
        self, pr_number: int, body: str, marker: str, *, author: str | None = None
    ) -> CommentResult:
        """Update our newest comment carrying ``marker``, or create one; delete nothing."""
        if marker not in body:
            body = f"{marker}\n{body}"
        if len(body) > COMMENT_LIMIT:
            raise GitHubError(
                f"the comment is {len(body):,} characters; GitHub takes at most {COMMENT_LIMIT:,}",
                fix="shorten the report (details fold into the job summary)",
            )
        login = author or self.identity()
        why = _Why(f"pull request #{pr_number} in {self.repository}", "pull-requests: write")
        payload = {"body": body}
        newest = self._own_comment(pr_number, marker, login)
        if newest is not None:
            resp = self._update_comment(newest, payload, why)
            created = False
        else:

            def created_already() -> requests.Response | None:
                """An unanswered POST may have made the comment: update it, never post twice."""
                found = self._own_comment(pr_number, marker, login)
                return None if found is None else self._update_comment(found, payload, why)

            path = f"/repos/{self.repository}/issues/{pr_number}/comments"
            resp = self._request("POST", path, why, json=payload, reconcile=created_already)
            created = True
        data = _json(resp)
        return CommentResult(int(data["id"]), str(data["html_url"]), created)

    def _own_comment(self, pr_number: int, marker: str, login: str) -> dict[str, Any] | None:
        """The newest comment ``login`` wrote that carries ``marker``, or None."""
        return _newest_own(self.iter_comments(pr_number), marker, login)

    def _update_comment(
        self, comment: Mapping[str, Any], payload: dict[str, Any], why: _Why
    ) -> requests.Response:
        path = f"/repos/{self.repository}/issues/comments/{comment['id']}"
        return self._request("PATCH", path, why, json=payload)

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
        why = _Why(f"commit {head_sha[:12]} in {self.repository}", "checks: write")
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
        data = _json(resp)
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

    def _check_run_holds(self, path: str, why: _Why, annotations: int) -> requests.Response | None:
        """The check run, if it already holds ``annotations`` annotations (a PATCH adds its
        batch to them: after a lost answer, sending it again would add it twice)."""
        resp = self._request("GET", path, why)
        run = _json(resp)
        output = (run.get("output") if isinstance(run, dict) else None) or {}
        return resp if int(output.get("annotations_count") or 0) >= annotations else None

    def _find_check_run(self, head_sha: str, name: str, external_id: str) -> dict[str, Any] | None:
        """The check run named ``name`` on ``head_sha`` that carries ``external_id``, or None."""
        why = _Why(f"commit {head_sha[:12]} in {self.repository}", "checks: read")
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
        why = _Why(f"commit {sha[:12]} in {self.repository}", "statuses: write")
        if len(description) > STATUS_DESCRIPTION_LIMIT:
            description = description[: STATUS_DESCRIPTION_LIMIT - 1] + "…"
        payload: dict[str, Any] = {"state": state, "description": description, "context": context}
        if target_url:
            payload["target_url"] = target_url
        self._request("POST", f"/repos/{self.repository}/statuses/{sha}", why, json=payload)

    def pull_request(self, number: int) -> dict[str, Any]:
        why = _Why(f"pull request #{number} in {self.repository}", "pull-requests: read")
        data = _json(self._request("GET", f"/repos/{self.repository}/pulls/{number}", why))
        if not isinstance(data, dict):
            raise GitHubError(f"GitHub answered pull request #{number} with something else")
        return data

    def pull_for_commit(self, sha: str) -> int | None:
        """The PR that merged ``sha`` (else the first one GitHub associates with it), or None.

        One page of up to 100 is plenty: a commit belongs to a handful of PRs at most.
        """
        why = _Why(f"commit {sha[:12]} in {self.repository}", "pull-requests: read")
        resp = self._request(
            "GET", f"/repos/{self.repository}/commits/{sha}/pulls", why, params={"per_page": 100}
        )
        page = _json(resp)
        if not isinstance(page, list):
            raise GitHubError(f"GitHub answered the PRs of commit {sha[:12]} with something else")
        pulls = [p for p in page if isinstance(p, dict) and p.get("number")]
        merged = [p for p in pulls if p.get("merge_commit_sha") == sha]
        chosen = merged or [p for p in pulls if p.get("merged_at")] or pulls
        return int(chosen[0]["number"]) if chosen else None

    def create_commit_comment(self, sha: str, body: str) -> CommentResult:
        """A comment on commit ``sha`` (where there is no PR to comment on)."""
        if len(body) > COMMENT_LIMIT:
            raise GitHubError(
                f"the comment is {len(body):,} characters; GitHub takes at most {COMMENT_LIMIT:,}",
                fix="shorten the note (details are in the job summary)",
            )
        why = _Why(f"commit {sha[:12]} in {self.repository}", "contents: write")
        path = f"/repos/{self.repository}/commits/{sha}/comments"
        data = _json(self._request("POST", path, why, json={"body": body}))
        return CommentResult(int(data["id"]), str(data["html_url"]), True)

    # -- issues (mlci monitor: one living issue per model) --------------------------------------

    def issue_find(self, marker: str, *, author: str | None = None) -> dict[str, Any] | None:
        """The newest issue (open or closed) ``author`` (default: the token's identity) opened
        whose body carries ``marker``, across all pages; pull requests are not issues here."""
        login = author or self.identity()
        why = _Why(f"the issues of {self.repository}", "issues: read")
        params = {"state": "all", "sort": "created", "direction": "desc", "per_page": 100}
        issues = (
            i
            for i in self._pages(f"/repos/{self.repository}/issues", why, params, "issue")
            if "pull_request" not in i
        )
        return _newest_own(issues, marker, login)

    def issue_upsert(
        self, title: str, body: str, marker: str, *, author: str | None = None
    ) -> IssueResult:
        """Update (and reopen) our issue carrying ``marker``, or open one; never a second."""
        if marker not in body:
            body = f"{marker}\n{body}"
        _check_body(body, "issue body")
        found = self.issue_find(marker, author=author)
        if found is not None:
            reopened = found.get("state") == "closed"
            data = self.issue_update(int(found["number"]), title=title, body=body, state="open")
            return IssueResult(int(data["number"]), str(data["html_url"]), False, reopened)
        why = _Why(f"the issues of {self.repository}", "issues: write")

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
        data = _json(resp)
        return IssueResult(int(data["number"]), str(data["html_url"]), True, False)

    def issue_update(self, number: int, **fields: Any) -> dict[str, Any]:
        """PATCH an issue's ``title``, ``body``, ``state`` or ``state_reason`` (None left out)."""
        why = _Why(f"issue #{number} in {self.repository}", "issues: write")
        payload = {k: v for k, v in fields.items() if v is not None}
        if "body" in payload:
            _check_body(str(payload["body"]), "issue body")
        path = f"/repos/{self.repository}/issues/{number}"
        data = _json(self._request("PATCH", path, why, json=payload))
        if not isinstance(data, dict):
            raise GitHubError(f"GitHub answered issue #{number} with something else")
        return data

    def issue_comment(self, number: int, body: str) -> CommentResult:
        """A new comment on issue (or pull request) ``number``."""
        _check_body(body, "comment")
        why = _Why(f"issue #{number} in {self.repository}", "issues: write")
        path = f"/repos/{self.repository}/issues/{number}/comments"
        data = _json(self._request("POST", path, why, json={"body": body}))
        return CommentResult(int(data["id"]), str(data["html_url"]), True)

    def issue_close(self, number: int, comment: str | None = None) -> dict[str, Any]:
        """Close issue ``number`` as completed, saying why in a comment first."""
        if comment:
            self.issue_comment(number, comment)
        return self.issue_update(number, state="closed", state_reason="completed")

    # -- pull requests (mlci monitor: one retraining PR on a fixed branch) ----------------------

    def pulls_list(self, *, head: str | None = None, state: str = "open") -> list[dict[str, Any]]:
        """Pull requests in ``state``; ``head`` is a branch of this repository."""
        why = _Why(f"the pull requests of {self.repository}", "pull-requests: read")
        params: dict[str, Any] = {"state": state, "per_page": 100}
        if head:
            params["head"] = f"{self.repository.split('/')[0]}:{head}"
        url = f"/repos/{self.repository}/pulls"
        return list(self._pages(url, why, params, "pull request"))

    def pulls_upsert(self, head: str, base: str, title: str, body: str) -> PullResult:
        """Update the open pull request from branch ``head``, or open one: at most one."""
        _check_body(body, "pull request body")
        why = _Why(f"the pull requests of {self.repository}", "pull-requests: write")
        found = self.pulls_list(head=head)
        if found:
            number = int(found[0]["number"])
            path = f"/repos/{self.repository}/pulls/{number}"
            data = _json(self._request("PATCH", path, why, json={"title": title, "body": body}))
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
        data = _json(resp)
        return PullResult(int(data["number"]), str(data["html_url"]), True)

    # -- workflows ------------------------------------------------------------------------------

    def workflow_dispatch(
        self, workflow: str, ref: str, inputs: Mapping[str, str] | None = None
    ) -> None:
        """Start ``workflow`` (file name or id) on ``ref`` through ``workflow_dispatch``."""
        why = _Why(f"workflow {workflow} in {self.repository}", "actions: write")
        payload: dict[str, Any] = {"ref": ref}
        if inputs:
            payload["inputs"] = dict(inputs)
        path = f"/repos/{self.repository}/actions/workflows/{workflow}/dispatches"
        self._request("POST", path, why, json=payload)

    # -- Git Data API: the plots images branch (mlci/images.py) ---------------------------------

    def branch_head(self, branch: str) -> str | None:
        """The commit ``refs/heads/{branch}`` points at, or None when there is no such branch."""
        why = _Why(f"branch {branch} of {self.repository}", "contents: read")
        path = f"/repos/{self.repository}/git/ref/heads/{quote(branch)}"
        resp = self._request("GET", path, why, allow=(404, 409))  # 409: an empty repository
        if resp.status_code in (404, 409):
            return None
        return str(_json(resp)["object"]["sha"])

    def list_directory(self, path: str, ref: str) -> list[dict[str, Any]] | None:
        """The entries (``name``, ``type``, ``sha`` ...) of directory ``path`` at ``ref``; None
        when it does not exist there."""
        why = _Why(f"{path} at {ref[:12]} in {self.repository}", "contents: read")
        url = f"/repos/{self.repository}/contents/{quote(path)}"
        resp = self._request("GET", url, why, params={"ref": ref}, allow=(404,))
        if resp.status_code == 404:
            return None
        data = _json(resp)
        return [e for e in data if isinstance(e, dict)] if isinstance(data, list) else None

    def create_blob(self, content: bytes) -> str:
        """Store ``content`` as a git blob; returns its SHA."""
        payload = {"content": base64.b64encode(content).decode("ascii"), "encoding": "base64"}
        data = self._write("POST", "/git/blobs", payload, "a git blob")
        return str(data["sha"])

    def create_tree(self, entries: Sequence[Mapping[str, str]]) -> str:
        """A git tree of exactly ``entries`` (``path``, ``mode``, ``type``, ``sha``)."""
        data = self._write("POST", "/git/trees", {"tree": list(entries)}, "a git tree")
        return str(data["sha"])

    def create_commit(self, message: str, tree: str, parents: Sequence[str]) -> str:
        payload = {"message": message, "tree": tree, "parents": list(parents)}
        return str(self._write("POST", "/git/commits", payload, "a git commit")["sha"])

    def move_branch(self, branch: str, sha: str, *, create: bool, force: bool = False) -> bool:
        """Point ``branch`` at commit ``sha`` (creating it when ``create``); False when GitHub
        refuses because the branch moved meanwhile (not a fast-forward, or it exists)."""
        if create:
            body: dict[str, Any] = {"ref": f"refs/heads/{branch}", "sha": sha}
            return self._write("POST", "/git/refs", body, f"branch {branch}", allow=(422,)) != {}
        path = f"/git/refs/heads/{quote(branch)}"
        body = {"sha": sha, "force": force}
        return self._write("PATCH", path, body, f"branch {branch}", allow=(422,)) != {}

    def _write(
        self, method: str, path: str, payload: Any, what: str, *, allow: Collection[int] = ()
    ) -> dict[str, Any]:
        """A Git Data write; a 403/404 is :class:`ContentsRefused`; an allowed status gives {}."""
        why = _Why(f"{what} in {self.repository}", "contents: write")
        url = f"/repos/{self.repository}{path}"
        resp = self._request(method, url, why, json=payload, allow=(403, 404, *allow))
        if resp.status_code in (403, 404):
            message, _ = _error_message(resp)
            raise ContentsRefused(
                f"{method} {urlsplit(resp.url).path}: GitHub refused to write {what} "
                f"({resp.status_code} {message})",
                fix="give the workflow `permissions: contents: write`",
            )
        if resp.status_code in allow:
            return {}
        data = _json(resp)
        if not isinstance(data, dict) or ("sha" not in data and "object" not in data):
            raise GitHubError(f"GitHub answered {what} with something else")
        return data

    # -- the one place that talks HTTP ----------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        why: _Why,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        allow: Collection[int] = (),
        reconcile: Callable[[], requests.Response | None] | None = None,
    ) -> requests.Response:
        """Send with retries. Some requests must not be applied twice (a POST that creates, a
        PATCH that adds annotations): when one may have been applied although its answer was
        lost (a timeout or dropped connection after sending, a 5xx), ``reconcile`` runs before
        it is sent again. It looks for what the request would have made and returns the answer
        for that (after updating it where needed), or None when there is nothing: then sending
        again is safe. Without ``reconcile`` a request is simply repeated."""
        if not url.startswith(("http://", "https://")):
            url = self.api_url + url
        shown = f"{method} {urlsplit(url).path}"
        waited = 0.0
        last = ""
        unsure = False  # whether the previous try may have been applied without our knowing
        for attempt in range(1, self.max_tries + 1):
            if unsure and reconcile is not None:
                found = reconcile()
                if found is not None:
                    return found
            if method not in ("GET", "HEAD"):
                waited += self._space_mutation()
            unsure = False
            try:
                self.requests_made += 1
                resp = self._session.request(
                    method, url, params=params, json=json, auth=self._auth, timeout=self.timeout
                )
            except requests.ConnectTimeout:
                last, delay = f"no connection within {self.timeout:g}s", self._backoff(attempt)
            except requests.Timeout:
                last, delay = f"no answer within {self.timeout:g}s", self._backoff(attempt)
                unsure = True
            except requests.ConnectionError:
                last, delay = "the connection failed", self._backoff(attempt)
                unsure = True
            else:
                status = resp.status_code
                if status < 400 or status in allow:
                    return resp
                if status >= 500:
                    last, delay = f"GitHub answered {status}", self._backoff(attempt)
                    unsure = True
                elif status in (403, 429) and _is_rate_limit(resp):
                    last, delay = f"GitHub's rate limit ({status})", _rate_limit_wait(resp)
                    if waited + delay > self.max_wait_s:
                        raise GitHubError(
                            f"{shown}: GitHub's rate limit asks to wait {delay:.0f}s, more than "
                            f"the {self.max_wait_s:g}s mlci waits (waited {waited:.0f}s already)",
                            fix="re-run the job later, or make fewer API calls with this token",
                        )
                else:
                    raise _http_error(resp, shown, why)
            if attempt == self.max_tries:
                break
            if waited + delay > self.max_wait_s:
                found = reconcile() if unsure and reconcile is not None else None
                if found is not None:
                    return found
                raise GitHubError(
                    f"{shown}: gave up after {attempt} tries in {waited:.0f}s; last: {last}",
                    fix="GitHub or the network is having trouble; re-run the job later",
                )
            if self._on_retry:
                self._on_retry(
                    f"{last}; retrying in {delay:.1f}s (try {attempt + 1} of {self.max_tries})"
                )
            self._sleep(delay)
            waited += delay
        found = reconcile() if unsure and reconcile is not None else None
        if found is not None:
            return found
        raise GitHubError(
            f"{shown}: gave up after {self.max_tries} tries; last: {last}",
            fix="GitHub or the network is having trouble; re-run the job later",
        )

    def _pages(
        self,
        url: str,
        why: _Why,
        params: Mapping[str, Any],
        what: str,
        *,
        key: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every item of a listing across all pages (following ``Link: next`` on this host);
        ``key`` names the array where GitHub wraps it in an object."""
        next_url: str | None = url
        query: Mapping[str, Any] | None = params
        while next_url:
            resp = self._request("GET", next_url, why, params=query)
            page = _json(resp)
            items = page.get(key) if key and isinstance(page, dict) else page
            if not isinstance(items, list):
                raise GitHubError(
                    f"GitHub answered a {what} listing that is not a list: {next_url}",
                    fix="check the API URL setting (GITHUB_API_URL / mlci.github_api_url)",
                )
            yield from (item for item in items if isinstance(item, dict))
            next_url, query = resp.links.get("next", {}).get("url"), None
            if next_url:
                self._check_same_origin(next_url)

    def _backoff(self, attempt: int) -> float:
        return round(min(30.0, 2.0 ** (attempt - 1)) * self._random.uniform(0.5, 1.0), 3)

    def _space_mutation(self) -> float:
        """GitHub asks for at least a second between mutating requests."""
        now = time.monotonic()
        pause = 0.0
        if self._last_mutation is not None:
            pause = MUTATION_SPACING_S - (now - self._last_mutation)
            if pause > 0:
                self._sleep(pause)
            pause = max(pause, 0.0)
        self._last_mutation = now + pause
        return pause

    def _check_same_origin(self, url: str) -> None:
        ours, theirs = urlsplit(self.api_url), urlsplit(url)
        if (ours.scheme, ours.netloc) != (theirs.scheme, theirs.netloc):
            raise GitHubError(
                f"GitHub's next-page link points to another host ({theirs.netloc}); not following",
                fix="check the API URL setting (GITHUB_API_URL / mlci.github_api_url)",
            )


# -- helpers ----------------------------------------------------------------------------------


def _json(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise GitHubError(
            f"GitHub answered {resp.status_code} without JSON for {urlsplit(resp.url).path}",
            fix="check the API URL setting (GITHUB_API_URL / mlci.github_api_url)",
        ) from None


def _comment_order(comment: Mapping[str, Any]) -> tuple[str, int]:
    return (str(comment.get("created_at") or ""), int(comment.get("id") or 0))


def _newest_own(items: Iterable[dict[str, Any]], marker: str, login: str) -> dict[str, Any] | None:
    """The newest item (comment or issue) that ``login`` wrote and whose body carries
    ``marker``: the one sticky thing a hidden marker finds again, never someone else's."""
    newest: dict[str, Any] | None = None
    for item in items:
        user = item.get("user") or {}
        if user.get("login") != login or marker not in (item.get("body") or ""):
            continue
        if newest is None or _comment_order(item) >= _comment_order(newest):
            newest = item
    return newest


def _error_message(resp: requests.Response) -> tuple[str, list[str]]:
    try:
        data = resp.json()
    except ValueError:
        return resp.reason or "", []
    if not isinstance(data, dict):
        return resp.reason or "", []
    details = []
    for err in data.get("errors") or []:
        if isinstance(err, dict):
            text = err.get("message") or " ".join(
                str(err[k]) for k in ("resource", "field", "code") if err.get(k)
            )
            if text:
                details.append(str(text))
        elif err:
            details.append(str(err))
    return str(data.get("message") or resp.reason or ""), details


def _is_rate_limit(resp: requests.Response) -> bool:
    if resp.headers.get("x-ratelimit-remaining") == "0" or "retry-after" in resp.headers:
        return True
    return "rate limit" in _error_message(resp)[0].lower()


def _rate_limit_wait(resp: requests.Response) -> float:
    retry_after = resp.headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            pass
    reset = resp.headers.get("x-ratelimit-reset")
    if resp.headers.get("x-ratelimit-remaining") == "0" and reset:
        try:
            return max(float(reset) - time.time(), 0.0)
        except ValueError:
            pass
    return SECONDARY_LIMIT_WAIT_S


def _http_error(resp: requests.Response, shown: str, why: _Why) -> GitHubError:
    status = resp.status_code
    message, details = _error_message(resp)
    said = f"{message}: {'; '.join(details)}" if details else message
    if status == 401:
        return GitHubError(
            f"{shown}: GitHub rejected the token (401 {said}); it is invalid or expired",
            fix=f"set a valid token in the {_TOKEN_SECRET} secret",
        )
    if status == 403:
        need = why.permission or "the needed"
        fix = f"give the workflow `permissions: {need}`"
        if why.permission == "checks: write":
            fix += " (check runs need GITHUB_TOKEN or a GitHub App token; or use a commit status)"
        return GitHubError(f"{shown}: GitHub refused access to {why.target} (403 {said})", fix=fix)
    if status == 404:
        return GitHubError(
            f"{shown}: {why.target} was not found or is not visible to this token (404)",
            fix="check the repository and number, and that the token can see the repository",
        )
    if status == 422:
        return GitHubError(
            f"{shown}: GitHub refused the request (422 {said})",
            fix="this is a bug in mlci or an input it did not check; please report it",
        )
    return GitHubError(f"{shown}: GitHub answered {status} ({said}) for {why.target}")


def _check_body(body: str, what: str) -> None:
    if len(body) > COMMENT_LIMIT:
        raise GitHubError(
            f"the {what} is {len(body):,} characters; GitHub takes at most {COMMENT_LIMIT:,}",
            fix="shorten it (details are in the job summary)",
        )


def write_step_summary(path: str | Path, markdown: str) -> None:
    """Append to ``$GITHUB_STEP_SUMMARY``, keeping the file within GitHub's 1 MiB."""
    target = Path(path)
    used = target.stat().st_size if target.exists() else 0
    budget = SUMMARY_LIMIT - used
    data = markdown.encode("utf-8")
    if not data.endswith(b"\n"):
        data += b"\n"
    if len(data) > budget:
        from mlci.markdown import fit, utf8_size

        where = "the report file on the runner"
        data = fit(markdown, max(budget - 1, 0), where, size=utf8_size).encode("utf-8") + b"\n"
        data = data[: max(budget, 0)]
    if data:
        with target.open("ab") as fh:
            fh.write(data)


def write_outputs(path: str | Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to ``$GITHUB_OUTPUT`` (multi-line values with a random delimiter)."""
    lines = []
    for name, value in outputs.items():
        if not name or re.search(r"[\s=<]", name):
            raise ValueError(f"invalid step output name {name!r}")
        if "\n" in value or "\r" in value:
            delim = f"ghadelimiter_{uuid.uuid4()}"
            while delim in value:
                delim = f"ghadelimiter_{uuid.uuid4()}"
            lines.append(f"{name}<<{delim}\n{value}\n{delim}\n")
        else:
            lines.append(f"{name}={value}\n")
    with Path(path).open("a", encoding="utf-8") as fh:
        fh.write("".join(lines))


__all__ = [
    "CHECK_TEXT_LIMIT",
    "COMMENT_LIMIT",
    "MARKER_PREFIX",
    "SUMMARY_LIMIT",
    "Annotation",
    "CommentResult",
    "ContentsRefused",
    "GitHubClient",
    "marker_for",
    "write_outputs",
    "write_step_summary",
]
