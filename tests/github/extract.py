"""Extract the part of GitHub's REST description that the loopback server checks against.

Run from the repository root with the full description at hand (not vendored: 2.2 MB):

    python tests/github/extract.py /path/to/github-rest-subset.json > tests/github/rest-subset.json

Keeps, per operation: its parameters (name, in, required, schema), the request body schema, and a
shallow form of each 2xx response schema (top-level required fields and property types). Prose
(descriptions, examples) and vendor extensions are dropped.
"""

from __future__ import annotations

import json
import sys
from typing import Any

OPERATIONS = {
    "/user": ["get"],
    "/repos/{owner}/{repo}/issues/{issue_number}/comments": ["get", "post"],
    "/repos/{owner}/{repo}/issues/comments/{comment_id}": ["patch"],
    "/repos/{owner}/{repo}/pulls/{pull_number}": ["get", "patch"],
    "/repos/{owner}/{repo}/check-runs": ["post"],
    "/repos/{owner}/{repo}/check-runs/{check_run_id}": ["get", "patch"],
    "/repos/{owner}/{repo}/commits/{ref}/check-runs": ["get"],
    "/repos/{owner}/{repo}/statuses/{sha}": ["post"],
    "/repos/{owner}/{repo}/commits/{commit_sha}/pulls": ["get"],
    "/repos/{owner}/{repo}/commits/{commit_sha}/comments": ["get", "post"],
    "/repos/{owner}/{repo}/comments/{comment_id}": ["patch"],
    # mlci monitor: the living issue, the retraining pull request, a workflow dispatch
    "/repos/{owner}/{repo}/issues": ["get", "post"],
    "/repos/{owner}/{repo}/issues/{issue_number}": ["patch"],
    "/repos/{owner}/{repo}/pulls": ["get", "post"],
    "/repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches": ["post"],
    # plots: the images branch (mlci/report/images_branch.py), Git Data API; a directory listing
    "/repos/{owner}/{repo}/git/ref/{ref}": ["get"],
    "/repos/{owner}/{repo}/git/refs": ["post"],
    "/repos/{owner}/{repo}/git/refs/{ref}": ["patch"],
    "/repos/{owner}/{repo}/git/blobs": ["post"],
    "/repos/{owner}/{repo}/git/trees": ["post"],
    "/repos/{owner}/{repo}/git/commits": ["post"],
    "/repos/{owner}/{repo}/git/trees/{tree_sha}": ["get"],
    "/repos/{owner}/{repo}/contents/{path}": ["get"],
    # mlci release: who approved (environment reviewers of the run, reviews of the merged PR)
    "/repos/{owner}/{repo}/actions/runs/{run_id}/approvals": ["get"],
    "/repos/{owner}/{repo}/pulls/{pull_number}/reviews": ["get"],
}
_STR, _INT, _OBJ = {"type": ["string"]}, {"type": ["integer"]}, {"type": ["object"]}
_OWNER_REPO = [
    {"in": "path", "name": "owner", "required": True, "schema": {"type": "string"}},
    {"in": "path", "name": "repo", "required": True, "schema": {"type": "string"}},
]
_COMMIT_SHA = {
    "in": "path",
    "name": "commit_sha",
    "required": True,
    "schema": {"type": "string"},
    "x-multi-segment": True,
}
_COMMIT_COMMENT = {
    "type": "object",
    "required": sorted(
        [
            *("url", "html_url", "id", "node_id", "user", "position", "line"),
            *("path", "commit_id", "body", "author_association", "created_at"),
            "updated_at",
        ]
    ),
    "properties": {
        "html_url": _STR,
        "url": _STR,
        "id": _INT,
        "node_id": _STR,
        "body": _STR,
        "path": {**_STR, "nullable": True},
        "position": {**_INT, "nullable": True},
        "line": {**_INT, "nullable": True},
        "commit_id": _STR,
        "user": {**_OBJ, "nullable": True},
        "created_at": _STR,
        "updated_at": _STR,
        "author_association": _STR,
        "reactions": _OBJ,
    },
}
_BODY_ONLY = {
    "required": True,
    "schema": {"type": "object", "properties": {"body": {"type": "string"}}, "required": ["body"]},
}
# Operations the source above lacks, already in the extracted form. POST commit comment:
# transcribed from GitHub's REST API description itself, github/rest-api-description,
# descriptions-next/api.github.com/api.github.com.2022-11-28.json at commit
# 00b7bf624c602a6262287a112d7aa4fb65b5c09e (MIT): its `commit-sha` parameter (the same
# component as in the source) and the `commit-comment` response schema, OpenAPI 3.1
# `["string", "null"]` written as `nullable`. GET (list) and PATCH (update): the parameters
# GitHub's REST reference documents for them (https://docs.github.com/rest/commits/comments),
# answering the same `commit-comment` schema.
SUPPLEMENT: dict[str, dict[str, Any]] = {
    "/repos/{owner}/{repo}/commits/{commit_sha}/comments": {
        "get": {
            "operationId": "repos/list-comments-for-commit",
            "parameters": [
                *_OWNER_REPO,
                _COMMIT_SHA,
                {"in": "query", "name": "per_page", "schema": {"type": "integer"}},
                {"in": "query", "name": "page", "schema": {"type": "integer"}},
            ],
            "responses": {"200": {"type": "array", "items": _COMMIT_COMMENT}},
        },
        "post": {
            "operationId": "repos/create-commit-comment",
            "parameters": [*_OWNER_REPO, _COMMIT_SHA],
            "requestBody": {
                "required": True,
                "schema": {
                    "type": "object",
                    "properties": {
                        "body": {"type": "string"},
                        "path": {"type": "string"},
                        "position": {"type": "integer"},
                        "line": {"type": "integer"},
                    },
                    "required": ["body"],
                },
            },
            "responses": {"201": _COMMIT_COMMENT, "403": {}, "422": {}},
        },
    },
    "/repos/{owner}/{repo}/comments/{comment_id}": {
        "patch": {
            "operationId": "repos/update-commit-comment",
            "parameters": [
                *_OWNER_REPO,
                {
                    "in": "path",
                    "name": "comment_id",
                    "required": True,
                    "schema": {"type": "integer"},
                },
            ],
            "requestBody": _BODY_ONLY,
            "responses": {"200": _COMMIT_COMMENT, "404": {}},
        }
    },
}
DROP = {"description", "examples", "example", "externalDocs", "title", "format", "default"}


def strip(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: strip(v) for k, v in node.items() if k not in DROP and not k.startswith("x-")
        } | ({"x-multi-segment": True} if node.get("x-multi-segment") else {})
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def shallow(schema: dict[str, Any]) -> dict[str, Any]:
    """The top level of a response schema: required fields and each property's type."""
    if "oneOf" in schema or "anyOf" in schema:
        return {"oneOf": [shallow(s) for s in schema.get("oneOf", schema.get("anyOf", []))]}
    if schema.get("type") == "array":
        return {"type": "array", "items": shallow(schema["items"])}
    out: dict[str, Any] = {"type": schema.get("type", "object")}
    out["required"] = sorted(schema.get("required", []))
    props = {}
    for name, prop in schema.get("properties", {}).items():
        kinds = [prop["type"]] if "type" in prop else []
        for alt in prop.get("anyOf", []) + prop.get("oneOf", []) + prop.get("allOf", []):
            if "type" in alt:
                kinds.append(alt["type"])
        # OpenAPI 3.1 writes several types as a list (`["string", "null"]`)
        kinds = [k for kind in kinds for k in (kind if isinstance(kind, list) else [kind])]
        entry: dict[str, Any] = {"type": sorted(set(kinds) - {"null"})}
        if (
            prop.get("nullable")
            or "null" in kinds
            or any(a.get("nullable") for a in prop.get("anyOf", []))
        ):
            entry["nullable"] = True
        props[name] = entry
    out["properties"] = props
    return out


def main(source: str) -> None:
    with open(source, encoding="utf-8") as fh:
        full = json.load(fh)
    paths: dict[str, Any] = {}
    for path, methods in OPERATIONS.items():
        for method in methods:
            if method not in full["paths"].get(path, {}):
                paths.setdefault(path, {})[method] = SUPPLEMENT[path][method]
                continue
            op = full["paths"][path][method]
            entry: dict[str, Any] = {
                "operationId": op["operationId"],
                "parameters": strip(op.get("parameters", [])),
            }
            if "requestBody" in op:
                body = op["requestBody"]
                entry["requestBody"] = {
                    "required": body.get("required", False),
                    "schema": strip(body["content"]["application/json"]["schema"]),
                }
            responses = {}
            for code, resp in op["responses"].items():
                content = resp.get("content", {}).get("application/json")
                if code.startswith("2") and content:
                    responses[code] = shallow(content["schema"])
                else:
                    responses[code] = {}
            entry["responses"] = responses
            paths.setdefault(path, {})[method] = entry
    info = full["info"]
    out = {
        "source": info.get("x-subset-of", info["title"]),
        "version": info["version"],
        "license": info["license"],
        "paths": paths,
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/github-rest-subset.json")
