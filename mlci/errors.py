"""The one exception tree of mlci.

Every error a user can cause or meet carries its exit code and a message that says what was
wrong, where, and what to do. Only ``cli.main`` turns these into output and an exit status.
"""

from __future__ import annotations

# Exit codes are part of the interface (see README, "Exit codes").
EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DATA_INVALID = 3
EXIT_GATE_FAILED = 4
EXIT_EXTERNAL = 5
EXIT_INTERRUPTED = 130


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
    title = "GitHub API failed"


class MlflowError(ExternalError):
    title = "MLflow failed"


class StageError(MlciError):
    """A pipeline stage (user code or a `dvc repro` step) failed."""

    exit_code = EXIT_UNEXPECTED
    title = "stage failed"
