"""MLflow registry: register a model version with lineage, move ``champion``, roll back.

Aliases, not stages: ``champion`` is the model in service, ``previous`` the one before it.
Each version carries tags that lead back to its commit, PR, data and training run.
"""

from __future__ import annotations

import getpass
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlci.errors import ConfigError, MlciError, MlflowError
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
    champion: str | None = None


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


def _tag(version: Any, key: str) -> str | None:
    value = (version.tags or {}).get(f"{TAG_PREFIX}{key}")
    return None if value is None else str(value)


def _order(version: Any) -> tuple[int, int]:
    return int(_tag(version, "commit_time") or 0), int(version.version)


def _versions(client: Any, name: str) -> list[Any]:
    return list(client.search_model_versions(f"name = '{name}'"))


def candidates(client: Any, name: str) -> list[Any]:
    """Versions that passed their gates and were not rolled back, oldest commit first."""
    found = [
        v
        for v in _versions(client, name)
        if _tag(v, "promoted") == "true" and _tag(v, "rolled_back") != "true"
    ]
    return sorted(found, key=_order)


def _alias(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in (
            "RESOURCE_DOES_NOT_EXIST",
            "INVALID_PARAMETER_VALUE",
            "NOT_FOUND",
        ):
            return None
        raise


_RACE_CODES = ("BAD_REQUEST", "RESOURCE_ALREADY_EXISTS", "INVALID_STATE", "RESOURCE_DOES_NOT_EXIST")


def converge(client: Any, name: str, attempts: int = 30) -> tuple[str | None, str | None]:
    """Point ``champion`` at the newest candidate and ``previous`` at the one before it.

    Every promotion and rollback ends here. Each writer re-reads after it writes and stops
    only when what it reads is consistent, so however promotions interleave, the last write
    is followed by a read that confirms it: exactly one champion, the newest commit that
    passed, with ``previous`` the one before.
    """
    from mlflow.exceptions import MlflowException

    for _ in range(attempts):
        ordered = candidates(client, name)
        want_c = str(ordered[-1].version) if ordered else None
        want_p = str(ordered[-2].version) if len(ordered) > 1 else None
        have_c, have_p = _alias(client, name, CHAMPION), _alias(client, name, PREVIOUS)
        if (have_c, have_p) == (want_c, want_p):
            return want_c, want_p
        try:
            if want_c is not None and have_c != want_c:
                client.set_registered_model_alias(name, CHAMPION, want_c)
            if have_p != want_p:
                if want_p is None:
                    client.delete_registered_model_alias(name, PREVIOUS)
                else:
                    client.set_registered_model_alias(name, PREVIOUS, want_p)
        except MlflowException as exc:
            # Another promotion wrote the same alias at the same moment (the server's upsert
            # is not atomic): read again and converge from there.
            if getattr(exc, "error_code", "") not in _RACE_CODES:
                raise
            time.sleep(random.uniform(0.05, 0.3))
    raise MlflowError(
        f"the aliases of '{name}' kept changing under concurrent promotions",
        fix="re-run the promotion; it is idempotent",
    )


def _register(
    client: Any, name: str, run_id: str, git_sha: str, tags: Mapping[str, Any]
) -> tuple[str, bool]:
    """The version for this commit: reused if registered before, else registered now."""
    import mlflow

    mine = [v for v in _versions(client, name) if _tag(v, "git_sha") == git_sha]
    if mine:
        return str(min(int(v.version) for v in mine)), False
    all_tags = {f"{TAG_PREFIX}{k}": str(v) for k, v in tags.items() if v is not None}
    all_tags[f"{TAG_PREFIX}git_sha"] = git_sha
    mv = mlflow.register_model(f"runs:/{run_id}/model", name, tags=all_tags)
    version = str(mv.version)
    # Two promotions of the same commit at once: the lowest version wins, the other goes.
    twins = sorted(int(v.version) for v in _versions(client, name) if _tag(v, "git_sha") == git_sha)
    if twins and int(version) != twins[0]:
        client.delete_model_version(name, version)
        return str(twins[0]), False
    # Only now, with its artifacts registered, may it become a candidate for champion.
    client.set_model_version_tag(name, version, f"{TAG_PREFIX}promoted", "true")
    return version, True


def promote(uri: str, name: str, run_id: str, git_sha: str, tags: Mapping[str, Any]) -> Promotion:
    """Register ``run_id``'s model (once per commit) and converge the aliases."""
    from mlflow.exceptions import MlflowException

    client = _client(uri)
    try:
        try:
            client.create_registered_model(name)
        except MlflowException as exc:
            if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
                raise
        version, created = _register(client, name, run_id, git_sha, tags)
        champion, previous = converge(client, name)
    except MlflowError:
        raise
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return Promotion(name, version, previous, run_id, created, champion)


def rollback(
    uri: str, name: str, reason: str, to: str | None = None, actor: str | None = None
) -> Rollback:
    """Move ``champion`` back (to ``previous`` unless ``to``), recording who, when and why.

    Every candidate newer than the target is marked rolled back, so a later promotion's
    convergence does not bring it back.
    """
    client = _client(uri)
    try:
        current = _alias(client, name, CHAMPION)
        if current is None:
            raise ConfigError(
                f"model '{name}' has no champion to roll back",
                fix="promote a model first (`mlci promote`)",
            )
        target = to or _alias(client, name, PREVIOUS)
        if target is None:
            raise ConfigError(
                f"model '{name}' has no previous version to roll back to",
                fix="pass --to VERSION to pick one",
            )
        versions = {str(v.version): v for v in _versions(client, name)}
        if target not in versions:
            raise ConfigError(
                f"model '{name}' has no version {target}",
                fix="list versions in the MLflow UI or pass another --to",
            )
        who = actor or os.environ.get("GITHUB_ACTOR") or getpass.getuser()
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        chosen = versions[target]
        for v in candidates(client, name):
            if _order(v) > _order(chosen):
                client.set_model_version_tag(name, v.version, f"{TAG_PREFIX}rolled_back", "true")
        client.set_model_version_tag(name, target, f"{TAG_PREFIX}promoted", "true")
        client.set_model_version_tag(name, target, f"{TAG_PREFIX}rolled_back", "false")
        for key, value in (
            ("by", who),
            ("at", when),
            ("reason", reason),
            ("from_version", current),
        ):
            client.set_model_version_tag(name, target, f"{TAG_PREFIX}rollback.{key}", value)
        client.set_registered_model_tag(
            name, f"{TAG_PREFIX}last_rollback", f"{current}->{target} by {who} at {when}: {reason}"
        )
        champion, _ = converge(client, name)
    except MlciError:
        raise
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return Rollback(name, current, champion or target)


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
