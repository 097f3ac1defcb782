"""Commands of the release: ``release`` (challenger -> champion), ``history`` (the trail) and
``card`` (a version's model card)."""

from __future__ import annotations

import json

import click

from mlci import console
from mlci.cli.common import context, params_option, repo_root, settings_for


@click.command()
@params_option
@click.option(
    "--force",
    is_flag=True,
    help="Release before the probation is over (recorded as forced in the trail).",
)
def release(params_file: str | None, force: bool) -> None:
    """Make the `challenger` the `champion` once it passed its probation and was approved.

    Exit 4 when the probation or the approval (`mlci.release.approval`) does not allow it.
    """
    from mlci.release import release as releasing

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    r = releasing.release(settings, context(), force=force)
    who = ", ".join(r.approvals) or "nobody (mlci.release.approval: none)"
    console.success(
        f"{r.name}: champion v{r.before or '-'} -> v{r.champion}"
        + (f", previous -> v{r.previous}" if r.previous else "")
        + f"; probation {r.streak} of {r.probation}{' (forced)' if r.forced else ''}; "
        f"approved by {who}"
    )


@click.command()
@params_option
@click.option("--json", "as_json", is_flag=True, help="Print the trail as JSON.")
def history(params_file: str | None, as_json: bool) -> None:
    """Every move of every alias of the model: when, from -> to, commit, PR, who, approved by
    whom, why, and the workflow run."""
    from mlci.registry import releases

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    moves = releases.moves(settings.tracking_uri, settings.model_name)
    if as_json:
        console.out(json.dumps([m.to_json() for m in moves], indent=2))
        return
    if not moves:
        console.info(f"{settings.model_name}: no alias has moved yet")
        return
    for m in moves:
        before = f"v{m.before}" if m.before else "-"
        after = f"v{m.after}" if m.after else "(removed)"
        extra = [f"commit {m.git_sha[:7]}" if m.git_sha else "", f"PR #{m.pr}" if m.pr else ""]
        extra += [f"by {m.actor}" if m.actor else ""]
        extra += [f"approved by {', '.join(m.approved_by)}" if m.approved_by else ""]
        extra += ["forced" if m.forced else "", m.run_url or ""]
        shown = "; ".join(e for e in extra if e)
        console.out(
            f"{m.at}  {m.alias:<10} {before} -> {after}  {m.why}"
            + (f"  ({shown})" if shown else "")
        )


@click.command()
@params_option
@click.option("--version", "version", metavar="V", help="The version (default: the champion).")
def card(params_file: str | None, version: str | None) -> None:
    """Print a model version's card: what it is, where it came from, its metrics against the
    champion, slices, what drives its predictions, size, approvals, intended use and
    limitations."""
    import tempfile
    from pathlib import Path

    from mlci.errors import ConfigError
    from mlci.promotion import card as model_card
    from mlci.registry import models as registry
    from mlci.registry.tracking import mlflow_client

    root = repo_root()
    settings = settings_for(root, params_file=params_file)
    uri, name = settings.tracking_uri, settings.model_name
    if version is None:
        mv = registry.alias_version(uri, name, registry.CHAMPION)
    else:
        try:
            mv = mlflow_client(uri).get_model_version(name, version)
        except Exception:
            mv = None
    if mv is None:
        raise ConfigError(
            f"model '{name}' has no version {version or '@champion'}",
            fix="`mlci history` lists the versions aliases pointed at; promote one first",
        )
    with tempfile.TemporaryDirectory() as tmp:
        text = model_card.read(uri, str(mv.run_id), Path(tmp))
    if text is None:
        raise ConfigError(
            f"{name} v{mv.version} has no model card (promoted before mlci wrote cards)",
            fix="promote it again with this mlci (`mlci promote --force` on its commit)",
        )
    console.out(text)
