"""``mlci monitor`` on the bundled example after a real promotion (git + DVC + SQLite MLflow
registry), against the loopback GitHub API: drift, accuracy, latency, the living issue, the
retraining pull request, a dispatch, and the scheduled workflow run by act."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cmark import assert_inert, render
from conftest import Workspace, git
from github_server import FakeGitHub

pytestmark = pytest.mark.slow

MODEL = "diabetes-progression"
MARKER = f"<!-- mlci-monitor:{MODEL} -->"
ROOT = Path(__file__).resolve().parent.parent


# ---- settings (pure) ----------------------------------------------------------------------------


def test_settings_are_typed_and_unknown_keys_suggest_the_right_one() -> None:
    from mlci.errors import ConfigError
    from mlci.settings.monitor import MonitorSettings

    ms = MonitorSettings.from_mapping(
        {
            "snapshot": "data/new.csv",
            "label": "y",
            "gates": {"accuracy": {"direction": "higher", "abs_tol": 0.05}},
            "latency": {"p95_ms": 50, "batch_rows": 500},
            "on_breach": "pr",
            "branch": "bot/retrain",
        }
    )
    assert ms.gates is not None and ms.gates[0].metric == "accuracy"
    assert ms.gates[0].abs_tol == 0.05
    assert (ms.latency.p95_ms, ms.latency.batch_rows, ms.latency.p50_ms) == (50.0, 500, None)
    assert MonitorSettings.from_mapping(None).gates is None  # default: the PR gates
    with pytest.raises(ConfigError, match="unknown key 'snapshott'") as exc:
        MonitorSettings.from_mapping({"snapshott": "x.csv"})
    assert "did you mean 'snapshot'" in exc.value.one_line()
    with pytest.raises(ConfigError, match="latency: unknown key 'p95'") as exc:
        MonitorSettings.from_mapping({"latency": {"p95": 3}})
    assert "did you mean 'p95_ms'" in exc.value.one_line()
    with pytest.raises(ConfigError, match="not one of issue, pr, dispatch"):
        MonitorSettings.from_mapping({"on_breach": "email"})
    with pytest.raises(ConfigError, match="no workflow is named"):
        MonitorSettings.from_mapping({"on_breach": "dispatch"})
    with pytest.raises(ConfigError, match="outside the project"):
        MonitorSettings.from_mapping({"snapshot": "../elsewhere.csv"})
    assert ms.latency.breaches(10.0, 60.0) == (
        "predict latency p95 is 60 ms per 500 rows, over the limit of 50 ms",
    )


def test_history_survives_the_issue_body_and_data_stays_inert() -> None:
    from mlci.monitor import report as monitor_report

    runs = [{"at": "t1", "status": "drift", "drifted": ["<img src=x>", "bmi"], "rows": 3}]
    body = "text\n" + monitor_report.encode(runs)
    assert monitor_report.history_of(body) == runs
    assert monitor_report.history_of("no history here") == []
    table = "\n".join(monitor_report.trend_section(runs))
    assert "<img" not in table and "bmi" in table


# ---- one promoted project for the module --------------------------------------------------------


def _frame(path: Path) -> Any:
    import pandas as pd

    return pd.read_csv(path)


@pytest.fixture(scope="module")
def project(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """The example, promoted to champion; its `origin` a bare repository; three snapshots:
    identical to the training data, shifted (without labels), and relabelled (DVC-tracked and
    pushed, as an ingestion job leaves it)."""
    work = tmp_path_factory.mktemp("monitor") / "work"
    shutil.copytree(template, work, symlinks=True)
    ws = Workspace(work)
    p = ws.project
    promoted = ws.mlci(p, "promote")
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    git(work, "clone", "-q", "--bare", str(p), str(work / "origin.git"))
    git(p, "remote", "add", "origin", str(work / "origin.git"))
    train = _frame(p / "data" / "diabetes.csv")
    snaps = p / "data" / "snapshots"
    snaps.mkdir()
    train.to_csv(snaps / "same.csv", index=False)
    shifted = train.copy()
    for col in ("bmi", "bp", "s5", "age"):
        if col in shifted.columns:
            shifted[col] = shifted[col] * 1.8 + shifted[col].std()
    # production data without labels yet: drift alone is judged
    shifted.drop(columns=["high_progression"]).to_csv(snaps / "shifted.csv", index=False)
    relabelled = train.copy()
    target = "high_progression"
    relabelled[target] = 1 - relabelled[target]
    relabelled.to_csv(snaps / "relabelled.csv", index=False)
    from dvc.repo import Repo

    repo = Repo(str(p))
    try:
        repo.add([str(snaps / "relabelled.csv")])
        repo.push(targets=[str(snaps / "relabelled.csv")])
    finally:
        repo.close()
    git(p, "add", "data/snapshots/relabelled.csv.dvc", "data/snapshots/.gitignore")
    git(p, "commit", "-q", "-m", "Ingest a labelled snapshot")
    git(p, "push", "-q", "origin", "main")
    yield ws


def _env(ws: Workspace, github: FakeGitHub | None, **extra: str) -> dict[str, str]:
    env = {"GITHUB_OUTPUT": str(ws.work / "outputs.txt")}
    (ws.work / "outputs.txt").write_text("", encoding="utf-8")
    if github is not None:
        env.update(
            GITHUB_ACTIONS="true",
            GITHUB_EVENT_NAME="schedule",
            GITHUB_REF="refs/heads/main",
            GITHUB_REPOSITORY=github.repo,
            GITHUB_TOKEN=github.token,
            GITHUB_API_URL=github.url,
            GITHUB_STEP_SUMMARY=str(ws.work / "summary.md"),
        )
    env.update(extra)
    return env


def _outputs(ws: Workspace) -> dict[str, str]:
    lines = (ws.work / "outputs.txt").read_text(encoding="utf-8").splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def _monitor(
    ws: Workspace, github: FakeGitHub | None, *args: str
) -> subprocess.CompletedProcess[str]:
    return ws.mlci(ws.project, "monitor", *args, **_env(ws, github))


def _issues(github: FakeGitHub) -> list[dict[str, Any]]:
    return [i for i in github.issues.values() if MARKER in (i["body"] or "")]


def test_identical_data_is_healthy_with_zero_drift(project: Workspace) -> None:
    run = _monitor(project, None, "--snapshot", "data/snapshots/same.csv")
    assert run.returncode == 0, run.stdout + run.stderr
    assert _outputs(project)["status"] == "healthy"
    meta = json.loads((project.project / ".mlci" / "monitor.json").read_text())
    assert meta["status"] == "healthy" and meta["exit_code"] == 0
    assert meta["run"]["drifted"] == [] and meta["run"]["max_score"] == 0.0
    assert meta["run"]["failed"] == [] and meta["run"]["metrics"]["accuracy"] > 0.5
    assert meta["run"]["p95_ms"] > 0
    assert "## ✅ mlci monitor: healthy" in run.stdout
    assert f"`{MODEL}` v1 (`champion`)" in run.stdout


def test_step_summary_false_holds_for_the_monitor(project: Workspace) -> None:
    """The monitor writes the job summary through the same sequence as the PR check and the
    promotion note: `step_summary: false` (here the action input's MLCI_STEP_SUMMARY) holds."""
    summary = project.work / "summary-monitor.md"
    for wanted in ("false", "true"):
        summary.unlink(missing_ok=True)
        env = {"GITHUB_STEP_SUMMARY": str(summary), "MLCI_STEP_SUMMARY": wanted}
        run = project.mlci(
            project.project, "monitor", "--snapshot", "data/snapshots/same.csv", **env
        )
        assert run.returncode == 0, run.stdout + run.stderr
        assert summary.exists() == (wanted == "true"), wanted
    assert "mlci monitor: healthy" in summary.read_text(encoding="utf-8")


def test_drift_opens_one_issue_a_rerun_updates_it_and_healthy_closes_it(
    project: Workspace, github: FakeGitHub
) -> None:
    other = github._new_issue(
        {"title": "not ours", "body": f"{MARKER} someone else's"}, github.users["someone-else"]
    )
    first = _monitor(project, github, "--snapshot", "data/snapshots/shifted.csv")
    assert first.returncode == 6, first.stdout + first.stderr
    assert "data drifted" in first.stderr
    out = _outputs(project)
    assert out["status"] == "drift"
    (issue,) = [i for i in _issues(github) if i["number"] != other["number"]]
    assert out["issue-url"] == issue["html_url"]
    assert issue["state"] == "open" and "drift" in issue["title"]
    assert issue["body"].startswith(MARKER)
    assert "| `bmi` | numeric |" in issue["body"] and "⚠️ yes" in issue["body"]
    assert "### Trend (last 1 runs)" in issue["body"]
    assert other["body"] == f"{MARKER} someone else's", "another author's issue is untouched"
    shown = issue["body"].split("\n", 1)[1].split("<!-- mlci-monitor-history:")[0]
    assert shown in (project.work / "summary.md").read_text()

    second = _monitor(project, github, "--snapshot", "data/snapshots/shifted.csv")
    assert second.returncode == 6, second.stdout + second.stderr
    assert len([i for i in _issues(github) if i["number"] != other["number"]]) == 1
    assert "### Trend (last 2 runs)" in issue["body"]
    assert len(github.requests_to("POST", r"/issues$")) == 1
    assert not github.pulls.keys() - {7, 8}, "on_breach: issue opens no pull request"

    healthy = _monitor(project, github, "--snapshot", "data/snapshots/same.csv")
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert issue["state"] == "closed" and issue["state_reason"] == "completed"
    (closing,) = github.comments[issue["number"]]
    assert "healthy again" in closing["body"]
    assert "### Trend (last 3 runs)" in issue["body"]
    assert _outputs(project)["status"] == "healthy"
    assert not github.violations, github.violations


def test_relabelled_data_is_degraded_and_opens_one_retraining_pr(
    project: Workspace, github: FakeGitHub
) -> None:
    snap = "data/snapshots/relabelled.csv"
    first = _monitor(project, github, "--snapshot", snap, "--on-breach", "pr")
    assert first.returncode == 4, first.stdout + first.stderr
    assert "model degraded" in first.stderr
    out = _outputs(project)
    assert out["status"] == "degraded"
    new = [p for n, p in github.pulls.items() if n not in (7, 8)]
    assert len(new) == 1 and new[0]["head_ref"] == "mlci/retrain"
    assert new[0]["base_ref"] == "main"
    assert out["pr-url"].endswith(f"/pull/{new[0]['number']}")
    (issue,) = _issues(github)
    assert out["pr-url"] in issue["body"] and "accuracy" in issue["body"]
    assert "❌ failed" in issue["body"]
    origin = project.work / "origin.git"
    params = git(origin, "show", "mlci/retrain:params.yaml")
    assert f"  data: {snap}\n" in params
    assert "# Parameters of the example pipeline" in params, "comments are kept"
    assert git(origin, "rev-parse", "mlci/retrain^") == git(origin, "rev-parse", "main")
    assert git(project.project, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"

    second = _monitor(project, github, "--snapshot", snap, "--on-breach", "pr")
    assert second.returncode == 4, second.stdout + second.stderr
    assert len([n for n in github.pulls if n not in (7, 8)]) == 1, "one retraining PR at most"
    assert len(github.requests_to("POST", r"/pulls$")) == 1
    assert len(github.requests_to("PATCH", r"/pulls/\d+$")) == 1
    assert len(_issues(github)) == 1
    assert not github.violations, github.violations


def _with_monitor(project: Workspace, lines: str) -> str:
    """params.yaml with ``lines`` in an ``mlci.monitor`` section; returns the text to restore."""
    params = project.project / "params.yaml"
    saved = params.read_text(encoding="utf-8")
    params.write_text(saved.replace("mlci:\n", f"mlci:\n{lines}"), encoding="utf-8")
    return saved


@pytest.mark.parametrize(
    ("setting", "why"),
    [
        ("  monitor:\n    branch: main\n", "the base branch"),
        ("  promote_branch: release\n  monitor:\n    branch: release\n", "promotion branch"),
        ("  plots:\n    branch: bot/imgs\n  monitor:\n    branch: bot/imgs\n", "images branch"),
    ],
)
def test_the_retraining_branch_is_never_one_of_the_repositorys_own(
    project: Workspace, github: FakeGitHub, setting: str, why: str
) -> None:
    """`monitor.branch: main` (or the promotion or images branch) is refused before anything
    is pushed: the branch on origin does not move, no PR is opened, the issue says why."""
    origin = project.work / "origin.git"
    before = git(origin, "for-each-ref")
    saved = _with_monitor(project, setting)
    try:
        run = _monitor(
            project, github, "--snapshot", "data/snapshots/relabelled.csv", "--on-breach", "pr"
        )
    finally:
        (project.project / "params.yaml").write_text(saved, encoding="utf-8")
    # the champion's status stays the exit code; the refusal is an error line and in the issue
    assert run.returncode == 4, run.stdout + run.stderr
    assert why in run.stderr and "will not move that one" in run.stderr
    assert git(origin, "for-each-ref") == before
    assert not github.requests_to("POST", r"/pulls$")
    (issue,) = _issues(github)
    assert "no retraining pull request" in issue["body"] and why in issue["body"]
    assert "will not move that one" in (project.project / ".mlci" / "monitor.md").read_text()


def test_a_branch_mlci_did_not_create_is_never_force_pushed(
    project: Workspace, github: FakeGitHub
) -> None:
    """A person's branch of the configured name is left as it is (said as an error); a
    retraining branch of this model that mlci made is updated (the lease names the commit it
    checked)."""
    origin = project.work / "origin.git"
    p = project.project
    git(p, "checkout", "-q", "-b", "team/retrain", "main")
    (p / "NOTES.md").write_text("a person's work\n", encoding="utf-8")
    git(p, "add", "NOTES.md")
    # its trailer names another "model", with markup a reader must never see live
    hostile = "<img src=x onerror=alert(1)> @octocat [x](https://evil.example) #1"
    git(p, "commit", "-q", "-m", "A person's work in progress", "-m", f"Mlci-Retrain: {hostile}")
    git(p, "push", "-q", "origin", "team/retrain")
    git(p, "checkout", "-q", "main")
    theirs = git(origin, "rev-parse", "team/retrain")
    saved = _with_monitor(project, "  monitor:\n    branch: team/retrain\n")
    snap = "data/snapshots/relabelled.csv"
    try:
        run = _monitor(project, github, "--snapshot", snap, "--on-breach", "pr")
        assert run.returncode == 4, run.stdout + run.stderr
        assert "a retraining of" in run.stderr
        assert git(origin, "rev-parse", "team/retrain") == theirs
        assert not github.requests_to("POST", r"/pulls$")
        (issue,) = _issues(github)
        assert "no retraining pull request" in issue["body"]
        assert_inert(render(issue["body"]), "@octocat", "#1", "https://evil")
        # once the person's branch is gone, mlci creates it, then updates only its own
        git(origin, "branch", "-D", "team/retrain")
        for _ in range(2):
            run = _monitor(project, github, "--snapshot", snap, "--on-breach", "pr")
            assert run.returncode == 4, run.stdout + run.stderr
        message = git(origin, "log", "-1", "--format=%B", "team/retrain")
        assert f"Mlci-Retrain: {MODEL}" in message
        assert len(github.requests_to("POST", r"/pulls$")) == 1
    finally:
        (p / "params.yaml").write_text(saved, encoding="utf-8")
        git(origin, "branch", "-D", "team/retrain")


def test_branch_names_follow_gits_own_rules_and_workflows_are_file_names() -> None:
    from mlci.errors import ConfigError
    from mlci.git import branch_problem
    from mlci.settings.monitor import MonitorSettings

    names = [
        "mlci/retrain", "bot/retrain-2", "a..b", "a b", "x.lock", "a/.hidden", "/x", "x/",
        "a//b", "end.", "a@{1}", "co:lon", "t~1", "q?", "st*r", "br[", "back\\slash",
        "ctl\x01", "ünï/cödé", "a/b.lock/c",
    ]  # fmt: skip
    for name in names:
        by_git = subprocess.run(
            ["git", "check-ref-format", f"refs/heads/{name}"], capture_output=True, check=False
        )
        assert (branch_problem(name) is None) == (by_git.returncode == 0), name
    for name in ("HEAD", "@", "refs/heads/main", "-f", ""):  # git takes them; they mislead
        assert branch_problem(name), name
        with pytest.raises(ConfigError, match="not a branch mlci may push to"):
            MonitorSettings.from_mapping({"branch": name})
    for workflow in ("../../../pulls", "a/b.yml", ".yml", "x.yml/../y", "retrain"):
        with pytest.raises(ConfigError, match="not a workflow file name or id"):
            MonitorSettings.from_mapping({"on_breach": "dispatch", "workflow": workflow})
    for workflow in ("retrain.yml", "mlci-retrain.yaml", "161335"):
        assert MonitorSettings.from_mapping({"workflow": workflow}).workflow == workflow


def test_markers_and_titles_tell_models_apart_and_stay_plain() -> None:
    from mlci.monitor.report import issue_title, marker

    names = ["fraud v2", "fraud_v2", "fraud-v2", "fraud%20v2", "fraud/v2"]
    assert len({marker(n) for n in names}) == len(names)
    assert marker(MODEL) == MARKER  # a plain name keeps the marker it always had
    title = issue_title("@octocat #1\nhi\x1b[31m " + "x" * 400, "degraded")
    assert len(title) <= 256 and "\n" not in title and "\x1b" not in title
    assert "@octocat" not in title and "#1" not in title


def test_dispatch_fires_once_per_breach(project: Workspace, github: FakeGitHub) -> None:
    params = project.project / "params.yaml"
    saved = params.read_text(encoding="utf-8")
    params.write_text(
        saved.replace(
            "mlci:\n",
            "mlci:\n  monitor:\n    snapshot: data/snapshots/shifted.csv\n"
            "    on_breach: dispatch\n    workflow: retrain.yml\n",
        ),
        encoding="utf-8",
    )
    try:
        for _ in range(2):
            run = _monitor(project, github)
            assert run.returncode == 6, run.stdout + run.stderr
    finally:
        params.write_text(saved, encoding="utf-8")
    assert github.dispatches == [{"workflow_id": "retrain.yml", "ref": "main"}]
    assert len(_issues(github)) == 1
    assert not github.violations, github.violations


# ---- the scheduled workflow, run by act -------------------------------------------------------


def test_the_scheduled_workflow_runs_monitor_and_opens_the_issue(
    project: Workspace, github: FakeGitHub
) -> None:
    from test_action import checkout, run_workflow

    ci = checkout(project, "main")
    params = ci / "params.yaml"
    params.write_text(
        params.read_text().replace(
            "mlci:\n", "mlci:\n  monitor:\n    snapshot: data/snapshots/shifted.csv\n"
        )
    )
    shutil.copytree(
        project.project / "data" / "snapshots", ci / "data" / "snapshots", dirs_exist_ok=True
    )
    git(ci, "add", "-A")
    git(ci, "commit", "-qm", "monitor the shifted snapshot")
    proc = run_workflow(
        project,
        ci,
        "mlci-monitor.yml",
        "schedule",
        {"schedule": "17 6 * * *"},
        {"GITHUB_TOKEN": github.token, "MLFLOW_TRACKING_URI": project.tracking_uri},
        {"GITHUB_API_URL": github.url, "GITHUB_REPOSITORY": github.repo},
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    assert "monitor: data drifted (exit 6), not failing" in log
    assert "mlci monitor status: drift" in log
    (issue,) = _issues(github)
    assert issue["state"] == "open"
    assert github.token not in log
    assert not github.violations, github.violations
