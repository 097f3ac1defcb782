"""MLflow registry: register a model version with lineage, move ``champion``, roll back.

Aliases, not stages: ``champion`` is the model in service, ``previous`` the one before it.
Each version carries tags that lead back to its commit, PR, data and training run.
"""

from __future__ import annotations

import getpass
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlci.errors import ConfigError, MlflowError
from mlci.training.tracking import TAG_PREFIX, configure, unreachable

CHAMPION = "champion"
PREVIOUS = "previous"


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous: str | None
    run_id: str
    created: bool


@dataclass(frozen=True)
class Rollback:
    name: str
    before: str
    after: str


def _client(uri: str) -> Any:
    configure(uri)
    from mlflow.tracking import MlflowClient

    return MlflowClient(uri)


def find_run(uri: str, experiment: str, git_sha: str) -> Any | None:
    """The newest finished MLflow run that trained this commit, or None."""
    client = _client(uri)
    try:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            return None
        runs = client.search_runs(
            [exp.experiment_id],
            f"tags.`{TAG_PREFIX}git_sha` = '{git_sha}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return runs[0] if runs else None


def alias_version(uri: str, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise unreachable(uri, exc) from None
    except Exception as exc:
        raise unreachable(uri, exc) from None


def run_metrics(uri: str, run_id: str) -> dict[str, float]:
    client = _client(uri)
    try:
        return dict(client.get_run(run_id).data.metrics)
    except Exception as exc:
        raise unreachable(uri, exc) from None


def _existing_for_sha(client: Any, name: str, git_sha: str) -> Any | None:
    versions = client.search_model_versions(f"name = '{name}'")
    for v in versions:
        if (v.tags or {}).get(f"{TAG_PREFIX}git_sha") == git_sha:
            return v
    return None


def promote(uri: str, name: str, run_id: str, git_sha: str, tags: Mapping[str, Any]) -> Promotion:
    """Register ``run_id``'s model (once per commit) and make it the champion."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    try:
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        old = alias_version(uri, name, CHAMPION)
        existing = _existing_for_sha(client, name, git_sha)
        if existing is not None:
            version, created = str(existing.version), False
        else:
            all_tags = {f"{TAG_PREFIX}{k}": str(v) for k, v in tags.items() if v is not None}
            all_tags[f"{TAG_PREFIX}git_sha"] = git_sha
            if old is not None:
                all_tags[f"{TAG_PREFIX}previous_version"] = str(old.version)
            mv = mlflow.register_model(f"runs:/{run_id}/model", name, tags=all_tags)
            version, created = str(mv.version), True
        previous = str(old.version) if old is not None else None
        if previous is not None and previous != version:
            client.set_registered_model_alias(name, PREVIOUS, previous)
        client.set_registered_model_alias(name, CHAMPION, version)
    except MlflowException as exc:
        raise unreachable(uri, exc) from None
    except Exception as exc:
        if isinstance(exc, MlflowError):
            raise
        raise unreachable(uri, exc) from None
    return Promotion(name, version, previous if previous != version else None, run_id, created)


def rollback(
    uri: str, name: str, reason: str, to: str | None = None, actor: str | None = None
) -> Rollback:
    """Move ``champion`` back (to ``previous`` unless ``to``), recording who, when and why."""
    client = _client(uri)
    current = alias_version(uri, name, CHAMPION)
    if current is None:
        raise ConfigError(
            f"model '{name}' has no champion to roll back",
            fix="promote a model first (`mlci promote`)",
        )
    target = to
    if target is None:
        prev = alias_version(uri, name, PREVIOUS)
        if prev is None:
            raise ConfigError(
                f"model '{name}' has no previous version to roll back to",
                fix="pass --to VERSION to pick one",
            )
        target = str(prev.version)
    try:
        mv = client.get_model_version(name, target)
    except Exception:
        raise ConfigError(
            f"model '{name}' has no version {target}",
            fix="list versions in the MLflow UI or pass another --to",
        ) from None
    who = actor or os.environ.get("GITHUB_ACTOR") or getpass.getuser()
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        client.set_registered_model_alias(name, CHAMPION, target)
        before_prev = (mv.tags or {}).get(f"{TAG_PREFIX}previous_version")
        if before_prev and before_prev != target:
            client.set_registered_model_alias(name, PREVIOUS, before_prev)
        else:
            client.delete_registered_model_alias(name, PREVIOUS)
        for key, value in (
            ("by", who),
            ("at", when),
            ("reason", reason),
            ("from_version", str(current.version)),
        ):
            client.set_model_version_tag(name, target, f"{TAG_PREFIX}rollback.{key}", value)
        client.set_registered_model_tag(
            name,
            f"{TAG_PREFIX}last_rollback",
            f"{current.version}->{target} by {who} at {when}: {reason}",
        )
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return Rollback(name, str(current.version), target)


def lineage(uri: str, name: str, alias: str = CHAMPION) -> dict[str, Any]:
    """What a version came from: commit, PR, data versions, training run."""
    mv = alias_version(uri, name, alias)
    if mv is None:
        raise ConfigError(f"model '{name}' has no alias '{alias}'", fix="promote a model first")
    tags = {k.removeprefix(TAG_PREFIX): v for k, v in (mv.tags or {}).items()}
    return {
        "name": name,
        "alias": alias,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "source": mv.source,
        **tags,
    }
