"""MLflow registry: register a model version with lineage, move ``champion``, roll back.

Aliases, not stages: ``champion`` is the model in service, ``previous`` the one before it.
Each version carries tags that lead back to its commit, PR, data and training run.

A promotion that stops anywhere (the tracking server dies, the job is cancelled) leaves
``champion`` where it was or fully moved, never on a version whose model files are missing:
a version becomes a candidate (:data:`tags.PROMOTED`) only after its registration finished
and its files were found, ``champion`` is written last, and a re-run resumes from any step.
"""

from __future__ import annotations

import getpass
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mlci.errors import ConfigError, MlciError, MlflowError, first_line
from mlci.registry import files, history
from mlci.registry import tags as vocab
from mlci.registry.tracking import mlflow_client, set_model_tags, set_version_tags, unreachable

CHAMPION = "champion"
PREVIOUS = "previous"
CHALLENGER = "challenger"

# The steps of a promotion, as reported to ``on_step`` (a no-op unless a caller wants them).
FOUND_RUN = "found run"  # pipeline: the commit's training run is known
REGISTERED = "registered"  # a version exists, not yet a candidate for champion
CANDIDATE = "candidate"  # its files are checked and it is tagged promoted
CONVERGING = "converging"  # `previous` is written, `champion` not yet
OnStep = Callable[[str], None]


def _no_step(_: str) -> None:
    return None


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    previous: str | None
    run_id: str
    created: bool
    champion: str | None = None
    challenger: str | None = None  # strategy challenger: the version now in shadow


@dataclass(frozen=True)
class Rollback:
    name: str
    before: str
    after: str


def alias_version(uri: str, name: str, alias: str) -> Any | None:
    from mlflow.exceptions import MlflowException

    client = mlflow_client(uri)
    try:
        return client.get_model_version_by_alias(name, alias)
    except MlflowException as exc:
        code = getattr(exc, "error_code", "")
        if code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise unreachable(uri, exc) from None
    except Exception as exc:
        raise unreachable(uri, exc) from None


def _order(version: Any) -> tuple[int, int]:
    return vocab.commit_time(version.tags), int(version.version)


PAGE = 10_000  # versions per search request (MLflow's default page)


def _versions(client: Any, name: str, where: str | None = None, page: int = PAGE) -> Iterator[Any]:
    """The versions of ``name`` that ``where`` (tag clauses of an MLflow filter) selects, page
    after page in version order. A registry that refuses the tag filter or the ordering is
    asked for every version at once, as before (the callers check the tags themselves: the
    filter only spares reading the versions they would skip)."""
    from mlflow.exceptions import MlflowException

    query = vocab.named(name) + (f" and {where}" if where else "")
    token = None
    while True:
        try:
            found = client.search_model_versions(
                query, max_results=page, order_by=["version_number ASC"], page_token=token
            )
        except MlflowException as exc:
            if token is not None or getattr(exc, "error_code", "") != "INVALID_PARAMETER_VALUE":
                raise
            yield from client.search_model_versions(vocab.named(name))
            return
        yield from found
        token = getattr(found, "token", None)
        if not token:
            return


def _ready_candidate(version: Any) -> bool:
    return vocab.is_candidate(version.tags) and (
        str(getattr(version, "status", None) or "READY") == "READY"
    )


def candidates(client: Any, name: str) -> list[Any]:
    """Registered versions that passed their gates and were not rolled back, oldest first."""
    promoted = _versions(client, name, vocab.where(vocab.PROMOTED, "true"))
    return sorted((v for v in promoted if _ready_candidate(v)), key=_order)


def has_candidate(client: Any, name: str) -> bool:
    """Whether ``name`` has a candidate for champion (read a page of 50 at a time)."""
    promoted = _versions(client, name, vocab.where(vocab.PROMOTED, "true"), page=50)
    return any(_ready_candidate(v) for v in promoted)


def aliases(client: Any, name: str) -> dict[str, str | None]:
    """Where ``champion``, ``previous`` and ``challenger`` point now."""
    return {a: _alias(client, name, a) for a in (CHAMPION, PREVIOUS, CHALLENGER)}


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


def converge(
    client: Any,
    name: str,
    attempts: int = 30,
    on_step: OnStep = _no_step,
    why: history.Context | None = None,
) -> tuple[str | None, str | None]:
    """Point ``champion`` at the newest candidate and ``previous`` at the one before it.

    Every promotion and rollback ends here. Each writer re-reads after it writes and stops
    only when what it reads is consistent, so however promotions interleave, the last write
    is followed by a read that confirms it: exactly one champion, the newest commit that
    passed, with ``previous`` the one before. ``previous`` is written first: a writer that
    stops in between leaves ``champion`` untouched, and ``previous`` (at worst) on it too.
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
            if have_p != want_p:
                if want_p is None:
                    client.delete_registered_model_alias(name, PREVIOUS)
                else:
                    client.set_registered_model_alias(name, PREVIOUS, want_p)
                if why is not None:
                    history.note(client, name, PREVIOUS, have_p, want_p, why)
            on_step(CONVERGING)
            if want_c is not None and have_c != want_c:
                client.set_registered_model_alias(name, CHAMPION, want_c)
                if why is not None:
                    history.note(client, name, CHAMPION, have_c, want_c, why)
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


def _mine(client: Any, name: str, git_sha: str) -> list[Any]:
    """This commit's versions, lowest first."""
    tagged = _versions(client, name, vocab.where(vocab.GIT_SHA, git_sha))
    found = [v for v in tagged if vocab.git_sha(v.tags) == git_sha]
    return sorted(found, key=lambda v: int(v.version))


def _ensure_model(client: Any, name: str) -> None:
    """Create the registered model ``name`` unless it exists. A model with a version exists:
    asked first, because MLflow answers creating an existing model by loading every version."""
    from mlflow.exceptions import MlflowException

    if list(client.search_model_versions(vocab.named(name), max_results=1)):
        return
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") != "RESOURCE_ALREADY_EXISTS":
            raise


def _version(client: Any, name: str, version: str) -> Any | None:
    """Version ``version`` of ``name`` (spelled as MLflow numbers it), or None."""
    from mlflow.exceptions import MlflowException

    try:
        found = client.get_model_version(name, version)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise
    return found if str(found.version) == version else None


def _set(client: Any, name: str, version: str, tags: Mapping[str, str]) -> None:
    set_version_tags(client, name, version, tags)


def _register(
    client: Any,
    name: str,
    run_id: str,
    git_sha: str,
    tags: Mapping[str, str],
    on_step: OnStep = _no_step,
    candidate: bool = True,
) -> tuple[str, bool]:
    """The version for this commit, registered now or before, made a candidate for champion.

    A version found from an earlier, interrupted promotion is finished here: checked and
    tagged, so a re-run converges as if nothing had happened.
    """
    import mlflow

    mine = _mine(client, name, git_sha)
    created = False
    if not mine:
        all_tags = {**tags, **vocab.commit(git_sha)}
        mv = mlflow.register_model(f"runs:/{run_id}/model", name, tags=all_tags)
        on_step(REGISTERED)
        mine = _mine(client, name, git_sha) or [mv]
        # Two promotions of the same commit at once: the lowest version wins, the other goes.
        created = str(mine[0].version) == str(mv.version)
        if not created:
            client.delete_model_version(name, str(mv.version))
    chosen = mine[0]
    # Only now, with its registration finished and its files there, may it become a
    # candidate for champion. A version that already is one (or was rolled back) stays so.
    if not vocab.promoted(chosen.tags):
        files.check(client, name, chosen)
        if candidate:
            _set(client, name, str(chosen.version), vocab.candidate())
    on_step(CANDIDATE)
    return str(chosen.version), created


def promote(
    uri: str,
    name: str,
    run_id: str,
    git_sha: str,
    tags: Mapping[str, str],
    on_step: OnStep | None = None,
    *,
    strategy: str = "direct",
    why: history.Context | None = None,
) -> Promotion:
    """Register ``run_id``'s model (once per commit, with ``tags``: :func:`vocab.version`)
    and converge the aliases.

    ``on_step`` hears each step as it completes (``REGISTERED``, ``CANDIDATE``,
    ``CONVERGING``); the error of a promotion that stopped names the last one.
    """
    done: list[str] = []

    def step(what: str) -> None:
        done.append(what)
        if on_step is not None:
            on_step(what)

    client = mlflow_client(uri)
    try:
        _ensure_model(client, name)
        why = why or history.Context("promotion")
        # the first version has nothing to challenge: it becomes champion
        shadow = strategy == "challenger" and has_candidate(client, name)
        version, created = _register(client, name, run_id, git_sha, tags, step, not shadow)
        challenger = None
        if shadow and not vocab.promoted(client.get_model_version(name, version).tags):
            challenger = version
            before = _alias(client, name, CHALLENGER)
            if before != version:
                client.set_registered_model_alias(name, CHALLENGER, version)
                history.note(client, name, CHALLENGER, before, version, why)
        champion, previous = converge(client, name, on_step=step, why=why)
        history.reconcile(client, name, aliases(client, name), why)
    except MlflowError:
        raise
    except Exception as exc:
        raise _stopped(uri, name, done, exc) from None
    return Promotion(name, version, previous, run_id, created, champion, challenger)


def _stopped(uri: str, name: str, done: list[str], exc: Exception) -> MlflowError:
    text = first_line(exc, 10_000)
    where = f"after step '{done[-1]}'" if done else "before registering"
    return MlflowError(
        f"MLflow at {uri} failed while promoting '{name}' ({where}): {text[:300]}. "
        f"'{CHAMPION}' is unchanged or fully moved, never on a version without its files",
        fix="re-run `mlci promote` once the server is up: it resumes where it stopped",
    )


def rollback(
    uri: str,
    name: str,
    reason: str,
    to: str | None = None,
    actor: str | None = None,
    run_url: str | None = None,
    automatic: bool = False,
) -> Rollback:
    """Move ``champion`` back (to ``previous`` unless ``to``), recording who, when and why.

    Every candidate newer than the target is marked rolled back, so a later promotion's
    convergence does not bring it back.
    """
    client = mlflow_client(uri)
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
        chosen = _version(client, name, target)
        if chosen is None:
            raise ConfigError(
                f"model '{name}' has no version {target}",
                fix="list versions in the MLflow UI or pass another --to",
            )
        who = actor or os.environ.get("GITHUB_ACTOR") or getpass.getuser()
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        for v in candidates(client, name):
            if _order(v) > _order(chosen):
                _set(client, name, str(v.version), vocab.rolled_back())
        restored = vocab.restored(by=who, at=when, reason=reason, from_version=current)
        _set(client, name, target, restored)
        last = vocab.last_rollback(current, target, by=who, at=when, reason=reason)
        set_model_tags(client, name, last)
        kind = "automatic rollback" if automatic else "rollback"
        why = history.Context(f"{kind}: {reason}", actor=who, run_url=run_url)
        champion, _ = converge(client, name, why=why)
        history.reconcile(client, name, aliases(client, name), why)
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
    return {
        "name": name,
        "alias": alias,
        "version": str(mv.version),
        "run_id": mv.run_id,
        "source": mv.source,
        **vocab.describe(mv.tags),
    }
