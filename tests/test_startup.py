"""`mlci --help` must not import the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("dvc", "mlflow", "torch", "pandera", "sklearn", "pandas", "requests")


def test_cli_import_pulls_in_no_heavy_library() -> None:
    code = f"import sys, mlci.cli.main; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_help_runs_and_lists_every_stage_command() -> None:
    code = (
        "import sys\nfrom mlci.cli.main import main\nsys.argv=['mlci','--help']\n"
        "try:\n main()\nexcept SystemExit as e:\n assert e.code == 0, e.code\n"
        f"print('HEAVY=' + '|'.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    for cmd in (
        "run",
        "pull",
        "validate",
        "train",
        "evaluate",
        "compare",
        "report",
        "publish",
        "promote",
        "rollback",
        "doctor",
        "demo",
    ):
        assert f"  {cmd} " in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "HEAVY="


def test_version() -> None:
    from mlci import __version__

    proc = subprocess.run(
        [sys.executable, "-m", "mlci", "--version"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    assert __version__ in proc.stdout
