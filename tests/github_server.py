"""A loopback fake of GitHub's REST API, for the endpoints mlci uses, plus the ``github`` fixture.

It answers like api.github.com: response shapes from GitHub's REST description, pagination with
absolute ``Link`` URLs (through ``/repositories/{id}/...`` as GitHub does), rate-limit headers,
GitHub's error bodies. Every request is recorded and checked against the vendored part of the
description (``tests/github/rest-subset.json``); each mismatch is kept in ``violations``.
Faults can be injected: an HTTP status, a dropped connection, an answer too slow to wait for, or
a request that is applied but whose answer is lost (``lose``).
"""

from __future__ import annotations

import itertools
import json
import math
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from github_git import GitApiError, GitStore

SPEC_PATH = Path(__file__).parent / "github" / "rest-subset.json"
DOCS = "https://docs.github.com/rest"
REPO = "octo/demo"
REPO_ID = 4242
USER_TOKEN = "ghp_userTOKEN0123456789abcdefXYZ"
INTEGRATION_TOKEN = "ghs_integrationTOKEN9876543210xyz"
BOT_LOGIN = "github-actions[bot]"
EPOCH = 1767225600  # 2026-01-01T00:00:00Z


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    raw: str


@dataclass
class Fault:
    method: str
    pattern: re.Pattern[str]
    times: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    mode: str = "status"  # "status" | "drop" | "hang" | "lose"
    seconds: float = 0.0


class ApiError(Exception):
    def __init__(self, status: int, message: str, errors: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors


def _iso(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(EPOCH + seconds))


def _template_regex(template: str) -> re.Pattern[str]:
    def part(m: re.Match[str]) -> str:
        multi = m.group(1) in ("sha", "ref", "path")  # x-multi-segment in the description
        return f"(?P<{m.group(1)}>.+)" if multi else f"(?P<{m.group(1)}>[^/]+)"

    return re.compile("^" + re.sub(r"\\\{(\w+)\\\}", part, re.escape(template)) + "$")


def _json_type_ok(value: Any, kind: str) -> bool:
    return {
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, (int, float)) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
    }.get(kind, True)


def validate(value: Any, schema: dict[str, Any], where: str = "") -> list[str]:
    """Errors of ``value`` against a (stripped) OpenAPI request schema."""
    errors: list[str] = []
    if value is None:
        return [] if schema.get("nullable") else [f"{where or 'body'} must not be null"]
    kind = schema.get("type")
    if isinstance(kind, str) and not _json_type_ok(value, kind):
        return [f"{where or 'body'} must be of type {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where} {value!r} is not one of {schema['enum']}")
    if isinstance(value, str) and len(value) > schema.get("maxLength", math.inf):
        errors.append(f"{where} is longer than {schema['maxLength']} characters")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", math.inf):
            errors.append(f"{where} has more than {schema['maxItems']} items")
        for i, item in enumerate(value):
            errors += validate(item, schema.get("items", {}), f"{where}/{i}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{where or 'body'} is missing required field {name!r}")
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                errors += validate(value[name], sub, f"{where}/{name}")
    if "anyOf" in schema and not any(not validate(value, s, where) for s in schema["anyOf"]):
        errors.append(f"{where or 'body'} matches none of the allowed forms")
    return errors


def check_response(value: Any, shape: dict[str, Any], where: str = "response") -> list[str]:
    """Errors of a response against the shallow shape vendored for it (our own self-check)."""
    if "oneOf" in shape:
        results = [check_response(value, s, where) for s in shape["oneOf"]]
        return [] if any(not r for r in results) else min(results, key=len)
    if shape.get("type") == "array":
        if not isinstance(value, list):
            return [f"{where} is not an array"]
        return [e for i, v in enumerate(value) for e in check_response(v, shape["items"], where)]
    if not isinstance(value, dict):
        return [f"{where} is not an object"]
    errors = [f"{where} lacks {name!r}" for name in shape.get("required", []) if name not in value]
    for name, prop in shape.get("properties", {}).items():
        if name not in value or (value[name] is None and prop.get("nullable")):
            continue
        kinds = prop.get("type") or []
        if kinds and not any(_json_type_ok(value[name], k) for k in kinds):
            errors.append(f"{where}.{name} is not {kinds}")
    return errors


class FakeGitHub:
    """GitHub's REST API for one repository (``octo/demo``), on a loopback port."""

    def __init__(self) -> None:
        self.spec: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
        self.routes = [(_template_regex(t), t, ops) for t, ops in self.spec["paths"].items()]
        self.url = ""
        self.repo = REPO
        self.token = USER_TOKEN
        self.integration_token = INTEGRATION_TOKEN
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.pulls: dict[int, dict[str, Any]] = {}
        self.check_runs: dict[int, dict[str, Any]] = {}
        self.statuses: list[dict[str, Any]] = []
        self.commit_comments: dict[str, list[dict[str, Any]]] = {}
        self.commit_pulls: dict[str, list[int]] = {}
        self.issues: dict[int, dict[str, Any]] = {}  # issue JSON by number (mlci monitor)
        self.dispatches: list[dict[str, Any]] = []  # workflow_dispatch requests received
        self.run_approvals: dict[int, list[dict[str, Any]]] = {}  # run id -> deployment reviews
        self.reviews: dict[int, list[dict[str, Any]]] = {}  # PR number -> reviews, oldest first
        self.used: dict[str, int] = {}
        self.faults: list[Fault] = []
        self._ids = itertools.count(1001)
        self._clock = itertools.count(60)
        self.lock = threading.RLock()
        self.reset_at = int(time.time()) + 3600
        self.add_token(USER_TOKEN, self.add_user("octocat"), limit=5000)
        self.add_token(INTEGRATION_TOKEN, self.add_user(BOT_LOGIN, kind="Bot"), limit=1000)
        self.add_user("someone-else")
        self.add_pull(7, head_sha="a" * 40)
        self.add_pull(8, head_sha="b" * 40)
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.git = GitStore(REPO)  # the Git Data API (tests/github_git.py)

    # -- life cycle -----------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        fake = self

        class Handler(_Handler):
            server_fake = fake

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._httpd = httpd
        self.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    # -- seeding --------------------------------------------------------------------------------

    def add_user(self, login: str, *, kind: str = "User") -> dict[str, Any]:
        uid = 1000 + len(self.users) + 1 if kind == "User" else 41898282
        base = f"{self.url or 'https://api.github.com'}/users/{login}"
        user = {
            "login": login,
            "id": uid,
            "node_id": f"MDQ6VXNlcj{uid}",
            "avatar_url": f"https://avatars.example/u/{uid}",
            "gravatar_id": "",
            "url": base,
            "html_url": f"https://github.com/{login}",
            "followers_url": f"{base}/followers",
            "following_url": f"{base}/following{{/other_user}}",
            "gists_url": f"{base}/gists{{/gist_id}}",
            "starred_url": f"{base}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{base}/subscriptions",
            "organizations_url": f"{base}/orgs",
            "repos_url": f"{base}/repos",
            "events_url": f"{base}/events{{/privacy}}",
            "received_events_url": f"{base}/received_events",
            "type": kind,
            "site_admin": False,
            "user_view_type": "public",
        }
        self.users[login] = user
        return user

    def add_token(self, token: str, user: dict[str, Any], *, limit: int = 5000) -> None:
        self.tokens[token] = {"user": user, "limit": limit}

    def add_pull(
        self, number: int, *, head_sha: str, head_repo: str | None = REPO
    ) -> dict[str, Any]:
        """A PR; ``head_repo`` is the fork it comes from (None: a deleted fork)."""
        self.pulls[number] = {"number": number, "head_sha": head_sha, "head_repo": head_repo}
        self.comments.setdefault(number, [])
        return self.pulls[number]

    def approve_run(
        self,
        run_id: int,
        login: str,
        *,
        environment: str = "model-release",
        state: str = "approved",
    ) -> None:
        """A reviewer of ``environment`` approved (or rejected) workflow run ``run_id``."""
        user = self.users.get(login) or self.add_user(login)
        env = {"id": 161088068, "node_id": "MDExOkVudmlyb25tZW50MTYxMDg4MDY4", "name": environment,
               "url": f"{self.url}/repos/{REPO}/environments/{environment}",
               "html_url": f"https://github.com/{REPO}/deployments/activity_log?environments_filter={environment}",
               "created_at": _iso(0), "updated_at": _iso(0)}  # fmt: skip
        self.run_approvals.setdefault(run_id, []).append(
            {"state": state, "comment": "ship it", "environments": [env], "user": user}
        )

    def add_review(self, pr: int, login: str, state: str = "APPROVED") -> None:
        """``login`` reviewed PR ``pr`` (``APPROVED``, ``CHANGES_REQUESTED``, ``COMMENTED``)."""
        user = self.users.get(login) or self.add_user(login)
        rid = next(self._ids)
        html = f"https://github.com/{REPO}/pull/{pr}"
        self.reviews.setdefault(pr, []).append(
            {
                "id": rid,
                "node_id": f"PRR_{rid}",
                "user": user,
                "body": "",
                "state": state,
                "html_url": f"{html}#pullrequestreview-{rid}",
                "pull_request_url": f"{self.url}/repos/{REPO}/pulls/{pr}",
                "_links": {"html": {"href": html}, "pull_request": {"href": html}},
                "submitted_at": _iso(next(self._clock)),
                "commit_id": "c" * 40,
                "author_association": "MEMBER",
            }
        )

    def merge_pull(self, number: int, sha: str) -> None:
        """PR ``number`` was merged as commit ``sha`` (what ``/commits/{sha}/pulls`` lists)."""
        self.pulls[number]["merged_as"] = sha
        self.commit_pulls.setdefault(sha, []).append(number)

    def add_comment(self, pr: int, body: str, *, user: str = "someone-else") -> dict[str, Any]:
        with self.lock:
            author = self.users.get(user) or self.add_user(user)
            cid = next(self._ids)
            stamp = _iso(next(self._clock))
            comment = {
                "id": cid,
                "node_id": f"IC_kwDO{cid}",
                "url": f"{self.url}/repos/{REPO}/issues/comments/{cid}",
                "html_url": f"https://github.com/{REPO}/pull/{pr}#issuecomment-{cid}",
                "issue_url": f"{self.url}/repos/{REPO}/issues/{pr}",
                "body": body,
                "user": author,
                "created_at": stamp,
                "updated_at": stamp,
                "author_association": "MEMBER" if author["type"] == "User" else "NONE",
                "performed_via_github_app": None,
            }
            self.comments.setdefault(pr, []).append(comment)
            return comment

    def add_comments(
        self, pr: int, count: int, *, user: str = "someone-else", body: str = "comment {i}"
    ) -> list[dict[str, Any]]:
        return [self.add_comment(pr, body.format(i=i), user=user) for i in range(count)]

    def add_commit_comment(
        self, sha: str, body: str, *, user: str = "someone-else"
    ) -> dict[str, Any]:
        author = self.users.get(user) or self.add_user(user)
        return dict(self._new_commit_comment(sha, body, author)[2])

    # -- faults ---------------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: Any = None,
        times: int = 1,
    ) -> None:
        self.faults.append(
            Fault(method.upper(), re.compile(path_regex), times, status, dict(headers or {}), body)
        )

    def drop(self, method: str, path_regex: str, *, times: int = 1) -> None:
        """Close the connection without answering."""
        self.faults.append(Fault(method.upper(), re.compile(path_regex), times, mode="drop"))

    def hang(self, method: str, path_regex: str, *, seconds: float = 1.5, times: int = 1) -> None:
        """Answer only after ``seconds`` (longer than the client's timeout)."""
        self.faults.append(
            Fault(method.upper(), re.compile(path_regex), times, mode="hang", seconds=seconds)
        )

    def lose(
        self, method: str, path_regex: str, *, seconds: float | None = None, times: int = 1
    ) -> None:
        """Apply the request, then lose the answer: close the connection without one, or (with
        ``seconds``) send it only after that long, past the client's timeout."""
        self.faults.append(
            Fault(method.upper(), re.compile(path_regex), times, mode="lose", seconds=seconds or 0)
        )

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.times > 0 and fault.method == method and fault.pattern.search(path):
                    fault.times -= 1
                    return fault
        return None

    # -- queries for tests ----------------------------------------------------------------------

    def requests_to(self, method: str, path_regex: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.search(path_regex, r.path)]

    def rate_headers(self, token: str | None) -> dict[str, str]:
        info = self.tokens.get(token or "", {"limit": 60})
        used = self.used.get(token or "", 0)
        return {
            "x-ratelimit-limit": str(info["limit"]),
            "x-ratelimit-remaining": str(max(info["limit"] - used, 0)),
            "x-ratelimit-reset": str(self.reset_at),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }

    # -- the API --------------------------------------------------------------------------------

    def route(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]]:
        """(template, operation, path params) or ApiError 404 like GitHub."""
        m = re.match(rf"^/repositories/{REPO_ID}(/.*)$", path)
        if m:
            path = f"/repos/{REPO}{m.group(1)}"
        for regex, template, ops in self.routes:
            found = regex.match(path)
            if found and method.lower() in ops:
                return template, ops[method.lower()], found.groupdict()
        self.violations.append(f"{method} {path}: no such operation in GitHub's REST description")
        raise ApiError(404, "Not Found")

    def check_request(
        self, op: dict[str, Any], params: dict[str, str], query: dict[str, list[str]], body: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Path/query parameters converted, or ApiError like GitHub; violations recorded."""
        where = op["operationId"]
        values: dict[str, Any] = {}
        known = {p["name"]: p for p in op["parameters"]}
        for name, raw in params.items():
            if known.get(name, {}).get("schema", {}).get("type") == "integer":
                if not raw.isdigit():
                    self.violations.append(f"{where}: path parameter {name}={raw!r} not integer")
                    raise ApiError(404, "Not Found")
                values[name] = int(raw)
            else:
                values[name] = raw
        for name, raws in query.items():
            spec = known.get(name)
            if spec is None or spec["in"] != "query":
                self.violations.append(f"{where}: unknown query parameter {name!r}")
                continue
            if spec["schema"].get("type") == "integer":
                if not raws[-1].isdigit():
                    self.violations.append(f"{where}: {name}={raws[-1]!r} is not an integer")
                    raise ApiError(422, f"Invalid value for {name}")
                values[name] = int(raws[-1])
        if values.get("per_page", 0) > 100:
            # GitHub caps per_page at 100 silently; a client that asks for more is wrong.
            self.violations.append(f"{where}: per_page={values['per_page']} > 100")
            values["per_page"] = 100
        if "requestBody" in op:
            if body is None and op["requestBody"]["required"]:
                self.violations.append(f"{where}: request body missing")
                raise ApiError(400, "Problems parsing JSON")
            errors = validate(body, op["requestBody"]["schema"])
            if errors:
                self.violations.append(f"{where}: " + "; ".join(errors))
                raise ApiError(
                    422,
                    "Invalid request.\n\n" + "\n".join(errors),
                    [
                        {"resource": where.split("/")[0], "code": "invalid", "message": e}
                        for e in errors
                    ],
                )
        return values, body if isinstance(body, dict) else {}

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: str
    ) -> tuple[int, dict[str, str], Any]:
        split = urlsplit(target)
        path, query = split.path, parse_qs(split.query, keep_blank_values=True)
        token = _token_of(headers.get("authorization", ""))
        body: Any = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        with self.lock:
            self.requests.append(Recorded(method, path, query, headers, body, raw))
            if token in self.tokens:
                self.used[token] = self.used.get(token, 0) + 1
        if headers.get("accept") != "application/vnd.github+json":
            self.violations.append(f"{method} {path}: Accept is {headers.get('accept')!r}")
        if headers.get("x-github-api-version") != "2022-11-28":
            self.violations.append(f"{method} {path}: no X-GitHub-Api-Version 2022-11-28")
        if not headers.get("user-agent"):
            self.violations.append(f"{method} {path}: no User-Agent")
            raise ApiError(
                403,
                "Request forbidden by administrative rules. "
                "Please make sure your request has a User-Agent header",
            )
        if raw and body is None:
            self.violations.append(f"{method} {path}: body is not JSON")
            raise ApiError(400, "Problems parsing JSON")
        template, op, params = self.route(method, path)
        values, data = self.check_request(op, params, query, body)
        if token not in self.tokens:
            raise ApiError(401, "Requires authentication" if not token else "Bad credentials")
        if "owner" in values and f"{values['owner']}/{values['repo']}".lower() != REPO:
            raise ApiError(404, "Not Found")
        user = self.tokens[token]["user"]
        if "/git/" in template or template.endswith("/contents/{path}"):
            status, extra, answer = self._git_answer(method, template, values, data, query)
        else:
            status, extra, answer = self._answer(method, template, values, data, user, query)
        code = next((c for c in op["responses"] if c.startswith("2")), "200")
        responses = op["responses"]
        # a documented status answers with its own shape (204: none at all)
        shape = responses[str(status)] if str(status) in responses else responses.get(code) or {}
        if shape:
            for problem in check_response(answer, shape, op["operationId"]):
                self.violations.append(f"fake answered off-spec: {problem}")
        return status, extra, answer

    def _git_answer(
        self,
        method: str,
        template: str,
        v: dict[str, Any],
        data: dict[str, Any],
        query: dict[str, list[str]],
    ) -> tuple[int, dict[str, str], Any]:
        self.git.url = self.url
        ref = (query.get("ref") or ["main"])[-1]
        if "recursive" in query:  # git/trees/{tree_sha}: any value asks for every entry
            v = {**v, "recursive": True}
        try:
            status, answer = self.git.answer(method, template, v, data, ref)
        except GitApiError as exc:
            raise ApiError(exc.status, exc.message) from None
        return status, {}, answer

    def _answer(
        self,
        method: str,
        template: str,
        v: dict[str, Any],
        data: dict[str, Any],
        user: dict[str, Any],
        query: dict[str, list[str]],
    ) -> tuple[int, dict[str, str], Any]:
        is_bot = user["type"] == "Bot"
        handled = self._monitor_answer(method, template, v, data, user, query)
        if handled is not None:
            return handled
        if template == "/user":
            if is_bot:
                raise ApiError(403, "Resource not accessible by integration")
            return (
                200,
                {},
                dict(
                    user,
                    name=None,
                    company=None,
                    blog="",
                    location=None,
                    email=None,
                    hireable=None,
                    bio=None,
                    public_repos=1,
                    public_gists=0,
                    followers=0,
                    following=0,
                    created_at=_iso(0),
                    updated_at=_iso(0),
                ),
            )
        if template.endswith("/issues/{issue_number}/comments"):
            pr = v["issue_number"]
            if pr not in self.pulls and pr not in self.issues:
                raise ApiError(404, "Not Found")
            if method == "GET":
                return self._page(pr, v.get("per_page", 30), v.get("page", 1))
            self._check_length(data["body"])
            return 201, {}, self.add_comment(pr, data["body"], user=user["login"])
        if template.endswith("/issues/comments/{comment_id}"):
            comment = next(
                (c for cs in self.comments.values() for c in cs if c["id"] == v["comment_id"]),
                None,
            )
            if comment is None:
                raise ApiError(404, "Not Found")
            if comment["user"]["login"] != user["login"] and is_bot:
                raise ApiError(403, "Resource not accessible by integration")
            self._check_length(data["body"])
            comment["body"] = data["body"]
            comment["updated_at"] = _iso(next(self._clock))
            return 200, {}, comment
        if template.endswith("/actions/runs/{run_id}/approvals"):
            return 200, {}, list(self.run_approvals.get(v["run_id"], []))
        if template.endswith("/pulls/{pull_number}/reviews"):
            if v["pull_number"] not in self.pulls:
                raise ApiError(404, "Not Found")
            found = list(self.reviews.get(v["pull_number"], []))
            return self._paged(found, v, f"pulls/{v['pull_number']}/reviews")
        if template.endswith("/pulls/{pull_number}"):
            pull = self.pulls.get(v["pull_number"])
            if pull is None:
                raise ApiError(404, "Not Found")
            return 200, {}, self._pull_json(pull)
        if template.endswith("/commits/{ref}/check-runs"):
            return self._list_check_runs(v)
        if template.endswith("/check-runs"):
            if not is_bot:
                raise ApiError(403, "You must authenticate via a GitHub App.")
            return 201, {}, self._new_check_run(data)
        if template.endswith("/check-runs/{check_run_id}"):
            run = self.check_runs.get(v["check_run_id"])
            if run is None:
                raise ApiError(404, "Not Found")
            if method == "GET":
                return 200, {}, run["json"]
            out = data.get("output") or {}
            run["annotations"] += out.get("annotations", [])
            run["json"]["output"].update(
                {k: out[k] for k in ("title", "summary", "text") if k in out},
                annotations_count=len(run["annotations"]),
            )
            return 200, {}, run["json"]
        if template.endswith("/statuses/{sha}"):
            sid = next(self._ids)
            status = {
                "url": f"{self.url}/repos/{REPO}/statuses/{v['sha']}",
                "avatar_url": user["avatar_url"],
                "id": sid,
                "node_id": f"SC_{sid}",
                "state": data["state"],
                "description": data.get("description"),
                "target_url": data.get("target_url"),
                "context": data.get("context", "default"),
                "created_at": _iso(next(self._clock)),
                "updated_at": _iso(next(self._clock)),
                "creator": user,
            }
            if status["description"] and len(status["description"]) > 140:
                raise ApiError(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "Status",
                            "code": "custom",
                            "field": "description",
                            "message": "description is too long (maximum is 140 characters)",
                        }
                    ],
                )
            self.statuses.append(status)
            return 201, {}, status
        if template.endswith("/commits/{commit_sha}/pulls"):
            return (
                200,
                {},
                [self._merged_pull_json(n) for n in self.commit_pulls.get(v["commit_sha"], [])],
            )
        if template.endswith("/commits/{commit_sha}/comments"):
            if method == "GET":
                found = list(self.commit_comments.get(v["commit_sha"], []))
                return self._paged(found, v, f"commits/{v['commit_sha']}/comments")
            return self._new_commit_comment(v["commit_sha"], data["body"], user)
        if template.endswith("/comments/{comment_id}"):
            return self._update_commit_comment(v["comment_id"], data["body"], user, is_bot)
        raise ApiError(404, "Not Found")

    # -- mlci monitor: issues, pull requests on a branch, workflow dispatches -------------------

    def _next_number(self) -> int:
        """Issues and pull requests share one sequence of numbers, as on GitHub."""
        return max([*self.pulls, *self.issues, 0]) + 1

    def _monitor_answer(
        self,
        method: str,
        template: str,
        v: dict[str, Any],
        data: dict[str, Any],
        user: dict[str, Any],
        query: dict[str, list[str]],
    ) -> tuple[int, dict[str, str], Any] | None:
        """The routes mlci monitor uses; None for any other route."""
        v = {k: vals[-1] for k, vals in query.items()} | v  # string query values too
        if template.endswith("/{repo}/issues"):
            if method == "GET":
                return self._list_issues(v)
            self._check_length(data.get("body") or "")
            return 201, {}, self._new_issue(data, user)
        if template.endswith("/issues/{issue_number}") and method == "PATCH":
            issue = self.issues.get(v["issue_number"])
            if issue is None:
                raise ApiError(404, "Not Found")
            return 200, {}, self._update_issue(issue, data, user)
        if template.endswith("/{repo}/pulls"):
            if method == "GET":
                return self._list_pulls(v)
            return 201, {}, self._new_pull(data)
        if template.endswith("/pulls/{pull_number}") and method == "PATCH":
            pull = self.pulls.get(v["pull_number"])
            if pull is None:
                raise ApiError(404, "Not Found")
            pull.update({k: data[k] for k in ("title", "body", "state") if k in data})
            return 200, {}, self._pull_json(pull)
        if template.endswith("/dispatches"):
            self.dispatches.append({"workflow_id": v["workflow_id"], **data})
            return 204, {}, None
        return None

    def _new_issue(self, data: dict[str, Any], user: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            n = self._next_number()
            api = f"{self.url}/repos/{REPO}/issues/{n}"
            stamp = _iso(next(self._clock))
            issue = {
                "id": 5000 + n,
                "node_id": f"I_{n}",
                "url": api,
                "repository_url": f"{self.url}/repos/{REPO}",
                "labels_url": f"{api}/labels{{/name}}",
                "comments_url": f"{api}/comments",
                "events_url": f"{api}/events",
                "html_url": f"https://github.com/{REPO}/issues/{n}",
                "number": n,
                "state": "open",
                "state_reason": None,
                "title": data["title"],
                "body": data.get("body"),
                "user": user,
                "labels": [],
                "assignee": None,
                "assignees": [],
                "milestone": None,
                "locked": False,
                "comments": 0,
                "created_at": stamp,
                "updated_at": stamp,
                "closed_at": None,
                "author_association": "MEMBER" if user["type"] == "User" else "NONE",
            }
            self.issues[n] = issue
            self.comments.setdefault(n, [])
            return issue

    def _update_issue(
        self, issue: dict[str, Any], data: dict[str, Any], user: dict[str, Any]
    ) -> dict[str, Any]:
        if "body" in data:
            self._check_length(data["body"] or "")
        stamp = _iso(next(self._clock))
        for key in ("title", "body"):
            if key in data:
                issue[key] = data[key]
        state = data.get("state")
        if state == "closed" and issue["state"] == "open":
            issue.update(state="closed", closed_at=stamp)
            issue["state_reason"] = data.get("state_reason") or "completed"
        elif state == "open" and issue["state"] == "closed":
            issue.update(state="open", closed_at=None, state_reason="reopened")
        issue["updated_at"] = stamp
        issue["comments"] = len(self.comments.get(issue["number"], []))
        return issue

    def _list_issues(self, v: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        """``GET /issues``: issues and pull requests, newest first (GitHub's default)."""
        state = v.get("state", "open")
        found = [
            dict(i, comments=len(self.comments.get(i["number"], [])))
            for i in self.issues.values()
            if state == "all" or i["state"] == state
        ]
        found += [
            {
                **{k: p[k] for k in ("url", "id", "node_id", "html_url", "number", "state")},
                **{k: p[k] for k in ("title", "body", "user", "labels", "assignee", "locked")},
                **{k: p[k] for k in ("milestone", "created_at", "updated_at", "closed_at")},
                "repository_url": f"{self.url}/repos/{REPO}",
                "labels_url": f"{p['issue_url']}/labels{{/name}}",
                "comments_url": p["comments_url"],
                "events_url": f"{p['issue_url']}/events",
                "comments": len(self.comments.get(p["number"], [])),
                "pull_request": {"url": p["url"], "html_url": p["html_url"]},
            }
            for p in map(self._pull_json, self.pulls.values())
            if state == "all" or p["state"] == state
        ]
        found.sort(key=lambda i: i["number"], reverse=v.get("direction", "desc") == "asc")
        return self._paged(found, v, "issues")

    def _list_pulls(self, v: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        state = v.get("state", "open")
        owner = REPO.split("/")[0]
        pulls = [
            self._pull_json(p)
            for p in self.pulls.values()
            if (state == "all" or p.get("state", "open") == state)
            and ("head" not in v or v["head"] == f"{owner}:{p.get('head_ref', '')}")
        ]
        return self._paged(pulls, v, "pulls")

    def _new_pull(self, data: dict[str, Any]) -> dict[str, Any]:
        head, base = str(data["head"]), str(data["base"])
        if head == base:
            invalid = [{"resource": "PullRequest", "code": "invalid", "field": "head"}]
            raise ApiError(422, "Validation Failed", invalid)
        owner = REPO.split("/")[0]
        for p in self.pulls.values():
            if p.get("head_ref") == head.removeprefix(f"{owner}:") and p.get("state") == "open":
                message = f"A pull request already exists for {owner}:{head}."
                raise ApiError(
                    422, "Validation Failed", [{"resource": "PullRequest", "message": message}]
                )
        with self.lock:
            n = self._next_number()
            pull = self.add_pull(n, head_sha="c" * 40)
            pull.update(
                title=data.get("title", ""),
                body=data.get("body"),
                state="open",
                head_ref=head.removeprefix(f"{owner}:"),
                base_ref=base,
            )
            return self._pull_json(pull)

    def _paged(
        self, items: list[dict[str, Any]], v: dict[str, Any], what: str
    ) -> tuple[int, dict[str, str], Any]:
        per_page, page = max(v.get("per_page", 30), 1), v.get("page", 1)
        last = max(math.ceil(len(items) / per_page), 1)
        headers = {}
        if page < last:
            keep = "&".join(f"{k}={v[k]}" for k in ("state", "head", "sort", "direction") if k in v)
            base = f"{self.url}/repositories/{REPO_ID}/{what}?{keep}&per_page={per_page}&page="
            headers["Link"] = f'<{base}{page + 1}>; rel="next", <{base}{last}>; rel="last"'
        return 200, headers, items[(page - 1) * per_page : page * per_page]

    def _list_check_runs(self, v: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        """``GET /commits/{ref}/check-runs``: a commit SHA as ref; ``filter=latest`` (GitHub's
        default) keeps the newest run of each name."""
        runs = [
            r["json"]
            for r in self.check_runs.values()
            if r["json"]["head_sha"] == v["ref"]
            and v.get("check_name", r["json"]["name"]) == r["json"]["name"]
            and v.get("status", r["json"]["status"]) == r["json"]["status"]
        ]
        runs.sort(key=lambda run: run["id"], reverse=True)
        if v.get("filter", "latest") == "latest":
            newest: dict[str, dict[str, Any]] = {}
            for run in runs:
                newest.setdefault(run["name"], run)
            runs = list(newest.values())
        per_page, page = max(v.get("per_page", 30), 1), v.get("page", 1)
        last = max(math.ceil(len(runs) / per_page), 1)
        headers = {}
        if page < last:
            query = "&".join(f"{k}={v[k]}" for k in ("check_name", "status", "filter") if k in v)
            base = f"{self.url}/repositories/{REPO_ID}/commits/{v['ref']}/check-runs"
            headers["Link"] = (
                f'<{base}?{query}&per_page={per_page}&page={page + 1}>; rel="next", '
                f'<{base}?{query}&per_page={per_page}&page={last}>; rel="last"'
            )
        items = runs[(page - 1) * per_page : page * per_page]
        return 200, headers, {"total_count": len(runs), "check_runs": items}

    def _merged_pull_json(self, number: int) -> dict[str, Any]:
        pull = self.pulls[number]
        merged = dict(self._pull_json(pull), state="closed", merged=True)
        merged.update(closed_at=_iso(2), merged_at=_iso(2), merge_commit_sha=pull["merged_as"])
        return merged

    def _new_commit_comment(
        self, sha: str, body: str, user: dict[str, Any]
    ) -> tuple[int, dict[str, str], Any]:
        if not re.fullmatch(r"[0-9a-f]{40}", sha):
            raise ApiError(422, f"No commit found for SHA: {sha}")
        self._check_length(body)
        with self.lock:
            cid = next(self._ids)
            stamp = _iso(next(self._clock))
            comment = {
                "html_url": f"https://github.com/{REPO}/commit/{sha}#commitcomment-{cid}",
                "url": f"{self.url}/repos/{REPO}/comments/{cid}",
                "id": cid,
                "node_id": f"CC_kwDO{cid}",
                "body": body,
                "path": None,
                "position": None,
                "line": None,
                "commit_id": sha,
                "user": user,
                "created_at": stamp,
                "updated_at": stamp,
                "author_association": "MEMBER" if user["type"] == "User" else "NONE",
            }
            self.commit_comments.setdefault(sha, []).append(comment)
        return 201, {"Location": comment["url"]}, comment

    def _update_commit_comment(
        self, cid: int, body: str, user: dict[str, Any], is_bot: bool
    ) -> tuple[int, dict[str, str], Any]:
        comment = next(
            (c for cs in self.commit_comments.values() for c in cs if c["id"] == cid), None
        )
        if comment is None:
            raise ApiError(404, "Not Found")
        if comment["user"]["login"] != user["login"] and is_bot:
            raise ApiError(403, "Resource not accessible by integration")
        self._check_length(body)
        comment["body"] = body
        comment["updated_at"] = _iso(next(self._clock))
        return 200, {}, comment

    def _check_length(self, body: str) -> None:
        if len(body) > 65536:
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "IssueComment",
                        "code": "unprocessable",
                        "field": "data",
                        "message": "Body is too long (maximum is 65536 characters)",
                    }
                ],
            )

    def _page(self, pr: int, per_page: int, page: int) -> tuple[int, dict[str, str], Any]:
        per_page = max(per_page, 1)
        comments = self.comments[pr]
        last = max(math.ceil(len(comments) / per_page), 1)
        items = comments[(page - 1) * per_page : page * per_page]
        base = f"{self.url}/repositories/{REPO_ID}/issues/{pr}/comments?per_page={per_page}&page="
        rels = []
        if page < last:
            rels += [f'<{base}{page + 1}>; rel="next"', f'<{base}{last}>; rel="last"']
        if page > 1:
            rels += [f'<{base}{min(page - 1, last)}>; rel="prev"', f'<{base}1>; rel="first"']
        return 200, ({"Link": ", ".join(rels)} if rels else {}), items

    def _new_check_run(self, data: dict[str, Any]) -> dict[str, Any]:
        rid = next(self._ids)
        out = data.get("output") or {}
        stamp = _iso(next(self._clock))
        app = {
            "id": 15368,
            "slug": "github-actions",
            "node_id": "MDM6QXBwMTUzNjg",
            "owner": self.users[BOT_LOGIN],
            "name": "GitHub Actions",
            "description": "",
            "external_url": "https://help.github.com/en/actions",
            "html_url": "https://github.com/apps/github-actions",
            "created_at": _iso(0),
            "updated_at": _iso(0),
            "permissions": {},
            "events": [],
        }
        run = {
            "id": rid,
            "node_id": f"CR_{rid}",
            "head_sha": data["head_sha"],
            "name": data["name"],
            "external_id": data.get("external_id", ""),
            "url": f"{self.url}/repos/{REPO}/check-runs/{rid}",
            "html_url": f"https://github.com/{REPO}/runs/{rid}",
            "details_url": data.get("details_url", f"https://github.com/{REPO}/runs/{rid}"),
            "status": data.get("status", "completed" if "conclusion" in data else "queued"),
            "conclusion": data.get("conclusion"),
            "started_at": data.get("started_at", stamp),
            "completed_at": stamp if "conclusion" in data else None,
            "output": {
                "title": out.get("title"),
                "summary": out.get("summary"),
                "text": out.get("text"),
                "annotations_count": len(out.get("annotations", [])),
                "annotations_url": f"{self.url}/repos/{REPO}/check-runs/{rid}/annotations",
            },
            "check_suite": {"id": rid + 1},
            "app": app,
            "pull_requests": [],
        }
        self.check_runs[rid] = {"json": run, "annotations": list(out.get("annotations", []))}
        return run

    def _head_repo(self, name: str | None, own: dict[str, Any]) -> dict[str, Any] | None:
        if name is None or name == REPO:
            return None if name is None else own
        owner_login, _, short = name.partition("/")
        owner = self.users.get(owner_login) or self.add_user(owner_login)
        return {
            **own,
            "id": REPO_ID + 1,
            "name": short,
            "full_name": name,
            "owner": owner,
            "html_url": f"https://github.com/{name}",
            "url": f"{self.url}/repos/{name}",
        }

    def _pull_json(self, pull: dict[str, Any]) -> dict[str, Any]:
        n = pull["number"]
        api = f"{self.url}/repos/{REPO}"
        owner = self.users["octocat"]
        repo = {
            "id": REPO_ID,
            "name": "demo",
            "full_name": REPO,
            "owner": owner,
            "private": False,
            "html_url": f"https://github.com/{REPO}",
            "url": api,
        }
        return {
            "url": f"{api}/pulls/{n}",
            "id": 9000 + n,
            "node_id": f"PR_{n}",
            "html_url": f"https://github.com/{REPO}/pull/{n}",
            "diff_url": f"https://github.com/{REPO}/pull/{n}.diff",
            "patch_url": f"https://github.com/{REPO}/pull/{n}.patch",
            "issue_url": f"{api}/issues/{n}",
            "commits_url": f"{api}/pulls/{n}/commits",
            "review_comments_url": f"{api}/pulls/{n}/comments",
            "review_comment_url": f"{api}/pulls/comments{{/number}}",
            "comments_url": f"{api}/issues/{n}/comments",
            "statuses_url": f"{api}/statuses/{pull['head_sha']}",
            "number": n,
            "state": pull.get("state", "open"),
            "locked": False,
            "title": pull.get("title", f"Change {n}"),
            "user": self.users[pull.get("author", "octocat")],
            "body": pull.get("body"),
            "labels": [],
            "milestone": None,
            "active_lock_reason": None,
            "created_at": _iso(0),
            "updated_at": _iso(1),
            "closed_at": None,
            "merged_at": None,
            "merge_commit_sha": None,
            "assignee": None,
            "assignees": [],
            "requested_reviewers": [],
            "requested_teams": [],
            "head": {
                "label": f"octo:{pull.get('head_ref', f'feature-{n}')}",
                "ref": pull.get("head_ref", f"feature-{n}"),
                "sha": pull["head_sha"],
                "user": owner,
                "repo": self._head_repo(pull.get("head_repo", REPO), repo),
            },
            "base": {
                "label": f"octo:{pull.get('base_ref', 'main')}",
                "ref": pull.get("base_ref", "main"),
                "sha": "0" * 40,
                "user": owner,
                "repo": repo,
            },
            "_links": {"self": {"href": f"{api}/pulls/{n}"}},
            "author_association": "OWNER",
            "auto_merge": None,
            "draft": False,
            "merged": False,
            "mergeable": True,
            "rebaseable": True,
            "mergeable_state": "clean",
            "merged_by": None,
            "comments": len(self.comments[n]),
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": 1,
            "additions": 1,
            "deletions": 0,
            "changed_files": 1,
        }


def _token_of(authorization: str) -> str | None:
    scheme, _, value = authorization.partition(" ")
    return value.strip() if scheme.lower() in ("bearer", "token") and value.strip() else None


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeGitHub
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        fake = self.server_fake
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        path = urlsplit(self.path).path
        fault = fake._take_fault(self.command, path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        token = _token_of(headers.get("authorization", ""))
        if fault and fault.mode == "drop":
            fake.requests.append(Recorded(self.command, path, {}, headers, None, raw))
            self.close_connection = True
            return
        if fault and fault.mode == "hang":
            time.sleep(fault.seconds)
        if fault and fault.mode == "lose":
            self._apply_and_lose(fault, token, headers, raw)
            return
        if fault and fault.mode == "status":
            fake.requests.append(
                Recorded(
                    self.command, path, parse_qs(urlsplit(self.path).query), headers, None, raw
                )
            )
            body = fault.body
            if body is None:
                body = {
                    "message": _reason(fault.status),
                    "documentation_url": DOCS,
                    "status": str(fault.status),
                }
            extra = fake.rate_headers(token) | fault.headers
            self._reply(fault.status, extra, body)
            return
        try:
            status, extra, body = fake.handle(self.command, self.path, headers, raw)
        except ApiError as exc:
            status, extra = exc.status, {}
            body = {"message": exc.message, "documentation_url": DOCS, "status": str(status)}
            if exc.errors is not None:
                body["errors"] = exc.errors
        self._reply(status, fake.rate_headers(token) | extra, body)

    def _apply_and_lose(
        self, fault: Fault, token: str | None, headers: dict[str, str], raw: str
    ) -> None:
        fake = self.server_fake
        try:
            status, extra, body = fake.handle(self.command, self.path, headers, raw)
        except ApiError as exc:
            status, extra, body = exc.status, {}, {"message": exc.message}
        if not fault.seconds:
            self.close_connection = True  # applied; the connection drops before any answer
            return
        time.sleep(fault.seconds)  # the client has given up waiting by now
        self._reply(status, fake.rate_headers(token) | extra, body)

    def _reply(self, status: int, headers: dict[str, str], body: Any) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-GitHub-Api-Version-Selected", "2022-11-28")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    """A started fake GitHub (``.url``, ``.repo``, ``.token``, ``.integration_token``)."""
    server = FakeGitHub().start()
    try:
        yield server
    finally:
        server.stop()
