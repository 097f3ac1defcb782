"""A DVC project written the way DVC's own docs and demos write one: ``vars:`` (params.yaml and
a paths file), ``${...}`` in commands, dependencies and outputs, a ``foreach`` stage (one
featurize entry per split), params from a second params file, the model declared only as the
templated output ``${base.model_dir}/clf-model`` of stage ``train`` (as a public bank-churn
demo declares it), and its own scripts. Before mlci read ``dvc.yaml`` through DVC: promotion
exited 2 ("the model ${base.model_dir}/clf-model ... does not exist") and, with ``mlci.model``
set by hand, the version was not linked to its training.

One lifecycle, in order (module-scoped): the PR's check, the promotion after the merge (the
model found without ``mlci.model``, its version linked to the training key), ``mlci lineage``
and ``mlci monitor``; then a template DVC rejects.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from lifecycle import clone, dvc, git, mlci

pytestmark = pytest.mark.slow

DVC_YAML = """\
vars:
  - params.yaml
  - conf/paths.yaml
stages:
  featurize:
    foreach: ${featurize.splits}
    do:
      cmd: python src/featurize.py ${item} ${base.data} ${paths.features}/${item}.csv
      deps:
        - src/featurize.py
        - ${base.data}
      params:
        - featurize.test_every
      outs:
        - ${paths.features}/${item}.csv
  train:
    cmd: python src/train.py ${paths.features}/train.csv ${base.target} ${base.model_dir}/clf-model
    deps:
      - src/train.py
      - ${paths.features}/train.csv
    params:
      - base.target
      - conf/model.yaml:
          - model.C
          - model.max_iter
    outs:
      - ${base.model_dir}/clf-model
  evaluate:
    cmd: >-
      python src/evaluate.py ${base.model_dir}/clf-model ${paths.features}/test.csv
      ${base.target} ${paths.reports}/metrics.json
    deps:
      - src/evaluate.py
      - ${base.model_dir}/clf-model
      - ${paths.features}/test.csv
    metrics:
      - ${paths.reports}/metrics.json:
          cache: false
"""

PARAMS = """\
base:
  data: data/churn.csv
  target: churned
  model_dir: models
featurize:
  splits: [train, test]
  test_every: 4
mlci:
  gates:
    accuracy: {direction: higher, abs_tol: 0.2}
  monitor:
    label: churned
"""

PATHS = "paths:\n  features: features\n  reports: reports/eval\n"

FEATURIZE = """\
import os, sys, yaml
import pandas as pd
split, source, out = sys.argv[1:]
every = yaml.safe_load(open("params.yaml"))["featurize"]["test_every"]
frame = pd.read_csv(source)
test = frame.index % every == 0
os.makedirs(os.path.dirname(out), exist_ok=True)
frame[test if split == "test" else ~test].to_csv(out, index=False)
"""

TRAIN = """\
import os, sys, yaml, joblib
import pandas as pd
from sklearn.linear_model import LogisticRegression
table, target, out = sys.argv[1:]
m = yaml.safe_load(open("conf/model.yaml"))["model"]
frame = pd.read_csv(table)
model = LogisticRegression(C=m["C"], max_iter=m["max_iter"])
model.fit(frame.drop(columns=[target]), frame[target])
os.makedirs(os.path.dirname(out), exist_ok=True)
joblib.dump(model, out)
"""

EVALUATE = """\
import json, os, sys, joblib
import pandas as pd
model_path, table, target, out = sys.argv[1:]
model = joblib.load(model_path)
frame = pd.read_csv(table)
acc = float(model.score(frame.drop(columns=[target]), frame[target]))
os.makedirs(os.path.dirname(out), exist_ok=True)
json.dump({"accuracy": round(acc, 6), "test_rows": len(frame)}, open(out, "w"))
"""


def churn_csv(rows: int = 240) -> str:
    """A bank-churn-like table: churn follows short tenure, high charges and many calls."""
    rng = random.Random(7)
    lines = ["tenure,charges,calls,churned"]
    for _ in range(rows):
        tenure, charges, calls = rng.randint(1, 72), rng.uniform(20, 120), rng.randint(0, 9)
        risk = -tenure / 24 + charges / 60 + calls / 4 + rng.gauss(0, 0.4)
        lines.append(f"{tenure},{charges:.2f},{calls},{int(risk > 1.6)}")
    return "\n".join(lines) + "\n"


class Life:
    def __init__(self, work: Path) -> None:
        self.work = work
        self.origin = work / "origin"
        self.remote = work / "remote"
        self.uri = f"sqlite:///{work / 'mlflow.db'}"
        self.job = work / "main-job"
        self.merged = ""


def build(origin: Path, remote: Path, *, reproduce: bool = True) -> None:
    """``origin``: main reproduced and pushed; the data tracked by a ``.dvc`` file."""
    for d in (origin / "src", origin / "conf", origin / "data", remote):
        d.mkdir(parents=True)
    git(origin, "init", "-q", "-b", "main")
    git(origin, "config", "receive.denyCurrentBranch", "ignore")
    for name, text in (("featurize.py", FEATURIZE), ("train.py", TRAIN), ("evaluate.py", EVALUATE)):
        (origin / "src" / name).write_text(text)
    (origin / "dvc.yaml").write_text(DVC_YAML)
    (origin / "params.yaml").write_text(PARAMS)
    (origin / "conf" / "paths.yaml").write_text(PATHS)
    (origin / "conf" / "model.yaml").write_text("model:\n  C: 1.0\n  max_iter: 200\n")
    (origin / "data" / "churn.csv").write_text(churn_csv())
    (origin / ".gitignore").write_text(".mlci/\n")
    dvc(origin, "init", "-q")
    dvc(origin, "remote", "add", "-d", "store", str(remote))
    dvc(origin, "config", "core.analytics", "false")
    dvc(origin, "add", "-q", "data/churn.csv")
    if reproduce:
        dvc(origin, "repro", "-q")
        dvc(origin, "push", "-q")
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "baseline")


@pytest.fixture(scope="module")
def life(tmp_path_factory: pytest.TempPathFactory) -> Life:
    life = Life(tmp_path_factory.mktemp("templated"))
    build(life.origin, life.remote)
    git(life.origin, "checkout", "-q", "-b", "pr/c")
    (life.origin / "conf" / "model.yaml").write_text("model:\n  C: 0.05\n  max_iter: 200\n")
    git(life.origin, "commit", "-qam", "model.C = 0.05")
    git(life.origin, "checkout", "-q", "main")
    return life


def test_the_project_resolves_as_dvc_resolves_it(life: Life) -> None:
    from mlci.project import pipeline

    project = pipeline.read(life.origin)
    names = [s.name for s in project.stages]
    assert names == ["featurize@train", "featurize@test", "train", "evaluate"]
    train = project.stage("train")
    assert train is not None and train.cmd.endswith("churned models/clf-model")
    assert train.paths == ("models/clf-model",)
    test = project.stage("featurize@test")
    assert test is not None and test.paths == ("features/test.csv",)
    assert [(p.file, p.keys) for p in train.params] == [
        ("params.yaml", ("base.target",)),
        ("conf/model.yaml", ("model.C", "model.max_iter")),
    ]
    assert project.metrics == ("reports/eval/metrics.json",)
    assert project.params == ("params.yaml", "conf/model.yaml")
    assert project.uncached == frozenset({"reports/eval/metrics.json"})
    assert [s.outs for s in project.sources] == [("data/churn.csv",)]
    assert "conf/paths.yaml" in project.files  # a changed vars file is a new state


def test_pr_check_on_the_templated_project(life: Life) -> None:
    ci = clone(life.origin, life.work / "pr-job", "pr/c")
    proc = mlci(ci, "run", "--base", "main", MLCI_MLFLOW_TRACKING_URI=life.uri)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert "| `conf/model.yaml:model.C` | 1.0000 | 0.0500 |" in report
    assert "all 1 gate passed" in report
    assert "| `accuracy` |" in report  # from the templated `${paths.reports}/metrics.json`
    assert "| training | trained in this job (stage train, inputs " in report
    assert "| model `models/clf-model` |" in report
    assert "| data `data/churn.csv` |" in report


def test_promote_finds_the_templated_model_and_links_its_training(life: Life) -> None:
    o = life.origin
    git(o, "merge", "-q", "--no-ff", "-m", "Merge pr/c", "pr/c")
    life.merged = git(o, "rev-parse", "HEAD").strip()
    job = clone(o, life.job, "main")
    assert "model:" not in (job / "params.yaml").read_text().split("mlci:")[1]  # no mlci.model
    proc = mlci(job, "promote", MLCI_MLFLOW_TRACKING_URI=life.uri)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "registered version 1; champion -> v1" in proc.stdout
    assert "no training stage found" not in proc.stdout
    from mlflow.tracking import MlflowClient

    from mlci.project import lineage

    client = MlflowClient(life.uri, registry_uri=life.uri)
    v = client.get_model_version_by_alias("mlci-model", "champion")
    trained = lineage.read(job, "models/clf-model")
    assert trained.stage == "train" and trained.key
    assert v.tags["mlci.training_key"] == trained.key
    assert v.tags["mlci.git_sha"] == life.merged
    models = {a.path: a.md5 for a in trained.group("models")}
    assert list(models) == ["models/clf-model"] and models["models/clf-model"] in v.tags.values()
    import mlflow.sklearn

    mlflow.set_registry_uri(life.uri)
    model = mlflow.sklearn.load_model(f"models:/mlci-model/{v.version}")
    assert list(model.feature_names_in_) == ["tenure", "charges", "calls"]


def test_lineage_names_the_commit_the_data_and_the_training(life: Life) -> None:
    from mlci.project import lineage

    proc = mlci(life.job, "lineage", MLCI_MLFLOW_TRACKING_URI=life.uri)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    trained = lineage.read(life.job, "models/clf-model")
    data = {a.path: a.md5 for a in trained.group("data")}
    assert life.merged in proc.stdout
    assert f"data/churn.csv: {data['data/churn.csv']}" in proc.stdout
    assert trained.key is not None and trained.key in proc.stdout
    assert "trained in this job (stage train, inputs" in proc.stdout


def test_monitor_is_healthy_on_the_training_data(life: Life) -> None:
    snapshots = life.job / "data" / "snapshots"
    snapshots.mkdir()
    (snapshots / "same.csv").write_text(churn_csv())
    proc = mlci(
        life.job,
        "monitor",
        "--snapshot",
        "data/snapshots/same.csv",
        MLCI_MLFLOW_TRACKING_URI=life.uri,
    )
    # MLflow tag names, not this reader: promotion records the training data's hash as
    # `mlci.lineage.data.<path>` (from dvc.lock, as DVC resolved the project). A failure saying
    # "has no lineage" means monitor's champion() reads another name (the trainer's
    # `mlci.data.<path>`): that is the tag vocabulary's change (mlci/registry/tags.py).
    assert proc.returncode == 0, proc.stdout + proc.stderr
    meta = json.loads((life.job / ".mlci" / "monitor.json").read_text())
    assert meta["status"] == "healthy"
    assert meta["run"]["drifted"] == [] and meta["run"]["metrics"]["accuracy"] > 0.7


def test_a_template_dvc_rejects_is_exit_2_naming_the_file_and_dvcs_words(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    build(origin, tmp_path / "remote", reproduce=False)
    bad = DVC_YAML.replace("${base.model_dir}/clf-model", "${missing}")
    (origin / "dvc.yaml").write_text(bad)
    git(origin, "commit", "-qam", "a variable that is defined nowhere")
    for args in (("run",), ("promote",)):
        proc = mlci(origin, *args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        errors = [ln for ln in proc.stderr.splitlines() if ln.startswith("error:")]
        assert len(errors) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert "dvc.yaml: DVC rejects it: failed to parse" in errors[0]
        assert "Could not find 'missing'" in errors[0]
