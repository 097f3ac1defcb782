"""MLflow runs that mlci tags or records itself (a training's key and lineage)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def track_run(
    uri: str,
    *,
    root: str,
    experiment: str,
    own: str | None,
    tags: dict[str, Any],
    name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
) -> str:
    """Tag the run ``own`` when this store has it, else record a run with the tags, params and
    metrics (the MLflow half of tagging a training with its key and lineage); its id."""
    from mlci.registry import models as registry
    from mlci.registry import tracking

    tracking.configure(uri)
    if own is not None and registry.get_run(uri, own) is not None:
        tracking.tag_run(own, tags, uri)
        return own
    exp = tracking.ensure_experiment(experiment, uri, Path(root))
    return tracking.record_run(exp, uri, name, {**tags, "recorded": "true"}, params, metrics)
