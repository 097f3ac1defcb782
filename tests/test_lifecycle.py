"""The whole loop, on three project shapes, as the workflows ``mlci init`` writes would run it,
and its convergence under faults.

Per shape (``tests/shapes/projects.py``: the bundled example, an own-script project with a
templated ``dvc.yaml``, a DVCLive-style project), one walk, built once, one test per step in
order (``tests/shapes/loop.py``):

    mlci init -> a worse PR (fails its gates) -> a better PR (passes) -> merge -> the push job
    (``mlci run`` vs what is deployed, then ``mlci promote``: the PR's training reused) ->
    monitor healthy -> drifted snapshot (one issue, one retraining PR) -> its PR check ->
    merge -> push job -> the champion degraded -> rollback -> monitor healthy (issue closed)
    -> a regression pushed straight to main (refused by the push job)

Every job is a fresh depth-1 clone; git, the DVC remote (with its run-cache), a real
``mlflow server`` on PostgreSQL and the loopback GitHub, which checks every request against
GitHub's REST description, are shared by the jobs. At every step: the registry (versions,
aliases, lineage, tags), issues, PRs, comments and check runs, and the trainings so far (one
per distinct training input), as the step left them (``State``, read by the walk when the step
finished: the walks run ahead in threads of their own, one per shape, and a test waits for the
step it asserts on).

Faults (``tests/shapes/faults.py``): at some steps of each walk GitHub answers 5xx or loses its
answer, the ``mlflow server`` is killed mid-step and started again, or the DVC remote lacks an
object; the failed job is re-run and the step's test asserts the same state as without the
fault. Every step runs without a fault in at least one shape. ``test_17`` checks that each
fault fired and failed (or was absorbed) as planned.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from servers import MlflowServer
from shapes import faults, loop, projects
from shapes.walk import Job, Walk

from github_server import FakeGitHub

pytestmark = pytest.mark.slow

REPORT = "<!-- mlci-report:mlci -->"
NOTE = "<!-- mlci-report:mlci-promotion -->"
BOT = "github-actions[bot]"
SHAPES = ("example", "templated", "dvclive")


@pytest.fixture(scope="module")
def walks(
    request: pytest.FixtureRequest,
    mlflow_server: MlflowServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Walk]]:
    """The three walks, each run by a thread of its own from the start (``loop.everything``:
    the shapes' loops are independent, as three repositories' are, and the second core works);
    a test waits for the step it asserts on. Each walk has its own loopback GitHub; they share
    the session's ``mlflow server`` on PostgreSQL (a walk whose fault plan kills the server
    talks to a replica of it, on the same stores, so that the session's stays up)."""
    started: dict[str, Walk] = {}
    threads: list[threading.Thread] = []
    wanted = {  # the shapes this session's selected tests walk (`-k templated`: that one)
        params["walk"]
        for item in request.session.items
        if getattr(item, "module", None) is request.module
        and "walk" in (params := getattr(getattr(item, "callspec", None), "params", {}))
    }
    try:
        for key in (k for k in (*SHAPES[1:], SHAPES[0]) if k in wanted):  # the example last
            template = request.getfixturevalue("template") if key == "example" else None
            shape = {s.key: s for s in projects.all_shapes(template)}[key]
            plan = faults.PLANS.get(key, {})
            work = tmp_path_factory.mktemp(f"life-{key}")
            uri, server = mlflow_server.url, None
            if faults.needs_server(plan):
                server = faults.Replica(mlflow_server, work / "mlflow")
                uri = server.start()
            w = Walk(shape, work, FakeGitHub().start(), uri, f"life-{key}-{uuid.uuid4().hex[:6]}")
            w.plan, w.server = plan, server
            started[key] = w
            thread = threading.Thread(target=_run, args=(w,), name=f"walk-{key}", daemon=True)
            thread.start()
            threads.append(thread)
        yield started
    finally:
        for w in started.values():
            w.stopping.set()  # after a test run stopped early (-x), finish the current step only
        for thread in threads:
            thread.join(timeout=900)
        for w in started.values():
            w.github.stop()
            if w.server is not None:
                w.server.stop()


def _run(w: Walk) -> None:
    with contextlib.suppress(Exception):
        w.once("build", w.build)
        loop.everything(w)


@pytest.fixture(params=SHAPES)
def walk(request: pytest.FixtureRequest, walks: dict[str, Walk]) -> Walk:
    w = walks[request.param]
    w.once("build", w.build)  # waits for it; says so if it broke
    return w


def said(w: Walk, step: str, job: Job | None = None) -> str:
    """The prefix of every assertion message: the shape, the step that broke (and the fault
    injected there, whose job was then re-run), the job's log."""
    fault = w.plan.get(step)
    under = f" (after the fault: {fault.what})" if fault is not None else ""
    return f"[{w.shape.key}] step '{step}'{under}" + (f"\n{job.log}" if job is not None else "")


def attempts(w: Walk, step: str) -> int:
    """How many times the step's job ran: twice where a fault failed it and it was re-run."""
    fault = w.plan.get(step)
    return 2 if fault is not None and fault.rerun else 1


def assert_one_report(w: Walk, step: str, number: int, job: Job, icon: str) -> None:
    """One sticky report comment on the PR, by the Actions bot, with the job's verdict."""
    comments = loop.state(w, step).on(number, REPORT)
    assert len(comments) == 1, said(w, step) + f": {len(comments)} report comments on #{number}"
    body = comments[0]["body"]
    assert comments[0]["user"]["login"] == BOT, said(w, step)
    assert body.startswith(REPORT) and f"## {icon} mlci:" in body, said(w, step, job)
    assert job.mlci.outputs.get("comment-url") == comments[0]["html_url"], said(w, step, job)


def assert_check(w: Walk, step: str, sha: str, conclusion: str) -> None:
    """The newest check run on ``sha`` has ``conclusion``; at most one per job run."""
    found = loop.state(w, step).checks(sha)
    assert 1 <= len(found) <= attempts(w, step), said(w, step) + (
        f": {len(found)} check runs on {sha[:7]} after {attempts(w, step)} job run(s)"
    )
    assert found[-1]["conclusion"] == conclusion, said(w, step) + f": {found[-1]}"


def assert_trained_once(w: Walk, step: str, job: Job) -> None:
    """The step's check trained (in its first attempt, or in the re-run where the first one
    stopped before training) and a re-run reused that training."""
    jobs = [job]
    if attempts(w, step) == 2:
        jobs.insert(0, w.results[f"first attempt at {step}"][0])
    trained = [j.name for j in jobs if "| training | trained in this job (stage " in j.report()]
    assert len(trained) == 1, said(w, step, job) + f": trained in {len(trained)} job runs"


def assert_trainings(w: Walk, step: str, expected: int) -> None:
    found = loop.state(w, step).trainings
    assert found == expected, said(w, step) + (
        f": {found} trainings so far, expected {expected} (one per distinct training input)"
    )


def assert_vocabulary(w: Walk, step: str) -> None:
    """Every tag mlci left on the model's versions and its runs is in the one vocabulary."""
    from mlci.registry import tags as vocab

    names = loop.state(w, step).tag_names
    stray = {k for k in names if k.startswith("mlci.") and not vocab.known(k)}
    assert not stray, said(w, step) + f": tags outside the vocabulary: {sorted(stray)}"


def no_violations(w: Walk, step: str) -> None:
    found = loop.state(w, step).violations
    assert not found, said(w, step) + f": requests off GitHub's REST description: {found}"


def lineage(tags: dict[str, str], group: str = "data") -> dict[str, str]:
    prefix = f"mlci.lineage.{group}."
    return {k[len(prefix) :]: v for k, v in tags.items() if k.startswith(prefix)}


# ---- the steps, in order -----------------------------------------------------------------


def test_01_init_writes_settings_and_workflows(walk: Walk) -> None:
    from mlci.adopt.init import WORKFLOWS

    w, step = walk, "init"
    adopted = loop.adopt(w)
    if w.shape.init_refused:  # the example ships its own settings: nothing written without force
        refused = adopted["refused"]
        assert refused.rc == 2 and "would overwrite" in refused.stderr, said(w, step) + refused.log
        assert adopted["status_after_refusal"] == "", said(w, step) + ": a refusal wrote files"
    written = yaml.safe_load(adopted["params"])["mlci"]
    assert written["gates"] == w.shape.gates, said(w, step) + adopted["init"].log
    assert set(adopted["workflows"]) == set(WORKFLOWS), said(w, step) + adopted["init"].log
    if "--action" in w.shape.init_args:
        ref = w.shape.init_args[w.shape.init_args.index("--action") + 1]
        for name, text in adopted["workflows"].items():
            assert f"uses: {ref}" in text, said(w, step) + f": {name}"
    if (w.origin / "requirements.txt").is_file():
        assert "requirements.txt" in adopted["workflows"]["mlci-pr.yml"], said(w, step)
    s = loop.state(w, step)
    assert s.versions == {} and s.pulls == [] and s.issues == [], said(w, step)
    assert_trainings(w, step, 0)


def test_02_a_worse_pr_fails_its_gates(walk: Walk) -> None:
    w, step = walk, "worse PR"
    pr, job = loop.pr(w, "worse")
    assert job.rc == 4 and job.mlci.rc == 4, said(w, step, job)
    assert job.facts()["verdict"] == "failed", said(w, step, job)
    assert job.mlci.outputs.get("verdict") == "failed", said(w, step, job)
    assert_trained_once(w, step, job)
    assert_one_report(w, step, pr.number, job, "❌")
    assert_check(w, step, pr.sha, "failure")
    assert_trainings(w, step, 1)
    assert loop.state(w, step).versions == {}, said(w, step) + ": a PR check registered a version"
    no_violations(w, step)


def test_03_a_better_pr_passes(walk: Walk) -> None:
    w, step = walk, "better PR"
    pr, job = loop.pr(w, "better")
    assert job.rc == 0 and job.facts()["verdict"] == "passed", said(w, step, job)
    assert_trained_once(w, step, job)
    assert_one_report(w, step, pr.number, job, "✅")
    assert_check(w, step, pr.sha, "success")
    assert_trainings(w, step, 2)
    assert loop.state(w, step).versions == {}, said(w, step)
    no_violations(w, step)


def test_04_the_push_job_compares_with_what_is_deployed(walk: Walk) -> None:
    """No champion yet: the push job's check compares the merge with its first parent (what
    main was before), not main with itself."""
    w, step = walk, "push job"
    job = loop.first_push(w)
    merge = loop.merge_better(w)
    parent = w.sha(f"{merge}^1")
    base = loop.heading_base(job.report())
    assert base == parent[:7], said(w, step, job) + (
        f": the push check's base is {base}, expected the first parent {parent[:7]} "
        f"(the merge is {merge[:7]})"
    )


def test_05_promote_registers_the_prs_training_without_training(walk: Walk) -> None:
    w, step = walk, "push job"
    job = loop.first_push(w)
    pr, pr_job = loop.pr(w, "better")
    merge = loop.merge_better(w)
    assert job.rc == 0 and job.promote is not None, said(w, step, job)
    out = job.promote.stdout
    done = r"(registered|already registered as) version 1; champion -> v1$"
    assert re.search(done, out, re.M), said(w, step, job)
    assert f"from PR &#35;&#8203;{pr.number} (same inputs)" in out, said(w, step, job)
    assert job.promote.outputs.get("model-version") == "1", said(w, step, job)
    assert_trainings(w, step, 2)
    s = loop.state(w, step)
    assert list(s.versions) == ["1"], said(w, step) + f": versions {list(s.versions)}"
    assert s.aliases == {"champion": "1", "previous": None}, said(w, step) + f": {s.aliases}"
    tags = s.versions["1"]
    assert tags["mlci.git_sha"] == merge, said(w, step)
    assert tags["mlci.schema"] == "1" and tags["mlci.promoted"] == "true", said(w, step)
    # the version is the PR's own training run, found by its key on the shared server
    run = s.runs[s.run_ids["1"]]
    assert run.get("mlci.pr") == str(pr.number), said(w, step) + f": the run's tags {run}"
    assert run.get("mlci.trusted") == "true", said(w, step)
    key = tags["mlci.training_key"]
    assert run["mlci.training_key"] == key, said(w, step)
    assert f"`{key[:12]}`" in pr_job.report(), said(w, step) + ": not the PR's training"
    cache = w.remote / "runs" / key[:2] / key
    assert cache.is_dir(), said(w, step) + ": the training key is not DVC's run-cache key"
    assert lineage(tags) and lineage(tags, "models"), said(w, step) + f": {sorted(tags)}"
    assert any(k.startswith("mlci.metric.") for k in tags), said(w, step)
    notes = s.on(pr.number, NOTE)
    assert len(notes) == 1 and "v1" in notes[0]["body"], said(w, step) + f": {notes}"
    assert_check(w, step, merge, "success")
    assert_vocabulary(w, step)
    no_violations(w, step)
    # the merged PR, as the promotion note found it (GitHub's pull requests of the commit)
    assert tags.get("mlci.pr") == str(pr.number), said(w, step) + (
        f": the version does not name the PR it was merged from: {sorted(tags)}"
    )


def test_06_monitor_on_the_training_data_is_healthy(walk: Walk) -> None:
    w, step = walk, "monitor healthy"
    job = loop.healthy(w)
    assert job.rc == 0 and job.mlci.outputs.get("status") == "healthy", said(w, step, job)
    assert job.facts("monitor.json")["run"]["drifted"] == [], said(w, step, job)
    if w.shape.label_inferred:  # no monitor.label: the one column the model does not take
        told = f"label: '{w.shape.label}', the one training column the model does not take"
        assert told in job.log, said(w, step, job)
    s = loop.state(w, step)
    assert s.issues == [], said(w, step) + ": a healthy model opened an issue"
    assert len(s.pulls) == 2, said(w, step) + ": a pull request was opened"
    assert_trainings(w, step, 2)
    no_violations(w, step)


def one_issue(w: Walk, step: str) -> dict[str, Any]:
    issues = loop.state(w, step).issues
    assert len(issues) == 1, said(w, step) + f": {len(issues)} issues"
    assert issues[0]["body"].startswith(f"<!-- mlci-monitor:{w.model} -->"), said(w, step)
    return issues[0]


def test_07_a_drifted_snapshot_opens_one_issue_and_one_retraining_pr(walk: Walk) -> None:
    import lifecycle as lc

    w, step = walk, "monitor drifted"
    job = loop.drifted(w)
    loop.retraining_pr(w)  # made by hand where the monitor made none, so the walk goes on
    assert loop.BY_HAND not in w.results, said(w, step, job) + ": the monitor opened no PR"
    status = job.mlci.outputs.get("status")
    assert status in ("drift", "degraded"), said(w, step, job)
    assert job.mlci.rc == {"drift": 6, "degraded": 4}[status], said(w, step, job)
    assert job.facts("monitor.json")["run"]["drifted"], said(w, step, job)
    issue = one_issue(w, step)
    assert issue["state"] == "open", said(w, step)
    assert job.mlci.outputs.get("issue-url") == issue["html_url"], said(w, step, job)
    s = loop.state(w, step)
    pulls = [p for p in s.pulls if p["head"]["ref"] == loop.RETRAIN_BRANCH]
    assert len(pulls) == 1, said(w, step, job) + f": {len(pulls)} retraining PRs"
    assert pulls[0]["base"]["ref"] == "main" and pulls[0]["state"] == "open", said(w, step)
    assert job.mlci.outputs.get("pr-url", "").endswith(f"/pull/{pulls[0]['number']}")
    branch = loop.RETRAIN_BRANCH
    base = loop.ingest(w)  # main when the monitor ran
    assert lc.git(w.origin, "rev-parse", f"{branch}^").strip() == base, said(w, step)
    changed = lc.git(w.origin, "diff", "--name-only", f"{base}..{branch}").split()
    assert w.shape.retrained in changed, said(w, step) + f": the branch changes {changed}"
    message = lc.git(w.origin, "log", "-1", "--format=%B", branch)
    assert f"Mlci-Retrain: {w.model}" in message, said(w, step)
    assert s.aliases["champion"] == "1", said(w, step) + ": the monitor moved the champion"
    assert_trainings(w, step, 2)
    no_violations(w, step)


def test_08_the_retraining_pr_trains_once_and_passes(walk: Walk) -> None:
    w, step = walk, "retraining PR"
    pr, job = loop.retraining_pr(w)
    assert job.rc == 0 and job.facts()["verdict"] == "passed", said(w, step, job)
    assert_trained_once(w, step, job)
    assert_one_report(w, step, pr.number, job, "✅")
    assert_check(w, step, pr.sha, "success")
    assert_trainings(w, step, 3)
    no_violations(w, step)


def test_09_the_push_job_compares_with_the_champion(walk: Walk) -> None:
    w, step = walk, "push job 2"
    job = loop.second_push(w)
    champion_sha = loop.merge_better(w)  # v1, promoted from the first merge
    base = loop.heading_base(job.report())
    assert base == champion_sha[:7], said(w, step, job) + (
        f": the push check's base is {base}, expected the champion's commit {champion_sha[:7]}"
    )


def test_10_the_retrained_model_is_promoted_without_training(walk: Walk) -> None:
    w, step = walk, "push job 2"
    job = loop.second_push(w)
    pr, _ = loop.retraining_pr(w)
    merge = loop.merge_retraining(w)
    assert job.rc == 0 and job.promote is not None, said(w, step, job)
    out = job.promote.stdout
    done = r"(registered|already registered as) version 2; champion -> v2, previous -> v1$"
    assert re.search(done, out, re.M), said(w, step, job)
    assert f"from PR &#35;&#8203;{pr.number} (same inputs)" in out, said(w, step, job)
    assert_trainings(w, step, 3)
    s = loop.state(w, step)
    assert sorted(s.versions) == ["1", "2"], said(w, step)
    assert s.aliases == {"champion": "2", "previous": "1"}, said(w, step) + f": {s.aliases}"
    v1, v2 = s.versions["1"], s.versions["2"]
    assert v2["mlci.git_sha"] == merge, said(w, step)
    assert v2["mlci.training_key"] != v1["mlci.training_key"], said(w, step)
    assert lineage(v1) != lineage(v2), said(w, step) + ": v2's lineage names v1's data"
    notes = s.on(pr.number, NOTE)
    assert len(notes) == 1 and "v2" in notes[0]["body"], said(w, step) + f": {len(notes)} notes"
    assert_vocabulary(w, step)
    no_violations(w, step)
    assert v2.get("mlci.pr") == str(pr.number), said(w, step) + ": v2 does not name its PR"


def test_11_the_champion_degrades_on_the_complaints_snapshot(walk: Walk) -> None:
    w, step = walk, "monitor degraded"
    job = loop.degraded(w)
    assert job.mlci.outputs.get("status") == "degraded", said(w, step, job)
    assert job.rc == 4, said(w, step, job) + ": fail-on gate makes a degraded champion fail"
    issue = one_issue(w, step)
    s = loop.state(w, step)
    assert issue["state"] == "open", said(w, step)
    assert len(s.pulls) == 3, said(w, step) + ": on_breach issue opened a PR"
    assert s.aliases["champion"] == "2", said(w, step) + ": the monitor moved the champion"
    no_violations(w, step)


def test_12_rollback_moves_the_champion_back_and_records_why(walk: Walk) -> None:
    import getpass

    w, step = walk, "rollback"
    job = loop.rollback(w)
    assert job.rc == 0 and "champion v2 -> v1" in job.mlci.stdout, said(w, step, job)
    s = loop.state(w, step)
    assert s.aliases["champion"] == "1" and sorted(s.versions) == ["1", "2"], said(w, step)
    assert s.versions["2"].get("mlci.rolled_back") == "true", said(w, step)
    back = s.versions["1"]
    assert back.get("mlci.rollback.reason") == loop.ROLLBACK_REASON, said(w, step)
    assert back.get("mlci.rollback.from_version") == "2", said(w, step)
    assert back.get("mlci.rollback.by") == getpass.getuser(), said(w, step)
    assert s.model_tags.get("mlci.last_rollback", "").startswith("2->1 by "), said(w, step)
    assert_vocabulary(w, step)


def test_13_monitor_is_healthy_again_and_closes_the_issue(walk: Walk) -> None:
    w, step = walk, "monitor healthy again"
    job = loop.healthy_again(w)
    assert job.rc == 0 and job.mlci.outputs.get("status") == "healthy", said(w, step, job)
    assert "v1" in job.report("monitor.md"), said(w, step, job)
    issue = one_issue(w, step)
    assert issue["state"] == "closed" and issue["state_reason"] == "completed", said(w, step)
    closing = loop.state(w, step).on(issue["number"])
    assert len(closing) == 1 and "healthy again" in closing[0]["body"], said(w, step) + (
        f": {len(closing)} comments on the issue"
    )
    assert_trainings(w, step, 3)
    no_violations(w, step)


def test_14_a_regression_pushed_to_main_fails_the_push_jobs_gates(walk: Walk) -> None:
    """Nothing merged through a PR check: the push job's own check must catch a model worse
    than the champion (v1 after the rollback), before any promotion."""
    w, step = walk, "regression pushed to main"
    job = loop.regression(w)
    if job is None:
        pytest.skip("walked on the templated shape only (each such push is a training more)")
    champion_sha = loop.merge_better(w)
    s = loop.state(w, step)
    assert s.aliases["champion"] == "1" and sorted(s.versions) == ["1", "2"], said(w, step, job)
    assert_trainings(w, step, 4)
    base = loop.heading_base(job.report())
    assert job.mlci.rc == 4 and job.promote is None, said(w, step, job) + (
        f": the push check (base {base}) passed a model worse than the champion"
    )
    assert base == champion_sha[:7], said(w, step, job)


def test_15_nothing_was_duplicated_or_lost(walk: Walk) -> None:
    w, step = walk, "regression pushed to main"
    loop.regression(w)
    s = loop.state(w, step)
    assert len(s.pulls) == 3, said(w, step) + f": {len(s.pulls)} PRs (worse, better, retraining)"
    for p in s.pulls:
        assert len(s.on(p["number"], REPORT)) == 1, said(w, step) + f": #{p['number']} reports"
    merged = [p for p in s.pulls if p["merged_as"]]
    assert len(merged) == 2, said(w, step)
    for p in merged:
        assert len(s.on(p["number"], NOTE)) == 1, said(w, step) + f": #{p['number']} notes"
    assert len(s.issues) == 1, said(w, step)
    shas = [v["mlci.git_sha"] for v in s.versions.values()]
    assert len(shas) == len(set(shas)) == 2, said(w, step) + f": versions of {shas}"
    no_violations(w, step)


def test_16_one_training_per_distinct_input(walk: Walk, record_property: Any) -> None:
    """The worse PR, the better PR, the retraining PR (and the regression pushed to main):
    three trainings (four); every re-run, merge and promotion reused one."""
    w, step = walk, "regression pushed to main"
    loop.regression(w)
    record_property(f"trainings[{w.shape.key}]", loop.state(w, step).trainings)
    record_property(f"cpu_seconds[{w.shape.key}]", round(w.cpu()))
    assert_trainings(w, step, 3 + (w.shape.regress is not None))


def test_17_each_fault_fired_and_the_step_converged(walk: Walk) -> None:
    """Every fault of the shape's plan (``tests/shapes/faults.py``) really happened on the
    first attempt, which failed (or absorbed it) as planned; the steps' own tests above
    assert the state after the re-run."""
    loop.regression(walk)
    for step, fault in walk.plan.items():
        first, unused = walk.results[f"first attempt at {step}"]
        where = said(walk, step, first)
        assert not unused, where + f": the fault never fired: {unused}"
        if fault.first_rc is not None:
            assert first.rc == fault.first_rc, where
        text = "\n".join(s.stdout + s.stderr for s in first.steps)
        assert fault.says in text, where + f": no {fault.says!r} in the first attempt"
        assert "Traceback" not in text, where
