"""What every group of commands shares: the common options, and the settings, project root
and CI context a command starts from.

Heavy libraries (dvc, mlflow, pandera, sklearn, torch) are imported inside the library calls,
so a command imports only what it uses (and ``mlci --help`` imports no command at all).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mlci import console


def settings_for(root: Path, **flags: Any) -> Any:
    from mlci.settings import config

    settings = config.load(root, flags)
    for note in settings.notes:
        console.warn(note)
    return settings


def repo_root() -> Path:
    """The project every command but ``train``/``evaluate`` works on: the nearest directory
    at or above the working directory holding dvc.yaml or .dvc/ (see ``git.project_root``)."""
    from mlci import git

    root = git.project_root(Path.cwd())
    state = root / ".mlci"
    if state.is_dir() and not (state / ".gitignore").exists():
        from mlci.project import data

        data.state_dir(root)  # an older run's .mlci/: keep it out of `git status`
    return root


def context() -> Any:
    from mlci import ci

    console.mask(ci.token())
    return ci.detect()


base_option = click.option(
    "--base",
    metavar="REV",
    help="Base revision to compare with (default: the PR's base branch), "
    "or @ALIAS (e.g. @champion) for the registered model that alias points at.",
)
params_option = click.option(
    "--params-file", metavar="FILE", help="Params file holding the `mlci:` section."
)
save_option = click.option(
    "--save",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="Also save the report (PR number, head SHA, verdict) for a fork-safe publisher "
    "(`publish --from`).",
)


def show_publication(pub: Any, what: str, *, show_error: bool = True) -> None:
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


def show_published(pub: Any) -> None:
    show_publication(pub, "report", show_error=False)
    if pub.error is not None:
        raise pub.error
