"""`mlci publish --from DIR` treats the saved report as untrusted input: it reads regular files
inside DIR only, bounded in size and depth, and strips every report marker from the text.

Each test runs the real CLI in a subprocess, as the `workflow_run` job does, against the loopback
GitHub API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mlci.report.render import MARKER_PREFIX, marker_for

from conftest import git
from github_server import FakeGitHub

HEAD = "a" * 40  # the fake's PR 7 head
SECRET = "s3cr3t-value-that-must-never-be-posted"


@pytest.fixture
def publisher(tmp_path: Path) -> Path:
    """The publishing job's checkout: a git repo with no mlci settings (all defaults)."""
    root = tmp_path / "publisher"
    root.mkdir()
    git(root, "init", "-q")
    return root


def save(directory: Path, report: str = "# Report\n", **meta: object) -> Path:
    """An artifact as `mlci run --save` writes it (PR 7 at the fake's head)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.md").write_text(report, encoding="utf-8")
    fields = {
        "pr_number": 7,
        "head_sha": HEAD,
        "verdict": "passed",
        "summary": "all gates passed",
        "exit_code": 0,
        "report_name": "mlci",
        "repository": "octo/demo",
    }
    (directory / "meta.json").write_text(json.dumps(fields | meta), encoding="utf-8")
    return directory


def publish_from(
    github: FakeGitHub, root: Path, artifact: Path, work: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    event = work / "run.json"
    event.write_text(json.dumps({"workflow_run": {"head_sha": HEAD}}))
    env = dict(os.environ)
    env.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "workflow_run",
            "GITHUB_EVENT_PATH": str(event),
            "GITHUB_REPOSITORY": github.repo,
            "GITHUB_TOKEN": github.token,
            "GITHUB_API_URL": github.url,
            "GITHUB_STEP_SUMMARY": str(work / "summary.md"),
            "GITHUB_OUTPUT": str(work / "output.txt"),
            **extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "mlci", "publish", "--from", str(artifact)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,  # a reader that blocks on a FIFO would hang here
    )


# -- files that are not what they claim --------------------------------------------------------


def _secret_file(art: Path) -> Path:
    secret = art.parent / "secret.txt"  # outside the artifact directory
    secret.write_text(f"TOKEN={SECRET}\n")
    return secret


def symlink_to_environ(art: Path) -> None:
    (art / "report.md").unlink()
    (art / "report.md").symlink_to("/proc/self/environ")


def symlink_outside(art: Path) -> None:
    (art / "report.md").unlink()
    (art / "report.md").symlink_to(_secret_file(art))


def hard_link_outside(art: Path) -> None:
    (art / "report.md").unlink()
    os.link(_secret_file(art), art / "report.md")


def fifo(art: Path) -> None:
    (art / "report.md").unlink()
    os.mkfifo(art / "report.md")


def meta_symlink(art: Path) -> None:
    real = art.parent / "meta-elsewhere.json"
    (art / "meta.json").rename(real)
    (art / "meta.json").symlink_to(real)


def meta_too_large(art: Path) -> None:
    meta = json.loads((art / "meta.json").read_text())
    meta["summary"] = SECRET + "x" * 200_000
    (art / "meta.json").write_text(json.dumps(meta))


def _nested_meta(levels: int) -> Callable[[Path], None]:
    def make(art: Path) -> None:
        meta = json.loads((art / "meta.json").read_text())
        text = json.dumps(meta)[:-1] + ', "extra": ' + "[" * levels + "]" * levels + "}"
        (art / "meta.json").write_text(text)

    return make


def meta_a_list(art: Path) -> None:
    (art / "meta.json").write_text("[7]")


CASES = {
    "report -> /proc/self/environ": (symlink_to_environ, "is a symbolic link"),
    "report -> a file outside": (symlink_outside, "is a symbolic link"),
    "report hard-linked outside": (hard_link_outside, "has 2 hard links"),
    "report is a FIFO": (fifo, "is a named pipe"),
    "meta.json -> a file outside": (meta_symlink, "meta.json is a symbolic link"),
    "meta.json of 200 kB": (meta_too_large, "bytes (limit 65,536)"),
    "meta.json 100,000 deep": (_nested_meta(100_000), "bytes (limit 65,536)"),
    "meta.json 20,000 deep": (_nested_meta(20_000), "nests too deeply to parse"),
    "meta.json 50 deep": (_nested_meta(50), "nests deeper than 8 levels"),
    "meta.json a list": (meta_a_list, "holds a JSON list, not an object"),
}


@pytest.mark.parametrize("case", CASES)
def test_an_artifact_that_is_not_plain_files_is_rejected_cleanly(
    github: FakeGitHub, publisher: Path, tmp_path: Path, case: str
) -> None:
    tamper, expected = CASES[case]
    art = save(tmp_path / "artifact", "# Report\n")
    tamper(art)

    proc = publish_from(github, publisher, art, tmp_path)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1, proc.stderr
    assert "report artifact rejected" in errors[0] and expected in errors[0], errors[0]
    assert "fix:" in errors[0]
    assert "Traceback" not in proc.stderr
    for r in github.requests:
        assert SECRET not in r.raw and github.token not in r.raw
    assert github.requests_to("POST") == [] and github.requests_to("PATCH") == []
    summary = tmp_path / "summary.md"
    assert not summary.exists() or SECRET not in summary.read_text()
    assert SECRET not in proc.stdout + proc.stderr
    assert all(
        github.token not in ln
        for ln in (proc.stdout + proc.stderr).splitlines()
        if not ln.startswith("::add-mask::")
    )
    assert github.violations == []


# -- markers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "hostile",
    [
        "<!-- mlci-<!-- mlci-report:x -->report:other -->",
        "<!-- mlci-rep<!-- mlci-<!-- mlci-report:y -->report:z -->ort:other -->",
        "<!-- mlci-report<!-- mlci-report:mlci -->:other -->",
    ],
)
def test_a_nested_marker_cannot_take_over_another_reports_comment(
    github: FakeGitHub, publisher: Path, tmp_path: Path, hostile: str
) -> None:
    other = github.add_comment(7, f"{marker_for('other')}\nthe other report", user="octocat")
    art = save(tmp_path / "artifact", f"{marker_for('mlci')}\n# Report\n{hostile}\nend\n")

    proc = publish_from(github, publisher, art, tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    (posted,) = [c for c in github.comments[7] if c["id"] != other["id"]]
    assert posted["body"].startswith(marker_for("mlci"))
    assert posted["body"].count(MARKER_PREFIX) == 1, posted["body"]
    assert marker_for("other") not in posted["body"]
    assert other["body"] == f"{marker_for('other')}\nthe other report"
    summary = (tmp_path / "summary.md").read_text()
    assert marker_for("other") not in summary
    assert github.violations == []


@pytest.mark.parametrize("name", ["mlci-promotion", "other"])
def test_an_artifact_posts_only_under_the_report_name_the_job_configured(
    github: FakeGitHub, publisher: Path, tmp_path: Path, name: str
) -> None:
    """A fork's artifact that names another report (the promotion note's, or any other) would
    post under that report's marker: refused, nothing posted."""
    art = save(tmp_path / "artifact", "# Report\n", report_name=name)

    proc = publish_from(github, publisher, art, tmp_path)

    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"report_name '{name}' is not the one this job publishes ('mlci'" in proc.stderr
    assert not github.requests_to("POST") and not github.requests_to("PATCH")
    # the job that publishes that report by name posts it
    ok = publish_from(github, publisher, art, tmp_path, MLCI_REPORT_NAME=name)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (posted,) = github.comments[7]
    assert posted["body"].startswith(marker_for(name))


@pytest.mark.parametrize(("verdict", "conclusion"), [("passed", "neutral"), ("failed", "failure")])
def test_a_forks_claimed_verdict_never_makes_a_green_check(
    github: FakeGitHub, publisher: Path, tmp_path: Path, verdict: str, conclusion: str
) -> None:
    """The check run of an artifact's report carries a name of its own (a required check named
    `mlci: mlci` is never satisfied by it) and a claimed pass is neutral, never success."""
    art = save(tmp_path / "artifact", "# Report\n", verdict=verdict, exit_code=0)

    # the Actions token (an integration: it may create check runs)
    token = github.integration_token
    proc = publish_from(github, publisher, art, tmp_path, MLCI_CHECK_RUN="true", GITHUB_TOKEN=token)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    (run,) = [r["json"] for r in github.check_runs.values()]
    assert run["name"] == "mlci: mlci (reported by the PR's job)"
    assert run["conclusion"] == conclusion
    assert run["output"]["title"].startswith("reported by the PR's job, not verified")
    assert github.violations == []


# -- a lost answer -----------------------------------------------------------------------------


def test_a_comment_posted_without_an_answer_is_posted_once(
    github: FakeGitHub, publisher: Path, tmp_path: Path
) -> None:
    github.lose("POST", r"/issues/7/comments$")  # applied, then the connection drops
    art = save(tmp_path / "artifact", "# Report\n")

    proc = publish_from(github, publisher, art, tmp_path)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    (posted,) = github.comments[7]
    assert posted["body"] == f"{marker_for('mlci')}\n# Report\n"
    assert f"comment-url={posted['html_url']}" in (tmp_path / "output.txt").read_text()
    assert len(github.requests_to("POST")) == 1
    assert github.violations == []
