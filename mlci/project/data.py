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

from mlci.errors import (
    ConfigError,
    RepoError,
    StageError,
)
from mlci.project.repro import (  # moved to repro.py; these names stay importable from here
    _stage_failure,
    _stage_runner,
    clear_stale_locks,
    locked_error,
)
from mlci.settings.config import load_yaml


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


def reproduce(root: Path, *, force: bool = False, repo: Any | None = None) -> list[str]:
    """``dvc repro``: see :func:`mlci.project.repro.reproduce`."""
    from mlci.project import repro

    return repro.reproduce(root, force=force, repo=repo)


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

    found = git.show_in(root, sha, path)
    if found is None and path not in uncached:
        found = read_at_rev(root, path, sha)
    return found


# ---- train once: restore from the run-cache, push it, training records on the remote ----


@dataclass(frozen=True)
class Reproduced:
    """What ``reproduce_cached`` did: every stage it went through, and those whose command ran
    (the rest were up to date or restored from the run-cache)."""

    stages: tuple[str, ...] = ()
    ran: tuple[str, ...] = ()


def reproduce_cached(root: Path, *, repo: Any | None = None) -> Reproduced:
    """``dvc repro --pull``: a stage whose inputs were trained before (here or in any job that
    pushed its run-cache) is restored from DVC's run-cache instead of run; only a stage with
    new inputs runs its command. Errors are :func:`reproduce`'s."""
    import tempfile

    import dvc.stage.run as dvc_run
    from dvc.exceptions import DvcException, ReproductionError
    from dvc.lock import LockError

    own = repo is None
    repo = repo if repo is not None else open_repo(root)
    ran: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="mlci-stage-") as tmp, _stage_runner(Path(tmp)):
            runner = dvc_run._run

            def counted(executable: str | None, cmd: str, **kwargs: Any) -> None:
                env = kwargs.get("env") or os.environ
                ran.append(str(env.get("DVC_STAGE") or cmd))
                runner(executable, cmd, **kwargs)

            dvc_run._run = counted
            try:
                with _cwd(root), _dvc_errors():
                    stages = repo.reproduce(pull=True)
            except ReproductionError as exc:
                raise _stage_failure(root, exc, Path(tmp)) from None
            finally:
                dvc_run._run = runner
    except LockError as exc:
        raise locked_error(root, exc) from None
    except DvcException as exc:
        raise StageError(
            f"dvc repro --pull failed: {exc}", fix="check dvc.yaml, `dvc status` and the remote"
        ) from None
    finally:
        if own:
            repo.close()
    names = tuple(getattr(s, "addressing", str(s)) for s in stages)
    return Reproduced(names, tuple(dict.fromkeys(ran)))
