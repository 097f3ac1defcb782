"""The GitHub REST client against the loopback fake of GitHub's API (tests/github_server.py)."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from mlci.errors import EXIT_EXTERNAL, GitHubError
from mlci.github.client import (
    CHECK_TEXT_LIMIT,
    COMMENT_LIMIT,
    SUMMARY_LIMIT,
    Annotation,
    GitHubClient,
    write_outputs,
    write_step_summary,
)
from mlci.report.render import MARKER_PREFIX, marker_for

from github_server import FakeGitHub

MARKER = marker_for("main")
HEAD = "a" * 40


class Sleeps(list[float]):
    """A fake ``time.sleep`` that records what it was asked to wait."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture(autouse=True)
def spec_clean(github: FakeGitHub) -> Iterator[None]:
    """Every request any test sends must follow GitHub's REST description."""
    yield
    assert github.violations == []


def client(
    github: FakeGitHub, sleeps: Sleeps, token: str | None = None, **kw: object
) -> GitHubClient:
    return GitHubClient(github.url, token or github.token, github.repo, sleep=sleeps, **kw)  # type: ignore[arg-type]


# -- the sticky comment -------------------------------------------------------------------------


@pytest.mark.parametrize("ours_at", [130, 240])  # page 2, page 3
def test_updates_our_comment_on_a_later_page(
    github: FakeGitHub, sleeps: Sleeps, ours_at: int
) -> None:
    github.add_comments(7, ours_at - 2, user="someone-else", body=f"{MARKER} copied {{i}}")
    github.add_comment(7, "no marker here", user="octocat")
    github.add_comment(7, f"{MARKER}\nold report", user="octocat")
    github.add_comments(7, 250 - ours_at, user="someone-else")
    ours = next(c for c in github.comments[7] if c["body"] == f"{MARKER}\nold report")
    assert len(github.comments[7]) == 250
    gh = client(github, sleeps)

    result = gh.upsert_comment(7, "new report", MARKER)

    assert not result.created
    assert result.id == ours["id"]
    assert result.url == ours["html_url"]
    assert ours["body"] == f"{MARKER}\nnew report"
    assert len(github.comments[7]) == 250
    assert gh.requests_made <= 1 + math.ceil(250 / 100) + 1
    assert len(github.requests) == gh.requests_made
    listing = github.requests_to("GET", "/comments$")
    assert len(listing) == 3
    # Pages 2 and 3 were reached through the Link header (GitHub's /repositories/{id} URLs).
    assert [r.path.startswith("/repositories/") for r in listing] == [False, True, True]
    assert all(r.query["per_page"] == ["100"] for r in listing)
    assert [r.method for r in github.requests].count("PATCH") == 1
    assert "POST" not in [r.method for r in github.requests]


def test_newest_of_our_marked_comments_is_updated(github: FakeGitHub, sleeps: Sleeps) -> None:
    older = github.add_comment(7, f"{MARKER} first", user="octocat")
    newer = github.add_comment(7, f"{MARKER} second", user="octocat")
    result = client(github, sleeps).upsert_comment(7, "third", MARKER)
    assert result.id == newer["id"]
    assert older["body"] == f"{MARKER} first"
    assert len(github.comments[7]) == 2


def test_creates_then_updates_the_same_comment(github: FakeGitHub, sleeps: Sleeps) -> None:
    gh = client(github, sleeps)
    first = gh.upsert_comment(7, f"report one\n{MARKER}", MARKER)
    second = gh.upsert_comment(7, "report two", MARKER)
    assert first.created and not second.created
    assert first.id == second.id
    assert [c["body"] for c in github.comments[7]] == [f"{MARKER}\nreport two"]
    assert github.requests_to("POST")[0].body == {"body": f"report one\n{MARKER}"}
    assert first.url.startswith("https://github.com/octo/demo/pull/7#issuecomment-")
    # Two mutating requests, a job's few: not spaced (GitHub asks it of "a large number").
    assert sleeps == []
    # The identity is asked once per client.
    assert len(github.requests_to("GET", "^/user$")) == 1


def test_another_users_marked_comment_is_left_alone(github: FakeGitHub, sleeps: Sleeps) -> None:
    theirs = github.add_comment(7, f"{MARKER}\nsomeone copied our marker", user="someone-else")
    result = client(github, sleeps).upsert_comment(7, "ours", MARKER)
    assert result.created and result.id != theirs["id"]
    assert theirs["body"] == f"{MARKER}\nsomeone copied our marker"
    assert [c["user"]["login"] for c in github.comments[7]] == ["someone-else", "octocat"]


def test_two_report_names_make_two_comments(github: FakeGitHub, sleeps: Sleeps) -> None:
    gh = client(github, sleeps)
    a = gh.upsert_comment(7, "model A", marker_for("model-a"))
    b = gh.upsert_comment(7, "model B", marker_for("model-b"))
    a2 = gh.upsert_comment(7, "model A again", marker_for("model-a"))
    assert a.id != b.id and a2.id == a.id
    assert sorted(c["body"] for c in github.comments[7]) == [
        f"{marker_for('model-a')}\nmodel A again",
        f"{marker_for('model-b')}\nmodel B",
    ]


def test_integration_token_falls_back_to_the_actions_bot(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    github.add_comment(7, f"{MARKER} by a person", user="octocat")
    bots = github.add_comment(7, f"{MARKER} by the bot", user="github-actions[bot]")
    gh = client(github, sleeps, github.integration_token)
    assert gh.identity() == "github-actions[bot]"
    result = gh.upsert_comment(7, "updated", MARKER)
    assert result.id == bots["id"] and not result.created
    assert github.requests_to("GET", "^/user$")  # it did ask, and got 403
    assert len(github.comments[7]) == 2


def test_explicit_author_skips_the_identity_call(github: FakeGitHub, sleeps: Sleeps) -> None:
    mine = github.add_comment(7, f"{MARKER} x", user="someone-else")
    gh = client(github, sleeps)
    assert gh.upsert_comment(7, "y", MARKER, author="someone-else").id == mine["id"]
    assert not github.requests_to("GET", "^/user$")


def test_marker_cannot_close_the_html_comment() -> None:
    m = marker_for("evil --> <script>")
    assert m.startswith(MARKER_PREFIX) and m.endswith(" -->")
    assert m.count("-->") == 1 and "<script>" not in m
    assert marker_for("main") == "<!-- mlci-report:main -->"
    assert marker_for("a") != marker_for("b")


def test_one_marker_rule_for_reports_and_monitor_issues() -> None:
    """``markdown.marker`` is the one sanitiser: injective, one ``-->``, nothing a renderer
    reads as markup, and the markers plain names always had."""
    from mlci.markdown import marker
    from mlci.monitor.report import marker as monitor_marker

    names = ["a b?", "a b!", "a--b", "a-%2Db", "evil --> <x>", "x\n-->y", "", " ", "ü"]
    for kind in ("report", "monitor"):
        made = [marker(kind, n) for n in names]
        assert len(set(made)) == len(names) - 1  # only "" and " " (both blank) meet
        for m in made:
            assert m.count("--") == 2 and m.endswith(" -->"), m  # the opener and the closer
            assert not set(m[4:-3]) & set("<>\n"), m
    assert marker_for("main") == marker("report", "main") == "<!-- mlci-report:main -->"
    assert monitor_marker("fraud-v2") == "<!-- mlci-monitor:fraud-v2 -->"
    assert marker_for("model check") == "<!-- mlci-report:model check -->"  # as before


def test_too_long_comment_is_refused_before_sending(github: FakeGitHub, sleeps: Sleeps) -> None:
    gh = client(github, sleeps)
    with pytest.raises(GitHubError) as err:
        gh.upsert_comment(7, "x" * COMMENT_LIMIT, MARKER)
    assert err.value.exit_code == EXIT_EXTERNAL
    assert "65,536" in err.value.message
    assert gh.requests_made == 0 and github.requests == []


def test_server_refuses_a_too_long_comment_like_github(github: FakeGitHub) -> None:
    resp = requests.post(
        f"{github.url}/repos/octo/demo/issues/7/comments",
        json={"body": "x" * (COMMENT_LIMIT + 1)},
        headers={
            "Authorization": f"Bearer {github.token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
        timeout=5,
    )
    assert resp.status_code == 422
    body = resp.json()
    assert body["message"] == "Validation Failed" and "documentation_url" in body
    assert body["errors"][0]["message"] == "Body is too long (maximum is 65536 characters)"
    assert github.comments[7] == []


def test_pagination_headers_follow_github(github: FakeGitHub) -> None:
    github.add_comments(7, 75)
    headers = {
        "Authorization": f"Bearer {github.token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    resp = requests.get(f"{github.url}/repos/octo/demo/issues/7/comments", headers=headers)
    assert len(resp.json()) == 30  # GitHub's default page size
    assert resp.links["next"]["url"].endswith("per_page=30&page=2")
    assert resp.links["last"]["url"].endswith("page=3")
    assert resp.links["next"]["url"].startswith("http://127.0.0.1:")
    for name in ("limit", "remaining", "reset", "used"):
        assert f"x-ratelimit-{name}" in resp.headers
    last = requests.get(resp.links["last"]["url"], headers=headers)
    assert len(last.json()) == 15 and set(last.links) == {"prev", "first"}


def test_next_link_to_another_host_is_not_followed(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail(
        "GET",
        "/comments$",
        200,
        headers={"Link": '<http://evil.invalid/steal?page=2>; rel="next"'},
        body=[],
    )
    with pytest.raises(GitHubError, match="another host"):
        client(github, sleeps).upsert_comment(7, "x", MARKER, author="octocat")
    assert len(github.requests) == 1


# -- retries and rate limits ----------------------------------------------------------------------


def test_5xx_are_retried_with_backoff(github: FakeGitHub, sleeps: Sleeps) -> None:
    for status in (500, 502, 503):
        github.fail("GET", "/pulls/7$", status)
    lines: list[str] = []
    gh = client(github, sleeps, on_retry=lines.append)
    assert gh.pull_request(7)["head"]["sha"] == HEAD
    assert gh.requests_made == 4
    assert len(sleeps) == 3
    assert 0.5 <= sleeps[0] <= 1 and 1 <= sleeps[1] <= 2 and 2 <= sleeps[2] <= 4
    assert lines[0].startswith("GitHub answered 500; retrying in ")
    assert lines[1].startswith("GitHub answered 502") and "(try 3 of 5)" in lines[1]
    assert "503" in lines[2]


@pytest.mark.parametrize("status", [403, 429])
def test_rate_limit_with_retry_after_waits_that_long(
    github: FakeGitHub, sleeps: Sleeps, status: int
) -> None:
    github.fail(
        "POST",
        "/comments$",
        status,
        headers={"retry-after": "7"},
        body={"message": "You have exceeded a secondary rate limit.", "documentation_url": "x"},
    )
    result = client(github, sleeps).upsert_comment(7, "x", MARKER, author="octocat")
    assert result.created
    assert 7 in sleeps
    assert len(github.comments[7]) == 1


def test_primary_rate_limit_waits_until_reset(github: FakeGitHub, sleeps: Sleeps) -> None:
    reset = int(time.time()) + 20
    github.fail(
        "GET",
        "/pulls/7$",
        403,
        headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
        body={"message": "API rate limit exceeded for user ID 1.", "documentation_url": "x"},
    )
    client(github, sleeps).pull_request(7)
    assert len(sleeps) == 1 and 17 <= sleeps[0] <= 20


def test_secondary_limit_without_headers_waits_a_minute(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail(
        "GET",
        "/pulls/7$",
        403,
        body={"message": "You have exceeded a secondary rate limit", "documentation_url": "x"},
    )
    client(github, sleeps).pull_request(7)
    assert sleeps == [60.0]


def test_a_wait_beyond_the_bound_raises_without_sleeping(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    github.fail("GET", "/pulls/7$", 429, headers={"retry-after": "120"})
    with pytest.raises(GitHubError) as err:
        client(github, sleeps, max_wait_s=60).pull_request(7)
    assert sleeps == []
    assert "120s" in err.value.message and "60s" in err.value.message
    assert err.value.exit_code == EXIT_EXTERNAL


def test_waits_add_up_to_at_most_the_bound(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("GET", "/pulls/7$", 429, headers={"retry-after": "25"}, times=3)
    with pytest.raises(GitHubError, match="rate limit"):
        client(github, sleeps, max_wait_s=60).pull_request(7)
    assert sleeps == [25.0, 25.0]
    assert sum(sleeps) <= 60


def test_gives_up_after_the_last_try(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("GET", "/pulls/7$", 502, times=10)
    with pytest.raises(GitHubError) as err:
        client(github, sleeps).pull_request(7)
    assert "gave up after 5 tries" in err.value.message
    assert "502" in err.value.message
    assert len(github.requests) == 5 and len(sleeps) == 4


def test_dropped_connection_is_retried(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.drop("POST", "/comments$")
    lines: list[str] = []
    gh = client(github, sleeps, on_retry=lines.append)
    result = gh.upsert_comment(7, "x", MARKER, author="octocat")
    assert result.created and len(github.comments[7]) == 1
    assert lines and lines[0].startswith("the connection failed; retrying")
    assert len(github.requests_to("POST")) == 2


def test_timeout_is_retried(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.hang("GET", "/pulls/7$", seconds=1.5)
    lines: list[str] = []
    gh = client(github, sleeps, timeout=0.5, on_retry=lines.append)
    started = time.monotonic()
    assert gh.pull_request(7)["number"] == 7
    assert time.monotonic() - started < 1.4
    assert lines[0].startswith("no answer within 0.5s")
    assert gh.requests_made == 2


# -- a POST whose answer was lost is not repeated blindly ------------------------------------------


@pytest.mark.parametrize("seconds", [None, 1.5], ids=["dropped", "too-slow"])
def test_a_comment_posted_without_an_answer_is_not_posted_twice(
    github: FakeGitHub, sleeps: Sleeps, seconds: float | None
) -> None:
    github.add_comments(7, 120)  # the comment must be found again past the first page
    github.lose("POST", r"/issues/7/comments$", seconds=seconds)
    lines: list[str] = []
    gh = client(github, sleeps, timeout=0.5, on_retry=lines.append)

    result = gh.upsert_comment(7, "the report", MARKER)

    ours = [c for c in github.comments[7] if MARKER in c["body"]]
    assert len(ours) == 1, [c["id"] for c in ours]
    assert result.id == ours[0]["id"] and result.created
    assert ours[0]["body"] == f"{MARKER}\nthe report"
    assert len(github.requests_to("POST")) == 1
    assert len(github.requests_to("PATCH", rf"/comments/{result.id}$")) == 1
    assert len(lines) == 1


def test_a_commit_comment_is_sticky_and_never_posted_twice(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    """The promotion note where there is no PR: one comment per commit and marker, found again
    across pages after a lost answer, updated on a re-run; another user's stays as it is."""
    for i in range(120):
        github.add_commit_comment(HEAD, f"comment {i}")
    theirs = github.add_commit_comment(HEAD, f"{MARKER}\nnot ours")
    github.lose("POST", rf"/commits/{HEAD}/comments$")
    lines: list[str] = []
    gh = client(github, sleeps, timeout=0.5, on_retry=lines.append)

    first = gh.upsert_commit_comment(HEAD, "the note", MARKER)
    again = gh.upsert_commit_comment(HEAD, "the note, re-run", MARKER)

    ours = [c for c in github.commit_comments[HEAD] if c["user"]["login"] == "octocat"]
    assert len(ours) == 1 and first.id == again.id == ours[0]["id"]
    assert first.created and not again.created
    assert ours[0]["body"] == f"{MARKER}\nthe note, re-run"
    assert github.commit_comments[HEAD][120] == theirs  # untouched
    assert len(github.requests_to("POST")) == 1  # the lost one, found again, not sent twice
    assert len(github.requests_to("PATCH", rf"/comments/{first.id}$")) == 2
    assert len(lines) == 1


def test_a_check_run_created_without_an_answer_is_not_created_twice(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    # Another run of the same name on this commit (an earlier job) is not taken for ours.
    GitHubClient(github.url, github.integration_token, github.repo, sleep=sleeps).create_check_run(
        HEAD, "mlci", "failure", "earlier", "an earlier job"
    )
    github.lose("POST", r"/check-runs$")
    notes = [Annotation("data.csv", f"row {i}", "bad value", start_line=i) for i in range(1, 61)]
    gh = client(github, sleeps, token=github.integration_token)

    url = gh.create_check_run(HEAD, "mlci", "success", "Gates passed", "all good", notes)

    assert len(github.check_runs) == 2
    earlier, ours = github.check_runs.values()
    assert earlier["json"]["output"]["summary"] == "an earlier job"
    assert url == ours["json"]["html_url"]
    assert ours["json"]["conclusion"] == "success"
    assert len(ours["annotations"]) == 60  # the first batch of 50 is not added twice
    assert len(github.requests_to("POST", r"/check-runs$")) == 2  # the earlier job's and ours
    assert len(github.requests_to("GET", rf"/commits/{HEAD}/check-runs$")) == 1


def test_an_annotation_batch_applied_without_an_answer_is_not_added_twice(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    github.lose("PATCH", r"/check-runs/\d+$", seconds=1.5)
    notes = [Annotation("data.csv", f"row {i}", "bad value", start_line=i) for i in range(1, 121)]
    gh = client(github, sleeps, token=github.integration_token, timeout=0.5)
    gh.create_check_run(HEAD, "mlci", "failure", "Gate failed", "see rows", notes)
    (run,) = github.check_runs.values()
    assert len(run["annotations"]) == 120
    assert [a["message"] for a in run["annotations"]] == [f"row {i}" for i in range(1, 121)]
    assert run["json"]["output"]["annotations_count"] == 120


def test_a_check_run_post_that_never_arrived_is_sent_again(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    github.drop("POST", r"/check-runs$")  # closed before GitHub applied it
    gh = client(github, sleeps, token=github.integration_token)
    url = gh.create_check_run(HEAD, "mlci", "success", "Gates passed", "all good")
    (run,) = github.check_runs.values()
    assert url == run["json"]["html_url"]
    assert len(github.requests_to("GET", rf"/commits/{HEAD}/check-runs$")) == 1  # looked first
    assert len(github.requests_to("POST", r"/check-runs$")) == 2


def test_a_lost_answer_on_every_try_still_leaves_one_comment(
    github: FakeGitHub, sleeps: Sleeps
) -> None:
    github.lose("POST", r"/issues/7/comments$", times=10)
    github.lose("PATCH", r"/issues/comments/", times=10)
    gh = client(github, sleeps, max_tries=3)
    with pytest.raises(GitHubError, match="gave up after 3 tries"):
        gh.upsert_comment(7, "the report", MARKER, author="octocat")
    assert len([c for c in github.comments[7] if MARKER in c["body"]]) == 1
    assert len(github.requests_to("POST")) == 1


# -- errors that name the fix ---------------------------------------------------------------------


def test_bad_token_is_401_with_the_secret_named(github: FakeGitHub, sleeps: Sleeps) -> None:
    gh = client(github, sleeps, token="ghp_notARealToken123")
    with pytest.raises(GitHubError) as err:
        gh.pull_request(7)
    assert err.value.exit_code == EXIT_EXTERNAL
    assert "invalid or expired" in err.value.message and "Bad credentials" in err.value.message
    assert err.value.fix and "GITHUB_TOKEN" in err.value.fix
    assert len(github.requests) == 1  # not retried


def test_missing_repository_is_404_naming_it(github: FakeGitHub, sleeps: Sleeps) -> None:
    gh = GitHubClient(github.url, github.token, "octo/missing", sleep=sleeps)
    with pytest.raises(GitHubError) as err:
        gh.upsert_comment(7, "x", MARKER, author="octocat")
    assert "octo/missing" in err.value.message and "not visible" in err.value.message
    assert err.value.exit_code == EXIT_EXTERNAL


def test_missing_pull_request_is_404_naming_it(github: FakeGitHub, sleeps: Sleeps) -> None:
    with pytest.raises(GitHubError) as err:
        client(github, sleeps).pull_request(999)
    assert "pull request #999 in octo/demo" in err.value.message


def test_forbidden_comment_names_the_permission(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail(
        "POST",
        "/comments$",
        403,
        body={"message": "Resource not accessible by integration", "documentation_url": "x"},
    )
    with pytest.raises(GitHubError) as err:
        client(github, sleeps).upsert_comment(7, "x", MARKER, author="octocat")
    assert err.value.fix and "pull-requests: write" in err.value.fix
    assert "Resource not accessible by integration" in err.value.message
    assert len(github.requests_to("POST")) == 1  # a permission error is not retried


def test_check_run_with_a_user_token_names_checks_write(github: FakeGitHub, sleeps: Sleeps) -> None:
    with pytest.raises(GitHubError) as err:
        client(github, sleeps).create_check_run(HEAD, "mlci", "success", "ok", "all good")
    assert err.value.fix and "checks: write" in err.value.fix
    assert "GitHub App" in err.value.message


def test_forbidden_status_names_statuses_write(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail("POST", "/statuses/", 403, body={"message": "Forbidden", "documentation_url": ""})
    with pytest.raises(GitHubError) as err:
        client(github, sleeps).set_commit_status(HEAD, "success", "ok", "mlci")
    assert err.value.fix and "statuses: write" in err.value.fix


def test_422_carries_githubs_messages(github: FakeGitHub, sleeps: Sleeps) -> None:
    github.fail(
        "PATCH",
        "/issues/comments/",
        422,
        body={
            "message": "Validation Failed",
            "errors": [{"resource": "IssueComment", "code": "custom", "message": "Body is bad"}],
            "documentation_url": "x",
        },
    )
    gh = client(github, sleeps)
    gh.upsert_comment(7, "one", MARKER)
    with pytest.raises(GitHubError) as err:
        gh.upsert_comment(7, "two", MARKER)
    assert "Validation Failed" in err.value.message and "Body is bad" in err.value.message
    assert "422" in err.value.message and err.value.exit_code == EXIT_EXTERNAL


def test_invalid_check_run_gets_the_servers_422(github: FakeGitHub, sleeps: Sleeps) -> None:
    gh = client(github, sleeps, github.integration_token)
    with pytest.raises(GitHubError) as err:
        gh.create_check_run(HEAD, "mlci", "great", "t", "s")
    assert "422" in err.value.message and "'great' is not one of" in err.value.message
    assert github.violations and "conclusion" in github.violations[0]
    github.violations.clear()  # this test sent a wrong request on purpose


# -- check runs and statuses ----------------------------------------------------------------------


def test_check_run_annotations_go_in_batches_of_50(github: FakeGitHub, sleeps: Sleeps) -> None:
    notes = [
        Annotation(f"data/f{i}.csv", f"row {i} bad", "invalid", "warning", i + 1, i + 1)
        for i in range(120)
    ]
    gh = client(github, sleeps, github.integration_token)
    with pytest.raises(GitHubError):  # the renderer fits the body; too long is a bug, not a cut
        gh.create_check_run(HEAD, "mlci", "failure", "Gate failed", "x" * 70_000, notes)
    assert not github.requests_to("POST")
    url = gh.create_check_run(HEAD, "mlci", "failure", "Gate failed", "x" * 60_000, notes)
    posts, patches = github.requests_to("POST"), github.requests_to("PATCH")
    assert len(posts) == 1 and len(patches) == 2
    sizes = [len(r.body["output"]["annotations"]) for r in [*posts, *patches]]
    assert sizes == [50, 50, 20]
    assert posts[0].body["conclusion"] == "failure" and posts[0].body["head_sha"] == HEAD
    assert posts[0].body["output"]["summary"] == "x" * 60_000 and CHECK_TEXT_LIMIT > 60_000
    (run,) = github.check_runs.values()
    assert [a["path"] for a in run["annotations"]] == [n.path for n in notes]
    assert url == run["json"]["html_url"]
    assert patches[0].path.endswith(f"/check-runs/{run['json']['id']}")


def test_commit_status(github: FakeGitHub, sleeps: Sleeps) -> None:
    client(github, sleeps).set_commit_status(
        HEAD, "failure", "accuracy fell " * 20, "mlci/report", "https://ci.example/run/1"
    )
    (status,) = github.statuses
    assert status["state"] == "failure" and status["context"] == "mlci/report"
    assert len(status["description"]) <= 140
    assert status["target_url"] == "https://ci.example/run/1"


# -- the runner's files ----------------------------------------------------------------------------


def parse_github_output(text: str) -> dict[str, str]:
    """What the Actions runner does with $GITHUB_OUTPUT."""
    out: dict[str, str] = {}
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line:
            i += 1
            continue
        m = re.fullmatch(r"([^=<]+)<<(.+)", line)
        if m:
            name, delim = m.groups()
            end = lines.index(delim, i + 1)
            out[name] = "\n".join(lines[i + 1 : end])
            i = end + 1
        else:
            name, _, value = line.partition("=")
            out[name] = value
            i += 1
    return out


def test_outputs_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "output"
    path.write_text("earlier=1\n")
    tricky = "line one\nEOF\nghadelimiter_x\nname=not-an-output\n"
    write_outputs(path, {"verdict": "passed", "report": tricky, "empty": ""})
    text = path.read_text()
    assert parse_github_output(text) == {
        "earlier": "1",
        "verdict": "passed",
        "report": tricky,
        "empty": "",
    }
    delim = re.search(r"^report<<(.+)$", text, re.M)
    assert delim and delim.group(1) not in tricky
    with pytest.raises(ValueError):
        write_outputs(path, {"bad\nname": "x"})


def test_step_summary_stays_within_1_mib(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    path.write_text("# earlier step\n")
    report = ("| metric | é |\n" * 200_000)[: 2 * 1024 * 1024]
    write_step_summary(path, report)
    data = path.read_bytes()
    assert len(data) <= SUMMARY_LIMIT
    assert data.startswith(b"# earlier step\n")
    assert b"shortened to fit GitHub's limit" in data[-400:]
    data.decode("utf-8")  # not cut inside a character
    write_step_summary(path, "more")
    assert len(path.read_bytes()) <= SUMMARY_LIMIT


def test_small_step_summary_is_appended_whole(tmp_path: Path) -> None:
    path = tmp_path / "summary.md"
    write_step_summary(path, "# one")
    write_step_summary(path, "# two\n")
    assert path.read_text() == "# one\n# two\n"


# -- secrets ---------------------------------------------------------------------------------


def test_token_only_ever_in_the_authorization_header(github: FakeGitHub, sleeps: Sleeps) -> None:
    errors: list[str] = []
    github.add_comments(7, 120, user="octocat")
    gh = client(github, sleeps)
    gh.upsert_comment(7, "x", MARKER)
    gh.set_commit_status(HEAD, "success", "ok", "mlci")
    github.fail("GET", "/pulls/", 502, times=10)
    github.fail("POST", "/statuses/", 422, body={"message": "Validation Failed", "errors": ["e"]})
    for call in (
        lambda: gh.pull_request(7),
        lambda: gh.set_commit_status(HEAD, "success", "ok", "mlci"),
        lambda: gh.create_check_run(HEAD, "mlci", "success", "t", "s"),
        lambda: GitHubClient(github.url, github.token, "octo/nope", sleep=sleeps).pull_request(1),
    ):
        with pytest.raises(GitHubError) as err:
            call()
        errors += [str(err.value), repr(err.value), err.value.one_line()]
    token = github.token
    for text in [*errors, repr(gh), str(gh.__dict__.get("_session"))]:
        assert token not in text
    assert len(github.requests) > 5
    for req in github.requests:
        assert req.headers["authorization"] == f"Bearer {token}"
        others = {k: v for k, v in req.headers.items() if k != "authorization"}
        assert token not in repr(others)
        assert token not in req.path and token not in repr(req.query) and token not in req.raw
    assert "octo/demo" in repr(gh) and "GitHubClient(" in repr(gh)


def test_every_request_has_githubs_headers(github: FakeGitHub, sleeps: Sleeps) -> None:
    client(github, sleeps).upsert_comment(7, "x", MARKER)
    for req in github.requests:
        assert req.headers["accept"] == "application/vnd.github+json"
        assert req.headers["x-github-api-version"] == "2022-11-28"
        assert req.headers["user-agent"] == "mlci"
