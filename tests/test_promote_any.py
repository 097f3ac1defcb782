"""Promote any DVC project's model: its own training script, no mlci trainer, the model
declared as a DVC artifact, MLflow on each job's own SQLite store. The PR's training travels
to the merge through the DVC remote (outputs, run-cache, a training record) alone.

One lifecycle, in order (module-scoped): the PR's check trains once, a re-run trains nothing,
a fork's check writes nothing to the remote, the squash merge promotes without training.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lifecycle import (
    build,
    clone,
    git,
    mlci,
    open_pr,
    pr_env,
    push_env,
    remote_files,
    trainings,
)

pytestmark = pytest.mark.slow


class Life:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.origin = work / "origin"
        self.remote = work / "remote"
        self.log = work / "trainings.log"
        self.pr_sha = ""

    def env(self, **extra: str) -> dict[str, str]:
        return {"TRAIN_LOG": str(self.log), **extra}


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Life:
    life = Life(tmp_path_factory.mktemp("promote-any"))
    build(life.origin, life.remote)
    life.pr_sha = open_pr(life.origin, "pr/c", 0.05)
    return life


def test_pr_check_trains_once_and_records_the_lineage_after_the_run(life: Life) -> None:
    ci = clone(life.origin, life.work / "pr-job-1", "pr/c")
    env = life.env(**pr_env(life.work, 5, life.pr_sha))
    proc = mlci(ci, "run", "--base", "main", **env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trainings(life.log) == 1
    report = (ci / ".mlci" / "report.md").read_text()
    assert "| training | trained in this job (stage fit, inputs " in report
    # the model's hash is the PR's (after reproduce), not main's pulled before it
    main_lock = git(life.origin, "show", "main:dvc.lock")
    pr_lock = (ci / "dvc.lock").read_text()
    from mlci.project.lineage import read

    pr_model = read(ci).group("models")[0]
    assert pr_model.path == "models/clf.pkl" and pr_model.md5 in pr_lock
    assert pr_model.md5 not in main_lock
    assert f"| model `models/clf.pkl` | `{pr_model.md5[:12]}` |" in report
    assert "| metrics `reports/eval/scores.json` |" in report
    assert "| data `raw/points.csv` |" in report
    # the PR's outputs, its run-cache and the training record reached the remote
    key = read(ci).key or ""
    assert any(f.startswith(f"runs/{key[:2]}/{key}/") for f in remote_files(life.remote)), (
        "the training key is DVC's own run-cache key"
    )
    assert any(f.startswith("mlci/trainings/") for f in remote_files(life.remote))


def test_rerun_of_the_pr_job_trains_nothing_and_names_the_training_it_reused(
    life: Life,
) -> None:
    ci = clone(life.origin, life.work / "pr-job-2", "pr/c")
    proc = mlci(ci, "run", "--base", "main", **life.env(**pr_env(life.work, 5, life.pr_sha)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trainings(life.log) == 1, "restored from the run-cache, not trained again"
    report = (ci / ".mlci" / "report.md").read_text()
    assert "| training | training reused: run " in report
    assert "from PR &#35;&#8203;5 (same inputs)" in report  # "#5", inert in Markdown


def test_a_fork_pr_writes_nothing_to_the_remote_or_its_run_cache(life: Life) -> None:
    sha = open_pr(life.origin, "pr/fork", 0.3)
    before = remote_files(life.remote)
    ci = clone(life.origin, life.work / "fork-job", "pr/fork")
    proc = mlci(ci, "run", "--base", "main", **life.env(**pr_env(life.work, 6, sha, fork=True)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trainings(life.log) == 2, "the fork's change trains in its own job"
    assert remote_files(life.remote) == before
    report = (ci / ".mlci" / "report.md").read_text()
    assert "nothing was pushed to the DVC remote or its run-cache" in report


def test_squash_merge_promotes_the_prs_training_without_training(life: Life) -> None:
    o = life.origin
    git(o, "merge", "-q", "--squash", "pr/c")
    git(o, "commit", "-q", "-m", "model.C = 0.05 (#5)")
    sha = git(o, "rev-parse", "HEAD").strip()
    assert sha != life.pr_sha
    job = clone(o, life.work / "main-job", "main")
    started = time.monotonic()
    proc = mlci(job, "promote", **life.env(**push_env(sha)))
    took = time.monotonic() - started
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert trainings(life.log) == 2, "no training on the merge commit"
    assert "registered version 1; champion -> v1" in proc.stdout
    assert "| training | training reused: run " in proc.stdout
    assert "from PR &#35;&#8203;5 (same inputs)" in proc.stdout
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{job / '.mlci' / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    v = client.get_model_version_by_alias("mlci-model", "champion")
    assert v.tags["mlci.git_sha"] == sha
    lock = (job / "dvc.lock").read_text()
    assert v.tags["mlci.lineage.models.models/clf.pkl"] in lock
    assert v.tags["mlci.lineage.data.raw/points.csv"] in lock
    assert "mlci.lineage.metrics.reports/eval/scores.json" in v.tags
    assert v.tags["mlci.training_key"]
    assert float(v.tags["mlci.metric.quality.accuracy"]) > 0.5
    # the model is registered as a scikit-learn model that loads and predicts
    import mlflow.sklearn

    mlflow.set_registry_uri(uri)
    model = mlflow.sklearn.load_model(f"models:/mlci-model/{v.version}")
    assert list(model.predict([[1.0, 1.0]])) in ([0], [1])
    assert took < 120, f"merge -> champion without training took {took:.1f}s"


def test_nothing_to_register_is_said_fast_before_any_training(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    build(origin, tmp_path / "remote", declare=False)
    log = tmp_path / "log"
    started = time.monotonic()
    proc = mlci(origin, "promote", TRAIN_LOG=str(log))
    assert time.monotonic() - started < 5
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "nothing to register" in proc.stderr and "type: model" in proc.stderr
    assert trainings(log) == 0
