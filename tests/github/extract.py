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
    "/repos/{owner}/{repo}/pulls/{pull_number}": ["get"],
    "/repos/{owner}/{repo}/check-runs": ["post"],
    "/repos/{owner}/{repo}/check-runs/{check_run_id}": ["patch"],
    "/repos/{owner}/{repo}/statuses/{sha}": ["post"],
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
        entry: dict[str, Any] = {"type": sorted(set(kinds))}
        if prop.get("nullable") or any(a.get("nullable") for a in prop.get("anyOf", [])):
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
