"""Start-up: `mlci --help` / `--version` against a minimal click program, `python -c pass`
and `dvc --version`. Target: within 1.5x of the minimal click program.

    python bench/startup.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from common import PY, machine_facts, table, time_cmd

MLCI = str(Path(PY).parent / "mlci")

MINIMAL_CLICK = """
import click

@click.group()
def cli():
    '''A minimal click program.'''

@cli.command()
def hello():
    '''Say hello.'''

cli()
"""


def main() -> None:
    print(machine_facts())
    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "minimal.py"
        prog.write_text(MINIMAL_CLICK)
        env = dict(os.environ, DVC_NO_ANALYTICS="1")
        floor = time_cmd([PY, str(prog), "--help"], env=env)
        rows = [
            ("minimal click `--help` (baseline)", floor, 1.0),
            ("`python -c pass`", time_cmd([PY, "-c", "pass"], env=env), None),
            ("`mlci --help`", time_cmd([MLCI, "--help"], env=env), None),
            ("`mlci --version`", time_cmd([MLCI, "--version"], env=env), None),
            ("`dvc --version`", time_cmd([PY, "-m", "dvc", "--version"], env=env, repeat=3), None),
        ]
    rows = [(n, s, s / floor) for n, s, _ in rows]
    table(rows, "minimal click --help")
    help_ratio = rows[2][2]
    print(
        f"\nmlci --help is {help_ratio:.2f}x the minimal click program "
        f"(target <= 1.5x: {'met' if help_ratio and help_ratio <= 1.5 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
