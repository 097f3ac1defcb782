"""DVC: what the pipeline declares, pulling its data, data versions, reproducing it.

Everything goes through DVC's Python API in this process (a CLI call costs ~10x more).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlci import signals
from mlci.config import load_yaml
from mlci.errors import (
    STAGE_ERROR_ENV,
    ConfigError,
    DvcRemoteError,
    MlciError,
    RepoError,
    RepoLocked,
    StageError,
    load_from_child,
)


@dataclass(frozen=True)
class DataVersion:
    path: str
    md5: str
    size: int | None = None
    nfiles: int | None = None


@dataclass(frozen=True)
class PullResult:
    remote: str
    url: str
    files: int
    versions: tuple[DataVersion, ...] = ()


@dataclass(frozen=True)
class Pipeline:
    """What ``dvc.yaml`` declares: metric, params and plot files."""

    metrics: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    plots: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    uncached: frozenset[str] = field(default_factory=frozenset)


def _entries(items: Any) -> Iterator[tuple[str, dict[str, Any]]]:
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
            fix="run mlci in the root of a DVC project (`dvc init`, then add stages)",
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
            for p, opts in _entries(stage.get(kind)):
                rel = os.path.normpath(os.path.join(wdir, p))
                bucket.append(rel)
                if opts.get("cache") is False:
                    uncached.add(rel)
        for p, opts in _entries(stage.get("outs")):
            if opts.get("cache") is False:
                uncached.add(os.path.normpath(os.path.join(wdir, p)))
        for item in stage.get("params") or []:
            files = [str(k) for k in item] if isinstance(item, dict) else ["params.yaml"]
            params.extend(os.path.normpath(os.path.join(wdir, f)) for f in files)
    for p, _ in _entries(doc.get("metrics")):
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


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    """DVC resolves relative targets against the current directory, not the repo."""
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def open_repo(root: Path) -> Any:
    os.environ.setdefault("DVC_NO_ANALYTICS", "1")
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise RepoError(
            f"{root} is not a DVC repository", fix="run `dvc init` and commit .dvc/"
        ) from None
    clear_stale_locks(repo)
    return repo


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


def remote_info(repo: Any, name: str | None) -> tuple[str, str]:
    """The remote's name and URL; a clear error when none is configured."""
    core = repo.config.get("core", {})
    remotes = repo.config.get("remote", {})
    chosen = name or core.get("remote")
    if not chosen:
        raise DvcRemoteError(
            "no DVC remote is configured",
            fix="`dvc remote add -d storage <url>` and commit .dvc/config, or set MLCI_DVC_REMOTE",
        )
    if chosen not in remotes:
        known = ", ".join(sorted(remotes)) or "none"
        raise DvcRemoteError(
            f"DVC remote '{chosen}' is not defined (known: {known})",
            fix=f"`dvc remote add {chosen} <url>` or pick another remote",
        )
    return str(chosen), str(remotes[chosen].get("url", ""))


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

    raw = git.show(root, sha, f"{path}.dvc")
    docs: list[tuple[str, Any]] = []
    if raw is not None:
        docs.append((os.path.dirname(path), yaml.safe_load(raw) or {}))
    else:
        lock = git.show(root, sha, "dvc.lock")
        stages = ((yaml.safe_load(lock) or {}).get("stages") or {}) if lock else {}
        docs += [(".", stage) for stage in stages.values()]
    for wdir, doc in docs:
        for out in doc.get("outs") or []:
            if os.path.normpath(os.path.join(wdir, str(out.get("path")))) == os.path.normpath(path):
                return str(out["md5"]) if out.get("md5") else None
    return None


def data_versions(root: Path) -> tuple[DataVersion, ...]:
    """Every cached output and data source in ``dvc.lock`` and ``*.dvc`` files, by hash."""
    found: dict[str, DataVersion] = {}
    lock = root / "dvc.lock"
    docs: list[tuple[str, list[Any]]] = []
    if lock.exists():
        data = yaml.safe_load(lock.read_text(encoding="utf-8")) or {}
        for stage in (data.get("stages") or {}).values():
            docs.append((".", list(stage.get("outs") or [])))
    for dvc_file in root.rglob("*.dvc"):
        if ".dvc" in dvc_file.relative_to(root).parts[:-1] or not dvc_file.is_file():
            continue
        data = yaml.safe_load(dvc_file.read_text(encoding="utf-8")) or {}
        docs.append((str(dvc_file.parent.relative_to(root)), list(data.get("outs") or [])))
    for wdir, outs in docs:
        for out in outs:
            md5 = out.get("md5")
            if not md5:
                continue
            path = os.path.normpath(os.path.join(wdir, str(out["path"])))
            found[path] = DataVersion(path, str(md5), out.get("size"), out.get("nfiles"))
    return tuple(sorted(found.values(), key=lambda v: v.path))


def pull(root: Path, remote: str | None = None, repo: Any | None = None) -> PullResult:
    """``dvc pull`` for everything the pipeline needs; names the remote and the versions.

    Pass an open ``repo`` to share it with later steps (it is then left open).
    """
    from dvc.exceptions import CheckoutError, DownloadError
    from dvc.lock import LockError

    own = repo is None
    repo = repo if repo is not None else open_repo(root)
    try:
        name, url = remote_info(repo, remote)
        if "://" not in url and not os.path.isabs(url) and url:
            url = os.path.normpath(os.path.join(root, ".dvc", url))
        if "://" not in url and not Path(url).is_dir():
            raise DvcRemoteError(
                f"DVC remote '{name}' is unreachable: directory {url} does not exist",
                fix=f"`dvc remote modify {name} url <path>` or create and `dvc push` to it",
            )
        try:
            with _cwd(root), _dvc_errors() as logged:
                stats = repo.pull(remote=name)
        except (DownloadError, CheckoutError) as exc:
            cause = " ".join(logged)
            if cause and "missing" not in cause.lower():
                raise DvcRemoteError(
                    f"dvc pull from '{name}' ({url}) failed: {cause[:300]}",
                    fix=remote_fix(name, url, Exception(cause)),
                ) from None
            missing = _missing_paths(exc)
            raise DvcRemoteError(
                f"DVC remote '{name}' ({url}) lacks data for {missing}",
                fix="run `dvc push` where the data was produced, then re-run",
            ) from None
        except ImportError as exc:
            scheme = url.split("://", 1)[0]
            raise DvcRemoteError(
                f"DVC remote '{name}' ({url}) needs a plugin that is not installed: {exc}",
                fix=f"pip install 'dvc[{scheme}]'",
            ) from None
        except LockError as exc:
            raise locked_error(root, exc) from None
        except MlciError:
            raise  # a signal's Interrupted
        except Exception as exc:  # DvcException, or a cloud SDK's own error (credentials...)
            raise DvcRemoteError(
                f"dvc pull from '{name}' ({url}) failed: {str(exc).splitlines()[0][:300]}",
                fix=remote_fix(name, url, exc),
            ) from None
    finally:
        if own:
            repo.close()
    # DVC 3 answers {"stats": {"fetched": n, ...}, ...}; older ones the counts alone.
    counts = stats.get("stats", stats) if isinstance(stats, dict) else {}
    count = int(counts.get("fetched", 0)) if isinstance(counts, dict) else 0
    return PullResult(name, url, count, data_versions(root))


CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), or "
    "`dvc remote modify --local {name} access_key_id ...`",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (a service-account key file), or "
    "`dvc remote modify --local {name} credentialpath <file>`",
    "azure": "AZURE_STORAGE_CONNECTION_STRING, or "
    "`dvc remote modify --local {name} connection_string ...`",
    "ssh": "an SSH key the runner can use, or `dvc remote modify --local {name} keyfile <path>`",
}


def remote_fix(name: str, url: str, exc: Exception) -> str:
    """What to do about a failing remote, by its protocol and the error's wording."""
    scheme = url.split("://", 1)[0] if "://" in url else "local"
    text = f"{type(exc).__name__} {exc}".lower()
    creds = any(
        w in text
        for w in (
            "credential",
            "access denied",
            "forbidden",
            "403",
            "permission",
            "unauthorized",
            "401",
            "auth",
        )
    )
    if scheme in CREDENTIALS and creds:
        return f"set {CREDENTIALS[scheme].format(name=name)}"
    if any(w in text for w in ("connect", "timed out", "timeout", "resolve", "unreachable")):
        return f"check that {url} is reachable from this runner"
    return f"check `dvc remote list` and access to {url}"


@contextlib.contextmanager
def _dvc_errors() -> Iterator[list[str]]:
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


def _missing_paths(exc: Exception) -> str:
    targets = getattr(exc, "target_infos", None) or getattr(exc, "failed_outs", None) or []
    names = sorted({str(t) for t in targets})
    return ", ".join(names) if names else "some outputs (see `dvc status -c`)"


def reproduce(root: Path, *, force: bool = False, repo: Any | None = None) -> list[str]:
    """``dvc repro`` (``--force``: every stage); returns the names of the stages that ran.

    A stage that is an mlci command and fails with an ``MlciError`` fails the run with that
    error (its exit code and message), not with a generic "stage failed"; a signal while a
    stage runs stops the stage's processes and raises ``Interrupted``.
    """
    import tempfile

    from dvc.exceptions import DvcException, ReproductionError
    from dvc.lock import LockError

    own = repo is None
    repo = repo if repo is not None else open_repo(root)
    try:
        with tempfile.TemporaryDirectory(prefix="mlci-stage-") as tmp, _stage_runner(Path(tmp)):
            try:
                with _cwd(root):
                    stages = repo.reproduce(force=force)
            except ReproductionError as exc:
                raise _stage_failure(root, exc, Path(tmp)) from None
    except LockError as exc:
        raise locked_error(root, exc) from None
    except DvcException as exc:
        raise StageError(
            f"dvc repro failed: {exc}", fix="check dvc.yaml and `dvc status`"
        ) from None
    finally:
        if own:
            repo.close()
    return [getattr(s, "addressing", str(s)) for s in stages]


_STAGE_ERROR_FILE = "error.json"


def _stage_failure(root: Path, exc: Exception, errors: Path) -> MlciError:
    """Why ``dvc repro`` failed: a signal, the failed mlci command's own error, a lock, or
    the stage's command."""
    from dvc.lock import LockError

    if signals.received() is not None:
        return signals.interrupted()
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, MlciError):
        return cause
    if isinstance(cause, LockError):
        return locked_error(root, cause)
    stage = (errors / "stage").read_text(encoding="utf-8") if (errors / "stage").exists() else ""
    child = load_from_child(errors / _STAGE_ERROR_FILE, f"DVC stage '{stage or '?'}'")
    if child is not None:
        return child
    return StageError(
        f"stage failed in dvc repro: {exc}{': ' + str(cause) if cause else ''}",
        fix="run `dvc repro` locally to see the stage's own output",
    )


@contextlib.contextmanager
def _stage_runner(errors: Path) -> Iterator[None]:
    """Run DVC's stage commands our way: each names ``MLCI_STAGE_ERROR_FILE`` for an mlci
    command to leave its error in, and, under ``signals.handled()``, runs in its own process
    group so that a signal reaches the whole stage (DVC itself ignores SIGINT meanwhile).

    This replaces ``dvc.stage.run._run`` (DVC 3: ``_run(executable, cmd, **popen_kwargs)``);
    with a DVC that lacks it, stages run DVC's way.
    """
    import dvc.stage.run as dvc_run

    original = getattr(dvc_run, "_run", None)
    make_cmd = getattr(dvc_run, "_make_cmd", None)
    if original is None or make_cmd is None:
        yield
        return
    error_file = errors / _STAGE_ERROR_FILE

    def run(executable: str | None, cmd: str, **kwargs: Any) -> None:
        from dvc.stage.exceptions import StageCmdFailedError

        env = dict(kwargs.pop("env", None) or os.environ)
        stage = str(env.get("DVC_STAGE") or cmd)
        (errors / "stage").write_text(stage, encoding="utf-8")
        error_file.unlink(missing_ok=True)
        env[STAGE_ERROR_ENV] = str(error_file)
        if not signals.active():
            original(executable, cmd, env=env, **kwargs)
            return
        returncode = signals.run_child(make_cmd(executable, cmd), stage, env=env, **kwargs)
        if returncode != 0:
            raise StageCmdFailedError(cmd, returncode)

    dvc_run._run = run
    try:
        yield
    finally:
        dvc_run._run = original


def read_at_rev(root: Path, path: str, rev: str) -> bytes | None:
    """A DVC-tracked file's bytes at ``rev`` (from the cache or the remote), or None."""
    import dvc.api
    from dvc.exceptions import DvcException

    try:
        with _cwd(root):
            data = dvc.api.read(path, repo=str(root), rev=rev, mode="rb")
    except (DvcException, FileNotFoundError, OSError):
        return None
    return bytes(data)


def read_at(root: Path, sha: str, path: str, *, uncached: Collection[str] = ()) -> bytes | None:
    """A file's bytes as they were at commit ``sha``: from git when it was committed there,
    else through DVC (cache or remote) unless it is an uncached output; None when neither has it.
    """
    from mlci import git

    found = git.show(root, sha, path)
    if found is None and path not in uncached:
        found = read_at_rev(root, path, sha)
    return found
