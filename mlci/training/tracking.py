"""MLflow tracking for training runs: one run per training, evaluation adds its metrics."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlci.errors import MlflowError

TAG_PREFIX = "mlci."


def configure(tracking_uri: str) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Bounded waits for a tracking server that is down: ~7 s of retries, not minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    mlflow.set_tracking_uri(tracking_uri)


def ensure_experiment(name: str, tracking_uri: str, root: Path) -> str:
    """The experiment id; a local SQLite store keeps its artifacts under ``.mlci/``."""
    import mlflow

    try:
        exp = mlflow.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        location = None
        if tracking_uri.startswith("sqlite:///"):
            db = Path(tracking_uri.removeprefix("sqlite:///"))
            location = (db.parent / "artifacts").as_uri()
        return str(mlflow.create_experiment(name, artifact_location=location))
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None


def unreachable(uri: str, exc: Exception) -> MlflowError:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return MlflowError(
        f"MLflow at {uri} failed: {text[:300]}",
        fix="check MLCI_MLFLOW_TRACKING_URI and that the server is up",
    )


@contextmanager
def run(experiment_id: str, tracking_uri: str, name: str) -> Iterator[Any]:
    import mlflow

    try:
        active = mlflow.start_run(experiment_id=experiment_id, run_name=name)
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None
    with active:
        yield active


def log_params(params: Mapping[str, Any]) -> None:
    import mlflow

    mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})


def set_tags(tags: Mapping[str, Any]) -> None:
    import mlflow

    mlflow.set_tags({f"{TAG_PREFIX}{k}": str(v) for k, v in tags.items() if v is not None})


def log_metrics(run_id: str, metrics: Mapping[str, Any], tracking_uri: str) -> None:
    """Add numeric metrics to an existing run (used by ``mlci evaluate``)."""
    import time

    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    now = int(time.time() * 1000)
    batch = [
        Metric(k, float(v), now, 0)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    try:
        MlflowClient(tracking_uri).log_batch(run_id, metrics=batch)
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None
