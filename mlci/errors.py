"""The one exception tree of mlci.

Every error a user can cause or meet carries its exit code and a message that says what was
wrong, where, and what to do. Only ``cli.main`` turns these into output and an exit status.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

# Exit codes are part of the interface (see README, "Exit codes").
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DATA_INVALID = 3
EXIT_GATE_FAILED = 4
EXIT_EXTERNAL = 5
EXIT_DRIFT = 6  # `mlci monitor`: the data drifted (a signal, not a regression)
EXIT_STAGE_FAILED = 7  # a stage of the user's pipeline (its own command) failed
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class MlciError(Exception):
    """Base of every error mlci raises on purpose."""

    exit_code = EXIT_UNEXPECTED
    title = "mlci failed"

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def one_line(self) -> str:
        """The message and its fix on one line, as the CLI prints it."""
        text = self.message.replace("\n", " ").strip()
        if self.fix:
            text = f"{text}; fix: {self.fix}"
        return text


class ConfigError(MlciError):
    """Settings, params.yaml, dvc.yaml or flags are wrong."""

    exit_code = EXIT_USAGE
    title = "configuration error"


class RepoError(MlciError):
    """The working directory is not what mlci needs (not a git or DVC repo, missing ref)."""

    exit_code = EXIT_USAGE
    title = "repository error"


class UntrustedCode(MlciError):
    """Refusing to run a fork's code where secrets are present."""

    exit_code = EXIT_USAGE
    title = "refusing untrusted code"


class DataInvalid(MlciError):
    """The data failed validation."""

    exit_code = EXIT_DATA_INVALID
    title = "data invalid"


class GateFailed(MlciError):
    """The model regressed: at least one gate failed."""

    exit_code = EXIT_GATE_FAILED
    title = "gate failed"


class ExternalError(MlciError):
    """A service mlci talks to failed: DVC remote, GitHub, MLflow."""

    exit_code = EXIT_EXTERNAL
    title = "external service failed"


class DvcRemoteError(ExternalError):
    title = "DVC remote failed"


class GitHubError(ExternalError):
    """GitHub's API failed; ``status`` is its HTTP status when it answered at all."""

    title = "GitHub API failed"

    def __init__(self, message: str, *, fix: str | None = None, status: int | None = None) -> None:
        super().__init__(message, fix=fix)
        self.status = status


class MlflowError(ExternalError):
    title = "MLflow failed"


class StageError(MlciError):
    """A pipeline stage (user code or a `dvc repro` step) failed."""

    exit_code = EXIT_UNEXPECTED
    title = "stage failed"


class StageFailed(StageError):
    """A stage of the user's pipeline failed: its own command exited non-zero. Not a bug in
    mlci (exit 1): the stage's name, command, exit status and the end of its stderr come with
    it, for the report."""

    exit_code = EXIT_STAGE_FAILED
    title = "pipeline stage failed"

    def __init__(
        self,
        message: str,
        *,
        fix: str | None = None,
        stage: str = "",
        command: str = "",
        returncode: int | None = None,
        stderr_tail: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message, fix=fix)
        self.stage = stage
        self.command = command
        self.returncode = returncode
        self.stderr_tail = stderr_tail


class RepoLocked(RepoError):
    """Another (or a killed) DVC process holds a lock of this repository."""

    title = "DVC repository locked"


class Interrupted(MlciError):
    """Ctrl-C (SIGINT) stopped the run; its stage's processes were stopped too."""

    exit_code = EXIT_INTERRUPTED
    title = "interrupted"


class Terminated(Interrupted):
    """SIGTERM (a CI cancel or timeout) stopped the run."""

    exit_code = EXIT_TERMINATED


class ChildError(MlciError):
    """An error an mlci stage command reported to the ``mlci run`` that started it, when no
    class of this tree has its name and exit code."""

    def __init__(self, message: str, *, fix: str | None, exit_code: int, title: str) -> None:
        super().__init__(message, fix=fix)
        self.exit_code = exit_code
        self.title = title


# ``repro.reproduce`` names a file here for each stage it runs; an mlci stage command that
# fails with an MlciError writes it, so ``mlci run`` exits with that error, not "stage failed".
STAGE_ERROR_ENV = "MLCI_STAGE_ERROR_FILE"


def save_for_parent(exc: MlciError) -> None:
    """Write ``exc`` where the parent ``mlci run`` asked for it (``MLCI_STAGE_ERROR_FILE``)."""
    path = os.environ.get(STAGE_ERROR_ENV)
    if not path:
        return
    import json
    from pathlib import Path

    doc = {
        "kind": type(exc).__name__,
        "exit_code": exc.exit_code,
        "title": exc.title,
        "message": exc.message,
        "fix": exc.fix,
    }
    with contextlib.suppress(OSError):  # else the parent reports a plain stage failure
        Path(path).write_text(json.dumps(doc), encoding="utf-8")


def _classes(cls: type[MlciError]) -> dict[str, type[MlciError]]:
    found = {cls.__name__: cls}
    for sub in cls.__subclasses__():
        found.update(_classes(sub))
    return found


def load_from_child(path: Path, where: str) -> MlciError | None:
    """The error a stage command saved in ``path`` (see ``save_for_parent``), its message
    prefixed with ``where``; None when it saved none."""
    import json

    try:
        doc: Any = json.loads(path.read_text(encoding="utf-8"))
        code, title, message = int(doc["exit_code"]), str(doc["title"]), str(doc["message"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    fix = str(doc["fix"]) if doc.get("fix") else None
    message = f"{where}: {message}"
    cls = _classes(MlciError).get(str(doc.get("kind")))
    if cls is not None and cls is not ChildError and cls.exit_code == code and cls.title == title:
        try:
            return cls(message, fix=fix)
        except TypeError:  # a class with its own constructor
            pass
    return ChildError(message, fix=fix, exit_code=code, title=title)


class DriftDetected(MlciError):
    """The snapshot drifted away from the champion's training data (its gates still hold, or
    there are no labels to tell)."""

    exit_code = EXIT_DRIFT
    title = "data drifted"


class ModelDegraded(MlciError):
    """The champion fails its gates (or its latency limit) on the snapshot."""

    exit_code = EXIT_GATE_FAILED
    title = "model degraded"


def first_line(exc: BaseException | str, limit: int = 300) -> str:
    """The first non-empty line of an error's message, at most ``limit`` characters; the
    error's type name when it has no message (never raises, whatever the message is)."""
    try:
        text = str(exc)
    except Exception:
        text = ""
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__ if isinstance(exc, BaseException) else "no message"
