"""The hashes DVC wrote: each stage's ``dvc.lock`` entry and each ``.dvc`` file's outputs.

They are read as files: DVC writes them already resolved (no templating), each stage under its
own name (``featurize@train``) in the ``dvc.lock`` beside the ``dvc.yaml`` that declares it,
paths relative to the stage's ``wdir``; which stage and which file come from the project as DVC
resolves it (:mod:`mlci.project.pipeline`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from mlci.errors import ConfigError
from mlci.project import yamlread
from mlci.project.pipeline import Project, posix


def lock_entries(root: Path, project: Project) -> dict[str, dict[str, Any]]:
    """Each stage's ``dvc.lock`` entry, by stage name (none for a stage that never ran)."""
    docs: dict[str, Mapping[str, Any]] = {}
    out: dict[str, dict[str, Any]] = {}
    for stage in project.stages:
        if stage.lock_file not in docs:
            docs[stage.lock_file] = _lock_stages(root, stage.lock_file)
        entry = docs[stage.lock_file].get(stage.lock_name)
        if isinstance(entry, dict):
            out[stage.name] = entry
    return out


def _lock_stages(root: Path, name: str) -> Mapping[str, Any]:
    path = root / name
    if not path.is_file():
        return {}
    try:
        doc = yamlread.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        raise ConfigError(
            f"{name} is not valid YAML", fix="run `dvc repro` to rewrite it"
        ) from None
    stages = doc.get("stages") if isinstance(doc, dict) else None
    return stages if isinstance(stages, dict) else {}


def source_outs(root: Path, project: Project) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every output a ``.dvc`` file records: its path (relative to the project root) and the
    entry DVC wrote (``md5``, ``size``, ``nfiles``)."""
    for source in project.sources:
        try:
            doc = yamlread.safe_load((root / source.dvcfile).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            continue
        base = os.path.dirname(source.dvcfile)
        outs = doc.get("outs") if isinstance(doc, dict) else None
        for out in outs or []:
            if isinstance(out, dict) and out.get("path"):
                yield posix(os.path.join(base, str(out["path"]))), out
