"""Start-up: `mlci --help` / `--version` against a minimal click program, `python -c pass`
and `dvc --version`. Target: within 1.2x of the minimal click program (issue 28; 1.5x before).

Runs alternate (baseline, mlci --help, ..., baseline, ...) so that load from other work on the
machine hits every command alike; the `--help` ratio is also given run by run.

Every command runs with its modules' bytecode cached (in a temporary PYTHONPYCACHEPREFIX that
the warm-up run fills), as a pip-installed mlci has it. `--as-is` keeps the environment's
settings instead: an editable checkout under PYTHONDONTWRITEBYTECODE=1 compiles mlci's own
modules from source on every start (click's and the standard library's .pyc were written when
they were installed), which costs mlci some 5-10 ms the baseline does not pay.

    python bench/startup.py [--repeat 15] [--as-is]
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


def bytecode_settings(env: dict[str, str]) -> str:
    names = ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    return ", ".join(f"{n}={env[n]}" for n in names if n in env) or "defaults"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument(
        "--as-is", action="store_true", help="Keep the environment's bytecode settings."
    )
    args = parser.parse_args()
    repeat = args.repeat
    print(machine_facts())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        prog = Path(tmp) / "minimal.py"
        prog.write_text(MINIMAL_CLICK)
        env = dict(os.environ, DVC_NO_ANALYTICS="1")
        if args.as_is:
            print(f"bytecode as the environment has it: {bytecode_settings(env)}")
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
            print("bytecode cached (a temporary PYTHONPYCACHEPREFIX, filled by the warm-up)")
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
