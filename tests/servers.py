"""Real servers for the tests, on 127.0.0.1 only: PostgreSQL and an `mlflow server` on it.

One of each per test session. PostgreSQL refuses to run as root, so as root the server runs
as the `postgres` user (Debian's package creates it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for base in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (base / name).exists():
            return str(base / name)
    return None


def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@dataclass(frozen=True)
class Postgres:
    port: int
    datadir: Path

    def url(self, db: str) -> str:
        return f"postgresql+psycopg2://mlci@127.0.0.1:{self.port}/{db}"


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail("PostgreSQL is not installed: `apt-get install postgresql` (.ci/run does)")
    # Not under pytest's tmp dir: that is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="mlci-pg-"))
    datadir = base / "data"
    datadir.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(datadir, "postgres")
    subprocess.run(
        _as_postgres([initdb, "-D", str(datadir), "-U", "mlci", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    opts = f"-h 127.0.0.1 -p {port} -k {datadir}"
    subprocess.run(
        _as_postgres(
            [pg_ctl, "-D", str(datadir), "-o", opts, "-w", "-l", str(datadir / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    try:
        yield Postgres(port, datadir)
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(datadir), "-m", "fast", "stop"]),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def create_db(pg: Postgres, name: str) -> str:
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=pg.port, user="mlci", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return pg.url(name)


@dataclass
class MlflowServer:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def start_mlflow(backend: str, artifacts: Path, log: Path, timeout: float = 120) -> MlflowServer:
    port = free_port()
    env = dict(
        os.environ, MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", MLFLOW_DISABLE_TELEMETRY="true"
    )
    out = log.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            backend,
            "--artifacts-destination",
            str(artifacts),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{url}/health", timeout=2).status_code == 200:
                return MlflowServer(url, proc, log)
        except requests.RequestException:
            pass
        time.sleep(0.5)
    stop_mlflow(MlflowServer(url, proc, log))
    raise RuntimeError(f"mlflow server did not answer /health in {timeout}s")


def stop_mlflow(server: MlflowServer) -> None:
    """End the server's whole process group (its workers too)."""
    try:
        os.killpg(server.proc.pid, signal.SIGTERM)
        server.proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)


@pytest.fixture(scope="session")
def mlflow_server(
    postgres: Postgres, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[MlflowServer]:
    """One `mlflow server` on PostgreSQL for the session (team-scale setup)."""
    base = tmp_path_factory.mktemp("mlflow-server")
    server = start_mlflow(create_db(postgres, "mlflow"), base / "artifacts", base / "log")
    try:
        yield server
    finally:
        stop_mlflow(server)
