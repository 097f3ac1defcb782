"""The suite keeps to itself: this session's temporary files, and those of every process a
test starts, go to a directory of its own, so what other programs left in the machine's
temporary directory (a killed check's recorder, say) can neither fail a test nor be touched."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path


def test_the_suite_has_a_temporary_directory_of_its_own(private_tmp: Path) -> None:
    assert private_tmp.name.startswith("mlci-tests-") and private_tmp.is_dir()
    assert tempfile.gettempdir() == os.environ["TMPDIR"] == str(private_tmp)
    made = Path(tempfile.mkdtemp())
    assert made.parent == private_tmp
    made.rmdir()
    child = subprocess.run(
        [sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert child.stdout == f"{private_tmp}\n"
