"""One process that holds MLflow open for a whole PR check, so its stages need not.

Importing MLflow and opening its store costs more than a small training does (seconds here),
and a PR check paid it three times: in ``mlci train``'s worker, in ``mlci evaluate`` and in
``mlci run`` itself after the reproduce. ``mlci run`` now starts a recorder before it pulls:
a child process that imports MLflow and opens the store while the check pulls and validates,
then records what the stages send it over a Unix socket named by ``MLCI_RECORDER`` (set for
the stage commands ``dvc repro`` runs). ``mlci train`` sends its finished run (params, tags,
the exported model: :func:`mlci.training.worker.record`, the same code as before),
``mlci evaluate`` its metrics, and the check the training's key and lineage.

Each connection carries one JSON line each way. A request for another tracking URI than the
recorder's is declined, and the stage records in its own process as it does without a
recorder; so is a request when no recorder answers the socket. The socket lives in a private
directory (mode 0700), so only this user's processes reach it. The recorder ignores Ctrl-C
(its parent owns its lifetime) and ends when its parent closes its stdin or ends; a recorder
whose parent was killed removes its own directory, and the next check removes any directory a
killed check left (see :func:`mlci.training.leftovers.sweep`).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import IO, Any

from mlci.errors import MlciError, MlflowError
from mlci.training import worker
from mlci.training.leftovers import PREFIX, identity, sweep

RECORDER_ENV = "MLCI_RECORDER"


# --- the side that starts it (``mlci run``) ----------------------------------------------------


@contextlib.contextmanager
def serving(tracking_uri: str, experiment: str, root: Path) -> Iterator[str | None]:
    """A recorder for the duration, named in ``os.environ[MLCI_RECORDER]`` for the stages.

    Yields the socket's path, or None when no recorder could start (no Unix sockets here, or a
    temporary directory whose path is too long for one): the stages then record themselves,
    as without ``mlci run``. It is a shortcut, never a new way to fail.
    """
    started = _start(tracking_uri, experiment, root)
    if started is None:
        yield None
        return
    proc, directory, path = started
    previous = os.environ.get(RECORDER_ENV)
    os.environ[RECORDER_ENV] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(RECORDER_ENV, None)
        else:
            os.environ[RECORDER_ENV] = previous
        _stop(proc)
        shutil.rmtree(directory, ignore_errors=True)


def _start(
    tracking_uri: str, experiment: str, root: Path
) -> tuple[subprocess.Popen[str], str, str] | None:
    """The recorder process, its private directory and its socket's path; None where one
    cannot start. The socket is bound here, before the child starts, so a stage that connects
    while the recorder still imports MLflow waits in the queue instead of missing it."""
    if os.name == "nt" or not hasattr(socket, "AF_UNIX"):
        return None  # no Unix sockets to pass to a child
    sweep(tempfile.gettempdir())
    directory = tempfile.mkdtemp(prefix=PREFIX)  # mode 0700
    path = os.path.join(directory, "sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    proc: subprocess.Popen[str] | None = None
    try:
        with open(os.path.join(directory, "owner"), "x", encoding="utf-8") as owner:
            owner.write(json.dumps(identity(os.getpid())))  # before the socket: see sweep()
        listener.bind(path)
        listener.listen(16)
        code = "from mlci.training.recorder import main; raise SystemExit(main())"
        proc = subprocess.Popen(
            [*worker.python_command(), "-c", code],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=worker.child_env(),
            pass_fds=(listener.fileno(),),
        )
        config = {"fd": listener.fileno(), "uri": tracking_uri, "experiment": experiment}
        made = os.lstat(directory)
        config.update(root=str(root), parent=os.getpid())
        config["home"] = [directory, made.st_dev, made.st_ino]
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.flush()
    except OSError:  # e.g. "AF_UNIX path too long"
        if proc is not None:
            _stop(proc)
        shutil.rmtree(directory, ignore_errors=True)
        return None
    finally:
        listener.close()  # the child has its own copy
    return proc, directory, path


def _stop(proc: subprocess.Popen[str]) -> None:
    """End it now: no stage is left to ask it (a no-op check ends it while MLflow still loads).
    SIGTERM unwinds whatever it holds; closing stdin alone would end it only once loaded."""
    with contextlib.suppress(OSError):
        if proc.stdin is not None:
            proc.stdin.close()
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wanted() -> bool:
    """``MLCI_RECORDER=off`` keeps MLflow in each stage's own process, as without ``mlci run``."""
    return os.environ.get(RECORDER_ENV, "").strip().lower() != "off"


# --- the side that asks (the stages) -----------------------------------------------------------


def available() -> bool:
    """Whether a recorder is named for this process (it may still decline a request)."""
    path = os.environ.get(RECORDER_ENV)
    return bool(path) and wanted() and os.path.exists(str(path))


def request(
    op: str, tracking_uri: str, *, via: str | None = None, **payload: Any
) -> dict[str, Any] | None:
    """The recorder's answer to one request; None when there is no recorder to ask or it
    declines (the caller then does the work itself). A recorder that fails the request raises
    that error, as the work done here would have. ``via``: the socket of a warm recorder
    (:mod:`mlci.training.warm`) instead of the check's."""
    path = via or os.environ.get(RECORDER_ENV)
    if not path or not wanted():
        return None
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError:
        conn.close()
        return None  # gone (its check ended) or never there: record here
    with conn, conn.makefile("rw", encoding="utf-8") as stream:
        message = {"op": op, "uri": tracking_uri, **payload}
        try:
            stream.write(json.dumps(message, default=str) + "\n")
            stream.flush()
            answer = stream.readline()
        except OSError:
            answer = ""  # it ended with the request in hand: said below
    try:
        reply = json.loads(answer)
    except ValueError:
        raise MlflowError(
            f"mlci's MLflow recorder ({RECORDER_ENV}) ended without answering a {op} request",
            fix=f"re-run; to record in each stage's own process instead, set {RECORDER_ENV}=off",
        ) from None
    if "error" in reply:
        raise worker.rebuild(reply["error"])
    if "declined" in reply:
        return None
    return dict(reply["ok"])


class Remote:
    """``mlci train``'s handle when a recorder runs: the run is recorded there, or in this
    process when the recorder declines (another tracking URI)."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        root: Path,
        *,
        via: str | None = None,
        where: str = "mlci run's recorder",
    ) -> None:
        self.args = (tracking_uri, experiment, root)
        self.via = via
        self.where = where

    def finish(
        self, run_name: str, params: dict[str, Any], tags: dict[str, Any], model_dir: Path
    ) -> dict[str, Any]:
        uri, experiment, root = self.args
        message = {"run_name": run_name, "params": params, "tags": tags, "model": str(model_dir)}
        reply = request(
            "record", uri, via=self.via, experiment=experiment, root=str(root), **message
        )
        if reply is None:
            here = worker.InProcess(*self.args)
            self.where = here.where
            return here.finish(run_name, params, tags, model_dir)
        return reply

    def abort(self) -> None:
        pass


# --- the recorder process ----------------------------------------------------------------------


class Recorder:
    """What the recorder process holds: its tracking URI, the experiments it has looked up,
    and the error opening the store raised, if it did (every request then gets it)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.uri = str(config["uri"])
        self.root = Path(config["root"])
        self.experiments: dict[str, str] = {}
        self.failure: MlciError | None = None
        try:
            name = str(config["experiment"])
            self.experiments[name] = worker.prepare(self.uri, name, self.root)
        except Exception as exc:  # every request gets it, as the stage would have
            self.failure = worker.rebuild(worker.error_of(exc))

    def experiment(self, name: str, root: Path) -> str:
        if name not in self.experiments:
            from mlci.registry import tracking

            self.experiments[name] = tracking.ensure_experiment(name, self.uri, root)
        return self.experiments[name]

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("uri") != self.uri:
            return {"declined": "another tracking URI"}
        if self.failure is not None:
            raise self.failure
        op = message.get("op")
        if op == "record":
            root = Path(message.get("root") or self.root)
            experiment_id = self.experiment(str(message["experiment"]), root)
            return {"ok": worker.record(experiment_id, self.uri, message)}
        if op == "log_metrics":
            from mlci.registry import tracking

            logged = tracking.log_metrics(str(message["run_id"]), message["metrics"], self.uri)
            return {"ok": {"logged": logged}}
        if op == "track":
            from mlci.registry import runs

            run_id = runs.track_run(self.uri, **message["args"])
            return {"ok": {"run_id": run_id}}
        return {"declined": f"unknown request {op!r}"}


_busy = False  # working on a request: a SIGTERM then unwinds it (a started run ends FAILED)
_parent = 0  # the check that started it
_home: tuple[str, int, int] | None = None  # its directory: path, device, inode


def _terminated(signum: int, frame: FrameType | None) -> None:
    if answering():
        worker.terminated(signum, frame)
    _leave(128 + signum)
    os._exit(128 + signum)  # idle (or still loading MLflow): nothing to unwind, end now


def _settle(listener: socket.socket, config: dict[str, Any]) -> None:
    """Know its parent and its directory, and (Linux) have the kernel send it SIGTERM when
    the parent dies, even while it still imports MLflow and reads no stdin."""
    global _home, _parent
    _parent = int(config["parent"])
    path, device, inode = config["home"]
    if listener.getsockname() == os.path.join(path, "sock"):
        _home = (str(path), int(device), int(inode))
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)


def _leave(code: int = 0) -> None:
    """A recorder whose parent is gone removes its directory, the one the parent made (the
    same device and inode) and nothing else, and ends now: nobody waits for it, and a normal
    exit may wait on a library's threads. While the parent lives, the parent removes it."""
    if _home is None or os.getppid() == _parent:
        return
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ending anyway: finish the removal first
    path, device, inode = _home
    with contextlib.suppress(OSError):
        info = os.lstat(path)
        if (info.st_dev, info.st_ino) == (device, inode):
            shutil.rmtree(path, ignore_errors=True)
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.flush()
    os._exit(code)


def answering() -> bool:
    """Whether a request is being worked on (its reply not yet being written)."""
    return _busy


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    os.dup2(2, 1)  # whatever a library prints goes to stderr
    config = json.loads(_read_line(0) or "null")
    if not config:
        return 0
    listener = socket.socket(fileno=int(config["fd"]))
    _settle(listener, config)
    try:
        if os.getppid() != _parent:
            return 0  # the parent died before the kernel was asked to say so
        recorder = Recorder(config)
        while True:
            ready, _, _ = select.select([listener.fileno(), 0], [], [])
            if 0 in ready and not os.read(0, 4096):
                return 0  # the parent closed stdin or ended
            if listener.fileno() in ready:
                conn, _ = listener.accept()
                with conn, conn.makefile("rw", encoding="utf-8") as stream:
                    serve(recorder, stream)
    finally:
        _leave()


def _read_line(fd: int) -> str:
    data = b""
    while not data.endswith(b"\n"):
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8")


def serve(recorder: Recorder, stream: IO[str]) -> None:
    line = stream.readline()
    if not line:
        return
    global _busy
    _busy = True  # until the answer is made: what is recorded then is committed
    try:
        reply = recorder.answer(json.loads(line))
    except Exception as exc:
        reply = {"error": worker.error_of(exc)}
    finally:
        _busy = False
    with contextlib.suppress(OSError):
        stream.write(json.dumps(reply, default=str) + "\n")
        stream.flush()
