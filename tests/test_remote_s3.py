"""A non-local DVC remote for real: S3 protocol against a moto server on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import git

pytestmark = pytest.mark.slow

CREDS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture
def s3() -> Iterator[str]:
    from moto.server import ThreadedMotoServer
    from servers import free_port

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client(
        "s3",
        endpoint_url=url,
        **{k.lower(): v for k, v in CREDS.items() if k != "AWS_DEFAULT_REGION"},
        region_name="us-east-1",
    ).create_bucket(Bucket="mlci-data")
    yield url
    server.stop()


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra)
    return env


def _mlci(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_pull_from_s3_compatible_remote(s3: str, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    env = _env(tmp_path, **CREDS)
    dvc = [sys.executable, "-m", "dvc"]
    for args in (
        ["init", "-q"],
        ["remote", "add", "-d", "store", "s3://mlci-data/cache"],
        ["remote", "modify", "store", "endpointurl", s3],
    ):
        subprocess.run([*dvc, *args], cwd=repo, env=env, check=True)
    (repo / "data.csv").write_text("a,b\n1,2\n3,4\n")
    subprocess.run([*dvc, "add", "-q", "data.csv"], cwd=repo, env=env, check=True)
    subprocess.run([*dvc, "push", "-q"], cwd=repo, env=env, check=True)
    (repo / "data.csv").unlink()
    shutil.rmtree(repo / ".dvc" / "cache")

    pulled = _mlci(repo, env, "pull")
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert (repo / "data.csv").read_text() == "a,b\n1,2\n3,4\n"
    assert "from 'store' (s3://mlci-data/cache)" in pulled.stdout
    assert "data.csv" in pulled.stdout

    (repo / "data.csv").unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    no_creds = _mlci(repo, _env(tmp_path), "pull")
    assert no_creds.returncode == 5, no_creds.stdout + no_creds.stderr
    assert "AWS_ACCESS_KEY_ID" in no_creds.stderr
    assert "Traceback" not in no_creds.stderr
    assert not (repo / "data.csv").exists()


def test_missing_plugin_names_the_install(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / ".dvc").mkdir()
    (repo / ".dvc" / "config").write_text(
        "[core]\n    remote = cloud\n['remote \"cloud\"']\n    url = gs://bucket/path\n"
    )
    (repo / "data.csv.dvc").write_text(
        "outs:\n- md5: 0123456789abcdef0123456789abcdef\n  size: 4\n  path: data.csv\n"
    )
    proc = _mlci(repo, _env(tmp_path), "pull")
    assert proc.returncode == 5, proc.stderr
    assert "pip install 'dvc[gs]'" in proc.stderr
