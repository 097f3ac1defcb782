"""Lineage: what a training consumed and produced, read from ``dvc.lock`` after the run.

Every hash comes from the ``dvc.lock`` files that ``dvc repro`` wrote (or restored from the
run-cache), never from the files pulled before it, and is split into data, models, metrics,
plots and code by what the project declares as DVC resolves it (:mod:`mlci.project.pipeline`:
``artifacts:`` types, stage ``metrics:``/``plots:``, outputs, ``foreach`` entries and
templated paths included).

A training is identified by its content: the training stage's ``dvc.lock`` entry without its
outputs' hashes (command, dependency and params hashes), hashed the way DVC keys its run-cache,
so the same inputs give the same key on any commit (merge, squash or rebase).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from mlci.project import locks, pipeline
from mlci.project.pipeline import Project, within

GROUPS = ("data", "models", "metrics", "plots", "code")
CODE_SUFFIXES = frozenset(
    {".py", ".ipynb", ".r", ".jl", ".sh", ".sql", ".toml", ".cfg", ".ini", ".js", ".ts", ".scala"}
)


@dataclass(frozen=True)
class Artifact:
    path: str
    md5: str
    group: str


@dataclass(frozen=True)
class Lineage:
    """The hashes of one pipeline state, grouped; and the training stage's key."""

    artifacts: tuple[Artifact, ...] = ()
    stage: str | None = None
    key: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)

    def group(self, name: str) -> tuple[Artifact, ...]:
        return tuple(a for a in self.artifacts if a.group == name)

    def as_dict(self) -> dict[str, Any]:
        groups = {g: {a.path: a.md5 for a in self.group(g)} for g in GROUPS}
        return {"stage": self.stage, "key": self.key, **{g: v for g, v in groups.items() if v}}


def stage_key(entry: Mapping[str, Any]) -> str:
    """DVC's run-cache key of a ``dvc.lock`` stage entry: its sha256 with outputs reduced to
    their paths and sizes dropped (``dvc.stage.cache._get_stage_hash``)."""
    cache = copy.deepcopy(dict(entry))
    cache["outs"] = [o["path"] for o in cache.get("outs", []) if isinstance(o, dict)]

    def strip(d: Any) -> Any:
        if isinstance(d, list):
            return [strip(e) for e in d]
        if isinstance(d, dict):
            return {k: strip(v) for k, v in d.items() if k not in ("size", "nfiles")}
        return d

    text = json.dumps(strip(cache), sort_keys=True).encode("utf-8")
    return hashlib.sha256(text).hexdigest()


def _group(path: str, project: Project, models: list[str], is_out: bool) -> str:
    if any(within(path, m) for m in models):
        return "models"
    # a file declared so, or an output directory holding one (DVCLive's ``dvclive/``)
    if any(within(m, path) for m in project.metrics):
        return "metrics"
    if any(within(p, path) for p in project.plots):
        return "plots"
    if not is_out and PurePosixPath(path).suffix.lower() in CODE_SUFFIXES:
        return "code"
    return "data"


def read(root: Path, model: str | None = None, project: Project | None = None) -> Lineage:
    """The lineage of the work tree's ``dvc.lock`` files (and ``.dvc`` sources); ``model`` is
    the declared model path, whose producing stage is the training stage that names the key."""
    project = project or pipeline.read(root)
    models = [*project.models(), *([model] if model else [])]
    found: dict[str, Artifact] = {}
    produced = {o for s in project.stages for o in s.paths}
    locked = locks.lock_entries(root, project)
    for stage in project.stages:
        entry = locked.get(stage.name) or {}
        for is_out, items in ((True, entry.get("outs")), (False, entry.get("deps"))):
            for item in items or []:
                path = stage.rel(str(item.get("path", "")))
                md5 = item.get("md5")
                if not md5 or (not is_out and any(within(path, o) for o in produced)):
                    continue
                group = _group(path, project, models, is_out)
                found.setdefault(path, Artifact(path, str(md5), group))
    for path, out in locks.source_outs(root, project):
        if out.get("md5"):
            found[path] = Artifact(path, str(out["md5"]), _group(path, project, models, True))
    trainer = training_stage(project, models)
    trained = locked.get(trainer) if trainer else None
    return Lineage(
        tuple(sorted(found.values(), key=lambda a: (GROUPS.index(a.group), a.path))),
        trainer if trained else None,
        stage_key(trained) if trained else None,
        _params(trained),
    )


def training_stage(project: Project, models: list[str]) -> str | None:
    """The stage that produces the model (the first declared model with a producer)."""
    for m in models:
        stage = project.producer(m)
        if stage is not None:
            return stage.name
    return None


def _params(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    from mlci.verdict.metrics import flatten

    out: dict[str, Any] = {}
    for file, values in ((entry or {}).get("params") or {}).items():
        flat = flatten(values) if isinstance(values, dict) else {}
        prefix = "" if file == "params.yaml" else f"{file}:"
        out.update({f"{prefix}{k}": v for k, v in flat.items()})
    return out
