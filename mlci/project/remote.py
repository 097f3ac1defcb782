"""The DVC remote: pulling what the pipeline needs (with the data versions it got, and what
the pipeline can rebuild when objects are missing), pushing outputs and the run-cache of a
trusted training, and the training records kept beside them.

Everything goes through DVC's Python API in this process (a CLI call costs ~10x more).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.errors import DvcRemoteError, MlciError, first_line
from mlci.project import locks, pipeline
from mlci.project.repository import dvc_errors, in_dir, locked_error, opened


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
    missing: tuple[str, ...] = ()  # outputs the remote lacks, left for ``dvc repro`` to rebuild


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


def data_versions(root: Path, repo: Any | None = None) -> tuple[DataVersion, ...]:
    """Every cached output and data source in the ``dvc.lock`` and ``.dvc`` files, by hash."""
    project = pipeline.read(root, repo)
    locked = locks.lock_entries(root, project)
    found: dict[str, DataVersion] = {}
    outs = [
        (stage.rel(str(out["path"])), out)
        for stage in project.stages
        for out in locked.get(stage.name, {}).get("outs") or []
        if isinstance(out, dict) and out.get("path")
    ]
    for path, out in [*outs, *locks.source_outs(root, project)]:
        md5 = out.get("md5")
        if md5:
            found[path] = DataVersion(path, str(md5), out.get("size"), out.get("nfiles"))
    return tuple(sorted(found.values(), key=lambda v: v.path))


def pull(root: Path, remote: str | None = None, repo: Any | None = None) -> PullResult:
    """``dvc pull`` for everything the pipeline needs; names the remote and the versions.

    Pass an open ``repo`` to share it with later steps (it is then left open).
    """
    from dvc.exceptions import CheckoutError, DownloadError
    from dvc.lock import LockError

    with opened(root, repo) as repo:
        name, url = remote_info(repo, remote)
        if "://" not in url and not os.path.isabs(url) and url:
            url = os.path.normpath(os.path.join(root, ".dvc", url))
        if "://" not in url and not Path(url).is_dir():
            raise DvcRemoteError(
                f"DVC remote '{name}' is unreachable: directory {url} does not exist",
                fix=f"`dvc remote modify {name} url <path>` or create and `dvc push` to it",
            )
        missing: list[str] = []  # outputs the remote lacks that `dvc repro` can rebuild
        try:
            with in_dir(root), dvc_errors() as logged:
                stats = repo.pull(remote=name)
        except (DownloadError, CheckoutError) as exc:
            cause = " ".join(logged)
            if cause and "missing" not in cause.lower():
                raise DvcRemoteError(
                    f"dvc pull from '{name}' ({url}) failed: {cause[:300]}",
                    fix=remote_fix(name, url, Exception(cause)),
                ) from None
            stats, missing = _rebuildable_only(repo, root, exc, f"DVC remote '{name}' ({url})")
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
                f"dvc pull from '{name}' ({url}) failed: {first_line(exc)}",
                fix=remote_fix(name, url, exc),
            ) from None
    # DVC 3 answers {"stats": {"fetched": n, ...}, ...}; older ones the counts alone.
    counts = stats.get("stats", stats) if isinstance(stats, dict) else {}
    count = int(counts.get("fetched", 0)) if isinstance(counts, dict) else 0
    return PullResult(name, url, count, data_versions(root, repo), tuple(missing))


def _rebuildable_only(
    repo: Any, root: Path, exc: Exception, remote: str
) -> tuple[dict[str, Any], list[str]]:
    """After a pull that lacked some objects: what was checked out, and the missing outputs,
    when a stage of the pipeline can rebuild every one of them (``dvc repro`` will); raises
    exit 5 naming what cannot be rebuilt (source data, a frozen stage's outputs)."""
    from dvc.exceptions import CheckoutError

    result: dict[str, Any] = {}
    if not isinstance(exc, CheckoutError):  # a remote that reports missing objects itself
        try:
            with in_dir(root), dvc_errors():
                result = repo.checkout()
        except CheckoutError as again:
            exc = again
    targets = sorted({str(t) for t in getattr(exc, "target_infos", None) or []})
    result = getattr(exc, "result", None) or result
    produced = [
        os.path.normpath(out.fs_path)
        for stage in repo.index.stages
        if getattr(stage, "cmd", None) and not getattr(stage, "frozen", False)
        for out in stage.outs
    ]
    sources = []
    for t in targets:
        full = os.path.normpath(os.path.join(root, t))
        if not any(full == o or full.startswith(o + os.sep) for o in produced):
            sources.append(t)
    if sources or not isinstance(exc, CheckoutError):
        what = ", ".join(sources) or _missing_paths(exc)
        raise DvcRemoteError(
            f"{remote} lacks data for {what}, which no stage of the pipeline can rebuild",
            fix="run `dvc push` where the data was added (`dvc status -c` lists what the "
            "remote lacks), then re-run",
        )
    return result, targets


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


def _missing_paths(exc: Exception) -> str:
    targets = getattr(exc, "target_infos", None) or getattr(exc, "failed_outs", None) or []
    names = sorted({str(t) for t in targets})
    return ", ".join(names) if names else "some outputs (see `dvc status -c`)"


def push_outputs(root: Path, remote: str | None = None, repo: Any | None = None) -> int:
    """``dvc push --run-cache``: the outputs and the run-cache entries, so that another job
    restores this training instead of repeating it. Returns how many objects went up."""
    with opened(root, repo) as repo:
        name, url = remote_info(repo, remote)
        try:
            with in_dir(root), dvc_errors() as logged:
                _save_run_cache(root)
                count = repo.push(remote=name, run_cache=True)
                count += _push_uncached(root, repo, name)
        except MlciError:
            raise
        except Exception as exc:
            cause = " ".join(logged) or first_line(exc)
            raise DvcRemoteError(
                f"dvc push --run-cache to '{name}' ({url}) failed: {cause[:300]}",
                fix=remote_fix(name, url, exc),
            ) from None
    return int(count or 0)


_RECORDS = ("mlci", "trainings")


def _record_path(repo: Any, remote: str | None, key: str) -> tuple[Any, str]:
    name, _ = remote_info(repo, remote)
    target = repo.cloud.get_remote(name)
    return target.fs, target.fs.join(target.path, *_RECORDS, f"{key}.json")


def write_record(
    root: Path, key: str, record: dict[str, Any], remote: str | None = None, repo: Any = None
) -> None:
    """Leave a small JSON record of a training (its run, commit, PR) beside the data on the
    remote, under ``mlci/trainings/<key>.json``: how a job without a shared tracking server
    learns who trained these inputs."""
    import json

    with opened(root, repo) as dvc_repo:
        try:
            fs, path = _record_path(dvc_repo, remote, key)
            fs.makedirs(fs.parent(path), exist_ok=True)
            fs.pipe_file(path, json.dumps(record, sort_keys=True).encode("utf-8"))
        except MlciError:
            raise
        except Exception as exc:
            raise DvcRemoteError(
                f"could not write the training record {'/'.join(_RECORDS)}/{key}.json to the "
                f"DVC remote: {first_line(exc)}",
                fix="check the remote's write access (credentials) from this job",
            ) from None


def read_record(
    root: Path, key: str, remote: str | None = None, repo: Any = None
) -> dict[str, Any] | None:
    """The training record for ``key`` on the remote, or None (absent, unreadable, no remote)."""
    import json

    with opened(root, repo) as dvc_repo:
        try:
            fs, path = _record_path(dvc_repo, remote, key)
            found = json.loads(fs.cat_file(path))
        except Exception:
            return None
    return found if isinstance(found, dict) else None


def _save_run_cache(root: Path) -> None:
    """Run-cache entries for stages DVC leaves out: one with a ``cache: false`` output that
    is not a metric or plot (mlci's ``reports/train.json``). DVC restores such an entry like
    any other; it only declines to write it."""
    with opened(root) as fresh, fresh.lock:  # the index as the reproduce left it
        for stage in fresh.index.stages:
            with contextlib.suppress(Exception):
                if getattr(stage, "cmd", None) and not stage.changed():
                    fresh.stage_cache.save(stage)


def _push_uncached(root: Path, repo: Any, remote: str) -> int:
    """The run-cache's copies of ``cache: false`` outputs (metrics, facts): ``dvc push
    --run-cache`` sends the entries but not these objects, and a stage with such an output
    cannot be restored from the remote without them."""
    from dvc_data.hashfile.hash_info import HashInfo

    project = pipeline.read(root, repo)
    locked = locks.lock_entries(root, project)
    objs = [
        HashInfo("md5", str(out["md5"]))
        for stage in project.stages
        for out in locked.get(stage.name, {}).get("outs") or []
        if out.get("md5") and stage.rel(str(out.get("path"))) in project.uncached
    ]
    objs = [h for h in objs if repo.cache.local.exists(h.value)]
    if not objs:
        return 0
    return len(repo.cloud.push(objs, remote=remote).transferred)


def read_object(root: Path, md5: str, remote: str | None = None) -> bytes | None:
    """A file's bytes by its DVC hash: from the local cache, else the remote; None when
    neither has it (or the hash names a directory). What a lineage recorded can be read so
    even where no commit's ``dvc.lock`` names it (an output a CI job reproduced and pushed)."""
    import hashlib

    if not md5 or md5.endswith(".dir"):
        return None
    with opened(root) as repo:
        try:
            cache = repo.cache.local
            if cache.exists(md5):
                raw = Path(cache.oid_to_path(md5)).read_bytes()
            else:
                name, _ = remote_info(repo, remote)
                odb = repo.cloud.get_remote_odb(name)
                raw = odb.fs.cat_file(odb.oid_to_path(md5))
        except Exception:
            return None
    return raw if hashlib.md5(raw).hexdigest() == md5 else None
