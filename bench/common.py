"""Shared helpers for the benchmarks: timing whole commands and printing machine facts."""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from importlib import metadata


def machine_facts() -> str:
    versions = []
    for pkg in ("mlci", "dvc", "mlflow", "pandera", "scikit-learn", "torch", "polars", "click"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions.append(f"{pkg} {metadata.version(pkg)}")
    return (
        f"{time.strftime('%Y-%m-%d')} · {os.cpu_count()} CPUs · Python "
        f"{platform.python_version()} · {platform.machine()} · " + ", ".join(versions)
    )


def time_cmd(
    cmd: Sequence[str], repeat: int = 7, cwd: str | None = None, env: dict[str, str] | None = None
) -> float:
    """Median wall time of a command, in seconds (one warm-up run first)."""
    runs = []
    for i in range(repeat + 1):
        start = time.perf_counter()
        subprocess.run(
            cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
        )
        if i:
            runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def time_fn(fn: Callable[[], object], repeat: int = 5) -> float:
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def table(rows: Sequence[tuple[str, float, float | None]], baseline_name: str) -> None:
    print(f"| what | median | vs {baseline_name} |")
    print("|---|---:|---:|")
    for name, seconds, ratio in rows:
        r = f"{ratio:.2f}x" if ratio is not None else ""
        print(f"| {name} | {seconds * 1000:.0f} ms | {r} |")


PY = sys.executable
