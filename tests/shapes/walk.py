"""One project's whole loop, job by job, as GitHub would run the workflows ``mlci init`` wrote.

Each job is a fresh depth-1 clone of ``origin`` (the repository on GitHub) with the
environment GitHub Actions gives it; its ``mlci`` step is read from the workflow file in the
repository (``.github/workflows/mlci-pr.yml``, ``mlci-promote.yml``; the monitor from this
repository's ``mlci-monitor.yml``, which the README says to copy) and run the way ``action.yml``
runs it: the ``with:`` inputs become the same environment variables, a passing ``run`` on a
push is followed by ``mlci promote --auto``, and ``fail-on`` maps exit codes the same way.

Everything a job talks to is real and shared between jobs: git, the DVC remote (a local
directory, run-cache included), one ``mlflow server``, and the loopback GitHub
(``tests/github_server.py``), on which pull requests are opened and merged as a person would.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import lifecycle as lc
import yaml

from shapes.projects import Shape
from shapes.state import State, read_state

ROOT = Path(__file__).resolve().parents[2]
MONITOR_WORKFLOW = ROOT / ".github" / "workflows" / "mlci-monitor.yml"
SNAPSHOTS = "data/snapshots"
INPUT_ENV = {  # action.yml: the inputs that become MLCI_* variables when set
    "comment": "MLCI_COMMENT",
    "check-run": "MLCI_CHECK_RUN",
    "step-summary": "MLCI_STEP_SUMMARY",
    "allow-untrusted": "MLCI_ALLOW_UNTRUSTED",
    "base": "MLCI_BASE",
    "params-file": "MLCI_PARAMS_FILE",
    "api-url": "MLCI_GITHUB_API_URL",
    "mlflow-tracking-uri": "MLCI_MLFLOW_TRACKING_URI",
    "dvc-remote": "MLCI_DVC_REMOTE",
}
PROMOTE_INPUTS = ("step-summary", "params-file", "mlflow-tracking-uri", "api-url")
FAIL_ON = {3: "data", 4: "gate", 6: "drift"}
T = TypeVar("T")


@dataclass
class Step:
    """One process of a job: its command line, exit code, output and step outputs."""

    args: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    cpu: float = 0.0  # seconds of CPU, its children included

    @property
    def log(self) -> str:
        err = "\n".join(ln for ln in self.stderr.splitlines() if "Downloading artifacts" not in ln)
        return (
            f"$ mlci {' '.join(self.args)} -> exit {self.rc}\n{self.stdout[-5000:]}\n{err[-3000:]}"
        )


@dataclass
class Job:
    """A workflow job: its checkout, its steps (``mlci``, then ``mlci promote`` where it ran)
    and the exit code the step reports after ``fail-on``."""

    name: str
    checkout: Path
    steps: list[Step] = field(default_factory=list)
    rc: int = 0
    summary: Path | None = None

    @property
    def mlci(self) -> Step:
        return self.steps[0]

    @property
    def promote(self) -> Step | None:
        return self.steps[1] if len(self.steps) > 1 else None

    @property
    def log(self) -> str:
        return f"job {self.name} in {self.checkout}:\n" + "\n".join(s.log for s in self.steps)

    def report(self, name: str = "report.md") -> str:
        return (self.checkout / ".mlci" / name).read_text(encoding="utf-8")

    def facts(self, name: str = "report.json") -> dict[str, Any]:
        found: dict[str, Any] = json.loads((self.checkout / ".mlci" / name).read_text("utf-8"))
        return found


@dataclass
class PullRequest:
    number: int
    branch: str
    sha: str
    merged: str | None = None


class Walk:
    """The loop of one shape; ``github`` is a started ``FakeGitHub``, ``tracking_uri`` the
    shared server's, ``model`` the registered model's name (unique per walk)."""

    def __init__(
        self, shape: Shape, work: Path, github: Any, tracking_uri: str, model: str
    ) -> None:
        self.shape = shape
        self.work = work
        self.origin = work / "origin"
        self.remote = work / "remote"
        self.log = work / "trainings.log"
        self.github = github
        self.tracking_uri = tracking_uri
        self.model = model
        self.jobs: list[Job] = []
        self.results: dict[str, Any] = {}
        self.broken: dict[str, str] = {}
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # set: the walk's runner starts no further step
        self._done: dict[str, threading.Event] = {}
        self.plan: dict[str, Any] = {}  # step -> shapes.faults.Fault injected at that step
        self.watch: Callable[[str], None] | None = None  # hears each output line of a job
        self.server: Any = None  # the walk's own `mlflow server` (faults kill it), if any

    def once(self, name: str, action: Callable[[], T]) -> T:
        """Run step ``name`` of the walk once, whichever thread asks first (the walk's own
        runner, or a test); another thread that asks waits for it. A step that needs one that
        broke fails saying which step broke and how, instead of a confusing error of its own."""
        with self._lock:
            done = self._done.get(name)
            mine = done is None
            if mine:
                done = self._done[name] = threading.Event()
        assert done is not None
        if not mine:
            done.wait()
            if name in self.broken:
                raise AssertionError(
                    f"[{self.shape.key}] step '{name}' broke earlier: {self.broken[name]}"
                )
            return self.results[name]  # type: ignore[no-any-return]
        try:
            result = action()
        except BaseException as exc:
            first = (str(exc).splitlines() or [""])[0]
            self.broken[name] = f"{type(exc).__name__}: {first}"[:600]
            raise
        else:
            self.results[name] = result
        finally:
            done.set()
        return result

    def attempt(self, step: str, run: Callable[[], Job]) -> Job:
        """A job of ``step``; where the plan injects a fault there, the first attempt runs under
        it (kept in ``results``), the fault is repaired, and the job is re-run as GitHub's
        "Re-run failed jobs" would (or, for a fault the job must absorb, not re-run)."""
        fault = self.plan.get(step)
        if fault is None:
            return run()
        fault.arrange(self)
        self.watch = None if fault.watch is None else (lambda line: fault.watch(self, line))
        try:
            first = run()
        finally:
            self.watch = None
            unused = [f"{f.method} {f.pattern.pattern}" for f in self.github.faults if f.times]
            self.github.faults.clear()
        self.results[f"first attempt at {step}"] = (first, unused)
        fault.repair(self, first)
        return run() if fault.rerun else first

    # ---- the project and its people -----------------------------------------------------

    def build(self) -> None:
        self.shape.build(self.origin, self.remote)

    def sha(self, ref: str = "main") -> str:
        return lc.git(self.origin, "rev-parse", ref).strip()

    def commit_on_main(self, message: str, edit: Callable[[Path], None]) -> str:
        """A person's commit straight on main in ``origin``."""
        lc.git(self.origin, "checkout", "-q", "main")
        edit(self.origin)
        lc.git(self.origin, "add", "-A")
        lc.git(self.origin, "commit", "-q", "-m", message)
        return self.sha()

    def open_pr(self, branch: str, message: str, edit: Callable[[Path], None]) -> PullRequest:
        """A branch off main with one commit, pushed, and its pull request on GitHub."""
        lc.git(self.origin, "checkout", "-q", "-b", branch, "main")
        try:
            edit(self.origin)
            lc.git(self.origin, "commit", "-q", "-am", message)
            sha = self.sha(branch)
        finally:
            lc.git(self.origin, "checkout", "-q", "main")
        return self.track_pr(branch, sha, title=message)

    def track_pr(self, branch: str, sha: str, title: str, number: int | None = None) -> PullRequest:
        """GitHub's view of a pull request from ``branch`` (one mlci opened: by ``number``)."""
        gh = self.github
        if number is None:
            number = gh._next_number()
            gh.add_pull(number, head_sha=sha)
            gh.pulls[number].update(title=title, state="open", head_ref=branch, base_ref="main")
        else:
            gh.pulls[number]["head_sha"] = sha  # the branch mlci pushed
        return PullRequest(number, branch, sha)

    def merge(self, pr: PullRequest) -> str:
        """The merge button: a merge commit on main; the PR closed, merged as that commit."""
        lc.git(self.origin, "checkout", "-q", "main")
        message = f"Merge pull request #{pr.number} from octo/{pr.branch}"
        lc.git(self.origin, "merge", "-q", "--no-ff", "-m", message, pr.branch)
        pr.merged = self.sha()
        self.github.merge_pull(pr.number, pr.merged)
        self.github.pulls[pr.number]["state"] = "closed"
        return pr.merged

    def ingest(self) -> str:
        """The ingestion job: the production snapshots added with DVC, pushed, committed to main
        with ``[skip ci]`` (no workflow runs on it)."""
        snaps = self.origin / SNAPSHOTS
        snaps.mkdir(parents=True, exist_ok=True)
        for name, text in self.shape.snapshots(self.origin).items():
            (snaps / f"{name}.csv").write_text(text, encoding="utf-8")
            lc.dvc(self.origin, "add", "-q", f"{SNAPSHOTS}/{name}.csv")
        lc.dvc(self.origin, "push", "-q")
        return self.commit_on_main("Ingest production snapshots [skip ci]", lambda _: None)

    # ---- jobs -----------------------------------------------------------------------------

    def checkout(self, ref: str, name: str) -> Path:
        dest = self.work / "jobs" / f"{len(self.jobs) + 1:02d}-{name}"
        dest.parent.mkdir(exist_ok=True)
        return lc.clone(self.origin, dest, ref)

    def base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLCI_"))}
        env["TRAIN_LOG"] = str(self.log)
        env["MLCI_WARM_RECORDER"] = os.environ.get("MLCI_WARM_RECORDER", "0")
        return env

    def actions_env(
        self, job: Path, event: str, payload: dict[str, Any], **extra: str
    ) -> dict[str, str]:
        """What a GitHub-hosted runner sets for a job on ``event``."""
        path = job.parent / f"{job.name}-event.json"
        path.write_text(json.dumps(payload), encoding="utf-8")
        return {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": event,
            "GITHUB_EVENT_PATH": str(path),
            "GITHUB_REPOSITORY": self.github.repo,
            "GITHUB_API_URL": self.github.url,
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_RUN_ID": str(4000 + len(self.jobs)),
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_ACTOR": "octocat",
            **extra,
        }

    def workflow_step(self, path: Path, checkout: Path) -> dict[str, Any]:
        """The mlci step of a workflow file: the step whose ``with:`` names a ``command``."""
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        for job in doc["jobs"].values():
            for step in job["steps"]:
                if "command" in (step.get("with") or {}):
                    return dict(step)
        raise AssertionError(
            f"{path.relative_to(checkout) if checkout in path.parents else path}: no mlci step"
        )

    def expression(self, value: Any, job: Path) -> str:
        """A workflow input with its ``${{ }}`` expressions, as GitHub would evaluate them here."""
        known: dict[str, str] = {
            "github.event.pull_request.head.repo.full_name == github.repository": "true",
            "vars.MLCI_MLFLOW_TRACKING_URI": self.tracking_uri,
            "secrets.MLFLOW_TRACKING_URI": self.tracking_uri,
            "secrets.MLFLOW_TRACKING_USERNAME": "",
            "secrets.MLFLOW_TRACKING_PASSWORD": "",
            "github.token": str(self.github.integration_token),
            "runner.temp": str(job.parent),
        }

        def one(m: re.Match[str]) -> str:
            inner = m.group(1).strip()
            if inner not in known:
                raise AssertionError(f"the walk cannot evaluate `${{{{ {inner} }}}}` in a workflow")
            return known[inner]

        return re.sub(r"\$\{\{(.*?)\}\}", one, str(value))

    def run_action(
        self,
        name: str,
        checkout: Path,
        workflow: Path,
        env: dict[str, str],
        extra_args: tuple[str, ...] = (),
    ) -> Job:
        """The workflow's mlci step, as action.yml runs it (inputs -> environment; promote)."""
        step = self.workflow_step(workflow, checkout)
        inputs = {k: self.expression(v, checkout) for k, v in (step.get("with") or {}).items()}
        step_env = {k: self.expression(v, checkout) for k, v in (step.get("env") or {}).items()}
        job = Job(name, checkout, summary=checkout.parent / f"{checkout.name}-summary.md")
        base = {**self.base_env(), **env, **step_env, "GITHUB_STEP_SUMMARY": str(job.summary)}
        base["GITHUB_TOKEN"] = inputs.get("github-token", self.github.integration_token)
        base["MLCI_REPORT_NAME"] = inputs.get("report-name", "mlci")
        cwd = checkout / inputs.get("working-directory", ".")
        first = {**base, **{INPUT_ENV[k]: v for k, v in inputs.items() if k in INPUT_ENV and v}}
        args = (*inputs.get("command", "run").split(), *extra_args)
        self.jobs.append(job)
        step_one = self.mlci(cwd, args, first)
        job.steps.append(step_one)
        rc = step_one.rc
        promote = inputs.get("promote", "auto")
        if rc == 0 and args[0] == "run" and (promote == "true" or (
                promote == "auto" and env.get("GITHUB_EVENT_NAME") == "push")):  # fmt: skip
            second = {**base, **{INPUT_ENV[k]: inputs[k] for k in PROMOTE_INPUTS if inputs.get(k)}}
            job.steps.append(
                self.mlci(cwd, ("promote", *(("--auto",) if promote == "auto" else ())), second)
            )
            rc = job.steps[-1].rc
        fail_on = {x.strip() for x in inputs.get("fail-on", "gate,data").split(",")}
        job.rc = 0 if rc in FAIL_ON and FAIL_ON[rc] not in fail_on else rc
        return job

    def mlci(self, cwd: Path, args: tuple[str, ...], env: dict[str, str]) -> Step:
        outputs = cwd.parent / f"{cwd.name}-outputs-{args[0]}.txt"
        outputs.write_text("", encoding="utf-8")
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlci", *args],
            cwd=cwd,
            env={**env, "GITHUB_OUTPUT": str(outputs), "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        err: list[str] = []
        reader = threading.Thread(target=lambda: err.extend(proc.stderr or ()), daemon=True)
        reader.start()
        watchdog = threading.Timer(600, proc.kill)  # a job that hangs is killed (exit -9)
        watchdog.start()
        out = []
        try:
            for line in proc.stdout or ():
                out.append(line)
                if self.watch is not None:
                    self.watch(line)
            _, status, usage = os.wait4(proc.pid, 0)  # its CPU time too, stages included
        finally:
            watchdog.cancel()
        rc = proc.returncode = os.waitstatus_to_exitcode(status)
        reader.join(timeout=60)
        lines = outputs.read_text(encoding="utf-8").splitlines()
        found = dict(line.split("=", 1) for line in lines if "=" in line)
        cpu = usage.ru_utime + usage.ru_stime
        return Step(args, rc, "".join(out), "".join(err), found, cpu)

    # ---- the workflows ------------------------------------------------------------------

    def pr_check(self, pr: PullRequest) -> Job:
        """``mlci-pr.yml`` on ``pull_request`` for ``pr``'s head."""
        job = self.checkout(pr.branch, f"pr{pr.number}")
        payload = {
            "action": "synchronize",
            "number": pr.number,
            "pull_request": {
                "number": pr.number,
                "head": {"sha": pr.sha, "ref": pr.branch, "repo": {"full_name": self.github.repo}},
                "base": {"ref": "main", "repo": {"full_name": self.github.repo}},
            },
            "repository": {"full_name": self.github.repo, "default_branch": "main"},
        }
        env = self.actions_env(
            job,
            "pull_request",
            payload,
            GITHUB_SHA=pr.sha,
            GITHUB_REF=f"refs/pull/{pr.number}/merge",
            GITHUB_BASE_REF="main",
            GITHUB_HEAD_REF=pr.branch,
        )
        return self.run_action(
            f"PR #{pr.number} check", job, job / ".github/workflows/mlci-pr.yml", env
        )

    def push_job(self, sha: str) -> Job:
        """``mlci-promote.yml`` on the push of ``sha`` to main."""
        job = self.checkout("main", "push")
        assert lc.git(job, "rev-parse", "HEAD").strip() == sha, "main moved under the push job"
        payload = {
            "ref": "refs/heads/main",
            "after": sha,
            "repository": {"full_name": self.github.repo, "default_branch": "main"},
            "head_commit": {"id": sha},
        }
        env = self.actions_env(job, "push", payload, GITHUB_SHA=sha, GITHUB_REF="refs/heads/main")
        return self.run_action("push to main", job, job / ".github/workflows/mlci-promote.yml", env)

    def monitor(self, snapshot: str, *more: str) -> Job:
        """The scheduled ``mlci-monitor.yml`` (as the README says to copy it), on a snapshot."""
        job = self.checkout("main", "monitor")
        payload = {
            "schedule": "17 6 * * *",
            "repository": {"full_name": self.github.repo, "default_branch": "main"},
        }
        env = self.actions_env(
            job, "schedule", payload, GITHUB_SHA=lc.git(job, "rev-parse", "HEAD").strip(),
            GITHUB_REF="refs/heads/main",
        )  # fmt: skip
        args = ("--snapshot", f"{SNAPSHOTS}/{snapshot}.csv", *more)
        return self.run_action("monitor", job, MONITOR_WORKFLOW, env, args)

    def rollback(self, reason: str) -> Job:
        """A person on their laptop: ``mlci rollback`` in a checkout of main."""
        job = Job("rollback", self.checkout("main", "rollback"))
        self.jobs.append(job)
        env = {**self.base_env(), "MLCI_MLFLOW_TRACKING_URI": self.tracking_uri}
        job.steps.append(self.mlci(job.checkout, ("rollback", "--reason", reason), env))
        job.rc = job.mlci.rc
        return job

    def init(self, *args: str) -> Step:
        """``mlci init`` in a person's checkout (``origin`` on main)."""
        env = {**self.base_env(), "MLCI_MLFLOW_TRACKING_URI": self.tracking_uri}
        return self.mlci(self.origin, ("init", *args), env)

    # ---- what is in the registry, on GitHub, in the log --------------------------------

    def client(self) -> Any:
        from mlflow.tracking import MlflowClient

        return MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)

    def trainings(self) -> int:
        """Trainings so far: ``$TRAIN_LOG`` lines, or the runs mlci's trainer logged."""
        if self.shape.counted_by == "log":
            return lc.trainings(self.log)
        client = self.client()
        exp = client.get_experiment_by_name(self.model)
        if exp is None:
            return 0
        runs = client.search_runs(
            [exp.experiment_id], "tags.`mlci.backend` != ''", max_results=1000
        )
        return sum(1 for r in runs if r.data.tags.get("mlci.recorded") != "true")

    def cpu(self) -> float:
        """CPU seconds of every mlci process the walk's jobs ran."""
        return sum(s.cpu for j in self.jobs for s in j.steps)

    def snapshot(self) -> State:
        """Everything a test asserts on, read when a step has finished (the walk goes on in
        its own thread: a test reads this, never the live registry or GitHub)."""
        return read_state(self.client(), self.model, self.github, self.trainings())
