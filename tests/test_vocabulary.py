"""One registry vocabulary: a version promoted by every path mlci has (trained in the promotion
job, reused from the PR's run, the project's own model with and without ``mlci.model``,
``--force`` in the PR's checkout with its own store) is read by ``mlci lineage`` and
``mlci monitor``; a version written with the names used before ``mlci.schema`` still reads;
and every tag those promotions left is one the vocabulary knows.

Real git, DVC and MLflow on SQLite: the example (the session's template) and a project that
trains with its own script (``tests/lifecycle.py``), one promoted project per path.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from lifecycle import FEATURIZE, POINTS, build, clone, dvc, mlci, pr_env, push_env

from conftest import Workspace, git

EXAMPLE = "diabetes-progression"
OWN = "mlci-model"  # the default model name of a project without settings
STORES: list[str] = []  # every store a promotion below wrote, for the no-stray-names test


def _client(uri: str):  # type: ignore[no-untyped-def]
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def _store(job: Path) -> str:
    """The default store of a job that sets no tracking URI."""
    return f"sqlite:///{job / '.mlci' / 'mlflow.db'}"


def _ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


Mlci = Callable[..., subprocess.CompletedProcess[str]]  # Workspace.mlci or lifecycle.mlci


def _lineage_and_monitor(call: Mlci, job: Path, sha: str, data: str) -> None:
    """``mlci lineage`` names the commit and the training data; ``mlci monitor`` on that data
    is healthy (the champion's own training data has not drifted from itself)."""
    shown = _ok(call(job, "lineage"))
    assert f"git_sha: {sha}" in shown
    assert f"lineage.data.{data}: " in shown
    assert "schema: 1" in shown
    watched = call(job, "monitor", "--snapshot", data)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    assert "mlci monitor: healthy" in watched.stdout


# ---- the example: trained in the promotion job, reused from the PR, --force -----------------


@pytest.fixture(scope="module")
def example(template: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, Path]:
    """A copy of the example; the PR's check ran in its own checkout (shared store and
    remote), as a trusted pull_request job."""
    work = tmp_path_factory.mktemp("vocabulary") / "work"
    shutil.copytree(template, work, symlinks=True)
    ws = Workspace(work)
    pr_sha = git(ws.project, "rev-parse", "pr/tune-model").strip()
    pr_job = ws.clone("pr/tune-model", "pr-job")
    _ok(ws.mlci(pr_job, "run", "--base", "main", **pr_env(work, 7, pr_sha)))
    return ws, pr_job


@pytest.mark.slow
def test_trained_in_the_promotion_job(
    template: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("vocabulary-main") / "work"
    shutil.copytree(template, work, symlinks=True)
    ws = Workspace(work)
    p = ws.project
    params = p / "params.yaml"
    params.write_text(params.read_text().replace("n_estimators: 200", "n_estimators: 120"))
    git(p, "commit", "-qam", "fewer trees, merged without a PR check")
    sha = git(p, "rev-parse", "HEAD").strip()
    out = _ok(ws.mlci(p, "promote"))
    assert "| training | trained in this job (stage train, inputs " in out
    STORES.append(ws.tracking_uri)
    version = _client(ws.tracking_uri).get_model_version_by_alias(EXAMPLE, "champion")
    assert version.tags["mlci.schema"] == "1"
    assert "mlci.data.data/diabetes.csv" not in version.tags, "one name for the data hash"
    _lineage_and_monitor(ws.mlci, p, sha, "data/diabetes.csv")


@pytest.mark.slow
def test_reused_from_the_prs_run(example: tuple[Workspace, Path]) -> None:
    ws, _ = example
    o = ws.project
    git(o, "merge", "-q", "--no-ff", "-m", "Merge #7", "pr/tune-model")
    sha = git(o, "rev-parse", "HEAD").strip()
    job = ws.clone("main", "main-job")
    out = _ok(ws.mlci(job, "promote", **push_env(sha)))
    assert "| training | training reused: run " in out
    assert "from PR &#35;&#8203;7 (same inputs)" in out
    STORES.append(ws.tracking_uri)
    _lineage_and_monitor(ws.mlci, job, sha, "data/diabetes.csv")


@pytest.mark.slow
def test_forced_in_the_prs_checkout_with_its_own_store(example: tuple[Workspace, Path]) -> None:
    """Issue 23's report: the demo's checkout, then `mlci promote --force` there with no
    tracking URI (the training reused, its run recorded from the restored outputs), then
    `mlci monitor`: it read another name for the data hash and exited 2."""
    _, pr_job = example
    sha = git(pr_job, "rev-parse", "HEAD").strip()
    out = _ok(mlci(pr_job, "promote", "--force"))
    assert "registered version 1; champion -> v1" in out
    assert "| training | training reused: " in out
    STORES.append(_store(pr_job))
    version = _client(_store(pr_job)).get_model_version_by_alias(EXAMPLE, "champion")
    assert version.tags["mlci.recorded"] == "true"
    _lineage_and_monitor(mlci, pr_job, sha, "data/diabetes.csv")


# ---- a project's own training: the model declared in dvc.yaml, or by mlci.model -------------


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tests/lifecycle.py``'s project with a header on its CSV (a monitor reads columns by
    name) and ``monitor.label`` set: it trains with its own script, no ``train:`` section."""
    work = tmp_path_factory.mktemp("vocabulary-own")
    origin = work / "origin"
    build(origin, work / "remote")
    (origin / "raw" / "points.csv").write_text("x,y,label\n" + POINTS)
    header = 'list(csv.reader(open("raw/points.csv")))[1:]'
    featurize = FEATURIZE.replace('csv.reader(open("raw/points.csv"))', header)
    assert featurize != FEATURIZE
    (origin / "src" / "featurize.py").write_text(featurize)
    with (origin / "params.yaml").open("a") as fh:
        fh.write("mlci:\n  monitor:\n    label: label\n")
    dvc(origin, "repro", "-q")
    dvc(origin, "push", "-q")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "a header on the points")
    return origin


def _promote_own(origin: Path, name: str) -> tuple[Path, str]:
    sha = git(origin, "rev-parse", "HEAD").strip()
    job = clone(origin, origin.parent / name, "main")
    out = _ok(mlci(job, "promote", **push_env(sha)))
    assert "registered version 1; champion -> v1" in out
    STORES.append(_store(job))
    return job, sha


@pytest.mark.slow
def test_the_projects_own_model_declared_in_dvc_yaml(own: Path) -> None:
    job, sha = _promote_own(own, "job-artifact")
    version = _client(_store(job)).get_model_version_by_alias(OWN, "champion")
    assert version.tags["mlci.model_path"] == "models/clf.pkl"
    # the pickle told what it is: the monitor needs to assume nothing
    assert (version.tags["mlci.backend"], version.tags["mlci.task"]) == (
        "sklearn",
        "classification",
    )
    _lineage_and_monitor(mlci, job, sha, "raw/points.csv")


@pytest.mark.slow
def test_the_projects_own_model_named_by_mlci_model(own: Path) -> None:
    dvc_yaml = own / "dvc.yaml"
    dvc_yaml.write_text(dvc_yaml.read_text().split("artifacts:")[0])
    params = own / "params.yaml"
    params.write_text(params.read_text().replace("mlci:\n", "mlci:\n  model: models/clf.pkl\n"))
    git(own, "commit", "-qam", "the model named by mlci.model, not by an artifact")
    job, sha = _promote_own(own, "job-setting")
    _lineage_and_monitor(mlci, job, sha, "raw/points.csv")


# ---- what every promotion above left in its registry ----------------------------------------


@pytest.mark.slow
def test_every_tag_mlci_left_is_in_the_vocabulary() -> None:
    from mlci.registry import tags as vocab

    assert len(STORES) >= 5, f"the promotions above did not all run: {STORES}"
    seen = 0
    for uri in dict.fromkeys(STORES):
        client = _client(uri)
        objects = [v.tags for v in client.search_model_versions("")]
        assert objects, f"no version in {uri}"
        versions = len(objects)
        for exp in client.search_experiments():
            objects.extend(r.data.tags for r in client.search_runs([exp.experiment_id]))
        for i, tags in enumerate(objects):
            ours = [k for k in tags if not k.startswith("mlflow.")]
            assert all(k.startswith(vocab.PREFIX) for k in ours), ours
            stray = [k for k in ours if not vocab.known(k)]
            assert not stray, f"names outside the vocabulary in {uri}: {stray}"
            assert not any(k.startswith(vocab.OLD_DATA) for k in ours), "an old name written"
            if i < versions or ours:  # every version, and every run mlci tagged
                assert vocab.schema(tags) == vocab.VERSION, (uri, sorted(ours))
            seen += 1
    assert seen >= 10


# ---- a registry written before mlci.schema ---------------------------------------------------


def test_a_version_written_with_the_names_before_the_schema_reads(tmp_path: Path) -> None:
    """The tags an earlier mlci wrote on a version promoted from its trainer's run (no
    ``mlci.schema``; the data hash as ``mlci.data.<path>``) read as this schema's facts."""
    from mlci.monitor.run import champion
    from mlci.registry import models as registry
    from mlci.registry import runs
    from mlci.registry import tags as vocab
    from mlci.registry.tracking import mlflow_client
    from mlci.settings.config import Settings

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sha = "a" * 40
    old = {
        "mlci.git_sha": sha,
        "mlci.branch": "main",
        "mlci.backend": "torch",
        "mlci.task": "regression",
        "mlci.data.data/diabetes.csv": "0123abcd",
        "mlci.env.python": "3.12.0",
        "mlci.metric.rmse": "0.25",
        "mlci.metric.note": "not a number",
        "mlci.run_id": "r1",
        "mlci.commit_time": "1767225600",
        "mlci.previous_version": "1",
        "mlci.promoted": "true",
    }
    client = mlflow_client(uri)
    exp = client.create_experiment("mlci")
    run = client.create_run(exp, tags={k: v for k, v in old.items() if "metric" not in k})
    client.create_registered_model("old-model")
    mv = client.create_model_version("old-model", "file:///nowhere", run.info.run_id, tags=old)
    client.set_registered_model_alias("old-model", registry.CHAMPION, str(mv.version))

    assert vocab.schema(old) == vocab.UNVERSIONED
    champ = champion(Settings(tmp_path, mlflow_tracking_uri=uri, model_name="old-model"))
    assert champ.git_sha == sha
    assert champ.data == {"data/diabetes.csv": "0123abcd"}
    assert champ.metrics == {"rmse": 0.25}
    assert (champ.backend, champ.task) == ("torch", "regression")
    shown = registry.lineage(uri, "old-model")
    assert shown["git_sha"] == sha and shown["lineage.data.data/diabetes.csv"] == "0123abcd"
    assert [str(v.version) for v in registry.candidates(client, "old-model")] == ["1"]
    assert registry.converge(client, "old-model") == ("1", None)

    # its trainer's run, found by its commit, carries the data hash into a new version
    found = runs.find_run(uri, "mlci", sha)
    assert found is not None and found.info.run_id == run.info.run_id
    carried = vocab.carried(found.data.tags)
    assert carried["mlci.lineage.data.data/diabetes.csv"] == "0123abcd"
    assert "mlci.data.data/diabetes.csv" not in carried and "mlci.git_sha" not in carried
    assert all(vocab.known(k) for k in {**old, **carried})

    # a version of this schema is read by this schema's names only
    assert vocab.training_data({**vocab.commit(sha), vocab.SCHEMA: "1", **old}) == {}
    assert vocab.training_data({vocab.SCHEMA: "1", vocab.lineage_tag("data", "d.csv"): "h"}) == {
        "d.csv": "h"
    }


def test_the_writers_use_only_the_vocabulary() -> None:
    from mlci.project.lineage import GROUPS, Artifact, Lineage
    from mlci.registry import tags as vocab

    assert vocab.LINEAGE_GROUPS == GROUPS

    lin = Lineage((Artifact("data/x.csv", "d1", "data"), Artifact("m.pkl", "m1", "models")))
    lin = Lineage(lin.artifacts, "train", "k" * 64)
    written = {
        **vocab.trainer_run(
            git_sha="s", branch="main", pr=3, data={"data/x.csv": "d0"}, environment={"x": 1}
        ),
        **vocab.training(lin, trusted=True, git_sha="s", pr=3),
        **vocab.recorded("r0"),
        **vocab.model_file("sklearn", "m.pkl"),
        **vocab.gpu("H200"),
        **vocab.version(
            {"mlci.trusted": "true", "other.tag": "x", "mlci.unknown": "y"},
            git_sha="s",
            branch="main",
            pr=None,
            run_id="r",
            promoted_by=None,
            commit_time=1,
            metrics={"acc": 0.5},
            lin=lin,
            training_sentence="trained in this job",
        ),
        **vocab.candidate(),
        **vocab.rolled_back(),
        **vocab.restored(by="me", at="now", reason="why", from_version="2"),
        **vocab.last_rollback("2", "1", by="me", at="now", reason="why"),
    }
    assert all(vocab.known(k) for k in written), [k for k in written if not vocab.known(k)]
    assert "mlci.unknown" not in written and "other.tag" not in written
    assert vocab.read_lineage(written) == {"data": {"data/x.csv": "d1"}, "models": {"m.pkl": "m1"}}
    assert vocab.training_key(written) == "k" * 64 and vocab.trusted(written)
    assert vocab.read_metrics(written) == {"acc": 0.5}
    assert vocab.origin(written) == {"pr": "3", "git_sha": "s"}
    assert vocab.is_candidate(written), "restored (last) makes it a candidate again"


def test_a_champion_without_a_recorded_task_is_judged_by_its_model() -> None:
    from sklearn.linear_model import LinearRegression, LogisticRegression

    from mlci.monitor.result import Champion
    from mlci.monitor.run import task_of

    champ = Champion("m", "3", "r", None, {}, {})
    notes: list[str] = []
    assert task_of(champ, LinearRegression(), notes) == "regression"
    assert task_of(champ, LogisticRegression(), notes) == "classification" and not notes
    assert task_of(champ, object(), notes) == "classification"
    assert notes == ["m v3 records no task: judged as classification"]
    recorded = Champion("m", "3", "r", None, {}, {}, "sklearn", "regression")
    assert task_of(recorded, LogisticRegression(), notes) == "regression"
