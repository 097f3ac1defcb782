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
from mlci.registry import runs
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


def requested(settings: Settings, ctx: CIContext, flag: str | None = None) -> str:
    """The base the user asked for: flag, else setting, else the PR's base branch, else main."""
    return flag or settings.base or ctx.base_ref or "main"


def resolve(root: Path, settings: Settings, rev: str) -> Base:
    """Resolve ``rev`` once (fetching a missing base branch in a shallow CI clone)."""
    if rev.startswith("@"):
        return _from_registry(root, settings, rev[1:])
    return Base(label=rev, sha=git.resolve_base(root, rev))


def _from_registry(root: Path, settings: Settings, alias: str) -> Base:
    from mlci.registry import models as registry
    from mlci.registry import tags as vocab

    name = settings.model_name
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
