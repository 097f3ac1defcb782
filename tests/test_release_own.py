"""The careful release (``tests/test_release.py``) on an own-script project: the "templated"
shape of the lifecycle suite (its own scripts, a templated ``dvc.yaml`` with ``vars:`` and a
``foreach`` stage, params in a second file, the data added with ``dvc add``), adopted with
``mlci init`` and walked as its workflows would run it (``tests/shapes/walk.py``) on the
session's ``mlflow server`` (PostgreSQL) and the loopback GitHub.

One story, in order (module-scoped): the baseline becomes champion; a better change merged
through a reviewed pull request becomes the challenger; ``mlci-release.yml`` refuses it before
its probation; two monitor windows in shadow make it ready; the release moves ``champion``
with the reviewer recorded; a degraded window rolls it back automatically; ``mlci history``
shows every move. One training in all: the PR check's (the push job reuses it).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import lifecycle as lc
import pytest
import test_templated as templated
import yaml
from servers import MlflowServer
from shapes import loop, projects
from shapes.walk import Job, PullRequest, Walk

from github_server import FakeGitHub

pytestmark = pytest.mark.slow

AUTHOR, REVIEWER = "octocat", "mlops-lead"  # FakeGitHub's pull requests are octocat's
RELEASE = {"strategy": "challenger", "probation": 2, "approval": "review"}


def snapshots(origin: Path) -> dict[str, str]:
    """Production's labelled windows: the training rows; a fresh week from the same customers
    (the next 240 rows of the same generator); the drifted week with its labels flipped."""
    fresh = templated.churn_csv(480).splitlines()
    return {
        "same": templated.churn_csv(),
        "fresh": "\n".join(fresh[:1] + fresh[241:]) + "\n",
        "degraded": projects.churn_drifted(flip=True),
    }


class Story:
    """The walk (``w``) and what its steps left for the next ones."""

    def __init__(self, w: Walk) -> None:
        self.w = w
        self.pr: PullRequest | None = None  # the reviewed pull request, once merged

    def release(self) -> Job:
        """``mlci-release.yml`` (as ``mlci init`` wrote it) started by hand on main."""
        w = self.w
        checkout = w.checkout("main", "release")
        repo = {"full_name": w.github.repo, "default_branch": "main"}
        payload = {"ref": "refs/heads/main", "inputs": {}, "repository": repo}
        env = w.actions_env(
            checkout,
            "workflow_dispatch",
            payload,
            GITHUB_SHA=lc.git(checkout, "rev-parse", "HEAD").strip(),
            GITHUB_REF="refs/heads/main",
        )
        workflow = checkout / ".github" / "workflows" / "mlci-release.yml"
        return w.run_action("release", checkout, workflow, env)

    def history(self) -> list[dict[str, Any]]:
        """``mlci history --json``, oldest move first."""
        w = self.w
        env = {**w.base_env(), "MLCI_MLFLOW_TRACKING_URI": w.tracking_uri}
        step = w.mlci(w.origin, ("history", "--json"), env)  # a person's checkout of main
        assert step.rc == 0, step.log
        return list(json.loads(step.stdout[step.stdout.index("[") :]))

    def aliases(self) -> tuple[str | None, str | None, str | None]:
        """(champion, previous, challenger)."""
        from mlci.registry import models as registry

        found = registry.aliases(self.w.client(), self.w.model)
        return found.get("champion"), found.get("previous"), found.get("challenger")

    def tags(self, version: str) -> dict[str, str]:
        return dict(self.w.client().get_model_version(self.w.model, version).tags)

    def trained(self) -> list[str]:
        """``$TRAIN_LOG``: one line per training, ``C=<model.C>``."""
        log = self.w.log
        return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


def _settings(root: Path) -> None:
    """The team's release and monitor settings, on main (the trusted branch)."""
    path = root / "params.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["mlci"]["release"] = dict(RELEASE)
    doc["mlci"]["monitor"]["snapshot"] = "data/snapshots/same.csv"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")


@pytest.fixture(scope="module")
def story(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The templated project built (main trained and pushed), adopted (``mlci init``, the
    team's review: model name, monitor label ``churned``) and given the release settings."""
    shape = dataclasses.replace(projects.templated_shape(), snapshots=snapshots)
    model = f"release-own-{uuid.uuid4().hex[:6]}"
    work, github = tmp_path_factory.mktemp("release-own"), FakeGitHub().start()
    w = Walk(shape, work, github, mlflow_server.url, model)
    try:
        w.build()
        loop.adopt(w)
        w.commit_on_main("Release a challenger after two windows and a review", _settings)
        yield Story(w)
    finally:
        w.github.stop()


def test_the_settings_are_the_teams(story: Story) -> None:
    from mlci.settings.config import load

    settings = load(story.w.origin, env={})
    assert settings.model_name == story.w.model
    r = settings.release
    assert (r.strategy, r.probation, r.approval) == ("challenger", 2, "review")
    assert (settings.monitor.label, settings.monitor.snapshot) == (
        "churned",
        "data/snapshots/same.csv",
    )


def test_the_first_version_becomes_champion(story: Story) -> None:
    w = story.w
    job = w.push_job(w.sha())
    assert job.rc == 0 and job.promote is not None, job.log
    assert "champion -> v1" in job.promote.stdout, job.log
    assert job.promote.outputs["model-version"] == "1", job.log
    assert job.promote.outputs["challenger-version"] == "", job.log  # the first: champion
    assert story.aliases() == ("1", None, None)
    assert story.tags("1")["mlci.git_sha"] == w.sha()
    assert story.trained() == []  # main's outputs came from the DVC remote


def test_a_reviewed_better_change_becomes_the_challenger(story: Story) -> None:
    w = story.w
    edit = w.shape.better
    story.pr = pr = w.open_pr("team/better", edit.message, edit.apply)
    w.github.add_review(pr.number, AUTHOR)  # the author's own approval counts for nothing
    w.github.add_review(pr.number, REVIEWER)
    check = w.pr_check(pr)
    assert check.rc == 0 and check.facts()["verdict"] == "passed", check.log
    assert story.trained() == ["C=1.0"], check.log
    merge = w.merge(pr)
    job = w.push_job(merge)
    assert job.rc == 0 and job.promote is not None, job.log
    assert "version 2 is the challenger; champion stays v1" in job.promote.stdout, job.log
    assert job.promote.outputs["model-version"] == "1", job.log  # the champion (action.yml)
    assert job.promote.outputs["challenger-version"] == "2", job.log
    notes = [c["body"] for c in w.github.comments[pr.number] if "mlci-promotion" in c["body"]]
    assert len(notes) == 1 and "## 🧪 mlci promotion: challenger" in notes[0], notes
    assert story.aliases() == ("1", None, "2")
    tags = story.tags("2")
    assert (tags["mlci.git_sha"], tags["mlci.pr"]) == (merge, str(pr.number))
    assert not any(k.startswith("mlci.ledger.") for k in tags), sorted(tags)
    assert story.trained() == ["C=1.0"], job.log  # the push job reused the PR's training


def test_a_release_before_the_probation_is_refused(story: Story) -> None:
    job = story.release()
    assert job.rc == 4 and job.mlci.rc == 4, job.log
    assert "challenger v2 has passed 0 of 2 probation windows in a row" in job.mlci.stderr
    assert "Traceback" not in job.mlci.stderr, job.log
    assert story.aliases() == ("1", None, "2")
    assert "mlci.released" not in story.tags("2")


def test_two_windows_in_shadow_make_the_challenger_ready(story: Story) -> None:
    w = story.w
    w.ingest()
    first = w.monitor("same")
    assert first.rc == 0 and first.mlci.outputs["status"] == "healthy", first.log
    assert "Challenger v2 in shadow beside champion v1" in first.mlci.stdout, first.log
    assert "Probation: 1 of 2 windows passed in a row (1 judged)" in first.mlci.stdout
    assert first.mlci.outputs["challenger-ready"] == "false", first.log
    second = w.monitor("fresh")
    assert second.rc == 0 and second.mlci.outputs["status"] == "healthy", second.log
    assert "Probation: 2 of 2 windows passed in a row (2 judged)" in second.mlci.stdout
    assert second.mlci.outputs["challenger-ready"] == "true", second.log
    tags = story.tags("2")
    windows = [json.loads(v) for k, v in tags.items() if k.startswith("mlci.ledger.challenger.")]
    assert len(windows) == 2 and {e["against"] for e in windows} == {"1"}, windows
    assert all(e["passed"] for e in windows), windows
    better = [e["metrics"]["accuracy"] >= e["champion_metrics"]["accuracy"] for e in windows]
    assert all(better), windows
    assert story.aliases() == ("1", None, "2")  # the monitor never releases
    assert w.github.issues == {}  # healthy windows open no issue


def test_the_release_moves_champion_with_the_reviewer_recorded(story: Story) -> None:
    pr = story.pr
    assert pr is not None
    job = story.release()
    assert job.rc == 0, job.log
    said = f"approved by {REVIEWER} (review of PR #{pr.number})"
    assert "champion v1 -> v2, previous -> v1; probation 2 of 2" in job.mlci.stdout, job.log
    assert said in job.mlci.stdout and AUTHOR not in job.mlci.stdout, job.log
    assert story.aliases() == ("2", "1", None)
    released = json.loads(story.tags("2")["mlci.released"])
    assert released["approved_by"] == [f"{REVIEWER} (review of PR #{pr.number})"]
    assert released["forced"] is False


def test_a_degraded_window_rolls_the_new_champion_back(story: Story) -> None:
    w = story.w
    job = w.monitor("degraded", "--on-breach", "rollback")
    assert job.rc == 4 and job.mlci.outputs["status"] == "degraded", job.log
    said = "Rolled back automatically: `champion` moved from v2 back to v1"
    assert said in job.mlci.stdout, job.log
    assert job.mlci.outputs["rolled-back"] == "1", job.log
    assert story.aliases() == ("1", None, None)
    assert story.tags("2").get("mlci.rolled_back") == "true"
    assert story.tags("1").get("mlci.rollback.from_version") == "2"
    (issue,) = w.github.issues.values()
    assert issue["state"] == "open" and issue["title"].endswith("champion degraded"), issue
    assert said in issue["body"] and "v2 (`champion`)" in issue["body"], issue["body"]
    assert job.mlci.outputs["issue-url"] == issue["html_url"], job.log
    assert len(w.github.pulls) == 3  # FakeGitHub's two and ours: no retraining PR


def test_history_shows_every_move_in_order(story: Story) -> None:
    pr = story.pr
    assert pr is not None
    moves = story.history()
    shown = [(m["alias"], m["before"], m["after"]) for m in moves]
    assert shown == [
        ("champion", None, "1"),
        ("challenger", None, "2"),
        ("challenger", "2", None),
        ("previous", None, "1"),
        ("champion", "1", "2"),
        ("previous", "1", None),
        ("champion", "2", "1"),
    ], shown
    first, challenger, release, rollback = moves[0], moves[1], moves[4], moves[6]
    assert first["why"] == challenger["why"] == "promotion (challenger first)"
    assert challenger["git_sha"] == pr.merged and challenger["pr"] == str(pr.number)
    assert release["why"] == "release" and release["actor"] == "octocat"  # GITHUB_ACTOR
    assert release["approved_by"] == [f"{REVIEWER} (review of PR #{pr.number})"]
    assert rollback["why"].startswith("automatic rollback: v2 failed in window 1 of 2"), rollback
    assert "accuracy" in rollback["why"], rollback
    assert [m["at"] for m in moves] == sorted(m["at"] for m in moves)


def test_one_training_in_all_and_github_spoken_to_by_the_book(story: Story) -> None:
    assert story.trained() == ["C=1.0"]  # the baseline was trained before the walk
    assert not story.w.github.violations, story.w.github.violations
