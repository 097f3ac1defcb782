"""The composite action (``action.yml``) run for real by ``act`` in host mode, and the hygiene
of every workflow and action file (zizmor, check-jsonschema).

act runs ``tests/workflows/act-action.yml`` (local steps only: act copies the checkout for
``actions/checkout`` and fetches nothing) in a depth-1 clone of the ``workspace`` project, with
``action.yml`` and mlci's sources beside it where ``uses: ./`` looks, against the loopback
GitHub API and the workspace's MLflow store.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlci import __version__

from conftest import Workspace, git
from github_server import FakeGitHub

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKFLOW = ROOT / "tests" / "workflows" / "act-action.yml"
WORKFLOW_FILES = sorted((ROOT / ".github" / "workflows").glob("*.yml")) + sorted(
    (ROOT / "tests" / "workflows").glob("*.yml")
)
MARKER = "<!-- mlci-report:mlci -->"
MODEL = "diabetes-progression"


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if not found:
        pytest.fail(f"{name} is not installed: it is a test dependency (pip install -e '.[test]')")
    return found


def act_command(
    work: Path,
    ci: Path,
    workflow: Path,
    event_name: str,
    event: dict[str, Any],
    secrets: dict[str, str],
    env: dict[str, str],
) -> list[str]:
    """``act`` on one workflow in host mode, offline: every label the workflow may ask for
    runs right here; ``secrets`` always hold a GITHUB_TOKEN (without one act asks `gh`)."""
    event_file = work / f"event-{event_name}.json"
    event_file.write_text(json.dumps(event), encoding="utf-8")
    cmd = [_tool("act"), event_name, "-C", str(ci), "-W", str(workflow), "-e", str(event_file)]
    for label in ("ubuntu-latest", "self-hosted", "gpu"):
        cmd += ["-P", f"{label}=-self-hosted"]
    for name, value in secrets.items():
        cmd += ["-s", f"{name}={value}"]
    for name, value in {**env, "NO_COLOR": "1"}.items():
        cmd += ["--env", f"{name}={value}"]
    cmd += ["--action-cache-path", str(work / "act-cache"), "--no-cache-server"]
    return [*cmd, "--defaultbranch", "main"]


def run_act(workspace: Workspace, ci: Path, cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd,
        cwd=ci,
        env=workspace.env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def run_workflow(
    workspace: Workspace,
    ci: Path,
    workflow: str,
    event_name: str,
    event: dict[str, Any],
    secrets: dict[str, str],
    env: dict[str, str],
) -> subprocess.CompletedProcess[str]:
    """One of the repository's workflows (``.github/workflows/<workflow>``) under act, with
    a stand-in for actions/setup-python, which those workflows skip under act
    (``if: ${{ !env.ACT }}``) but act still fetches."""
    work = workspace.work
    stub = work / "setup-python-stub"
    stub.mkdir(exist_ok=True)
    (stub / "action.yml").write_text(
        "name: stub\ndescription: stub\nruns:\n  using: composite\n  steps: []\n"
    )
    path = ROOT / ".github" / "workflows" / workflow
    cmd = act_command(work, ci, path, event_name, event, secrets, env)
    cmd += ["--local-repository", f"actions/setup-python@{SETUP_PYTHON_SHA}={stub}"]
    return run_act(workspace, ci, cmd)


SETUP_PYTHON_SHA = "a26af69be951a213d495a4c3e4e4022e16d87065"


# ---- workflow hygiene --------------------------------------------------------------------------


def test_zizmor_finds_nothing() -> None:
    files = [ROOT / "action.yml", *WORKFLOW_FILES]
    proc = subprocess.run(
        [_tool("zizmor"), "--offline", "--no-progress", "--min-severity", "low", *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "No findings to report" in proc.stdout + proc.stderr
    assert "couldn't determine shell type" not in proc.stderr


def test_action_and_workflows_match_githubs_schemas() -> None:
    tool = _tool("check-jsonschema")
    for schema, files in (
        ("vendor.github-actions", [ROOT / "action.yml"]),
        ("vendor.github-workflows", WORKFLOW_FILES),
    ):
        proc = subprocess.run(
            [tool, "--builtin-schema", schema, *map(str, files)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_third_party_actions_are_pinned_by_sha_and_inputs_only_reach_scripts_through_env() -> None:
    import re

    import yaml

    for path in [ROOT / "action.yml", *WORKFLOW_FILES]:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        steps = list(doc["runs"]["steps"]) if "runs" in doc else []
        for job in (doc.get("jobs") or {}).values():
            steps += job.get("steps", [])
        assert steps, path
        for step in steps:
            ref = step.get("uses", "./")
            if not ref.startswith("./"):
                assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", ref), f"{path.name}: {ref}"
            assert "${{" not in step.get("run", ""), f"{path.name}: {step.get('name')}"


def test_action_inputs_and_outputs_are_the_documented_ones() -> None:
    import yaml

    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    defaults = {name: spec.get("default") for name, spec in action["inputs"].items()}
    assert defaults == {
        "command": "run",
        "base": "",
        "params-file": "",
        "report-name": "mlci",
        "github-token": "${{ github.token }}",
        "api-url": "",
        # empty: the settings file (or its default) decides
        "comment": "",
        "check-run": "",
        "step-summary": "",
        "fail-on": "gate,data",
        "promote": "auto",
        "mlflow-tracking-uri": "",
        "dvc-remote": "",
        "working-directory": ".",
        "allow-untrusted": "",
        "python": "python3",
    }
    assert set(action["outputs"]) == {
        "verdict",
        "report-path",
        "comment-url",
        "model-version",
        "challenger-version",
        "status",
        "issue-url",
        "pr-url",
        "challenger-ready",
        "rolled-back",
    }
    doc = (ROOT / "docs" / "action.md").read_text(encoding="utf-8")  # the action's reference
    for name in [*defaults, *action["outputs"]]:
        assert f"| `{name}` |" in doc, name


# ---- act ---------------------------------------------------------------------------------------


@dataclass
class ActRun:
    returncode: int
    log: str
    outputs: dict[str, str]
    seconds: float

    def step_exit_code(self) -> int | None:
        """The exit code of the failed step, as act's host mode reports it (``exit status 4``)."""
        import re

        found = re.findall(r"exit status (\d+)", self.log)
        return int(found[0]) if found else None


def checkout(workspace: Workspace, branch: str) -> Path:
    """A depth-1 clone of ``branch``, made ready for act's copy of it.

    act copies the checkout to its own workspace, so the DVC remote (a path relative to
    ``.dvc/``) becomes absolute; ``uses: ./`` needs ``action.yml`` and the mlci sources it
    reads its version from at the root (``python -m mlci`` there imports that copy, the same
    code), and DVC must not take the copy's ``mlci/example/dvc.yaml`` for a pipeline.
    """
    ci = workspace.clone(branch, name="ci-" + branch.replace("/", "-"))
    config = ci / ".dvc" / "config"
    lines = [
        f"    url = {workspace.remote}" if ln.strip().startswith("url =") else ln
        for ln in config.read_text(encoding="utf-8").splitlines()
    ]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with (ci / ".dvcignore").open("a", encoding="utf-8") as fh:
        fh.write("/mlci/\n")
    shutil.copy(ROOT / "action.yml", ci / "action.yml")
    shutil.copytree(ROOT / "mlci", ci / "mlci", ignore=shutil.ignore_patterns("__pycache__"))
    return ci


def pr_event(github: FakeGitHub, ci: Path, *, head_repo: str | None = None) -> dict[str, Any]:
    head = git(ci, "rev-parse", "HEAD").strip()
    branch = git(ci, "rev-parse", "--abbrev-ref", "HEAD").strip()
    repo = {"full_name": github.repo, "default_branch": "main"}
    return {
        "action": "synchronize",
        "number": 7,
        "pull_request": {
            "number": 7,
            "head": {"ref": branch, "sha": head, "repo": {"full_name": head_repo or github.repo}},
            "base": {"ref": "main", "repo": repo},
        },
        "repository": repo,
    }


def push_event(github: FakeGitHub, ci: Path) -> dict[str, Any]:
    head = git(ci, "rev-parse", "HEAD").strip()
    return {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": head,
        "head_commit": {"id": head},
        "repository": {"full_name": github.repo, "default_branch": "main"},
    }


def act(
    workspace: Workspace,
    github: FakeGitHub,
    ci: Path,
    event_name: str,
    event: dict[str, Any],
    **variables: str,
) -> ActRun:
    work = workspace.work
    outputs = work / "act-outputs.txt"
    outputs.unlink(missing_ok=True)
    env = {
        "GITHUB_API_URL": github.url,
        "GITHUB_REPOSITORY": github.repo,
        "MLCI_MLFLOW_TRACKING_URI": workspace.tracking_uri,
        "MLCI_TEST_OUTPUTS": str(outputs),
    }
    secrets = {"GITHUB_TOKEN": github.token}
    cmd = act_command(work, ci, WORKFLOW, event_name, event, secrets, env)
    for name, value in variables.items():
        cmd += ["--var", f"{name}={value}"]
    start = time.monotonic()
    proc = run_act(workspace, ci, cmd)
    seconds = time.monotonic() - start
    found: dict[str, str] = {}
    if outputs.exists():
        for line in outputs.read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition("=")
            found[key] = value
    return ActRun(proc.returncode, proc.stdout + proc.stderr, found, seconds)


def ours(github: FakeGitHub) -> list[dict[str, Any]]:
    return [c for c in github.comments[7] if MARKER in c["body"]]


def no_token_in(github: FakeGitHub, log: str) -> None:
    leaked = [ln for ln in log.splitlines() if github.token in ln]
    assert not leaked, leaked


@pytest.mark.slow
def test_pr_workflow_posts_one_comment_sets_outputs_and_updates_it_on_rerun(
    workspace: Workspace, github: FakeGitHub
) -> None:
    ci = checkout(workspace, "pr/tune-model")
    first = act(workspace, github, ci, "pull_request", pr_event(github, ci))
    assert first.returncode == 0, first.log[-6000:]
    assert first.outputs["verdict"] == "passed", first.outputs
    assert first.outputs["outcome"] == "success"
    assert first.outputs["report-path"].endswith(".mlci/report.md")
    assert first.outputs["model-version"] == ""  # a PR never promotes
    comments = ours(github)
    assert len(comments) == 1
    assert first.outputs["comment-url"] == comments[0]["html_url"]
    assert "max_depth" in comments[0]["body"]
    assert "::group::mlci: install" in first.log
    assert f"mlci {__version__} is already installed" in first.log  # the venv's is reused
    assert "::group::mlci run" in first.log
    assert "» pull" in first.log and "» reproduce" in first.log
    no_token_in(github, first.log)

    second = act(workspace, github, ci, "pull_request", pr_event(github, ci))
    assert second.returncode == 0, second.log[-6000:]
    assert len(ours(github)) == 1
    assert second.outputs["comment-url"] == first.outputs["comment-url"]
    assert len(github.requests_to("POST", r"/issues/7/comments$")) == 1
    assert len(github.requests_to("PATCH", r"/issues/comments/\d+$")) == 1
    no_token_in(github, second.log)
    assert not github.violations, github.violations
    for r in github.requests:
        assert r.headers.get("authorization") == f"Bearer {github.token}"


@pytest.mark.slow
def test_a_failing_gate_fails_the_job_with_exit_4_and_still_posts(
    workspace: Workspace, github: FakeGitHub
) -> None:
    project = workspace.project
    git(project, "checkout", "-q", "-b", "pr/worse", "main")
    params = project / "params.yaml"
    text = params.read_text(encoding="utf-8")
    text = text.replace("    max_depth: 3\n", "    max_depth: 1\n")
    text = text.replace("    n_estimators: 200\n", "    n_estimators: 2\n")
    params.write_text(text, encoding="utf-8")
    git(project, "commit", "-q", "-am", "A worse model")
    ci = checkout(workspace, "pr/worse")

    run = act(workspace, github, ci, "pull_request", pr_event(github, ci))
    assert run.returncode != 0
    assert run.step_exit_code() == 4, run.log[-6000:]
    assert run.outputs["verdict"] == "failed", run.outputs
    assert run.outputs["outcome"] == "failure"
    comments = ours(github)
    assert len(comments) == 1
    assert run.outputs["comment-url"] == comments[0]["html_url"]
    assert "gate" in comments[0]["body"].lower()

    # fail-on without `gate`: the same verdict is a warning, the job passes, outputs are set
    lenient = act(workspace, github, ci, "pull_request", pr_event(github, ci), MLCI_FAIL_ON="data")
    assert lenient.returncode == 0, lenient.log[-6000:]
    assert lenient.outputs["verdict"] == "failed"
    assert lenient.outputs["outcome"] == "success"
    assert "not in fail-on" in lenient.log
    assert len(ours(github)) == 1


@pytest.mark.slow
def test_push_to_main_promotes_the_model_to_champion(
    workspace: Workspace, github: FakeGitHub
) -> None:
    from mlflow.tracking import MlflowClient

    ci = checkout(workspace, "main")
    run = act(workspace, github, ci, "push", push_event(github, ci))
    assert run.returncode == 0, run.log[-6000:]
    assert run.outputs["verdict"] == "passed"
    champion = MlflowClient(workspace.tracking_uri).get_model_version_by_alias(MODEL, "champion")
    assert run.outputs["model-version"] == str(champion.version)
    sha = git(ci, "rev-parse", "HEAD").strip()
    assert champion.tags.get("mlci.git_sha") == sha
    # No PR comment (a push has none); the promotion note goes on the commit instead.
    assert not github.requests_to("POST", r"/issues/")
    (note,) = github.commit_comments[sha]
    assert f"v{champion.version}" in note["body"] and sha in note["body"]
    no_token_in(github, run.log)
    assert not github.violations, github.violations


@pytest.mark.slow
def test_on_a_master_default_branch_the_file_decides_what_inputs_leave_unset(
    workspace: Workspace, github: FakeGitHub
) -> None:
    """`promote: auto` and `mlci promote` agree on a repository whose default branch is
    `master`, and `check_run: true` in params.yaml holds when the input is left unset."""
    from mlflow.tracking import MlflowClient

    ci = checkout(workspace, "main")
    git(ci, "checkout", "-q", "-b", "master")
    params = ci / "params.yaml"
    params.write_text(params.read_text().replace("mlci:\n", "mlci:\n  check_run: true\n"))
    git(ci, "commit", "-qam", "check runs on")
    event = push_event(github, ci)
    event["ref"] = "refs/heads/master"
    event["repository"]["default_branch"] = "master"
    run = act(workspace, github, ci, "push", event)
    assert run.returncode == 0, run.log[-6000:]
    champion = MlflowClient(workspace.tracking_uri).get_model_version_by_alias(MODEL, "champion")
    assert run.outputs["model-version"] == str(champion.version)
    sha = git(ci, "rev-parse", "HEAD").strip()
    assert champion.tags.get("mlci.git_sha") == sha
    # check_run held: a check run was asked for (a user token may not make one, so the
    # documented fallback, a commit status, carries the verdict)
    assert github.requests_to("POST", r"/check-runs$")
    assert [s["state"] for s in github.statuses] == ["success"]
    assert not github.violations, github.violations


def plant_shadows(ci: Path, proof: Path) -> None:
    """What a fork can add to its checkout: its own ``mlci/__main__.py`` and a top-level
    ``click.py`` (and ``pip``), each of which, if ever imported, writes ``proof`` (with the
    token it found) and exits 0 as if all had passed."""
    payload = (
        "import os, sys\n"
        f"with open({str(proof)!r}, 'a') as fh:\n"
        "    fh.write(__name__ + ' ' + os.environ.get('GITHUB_TOKEN', '') + '\\n')\n"
        "sys.exit(0)\n"
    )
    (ci / "mlci" / "__main__.py").write_text(payload, encoding="utf-8")
    (ci / "click.py").write_text(payload, encoding="utf-8")
    (ci / "pip").mkdir()
    (ci / "pip" / "__init__.py").write_text(payload, encoding="utf-8")
    (ci / "pip" / "__main__.py").write_text(payload, encoding="utf-8")


@pytest.mark.slow
def test_pull_request_target_from_a_fork_is_refused(
    workspace: Workspace, github: FakeGitHub
) -> None:
    """The fork's checkout carries modules that shadow mlci, click and pip. The action starts
    Python so that none of them runs (the token never reaches them), and mlci's own guard
    refuses the fork."""
    ci = checkout(workspace, "pr/tune-model")
    proof = workspace.work / "shadow-ran.txt"
    plant_shadows(ci, proof)
    # The shadows are real: `python -m mlci` in that checkout runs the fork's code.
    naive = subprocess.run(
        [sys.executable, "-m", "mlci", "--version"], cwd=ci, capture_output=True, check=False
    )
    assert naive.returncode == 0 and proof.read_text(encoding="utf-8").startswith("__main__")
    proof.unlink()

    event = pr_event(github, ci, head_repo="mallory/demo")
    run = act(workspace, github, ci, "pull_request_target", event)
    assert not proof.exists(), proof.read_text(encoding="utf-8")
    assert run.returncode != 0
    assert run.step_exit_code() == 2, run.log[-6000:]
    assert "fork mallory/demo" in run.log
    assert "» pull" not in run.log  # refused before any stage ran
    assert "» reproduce" not in run.log
    # the refusal itself is the report: posted by mlci (no PR code ran), and the verdict
    (comment,) = ours(github)
    assert "fork mallory/demo" in comment["body"]
    assert run.outputs["verdict"] == "error"


@pytest.mark.slow
def test_the_action_installs_mlci_when_the_version_differs_and_rejects_unknown_commands(
    workspace: Workspace, github: FakeGitHub
) -> None:
    ci = checkout(workspace, "pr/tune-model")
    calls = workspace.work / "pip-calls.txt"
    fake = workspace.work / "python-with-old-mlci"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$2 $3 $4" = "-m mlci --version" ]; then echo "mlci, version 0.0.1"; exit 0; fi\n'
        'if [ "$2 $3" = "-m pip" ]; then\n'
        f'  test -f "$6/action.yml" && test -f "$6/mlci/__init__.py" && echo "$@" >> {calls}\n'
        "  exit 0\nfi\n"
        f'exec {sys.executable} "$@"\n',
        encoding="utf-8",
    )
    fake.chmod(0o755)
    event = pr_event(github, ci)
    run = act(
        workspace, github, ci, "pull_request", event, MLCI_PYTHON=str(fake), MLCI_COMMAND="doctor"
    )
    assert run.returncode == 0, run.log[-6000:]
    assert f"installing mlci {__version__} from" in run.log
    # pip was asked to install the action's own directory (it held action.yml and mlci/)
    (pip,) = calls.read_text(encoding="utf-8").splitlines()
    # with -P: the checkout's files cannot shadow pip
    assert pip.split()[:4] == ["-P", "-m", "pip", "install"]
    assert "git dirty" in run.log  # then `mlci doctor` ran with that interpreter

    bad = act(workspace, github, ci, "pull_request", event, MLCI_COMMAND="sh -c id")
    assert bad.step_exit_code() == 2, bad.log[-6000:]
    assert "unknown command 'sh'" in bad.log
    assert not github.requests
