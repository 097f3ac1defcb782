"""The loop's steps, in order, each run once per walk (``Walk.once``): what a team does from
``mlci init`` to a rollback, and what GitHub runs on each event. A step that needs an earlier
one's result asks for it by name, so a test of a later step runs after a broken earlier step
only as far as it can, and says which step broke.

    init -> worse PR -> better PR -> merge -> push job (run + promote) -> ingest snapshots
    -> monitor healthy -> monitor drifted (issue + retraining PR) -> retraining PR check
    -> merge it -> push job -> monitor degraded -> rollback -> monitor healthy again
    -> a regression pushed straight to main (push job)

Each step also keeps what it left in the registry, on GitHub and in the trainings log (``State``,
read in the walk's own thread when the step finished).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lifecycle as lc
import yaml

from shapes.state import State
from shapes.walk import SNAPSHOTS, Job, PullRequest, Walk

RETRAIN_BRANCH = "mlci/retrain"
MONITOR_GATE = "accuracy: {direction: higher, abs_tol: 0.1}"
ROLLBACK_REASON = "v2 fails on the complaints snapshot"


def _step(w: Walk, name: str, action: Any) -> Any:
    def run() -> Any:
        result = action()
        w.results[f"state after {name}"] = w.snapshot()
        return result

    return w.once(name, run)


def state(w: Walk, name: str) -> State:
    """What step ``name`` left (the registry, GitHub, the trainings so far)."""
    return w.results[f"state after {name}"]  # type: ignore[no-any-return]


def review(w: Walk) -> None:
    """What the team changes in what ``mlci init`` wrote: the model's name, a check run, the
    monitor (label, a tolerance for production data, retraining PRs), and gate corrections."""
    params = w.origin / "params.yaml"
    text = params.read_text(encoding="utf-8")
    for old, new in w.shape.review:
        assert old in text, f"init wrote no {old!r}: {text}"
        text = text.replace(old, new)
    ours = [
        f"  model_name: {w.model}",
        f"  experiment: {w.model}",
        "  check_run: true",
        "  plots: {images: 'off'}",
        "  monitor:",
        *([] if w.shape.label_inferred else [f"    label: {w.shape.label}"]),
        "    on_breach: pr",
        "    gates:",
        f"      {MONITOR_GATE}",
    ]
    assert "\nmlci:\n" in text, text
    params.write_text(text.replace("\nmlci:\n", "\nmlci:\n" + "\n".join(ours) + "\n", 1))


def adopt(w: Walk) -> dict[str, Any]:
    def run() -> dict[str, Any]:
        refused = w.init() if w.shape.init_refused else None
        before = refused and lc.git(w.origin, "status", "--porcelain")
        written = w.init(*w.shape.init_args)
        assert written.rc == 0, written.log
        params = (w.origin / "params.yaml").read_text(encoding="utf-8")
        workflows = {
            p.name: p.read_text(encoding="utf-8")
            for p in sorted((w.origin / ".github" / "workflows").glob("*.yml"))
        }
        review(w)
        sha = w.commit_on_main("Adopt mlci [skip ci]", lambda _: None)
        return {"refused": refused, "status_after_refusal": before, "init": written,
                "params": params, "workflows": workflows, "sha": sha}  # fmt: skip

    return _step(w, "init", run)  # type: ignore[no-any-return]


def pr(w: Walk, which: str) -> tuple[PullRequest, Job]:
    """``worse`` or ``better``: a person's PR and its check."""

    def run() -> tuple[PullRequest, Job]:
        if which == "worse":
            adopt(w)
        else:
            pr(w, "worse")  # one after the other, so that their trainings are counted apart
        edit = getattr(w.shape, which)
        opened = w.open_pr(f"team/{which}", edit.message, edit.apply)
        return opened, w.attempt(f"{which} PR", lambda: w.pr_check(opened))

    return _step(w, f"{which} PR", run)  # type: ignore[no-any-return]


def merge_better(w: Walk) -> str:
    return _step(w, "merge", lambda: w.merge(pr(w, "better")[0]))  # type: ignore[no-any-return]


def push(w: Walk, name: str, sha_of: Any) -> Job:
    def run() -> Job:
        sha = sha_of()
        return w.attempt(name, lambda: w.push_job(sha))

    return _step(w, name, run)  # type: ignore[no-any-return]


def first_push(w: Walk) -> Job:
    return push(w, "push job", lambda: merge_better(w))


def ingest(w: Walk) -> str:
    def run() -> str:
        first_push(w)
        return w.ingest()

    return _step(w, "ingest", run)  # type: ignore[no-any-return]


def monitor(w: Walk, name: str, snapshot: str, *more: str, after: Any = None) -> Job:
    def run() -> Job:
        ingest(w)
        if after is not None:
            after(w)
        return w.attempt(name, lambda: w.monitor(snapshot, *more))

    return _step(w, name, run)  # type: ignore[no-any-return]


def healthy(w: Walk) -> Job:
    return monitor(w, "monitor healthy", "same")


def drifted(w: Walk) -> Job:
    return monitor(w, "monitor drifted", "drifted", after=healthy)


def retraining_pr(w: Walk) -> tuple[PullRequest, Job]:
    """The PR the monitor opened, as GitHub shows it, and its check."""

    def run() -> tuple[PullRequest, Job]:
        job = drifted(w)
        found = re.search(r"/pull/(\d+)$", job.mlci.outputs.get("pr-url", ""))
        if found is None:  # test_07 fails on it; the rest of the loop goes on
            w.results[BY_HAND] = job.mlci.stdout
            opened = w.open_pr(RETRAIN_BRANCH, "Retrain on the drifted snapshot", _repoint)
        else:
            head = w.github.pulls[int(found.group(1))]
            sha = w.sha(RETRAIN_BRANCH)
            opened = w.track_pr(head["head_ref"], sha, head.get("title", ""), head["number"])
        return opened, w.attempt("retraining PR", lambda: w.pr_check(opened))

    return _step(w, "retraining PR", run)  # type: ignore[no-any-return]


BY_HAND = "retraining PR made by hand"


def _repoint(root: Path) -> None:
    """What the monitor's retraining commit does (README, Monitoring): the training data's
    ``.dvc`` pointer names the snapshot's data; a person makes it where the monitor did not."""
    snapshot = yaml.safe_load((root / SNAPSHOTS / "drifted.csv.dvc").read_text())
    (pointer,) = root.glob("data/*.dvc")  # the training data, added with `dvc add`
    doc = yaml.safe_load(pointer.read_text())
    doc["outs"] = [dict(o, path=pointer.name[: -len(".dvc")]) for o in snapshot["outs"]]
    pointer.write_text(yaml.safe_dump(doc, sort_keys=False))


def merge_retraining(w: Walk) -> str:
    return _step(w, "merge retraining", lambda: w.merge(retraining_pr(w)[0]))  # type: ignore[no-any-return]


def second_push(w: Walk) -> Job:
    return push(w, "push job 2", lambda: merge_retraining(w))


def degraded(w: Walk) -> Job:
    """The on-call confirms by hand that the new champion fails on labelled complaints."""

    def run() -> Job:
        second_push(w)
        return w.attempt("monitor degraded", lambda: w.monitor("degraded", "--on-breach", "issue"))

    return _step(w, "monitor degraded", run)  # type: ignore[no-any-return]


def rollback(w: Walk) -> Job:
    def run() -> Job:
        degraded(w)
        return w.attempt("rollback", lambda: w.rollback(ROLLBACK_REASON))

    return _step(w, "rollback", run)  # type: ignore[no-any-return]


def healthy_again(w: Walk) -> Job:
    def run() -> Job:
        rollback(w)
        return w.attempt("monitor healthy again", lambda: w.monitor("same"))

    return _step(w, "monitor healthy again", run)  # type: ignore[no-any-return]


def regression(w: Walk) -> Job | None:
    """A worse model pushed straight to main (no PR): the push job must refuse it (None for a
    shape that does not walk this step)."""

    def run() -> Job | None:
        healthy_again(w)
        edit = w.shape.regress
        if edit is None:
            return None
        sha = w.commit_on_main(edit.message, edit.apply)
        return w.attempt("regression pushed to main", lambda: w.push_job(sha))

    return _step(w, "regression pushed to main", run)  # type: ignore[no-any-return]


STEPS: tuple[Callable[[Walk], Any], ...] = (
    adopt,
    lambda w: pr(w, "worse"),
    lambda w: pr(w, "better"),
    merge_better,
    first_push,
    ingest,
    healthy,
    drifted,
    retraining_pr,
    merge_retraining,
    second_push,
    degraded,
    rollback,
    healthy_again,
    regression,
)


def everything(w: Walk) -> None:
    """The whole loop, in order, as far as it goes: a step that breaks is recorded (in
    ``w.broken``) and every later step that needs it says so when asked."""
    for step in STEPS:
        if w.stopping.is_set():  # the session is ending (a test run stopped at a failure)
            return
        with contextlib.suppress(Exception):
            step(w)


# ---- what the steps leave, read back -----------------------------------------------------


def heading_base(report: str) -> str | None:
    """The short SHA the report's heading names as its base (`` vs `label` (`abc1234`)``)."""
    head = "\n".join(report.splitlines()[:6])
    found = re.search(r" vs `[^`]*` \(`([0-9a-f]{7})`\)", head)
    return found.group(1) if found else None
