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
    from mlci import config

    settings = config.load(root, flags)
    for note in settings.notes:
        console.warn(note)
    return settings


def _repo_root() -> Path:
    from mlci import git

    return git.toplevel(Path.cwd())


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
    from mlci import pipeline

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
            save=Path(save) if save else None,
        )
    _show_result(result)
    pipeline.raise_for(result)


def _show_result(result: Any) -> None:
    from mlci import validation as v

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
    other_exit = state.error is not None or result.verdict.status in ("failed", "data-invalid")
    _show_publication(result.published, "report", show_error=other_exit)
    run_id = state.facts.get("mlflow_run_id")
    if run_id:
        console.info(f"MLflow run {run_id} at {state.facts.get('mlflow_tracking_uri')}")
    line = f"{result.verdict.icon} verdict: {result.verdict.status}: {result.verdict.summary}"
    (console.success if result.verdict.status == "passed" else console.info)(line)


@cli.command()
@click.option("--remote", metavar="NAME", help="DVC remote (default: the repo's default).")
def pull(remote: str | None) -> None:
    """Pull the pipeline's data from the DVC remote."""
    from mlci import data

    root = Path.cwd()
    settings = _settings(root, dvc_remote=remote)
    with console.group(f"dvc pull ({settings.dvc_remote or 'default remote'})"):
        result = data.pull(root, settings.dvc_remote)
    console.info(f"pulled {result.files} files from '{result.remote}' ({result.url})")
    for v in result.versions:
        console.info(f"  {v.path}  {v.md5}")


@cli.command()
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    metavar="FILE",
    help="Write the validation result as JSON.",
)
@params_option
def validate(out: str | None, params_file: str | None) -> None:
    """Validate data files against their pandera schemas."""
    from mlci import validation
    from mlci.errors import DataInvalid

    root = Path.cwd()
    settings = _settings(root, params_file=params_file)
    if not settings.validate:
        console.warn("no data validation configured: add `mlci.validate: {data.csv: schema.yaml}`")
    result = validation.validate(root, settings.validate, settings.sensitive_columns)
    if out:
        result.write(root / out)
    for f in result.files:
        if f.ok:
            console.info(f"✓ {f.path}: {f.rows} rows valid against {f.schema}")
        for x in f.failures:
            sample = f" (e.g. {', '.join(x.samples)})" if x.samples else ""
            console.error(
                f"column {x.column}: {x.count} rows fail {x.check}{sample}",
                file=f.path,
                title="mlci data validation",
            )
    if not result.ok:
        raise DataInvalid(
            f"{result.failure_count} values failed validation",
            fix="fix the data or the schema; every failure is listed above",
        )


@cli.command()
@params_option
def train(params_file: str | None) -> None:
    """Train the model configured under `train:` in params.yaml."""
    from mlci.training.run import train as do_train
    from mlci.trust import guard

    root = Path.cwd()
    settings = _settings(root, params_file=params_file)
    guard(settings, _context())
    facts = do_train(root, settings)
    if facts.get("rank", 0) != 0:
        console.info(
            f"rank {facts['rank']} of {facts['world_size']}: trained in "
            f"{facts['duration_s']}s (rank 0 writes the outputs)"
        )
        return
    gpu = facts["gpu"]
    console.info(
        f"trained {facts['backend']} on {facts['device']} in {facts['duration_s']}s "
        f"({facts['rows_train']} rows); GPU: "
        f"{gpu['gpus'][0]['name'] if gpu.get('available') else gpu['reason']}"
    )
    console.info(f"MLflow run {facts['mlflow_run_id']} at {facts['mlflow_tracking_uri']}")


@cli.command()
@params_option
def evaluate(params_file: str | None) -> None:
    """Evaluate the trained model; write metrics and plots for DVC."""
    from mlci.training.run import evaluate as do_evaluate

    root = Path.cwd()
    result = do_evaluate(root, _settings(root, params_file=params_file))
    shown = {k: v for k, v in result.items() if isinstance(v, float)}
    console.info("  ".join(f"{k}={v:.4f}" for k, v in shown.items()))


@cli.command()
@base_option
@params_option
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def compare(base: str | None, params_file: str | None, as_json: bool) -> None:
    """Compare metrics and params with the base revision; exit 4 when a gate fails."""
    from mlci import baseline, compare, metrics, report
    from mlci.errors import GateFailed

    root = _repo_root()
    settings = _settings(root, params_file=params_file)
    rev = baseline.requested(settings, _context(), base)
    c = compare.compare_with_base(root, settings, baseline.resolve(root, settings, rev))
    if as_json:
        console.out(json.dumps(metrics.to_json(c), indent=2, default=str))
    else:
        console.out(report.metrics_section(c))
        console.out(report.params_section(c))
    if c.failed:
        raise GateFailed(
            f"{len(c.failed)} gate(s) failed: {', '.join(m.name for m in c.failed)}",
            fix="see the comparison above",
        )
    if not as_json:
        console.success(f"compared with {rev}: {len(c.gated)} gates passed")


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
    from mlci import pipeline

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
    import json

    from mlci import publish, report

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
    meta = path.with_suffix(".json")
    info = json.loads(meta.read_text()) if meta.exists() else {}
    verdict = report.Verdict(
        info.get("verdict", "passed"), info.get("summary", ""), int(info.get("exit_code", 0))
    )
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


@cli.command()
@params_option
@click.option("--force", is_flag=True, help="Promote even when not on the promotion branch.")
@click.option(
    "--auto",
    is_flag=True,
    help="Promote only on the promotion branch; elsewhere say so and exit 0 (the action's "
    "`promote: auto`).",
)
def promote(params_file: str | None, force: bool, auto: bool) -> None:
    """Register this commit's model and make it the `champion` (after a merge)."""
    from mlci import promotion

    root = _repo_root()
    settings = _settings(root, params_file=params_file)
    ctx = _context()
    if auto and not force:
        refusal = promotion.off_promote_branch(root, settings, ctx)
        if refusal is not None:
            console.info(f"not promoting: {refusal.message}")
            return
    result = promotion.promote(root, settings, ctx, force=force, on_stage=lambda s: console.step(s))
    console.out(result.markdown)
    p = result.promotion
    _show_publication(result.published, "promotion note", show_error=p is None)
    if p is not None:
        verb = "registered" if p.created else "already registered as"
        console.success(
            f"{p.name}: {verb} version {p.version}; champion -> v{p.champion}"
            + (f", previous -> v{p.previous}" if p.previous else "")
        )
    promotion.raise_for_promotion(result)


@cli.command()
@params_option
@click.option("--to", "to", metavar="VERSION", help="Version to restore (default: previous).")
@click.option("--reason", required=True, help="Why; recorded on the model version.")
def rollback(params_file: str | None, to: str | None, reason: str) -> None:
    """Move the `champion` alias back and record who and why."""
    from mlci import registry

    root = _repo_root()
    settings = _settings(root, params_file=params_file)
    r = registry.rollback(settings.tracking_uri, settings.model_name, reason, to)
    console.success(f"{r.name}: champion v{r.before} -> v{r.after}")


@cli.command()
@params_option
def lineage(params_file: str | None) -> None:
    """Show where the champion came from: commit, PR, data, training run."""
    from mlci import registry

    root = _repo_root()
    settings = _settings(root, params_file=params_file)
    for key, value in registry.lineage(settings.tracking_uri, settings.model_name).items():
        console.out(f"{key}: {value}")


@cli.command()
def doctor() -> None:
    """Print what mlci sees: versions, git, DVC remote, MLflow, GPU, GitHub context."""
    from mlci.doctor import diagnose

    for name, value in diagnose(Path.cwd()):
        console.out(f"{name:<18} {value}")


@cli.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Where to build the throwaway repos (default: a new temp dir).",
)
@click.option("--regress", is_flag=True, help="Make the PR a worse model, to see a gate fail.")
def demo(directory: str | None, regress: bool) -> None:
    """A full PR check on the bundled example, on real git, DVC and MLflow."""
    from mlci.demo import run_demo

    code = run_demo(Path(directory) if directory else None, regress=regress)
    if code:
        raise click.exceptions.Exit(code)


@cli.command()
@params_option
@click.option(
    "--snapshot", metavar="PATH", help="Data snapshot to check (default: monitor.snapshot)."
)
@click.option(
    "--on-breach",
    type=click.Choice(["issue", "pr", "dispatch"]),
    help="On drift or degradation: the issue only, also a retraining PR, or a dispatch.",
)
def monitor(params_file: str | None, snapshot: str | None, on_breach: str | None) -> None:
    """Check the champion on a fresh data snapshot: drift, accuracy, latency.

    Exit 0 healthy, 6 drift, 4 degraded; a living issue per model and, per `on_breach`, a
    retraining pull request. Never promotes.
    """
    from mlci import monitor as mon

    root = _repo_root()
    settings = _settings(root, params_file=params_file)
    ms = settings.monitor.override(snapshot=snapshot, on_breach=on_breach)
    with console.group("mlci monitor"):
        result = mon.run(root, settings, ms, _context(), on_stage=lambda s: console.step(s))
    console.out((result.report_path or root).read_text(encoding="utf-8"))
    for where, url in (("issue", result.issue_url), ("retraining PR", result.pr_url)):
        if url:
            console.info(f"{where}: {url}")
    if result.publish_error is not None and result.status.breach:
        console.error(f"could not update GitHub: {result.publish_error.one_line()}")
    console.info(f"{result.status.icon} status: {result.status.value}: {result.summary}")
    mon.raise_for(result)


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
