"""Trainings across a whole PR lifecycle, side by side: mlci now, mlci before train-once
(a git revision, default HEAD), and the hand-written DVC + CML workflow.

Lifecycle, each job in a fresh depth-1 clone with its own MLflow SQLite store (the default
setup; nothing shared but git and the DVC remote): open the PR (check), push a commit that
touches only the README (check), re-run that job, squash-merge, then the push-to-main
workflow (check, then promotion). Four projects: the bundled example (mlci's trainer), a
zero-config DVC project with its own training script (``tests/lifecycle.py``), and the
lifecycle suite's templated and DVCLive-style shapes (``tests/shapes/projects.py``). A training
is a run of the training stage's command (``$TRAIN_LOG`` for the scripts; an MLflow run with
mlci's backend tag for the example). Also: seconds from the merge to a moved ``champion``.

Then the whole loop per shape, as ``tests/test_lifecycle.py`` walks it (``tests/shapes/loop.py``:
init, a worse and a better PR, merge, push job, monitor, drift, the retraining PR, merge, push
job, degraded, rollback, healthy again, a regression pushed to main), against one local
``mlflow server`` and the loopback GitHub: the trainings of each shape's loop, against its
distinct training inputs (the two PRs, the retraining PR, and where the shape walks it the
regression pushed to main), with the loop's wall and CPU seconds.

    python bench/lifecycle.py [--old-rev HEAD] [--new PATH] [--loop-only]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import lifecycle as lc  # noqa: E402

Job = Callable[[Path, str, dict[str, str]], None]


def sh(cwd: Path, *cmd: str, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} in {cwd}: {proc.stdout[-1500:]}{proc.stderr[-1500:]}")


def base_env(pythonpath: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "MLCI_"))}
    env.update(DVC_NO_ANALYTICS="1", MLFLOW_DISABLE_TELEMETRY="true")
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return env


def mlci_flow(pythonpath: str | None) -> dict[str, Job]:
    py = sys.executable

    def pr(clone: Path, sha: str, env: dict[str, str]) -> None:
        sh(clone, py, "-m", "mlci", "run", "--base", "main", env={**env, **pr_env(clone, sha)})

    def main(clone: Path, sha: str, env: dict[str, str]) -> None:
        full = {**env, **lc.push_env(sha)}
        sh(clone, py, "-m", "mlci", "run", env=full)
        sh(clone, py, "-m", "mlci", "promote", env=full)

    return {"pr": pr, "main": main}


def cml_flow() -> dict[str, Job]:
    """What a hand-written workflow does: pull, repro, push (then `cml comment create`)."""
    py = sys.executable

    def job(clone: Path, sha: str, env: dict[str, str]) -> None:
        sh(clone, py, "-m", "dvc", "pull", "-q", env=env)
        sh(clone, py, "-m", "dvc", "repro", "-q", env=env)
        sh(clone, py, "-m", "dvc", "push", "-q", env=env)

    return {"pr": job, "main": job}


def pr_env(clone: Path, sha: str) -> dict[str, str]:
    return lc.pr_env(clone.parent, 5, sha)


def example(work: Path, env: dict[str, str]) -> str:
    from mlci.adopt.demo import build_project

    os.environ["MLCI_MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'build.db'}"
    try:
        build_project(work / "origin", work / "remote")
    finally:
        del os.environ["MLCI_MLFLOW_TRACKING_URI"]
    o = work / "origin"
    lc.git(o, "config", "receive.denyCurrentBranch", "ignore")
    lc.git(o, "checkout", "-q", "-b", "pr", "main")
    text = (o / "params.yaml").read_text().replace("max_depth: 3", "max_depth: 4")
    (o / "params.yaml").write_text(text)
    lc.git(o, "commit", "-qam", "deeper trees")
    lc.git(o, "checkout", "-q", "main")
    return "pr"


def script_project(work: Path, env: dict[str, str]) -> str:
    lc.build(work / "origin", work / "remote")
    lc.open_pr(work / "origin", "pr", 0.05)
    return "pr"


def shape_project(key: str) -> Callable[[Path, dict[str, str]], str]:
    """A shape of the lifecycle suite, with its better PR on branch ``pr``."""

    def make(work: Path, env: dict[str, str]) -> str:
        from shapes import projects

        shape = {s.key: s for s in projects.all_shapes()}[key]
        o = work / "origin"
        shape.build(o, work / "remote")
        lc.git(o, "checkout", "-q", "-b", "pr", "main")
        shape.better.apply(o)
        lc.git(o, "commit", "-qam", shape.better.message)
        lc.git(o, "checkout", "-q", "main")
        return "pr"

    return make


# A run mlci's trainer logged: it has the backend tag. A run mlci recorded from restored files
# (``mlci.recorded``) is not a training, though it may name the backend of the model it logged.
TRAINER_RUNS = """
select count(*) from tags t where t.key = 'mlci.backend' and not exists (
    select 1 from tags r where r.run_uuid = t.run_uuid and r.key = 'mlci.recorded'
    and r.value = 'true')
"""


def count(work: Path, log: Path) -> int:
    n = len(log.read_text().splitlines()) if log.exists() else 0
    for db in work.glob("job-*/.mlci/mlflow.db"):
        with sqlite3.connect(db) as conn:
            rows = conn.execute(TRAINER_RUNS).fetchone()
        n += int(rows[0])
    return n


def lifecycle(
    make: Callable[[Path, dict[str, str]], str], flow: dict[str, Job], env: dict[str, str]
) -> tuple[int, float]:
    work = Path(tempfile.mkdtemp(prefix="mlci-life-"))
    log = work / "trainings.log"
    env = {**env, "TRAIN_LOG": str(log)}
    try:
        branch = make(work, env)
        o = work / "origin"
        jobs = 0

        def job(ref: str, kind: str) -> None:
            nonlocal jobs
            jobs += 1
            clone = lc.clone(o, work / f"job-{jobs}", ref)
            sha = lc.git(clone, "rev-parse", "HEAD").strip()
            flow[kind](clone, sha, env)

        job(branch, "pr")  # open the PR
        lc.git(o, "checkout", "-q", branch)
        (o / "README.md").write_text("Docs only.\n")
        lc.git(o, "add", "README.md")
        lc.git(o, "commit", "-qm", "docs")
        lc.git(o, "checkout", "-q", "main")
        job(branch, "pr")  # the README-only push
        job(branch, "pr")  # re-run of that job
        lc.git(o, "merge", "-q", "--squash", branch)
        lc.git(o, "commit", "-qm", "squash (#5)")
        started = time.monotonic()
        job("main", "main")  # push-to-main workflow: check, then promotion
        return count(work, log), time.monotonic() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)


def old_tree(rev: str, repo: Path) -> str:
    dest = Path(tempfile.mkdtemp(prefix="mlci-old-"))
    archive = subprocess.run(
        ["git", "archive", rev, "mlci"], cwd=repo, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return str(dest)


def whole_loops() -> None:
    """The lifecycle suite's loop per shape; the trainings it took, step by step."""
    import uuid

    from servers import start_mlflow, stop_mlflow
    from shapes import loop, projects
    from shapes.walk import Walk

    from github_server import FakeGitHub

    for key, value in GIT_IDENTITY.items():
        os.environ.setdefault(key, value)
    steps = ("worse PR", "better PR", "push job", "monitor drifted", "retraining PR",
             "push job 2", "monitor healthy again", "regression pushed to main")  # fmt: skip
    print("\nthe whole loop per shape (tests/shapes/loop.py); trainings after each step")
    head = " | ".join(steps)
    print(f"| shape | {head} | trainings | distinct inputs | seconds | CPU seconds | broke |")
    print(f"|{'---|' * (len(steps) + 6)}")
    for shape in projects.all_shapes():
        work = Path(tempfile.mkdtemp(prefix=f"mlci-loop-{shape.key}-"))
        server = start_mlflow(f"sqlite:///{work / 'mlflow.db'}", work / "art", work / "mlflow.log")
        github = FakeGitHub().start()
        try:
            w = Walk(shape, work, github, server.url, f"bench-{shape.key}-{uuid.uuid4().hex[:6]}")
            started = time.monotonic()
            w.build()
            with contextlib.suppress(Exception):  # a step that broke is named below
                loop.regression(w)
            took = time.monotonic() - started
            after = [str(getattr(w.results.get(f"state after {s}"), "trainings", "—"))
                     for s in steps]  # fmt: skip
            broke = ", ".join(w.broken) or "—"
            inputs = 3 + (shape.regress is not None)
            print(f"| {shape.key} | {' | '.join(after)} | {w.trainings()} | {inputs} | "
                  f"{took:.0f} | {w.cpu():.0f} | {broke} |", flush=True)  # fmt: skip
        finally:
            github.stop()
            stop_mlflow(server)
            shutil.rmtree(work, ignore_errors=True)


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "mlci bench",
    "GIT_AUTHOR_EMAIL": "bench@mlci.invalid",
    "GIT_COMMITTER_NAME": "mlci bench",
    "GIT_COMMITTER_EMAIL": "bench@mlci.invalid",
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old-rev", default="HEAD")
    ap.add_argument("--new", default=str(HERE.parent))
    ap.add_argument("--repo", default=str(HERE.parent), help="the git repository of --old-rev")
    ap.add_argument("--loop-only", action="store_true", help="only the whole loop per shape")
    args = ap.parse_args()
    print(f"python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    if args.loop_only:
        whole_loops()
        return
    old = old_tree(args.old_rev, Path(args.repo))
    flows = {
        "mlci now": (mlci_flow(args.new), base_env(args.new)),
        f"mlci at {args.old_rev}": (mlci_flow(old), base_env(old)),
        "DVC + CML by hand": (cml_flow(), base_env(None)),
    }
    print("distinct training inputs in this lifecycle: 1 (the PR's params change)")
    print(f"| project | flow | trainings | target | merge -> champion (s) |\n|{'---|' * 5}")
    projects = (
        ("bundled example", example),
        ("zero-config DVC project", script_project),
        ("templated dvc.yaml (shape b)", shape_project("templated")),
        ("DVCLive-style (shape c)", shape_project("dvclive")),
    )
    for pname, make in projects:
        for fname, (flow, env) in flows.items():
            try:
                n, took = lifecycle(make, flow, env)
                shown = f"{took:.1f}" if "mlci" in fname else "—"
                print(f"| {pname} | {fname} | {n} | 1 | {shown} |", flush=True)
            except RuntimeError as exc:
                print(f"| {pname} | {fname} | failed: {str(exc).splitlines()[0][:120]} | 1 | — |")
    whole_loops()


if __name__ == "__main__":
    main()
