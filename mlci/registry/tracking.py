"""MLflow tracking for training runs: one run per training, evaluation adds its metrics."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from mlci.errors import MlflowError


def configure(tracking_uri: str) -> None:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Bounded waits for a tracking server that is down: ~7 s of retries, not minutes.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    import logging

    import mlflow

    logging.getLogger("mlflow").setLevel(logging.ERROR)
    # mlci's setting decides both: an ambient MLFLOW_REGISTRY_URI must not send versions
    # and aliases to another store than the runs they come from.
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    probe(tracking_uri)


_probed: set[str] = set()


def probe(tracking_uri: str) -> None:
    """Fail in seconds, naming the server, when an HTTP tracking server cannot be reached.

    One plain request (through any configured proxy): an HTTP answer of any status means the
    server is there; only a connection that fails or hangs is an error. Once per process.
    """
    if not tracking_uri.startswith(("http://", "https://")) or tracking_uri in _probed:
        return
    import requests

    try:
        requests.get(tracking_uri, timeout=(5, 15), allow_redirects=False, stream=True).close()
    except requests.exceptions.SSLError:
        pass  # TLS settings (MLFLOW_TRACKING_INSECURE_TLS, client certs) are MLflow's to apply
    except requests.RequestException as exc:
        raise unreachable(tracking_uri, exc) from None
    _probed.add(tracking_uri)


def sqlite_file(tracking_uri: str) -> Path | None:
    """The database file of a local SQLite store (``sqlite:///...``), else None."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri.removeprefix("sqlite:///"))


def store_absent(tracking_uri: str) -> bool:
    """Whether the tracking URI names a local SQLite store that does not exist yet (so it
    holds no run): a question answered without importing MLflow."""
    db = sqlite_file(tracking_uri)
    return db is not None and not db.exists()


def ensure_experiment(name: str, tracking_uri: str, root: Path) -> str:
    """The experiment id; a local SQLite store keeps its artifacts under ``.mlci/``."""
    import mlflow

    try:
        exp = mlflow.get_experiment_by_name(name)
        if exp is not None:
            return str(exp.experiment_id)
        db = sqlite_file(tracking_uri)
        location = None if db is None else (db.parent / "artifacts").as_uri()
        return str(mlflow.create_experiment(name, artifact_location=location))
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None


def unreachable(uri: str, exc: Exception) -> MlflowError:
    """The error for a tracking server that failed: its URI (no credentials) and why."""
    return MlflowError(
        f"MLflow at {public_uri(uri)} failed: {cause(exc)}",
        fix="start the tracking server, or set MLCI_MLFLOW_TRACKING_URI to one that is up "
        "(unset, mlci keeps runs in a local SQLite file)",
    )


# Phrases of urllib3/requests/socket errors, in the order they are looked for.
_CAUSES = (
    ("Connection refused", "connection refused: nothing listens there"),
    ("Name or service not known", "the host name does not resolve"),
    ("Temporary failure in name resolution", "the host name does not resolve"),
    ("nodename nor servname", "the host name does not resolve"),
    ("getaddrinfo failed", "the host name does not resolve"),
    ("CERTIFICATE_VERIFY_FAILED", "its TLS certificate is not trusted (see REQUESTS_CA_BUNDLE)"),
    ("timed out", "no answer in time (timed out)"),
    ("Connection reset", "the connection was reset"),
    ("RemoteDisconnected", "the server closed the connection"),
)


def cause(exc: Exception) -> str:
    """A short, readable reason for an MLflow client error (not urllib3's nested repr)."""
    text = str(exc)
    for needle, reason in _CAUSES:
        if needle in text:
            return reason
    import re

    code = re.search(r"error code (\d{3})", text)
    if code:
        return f"the server answered HTTP {code.group(1)}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:300]


def public_uri(uri: str) -> str:
    """The tracking URI without credentials, fit for a message or a report."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(uri)
    if parts.password or parts.username:
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return uri


@contextmanager
def run(experiment_id: str, tracking_uri: str, name: str) -> Iterator[Any]:
    import mlflow

    try:
        active = mlflow.start_run(experiment_id=experiment_id, run_name=name)
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None
    try:
        yield active
    except BaseException:
        with suppress(Exception):  # best effort: the error that ended the run is the one
            mlflow.end_run("FAILED")
        raise
    try:
        mlflow.end_run()
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None


def log_params(params: Mapping[str, Any]) -> None:
    import mlflow

    try:
        mlflow.log_params({k: str(v)[:6000] for k, v in params.items()})
    except Exception as exc:
        raise unreachable(mlflow.get_tracking_uri(), exc) from None


def set_tags(tags: Mapping[str, str]) -> None:
    """Set tags (full names, from :mod:`mlci.registry.tags`) on the active run."""
    import mlflow

    try:
        mlflow.set_tags(dict(tags))
    except Exception as exc:
        raise unreachable(mlflow.get_tracking_uri(), exc) from None


def log_metrics(run_id: str, metrics: Mapping[str, Any], tracking_uri: str) -> bool:
    """Add numeric metrics to an existing run (used by ``mlci evaluate``).

    Returns False, logging nothing, when the run is not in this store: outputs restored from
    another job's training (DVC's run-cache, a pull) name a run in that job's MLflow store.
    """
    import time

    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    now = int(time.time() * 1000)
    batch = [
        Metric(k, float(v), now, 0)
        for k, v in metrics.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool)
    ]
    try:
        MlflowClient(tracking_uri).log_batch(run_id, metrics=batch)
    except MlflowException as exc:
        if missing(exc):
            return False
        raise unreachable(tracking_uri, exc) from None
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None
    return True


def missing(exc: Exception) -> bool:
    """Whether an MLflow error says the run (or model) does not exist in this store."""
    return getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND")


def safe_key(key: str) -> str:
    """A tag or param name MLflow accepts (letters, digits, ``_ - . / space``)."""
    import re

    return re.sub(r"[^\w./ -]", "_", key)[:250]


def tag_run(run_id: str, tags: Mapping[str, str], tracking_uri: str) -> None:
    """Set mlci's tags (full names, from :mod:`mlci.registry.tags`) on an existing run."""
    from mlflow.entities import RunTag
    from mlflow.tracking import MlflowClient

    batch = [RunTag(safe_key(k), str(v)[:5000]) for k, v in tags.items()]
    try:
        MlflowClient(tracking_uri).log_batch(run_id, tags=batch)
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None


def record_run(
    experiment_id: str,
    tracking_uri: str,
    name: str,
    tags: Mapping[str, str],
    params: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> str:
    """A finished run that records a training mlci did not run itself (a project's own
    script, or outputs restored from DVC's run-cache): lineage tags, params, metrics."""
    from mlflow.entities import Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    try:
        run = client.create_run(experiment_id, run_name=name)
        run_id = str(run.info.run_id)
        batch = [Param(safe_key(k), str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(batch), 100):
            client.log_batch(run_id, params=batch[i : i + 100])
        client.set_terminated(run_id)
    except Exception as exc:
        raise unreachable(tracking_uri, exc) from None
    tag_run(run_id, tags, tracking_uri)
    log_metrics(run_id, {safe_key(k): v for k, v in metrics.items()}, tracking_uri)
    return run_id


def mlflow_client(uri: str) -> Any:
    """An MLflow client for ``uri``, its registry at the same URI (never an ambient one)."""
    configure(uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri, registry_uri=uri)


def set_version_tags(client: Any, name: str, version: str, tags: Mapping[str, str]) -> None:
    """Set tags on a model version; safe when another writer sets the same tag at once."""
    for key, value in tags.items():
        _upsert(client.set_model_version_tag, name, version, key, value)


def set_model_tags(client: Any, name: str, tags: Mapping[str, str]) -> None:
    """Set tags on a registered model; safe when another writer sets the same tag at once."""
    for key, value in tags.items():
        _upsert(client.set_registered_model_tag, name, key, value)


def _upsert(setter: Any, *args: str, attempts: int = 6) -> None:
    """MLflow's tag upsert is a read then an insert: two writers of one key at once make the
    second insert fail on the primary key (PostgreSQL answers BAD_REQUEST). Setting a tag is
    idempotent, so the loser writes again, now as an update."""
    import random
    import time

    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            setter(*args)
            return
        except MlflowException as exc:
            raced = getattr(exc, "error_code", "") in ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS")
            if not raced or attempt == attempts - 1:
                raise
            time.sleep(random.uniform(0.05, 0.3))
