"""DVC: what the pipeline declares, pulling its data, data versions, reproducing it.

Everything goes through DVC's Python API in this process (a CLI call costs ~10x more).
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlci.errors import (
    ConfigError,
    RepoError,
)
from mlci.project.repository import in_dir
from mlci.settings.config import load_yaml


@dataclass(frozen=True)
class Pipeline:
    """What ``dvc.yaml`` declares: metric, params and plot files."""

    metrics: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    uncached: frozenset[str] = field(default_factory=frozenset)


def stage_entries(items: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    for item in items or []:
        if isinstance(item, str):
            yield item, {}
        elif isinstance(item, dict):
            for path, opts in item.items():
                yield str(path), dict(opts or {})


def read_pipeline(root: Path) -> Pipeline:
    path = root / "dvc.yaml"
    if not path.exists():
        raise RepoError(
            f"no dvc.yaml in {root}",
            fix="run mlci in a DVC project's directory or below it (mlci uses the nearest "
            "directory holding dvc.yaml or .dvc/), or create one (`dvc init`, then add stages)",
        )
    doc = load_yaml(path) or {}
    if not isinstance(doc, dict):
        raise ConfigError("dvc.yaml: expected a mapping", fix="see DVC's dvc.yaml reference")
    metrics: list[str] = []
    plots: list[str] = []
    params: list[str] = []
    uncached: set[str] = set()
    for name, stage in (doc.get("stages") or {}).items():
        if not isinstance(stage, dict):
            raise ConfigError(f"dvc.yaml: stage '{name}' is not a mapping", fix="fix dvc.yaml")
        wdir = str(stage.get("wdir", "."))
        for kind, bucket in (("metrics", metrics), ("plots", plots)):
            for p, opts in stage_entries(stage.get(kind)):
                rel = os.path.normpath(os.path.join(wdir, p))
                bucket.append(rel)
                if opts.get("cache") is False:
                    uncached.add(rel)
        for p, opts in stage_entries(stage.get("outs")):
            if opts.get("cache") is False:
                uncached.add(os.path.normpath(os.path.join(wdir, p)))
        for item in stage.get("params") or []:
            files = [str(k) for k in item] if isinstance(item, dict) else ["params.yaml"]
            params.extend(os.path.normpath(os.path.join(wdir, f)) for f in files)
    for p, _ in stage_entries(doc.get("metrics")):
        metrics.append(os.path.normpath(p))
    for item in doc.get("plots") or []:
        if isinstance(item, str):
            plots.append(item)
        elif isinstance(item, dict):
            plots.extend(
                str(k)
                for k in item
                if str(k).endswith((".json", ".csv", ".tsv", ".yaml", ".png", ".svg"))
            )
    for p in doc.get("params") or []:
        params.append(str(p))
    return Pipeline(
        tuple(dict.fromkeys(metrics)),
        tuple(dict.fromkeys(params)),
        tuple(dict.fromkeys(plots)),
        tuple(doc.get("stages") or ()),
        frozenset(uncached),
    )


def file_md5(path: Path) -> str:
    """DVC's hash of a file: the MD5 of its bytes."""
    import hashlib

    digest = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def base_md5(root: Path, sha: str, path: str) -> str | None:
    """The hash a DVC-tracked ``path`` had at ``sha`` (from its .dvc file or dvc.lock), read
    from git alone; None when it was not DVC-tracked there."""
    from mlci import git

    raw = git.show_in(root, sha, f"{path}.dvc")
    docs: list[tuple[str, Any]] = []
    if raw is not None:
        docs.append((os.path.dirname(path), yaml.safe_load(raw) or {}))
    else:
        lock = git.show_in(root, sha, "dvc.lock")
        stages = ((yaml.safe_load(lock) or {}).get("stages") or {}) if lock else {}
        docs += [(".", stage) for stage in stages.values()]
    for wdir, doc in docs:
        for out in doc.get("outs") or []:
            if os.path.normpath(os.path.join(wdir, str(out.get("path")))) == os.path.normpath(path):
                return str(out["md5"]) if out.get("md5") else None
    return None


def uncommitted_metrics(root: Path, pipe: Pipeline) -> list[str]:
    """Declared ``cache: false`` metrics files that a ``.gitignore`` rule keeps out of git:
    no commit ever has them, so a base never has metrics. One sentence each, naming the rule."""
    from mlci import git

    found = []
    for path in pipe.metrics:
        rule = git.ignored_by(root, path) if path in pipe.uncached else None
        if rule is not None:
            found.append(
                f"metrics file {path} is declared with cache: false but the .gitignore rule "
                f"{rule} excludes it, so no commit has it and a base never has metrics; "
                f"fix: remove that rule (or git add -f {path}) and commit the file, or "
                "drop cache: false so that DVC stores it"
            )
    return found


def state_dir(root: Path) -> Path:
    """``.mlci/`` (reports, caches, the default MLflow store), created with a ``.gitignore``
    of its own, so it never shows as untracked whatever the repository's .gitignore says."""
    state = root / ".mlci"
    state.mkdir(exist_ok=True)
    ignore = state / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# written by mlci: nothing here is committed\n*\n", encoding="utf-8")
    return state


def read_at_rev(root: Path, path: str, rev: str) -> bytes | None:
    """A DVC-tracked file's bytes at ``rev`` (from the cache or the remote), or None."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        with in_dir(root):
            data = dvc.api.read(path, repo=str(root), rev=rev, mode="rb")
    except (DvcException, FileNotFoundError, OSError):
        return None
    return bytes(data)


def read_at(root: Path, sha: str, path: str, *, uncached: Collection[str] = ()) -> bytes | None:
    """A file's bytes as they were at commit ``sha``: from git when it was committed there,
    else through DVC (cache or remote) unless it is an uncached output; None when neither has it.
    """
    from mlci import git

    found = git.show_in(root, sha, path)
    if found is None and path not in uncached:
        found = read_at_rev(root, path, sha)
    return found


# ---- train once: restore from the run-cache, push it, training records on the remote ----
