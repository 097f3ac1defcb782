"""What a PR check still reports when a stage could not finish, and facts that explain a
missing baseline. Called by ``pipeline.pr_check`` between its stages; never raises for the
report's sake (a part that cannot be computed is left out)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mlci.check.baseline import Base
from mlci.errors import MlciError
from mlci.project import data, pipeline, remote
from mlci.settings.config import Settings
from mlci.verdict import metrics


def rebuild_before_validating(
    pulled: remote.PullResult | None, validated: Mapping[str, Any]
) -> bool:
    """Whether a validated data file is among the outputs the remote lacked: ``dvc repro``
    must rebuild it before it can be validated."""
    if pulled is None:
        return False
    gone = [m.rstrip("/") for m in pulled.missing]
    return any(v == m or v.startswith(m + "/") for v in validated for m in gone)


def params_only(root: Path, settings: Settings, base: Base | None) -> metrics.Comparison | None:
    """The params diff against ``base`` alone, for a report whose metrics could not be
    computed; None when there is no base commit or the params cannot be read."""
    if base is None or base.sha is None:
        return None
    from mlci.check.compare import params_of

    try:
        at_base, here = params_of(root, settings, base)
    except (MlciError, OSError):
        return None
    return metrics.Comparison(base.label, base.sha, (), metrics.diff_params(at_base, here))


def explain_baseline(
    root: Path, comparison: metrics.Comparison | None
) -> tuple[metrics.Comparison | None, list[str]]:
    """Warnings for metrics files that a ``.gitignore`` rule keeps out of every commit; when
    the base has no metrics because of one, its "no baseline ... yet" notice is dropped (the
    warning says why instead)."""
    try:
        found = data.uncommitted_metrics(root, pipeline.require(root))
    except MlciError:
        return comparison, []
    if found and comparison is not None and not comparison.has_baseline:
        kept = tuple(n for n in comparison.notices if not n.startswith("no baseline"))
        comparison = dataclasses.replace(comparison, notices=kept)
    return comparison, found
