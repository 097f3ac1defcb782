"""The ``mlci`` command line: flags -> one library call -> render. Nothing else.

Heavy libraries (dvc, mlflow, pandera, sklearn, torch) are imported inside the library calls,
so ``mlci --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from mlci import __version__, console, signals
from mlci.errors import (
    EXIT_INTERRUPTED,
    EXIT_UNEXPECTED,
    EXIT_USAGE,
    Interrupted,
    MlciError,
    save_for_parent,
)

_debug = {"on": os.environ.get("MLCI_DEBUG") == "1"}


def _settings(root: Path, **flags: Any) -> Any:
    from mlci.settings import config

    settings = config.load(root, flags)
    for note in settings.notes:
        console.warn(note)
    return settings


def _repo_root() -> Path:
    """The project every command but ``train``/``evaluate`` works on: the nearest directory
    at or above the working directory holding dvc.yaml or .dvc/ (see ``git.project_root``)."""
    from mlci import git

    root = git.project_root(Path.cwd())
    state = root / ".mlci"
    if state.is_dir() and not (state / ".gitignore").exists():
        from mlci.project import data

        data.state_dir(root)  # an older run's .mlci/: keep it out of `git status`
    return root


def _context() -> Any:
    from mlci import ci

    console.mask(ci.token())
    return ci.detect()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlci")
@click.option("--debug", is_flag=True, help="Show tracebacks (or set MLCI_DEBUG=1).")
def cli(debug: bool) -> None:
    """Every pull request proves the model got better, not worse.

    A PR check runs: pull -> validate -> reproduce -> compare -> report -> publish.
    After a merge, `mlci promote` moves the MLflow alias `champion`.
    """
    if debug:
        _debug["on"] = True


base_option = click.option(
    "--base",
    metavar="REV",
    help="Base revision to compare with (default: the PR's base branch), "
    "or @ALIAS (e.g. @champion) for the registered model that alias points at.",
)
params_option = click.option(
    "--params-file", metavar="FILE", help="Params file holding the `mlci:` section."
)


@cli.command()
@base_option
@params_option
@click.option("--no-pull", is_flag=True, help="Skip `dvc pull` (data already present).")
@click.option("--report-name", metavar="NAME", help="Key of the sticky comment (default mlci).")
@click.option(
    "--save",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Also save the report for a fork-safe publisher (see `publish --from`).",
)
def run(
    base: str | None,
    params_file: str | None,
    no_pull: bool,
    report_name: str | None,
    save: str | None,
) -> None:
    """Run the whole PR check."""
    from mlci.check import pipeline

    root = _repo_root()
    try:
        settings = _settings(root, params_file=params_file, report_name=report_name)
        ctx = _context()
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
    _show_publication(result.published, "report", show_error=other_exit)
    run_id = state.facts.get("mlflow_run_id")
    if run_id:
        console.info(f"MLflow run {run_id} at {state.facts.get('mlflow_tracking_uri')}")
    line = f"{result.verdict.icon} verdict: {result.verdict.status}: {result.verdict.summary}"
    (console.success if result.verdict.outcome is Outcome.PASSED else console.info)(line)


@cli.command()
@base_option
@params_option
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(base: str | None, params_file: str | None, as_json: bool) -> None:
    """Compare metrics and params with the base revision; exit 4 when a gate fails."""
    from mlci.check import baseline, compare
    from mlci.report import render as report
    from mlci.verdict import metrics, outcome

    root = _repo_root()
    settings = _settings(root, params_file=params_file)
    rev = baseline.requested(settings, _context(), base)
    c = compare.compare_with_base(root, settings, baseline.resolve(root, settings, rev))
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
        say(f"{verdict.icon} compared with {rev}: {verdict.summary}")


@cli.command("report")
@base_option
@params_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Where to write the Markdown (default: mlci.report_path).",
)
@click.option(
    "--save",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Save report + PR number + head SHA + verdict for `publish --from`.",
)
def report_cmd(
    base: str | None, params_file: str | None, out: str | None, save: str | None
) -> None:
    """Render the PR report from the current work tree and print it (posts nothing)."""
    from mlci.check import pipeline

    root = _repo_root()
    settings = _settings(root, params_file=params_file, report_path=out)
    result = pipeline.pr_check(
        root,
        settings,
        _context(),
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


@cli.command("publish")
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

    root = _repo_root()
    settings = _settings(root, report_name=report_name)
    if from_dir:
        pub = publish.publish_artifact(Path(from_dir), settings, _context())
        _show_published(pub)
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
    _show_published(publish.publish(settings, _context(), markdown, verdict))


def _show_publication(pub: Any, what: str, *, show_error: bool = True) -> None:
    """Where a report (or note) went. A posting error is shown here only when the exit will
    be another error's (``show_error``); otherwise the exit funnel shows it once."""
    console.info(f"{what} written to {pub.report_path}")
    if pub.comment_url:
        # a report is a PR comment; a promotion note may sit on a commit instead
        console.info(f"{'PR comment' if what == 'report' else what}: {pub.comment_url}")
    elif pub.skipped:
        console.info(pub.skipped)
    if show_error and pub.error is not None:
        console.error(f"could not post the {what}: {pub.error.one_line()}")


def _show_published(pub: Any) -> None:
    _show_publication(pub, "report", show_error=False)
    if pub.error is not None:
        raise pub.error


def main(argv: list[str] | None = None) -> None:
    """The one exit funnel: errors become one line and their documented exit code.

    SIGINT/SIGTERM stop the running stage and exit 130/143, whatever error they caused.
    """
    with signals.handled():
        _main(argv)
    sys.exit(0)


def _main(argv: list[str] | None) -> None:
    try:
        cli.main(args=argv, prog_name="mlci", standalone_mode=False)
        signals.check()
    except MlciError as exc:
        if _debug["on"]:
            import traceback

            traceback.print_exc()
        if signals.received() is not None and not isinstance(exc, Interrupted):
            exc = signals.interrupted()
        save_for_parent(exc)
        console.error(exc.one_line(), title=exc.title)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE if exc.exit_code == 2 else exc.exit_code)
    except (KeyboardInterrupt, click.exceptions.Abort):
        console.error("interrupted")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:
        if _debug["on"]:
            import traceback

            traceback.print_exc()
        if signals.received() is not None:
            stop = signals.interrupted()
            save_for_parent(stop)
            console.error(stop.one_line(), title=stop.title)
            sys.exit(stop.exit_code)
        console.error(
            f"unexpected {type(exc).__name__}: {exc}; rerun with --debug for the "
            "traceback and report it",
            title="mlci bug",
        )
        sys.exit(EXIT_UNEXPECTED)


# The other commands register themselves on `cli` (one module per group of commands).
