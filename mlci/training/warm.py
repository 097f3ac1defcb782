"""A recorder that outlives the command that started it: ``mlci train`` and ``mlci evaluate``
run alone (``dvc repro`` on a laptop) record through it instead of loading MLflow each time.

Alone, each of those commands paid for importing MLflow and opening its store (about 1.7 s of
CPU here, more than a small training), in a worker beside the fit or in process. The first one
now starts a *warm recorder* instead: the same recorder ``mlci run`` uses
(:mod:`mlci.training.recorder`), started in a session of its own, that stays after the command
ends and answers the next ones on a Unix socket. It ends once it has had no request for
``MLCI_WARM_RECORDER`` seconds (default 300; ``0`` turns it off). CI jobs (``CI`` set) are
one-shot and ``mlci run`` has a recorder of its own, so there it is off unless
``MLCI_WARM_RECORDER`` is set.

A recording is never lost to it: the command waits for the recorder's answer (the run is
committed), and where no warm recorder answers it records in its own process, as before. One
warm recorder serves one tracking URI, one Python and one version of mlci's recording code
under the same MLflow and cloud settings: the socket's name is a digest of all of them, so a
changed setting or upgrade gets a new recorder and the old one ends when idle. Sockets live in
``$XDG_RUNTIME_DIR/mlci-warm-<uid>`` (else the temporary directory), a directory of this user
with mode 0700 that is checked before use, so only this user's processes reach them.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from mlci.errors import ConfigError
from mlci.training import recorder, worker

LINGER_ENV = "MLCI_WARM_RECORDER"
DEFAULT_LINGER = 300.0
# What decides where a run goes and how it gets there: a recorder started under other values
# of these would record elsewhere or with other credentials.
_KEYED_PREFIXES = ("MLFLOW_", "MLCI_MLFLOW", "AWS_", "AZURE_", "GOOGLE_", "GCS_", "HTTP")
_KEYED_NAMES = ("HOME", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE", "NO_PROXY", "no_proxy")
_CODE = ("training/warm.py", "training/recorder.py", "training/worker.py", "registry/tracking.py")


def linger() -> float:
    """Seconds a warm recorder waits for the next request; 0 when there is to be none."""
    raw = os.environ.get(LINGER_ENV)
    if raw is None or not raw.strip():
        ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
        return 0.0 if ci or not recorder.wanted() else DEFAULT_LINGER
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86400:
        raise ConfigError(
            f"{LINGER_ENV}={raw!r} is not a number of seconds from 0 to 86400",
            fix=f"set {LINGER_ENV}=300 (the default) or {LINGER_ENV}=0 to turn it off",
        )
    return value if recorder.wanted() else 0.0


def home() -> Path | None:
    """This user's directory of warm recorders (made mode 0700), or None where it is not
    provably this user's alone (a link, another owner, other permissions)."""
    if os.name == "nt" or not hasattr(socket, "AF_UNIX"):
        return None
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    path = Path(base) / f"mlci-warm-{os.geteuid()}"
    with contextlib.suppress(FileExistsError, OSError):
        path.mkdir(mode=0o700)
    try:
        info = os.lstat(path)
    except OSError:
        return None
    mine = stat.S_ISDIR(info.st_mode) and info.st_uid == os.geteuid()
    return path if mine and stat.S_IMODE(info.st_mode) == 0o700 else None


def key(tracking_uri: str) -> str:
    """The name of the recorder for this URI, Python, recording code and environment."""
    package = Path(__file__).resolve().parent.parent
    stamps = []
    for name in _CODE:
        with contextlib.suppress(OSError):
            stamps.append(os.stat(package / name).st_mtime_ns)
    env = sorted(
        (k, v)
        for k, v in os.environ.items()
        if k.upper().startswith(_KEYED_PREFIXES) or k in _KEYED_NAMES
    )
    where = os.getcwd() if _relative(tracking_uri) else ""  # its path is the caller's cwd's
    what = [sys.executable, str(package), stamps, tracking_uri, where, env]
    return hashlib.sha256(json.dumps(what).encode()).hexdigest()[:24]


def _relative(uri: str) -> bool:
    """A store named relative to the current directory (``sqlite:///mlflow.db``, ``mlruns``,
    ``file:mlruns``): a recorder started elsewhere would record somewhere else."""
    if uri.startswith("sqlite:"):
        return not uri.startswith("sqlite:////") and uri != "sqlite://"
    if uri.startswith("file:"):
        return not uri.startswith("file:/")
    return "://" not in uri and not os.path.isabs(uri)


def address(tracking_uri: str) -> str | None:
    """The socket a warm recorder for this URI listens on; None when there is to be none."""
    if linger() <= 0:
        return None
    where = home()
    if where is None:
        return None
    path = str(where / f"{key(tracking_uri)}.sock")
    return path if len(path.encode()) < 100 else None  # AF_UNIX paths are short


def ensure(tracking_uri: str, experiment: str, root: Path) -> str | None:
    """The socket of a warm recorder for this URI: one that answers, or one started now (it
    loads MLflow while the caller works; a request made meanwhile waits in its queue). None
    when there is to be none, or it cannot start: the caller then records itself."""
    path = address(tracking_uri)
    if path is None:
        return None
    try:
        with _locked(Path(path).parent / "lock"):
            if _answers(path):
                return path
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)  # a recorder that died: nothing listens there
            _start(path, tracking_uri, experiment, root)
    except OSError:
        return None
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One caller at a time finds or starts a recorder (two would both start one)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _answers(path: str) -> bool:
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)  # an empty connection: the recorder reads no request and goes on
        return True
    except OSError:
        return False
    finally:
        conn.close()


def _start(path: str, tracking_uri: str, experiment: str, root: Path) -> None:
    """Bind the socket here (so a request can queue at once) and start the recorder on it, in a
    session of its own with no terminal and no pipes of the caller's (a caller that captures
    this command's output must not wait for the recorder)."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)
        listener.listen(16)
        config = {
            "fd": listener.fileno(),
            "uri": tracking_uri,
            "experiment": experiment,
            "root": str(root),
            "linger": linger(),
            "path": path,
            "inode": os.stat(path).st_ino,
        }
        log = Path(path).with_suffix(".log")
        with open(log, "w", encoding="utf-8") as err:  # why it failed, for --debug
            proc = subprocess.Popen(
                [*worker.python_command(), "-c", "from mlci.training.warm import main; main()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
                env=worker.child_env(),
                pass_fds=(listener.fileno(),),
                start_new_session=True,  # the caller's cwd: see _relative()
            )
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(config) + "\n")
        proc.stdin.close()
        proc.returncode = 0  # never waited for: it outlives this process (no ResourceWarning)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise
    finally:
        listener.close()  # the recorder has its own copy


def remote(tracking_uri: str, experiment: str, root: Path) -> recorder.Remote | None:
    """``mlci train``'s handle on a warm recorder, or None (then a worker or this process)."""
    path = ensure(tracking_uri, experiment, root)
    if path is None:
        return None
    return recorder.Remote(tracking_uri, experiment, root, via=path, where="a warm recorder")


def request(
    op: str, tracking_uri: str, experiment: str, root: Path, **payload: Any
) -> dict[str, Any] | None:
    """``op`` answered by a warm recorder (started now if none runs), or None."""
    path = ensure(tracking_uri, experiment, root)
    if path is None:
        return None
    return recorder.request(op, tracking_uri, via=path, **payload)


# --- the warm recorder process -----------------------------------------------------------------


def _terminated(signum: int, frame: FrameType | None) -> None:
    if recorder.answering():
        worker.terminated(signum, frame)  # unwinds a started run, which ends as FAILED
    os._exit(128 + signum)


def main() -> None:
    """Serve requests until none came for ``linger`` seconds, then remove the socket (only
    this recorder's own), answer what already queued, and end."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminated)
    os.dup2(2, 1)  # whatever a library prints goes to the log, not anywhere a caller reads
    config = json.loads(sys.stdin.readline() or "null")
    if not config:
        os._exit(0)
    listener = socket.socket(fileno=int(config["fd"]))
    Path(str(config["path"])).with_suffix(".pid").write_text(str(os.getpid()), encoding="utf-8")
    served = recorder.Recorder(config)
    idle = float(config["linger"])
    while True:
        ready, _, _ = select.select([listener], [], [], idle)
        if not ready:
            break
        _serve_one(listener, served)
    _retire(config)
    listener.setblocking(False)
    while True:  # a caller that connected just before the socket went: answer it
        try:
            _serve_one(listener, served)
        except BlockingIOError:
            break
    sys.stderr.flush()
    os._exit(0)


def _serve_one(listener: socket.socket, served: recorder.Recorder) -> None:
    conn, _ = listener.accept()
    conn.setblocking(True)
    with conn, conn.makefile("rw", encoding="utf-8") as stream:
        recorder.serve(served, stream)


def _retire(config: dict[str, Any]) -> None:
    """Remove the socket and pid files if they are still this recorder's (a new recorder may
    have replaced a socket it took for dead)."""
    path = str(config["path"])
    with contextlib.suppress(OSError):
        if os.stat(path).st_ino == int(config["inode"]):
            os.unlink(path)
            pid = Path(path).with_suffix(".pid")
            if pid.read_text(encoding="utf-8").strip() == str(os.getpid()):
                pid.unlink()


def running(tracking_uri: str) -> int | None:
    """The pid of the warm recorder serving this URI, if one answers."""
    path = address(tracking_uri)
    if path is None or not _answers(path):
        return None
    with contextlib.suppress(OSError, ValueError):
        return int(Path(path).with_suffix(".pid").read_text(encoding="utf-8"))
    return None
