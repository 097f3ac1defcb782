"""Reproducing the pipeline: ``dvc repro`` with mlci's stage runner, and DVC's locks.

Each stage command runs in its own process group (see :mod:`mlci.signals`); its stderr is
passed through to the job log as it comes and its last lines are kept, secrets masked, so a
failing stage is reported with its name, command, exit status and its own words.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci import signals
from mlci.errors import (
    STAGE_ERROR_ENV,
    MlciError,
    StageError,
    StageFailed,
    load_from_child,
)
from mlci.project.repository import dvc_errors, in_dir, locked_error, opened

TAIL_LINES = 30
_STAGE_ERROR_FILE = "error.json"
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|KEY", re.IGNORECASE)


def reproduce(root: Path, *, force: bool = False, repo: Any | None = None) -> list[str]:
    """``dvc repro`` (``--force``: every stage); returns the names of the stages it went
    through.

    A stage that is an mlci command and fails with an ``MlciError`` fails the run with that
    error (its exit code and message); any other failing stage with :class:`StageFailed`
    (exit 7), which carries the end of the stage's stderr. A signal while a stage runs stops
    the stage's processes and raises ``Interrupted``.
    """
    fix = "check dvc.yaml and `dvc status`"
    return list(_drive(root, repo, "dvc repro", fix, quiet=False, force=force).stages)


def reproduce_cached(root: Path, *, repo: Any | None = None) -> Reproduced:
    """``dvc repro --pull``: a stage whose inputs were trained before (here or in any job that
    pushed its run-cache) is restored from DVC's run-cache instead of run; only a stage with
    new inputs runs its command. Errors are :func:`reproduce`'s.

    With an open ``repo``, a pipeline DVC's status finds up to date (every output in place)
    is not handed to ``dvc repro``, which would go through each stage and run, restore and pull
    nothing (after importing its graph library and pulling the run-cache: half the cost of a
    no-op check).
    """
    fix = "check dvc.yaml, `dvc status` and the remote"
    may_skip = repo is not None and (root / "dvc.yaml").is_file()
    if may_skip and not _changed(root, repo, missing_ok=False):
        return Reproduced()
    return _drive(root, repo, "dvc repro --pull", fix, quiet=True, pull=True)


def may_run(root: Path, repo: Any) -> bool:
    """Whether :func:`reproduce_cached` may run a stage's command: DVC's status of ``repo``'s
    index as it is (no new one is read) finds a stage with a command changed beyond data that
    is only missing (``dvc repro --pull`` pulls that instead). When DVC cannot tell: yes."""
    return _changed(root, repo, missing_ok=True)


def _changed(root: Path, repo: Any, *, missing_ok: bool) -> bool:
    """Whether DVC's status finds a stage changed, True when it cannot tell. ``missing_ok``:
    data that is only missing is no change, only stages with a command count, and the index
    ``repo`` holds is used; else the status is ``dvc status``'s, on an index read under the
    lock."""
    try:
        from dvc.repo import lock_repo

        # DVC's stages assert the lock is held; lock_repo reads the index anew under it
        with in_dir(root), repo.lock if missing_ok else lock_repo(repo):
            return any(
                (s.cmd or not missing_ok) and s.changed(allow_missing=missing_ok)
                for s in repo.index.stages
            )
    except Exception:  # a lock, a file DVC cannot read: the reproduce will say
        return True


def _drive(
    root: Path, repo: Any | None, what: str, fix: str, *, quiet: bool, **options: Any
) -> Reproduced:
    """The one driver of ``Repo.reproduce(**options)``: mlci's stage runner, DVC's locks and
    errors as mlci's (``quiet``: DVC's own error lines collected, not printed)."""
    import tempfile

    from dvc.exceptions import DvcException, ReproductionError
    from dvc.lock import LockError

    try:
        with (
            opened(root, repo) as dvc_repo,
            tempfile.TemporaryDirectory(prefix="mlci-stage-") as tmp,
            stage_runner(Path(tmp)) as ran,
        ):
            try:
                with in_dir(root), dvc_errors() if quiet else contextlib.nullcontext():
                    stages = dvc_repo.reproduce(**options)
            except ReproductionError as exc:
                raise stage_failure(root, exc, Path(tmp), ran) from None
    except LockError as exc:
        raise locked_error(root, exc) from None
    except DvcException as exc:
        raise StageError(f"{what} failed: {exc}", fix=fix) from None
    names = tuple(getattr(s, "addressing", str(s)) for s in stages)
    return Reproduced(names, tuple(dict.fromkeys(ran.commands)))


@dataclass
class Ran:
    """The stage command that ran last (what a failure is reported with), and every stage
    whose command ran, in order (the rest were up to date or restored)."""

    stage: str = ""
    command: str = ""
    returncode: int | None = None
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    commands: list[str] = field(default_factory=list)


# the stage that ran last under each ``stage_runner``, by its errors directory
_RUNS: dict[Path, Ran] = {}


def stage_failure(root: Path, exc: Exception, errors: Path, ran: Ran | None = None) -> MlciError:
    """Why ``dvc repro`` failed: a signal, the failed mlci command's own error, a lock, or
    the stage's command (``ran``: the runner's record, by default the one for ``errors``)."""
    from dvc.lock import LockError

    ran = ran or _RUNS.get(errors) or Ran()

    if signals.received() is not None:
        return signals.interrupted()
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, MlciError):
        return cause
    if isinstance(cause, LockError):
        return locked_error(root, cause)
    child = load_from_child(errors / _STAGE_ERROR_FILE, f"DVC stage '{ran.stage or '?'}'")
    if child is not None:
        return child
    if ran.returncode is None or ran.returncode == 0:
        return StageError(
            f"dvc repro failed: {exc}{': ' + str(cause) if cause else ''}",
            fix="run `dvc repro` locally to see the stage's own output",
        )
    return stage_failed(ran)


def stage_failed(ran: Ran) -> StageFailed:
    """A failed stage command as an error naming the stage, its command, its exit status and
    the last line of its stderr, with a fix for the causes we can recognise."""
    tail = tuple(ran.tail)
    last = next((ln.strip() for ln in reversed(tail) if ln.strip()), "")
    said = f": {last}" if last else " (it wrote nothing to stderr)"
    fix = "run the stage's command locally (`dvc repro`) and fix what its stderr says"
    if "ModuleNotFoundError" in last or "No module named" in last:
        fix = (
            "the stage imports a module that is not importable from its directory: if the "
            "module is in the repository, run it as `PYTHONPATH=. " + ran.command + "` in "
            "dvc.yaml (or `python -m` with a package), else add it to the requirements"
        )
    return StageFailed(
        f"DVC stage '{ran.stage}' (`{ran.command}`) exited with {ran.returncode}{said}",
        fix=fix,
        stage=ran.stage,
        command=ran.command,
        returncode=ran.returncode,
        stderr_tail=tail,
    )


def secrets(env: Mapping[str, str]) -> list[str]:
    """Values never to show: the GitHub token and every variable named like a secret."""
    from mlci import ci

    found = [v for k, v in env.items() if _SECRET_NAME.search(k)]
    found.append(ci.token(env) or "")
    return sorted({v for v in found if len(v) >= 4}, key=len, reverse=True)


def mask(line: str, hidden: list[str]) -> str:
    from mlci import console

    for value in hidden:
        line = line.replace(value, "***")
    return console.redact(line)


@contextlib.contextmanager
def _tee(ran: Ran, hidden: list[str]) -> Iterator[int]:
    """A pipe for a stage's stderr: what comes is written on to our stderr at once (the job
    log shows it live) and its last lines, masked, are kept in ``ran.tail``."""
    read_fd, write_fd = os.pipe()
    out_fd = 2
    partial = [b""]

    def pump() -> None:
        with os.fdopen(read_fd, "rb", buffering=0) as src:
            while chunk := src.read(65536):
                with contextlib.suppress(OSError):
                    os.write(out_fd, chunk)
                lines = (partial[0] + chunk).split(b"\n")
                partial[0] = lines.pop()
                ran.tail.extend(mask(ln.decode("utf-8", "replace"), hidden) for ln in lines)
        if partial[0]:
            ran.tail.append(mask(partial[0].decode("utf-8", "replace"), hidden))

    thread = threading.Thread(target=pump, name="mlci-stage-stderr", daemon=True)
    thread.start()
    try:
        yield write_fd
    finally:
        os.close(write_fd)
        thread.join(timeout=5.0)  # a background process that keeps the pipe: stop waiting


@contextlib.contextmanager
def stage_runner(errors: Path) -> Iterator[Ran]:
    """Run DVC's stage commands our way: each names ``MLCI_STAGE_ERROR_FILE`` for an mlci
    command to leave its error in, its stderr is teed (:func:`_tee`), and, under
    ``signals.handled()``, it runs in its own process group so that a signal reaches the
    whole stage (DVC itself ignores SIGINT meanwhile).

    This replaces ``dvc.stage.run._run`` (DVC 3: ``_run(executable, cmd, **popen_kwargs)``);
    with a DVC that lacks it, stages run DVC's way.
    """
    import dvc.stage.run as dvc_run

    ran = Ran()
    original = getattr(dvc_run, "_run", None)
    make_cmd = getattr(dvc_run, "_make_cmd", None)
    if original is None or make_cmd is None:
        yield ran
        return
    error_file = errors / _STAGE_ERROR_FILE

    def run(executable: str | None, cmd: str, **kwargs: Any) -> None:
        from dvc.stage.exceptions import StageCmdFailedError

        env = dict(kwargs.pop("env", None) or os.environ)
        ran.stage, ran.command, ran.returncode = str(env.get("DVC_STAGE") or cmd), cmd, None
        ran.commands.append(ran.stage)
        ran.tail.clear()
        error_file.unlink(missing_ok=True)
        env[STAGE_ERROR_ENV] = str(error_file)
        with _tee(ran, secrets(env)) as stderr:
            if not signals.active():
                try:
                    original(executable, cmd, env=env, stderr=stderr, **kwargs)
                except StageCmdFailedError as exc:
                    found = re.search(r"exited with (-?\d+)", str(exc))
                    ran.returncode = int(found.group(1)) if found else -1
                    raise
                ran.returncode = 0
                return
            ran.returncode = signals.run_child(
                make_cmd(executable, cmd), ran.stage, env=env, stderr=stderr, **kwargs
            )
        if ran.returncode != 0:
            raise StageCmdFailedError(cmd, ran.returncode)

    dvc_run._run = run
    _RUNS[errors] = ran
    try:
        yield ran
    finally:
        dvc_run._run = original
        _RUNS.pop(errors, None)


@dataclass(frozen=True)
class Reproduced:
    """What ``reproduce_cached`` did: every stage it went through, and those whose command ran
    (the rest were up to date or restored from the run-cache)."""

    stages: tuple[str, ...] = ()
    ran: tuple[str, ...] = ()
