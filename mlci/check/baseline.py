"""What a PR is compared with, resolved once: a git revision, or ``@ALIAS`` for the model
version a registry alias points at (its run's metrics, and its commit when git has it).

Every stage that needs the base (drift, compare, the report) receives this value; none parses
the ``--base`` string again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci import git
from mlci.ci import CIContext
from mlci.errors import MlciError
from mlci.registry import runs, tracking
from mlci.settings.config import Settings


@dataclass(frozen=True)
class Base:
    """The baseline of a comparison.

    ``sha`` is the commit whose files (params, data, metrics files) are read; ``metrics`` is set
    when the base is a registered model (its run's metrics), else the metrics files at ``sha``
    are read.
    """

    label: str
    sha: str | None
    metrics: dict[str, Any] | None = None
    from_registry: bool = False


def choose(root: Path, settings: Settings, ctx: CIContext, flag: str | None = None) -> Base:
    """The base of this check: ``--base``, else ``mlci.base``, else the PR's base branch; on a
    push to the promotion branch, what is deployed (``@champion``; with no champion yet, or a
    registry that cannot be read, the first parent); else main."""
    explicit = flag or settings.base or ctx.base_ref
    if explicit:
        return resolve(root, settings, explicit)
    if after_merge(settings, ctx):
        return deployed(root, settings)
    return resolve(root, settings, "main")


def after_merge(settings: Settings, ctx: CIContext) -> bool:
    """A push to the branch models are promoted from (``mlci.promote_branch``, else the
    repository's default branch): comparing it with itself would prove nothing."""
    if ctx.event_name != "push" or not (ctx.ref or "").startswith("refs/heads/"):
        return False
    branch = (ctx.ref or "").removeprefix("refs/heads/")
    return branch == (settings.promote_branch or ctx.default_branch or "main")


def deployed(root: Path, settings: Settings) -> Base:
    """What a merged change must beat: the champion, else the commit before the merge."""
    why = "no champion yet"
    try:
        champion = _from_registry(root, settings, "champion")
    except MlciError as exc:  # the check still runs; the label says why it is the parent
        champion, why = None, f"the registry could not be read: {exc.one_line()}"
    if champion is not None and champion.metrics is not None:
        return champion
    parent = git.first_parent(root)
    if parent is None:
        return Base(label=f"no earlier commit ({why})", sha=None)
    return Base(label=f"first parent {parent[:7]} ({why})", sha=parent)


def resolve(root: Path, settings: Settings, rev: str) -> Base:
    """Resolve ``rev`` once (fetching a missing base branch in a shallow CI clone)."""
    if rev.startswith("@"):
        return _from_registry(root, settings, rev[1:])
    return Base(label=rev, sha=git.resolve_base(root, rev))


def _from_registry(root: Path, settings: Settings, alias: str) -> Base:
    from mlci.registry import models as registry
    from mlci.registry import tags as vocab

    name = settings.model_name
    if tracking.store_absent(settings.tracking_uri):  # no store, no alias: MLflow not opened
        return Base(label=f"{name}@{alias}", sha=None, from_registry=True)
    version = registry.alias_version(settings.tracking_uri, name, alias)
    if version is None:
        return Base(label=f"{name}@{alias}", sha=None, from_registry=True)
    found = runs.run_metrics(settings.tracking_uri, version.run_id)
    sha = vocab.git_sha(version.tags)
    return Base(
        label=f"{name}@{alias} (v{version.version})",
        sha=sha if sha and git.fetch_commit(root, sha) else None,
        metrics=found,
        from_registry=True,
    )
