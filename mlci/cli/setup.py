"""Commands that set things up or look around: doctor, demo, init."""

from __future__ import annotations

from pathlib import Path

import click

from mlci import console


@click.command()
def doctor() -> None:
    """Print what mlci sees: versions, git, DVC remote, MLflow, GPU, GitHub context."""
    from mlci.doctor import diagnose

    for name, value in diagnose(Path.cwd()):
        console.out(f"{name:<18} {value}")


@click.command()
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
    from mlci.adopt.demo import run_demo

    code = run_demo(Path(directory) if directory else None, regress=regress)
    if code:
        raise click.exceptions.Exit(code)


@click.command("init")
@click.option(
    "--action",
    metavar="OWNER/REPO@SHA",
    help="The mlci action the workflows use, pinned by commit SHA (default: a placeholder).",
)
@click.option("--force", is_flag=True, help="Overwrite files and an `mlci:` section that exist.")
def init_cmd(action: str | None, force: bool) -> None:
    """Adopt mlci here: `mlci:` settings, data schemas and the three workflows."""
    import os

    from mlci import git
    from mlci.adopt.init import init

    root = git.project_root(Path.cwd())
    top = git.toplevel(root)
    result = init(root, top, action=action, force=force)
    p = result.project
    console.info(
        f"dvc.yaml: {len(p.metrics)} metrics files, {len(p.params)} params files, "
        f"{len(p.data)} data tables"
    )
    for path in result.written:
        console.info(f"wrote {os.path.relpath(path, Path.cwd())}")
    console.info(f"gates: {', '.join(f'{n} ({d})' for n, d in result.gates.items()) or 'none'}")
    for line in result.installs:
        console.info(f"installs: {line}")
    if result.unclassified:
        console.info(
            f"not gated (the name does not say which way is better): "
            f"{', '.join(result.unclassified)}"
        )
    if result.missing:
        console.warn(
            f"not in the work tree, so no gates from them: {', '.join(result.missing)}; "
            "run `dvc pull` or `dvc repro`, then `mlci init --force`"
        )
    if result.placeholder:
        console.warn(
            "the workflows use a placeholder action: replace `<owner>/mlci@<40-hex "
            "commit SHA>`, or rerun with --action OWNER/REPO@SHA --force"
        )
    for note in result.notes:
        console.warn(note)
    paths = " ".join(os.path.relpath(w, Path.cwd()) for w in result.written)
    console.success(f"next: review them, then `git add {paths} && git commit -m 'Adopt mlci'`")
