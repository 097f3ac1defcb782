"""Sticky-comment upsert against the loopback GitHub API (the test suite's server): requests
and time with 0, 100 and 1,000 existing comments. Bound: 1 + ceil(comments / 100) + 1.

    python bench/comments.py
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import machine_facts

from mlci.github.client import GitHubClient
from mlci.report.render import marker_for

from github_server import FakeGitHub


def main() -> None:
    print(machine_facts())
    print("| existing comments | requests (update) | bound | time |")
    print("|---:|---:|---:|---:|")
    for n in (0, 100, 1000):
        server = FakeGitHub().start()
        try:
            server.add_comments(7, n)
            client = GitHubClient(server.url, server.token, server.repo, sleep=lambda s: None)
            client.upsert_comment(7, "first", marker_for("bench"))  # ours, now the newest
            server.add_comments(7, 5)
            before = client.requests_made
            start = time.perf_counter()
            result = client.upsert_comment(7, "second", marker_for("bench"))
            took = time.perf_counter() - start
            assert not result.created
            sent = client.requests_made - before
            bound = 1 + math.ceil((n + 6) / 100) + 1
            print(f"| {n:,} | {sent} | {bound} | {took * 1000:.0f} ms |")
        finally:
            server.stop()
    print(
        "\n(one identity request, one listing request per 100 comments, one PATCH; the fake"
        " sleep skips GitHub's 1 s spacing between mutating requests)"
    )


if __name__ == "__main__":
    main()
