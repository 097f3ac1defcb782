"""MLflow runs that mlci tags or records itself (a training's key and lineage)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from mlci.registry import tags as vocab
from mlci.registry.tracking import mlflow_client, unreachable


def track_run(
    uri: str,
    *,
    root: str,
    experiment: str,
    own: str | None,
    tags: dict[str, str],
    name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
) -> str:
    """Tag the run ``own`` when this store has it, else record a run with the tags, params and
    metrics (the MLflow half of tagging a training with its key and lineage); its id."""
    from mlci.registry import tracking

    tracking.configure(uri)
    if own is not None and get_run(uri, own) is not None:
        tracking.tag_run(own, tags, uri)
        return own
    exp = tracking.ensure_experiment(experiment, uri, Path(root))
    return tracking.record_run(exp, uri, name, {**tags, **vocab.recorded()}, params, metrics)


def find_run(uri: str, experiment: str, git_sha: str) -> Any | None:
    """The newest finished MLflow run that trained this commit, or None."""
    return _newest(uri, experiment, vocab.where(vocab.GIT_SHA, git_sha))


def find_run_by_key(uri: str, experiment: str, key: str) -> Any | None:
    """The newest finished, trusted run of a training with these inputs (its ``dvc.lock``
    key), whatever commit it ran on; None when no job shared one with this store."""
    return _newest(
        uri,
        experiment,
        f"{vocab.where(vocab.TRAINING_KEY, key)} and {vocab.where(vocab.TRUSTED, 'true')}"
        " and attributes.status = 'FINISHED'",
    )


def _newest(uri: str, experiment: str, where: str) -> Any | None:
    """The newest run of ``experiment`` that ``where`` (an MLflow search filter) finds."""
    client = mlflow_client(uri)
    try:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return None
        runs = client.search_runs(
            [exp.experiment_id], where, order_by=["attributes.start_time DESC"], max_results=1
        )
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return runs[0] if runs else None


def get_run(uri: str, run_id: str) -> Any | None:
    """The run, or None when it is not in this store (it was tracked by another job's)."""
    from mlci.registry.tracking import missing

    client = mlflow_client(uri)
    try:
        return client.get_run(run_id)
    except Exception as exc:
        if missing(exc):
            return None
        raise unreachable(uri, exc) from None


def has_model(uri: str, run: Any) -> bool:
    """Whether the run holds a model at ``model`` (an MLflow 3 logged model or artifacts)."""
    import mlflow

    mlflow_client(uri)
    try:
        found = mlflow.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{run.info.run_id}' AND name = 'model'",
            output_format="list",
        )
        if found:
            return True
        files = mlflow.artifacts.list_artifacts(run_id=run.info.run_id, artifact_path="model")
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return any(PurePosixPath(f.path).name == "MLmodel" for f in files)


def run_metrics(uri: str, run_id: str) -> dict[str, float]:
    client = mlflow_client(uri)
    try:
        return dict(client.get_run(run_id).data.metrics)
    except Exception as exc:
        raise unreachable(uri, exc) from None
