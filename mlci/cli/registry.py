"""Commands after the merge and in production: promote, rollback, lineage, monitor."""

from __future__ import annotations

import click

from mlci import console
from mlci.cli.common import context, params_option, repo_root, settings_for, show_publication


@click.command()
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
    from mlci.promotion import promote as promotion

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    ctx = context()
    if auto and not force:
        refusal = promotion.off_promote_branch(root, settings, ctx)
        if refusal is not None:
            console.info(f"not promoting: {refusal.message}")
            return
    result = promotion.promote(root, settings, ctx, force=force, on_stage=lambda s: console.step(s))
    console.out(result.markdown)
    p = result.promotion
    show_publication(result.published, "promotion note", show_error=p is None)
    if p is not None and p.challenger is not None:
        console.success(
            f"{p.name}: version {p.version} is the challenger; champion stays v{p.champion} "
            "until it passes its probation and `mlci release` moves it"
        )
    elif p is not None:
        verb = "registered" if p.created else "already registered as"
        console.success(
            f"{p.name}: {verb} version {p.version}; champion -> v{p.champion}"
            + (f", previous -> v{p.previous}" if p.previous else "")
        )
    if result.not_judged:
        console.warn(result.not_judged, title="mlci promotion not judged")
    promotion.raise_for_promotion(result)


@click.command()
@params_option
@click.option("--to", "to", metavar="VERSION", help="Version to restore (default: previous).")
@click.option("--reason", required=True, help="Why; recorded on the model version.")
def rollback(params_file: str | None, to: str | None, reason: str) -> None:
    """Move the `champion` alias back and record who and why."""
    from mlci.registry import models as registry

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    ctx = context()
    r = registry.rollback(
        settings.tracking_uri, settings.model_name, reason, to, ctx.actor, ctx.run_url
    )
    console.success(f"{r.name}: champion v{r.before} -> v{r.after}")


@click.command()
@params_option
def lineage(params_file: str | None) -> None:
    """Show where the champion came from: commit, PR, data, training run."""
    from mlci.registry import models as registry

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    for key, value in registry.lineage(settings.tracking_uri, settings.model_name).items():
        console.out(f"{key}: {value}")


@click.command()
@params_option
@click.option(
    "--snapshot", metavar="PATH", help="Data snapshot to check (default: monitor.snapshot)."
)
@click.option(
    "--on-breach",
    type=click.Choice(["issue", "pr", "dispatch", "rollback"]),
    help="On drift or degradation: the issue only, also a retraining PR, a dispatch, or "
    "(a champion failing a gate in its probation) an automatic rollback.",
)
def monitor(params_file: str | None, snapshot: str | None, on_breach: str | None) -> None:
    """Check the champion on a fresh data snapshot: drift, accuracy, latency.

    Exit 0 healthy, 6 drift, 4 degraded; a living issue per model and, per `on_breach`, a
    retraining pull request. Never promotes.
    """
    from mlci.monitor import run as mon

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    ms = settings.monitor.override(snapshot=snapshot, on_breach=on_breach)
    with console.group("mlci monitor"):
        result = mon.run(root, settings, ms, context(), on_stage=lambda s: console.step(s))
    console.out((result.report_path or root).read_text(encoding="utf-8"))
    for where, url in (("issue", result.issue_url), ("retraining PR", result.pr_url)):
        if url:
            console.info(f"{where}: {url}")
    if result.publish_error is not None and result.status.breach:
        console.error(f"could not update GitHub: {result.publish_error.one_line()}")
    console.info(f"{result.status.icon} status: {result.status.value}: {result.summary}")
    mon.raise_for(result)
