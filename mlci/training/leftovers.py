"""What a killed check leaves behind: recorder directories (``$TMPDIR/mlci-rec-*``), the
``owner`` file that names the process they belong to, and the sweep that removes those whose
owner is provably gone."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import stat
import time
from pathlib import Path
from typing import Any

PREFIX = "mlci-rec-"  # a recorder's private directory: mlci-rec-XXXXXXXX/{owner,sock}


def sweep(where: str) -> None:
    """Remove from ``where`` the directories of this user's recorders whose check was killed.

    Only what is provably stale goes: a directory (never a link) of this user, mode 0700, named
    ``mlci-rec-*``, whose ``owner`` process is gone (the same pid on this host, boot and PID
    namespace, started at another time or not at all) and whose socket no process listens on.
    A directory from an mlci before owner files goes only when all it holds is a socket that
    refuses connections (a socket nobody listens on never listens again) and it is an hour old.
    """
    with contextlib.suppress(OSError):
        for name in os.listdir(where):
            path = os.path.join(where, name)
            if name.startswith(PREFIX) and _stale(path):
                shutil.rmtree(path, ignore_errors=True)


def identity(pid: int) -> dict[str, Any]:
    """What names process ``pid`` for as long as it lives (an ``owner`` file's content)."""
    return {"pid": pid, "started": start_time(pid), "machine": _machine()}


def start_time(pid: int) -> str | None:
    """When ``pid`` started (``/proc/<pid>/stat`` field 22), so that a reused pid is not taken
    for the process it named; None where no live process has the pid (none, or a zombie); "?"
    where one has it but this system does not say when it started (no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as proc_stat:
            fields = proc_stat.read().rsplit(b")", 1)[1].split()
    except OSError:
        if os.path.exists("/proc/self/stat"):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass  # another user's process: it exists
        return "?"
    return None if fields[0] in (b"Z", b"X") else fields[19].decode()


def _machine() -> str:
    """This host, boot and PID namespace: a pid names one process only within all three."""
    boot = namespace = ""
    with contextlib.suppress(OSError):
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    with contextlib.suppress(OSError):
        namespace = os.readlink("/proc/self/ns/pid")
    return f"{socket.gethostname()} {boot} {namespace}"


def _stale(path: str) -> bool:
    sock = os.path.join(path, "sock")
    try:
        info = os.lstat(path)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return False  # a link (never followed), a file, or another user's
        if stat.S_IMODE(info.st_mode) != 0o700:
            return False  # not made by mkdtemp
        if os.path.lexists(os.path.join(path, "owner")):
            return _owner_gone(os.path.join(path, "owner")) and not _answers(sock)
        legacy = os.listdir(path) == ["sock"] and stat.S_ISSOCK(os.lstat(sock).st_mode)
        return legacy and time.time() - info.st_mtime > 3600 and not _answers(sock)
    except (OSError, ValueError, LookupError, TypeError):
        return False  # unreadable, or not what a recorder writes: not provably stale


def _owner_gone(owner_file: str) -> bool:
    with open(owner_file, encoding="utf-8") as file:
        owner = json.loads(file.read(4096))
    pid = owner["pid"]
    if type(pid) is not int or pid <= 0 or owner["machine"] != _machine():
        return False  # another host, boot or PID namespace: its pid says nothing here
    return start_time(pid) not in ("?", owner["started"])


def _answers(sock: str) -> bool:
    """Whether a process may be listening on ``sock``: False only where the connection is
    refused or there is no socket. (A recorder it reaches reads an empty request and goes on.)"""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.setblocking(False)
    try:
        probe.connect(sock)
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # its queue is full, or the path cannot be named: it may live
    finally:
        probe.close()
    return True
