"""The compare stage's I/O: the PR's metrics and params (work tree) against the base's, read
without a checkout. The judging itself is :func:`mlci.verdict.metrics.compare` (pure)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlci.check.baseline import Base
from mlci.errors import ConfigError
from mlci.project import data, pipeline
from mlci.settings.config import Settings
from mlci.verdict import metrics

Read = Callable[[str], bytes | None]


def _at(root: Path, sha: str, pipe: pipeline.Project) -> Read:
    def read(path: str) -> bytes | None:
        return data.read_at(root, sha, path, uncached=pipe.uncached)

    return read


def _params(paths: tuple[str, ...], read: Read, own: str = "params.yaml") -> dict[str, Any]:
    """The params of ``paths``, flattened; mlci's own ``mlci:`` section of ``own`` (the
    settings file) is no model param and is left out."""
    out: dict[str, Any] = {}
    for path in dict.fromkeys(paths):
        raw = read(path)
        if raw is not None:
            prefix = "" if path == "params.yaml" else f"{path}:"
            found = metrics.parse(raw, path).items()
            skip = "mlci." if path == own else None
            out.update({prefix + k: v for k, v in found if not (skip and k.startswith(skip))})
    return out


def compare_with_base(root: Path, settings: Settings, base: Base) -> metrics.Comparison:
    """Head metrics/params against ``base``: a registered model's run metrics, or the metrics
    files at the base commit; params always from the base commit when there is one."""
    pipe = pipeline.require(root)
    head = metrics.load_files(pipe.metrics, metrics.read_worktree(root))
    if head is None:
        raise ConfigError(
            f"no metrics on the PR: none of {', '.join(pipe.metrics) or 'no files'} exist",
            fix="declare metrics in dvc.yaml and run `dvc repro` (or `mlci run`)",
        )
    if base.from_registry:
        base_metrics = base.metrics
    elif base.sha is None:  # a push of the first commit: nothing before it, no baseline
        base_metrics = None
    else:
        base_metrics = metrics.load_files(pipe.metrics, _at(root, base.sha, pipe))
    base_params, head_params = params_of(root, settings, base, pipe)
    return metrics.compare(
        base_metrics,
        head,
        settings.gates,
        base_rev=base.label,
        base_sha=base.sha,
        base_params=base_params,
        head_params=head_params,
    )


def params_of(
    root: Path, settings: Settings, base: Base, pipe: pipeline.Project | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The params the stages use (every params file of ``dvc.yaml``, else the settings' file),
    at the base commit (empty without one) and in the work tree."""
    pipe = pipe or pipeline.require(root)
    files = pipe.params or (
        (settings.params_file,) if (root / settings.params_file).exists() else ()
    )
    own = settings.params_file
    at_base = _params(files, _at(root, base.sha, pipe), own) if base.sha else {}
    return at_base, _params(files, metrics.read_worktree(root), own)
