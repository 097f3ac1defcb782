"""A careful release on the bundled example (git, DVC, MLflow, the loopback GitHub): the merge
makes a challenger, the monitor judges it in shadow window by window, `mlci release` moves
`champion` only after the probation and an approval GitHub vouches for, the guard rolls a
champion that fails in its probation back (once), and `mlci history` shows every move.

One story, in order (module-scoped). Two releases racing run on the team's `mlflow server`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from servers import MlflowServer

from conftest import Workspace, git
from github_server import FakeGitHub

pytestmark = pytest.mark.slow

MODEL = "diabetes-progression"
RUN_ID = "4242"
INTENDED = "triage <img src=x onerror=alert(1)> for @octocat, see #1"


class Story:
    def __init__(self, ws: Workspace, github: FakeGitHub) -> None:
        self.ws, self.github, self.p = ws, github, ws.project

    def env(self, **extra: str) -> dict[str, str]:
        out = self.ws.work / "outputs.txt"
        out.write_text("", encoding="utf-8")
        env = {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "workflow_dispatch",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REPOSITORY": self.github.repo,
            "GITHUB_TOKEN": self.github.token,
            "GITHUB_API_URL": self.github.url,
            "GITHUB_RUN_ID": RUN_ID,
            "GITHUB_ACTOR": "octocat",
            "GITHUB_OUTPUT": str(out),
        }
        return {**env, **extra}

    def mlci(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return self.ws.mlci(self.p, *args, **self.env(**env))

    def outputs(self) -> dict[str, str]:
        lines = (self.ws.work / "outputs.txt").read_text(encoding="utf-8").splitlines()
        return dict(line.split("=", 1) for line in lines if "=" in line)

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.ws.tracking_uri, registry_uri=self.ws.tracking_uri)

    def alias(self, name: str) -> str | None:
        try:
            return str(self.client().get_model_version_by_alias(MODEL, name).version)
        except Exception:
            return None

    def history(self) -> list[dict[str, Any]]:
        run = self.mlci("history", "--json")
        assert run.returncode == 0, run.stdout + run.stderr
        return list(json.loads(run.stdout[run.stdout.index("[") :]))

    def settings(self, **release: Any) -> None:
        """Change ``mlci.release`` on main (the trusted branch) and commit it."""
        path = self.p / "params.yaml"
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        doc["mlci"]["release"] = {**doc["mlci"].get("release", {}), **release}
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        git(self.p, "commit", "-qam", f"release settings: {release}")


def _ok(run: subprocess.CompletedProcess[str]) -> str:
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


@pytest.fixture(scope="module")
def story(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    """The example with ``release: {strategy: challenger, probation: 2}``, three snapshots:
    two labelled windows of the training data (its rows in two orders), one with its labels
    flipped (the champion fails its gates there), and the loopback GitHub (PR #7 merged the
    tuned model)."""
    import pandas as pd

    work = tmp_path_factory.mktemp("release") / "work"
    shutil.copytree(template, work, symlinks=True)
    github = FakeGitHub().start()
    s = Story(Workspace(work), github)
    s.settings(strategy="challenger", probation=2)
    path = s.p / "params.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["mlci"]["card"] = {"intended_use": INTENDED, "limitations": "not for diagnosis"}
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    git(s.p, "commit", "-qam", "the card's words")
    train = pd.read_csv(s.p / "data" / "diabetes.csv")
    snaps = s.p / "data" / "snapshots"
    snaps.mkdir()
    train.to_csv(snaps / "week1.csv", index=False)  # the champion holds on both windows
    train.sample(frac=1.0, random_state=7).to_csv(snaps / "week2.csv", index=False)
    flipped = train.copy()
    flipped["high_progression"] = 1 - flipped["high_progression"]
    flipped.to_csv(snaps / "flipped.csv", index=False)
    try:
        yield s
    finally:
        github.stop()


def test_the_first_version_becomes_champion(story: Story) -> None:
    out = _ok(story.ws.mlci(story.p, "promote"))
    assert "champion -> v1" in out
    assert (story.alias("champion"), story.alias("challenger")) == ("1", None)


def test_every_promotion_writes_a_model_card(story: Story) -> None:
    from cmark import assert_inert, render

    text = _ok(story.ws.mlci(story.p, "card"))
    assert "# Model card: diabetes-progression v1" in text
    assert "v1 (champion)" in text and "| `data/diabetes.csv` |" in text
    assert "## Metrics against the champion" in text and "`accuracy`" in text
    assert "not for diagnosis" in text and "MB of model files" in text
    words = text[text.index("## Intended use") : text.index("## Limitations")]
    assert_inert(render(words), "@octocat", "#1")  # the card's own words are data too
    run_id = story.client().get_model_version(MODEL, "1").run_id
    from mlflow.tracking import MlflowClient

    listed = MlflowClient(story.ws.tracking_uri).list_artifacts(run_id, "model-card")
    assert sorted(a.path for a in listed) == [
        "model-card/model-card.json",
        "model-card/model-card.md",
    ]
    missing = story.ws.mlci(story.p, "card", "--version", "9")
    assert missing.returncode == 2 and "has no version 9" in missing.stderr


def test_the_card_shows_what_drives_the_predictions(story: Story, tmp_path: Path) -> None:
    text = _ok(story.ws.mlci(story.p, "card"))
    drives = text[text.index("## What drives its predictions") : text.index("## Size")]
    assert "Not available" not in drives, drives
    shown = re.search(r"how much accuracy drops .* seed 0, on (\d+) evaluation rows", drives)
    assert shown is not None, drives
    row = r"^\| (\d+) \| `([^`]+)` \| (-?\d+\.\d{4}) \| (\d+\.\d{4}) \|$"
    top = re.findall(row, drives, re.M)
    assert len(top) == 10 and [int(r[0]) for r in top] == list(range(1, 11)), drives
    assert float(top[0][2]) > 0 and float(top[0][2]) >= float(top[-1][2]), drives
    run_id = story.client().get_model_version(MODEL, "1").run_id
    got = story.client().download_artifacts(run_id, "model-card/model-card.json", str(tmp_path))
    doc = json.loads(Path(got).read_text(encoding="utf-8"))["importance"]
    assert doc["not_available"] is None and doc["rows"] == int(shown[1])
    assert [(f["feature"], f"{f['importance']:.4f}") for f in doc["features"]] == [
        (name, value) for _, name, value, _ in top
    ]


def test_the_merge_makes_a_challenger_and_the_champion_stays(story: Story) -> None:
    p = story.p
    git(p, "merge", "-q", "--no-edit", "pr/tune-model")
    sha = git(p, "rev-parse", "HEAD").strip()
    story.github.merge_pull(7, sha)
    out = _ok(story.ws.mlci(p, "promote"))
    assert "version 2 is the challenger; champion stays v1" in out, out
    assert "🧪" in out and "promotion: challenger" in out  # the note says so
    assert (story.alias("champion"), story.alias("challenger")) == ("1", "2")
    assert "| model card | `runs:/" in out  # linked from the note
    card = _ok(story.ws.mlci(p, "card", "--version", "2"))
    assert "v2 (challenger)" in card and "Pending: a challenger is approved when" in card


def test_a_release_before_the_probation_is_refused(story: Story) -> None:
    run = story.mlci("release")
    assert run.returncode == 4, run.stdout + run.stderr
    assert "challenger v2 has passed 0 of 2 probation windows" in run.stderr
    assert "Traceback" not in run.stderr
    assert story.alias("champion") == "1"


def test_two_windows_in_shadow_make_it_ready_and_a_rerun_counts_once(story: Story) -> None:
    run = story.mlci("monitor", "--snapshot", "data/snapshots/week1.csv")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Challenger v2 in shadow beside champion v1" in run.stdout
    assert "Probation: 1 of 2 windows passed in a row (1 judged)" in run.stdout
    assert story.outputs()["challenger-ready"] == "false"
    again = story.mlci("monitor", "--snapshot", "data/snapshots/week1.csv")  # the same window
    assert "Probation: 1 of 2 windows passed in a row (1 judged)" in again.stdout
    run = story.mlci("monitor", "--snapshot", "data/snapshots/week2.csv")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Probation: 2 of 2 windows passed in a row (2 judged)" in run.stdout
    assert "run the release workflow (`mlci release`)" in run.stdout
    assert story.outputs()["challenger-ready"] == "true"
    tags = story.client().get_model_version(MODEL, "2").tags
    windows = [k for k in tags if k.startswith("mlci.ledger.challenger.")]
    assert len(windows) == 2
    entry = json.loads(tags[windows[0]])
    assert entry["against"] == "1" and entry["passed"] is True
    assert set(entry["metrics"]) >= {"accuracy", "roc_auc", "log_loss"}
    assert set(entry["champion_metrics"]) == set(entry["metrics"])


def test_approval_by_the_prs_own_author_is_refused(story: Story) -> None:
    story.settings(approval="review")
    story.github.add_review(7, "octocat")  # the PR's author
    run = story.mlci("release")
    assert run.returncode == 4, run.stdout + run.stderr
    assert "PR #7 has no approving review by anyone but its author (octocat)" in run.stderr
    assert story.alias("champion") == "1"


def test_a_pull_request_cannot_waive_the_approval() -> None:
    """``release.approval`` is a trust key: on a PR, the base branch's value holds."""
    from mlci.settings.config import TRUST_KEYS

    assert {"release.approval", "release.environment"} <= set(TRUST_KEYS)


def test_a_forged_approval_in_the_prs_files_is_ignored(story: Story, tmp_path: Path) -> None:
    """A PR that sets ``release.approval: none`` in its own params.yaml: the settings of a PR
    job take the base branch's value, so the release still asks GitHub and is refused."""
    from mlci.settings.config import load

    p = story.p
    git(p, "checkout", "-q", "-b", "pr/forge")
    path = p / "params.yaml"
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc["mlci"]["release"]["approval"] = "none"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    git(p, "commit", "-qam", "approve myself")
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"pull_request": {"number": 9, "base": {"ref": "main"}}}))
    try:
        env = {
            "GITHUB_EVENT_NAME": "pull_request",
            "GITHUB_BASE_REF": "main",
            "GITHUB_EVENT_PATH": str(event),
        }
        assert load(p, env=env).release.approval == "review"  # the base branch's
        assert load(p, env={}).release.approval == "none"  # a local run trusts its files
        run = story.mlci("release", **env)
        assert run.returncode == 4, run.stdout + run.stderr
        assert "no approving review" in run.stderr
    finally:
        git(p, "checkout", "-q", "main")
    assert story.alias("champion") == "1"


def test_no_environment_approval_is_refused_then_an_approved_run_releases(story: Story) -> None:
    story.settings(approval="environment")
    run = story.mlci("release")
    assert run.returncode == 4, run.stdout + run.stderr
    assert "no reviewer of the environment 'model-release' approved this workflow run" in (
        run.stderr
    )
    story.github.approve_run(int(RUN_ID), "release-manager")
    out = _release_workflow(story)  # the workflow `mlci init` writes, run by act
    assert "champion v1 -> v2, previous -> v1" in out
    assert "approved by release-manager (environment model-release)" in out
    assert (story.alias("champion"), story.alias("previous"), story.alias("challenger")) == (
        "2",
        "1",
        None,
    )
    released = json.loads(story.client().get_model_version(MODEL, "2").tags["mlci.released"])
    assert released["approved_by"] == ["release-manager (environment model-release)"]
    assert released["forced"] is False


def _release_workflow(story: Story) -> str:
    """``.github/workflows/mlci-release.yml`` on a checkout of main, under act (host mode)."""
    from test_action import checkout, run_workflow

    ci = checkout(story.ws, "main")
    gh = story.github
    proc = run_workflow(
        story.ws,
        ci,
        "mlci-release.yml",
        "workflow_dispatch",
        {"inputs": {}},
        {"GITHUB_TOKEN": gh.token, "MLFLOW_TRACKING_URI": story.ws.tracking_uri},
        {"GITHUB_API_URL": gh.url, "GITHUB_REPOSITORY": gh.repo, "GITHUB_RUN_ID": RUN_ID},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert story.github.token not in log
    assert not story.github.violations, story.github.violations
    return log


def test_a_champion_failing_in_its_probation_is_rolled_back_once(story: Story) -> None:
    run = story.mlci(
        "monitor", "--snapshot", "data/snapshots/flipped.csv", "--on-breach", "rollback"
    )
    assert run.returncode == 4, run.stdout + run.stderr  # the champion did degrade
    assert "Rolled back automatically: `champion` moved from v2 back to v1" in run.stdout
    assert story.outputs()["rolled-back"] == "1"
    assert (story.alias("champion"), story.alias("previous")) == ("1", None)
    # v1 fails on these labels too, but the last move was automatic: a person decides now
    run = story.mlci(
        "monitor", "--snapshot", "data/snapshots/flipped.csv", "--on-breach", "rollback"
    )
    assert run.returncode == 4, run.stdout + run.stderr
    assert "last move was one already; a person decides the next" in run.stdout
    assert story.alias("champion") == "1" and story.outputs()["rolled-back"] == ""


def test_history_shows_every_move_with_who_and_why(story: Story) -> None:
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
    promote, release, rollback = moves[0], moves[4], moves[6]
    assert promote["why"] == "promotion (challenger first)"
    assert release["why"] == "release"
    assert release["approved_by"] == ["release-manager (environment model-release)"]
    assert release["actor"] == "nektos/act" and release["git_sha"]  # act's GITHUB_ACTOR
    assert rollback["why"].startswith("automatic rollback: v2 failed in window 1 of 2")
    text = _ok(story.mlci("history"))
    assert re.search(r"champion\s+v2 -> v1\s+automatic rollback", text), text


# ---- at team scale: the registry on PostgreSQL, releases racing ------------------------------

LOG_RUNS = """
import sys, mlflow, mlflow.sklearn, numpy as np
from sklearn.linear_model import LogisticRegression
mlflow.set_tracking_uri(sys.argv[1])
mlflow.set_experiment(sys.argv[2])
model = LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1])
for _ in range(2):
    with mlflow.start_run() as run:
        mlflow.sklearn.log_model(model, name="model", serialization_format="cloudpickle",
                                 pip_requirements=["scikit-learn"])
        print(run.info.run_id)
"""

RELEASE = """
import sys
from mlci.registry import history, releases
r = releases.release(sys.argv[1], sys.argv[2], "2", history.Context("release", actor=sys.argv[3]))
print(r.champion, r.previous)
"""


def test_two_releases_racing_leave_one_champion_and_one_trail(
    mlflow_server: MlflowServer,
) -> None:
    from mlflow.tracking import MlflowClient

    from mlci.registry import models as registry
    from mlci.registry import releases
    from mlci.registry import tags as vocab

    url, name = mlflow_server.url, f"race-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [sys.executable, "-c", LOG_RUNS, url, name], capture_output=True, text=True, check=True
    ).stdout
    first, second = re.findall(r"^[0-9a-f]{32}$", out, flags=re.M)
    registry.promote(url, name, first, "1" * 40, {vocab.COMMIT_TIME: "1"})
    p = registry.promote(
        url, name, second, "2" * 40, {vocab.COMMIT_TIME: "2"}, strategy="challenger"
    )
    assert (p.champion, p.challenger) == ("1", "2")
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RELEASE, url, name, who],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for who in ("alice", "bob")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
    client = MlflowClient(url, registry_uri=url)
    aliases = registry.aliases(client, name)
    assert aliases == {"champion": "2", "previous": "1", "challenger": None}
    moves = releases.moves(url, name)
    champion = [(m.before, m.after) for m in moves if m.alias == "champion"]
    assert champion == [(None, "1"), ("1", "2")], champion  # once, whoever won
    last = {m.alias: m.after for m in moves}
    assert last == {"champion": "2", "previous": "1", "challenger": None}
