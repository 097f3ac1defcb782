"""SIGINT and SIGTERM: stop the running stage's processes, then stop with exit 130 or 143.

While ``handled()`` is active (``cli.main`` wraps every command in it) a signal is recorded.
A stage command started through ``run_child`` runs in its own process group; the signal is
forwarded to that whole group, which gets ``GRACE_S`` seconds to exit before SIGKILL (a second
signal kills it at once). With no stage running, ``Interrupted`` is raised where the program
is. Whatever the code in between makes of it, ``cli.main`` exits 130 (SIGINT) or 143
(SIGTERM) with one line, because ``received()`` remembers the signal.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TYPE_CHECKING, Any

from mlci.errors import Interrupted, Terminated

if TYPE_CHECKING:
    import subprocess  # imported where a stage starts: `mlci --help` need not pay for it

# GitHub Actions sends SIGINT, then SIGTERM 7.5 s later, then SIGKILL 2.5 s after that: the
# stage gets this long to exit, so mlci can still write its report before SIGKILL comes.
GRACE_S = 5.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _State:
    def __init__(self) -> None:
        self.active = False
        self.starting = False  # a stage's process is being started: a signal waits for it
        self.received: int | None = None
        self.deadline: float | None = None
        self.groups: dict[int, str] = {}  # process group id -> the stage it runs
        self.stopped: list[str] = []  # stages whose processes a signal stopped


_state = _State()


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Record SIGINT/SIGTERM and forward them to running stages (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {s: signal.signal(s, _on_signal) for s in SIGNALS}
    _state.active, _state.received, _state.deadline = True, None, None
    _state.stopped.clear()
    try:
        yield
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)
        _state.active = False


def active() -> bool:
    return _state.active


def received() -> int | None:
    """The first signal received while ``handled()`` was active, if any."""
    return _state.received


def interrupted() -> Interrupted:
    """The error that tells the user which signal stopped the run, and where."""
    signum = _state.received or signal.SIGINT
    name = signal.Signals(signum).name
    where = ""
    if _state.stopped:
        where = f" while DVC stage '{_state.stopped[0]}' ran; its processes were stopped"
    cls = Terminated if signum == signal.SIGTERM else Interrupted
    return cls(
        f"{name} received{where}",
        fix="re-run the command; an interrupted stage starts over",
    )


def check() -> None:
    """Raise ``interrupted()`` when a signal came (code that swallowed it carries on here)."""
    if _state.received is not None:
        raise interrupted()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    first = _state.received is None
    if first:
        _state.received = signum
    if not _state.groups and not _state.starting:
        raise interrupted()
    for pgid in list(_state.groups):
        _kill_group(pgid, signum if first else signal.SIGKILL)
    if first:
        _state.deadline = time.monotonic() + GRACE_S
        timer = threading.Timer(GRACE_S, _kill_all)
        timer.daemon = True
        timer.start()


def _kill_group(pgid: int, signum: int) -> bool:
    """Send ``signum`` to a process group; False when the group is gone."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # not ours to signal (EPERM): it is alive
    return True


def _kill_all() -> None:
    for pgid in list(_state.groups):
        _kill_group(pgid, signal.SIGKILL)


def run_child(args: Sequence[str], stage: str, **popen: Any) -> int:
    """Run a stage command in a process group of its own and wait for it; returns its status.

    A signal while it runs is forwarded to the group; after a signal the group's last process
    is gone (or SIGKILLed at the deadline) before this returns or raises.
    """
    import subprocess

    check()
    if sys.version_info >= (3, 11):
        popen["process_group"] = 0
    else:  # pragma: no cover
        popen["preexec_fn"] = os.setpgrp
    _state.starting = True
    try:
        proc = subprocess.Popen(args, **popen)
        _state.groups[proc.pid] = stage
    finally:
        _state.starting = False
    if _state.received is not None:  # it came while the process started: forward it now
        _kill_group(proc.pid, _state.received)
    try:
        returncode = proc.wait()
    except BaseException:
        _kill_group(proc.pid, _state.received or signal.SIGTERM)
        raise
    finally:
        try:
            if _state.received is not None:
                _state.stopped.append(stage)
                _stop_group(proc)  # still registered: a second signal SIGKILLs the group
        finally:
            _state.groups.pop(proc.pid, None)
    check()
    return returncode


def _stop_group(proc: subprocess.Popen[Any]) -> None:
    """Wait until the stopped stage's group is empty, up to the deadline; then SIGKILL it."""
    deadline = _state.deadline or time.monotonic() + GRACE_S
    while time.monotonic() < deadline:
        if proc.poll() is not None and not _kill_group(proc.pid, 0):
            return
        time.sleep(0.05)
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()
