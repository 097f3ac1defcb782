"""The PR check, stage by stage, in order. Shared by ``mlci run`` and ``action.yml``.

    pull -> validate -> reproduce -> compare -> report -> publish

Each stage lives in its own module (``data`` pulls and reproduces, ``datachecks`` validates,
``compare`` compares, ``report`` renders, ``publish`` publishes; the base is resolved once by
``baseline``); this module only orders them. The promotion after a merge is ``promotion``.
Stages never print; they report progress through ``on_stage``. Whatever fails, the report is
rendered, written to disk and published; :func:`raise_for` then turns the verdict into the exit.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci import git, signals
from mlci.check import baseline, compare, datachecks, degrade, insight, trust
from mlci.checks import cache, datadiff, drift, privacy, validation
from mlci.ci import CIContext
from mlci.errors import (
    DvcRemoteError,
    MlciError,
    RepoError,
)
from mlci.insight.traincost import cpu_seconds
from mlci.markdown import inert
from mlci.project import data, remote, repository, repro
from mlci.project import pipeline as project
from mlci.report import deliver, publish
from mlci.report import render as report
from mlci.settings.config import Settings
from mlci.training import recorder
from mlci.training import reuse as trainings
from mlci.training.facts import base_runtime, run_facts
from mlci.verdict import metrics, outcome
from mlci.verdict.outcome import Outcome, Verdict

STAGES = ("pull", "validate", "reproduce", "compare", "plots", "report", "publish")
OnStage = Callable[[str], None]


@dataclass
class CheckState:
    """What the stages found so far; the report is made from whatever is here."""

    timings: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # CPU s by stage, with its children
    pulled: remote.PullResult | None = None
    validation: validation.ValidationReport | None = None
    comparison: metrics.Comparison | None = None
    drift: drift.DriftReport | None = None
    data_diff: tuple[datadiff.FileDiff, ...] = ()  # what changed in each data file
    pii: privacy.PiiReport | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    plots: str = ""
    error: MlciError | None = None
    params: metrics.Comparison | None = None  # the params diff alone, when compare could not run
    notes: list[str] = field(default_factory=list)  # warnings for the report


@dataclass(frozen=True)
class CheckResult:
    verdict: Verdict
    markdown: str
    published: publish.Published
    state: CheckState


@contextmanager
def _timed(state: CheckState, name: str, on_stage: OnStage) -> Iterator[None]:
    on_stage(name)
    start, cpu = time.monotonic(), cpu_seconds()
    try:
        yield
    finally:
        state.timings[name] = time.monotonic() - start
        state.cpu[name] = cpu_seconds() - cpu


def verdict_of(state: CheckState) -> Verdict:
    """The check's verdict: an error, else invalid data, else what the comparison says."""
    if state.error is not None:
        return Verdict.of_error(state.error)
    problems = []
    if state.validation is not None and not state.validation.ok:
        problems.append(f"data validation failed ({state.validation.failure_count} failing values)")
    if state.pii is not None and state.pii.found and state.pii.block:
        kinds = sorted({f"{f.kind} in {f.column}" for f in state.pii.findings})
        problems.append(f"personal data found ({', '.join(kinds)})")
    if state.drift is not None and state.drift.drifted and state.drift.thresholds.fail:
        cols = [c.column for f in state.drift.files for c in f.drifted]
        problems.append(f"data drifted ({', '.join(cols)})")
    if problems:
        return Verdict(Outcome.DATA_INVALID, "; ".join(problems))
    if state.comparison is None:
        return Verdict(Outcome.ERROR, "no comparison was made")
    return outcome.of_comparison(state.comparison)


def render(
    root: Path, settings: Settings, state: CheckState, head_sha: str | None
) -> tuple[Verdict, str]:
    verdict = verdict_of(state)
    inp = report.ReportInput(
        name=settings.report_name,
        verdict=verdict,
        comparison=state.comparison,
        validation=state.validation,
        drift=state.drift,
        data_diff=state.data_diff,
        pii=state.pii,
        pulled=state.pulled,
        facts=state.facts,
        timings=state.timings,
        head_sha=head_sha,
        plots=state.plots,
        notes=state.notes,
        error=state.error,
        params_only=state.params,
    )
    return verdict, report.render(inp, marker=publish.marker(settings.report_name))


def pr_check(
    root: Path,
    settings: Settings,
    ctx: CIContext,
    *,
    base: str | None = None,
    pull: bool = True,
    reproduce: bool = True,
    post: bool = True,
    on_stage: OnStage = lambda _: None,
    on_wait: Callable[[str], None] | None = None,
    save: Path | None = None,
) -> CheckResult:
    """The whole PR check. Whatever fails, the report is rendered, written and published; the
    verdict (``raise_for``) turns it into the exit.

    ``mlci report`` is the same check without pull, reproduce and posting: the report of the
    work tree as it is.
    """
    state = CheckState()
    recorded: dict[str, Any] = {}  # training and lineage facts, once reproduced
    repo: Any = None  # one DVC Repo for pull and repro: its index is built once
    against: baseline.Base | None = None
    publisher = publish.Publisher(settings, ctx, on_wait)  # GitHub, built once for the run
    mlflow_open = contextlib.ExitStack()  # the recorder, while the stages may record runs
    try:
        ctx = trust.guard(settings, ctx)
        if (pull or reproduce) and (root / "dvc.yaml").is_file():
            repo = repository.open_repo(root)
        # dvc.yaml as DVC resolves it, in the index pull uses: no dvc.yaml, or one DVC
        # rejects, stops the check here
        project.require(root, repo)
        data.state_dir(root)
        # MLflow loads while this process pulls and validates, when a stage may record a run:
        # DVC's status of the index read above says whether any will run its command
        unserved = reproduce and recorder.wanted()  # a recorder is wanted, none started yet
        if unserved and repro.may_run(root, repo):
            _serve_recorder(mlflow_open, settings, root)
            unserved = False
        if pull:
            with _timed(state, "pull", on_stage):
                try:
                    state.pulled = remote.pull(root, settings.dvc_remote, repo=repo)
                except DvcRemoteError as exc:  # fails the check; data checks still run
                    state.error = exc
        if unserved and state.pulled is not None and state.pulled.missing:  # stages rebuild it
            _serve_recorder(mlflow_open, settings, root)
        against = baseline.choose(root, settings, ctx, base)
        caches_trusted = True  # until the PR's own code (its stages) runs in this check
        if reproduce and degrade.rebuild_before_validating(state.pulled, settings.validate):
            with _timed(state, "reproduce", on_stage):
                repro.reproduce(root, repo=repo)  # the remote lacked validated data: rebuild it
            reproduce = caches_trusted = False
        with _timed(state, "validate", on_stage):  # no cache the PR's code could have written
            state.validation, state.drift, state.pii, state.data_diff = datachecks.check_data(
                root, settings, against.sha, use_cache=caches_trusted
            )
        if state.error is None and verdict_of(state).outcome is not Outcome.DATA_INVALID:
            if reproduce:
                with _timed(state, "reproduce", on_stage):
                    reproduced = repro.reproduce_cached(root, repo=repo)
                    caches_trusted = caches_trusted and not reproduced.ran
                    # lineage from the dvc.lock this run produced; train once per change
                    recorded = trainings.record(
                        root, settings, ctx, reproduced, sha=_head_sha(root, ctx), repo=repo
                    ).facts()
            mlflow_open.close()
            with _timed(state, "compare", on_stage):
                state.comparison = compare.compare_with_base(root, insight.apart(settings), against)
            with _timed(state, "insight", on_stage):  # what it costs, what drives it (issue 26)
                state.comparison = insight.measure(root, settings, state, recorded)
            if against.sha is not None:
                with _timed(state, "plots", on_stage):
                    state.plots = plots_section(
                        root,
                        settings,
                        ctx,
                        against.sha,
                        save,
                        publisher,
                        against.label,
                        reuse=caches_trusted,  # plots kept before, unless the PR's code ran
                    )
    except MlciError as exc:
        state.error = state.error or exc
    finally:
        mlflow_open.close()
        if repo is not None:
            repo.close()
    if signals.received() is not None:  # whatever a library made of the signal, it was one
        state.error = signals.interrupted()
    if state.comparison is None:  # what can still be shown: the params diff
        state.params = degrade.params_only(root, settings, against)
    state.comparison, state.notes = degrade.explain_baseline(root, state.comparison)
    state.facts = {**run_facts(root, settings), **recorded}
    state.facts.update(base_runtime(root, settings, against.sha if against else None))
    head = _head_sha(root, ctx)
    with _timed(state, "report", on_stage):
        verdict, markdown = render(root, settings, state, head)
    with _timed(state, "publish", on_stage):
        if save is not None:
            publish.save_artifact(save, settings, ctx, markdown, verdict)
        facts = {"data_diff": [d.to_json() for d in state.data_diff]} if state.data_diff else {}
        if post:
            notes = annotations_of(root, state) if settings.check_run else ()
            published = publish.publish(
                settings, ctx, markdown, verdict, notes, publisher, facts=facts
            )
        else:
            published = publish.Published(publish.write_report(settings, markdown, verdict, facts))
    return CheckResult(verdict, markdown, published, state)


def _serve_recorder(stack: contextlib.ExitStack, settings: Settings, root: Path) -> None:
    """The MLflow recorder for the stages' commands, until ``stack`` closes."""
    stack.enter_context(recorder.serving(settings.tracking_uri, settings.experiment, root))


def plots_section(
    root: Path,
    settings: Settings,
    ctx: CIContext,
    base_sha: str,
    save: Path | None,
    publisher: publish.Publisher,
    base_name: str = "",
    *,
    reuse: bool = False,
) -> str:
    """Every declared plot, base against PR, rendered for the report. Images go to the
    repository's images branch where the token may write it, else into the saved report
    directory; a plot that cannot be shown is named with the reason, never dropped. A failure
    here degrades to a warning in the section: plots never decide the verdict."""
    from mlci.plots import memo as plot_memo
    from mlci.plots import png as plot_png
    from mlci.plots import render as plot_render

    try:
        found = plot_memo.collect(  # reuse: a re-run on the same commits and files reads nothing
            root,
            base_sha,
            settings.plots,
            out_dir=root / ".mlci" / "plots-src",
            base_name=base_name,  # the legends' names: "base (main@abc1234)", "this PR (...)"
            head_sha=ctx.head_sha,
            reuse=reuse,
        )
    except Exception as exc:  # DVC's plots machinery on a project it cannot read
        reason = exc.message if isinstance(exc, MlciError) else f"{type(exc).__name__}: {exc}"
        return f"### Plots\n\n> [!WARNING]\n> The plots could not be read: {inert(reason, 300)}\n"
    client = None if ctx.from_fork else publisher.client
    if client is None and save is None:
        note = "there is no GitHub token to publish them with and no `--save` directory"
        return plot_render.section(found, _no_images(note), settings.plots, {}, ())
    pngs, problems = plot_png.pngs(
        found, settings.plots, cache_dir=cache.private(root, "plot-cache")
    )
    links = _publish_images(settings, ctx, client, pngs, save)
    return plot_render.section(found, links, settings.plots, problems, pngs)


def _no_images(why: str) -> Any:
    from mlci.report.images import Links

    return Links(note=f"Plot images are not rendered: {why}.")


def _publish_images(
    settings: Settings, ctx: CIContext, client: Any, pngs: list[Any], save: Path | None
) -> Any:
    import os

    from mlci.report import images

    run = f"{os.environ.get('GITHUB_RUN_ID', 'local')}-{os.environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    return images.publish_or_save(
        client,
        pngs,
        settings.plots,
        run_name=run,
        report_dir=save,
        server_url=os.environ.get("GITHUB_SERVER_URL", "https://github.com"),
        why_no_client="this is a fork's pull request" if ctx.from_fork else "no GitHub token",
    )


def report_error(
    root: Path, error: MlciError, settings: Settings | None = None, ctx: CIContext | None = None
) -> Path:
    """The report of a check that failed before it could start (settings, event, guard):
    the error alone, on disk and in the job summary, so a failure never leaves nothing."""
    settings = settings or Settings(root=root)
    if ctx is None:
        import os

        ctx = CIContext(
            step_summary=os.environ.get("GITHUB_STEP_SUMMARY") or None,
            output=os.environ.get("GITHUB_OUTPUT") or None,
        )
    verdict, markdown = render(root, settings, CheckState(error=error), None)
    facts = {**verdict.to_json(), "report": str(settings.report_file)}
    path = deliver.record(settings, ctx, settings.report_file, markdown, facts).path
    deliver.outputs(ctx, {"verdict": verdict.status, "report-path": str(path)})
    return path


def annotations_of(root: Path, state: CheckState) -> list[Any]:
    """Check-run annotations: every validation failure and every failed gate."""
    from mlci.github.client import Annotation

    out = []
    if state.validation is not None:
        for f in state.validation.files:
            out += [
                Annotation(
                    f.path,
                    f"{x.count} rows fail {x.check} in column {x.column}",
                    "mlci data validation",
                )
                for x in f.failures
            ]
    if state.comparison is not None:
        try:
            where = project.read(root).metrics[0]
        except (MlciError, IndexError):
            where = "dvc.yaml"
        out += [
            Annotation(where, m.message, f"mlci gate: {m.name}") for m in state.comparison.failed
        ]
    return out


def _head_sha(root: Path, ctx: CIContext) -> str | None:
    try:
        return ctx.head_sha or git.head_sha(root)
    except RepoError:
        return None


def raise_for(result: CheckResult) -> None:
    """Turn a finished check's verdict into its exit, after everything was published."""
    if result.state.error is not None:
        raise result.state.error
    failure = result.verdict.error()
    if failure is not None:
        raise failure
    if result.published.error is not None:
        raise result.published.error
