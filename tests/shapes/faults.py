"""Faults injected into the walks, one per step where a plan names it: GitHub answering 5xx or
losing its answer (``FakeGitHub.fail``/``lose``/``drop``), the ``mlflow server`` killed in the
middle of a step and started again on the same stores, a DVC remote missing an object.

A fault's first attempt runs under it and must fail the way the plan says (exit code, message)
or absorb it; then, as GitHub's "Re-run failed jobs" would, the job runs again and the walk goes
on. The step's own test then asserts the same state as a walk without faults: nothing
duplicated (one comment per PR, one issue, one retraining PR, one version per commit), nothing
lost. Each step of the loop runs without a fault in at least one shape and under one in another
(``PLANS``), so one walk per shape covers both at the cost of the failed attempts alone.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from servers import MlflowServer, start_mlflow, stop_mlflow

from shapes.walk import SNAPSHOTS, Job, Walk


def _nothing(w: Walk) -> None:
    pass


def _nothing_after(w: Walk, job: Job) -> None:
    pass


@dataclass(frozen=True)
class Fault:
    what: str
    arrange: Callable[[Walk], None] = _nothing
    watch: Callable[[Walk, str], None] | None = None  # on each output line of the first attempt
    repair: Callable[[Walk, Job], None] = _nothing_after
    rerun: bool = True  # False: the job must absorb the fault itself
    first_rc: int | None = 5  # the first attempt's exit code (the job's, after fail-on)
    says: str = ""  # in the first attempt's output


class Replica:
    """A second ``mlflow server`` on the session server's stores (its PostgreSQL database and
    artifacts), as a team runs replicas: the walk's jobs use it, a fault kills it and starts it
    again on the same stores (on a new port: the jobs read the URI from the secret), and the
    session's server, which other tests use, stays up."""

    def __init__(self, session: MlflowServer, logs: Path) -> None:
        args = [str(a) for a in session.proc.args]  # type: ignore[union-attr]
        self.backend = args[args.index("--backend-store-uri") + 1]
        self.artifacts = Path(args[args.index("--artifacts-destination") + 1])
        self.logs = logs
        self.starts = 0
        self.current: MlflowServer | None = None

    def start(self) -> str:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.starts += 1
        log = self.logs / f"replica-{self.starts}.log"
        self.current = start_mlflow(self.backend, self.artifacts, log)
        return self.current.url

    def kill(self) -> None:
        """SIGKILL to the server's whole process group: no goodbye."""
        if self.current is not None and self.current.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.current.proc.pid, signal.SIGKILL)
            self.current.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.current is not None:
            stop_mlflow(self.current)


# ---- GitHub ------------------------------------------------------------------------------


def github(kind: str, method: str, path: str, **kw: Any) -> Callable[[Walk], None]:
    """``FakeGitHub.<kind>(method, path, ...)`` before the first attempt."""

    def arrange(w: Walk) -> None:
        getattr(w.github, kind)(method, path, **kw)

    return arrange


def both(*arrangements: Callable[[Walk], None]) -> Callable[[Walk], None]:
    def arrange(w: Walk) -> None:
        for a in arrangements:
            a(w)

    return arrange


# ---- MLflow --------------------------------------------------------------------------------


def kill_mlflow_at(stage: str) -> Callable[[Walk, str], None]:
    """Kill the server when the job starts ``stage`` (its ``» stage`` line)."""

    def watch(w: Walk, line: str) -> None:
        if line.startswith(f"» {stage}"):
            w.server.kill()

    return watch


def kill_mlflow(w: Walk) -> None:
    w.server.kill()


def restart_mlflow(w: Walk, job: Job) -> None:
    w.tracking_uri = w.server.start()


def needs_server(plan: dict[str, Fault]) -> bool:
    """Whether a plan kills the server: then the walk gets a replica to kill."""
    return any(f.repair is restart_mlflow for f in plan.values())


# ---- the DVC remote ------------------------------------------------------------------------


def _object(w: Walk, dvc_file: str) -> Path:
    out = yaml.safe_load((w.origin / dvc_file).read_text(encoding="utf-8"))["outs"][0]
    md5 = str(out["md5"])
    return w.remote / "files" / "md5" / md5[:2] / md5[2:]


def hide_object(dvc_file: str) -> Callable[[Walk], None]:
    """The remote loses the object ``dvc_file`` names (a push that never happened)."""

    def arrange(w: Walk) -> None:
        found = _object(w, dvc_file)
        assert found.is_file(), f"no object {found} in the remote to lose"
        shutil.move(found, w.work / "hidden-object")

    return arrange


def push_object_again(dvc_file: str) -> Callable[[Walk, Job], None]:
    """Someone runs `dvc push` where the data was produced: the object is back."""

    def repair(w: Walk, job: Job) -> None:
        shutil.move(w.work / "hidden-object", _object(w, dvc_file))

    return repair


# ---- the plans: step -> fault, per shape ---------------------------------------------------

COMMENTS = r"/issues/\d+/comments$"
DRIFTED = f"{SNAPSHOTS}/drifted.csv.dvc"

PLANS: dict[str, dict[str, Fault]] = {
    "example": {
        "worse PR": Fault(
            "GitHub posts the report comment but its answer is lost",
            arrange=github("lose", "POST", COMMENTS),
            rerun=False,
            first_rc=4,
        ),
        "monitor drifted": Fault(
            "GitHub opens the retraining PR and the issue but both answers are lost",
            arrange=both(github("lose", "POST", r"/pulls$"), github("lose", "POST", r"/issues$")),
            rerun=False,
            first_rc=None,  # the champion's status, through fail-on
        ),
        "monitor healthy again": Fault(
            "GitHub posts the closing comment but its answer is lost",
            arrange=github("lose", "POST", COMMENTS),
            rerun=False,
            first_rc=0,
        ),
    },
    "templated": {
        "better PR": Fault(
            "GitHub answers 502 to every try at the check run",
            arrange=github("fail", "POST", r"/check-runs$", status=502, times=5),
            says="gave up after 5 tries",
        ),
        "push job": Fault(
            "MLflow server killed when the promotion starts registering",
            watch=kill_mlflow_at("register"),
            repair=restart_mlflow,
            says="MLflow at",
        ),
        "retraining PR": Fault(
            "the DVC remote lacks the retraining data's object",
            arrange=hide_object(DRIFTED),
            repair=push_object_again(DRIFTED),
            says="DVC remote",
        ),
        "push job 2": Fault(
            "GitHub posts the promotion note but its answer is lost",
            arrange=github("lose", "POST", COMMENTS),
            rerun=False,
            first_rc=0,
        ),
        "monitor degraded": Fault(
            "GitHub drops the connection on the first issue search",
            arrange=github("drop", "GET", r"/issues$"),
            rerun=False,
            first_rc=4,
        ),
        "rollback": Fault(
            "MLflow server down during the rollback",
            arrange=kill_mlflow,
            repair=restart_mlflow,
            says="MLflow at",
        ),
    },
    "dvclive": {
        "worse PR": Fault(
            "GitHub drops the connection on the first search for the sticky comment",
            arrange=github("drop", "GET", COMMENTS),
            rerun=False,
            first_rc=4,
        ),
        "better PR": Fault(
            "GitHub answers 502 once to the report comment",
            arrange=github("fail", "POST", COMMENTS, status=502),
            rerun=False,
            first_rc=0,
        ),
    },
}
