"""Release a challenger: it becomes a candidate for ``champion`` (recorded how), the
``challenger`` alias goes, and the aliases converge as after any promotion; every move lands in
the audit trail. Two releases racing end with one champion: convergence decides."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from mlci.errors import MlciError
from mlci.registry import history
from mlci.registry import models as registry
from mlci.registry import tags as vocab
from mlci.registry.tracking import mlflow_client, set_version_tags, unreachable


@dataclass(frozen=True)
class Released:
    name: str
    version: str
    before: str | None  # the champion it replaced
    champion: str | None
    previous: str | None


def release(uri: str, name: str, version: str, why: history.Context) -> Released:
    """Make ``version`` (the challenger) the champion; ``previous`` keeps the one before."""
    client = mlflow_client(uri)
    try:
        before = registry.aliases(client, name)
        record = {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "by": why.actor,
            "approved_by": list(why.approved_by),
            "forced": why.forced,
            "run_url": why.run_url,
        }
        tags = {**vocab.candidate(), vocab.RELEASED: json.dumps(record)[:5000]}
        set_version_tags(client, name, version, tags)
        if before.get(registry.CHALLENGER) == version:
            client.delete_registered_model_alias(name, registry.CHALLENGER)
            history.note(client, name, registry.CHALLENGER, version, None, why)
        champion, previous = registry.converge(client, name, why=why)
        history.reconcile(client, name, registry.aliases(client, name), why)
    except MlciError:
        raise
    except Exception as exc:
        raise unreachable(uri, exc) from None
    return Released(name, version, before.get(registry.CHAMPION), champion, previous)


def moves(uri: str, name: str) -> list[history.Move]:
    """The audit trail of ``name``, oldest first."""
    client = mlflow_client(uri)
    try:
        model: Any = client.get_registered_model(name)
    except Exception as exc:
        from mlflow.exceptions import MlflowException

        if isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise unreachable(uri, exc) from None
    return history.read(getattr(model, "tags", None) or {})
