"""Start-up: `mlci --help` / `--version` against a minimal click program, `python -c pass`
and `dvc --version`. Target: within 1.2x of the minimal click program (issue 28; 1.5x before).

Runs alternate (baseline, mlci --help, ..., baseline, ...) so that load from other work on the
machine hits every command alike; the `--help` ratio is also given run by run.

    python bench/startup.py [--repeat 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import PY, machine_facts, table

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


def once(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    repeat = parser.parse_args().repeat
    print(machine_facts())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "minimal.py"
        prog.write_text(MINIMAL_CLICK)
        env = dict(os.environ, DVC_NO_ANALYTICS="1")
        commands = {
            "minimal click `--help` (baseline)": [PY, str(prog), "--help"],
            "`python -c pass`": [PY, "-c", "pass"],
            "`mlci --help`": [MLCI, "--help"],
            "`mlci --version`": [MLCI, "--version"],
        }
        for cmd in commands.values():  # warm-up: the file cache
            once(cmd, env)
        runs: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(repeat):
            for name, cmd in commands.items():
                runs[name].append(once(cmd, env))
        dvc = statistics.median(once([PY, "-m", "dvc", "--version"], env) for _ in range(3))
    medians = {name: statistics.median(times) for name, times in runs.items()}
    base = "minimal click `--help` (baseline)"
    floor = medians[base]
    rows = [(n, s, s / floor) for n, s in medians.items()]
    rows.append(("`dvc --version` (3 runs)", dvc, dvc / floor))
    table(rows, "minimal click --help")
    help_ratio = medians["`mlci --help`"] / floor
    pairs = sorted(m / b for m, b in zip(runs["`mlci --help`"], runs[base], strict=True))
    print(
        f"\nmlci --help is {help_ratio:.2f}x the minimal click program (run by run "
        f"{pairs[0]:.2f}-{pairs[-1]:.2f}, middle {statistics.median(pairs):.2f}; "
        f"target <= 1.2x: {'met' if help_ratio <= 1.2 else 'NOT met'})"
    )
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
