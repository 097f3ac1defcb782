"""Commands of the release: ``release`` (challenger -> champion) and ``history`` (the trail)."""

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


COMMANDS = (release, history)
