"""Commands that run one stage of the pipeline alone (what `dvc.yaml` stages call): pull,
validate, train, evaluate."""

from __future__ import annotations

from pathlib import Path

import click

from mlci import console
from mlci.cli.common import context, params_option, repo_root, settings_for


@click.command()
@click.option(
    "--remote", "remote_name", metavar="NAME", help="DVC remote (default: the repo's default)."
)
def pull(remote_name: str | None) -> None:
    """Pull the pipeline's data from the DVC remote."""
    from mlci.project import remote

    root = repo_root()
    settings = settings_for(root, dvc_remote=remote_name)
    with console.group(f"dvc pull ({settings.dvc_remote or 'default remote'})"):
        result = remote.pull(root, settings.dvc_remote)
    console.info(f"pulled {result.files} files from '{result.remote}' ({result.url})")
    for v in result.versions:
        console.info(f"  {v.path}  {v.md5}")
    if result.missing:
        console.warn(
            f"the DVC remote '{result.remote}' lacks {', '.join(result.missing)}: "
            "`dvc repro` can rebuild them; run `dvc push` where they were built"
        )


@click.command()
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
    from mlci.checks import validation
    from mlci.errors import DataInvalid

    root = Path.cwd()
    settings = settings_for(root, params_file=params_file)
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


@click.command()
@params_option
def train(params_file: str | None) -> None:
    """Train the model configured under `train:` in params.yaml."""
    from mlci.check.trust import guard
    from mlci.training.run import train as do_train

    root = Path.cwd()
    settings = settings_for(root, params_file=params_file)
    guard(settings, context())
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
    console.info(
        f"MLflow run {facts['mlflow_run_id']} at {facts['mlflow_tracking_uri']} "
        f"(recorded by {facts['recorded_by']})"
    )


@click.command()
@params_option
def evaluate(params_file: str | None) -> None:
    """Evaluate the trained model; write metrics and plots for DVC."""
    from mlci.training.run import evaluate as do_evaluate

    root = Path.cwd()
    result = do_evaluate(root, settings_for(root, params_file=params_file))
    shown = {k: v for k, v in result.items() if isinstance(v, float)}
    console.info("  ".join(f"{k}={v:.4f}" for k, v in shown.items()))
