"""Train once per change, with the team setup: two jobs (separate clones) share a real
`mlflow server`; the PR's run is found by its training key on a rebase-merged commit, and a
merge whose training inputs differ (main moved) trains once on main. Also the evaluate-only
PR of the example with the default local store (its facts name a run the job cannot see)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from lifecycle import build, clone, git, mlci, open_pr, pr_env, push_env, run, trainings
from servers import MlflowServer

from conftest import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("train-once")
    build(work / "origin", work / "remote")
    return work / "origin"


def _client(server: MlflowServer):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(server.url, registry_uri=server.url)


def test_rebase_merge_finds_the_prs_run_by_key_on_a_shared_server(
    origin: Path, mlflow_server: MlflowServer
) -> None:
    work, log = origin.parent, origin.parent / "log"
    shared = {
        "MLCI_MLFLOW_TRACKING_URI": mlflow_server.url,
        "MLCI_MODEL_NAME": "churn-rebase",
        "MLCI_EXPERIMENT": "churn-rebase",
        "TRAIN_LOG": str(log),
    }
    pr_sha = open_pr(origin, "pr/rebase", 0.05)
    pr_job = clone(origin, work / "pr-job", "pr/rebase")
    proc = mlci(pr_job, "run", "--base", "main", **shared, **pr_env(work, 7, pr_sha))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trainings(log) == 1
    client = _client(mlflow_server)
    exp = client.get_experiment_by_name("churn-rebase")
    [pr_run] = client.search_runs([exp.experiment_id])
    assert pr_run.data.tags["mlci.pr"] == "7" and pr_run.data.tags["mlci.trusted"] == "true"
    assert pr_run.data.tags["mlci.training_key"]

    # a rebase merge: the PR's commit replayed on main with a new SHA
    git(origin, "checkout", "-q", "-b", "rebased", "pr/rebase")
    later = {**os.environ, "GIT_COMMITTER_DATE": "2026-02-02T00:00:00Z"}  # as GitHub does
    run(origin, "git", "rebase", "-q", "--force-rebase", "main", env=later)
    git(origin, "checkout", "-q", "main")
    git(origin, "merge", "-q", "--ff-only", "rebased")
    sha = git(origin, "rev-parse", "HEAD").strip()
    assert sha != pr_sha
    main_job = clone(origin, work / "main-job", "main")
    proc = mlci(main_job, "promote", **shared, **push_env(sha))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trainings(log) == 1, "the merge commit restored the PR's training"
    v = client.get_model_version_by_alias("churn-rebase", "champion")
    assert v.run_id == pr_run.info.run_id, "the PR's own run is the registered one"
    reused = f"training reused: run {pr_run.info.run_id} from PR &#35;&#8203;7 (same inputs)"
    assert reused in proc.stdout

    # main moves (new raw data) before the next PR merges: its inputs differ, it trains once
    pr2 = open_pr(origin, "pr/late", 0.2)
    job2 = clone(origin, work / "pr-job-2", "pr/late")
    assert mlci(job2, "run", "--base", "main", **shared, **pr_env(work, 8, pr2)).returncode == 0
    assert trainings(log) == 2
    (origin / "raw" / "points.csv").write_text((origin / "raw" / "points.csv").read_text() * 2)
    git(origin, "commit", "-qam", "more points")
    git(origin, "merge", "-q", "--no-ff", "-m", "Merge #8", "pr/late")
    sha = git(origin, "rev-parse", "HEAD").strip()
    main2 = clone(origin, work / "main-job-2", "main")
    proc = mlci(main2, "promote", **shared, **push_env(sha))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trainings(log) == 3, "new inputs on main: trained once there"
    assert "| training | trained in this job (stage fit, inputs " in proc.stdout


def test_an_evaluate_only_pr_passes_with_the_default_local_store(workspace: Workspace) -> None:
    p = workspace.project
    git(p, "checkout", "-q", "-b", "pr/eval", "main")
    (p / "params.yaml").write_text(
        (p / "params.yaml").read_text().replace("slice_by: [sex]", "slice_by: []")
    )
    git(p, "commit", "-qam", "evaluate without slices")
    ci = workspace.clone("pr/eval", "ci-eval")
    facts_run = __import__("json").loads((ci / "reports" / "train.json").read_text())
    proc = mlci(ci, "run", "--base", "main")  # no MLCI_MLFLOW_TRACKING_URI: .mlci/mlflow.db
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert facts_run["mlflow_run_id"] not in report, "a run this job's store does not have"
    assert "| training | training reused: " in report
