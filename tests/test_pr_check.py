"""`mlci run` end to end: a shallow CI clone of a PR branch, real DVC remote, real MLflow."""

from __future__ import annotations

import json
import sqlite3

import pytest
import yaml

from conftest import Workspace, git

pytestmark = pytest.mark.slow


def _metrics(text: str) -> dict[str, float]:
    return {k: v for k, v in json.loads(text).items() if isinstance(v, float)}


def test_pr_check_in_a_shallow_clone(workspace: Workspace) -> None:
    ci = workspace.clone()
    assert git(ci, "rev-parse", "--is-shallow-repository").strip() == "true"
    proc = workspace.mlci(ci, "run", "--base", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert report == proc.stdout[proc.stdout.index("<!-- mlci-report:mlci -->") :][: len(report)]
    head = _metrics((ci / "metrics.json").read_text())
    base = _metrics(git(workspace.project, "show", "main:metrics.json"))
    for name in ("accuracy", "roc_auc", "log_loss"):
        assert f"| `{name}` | {base[name]:.4f} | {head[name]:.4f} |" in report
    assert head["log_loss"] != base["log_loss"]  # the PR really retrained
    assert "| `train.params.max_depth` | 3 | 5 |" in report
    assert report.splitlines()[1] == "## ✅ mlci: passed"
    assert "verdict: passed: all 3 gates passed" in proc.stdout
    assert "Data validation" in report and "| `data/diabetes.csv` |" in report
    # The run was logged to MLflow with the PR commit's SHA.
    facts = json.loads((ci / "reports" / "train.json").read_text())
    sha = git(ci, "rev-parse", "HEAD").strip()
    assert facts["git_sha"] == sha
    assert facts["mlflow_run_id"] in proc.stdout
    db = sqlite3.connect(workspace.work / "mlflow.db")
    tags = dict(
        db.execute(
            "select key, value from tags where run_uuid = ?", (facts["mlflow_run_id"],)
        ).fetchall()
    )
    params = dict(
        db.execute(
            "select key, value from params where run_uuid = ?", (facts["mlflow_run_id"],)
        ).fetchall()
    )
    assert tags["mlci.git_sha"] == sha
    assert params["params.max_depth"] == "5"


def test_regressed_model_fails_with_exit_4(workspace: Workspace) -> None:
    git(workspace.project, "checkout", "-q", "-b", "pr/worse", "main")
    params_path = workspace.project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["params"].update(max_depth=1, n_estimators=2)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    git(workspace.project, "commit", "-q", "-am", "worse")
    ci = workspace.clone("pr/worse")
    proc = workspace.mlci(ci, "run", "--base", "main")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert "## ❌ mlci: failed" in report
    assert "**Failed gates**" in report
    assert "gate failed:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_invalid_data_exit_3_and_report_written(workspace: Workspace) -> None:
    ci = workspace.clone()
    assert workspace.mlci(ci, "pull").returncode == 0
    data = ci / "data" / "diabetes.csv"
    lines = data.read_text().splitlines()
    cells = lines[1].split(",")
    cells[1] = "999.0"  # age out of range
    lines[1] = ",".join(cells)
    data.write_text("\n".join(lines) + "\n")
    proc = workspace.mlci(ci, "run", "--base", "main", "--no-pull")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert "data-invalid" in report
    assert "| `age` | `in_range(0, 120)` | 1 | `999.0` |" in report
    assert "Traceback" not in proc.stderr


def test_drift_and_personal_data_against_base(workspace: Workspace) -> None:
    import pandas as pd

    ci = workspace.clone()
    assert workspace.mlci(ci, "pull").returncode == 0
    path = ci / "data" / "diabetes.csv"
    frame = pd.read_csv(path)
    frame["bmi"] = frame["bmi"] + 15.0
    frame["note"] = "ok"
    frame.loc[3, "note"] = "call jane.doe@example.org"
    frame.to_csv(path, index=False)
    params = (ci / "params.yaml").read_text().replace("fail: false", "fail: true")
    (ci / "params.yaml").write_text(params)
    proc = workspace.mlci(ci, "run", "--base", "main", "--no-pull")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert "data drifted (bmi)" in report
    assert "personal data found (email in note)" in report
    assert "| `data/diabetes.csv` | `note` | email | 1 |" in report
    assert "| `bmi` | numeric |" in report
    for text in (proc.stdout, proc.stderr, report):
        assert "jane.doe@example.org" not in text
    assert "Running stage 'train'" not in proc.stdout  # stopped before training


def test_identical_data_reports_no_drift(workspace: Workspace) -> None:
    ci = workspace.clone()
    proc = workspace.mlci(ci, "report", "--base", "main")
    assert proc.returncode == 0, proc.stderr
    ci2 = workspace.clone(name="ci2")
    run = workspace.mlci(ci2, "run", "--base", "main")
    assert run.returncode == 0
    report = (ci2 / ".mlci" / "report.md").read_text()
    # Same content hash as on base: zero drift without loading either table.
    assert "**`data/diabetes.csv`**: rows 442 → 442 (identical to base: no drift)" in report


def test_compare_against_the_champion(workspace: Workspace) -> None:
    from mlflow.tracking import MlflowClient

    ci = workspace.clone()
    before = workspace.mlci(ci, "compare", "--base", "@champion", "--json")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["has_baseline"] is False  # nothing promoted yet

    assert workspace.mlci(workspace.project, "promote").returncode == 0  # main -> v1
    champion = MlflowClient(workspace.tracking_uri).get_model_version_by_alias(
        "diabetes-progression", "champion"
    )
    champ_metrics = MlflowClient(workspace.tracking_uri).get_run(champion.run_id).data.metrics

    proc = workspace.mlci(ci, "run", "--base", "@champion")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert "vs `diabetes-progression@champion (v1)`" in report
    assert "| `train.params.max_depth` | 3 | 5 |" in report  # params of the champion's commit
    # the shallow clone lacked the champion's commit: it was fetched alone
    assert git(ci, "cat-file", "-t", champion.tags["mlci.git_sha"]).strip() == "commit"
    compared = json.loads(workspace.mlci(ci, "compare", "--base", "@champion", "--json").stdout)
    base = {m["name"]: m["base"] for m in compared["metrics"]}
    for name in ("accuracy", "roc_auc", "log_loss"):
        assert base[name] == pytest.approx(champ_metrics[name], abs=1e-12), name


def test_a_push_after_the_merge_is_compared_with_what_is_deployed(workspace: Workspace) -> None:
    """A push to the promotion branch compares with ``@champion`` (with no champion yet, the
    first parent), never main with itself: a regression merged on a stale base fails here,
    before `mlci promote` could make it the champion."""
    project = workspace.project
    assert workspace.mlci(project, "promote").returncode == 0  # main -> v1
    good = git(project, "rev-parse", "HEAD").strip()
    params_path = project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["train"]["params"].update(max_depth=1, n_estimators=2)
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    git(project, "commit", "-q", "-am", "merged on a stale base: a worse model")
    push = workspace.clone("main", "push")
    event = workspace.work / "push.json"
    event.write_text(json.dumps({"repository": {"default_branch": "main"}}))
    env = {"GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"}
    env["GITHUB_EVENT_PATH"] = str(event)

    proc = workspace.mlci(push, "run", **env)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    report = (push / ".mlci" / "report.md").read_text()
    assert "vs `diabetes-progression@champion (v1)`" in report, report[:400]
    assert "**Failed gates**" in report

    # no champion in this store yet: the commit before the merge, fetched into the shallow clone
    empty = f"sqlite:///{workspace.work / 'empty.db'}"
    proc = workspace.mlci(push, "run", MLCI_MLFLOW_TRACKING_URI=empty, **env)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    report = (push / ".mlci" / "report.md").read_text()
    assert f"vs `first parent {good[:7]} (no champion yet)`" in report, report[:400]

    # a push elsewhere, or a PR, keeps its base: main
    proc = workspace.mlci(
        push,
        "compare",
        "--json",
        GITHUB_EVENT_NAME="push",
        GITHUB_REF="refs/heads/feature",
        GITHUB_EVENT_PATH=str(event),
    )
    assert json.loads(proc.stdout)["base_rev"] == "main", proc.stdout[:300]


def test_a_no_op_check_parses_each_yaml_once_and_starts_nothing(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The base itself, already reproduced: DVC parses each YAML text once however many
    indexes it builds (the memo in front of its parser), no MLflow recorder starts and no
    ``dvc repro`` is driven; the report is still the whole one."""
    from collections import OrderedDict
    from contextlib import nullcontext

    from ruamel.yaml import YAML

    from mlci.check import pipeline
    from mlci.cli.common import context, settings_for
    from mlci.project import repro, yamlread
    from mlci.training import recorder
    from mlci.verdict.outcome import Outcome

    monkeypatch.setenv("MLCI_MLFLOW_TRACKING_URI", workspace.tracking_uri)
    monkeypatch.setattr(yamlread, "_MEMO", OrderedDict())  # texts an earlier test parsed
    parsed: list[str] = []
    load = YAML.load

    def counted(self: YAML, stream: object) -> object:
        parsed.append(stream if isinstance(stream, str) else repr(stream))
        return load(self, stream)

    monkeypatch.setattr(YAML, "load", counted)
    started: list[object] = []
    monkeypatch.setattr(recorder, "serving", lambda *a: started.append(a) or nullcontext())
    driven: list[object] = []
    monkeypatch.setattr(repro, "_drive", lambda *a, **k: driven.append(a))
    root = workspace.project
    result = pipeline.pr_check(root, settings_for(root), context(), base="main", post=False)
    assert result.verdict.outcome is Outcome.PASSED, result.markdown
    assert "### Plots" in result.markdown and "| `data/diabetes.csv` |" in result.markdown
    assert not started and not driven
    assert parsed, "DVC no longer parses YAML with ruamel: the memo has nothing to do"
    assert not [text[:60] for text in set(parsed) if parsed.count(text) > 1]


def test_a_stage_with_new_inputs_may_run_missing_data_alone_does_not(
    workspace: Workspace,
) -> None:
    """What decides whether the check starts the MLflow recorder before it pulls."""
    from mlci.project import repository, repro

    root = workspace.project
    with repository.opened(root) as repo:
        assert not repro.may_run(root, repo)
    model = root / "models" / "model.pkl"
    model.rename(root / "model.bak")  # a fresh checkout: pulled, not trained
    with repository.opened(root) as repo:
        assert not repro.may_run(root, repo)
    params = root / "params.yaml"
    params.write_text(params.read_text().replace("max_depth: 3", "max_depth: 4"))
    with repository.opened(root) as repo:
        assert repro.may_run(root, repo)
