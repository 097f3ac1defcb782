"""Git Data API of the loopback GitHub (``tests/github_server.py``): a real object store.

Blobs, trees and commits are hashed as git hashes them (so a tree's SHA changes when anything
under it does), refs move only fast-forward unless ``force``, ``GET /contents/{path}``
lists a directory of any commit or branch, and ``GET /git/trees/{tree_sha}`` a tree (named by
its SHA, a commit's or a branch's), with ``recursive`` every entry under it, cut short
(``truncated``) past ``max_listing`` entries as GitHub cuts past 100,000.
``contents_write = False`` answers every write as GitHub answers a token without
``contents: write``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any


class GitApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _hash(kind: str, body: bytes) -> str:
    return hashlib.sha1(f"{kind} {len(body)}\0".encode() + body).hexdigest()


@dataclass
class GitStore:
    repo: str
    url: str = ""
    contents_write: bool = True
    blobs: dict[str, bytes] = field(default_factory=dict)
    trees: dict[str, dict[str, tuple[str, str, str]]] = field(default_factory=dict)
    commits: dict[str, dict[str, Any]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    max_listing: int = 100_000  # entries of a recursive tree listing before it is truncated

    # -- objects ----------------------------------------------------------------------------

    def _tree_sha(self, entries: dict[str, tuple[str, str, str]]) -> str:
        body = b"".join(
            f"{mode.lstrip('0')} {name}\0".encode() + bytes.fromhex(sha)
            for name, (mode, _kind, sha) in sorted(entries.items())
        )
        sha = _hash("tree", body)
        self.trees[sha] = dict(entries)
        return sha

    def _insert(self, root: dict[str, tuple[str, str, str]], path: str, entry: Any) -> None:
        head, _, rest = path.partition("/")
        if not rest:
            if entry is None:
                root.pop(head, None)
            else:
                root[head] = entry
            return
        sub = dict(self.trees[root[head][2]]) if head in root and root[head][1] == "tree" else {}
        self._insert(sub, rest, entry)
        root[head] = ("040000", "tree", self._tree_sha(sub))

    def files(self, commit_or_ref: str) -> dict[str, bytes]:
        """Every file of a commit (or branch), by path."""
        sha = self.refs.get(f"heads/{commit_or_ref}", commit_or_ref)
        out: dict[str, bytes] = {}

        def walk(tree: str, prefix: str) -> None:
            for name, (_mode, kind, obj) in self.trees[tree].items():
                if kind == "tree":
                    walk(obj, f"{prefix}{name}/")
                else:
                    out[prefix + name] = self.blobs[obj]

        walk(self.commits[sha]["tree"], "")
        return out

    def history(self, branch: str) -> list[str]:
        """The branch's commits, newest first (first parents)."""
        out, sha = [], self.refs.get(f"heads/{branch}")
        while sha:
            out.append(sha)
            parents = self.commits[sha]["parents"]
            sha = parents[0] if parents else None
        return out

    # -- the API ------------------------------------------------------------------------------

    def answer(
        self, method: str, template: str, v: dict[str, Any], data: dict[str, Any], ref: str
    ) -> tuple[int, dict[str, Any] | list[Any]]:
        if method != "GET" and not self.contents_write:
            raise GitApiError(403, "Resource not accessible by integration")
        if template.endswith("/git/blobs"):
            raw = data["content"]
            body = base64.b64decode(raw) if data.get("encoding") == "base64" else raw.encode()
            sha = _hash("blob", body)
            self.blobs[sha] = body
            return 201, {"sha": sha, "url": f"{self.url}/repos/{self.repo}/git/blobs/{sha}"}
        if template.endswith("/git/trees"):
            return 201, self._create_tree(data)
        if template.endswith("/git/trees/{tree_sha}"):
            return 200, self._get_tree(v["tree_sha"], bool(v.get("recursive")))
        if template.endswith("/git/commits"):
            return 201, self._create_commit(data)
        if template.endswith("/git/ref/{ref}"):
            return 200, self._ref_json(v["ref"])
        if template.endswith("/git/refs"):
            name = str(data["ref"])
            if not name.startswith("refs/") or name.count("/") < 2:
                raise GitApiError(422, "Reference name must start with 'refs/'")
            if name.removeprefix("refs/") in self.refs:
                raise GitApiError(422, "Reference already exists")
            self._need_commit(data["sha"])
            self.refs[name.removeprefix("refs/")] = data["sha"]
            return 201, self._ref_json(name.removeprefix("refs/"))
        if template.endswith("/git/refs/{ref}"):
            return 200, self._update_ref(v["ref"], data)
        if template.endswith("/contents/{path}"):
            return 200, self._contents(v["path"], ref)
        raise GitApiError(404, "Not Found")

    def _create_tree(self, data: dict[str, Any]) -> dict[str, Any]:
        root: dict[str, tuple[str, str, str]] = {}
        if data.get("base_tree"):
            if data["base_tree"] not in self.trees:
                raise GitApiError(422, "Invalid tree info")
            root = dict(self.trees[data["base_tree"]])
        for item in data["tree"]:
            sha = item.get("sha")
            if "content" in item:
                body = str(item["content"]).encode()
                sha = _hash("blob", body)
                self.blobs[sha] = body
            known = self.blobs if item["type"] == "blob" else self.trees
            if sha is not None and sha not in known:
                raise GitApiError(422, f"tree.sha {sha} is not a valid {item['type']}")
            entry = None if sha is None else (item["mode"], item["type"], sha)
            self._insert(root, item["path"], entry)
        sha = self._tree_sha(root)
        return {"sha": sha, "url": f"{self.url}/repos/{self.repo}/git/trees/{sha}",
                "truncated": False, "tree": self._listing(sha)}  # fmt: skip

    def _get_tree(self, name: str, recursive: bool) -> dict[str, Any]:
        """A tree by its SHA, a commit's SHA or a branch name, as ``GET git/trees`` answers."""
        sha = self.refs.get(f"heads/{name}", name)
        sha = self.commits[sha]["tree"] if sha in self.commits else sha
        if sha not in self.trees:
            raise GitApiError(404, "Not Found")
        listing: list[dict[str, Any]] = []

        def walk(tree: str, prefix: str) -> None:
            for entry, (mode, kind, obj) in sorted(self.trees[tree].items()):
                item = {"path": prefix + entry, "mode": mode, "type": kind, "sha": obj,
                        "url": f"{self.url}/repos/{self.repo}/git/{kind}s/{obj}"}  # fmt: skip
                listing.append(item | ({"size": len(self.blobs[obj])} if kind == "blob" else {}))
                if kind == "tree" and recursive:
                    walk(obj, f"{prefix}{entry}/")

        walk(sha, "")
        url = f"{self.url}/repos/{self.repo}/git/trees/{sha}"
        truncated = len(listing) > self.max_listing
        return {"sha": sha, "url": url, "tree": listing[: self.max_listing], "truncated": truncated}

    def _listing(self, tree: str) -> list[dict[str, Any]]:
        return [
            {"path": name, "mode": mode, "type": kind, "sha": sha}
            for name, (mode, kind, sha) in sorted(self.trees[tree].items())
        ]

    def _create_commit(self, data: dict[str, Any]) -> dict[str, Any]:
        if data["tree"] not in self.trees:
            raise GitApiError(422, "Tree SHA does not exist")
        parents = list(data.get("parents") or [])
        for parent in parents:
            self._need_commit(parent)
        text = f"tree {data['tree']}\n" + "".join(f"parent {p}\n" for p in parents)
        text += f"\n{data['message']}"
        sha = _hash("commit", f"{text}\n{len(self.commits)}".encode())
        self.commits[sha] = {"tree": data["tree"], "parents": parents, "message": data["message"]}
        person = {"name": "github-actions[bot]", "email": "bot@example", "date": "2026-01-01"}
        return {
            "sha": sha,
            "node_id": f"C_{sha[:10]}",
            "url": f"{self.url}/repos/{self.repo}/git/commits/{sha}",
            "html_url": f"https://github.com/{self.repo}/commit/{sha}",
            "author": person,
            "committer": person,
            "message": data["message"],
            "tree": {"sha": data["tree"], "url": f"{self.url}/repos/{self.repo}/git/trees/x"},
            "parents": [{"sha": p, "url": "", "html_url": ""} for p in parents],
            "verification": {"verified": False, "reason": "unsigned", "signature": None,
                             "payload": None, "verified_at": None},
        }  # fmt: skip

    def _need_commit(self, sha: str) -> None:
        if sha not in self.commits:
            raise GitApiError(422, "Object does not exist")

    def _ref_json(self, name: str) -> dict[str, Any]:
        if name not in self.refs:
            raise GitApiError(404, "Not Found")
        sha = self.refs[name]
        return {
            "ref": f"refs/{name}",
            "node_id": f"REF_{name}",
            "url": f"{self.url}/repos/{self.repo}/git/refs/{name}",
            "object": {"type": "commit", "sha": sha, "url": ""},
        }

    def _update_ref(self, name: str, data: dict[str, Any]) -> dict[str, Any]:
        if name not in self.refs:
            raise GitApiError(422, "Reference does not exist")
        self._need_commit(data["sha"])
        old, sha = self.refs[name], data["sha"]
        ancestors, at = set(), sha
        while at:  # first parents are enough for the branches mlci writes
            ancestors.add(at)
            parents = self.commits[at]["parents"]
            at = parents[0] if parents else None
        if old not in ancestors and not data.get("force"):
            raise GitApiError(422, "Update is not a fast forward")
        self.refs[name] = sha
        return self._ref_json(name)

    def _contents(self, path: str, ref: str) -> list[dict[str, Any]] | dict[str, Any]:
        sha = self.refs.get(f"heads/{ref}", ref)
        if sha not in self.commits:
            raise GitApiError(404, "No commit found for the ref")
        kind, obj = "tree", self.commits[sha]["tree"]
        for part in [p for p in path.split("/") if p]:
            if kind != "tree" or part not in self.trees[obj]:
                raise GitApiError(404, "Not Found")
            _mode, kind, obj = self.trees[obj][part]
        if kind == "blob":
            return self._item(path, "file", obj, len(self.blobs[obj])) | {
                "content": base64.b64encode(self.blobs[obj]).decode(),
                "encoding": "base64",
            }
        return [
            self._item(f"{path.rstrip('/')}/{name}".lstrip("/"),
                       "dir" if k == "tree" else "file", o,
                       0 if k == "tree" else len(self.blobs[o]))
            for name, (_m, k, o) in sorted(self.trees[obj].items())
        ]  # fmt: skip

    def _item(self, path: str, kind: str, sha: str, size: int) -> dict[str, Any]:
        url = f"{self.url}/repos/{self.repo}/contents/{path}"
        return {
            "type": kind,
            "size": size,
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "url": url,
            "git_url": None,
            "html_url": None,
            "download_url": None,
            "_links": {"self": url, "git": None, "html": None},
        }
