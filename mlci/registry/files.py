"""A registered version's files: a version becomes a candidate for ``champion`` only once its
registration finished and its model files are where MLflow says."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from mlci.errors import MlflowError


def check(client: Any, name: str, version: Any) -> None:
    """Refuse a version whose registration did not finish or whose model files are missing."""
    import mlflow

    status = str(getattr(version, "status", None) or "READY")
    if status != "READY":
        raise MlflowError(
            f"version {version.version} of '{name}' is {status}, not READY: its registration "
            "did not finish",
            fix="re-run `mlci promote`; if it stays so, delete that version in MLflow",
        )
    uri = client.get_model_version_download_uri(name, version.version)
    files = mlflow.artifacts.list_artifacts(artifact_uri=uri)
    if not any(PurePosixPath(f.path).name == "MLmodel" for f in files):
        raise MlflowError(
            f"version {version.version} of '{name}' has no model files (no MLmodel at {uri})",
            fix="check the training run logged its model (`mlci train` does), "
            "then delete that version and re-run `mlci promote`",
        )
