"""A fresh clone of this repository reproduces its example with `dvc repro` at its root, twice,
to the same bytes (the README's local-parity promise)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO_ROOT, git

pytestmark = pytest.mark.slow

# Outputs that must be identical across clones; reports/train.json holds run ids and timings.
SAME = (
    "data/diabetes.csv",
    "models/model.pkl",
    "metrics.json",
    "plots/roc.json",
    "plots/pr.json",
    "plots/confusion.json",
    "reports/validation.json",
)


def _repro(cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", "repro"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _digests(root: Path) -> dict[str, str]:
    return {p: hashlib.sha256((root / p).read_bytes()).hexdigest() for p in SAME}


def test_a_fresh_clone_reproduces_bit_for_bit(tmp_path: Path) -> None:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout of mlci: nothing to clone")
    clones = []
    for name in ("a", "b"):
        dest = tmp_path / name
        git(tmp_path, "clone", "-q", str(REPO_ROOT), str(dest))
        out = _repro(dest)
        assert "Running stage 'train'" in out
        clones.append(dest)
    assert _digests(clones[0]) == _digests(clones[1])
    again = _repro(clones[0])
    assert "Data and pipelines are up to date" in again
    # the run leaves only what a DVC user commits next
    status = git(clones[0], "status", "--porcelain").split("\n")
    assert [s for s in status if s] == ["?? dvc.lock"]
