"""DVC data: hashes at a commit, files at a revision (git or the DVC cache/remote), and
``.mlci/``. What the pipeline declares is :mod:`mlci.project.pipeline`.

Everything goes through DVC's Python API in this process (a CLI call costs ~10x more).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path
from typing import Any

from mlci.errors import MlciError
from mlci.project import yamlread
from mlci.project.pipeline import Project
from mlci.project.repository import in_dir


def file_md5(path: Path) -> str:
    """DVC's hash of a file: the MD5 of its bytes."""
    import hashlib

    digest = hashlib.md5()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def base_md5(root: Path, sha: str, path: str) -> str | None:
    """The hash a DVC-tracked ``path`` had at ``sha``, read from git alone: from its ``.dvc``
    file, else from the ``dvc.lock`` entry of the stage that produces it (which stage, which
    ``dvc.lock`` and which ``wdir``: the work tree's declarations as DVC resolves them; a lock
    file is written resolved). None when it was not DVC-tracked there."""
    from mlci import git
    from mlci.project import pipeline

    raw = git.show_in(root, sha, f"{path}.dvc")
    docs: list[tuple[str, Any]] = []
    if raw is not None:
        docs.append((os.path.dirname(path), yamlread.safe_load(raw) or {}))
    else:
        try:
            stage = pipeline.read(root).producer(path)
        except MlciError:
            stage = None
        lock_file = stage.lock_file if stage is not None else "dvc.lock"
        lock = git.show_in(root, sha, lock_file)
        stages = ((yamlread.safe_load(lock) or {}).get("stages") or {}) if lock else {}
        if stage is not None:
            docs.append((stage.wdir, stages.get(stage.lock_name) or {}))
        else:
            docs += [(".", entry) for entry in stages.values()]
    target = pipeline.posix(path)
    for wdir, doc in docs:
        for out in doc.get("outs") or []:
            if pipeline.posix(os.path.join(wdir, str(out.get("path")))) == target:
                return str(out["md5"]) if out.get("md5") else None
    return None


def uncommitted_metrics(root: Path, project: Project) -> list[str]:
    """Declared ``cache: false`` metrics files that a ``.gitignore`` rule keeps out of git:
    no commit ever has them, so a base never has metrics. One sentence each, naming the rule."""
    from mlci import git

    found = []
    for path in project.metrics:
        rule = git.ignored_by(root, path) if path in project.uncached else None
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
