"""The Git Data API (blobs, trees, commits, refs): how plot images reach the repository's own
images branch (``mlci/images.py``)."""

from __future__ import annotations

import base64
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlsplit

from mlci.errors import GitHubError
from mlci.github.http import HttpClient, Why, error_message, json_body


class ContentsRefused(GitHubError):
    """The token may not write the repository's contents (``permissions: contents: write``)."""

    title = "GitHub refused to write contents"


class GitData(HttpClient):
    # -- Git Data API: the plots images branch (mlci/images.py) ---------------------------------

    def branch_head(self, branch: str) -> str | None:
        """The commit ``refs/heads/{branch}`` points at, or None when there is no such branch."""
        why = Why(f"branch {branch} of {self.repository}", "contents: read")
        path = f"/repos/{self.repository}/git/ref/heads/{quote(branch)}"
        resp = self._request("GET", path, why, allow=(404, 409))  # 409: an empty repository
        if resp.status_code in (404, 409):
            return None
        return str(json_body(resp)["object"]["sha"])

    def tree(self, ref: str) -> tuple[list[dict[str, Any]], bool] | None:
        """Every entry (``path``, ``type``, ``sha``, ``size`` ...) of the tree of ``ref`` (a
        commit SHA or branch name), subfolders included, in one request, and whether GitHub cut
        the listing short (``truncated``: more than 100,000 entries or 7 MB); None when ``ref``
        does not exist."""
        why = Why(f"the files of {ref[:12]} in {self.repository}", "contents: read")
        url = f"/repos/{self.repository}/git/trees/{quote(ref)}"
        resp = self._request("GET", url, why, params={"recursive": "1"}, allow=(404, 409))
        if resp.status_code in (404, 409):  # 409: an empty repository
            return None
        data = json_body(resp)
        if not isinstance(data, dict) or not isinstance(data.get("tree"), list):
            raise GitHubError(f"GitHub answered the tree of {ref[:12]} with something else")
        entries = [e for e in data["tree"] if isinstance(e, dict)]
        return entries, data.get("truncated") is True

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
        why = Why(f"{what} in {self.repository}", "contents: write")
        url = f"/repos/{self.repository}{path}"
        resp = self._request(method, url, why, json=payload, allow=(403, 404, *allow))
        if resp.status_code in (403, 404):
            message, _ = error_message(resp)
            raise ContentsRefused(
                f"{method} {urlsplit(resp.url).path}: GitHub refused to write {what} "
                f"({resp.status_code} {message})",
                fix="give the workflow `permissions: contents: write`",
            )
        if resp.status_code in allow:
            return {}
        data = json_body(resp)
        if not isinstance(data, dict) or ("sha" not in data and "object" not in data):
            raise GitHubError(f"GitHub answered {what} with something else")
        return data
