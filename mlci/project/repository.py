"""The DVC repository: opening it (stale locks of killed runs cleared), one lifecycle for it,
the directory DVC resolves targets against, and DVC's own error lines."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlci.errors import RepoError, RepoLocked
from mlci.project import yamlread


@contextlib.contextmanager
def in_dir(path: Path) -> Iterator[None]:
    """DVC resolves relative targets against the current directory, not the repo."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


@contextlib.contextmanager
def dvc_errors() -> Iterator[list[str]]:
    """Collect DVC's logged errors (the real cause of a failed download) instead of letting
    DVC print them, so the user sees one line that names the cause."""
    import logging

    logged: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.ERROR:
                text = record.getMessage().strip()
                if record.exc_info and record.exc_info[1] is not None:
                    text += f" - {record.exc_info[1]}"
                logged.append(text)

    loggers = [logging.getLogger(n) for n in ("dvc", "dvc_data", "dvc_objects")]
    handler = Collect()
    saved = [(h, h.level) for lg in loggers for h in lg.handlers]
    for h, _ in saved:
        h.setLevel(logging.CRITICAL)
    for lg in loggers:
        lg.addHandler(handler)
    try:
        yield logged
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
        for h, level in saved:
            h.setLevel(level)


def open_repo(root: Path) -> Any:
    """DVC's ``Repo`` at ``root``, with the lock entries of dead processes dropped."""
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    yamlread.install()  # each YAML text DVC reads is parsed once per process

    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise RepoError(
            f"{root} is not a DVC repository", fix="run `dvc init` and commit .dvc/"
        ) from None
    clear_stale_locks(repo)
    return repo


@contextlib.contextmanager
def opened(root: Path, repo: Any | None = None) -> Iterator[Any]:
    """``repo`` when the caller has one open, else a ``Repo`` opened here and closed after."""
    if repo is not None:
        yield repo
        return
    own = open_repo(root)
    try:
        yield own
    finally:
        own.close()


def clear_stale_locks(repo: Any) -> list[dict[str, Any]]:
    """Drop the entries of DVC's ``.dvc/tmp/rwlock`` whose process is gone; returns them.

    DVC drops an entry whose PID is free, but not one whose PID a new process reuses
    (containers start PIDs low again, so a killed run's PID is often taken) or a zombie's:
    the next run then fails on a lock nobody holds.
    """
    import json

    from dvc.lock import LockError, make_lock

    tmp = repo.tmp_dir
    path = Path(tmp or ".") / "rwlock"
    if not tmp or not path.is_file():
        return []
    written = path.stat().st_mtime
    hardlink = bool(repo.config["core"].get("hardlink_lock", False))
    guard = make_lock(os.path.join(tmp, "rwlock.lock"), tmp_dir=tmp, hardlink_lock=hardlink)
    try:
        guard.lock()
    except LockError:
        return []  # someone is editing it right now: DVC decides
    removed: list[dict[str, Any]] = []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        for mode in ("read", "write"):
            table = doc.get(mode) or {}
            for out in list(table):
                owners = table[out] if isinstance(table[out], list) else [table[out]]
                live = [o for o in owners if _owner_alive(int(o["pid"]), written)]
                removed += [o for o in owners if o not in live and o not in removed]
                if not live:
                    del table[out]
                elif mode == "read":
                    table[out] = live
        if removed:
            path.write_text(json.dumps(doc), encoding="utf-8")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []  # DVC reports a broken rwlock file itself
    finally:
        guard.unlock()
    return removed


def _owner_alive(pid: int, written: float) -> bool:
    """Whether the process that wrote a lock entry (before ``written``) still runs."""
    import psutil

    if pid == os.getpid():
        return False  # this process holds no lock yet: the entry is a dead run's
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(proc.create_time() <= written + 1.0)  # else: a new process, same PID
    except psutil.Error:
        return False


def locked_error(root: Path, exc: Exception) -> RepoLocked:
    """DVC's LockError as one line naming the lock file and the way out."""
    text = str(exc)
    tmp = root / ".dvc" / "tmp"
    if "is busy" in text:
        owners = ", ".join(ln.strip() for ln in text.splitlines() if ln.strip().startswith("(PID"))
        return RepoLocked(
            f"DVC's {tmp / 'rwlock'} says another process uses this pipeline's files: {owners}",
            fix="wait for that process to finish or stop it (if it is no DVC process, "
            "delete .dvc/tmp/rwlock), then re-run",
        )
    return RepoLocked(
        f"another DVC process holds {tmp / 'lock'}",
        fix="wait for it to finish or stop it (if none runs, e.g. after a killed run with "
        "core.hardlink_lock, delete .dvc/tmp/lock), then re-run",
    )
