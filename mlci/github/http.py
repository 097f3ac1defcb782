"""The one place mlci talks HTTP to GitHub: auth and API-version headers, retries with backoff on
5xx and network errors, waits on rate limits within a bound (said on the console through
``on_retry``), spacing of mutating requests, pagination by ``Link`` headers, and errors that
name the fix. The token is only ever put in the ``Authorization`` header, and only sent to the
configured API URL.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.auth import AuthBase

from mlci.errors import GitHubError
from mlci.limits import COMMENT_LIMIT

API_VERSION = "2022-11-28"
FALLBACK_IDENTITY = "github-actions[bot]"
MAX_TRIES = 5
MUTATION_SPACING_S = 1.0
# GitHub asks for a second between mutating requests when a client makes "a large number" of
# them; a job's first few (its comment, check run, status, a plot commit) go one after another.
MUTATION_BURST = 6
SECONDARY_LIMIT_WAIT_S = 60.0

_TOKEN_SECRET = "GITHUB_TOKEN (or MLCI_GITHUB_TOKEN)"


@dataclass(frozen=True)
class CommentResult:
    id: int
    url: str
    created: bool


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
class Why:
    """What a request is for, so an error can say which resource and which permission."""

    target: str
    permission: str | None = None


class HttpClient:
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
        self._mutations = 0  # mutating requests sent (tries included)
        self._random = random.Random()

    def __repr__(self) -> str:
        return f"GitHubClient(api_url={self.api_url!r}, repository={self.repository!r})"

    # -- public API ---------------------------------------------------------------------------

    def identity(self) -> str:
        """The login the token acts as; ``github-actions[bot]`` for an integration token."""
        if self._identity is None:
            resp = self._request("GET", "/user", Why("the authenticated user"), allow=(401, 403))
            if resp.status_code in (401, 403):
                # GITHUB_TOKEN cannot read /user ("Resource not accessible by integration").
                self._identity = FALLBACK_IDENTITY
            else:
                self._identity = str(json_body(resp)["login"])
        return self._identity

    # -- the one place that talks HTTP ----------------------------------------------------------

    def _request(
        self,
        method: str,
        url: str,
        why: Why,
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
            if attempt == self.max_tries or waited + delay > self.max_wait_s:
                break  # out of tries, or of time to wait for the next one
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
            f"{shown}: gave up after {attempt} tries in {waited:.0f}s; last: {last}",
            fix="GitHub or the network is having trouble; re-run the job later",
        )

    def _pages(
        self,
        url: str,
        why: Why,
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
            page = json_body(resp)
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
        """GitHub asks for at least a second between mutating requests when there are many:
        after the first :data:`MUTATION_BURST`, each waits out a second since the last."""
        now = time.monotonic()
        pause = 0.0
        self._mutations += 1
        if self._last_mutation is not None and self._mutations > MUTATION_BURST:
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


def json_body(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise GitHubError(
            f"GitHub answered {resp.status_code} without JSON for {urlsplit(resp.url).path}",
            fix="check the API URL setting (GITHUB_API_URL / mlci.github_api_url)",
        ) from None


def _comment_order(comment: Mapping[str, Any]) -> tuple[str, int]:
    return (str(comment.get("created_at") or ""), int(comment.get("id") or 0))


def newest_own(items: Iterable[dict[str, Any]], marker: str, login: str) -> dict[str, Any] | None:
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


def error_message(resp: requests.Response) -> tuple[str, list[str]]:
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
    return "rate limit" in error_message(resp)[0].lower()


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


def _http_error(resp: requests.Response, shown: str, why: Why) -> GitHubError:
    status = resp.status_code
    message, details = error_message(resp)
    said = f"{message}: {'; '.join(details)}" if details else message
    if status == 401:
        return GitHubError(
            f"{shown}: GitHub rejected the token (401 {said}); it is invalid or expired",
            fix=f"set a valid token in the {_TOKEN_SECRET} secret",
            status=status,
        )
    if status == 403:
        need = why.permission or "the needed"
        fix = f"give the workflow `permissions: {need}`"
        if why.permission == "checks: write":
            fix += " (check runs need GITHUB_TOKEN or a GitHub App token; or use a commit status)"
        return GitHubError(
            f"{shown}: GitHub refused access to {why.target} (403 {said})", fix=fix, status=status
        )
    if status == 404:
        return GitHubError(
            f"{shown}: {why.target} was not found or is not visible to this token (404)",
            fix="check the repository and number, and that the token can see the repository",
            status=status,
        )
    if status == 422:
        return GitHubError(
            f"{shown}: GitHub refused the request (422 {said})",
            fix="this is a bug in mlci or an input it did not check; please report it",
            status=status,
        )
    return GitHubError(
        f"{shown}: GitHub answered {status} ({said}) for {why.target}", status=status
    )


def check_body(body: str, what: str) -> None:
    if len(body) > COMMENT_LIMIT:
        raise GitHubError(
            f"the {what} is {len(body):,} characters; GitHub takes at most {COMMENT_LIMIT:,}",
            fix="shorten it (details are in the job summary)",
        )
