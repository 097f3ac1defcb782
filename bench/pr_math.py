"""Show your math: what the report's cost and importance sections add to a PR check, and how
noisy the latency they gate on is. (Not bench/math.py: run as a script, that name would shadow
the standard library's ``math`` for every import.)

1. One real PR check of the bundled example (one hyperparameter changed, so it trains): the
   `insight` stage's time (latency, permutation importance, training cost, base and PR)
   against the `reproduce` stage's, read from the report's run facts. Also the whole check.
2. The latency measurement five times on an unchanged model (the model the check trained, as
   both base and PR: the same bytes): per run the p95 of one row (`mlci.latency_p95_ms`) and
   the median batch of 1,000 rows (`mlci.batch_ms`) of each side, their relative difference,
   and whether a `rel_tol: 0.2` gate would have failed on that noise alone. Interleaving is
   what makes the two sides comparable; the spread across runs shows what a `max:` must allow.

3. What changed in the data: the row-level diff of a synthetic pair of 10^6-row tables (1% of
   rows removed, 1% added, 5% with a changed number, 0.5% with changed text, one column added
   and one retyped), keyed and by whole row: its time and peak memory (tracemalloc), against
   the drift comparison the check already makes of the same pair and the frames' own size.

    python bench/pr_math.py [SECONDS]     # SECONDS: mlci.explain.seconds (default 30)
    python bench/pr_math.py diff [ROWS]   # part 3 alone (ROWS: default 1,000,000)

Numbers, never a verdict: nothing here fails on a threshold.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import PY, machine_facts

MLCI = [str(Path(PY).parent / "mlci")]


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def stage_seconds(report: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(r"\| stage (\w+) \| ([0-9.]+)s \|", report)}


def pr_check(project: Path, seconds: float) -> None:
    git(project, "checkout", "-q", "pr/tune-model")
    params = project / "params.yaml"
    text = params.read_text(encoding="utf-8")
    params.write_text(
        text.replace("mlci:\n", f"mlci:\n  explain: {{seconds: {seconds:g}}}\n", 1),
        encoding="utf-8",
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [*MLCI, "run", "--base", "main"], cwd=project, capture_output=True, text=True, check=False
    )
    whole = time.perf_counter() - t0
    report = (project / ".mlci" / "report.md").read_text(encoding="utf-8")
    stages = stage_seconds(report)
    took = re.search(r"Measuring these took ([0-9.]+) s", report)
    print(f"\n## 1. One PR check that trains (exit {proc.returncode}, whole check {whole:.1f} s)\n")
    print("| stage | seconds | vs reproduce |")
    print("|---|---:|---:|")
    rep = stages.get("reproduce") or float("nan")
    for name, s in stages.items():
        print(f"| {name} | {s:.1f} | {s / rep:.2f}x |")
    if took:
        print(f"\nThe sections' own clock: {took[1]} s (budget {seconds:g} s).")


def noise(project: Path, runs: int, seconds: float) -> None:
    """The model the check just trained against itself, ``runs`` times, in this process."""
    os.chdir(project)
    from mlci.insight import runcost
    from mlci.insight.result import Side, Timings
    from mlci.training.base import train_params
    from mlci.training.explain import load
    from mlci.training.run import load_split

    file = project / "models" / "model.pkl"
    size = file.stat().st_size
    base = load(project, file, "the PR's model (as base)", size)
    head = load(project, file, "the PR's model (as PR)", size)
    x = load_split(project, train_params(project)).x_test
    print(f"\n## 2. Latency of an unchanged model, {runs} runs (budget {seconds / 3:g} s each)\n")
    print("| run | p95 one row, base / PR (ms) | rel. | batch p50, base / PR (ms) | rel. |")
    print("|---:|---:|---:|---:|---:|")
    fails = {"mlci.latency_p95_ms": 0, "mlci.batch_ms": 0}
    p95s: list[float] = []
    for i in range(runs):
        found = runcost.measure(base, head, x, budget_s=seconds / 3)
        b, h = found.base, found.head
        assert isinstance(b, Side) and isinstance(h, Side)
        bt, ht = b.timings, h.timings
        assert isinstance(bt, Timings) and isinstance(ht, Timings)
        row = (ht.row.p95 - bt.row.p95) / bt.row.p95
        batch = (ht.batch.p50 - bt.batch.p50) / bt.batch.p50
        fails["mlci.latency_p95_ms"] += row > 0.2
        fails["mlci.batch_ms"] += batch > 0.2
        p95s += [bt.row.p95, ht.row.p95]
        print(
            f"| {i + 1} | {bt.row.p95:.3g} / {ht.row.p95:.3g} | {row:+.1%} | "
            f"{bt.batch.p50:.3g} / {ht.batch.p50:.3g} | {batch:+.1%} |"
        )
    print(f"\nRounds per run: {ht.row.n} single rows, {ht.batch.n} batches per side.")
    print(f"p95 of one row across all runs and sides: {min(p95s):.3g}–{max(p95s):.3g} ms.")
    for name, n in fails.items():
        print(f"A `{name}: {{direction: lower, rel_tol: 0.2}}` gate fails on noise: {n}/{runs}.")


def synthetic_pair(rows: int) -> tuple[Any, Any]:
    """A base table and a PR's edit of it: rows removed, added and changed, columns changed."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    base = pd.DataFrame(
        {
            "id": np.arange(rows),
            "x": rng.normal(size=rows),
            "y": rng.normal(size=rows),
            "n": rng.integers(0, 100, rows),
            "group": rng.choice(["a", "b", "c", "d"], rows),
            "text": pd.Series(rng.integers(0, 10**9, rows)).astype(str),
        }
    )
    head = base.drop(index=rng.choice(rows, rows // 100, replace=False)).reset_index(drop=True)
    new = base.sample(rows // 100, random_state=1).assign(id=np.arange(rows, rows + rows // 100))
    head = pd.concat([head, new], ignore_index=True)
    pick = rng.choice(len(head), len(head) // 20, replace=False)
    head.loc[pick, "x"] += rng.normal(size=len(pick))
    pick = rng.choice(len(head), len(head) // 200, replace=False)
    head.loc[pick, "text"] = "edited"
    head["n"] = head["n"].astype(float)  # retyped
    head["z"] = 1.0  # added
    return base, head


def data_diff(rows: int) -> None:
    """The diff keyed and by whole row: time, Python-heap peak (tracemalloc: numpy and
    pandas buffers, not Arrow's pool) and the process's peak RSS growth over the first diff
    (everything, Arrow included), against the drift of the same pair and the frames' size."""
    import resource
    import tracemalloc

    from mlci.checks import datadiff, drift
    from mlci.settings.datachecks import Thresholds

    base, head = synthetic_pair(rows)
    size = (base.memory_usage(deep=True).sum() + head.memory_usage(deep=True).sum()) / 2**20
    print(f"\n## 3. What changed in the data: {rows:,} rows ({size:.0f} MiB in both frames)\n")
    print("| diff | seconds | vs drift | peak MiB (tracemalloc) | vs frames | result |")
    print("|---|---:|---:|---:|---:|---|")
    lines = []
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for name, keys in (("keyed by id", ("id",)), ("whole rows", ())):
        t0 = time.perf_counter()
        found = datadiff.diff_frames("d.csv", base, head, keys, "mlci.data_keys", {"text"})
        took = time.perf_counter() - t0
        if rss:
            grew = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
            rss = 0
        tracemalloc.start()
        datadiff.diff_frames("d.csv", base, head, keys, "mlci.data_keys", {"text"})
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        result = f"+{found.added:,} −{found.removed:,} ~{found.changed}, {len(found.cells)} cells"
        lines.append((name, took, peak, result))
    t0 = time.perf_counter()
    drift.compare_frames("d.csv", base, head, Thresholds())
    drift_s = time.perf_counter() - t0
    for name, took, peak, result in lines:
        print(
            f"| {name} | {took:.2f} | {took / drift_s:.2f}x | {peak:.0f} | {peak / size:.2f}x "
            f"| {result} |"
        )
    print(f"\nThe drift of the same pair (the baseline): {drift_s:.2f} s.")
    print(f"Peak RSS growth over the first diff (Arrow's pool included): {grew:.0f} MiB.")


def main() -> None:
    if sys.argv[1:2] == ["diff"]:
        print(machine_facts())
        data_diff(int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000)
        return
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 30.0
    print(machine_facts())
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    from mlci.adopt.demo import build_project, open_pr, prepare_env

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        prepare_env(work)
        project = work / "project"
        build_project(project, work / "dvc-remote")
        open_pr(project, regress=False)
        pr_check(project, seconds)
        noise(project, 5, seconds)
    data_diff(1_000_000)
    print(f"\nload average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
