"""The PR check's commands: ``run``, ``compare``, ``report``, ``publish``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from mlci import console
from mlci.cli.common import (
    base_option,
    context,
    params_option,
    repo_root,
    save_option,
    settings_for,
    show_publication,
    show_published,
)
from mlci.errors import MlciError


@click.command()
@base_option
@params_option
@click.option("--no-pull", is_flag=True, help="Skip `dvc pull` (data already present).")
@click.option("--report-name", metavar="NAME", help="Key of the sticky comment (default mlci).")
@save_option
def run(
    base: str | None,
    params_file: str | None,
    no_pull: bool,
    report_name: str | None,
    save: str | None,
) -> None:
    """Run the whole PR check."""
    from mlci.check import pipeline

    root = repo_root()
    try:
        settings = settings_for(root, params_file=params_file, report_name=report_name)
        ctx = context()
    except MlciError as exc:
        path = pipeline.report_error(root, exc)
        console.info(f"report written to {path}")
        raise
    with console.group("mlci run"):
        result = pipeline.pr_check(
            root,
            settings,
            ctx,
            base=base,
            pull=not no_pull,
            on_stage=lambda s: console.step(s),
            on_wait=console.warn,
            save=Path(save) if save else None,
        )
    _show_result(result)
    pipeline.raise_for(result)


def _show_result(result: Any) -> None:
    from mlci.checks import validation as v
    from mlci.verdict.outcome import Outcome

    state = result.state
    if isinstance(state.validation, v.ValidationReport):
        for f in state.validation.files:
            for x in f.failures:
                console.error(
                    f"{x.count} rows fail {x.check} in column {x.column}",
                    file=f.path,
                    title="mlci data validation",
                )
    if state.comparison is not None:
        for m in state.comparison.failed:
            console.error(m.message, title="mlci gate")
    console.out(result.markdown)
    # a posting error is shown here only when the exit will be another error's
    other_exit = state.error is not None or result.verdict.outcome.failing
    show_publication(result.published, "report", show_error=other_exit)
    run_id = state.facts.get("mlflow_run_id")
    if run_id:
        console.info(f"MLflow run {run_id} at {state.facts.get('mlflow_tracking_uri')}")
    line = f"{result.verdict.icon} verdict: {result.verdict.status}: {result.verdict.summary}"
    (console.success if result.verdict.outcome is Outcome.PASSED else console.info)(line)


@click.command()
@base_option
@params_option
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(base: str | None, params_file: str | None, as_json: bool) -> None:
    """Compare metrics and params with the base revision; exit 4 when a gate fails."""
    from mlci.check import baseline, compare
    from mlci.report import render as report
    from mlci.verdict import metrics, outcome

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    against = baseline.choose(root, settings, context(), base)
    c = compare.compare_with_base(root, settings, against)
    if as_json:
        console.out(json.dumps(metrics.to_json(c), indent=2, default=str))
    else:
        console.out(report.metrics_section(c))
        console.out(report.params_section(c))
    verdict = outcome.of_comparison(c)
    failure = verdict.error(fix="see the comparison above")
    if failure is not None:
        raise failure
    if not as_json:
        say = console.success if verdict.outcome is outcome.Outcome.PASSED else console.info
        say(f"{verdict.icon} compared with {against.label}: {verdict.summary}")


@click.command("report")
@base_option
@params_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Where to write the Markdown (default: mlci.report_path).",
)
@save_option
def report_cmd(
    base: str | None, params_file: str | None, out: str | None, save: str | None
) -> None:
    """Render the PR report from the current work tree and print it (posts nothing)."""
    from mlci.check import pipeline

    root = repo_root()
    settings = settings_for(root, params_file=params_file, report_path=out)
    result = pipeline.pr_check(
        root,
        settings,
        context(),
        base=base,
        pull=False,
        reproduce=False,
        post=False,
        save=Path(save) if save else None,
    )
    console.out(result.markdown)
    console.info(f"report written to {result.published.report_path}")
    if save:
        console.info(f"report saved for publishing in {save}")


@click.command("publish")
@click.option(
    "--report",
    "report_file",
    type=click.Path(exists=True, dir_okay=False),
    metavar="FILE",
    help="Markdown report to post (default: mlci.report_path).",
)
@click.option("--report-name", metavar="NAME", help="Key of the sticky comment.")
@click.option(
    "--from",
    "from_dir",
    type=click.Path(exists=True, file_okay=False),
    metavar="DIR",
    help="Post a report saved by `--save` (fork-safe workflow_run job).",
)
def publish_cmd(report_file: str | None, report_name: str | None, from_dir: str | None) -> None:
    """Post a rendered report: sticky PR comment, job summary, outputs."""
    from mlci.report import publish
    from mlci.verdict.outcome import Verdict

    root = repo_root()
    settings = settings_for(root, report_name=report_name)
    if from_dir:
        pub = publish.publish_artifact(Path(from_dir), settings, context())
        show_published(pub)
        return
    path = Path(report_file) if report_file else settings.report_file
    if not path.exists():
        from mlci.errors import ConfigError

        raise ConfigError(f"no report at {path}", fix="run `mlci report` or `mlci run` first")
    markdown = path.read_text(encoding="utf-8")
    verdict = Verdict.load(path)
    if report_file:
        import dataclasses

        settings = dataclasses.replace(settings, report_path=str(path.resolve()))
    show_published(publish.publish(settings, context(), markdown, verdict))
