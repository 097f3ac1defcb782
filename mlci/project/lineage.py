"""Lineage: what a training consumed and produced, read from ``dvc.lock`` after the run.

Every hash comes from the ``dvc.lock`` that ``dvc repro`` wrote (or restored from the run-cache),
never from the files pulled before it, and is split into data, models, metrics, plots and code
by what ``dvc.yaml`` declares (``artifacts:`` types, stage ``metrics:``/``plots:``, outputs).

A training is identified by its content: the training stage's ``dvc.lock`` entry without its
outputs' hashes (command, dependency and params hashes), hashed the way DVC keys its run-cache,
so the same inputs give the same key on any commit (merge, squash or rebase). Pure: reads
files, imports nothing heavy.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from mlci.errors import ConfigError
from mlci.project.data import stage_entries
from mlci.settings.config import load_yaml

GROUPS = ("data", "models", "metrics", "plots", "code")
CODE_SUFFIXES = frozenset(
    {".py", ".ipynb", ".r", ".jl", ".sh", ".sql", ".toml", ".cfg", ".ini", ".js", ".ts", ".scala"}
)
KEY_TAG = "training_key"  # MLflow tag (with mlci.'s prefix) that names a training by content


@dataclass(frozen=True)
class Stage:
    """One ``dvc.yaml`` stage: its outputs, metrics and plots, relative to the project."""

    name: str
    cmd: str
    outs: tuple[str, ...] = ()
    cached_outs: tuple[str, ...] = ()
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()


@dataclass(frozen=True)
class Declared:
    """What ``dvc.yaml`` declares about outputs: stages and ``artifacts:`` by type."""

    stages: tuple[Stage, ...] = ()
    artifacts: Mapping[str, tuple[str, str]] = field(default_factory=dict)  # name -> (path, type)
    metrics: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()

    def producer(self, path: str) -> Stage | None:
        """The stage whose output is ``path`` or a directory holding it."""
        for stage in self.stages:
            if any(_within(path, out) for out in stage.outs):
                return stage
        return None

    def models(self) -> list[str]:
        return [p for p, kind in self.artifacts.values() if kind == "model"]


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

    def tags(self) -> dict[str, str]:
        """MLflow tags (without mlci.'s prefix): ``lineage.<group>.<path>`` -> md5, the key."""
        out = {f"lineage.{a.group}.{a.path}": a.md5 for a in self.artifacts}
        if self.key:
            out[KEY_TAG] = self.key
        if self.stage:
            out["training_stage"] = self.stage
        return out

    def as_dict(self) -> dict[str, Any]:
        groups = {g: {a.path: a.md5 for a in self.group(g)} for g in GROUPS}
        return {"stage": self.stage, "key": self.key, **{g: v for g, v in groups.items() if v}}


def _within(path: str, out: str) -> bool:
    p, o = PurePosixPath(os.path.normpath(path)), PurePosixPath(os.path.normpath(out))
    return p == o or o in p.parents


def _rel(wdir: str, path: str) -> str:
    return os.path.normpath(os.path.join(wdir, path)).replace(os.sep, "/")


def declared(root: Path) -> Declared:
    """Read ``dvc.yaml``'s stages, ``artifacts:``, top-level metrics and plots."""
    path = root / "dvc.yaml"
    doc = load_yaml(path) if path.is_file() else {}
    if not isinstance(doc, dict):
        raise ConfigError("dvc.yaml: expected a mapping", fix="see DVC's dvc.yaml reference")
    stages = []
    for name, st in (doc.get("stages") or {}).items():
        if not isinstance(st, dict) or "foreach" in st or "matrix" in st:
            continue
        wdir = str(st.get("wdir", "."))
        outs: list[str] = []
        cached: list[str] = []
        metrics: list[str] = []
        plots: list[str] = []
        for kind, bucket in (("outs", outs), ("metrics", metrics), ("plots", plots)):
            for p, opts in stage_entries(st.get(kind)):
                bucket.append(_rel(wdir, p))
                if kind == "outs" and opts.get("cache", True) is not False:
                    cached.append(_rel(wdir, p))
        cmd = st.get("cmd")
        text = " && ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd or "")
        stages.append(
            Stage(
                str(name),
                text,
                tuple(outs + metrics + plots),
                tuple(cached),
                *map(tuple, (metrics, plots)),
            )
        )
    artifacts: dict[str, tuple[str, str]] = {}
    for name, art in (doc.get("artifacts") or {}).items():
        if isinstance(art, dict) and art.get("path"):
            artifacts[str(name)] = (_rel(".", str(art["path"])), str(art.get("type") or ""))
    top_plots = [
        str(k)
        for item in doc.get("plots") or []
        for k in ([item] if isinstance(item, str) else item if isinstance(item, dict) else [])
    ]
    return Declared(
        tuple(stages),
        artifacts,
        tuple(_rel(".", p) for p, _ in stage_entries(doc.get("metrics"))),
        tuple(_rel(".", p) for p in top_plots),
    )


def lock_stages(root: Path) -> dict[str, Any]:
    """``dvc.lock``'s stage entries (empty when the pipeline never ran)."""
    lock = root / "dvc.lock"
    if not lock.is_file():
        return {}
    try:
        doc = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise ConfigError(
            "dvc.lock is not valid YAML", fix="run `dvc repro` to rewrite it"
        ) from None
    stages = doc.get("stages") if isinstance(doc, dict) else None
    return dict(stages) if isinstance(stages, dict) else {}


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


def _group(path: str, decl: Declared, models: list[str], is_out: bool) -> str:
    if any(_within(path, m) for m in models):
        return "models"
    stage_metrics = [m for s in decl.stages for m in s.metrics]
    stage_plots = [p for s in decl.stages for p in s.plots]
    if path in stage_metrics or path in decl.metrics:
        return "metrics"
    if path in stage_plots or path in decl.plots:
        return "plots"
    if not is_out and PurePosixPath(path).suffix.lower() in CODE_SUFFIXES:
        return "code"
    return "data"


def read(root: Path, model: str | None = None, decl: Declared | None = None) -> Lineage:
    """The lineage of the work tree's ``dvc.lock`` (and ``*.dvc`` sources); ``model`` is the
    declared model path, whose producing stage is the training stage that names the key."""
    decl = decl or declared(root)
    models = [*decl.models(), *([model] if model else [])]
    wdirs = {s.name: "." for s in decl.stages}
    found: dict[str, Artifact] = {}
    produced = {o for s in decl.stages for o in s.outs}
    locked = lock_stages(root)
    for name, entry in locked.items():
        wdir = wdirs.get(str(name), ".")
        for is_out, items in ((True, entry.get("outs")), (False, entry.get("deps"))):
            for item in items or []:
                path = _rel(wdir, str(item.get("path", "")))
                md5 = item.get("md5")
                if not md5 or (not is_out and any(_within(path, o) for o in produced)):
                    continue
                found.setdefault(path, Artifact(path, str(md5), _group(path, decl, models, is_out)))
    for dvc_file in sorted(root.rglob("*.dvc")):
        rel = dvc_file.relative_to(root)
        if ".dvc" in rel.parts[:-1] or ".mlci" in rel.parts or not dvc_file.is_file():
            continue
        doc = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
        for out in doc.get("outs") or []:
            if isinstance(out, dict) and out.get("md5"):
                path = _rel(str(rel.parent), str(out.get("path")))
                found[path] = Artifact(path, str(out["md5"]), _group(path, decl, models, True))
    stage = training_stage(decl, models)
    entry = locked.get(stage) if stage else None
    return Lineage(
        tuple(sorted(found.values(), key=lambda a: (GROUPS.index(a.group), a.path))),
        stage if entry else None,
        stage_key(entry) if entry else None,
        _params(entry),
    )


def training_stage(decl: Declared, models: list[str]) -> str | None:
    """The stage that produces the model (the first declared model with a producer)."""
    for m in models:
        stage = decl.producer(m)
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
