"""The MLflow side of ``mlci train``, in a process of its own that starts with the training.

Importing MLflow and its SQL store takes about as long as importing scikit-learn and fitting a
small model, and one Python process cannot overlap the two (imports hold the GIL). So the
training process starts this worker first and goes on with the data and the fit; the worker
imports MLflow, opens the store and finds the experiment meanwhile, then waits. When the fit is
done the training process sends what the run records (params, tags, the model already
serialised by its backend in its MLflow flavor's layout: :class:`~mlci.training.backends.
ModelFiles`) and the worker records one finished run, exactly as an in-process run would.

The protocol is two JSON lines on the worker's stdin ("open", then "finish") and one answer on
its stdout (the run's ids, or an error with its class, message and fix). A training that fails
closes the pipe before "finish": the worker then records nothing, as before. The worker
ignores Ctrl-C (the training process owns its lifetime) and ends a started run as FAILED on
SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

from mlci import errors
from mlci.errors import MlciError, MlflowError
from mlci.training.backends import MODEL_FILES, ModelFiles

MLFLOW_FIX = "run with --debug; check the artifact store is writable"


class Recording(Protocol):
    """Where ``mlci train`` records its run: a worker, this process, or the check's recorder."""

    where: str  # said after the run id: "a worker process", ...

    def finish(
        self, run_name: str, params: dict[str, Any], tags: dict[str, Any], model_dir: Path
    ) -> dict[str, Any]:
        """Record the run; its ids (``mlflow_run_id``, ...), or the error raised."""
        ...

    def abort(self) -> None:
        """The training failed or was stopped: record nothing."""
        ...


class Worker:
    """The training process's handle on the worker."""

    where = "a worker process"

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc

    @classmethod
    def start(cls, tracking_uri: str, experiment: str, root: Path) -> Worker:
        code = "from mlci.training.worker import main, leave; leave(main())"
        proc = subprocess.Popen(
            [*python_command(), "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        worker = cls(proc)
        worker._send({"uri": tracking_uri, "experiment": experiment, "root": str(root)})
        return worker

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message, default=str) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # it ended early; its exit status tells why (see finish)

    def finish(
        self, run_name: str, params: dict[str, Any], tags: dict[str, Any], model_dir: Path
    ) -> dict[str, Any]:
        """Record the run; its ids (``mlflow_run_id``, ...), or the worker's error raised."""
        message = {"run_name": run_name, "params": params, "tags": tags, "model": str(model_dir)}
        self._send(message)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        answer = self.proc.stdout.readline()
        code = self.proc.wait()
        try:
            reply = json.loads(answer)
        except ValueError:
            raise MlflowError(
                f"the MLflow worker ended without an answer (exit status {code})",
                fix="run with --debug to see its error; check that mlflow is installed",
            ) from None
        if "error" in reply:
            raise rebuild(reply["error"])
        return dict(reply["ok"])

    def abort(self) -> None:
        """End the worker without recording anything (the training failed or was stopped)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def python_command() -> list[str]:
    """This Python, started so that the files of the current directory (a project's, a pull
    request's) cannot shadow mlci, click, mlflow, ...: ``-P`` keeps the current directory off
    ``sys.path`` (Python 3.11+); older Pythons get isolated mode, ``-I``, which also leaves
    ``PYTHONPATH`` out (mlci must then be installed, as it is by pip)."""
    return [sys.executable, "-P" if sys.version_info >= (3, 11) else "-I"]


def child_env() -> dict[str, str]:
    """This environment, with mlci importable in a child started with ``-P``."""
    import mlci

    package_root = str(Path(mlci.__file__).resolve().parent.parent)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    return env


class InProcess:
    """The same recording in the training process, after the fit: used when no CPU is free
    to overlap with (a second process would only add its own start-up to the work)."""

    where = "the training process"

    def __init__(self, tracking_uri: str, experiment: str, root: Path) -> None:
        self.args = (tracking_uri, experiment, root)

    def finish(
        self, run_name: str, params: dict[str, Any], tags: dict[str, Any], model_dir: Path
    ) -> dict[str, Any]:
        uri = self.args[0]
        experiment_id = prepare(*self.args)
        message = {"run_name": run_name, "params": params, "tags": tags, "model": str(model_dir)}
        return record(experiment_id, uri, message)

    def abort(self) -> None:
        pass


def spare_cpus() -> float:
    """CPUs this process may use less the 1-minute load average (Unix), else the CPU count."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover (macOS, Windows)
        cpus = os.cpu_count() or 1
    try:
        return cpus - os.getloadavg()[0]
    except (AttributeError, OSError):  # pragma: no cover (Windows)
        return float(cpus)


def start(tracking_uri: str, experiment: str, root: Path) -> Worker | InProcess:
    """A worker process when a CPU is free to overlap MLflow's start-up with the training,
    else the same recording in process (both record exactly the same run)."""
    if spare_cpus() >= 1.0:
        return Worker.start(tracking_uri, experiment, root)
    return InProcess(tracking_uri, experiment, root)


def rebuild(error: dict[str, Any]) -> MlciError:
    """The worker's error as the same MlciError class in this process."""
    cls = getattr(errors, str(error.get("class")), None)
    if not (isinstance(cls, type) and issubclass(cls, MlciError)):
        cls = MlflowError
    return cls(str(error.get("message")), fix=error.get("fix"))


# --- the worker process ------------------------------------------------------------------------


def terminated(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds a started run, which ends as FAILED


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, terminated)
    answer = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever a library prints goes to stderr, not into the answer
    opened = json.loads(sys.stdin.readline() or "null")
    if not opened:
        return 0
    try:
        experiment_id = prepare(opened["uri"], opened["experiment"], Path(opened["root"]))
        failure: MlciError | None = None
    except MlciError as exc:
        failure = exc
    line = sys.stdin.readline()
    if not line:
        return 0  # the training did not finish: nothing to record
    try:
        if failure is not None:
            raise failure
        ids = record(experiment_id, opened["uri"], json.loads(line))
    except Exception as exc:
        return _reply(answer, {"error": error_of(exc)}, 1)
    return _reply(answer, {"ok": ids}, 0)


def leave(code: int) -> None:
    """End the worker once it answered: the run is recorded and committed, and tearing down an
    interpreter that loaded MLflow and SQLAlchemy takes about 0.85 s, which the training
    process would wait out (it waits for this process). Nothing is left to clean up here."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def error_of(exc: Exception) -> dict[str, Any]:
    """An error as the answer carries it: an MlciError as itself, anything else as an
    MlflowError that names it (with its traceback on stderr under MLCI_DEBUG)."""
    if not isinstance(exc, MlciError):
        if os.environ.get("MLCI_DEBUG"):
            import traceback

            traceback.print_exception(exc)
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        what = f"recording the MLflow run failed: {type(exc).__name__}: {text}"
        exc = MlflowError(what, fix=MLFLOW_FIX)
    return {"class": type(exc).__name__, "message": exc.message, "fix": exc.fix}


def _reply(stream: IO[str], message: dict[str, Any], code: int) -> int:
    stream.write(json.dumps(message) + "\n")
    stream.flush()
    return code


def prepare(uri: str, experiment: str, root: Path) -> str:
    """Import MLflow, open the store, find (or create) the experiment: the slow part."""
    from mlci.registry import tracking

    tracking.configure(uri)
    experiment_id = tracking.ensure_experiment(experiment, uri, root)
    # What logging the model needs, loaded while the training process is still fitting.
    import mlflow.models
    import mlflow.pyfunc
    import mlflow.utils.environment  # noqa: F401

    with contextlib.suppress(ImportError):  # GitPython: MLflow's run context reads the commit
        import git  # noqa: F401

    return experiment_id


def record(experiment_id: str, uri: str, finish: dict[str, Any]) -> dict[str, Any]:
    """One finished run: params, tags and the model the training process exported."""
    from mlci.registry import tracking

    model_dir = Path(finish["model"])
    files = ModelFiles.load(model_dir)
    with tracking.run(experiment_id, uri, str(finish["run_name"])) as run:
        tracking.log_params(finish["params"])
        tracking.set_tags(finish["tags"])
        try:
            log_model_files(model_dir, files, "model")
        except Exception as exc:
            raise MlflowError(
                f"MLflow could not log the {files.flavor} model: "
                f"{(str(exc).splitlines() or [type(exc).__name__])[0][:300]}",
                fix=MLFLOW_FIX,
            ) from exc
        return {
            "mlflow_run_id": run.info.run_id,
            "mlflow_experiment_id": experiment_id,
            "mlflow_tracking_uri": tracking.public_uri(uri),
        }


class _Flavor:
    """A flavor "module" for ``mlflow.models.Model.log`` whose ``save_model`` lays out files a
    backend already serialised; MLflow's own ``mlflow.<flavor>`` loads the result."""

    def __init__(self, files: ModelFiles, source: Path) -> None:
        self.files = files
        self.source = source
        self.__name__ = f"mlflow.{files.flavor}"

    def save_model(self, path: str, mlflow_model: Any, **_: Any) -> None:
        import shutil

        import yaml
        from mlflow import pyfunc
        from mlflow.utils.environment import (
            _generate_mlflow_version_pinning,
            _mlflow_conda_env,
            _PythonEnv,
        )
        from mlflow.utils.file_utils import get_total_file_size

        target = Path(path)
        shutil.copytree(
            self.source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns(MODEL_FILES)
        )
        pyfunc.add_to_model(
            mlflow_model,
            loader_module=self.__name__,
            conda_env="conda.yaml",
            python_env="python_env.yaml",
            **self.files.pyfunc_conf,
        )
        mlflow_model.add_flavor(self.files.flavor, **self.files.flavor_conf)
        if size := get_total_file_size(path):
            mlflow_model.model_size_bytes = size
        mlflow_model.save(str(target / "MLmodel"))
        # The requirements are pinned to this environment's versions, so MLflow's check that
        # the environment satisfies them (a scan of every installed package) is skipped.
        requirements = [_generate_mlflow_version_pinning(), *self.files.pip_requirements]
        conda = _mlflow_conda_env(additional_pip_deps=requirements, install_mlflow=False)  # type: ignore[no-untyped-call]
        with open(target / "conda.yaml", "w", encoding="utf-8") as f:
            yaml.safe_dump(conda, stream=f, default_flow_style=False)
        (target / "requirements.txt").write_text("\n".join(requirements), encoding="utf-8")
        _PythonEnv.current().to_yaml(str(target / "python_env.yaml"))  # type: ignore[no-untyped-call]


def log_model_files(model_dir: Path, files: ModelFiles, name: str) -> None:
    """Log exported model files as the active run's model ``name`` (``runs:/<id>/<name>``)."""
    from mlflow.models import Model

    fmt = files.flavor_conf.get("serialization_format", "pickle")
    flavor = _Flavor(files, model_dir)
    Model.log(artifact_path=None, name=name, flavor=flavor, serialization_format=fmt)
