"""The plots of a check that was run before on the same commits and the same plot files.

Reading the plots is DVC's ``plots diff`` (its graph library, a git checkout of the base, two
indexes): about a third of a check on a PR whose pipeline did not change. What it returns is
decided by the base commit (immutable), the PR's commit (the definitions in its ``dvc.yaml``
files) and the files it read in the work tree. So a check on a clean work tree keeps the
:class:`~mlci.plots.collect.PlotSet` under ``.mlci/`` with the content hash of every work-tree
file DVC read (its plot sources, the declared paths, the images it wrote), and the next check
on the same commits reuses it only when each of those hashes is still the same.

Never reused: a work tree whose tracked files differ from its commit; another base, commit,
``plots`` setting, out directory, mlci or DVC version. The cache's name carries the clone's
secret (:func:`mlci.checks.cache.private`), so one a pull request commits is never read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlci.checks.cache import private
from mlci.errors import RepoError
from mlci.plots import collect as plots
from mlci.plots.collect import Plot, PlotSet
from mlci.settings.plots import PlotSettings

FORMAT = 1
KEEP = 16  # entries kept; the oldest go first


def collect(
    root: Path,
    base_sha: str,
    settings: PlotSettings,
    *,
    out_dir: Path,
    base_name: str = "",
    head_sha: str | None = None,
    reuse: bool = True,
) -> PlotSet:
    """:func:`mlci.plots.collect.collect`, or what it returned on the same commits and files.
    ``reuse=False`` (the pull request's own code ran in this job and could have written an
    entry): read anew, and keep what was read for the next check."""
    head = head_sha if head_sha is not None else plots.head_of(root)
    name = key(root, base_sha, settings, out_dir, base_name, head)
    kept = load(root, name) if name and reuse else None
    if kept is not None:
        return kept
    found = plots.collect(
        root, base_sha, settings, out_dir=out_dir, base_name=base_name, head_sha=head
    )
    if name:
        save(root, name, found, found.read)
    return found


def key(
    root: Path, base_sha: str, settings: PlotSettings, out: Path, base_name: str, head: str
) -> str | None:
    """The entry's name for these inputs, or None when the work tree may not reuse one."""
    from mlci import __version__, git

    try:
        if git.is_dirty(root):
            return None
        commit = git.head_sha(root)
    except RepoError:
        return None
    untracked = git.untracked(root, "dvc.yaml", ":(glob)**/dvc.yaml")
    what = [
        FORMAT,
        __version__,
        _dvc_version(),
        commit,
        base_sha,
        repr(settings),
        str(out.resolve()),
        base_name,
        head,
        {p: _fingerprint(root / p) for p in sorted(set(untracked))},  # definitions git lacks
    ]
    return hashlib.sha256(json.dumps(what, default=str).encode()).hexdigest()[:32]


def load(root: Path, name: str) -> PlotSet | None:
    """The entry ``name``, if there is one and every file it read is as it was."""
    folder = private(root, "plots-memo")
    if folder is None:
        return None
    try:
        entry = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
        read = entry["read"]
        if any(_fingerprint(Path(p)) != fp for p, fp in read.items()):
            return None
        return _plotset(entry["plots"])
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def save(root: Path, name: str, found: PlotSet, read: Iterable[Path]) -> None:
    """Keep ``found`` as entry ``name``, with the hash of every work-tree file it came from."""
    from mlci.project.data import state_dir

    folder = private(root, "plots-memo")
    if folder is None:
        return
    state_dir(root)
    paths = {str(p.resolve()) for p in read}
    paths |= {str(Path(i).resolve()) for plot in found.plots for i in plot.images.values()}
    entry = {"read": {p: _fingerprint(Path(p)) for p in sorted(paths)}, "plots": _json(found)}
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.{os.getpid()}"
    try:
        tmp.write_text(json.dumps(entry, default=str), encoding="utf-8")
        tmp.replace(folder / f"{name}.json")
    except (OSError, ValueError, TypeError):
        tmp.unlink(missing_ok=True)
        return
    kept = sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in kept[KEEP:]:
        old.unlink(missing_ok=True)


def _fingerprint(path: Path) -> Any:
    """A file's hash, a folder's listing, or None where nothing is."""
    try:
        if path.is_symlink() or path.is_file():
            return hashlib.sha256(path.read_bytes()).hexdigest()
        if path.is_dir():  # its listing (the files in it are fingerprinted one by one)
            return sorted(os.listdir(path))
    except OSError:
        return "unreadable"
    return None


def _dvc_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dvc")
    except PackageNotFoundError:
        return "?"


def _json(found: PlotSet) -> dict[str, Any]:
    """The entry's plots (paths as strings when dumped; ``read`` is the entry's own record)."""
    return {k: v for k, v in dataclasses.asdict(found).items() if k != "read"}


def _plotset(raw: Mapping[str, Any]) -> PlotSet:
    plots = tuple(
        Plot(
            id=str(p["id"]),
            kind=str(p["kind"]),
            template=str(p["template"]),
            title=str(p["title"]),
            x=str(p["x"]),
            y=str(p["y"]),
            x_label=str(p["x_label"]),
            y_label=str(p["y_label"]),
            datapoints=tuple(p["datapoints"]),
            spec=p["spec"],
            images={str(k): Path(v) for k, v in p["images"].items()},
            json=list(p["json"]),
            notes=tuple(p["notes"]),
            problem=p["problem"],
        )
        for p in raw["plots"]
    )
    out = raw["out_dir"]
    return PlotSet(
        base=str(raw["base"]),
        plots=plots,
        hidden=tuple(raw["hidden"]),
        errors=tuple(raw["errors"]),
        out_dir=None if out is None else Path(out),
        base_name=str(raw["base_name"]),
        head_sha=str(raw["head_sha"]),
    )
