"""Monitor drift throughput: mlci's drift statistics (the same ``drift.compare_frames`` the PR
check and ``mlci monitor`` use) against Evidently's data drift report on the same data and
columns, configured with the same statistic and threshold (PSI, 0.2), as the baseline in the
same run. 1M rows x 10 columns (8 numeric, 2 categorical) for the reference and the snapshot;
4 columns drift. Prints wall time and peak memory of each (own process each) and whether the
per-column verdicts agree. Target: at least 5x faster, same verdicts.

    pip install -e '.[bench]'          # Evidently: a bench-only dependency, never in CI
    python bench/monitor.py [ROWS]     # MLCI_BENCH_EVIDENTLY_PYTHON: a Python that has it

Evidently 0.7 needs pandas < 3: where mlci's environment has pandas 3, point
``MLCI_BENCH_EVIDENTLY_PYTHON`` at a separate environment with Evidently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from common import PY, machine_facts

NUMERIC = [f"x{i}" for i in range(8)]
CATEGORICAL = ["region", "channel"]
DRIFTED = {"x0", "x1", "x2", "region"}

MAKE = """
import sys, numpy as np, pandas as pd
n, out = int(sys.argv[1]), sys.argv[2]
def frame(seed, shift):
    rng = np.random.default_rng(seed)
    cols = {f"x{i}": rng.normal(0, 1, n) for i in range(8)}
    if shift:
        cols["x0"] = cols["x0"] + 0.8
        cols["x1"] = cols["x1"] * 2.0
        cols["x2"] = rng.exponential(1.0, n)
    p = [0.4, 0.3, 0.2, 0.1] if not shift else [0.1, 0.2, 0.3, 0.4]
    cols["region"] = rng.choice(["north", "south", "east", "west"], n, p=p)
    cols["channel"] = rng.choice(["web", "app", "shop"], n)
    return pd.DataFrame(cols)
frame(1, False).to_parquet(f"{out}/reference.parquet")
frame(2, True).to_parquet(f"{out}/snapshot.parquet")
"""

# Each measurement runs in its own process so its peak RSS is its own.
MLCI = r"""
import json, resource, sys, time
import pandas as pd
from mlci.checks.drift import compare_frames
from mlci.settings.datachecks import Thresholds
ref = pd.read_parquet(sys.argv[1] + "/reference.parquet")
cur = pd.read_parquet(sys.argv[1] + "/snapshot.parquet")
t0 = time.perf_counter()
found = compare_frames("snapshot.parquet", ref, cur, Thresholds(psi=0.2, ks=1.0, tvd=0.1))
seconds = time.perf_counter() - t0
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb,
                  "verdicts": {c.column: c.drifted for c in found.columns},
                  "scores": {c.column: c.score for c in found.columns}}))
"""

EVIDENTLY = r"""
import json, resource, sys, time
import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset
num, cat = json.loads(sys.argv[2]), json.loads(sys.argv[3])
ref = pd.read_parquet(sys.argv[1] + "/reference.parquet")
cur = pd.read_parquet(sys.argv[1] + "/snapshot.parquet")
t0 = time.perf_counter()
definition = DataDefinition(numerical_columns=num, categorical_columns=cat)
report = Report([DataDriftPreset(columns=num + cat, method="psi", threshold=0.2)])
snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                      Dataset.from_pandas(ref, data_definition=definition))
result = snapshot.dict()
seconds = time.perf_counter() - t0
verdicts, scores = {}, {}
for m in result["metrics"]:
    name = m.get("metric_name") or m.get("metric_id") or ""
    if name.startswith("ValueDrift("):
        col = name.split("column=", 1)[1].split(",", 1)[0].rstrip(")")
        scores[col] = float(m["value"])
        verdicts[col] = float(m["value"]) >= 0.2  # Evidently: PSI >= threshold is drift
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak_mb, "verdicts": verdicts, "scores": scores}))
"""


def _run(python: str, code: str, *args: str) -> dict[str, object]:
    proc = subprocess.run([python, "-c", code, *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit(f"benchmark process failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    rows = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    evidently_py = os.environ.get("MLCI_BENCH_EVIDENTLY_PYTHON", PY)
    print(machine_facts())
    with tempfile.TemporaryDirectory(prefix="mlci-bench-monitor-") as tmp:
        subprocess.run([PY, "-c", MAKE, str(rows), tmp], check=True)
        ours = _run(PY, MLCI, tmp)
        base = _run(evidently_py, EVIDENTLY, tmp, json.dumps(NUMERIC), json.dumps(CATEGORICAL))
    ours_v, base_v = dict(ours["verdicts"]), dict(base["verdicts"])  # type: ignore[call-overload]
    print(f"\n{rows:,} rows x {len(NUMERIC) + len(CATEGORICAL)} columns, reference and snapshot")
    print("| what | drift time | peak RSS | vs Evidently |")
    print("|---|---:|---:|---:|")
    ratio = float(base["seconds"]) / float(ours["seconds"])  # type: ignore[arg-type]
    print(
        f"| mlci drift (PSI+KS, TVD) | {ours['seconds']:.2f} s | {ours['peak_mb']:.0f} MB | "
        f"{ratio:.1f}x faster |"
    )
    print(
        f"| Evidently DataDriftPreset (PSI) | {base['seconds']:.2f} s | "
        f"{base['peak_mb']:.0f} MB | 1.0x |"
    )
    print("\n| column | mlci score | mlci drifted | Evidently PSI | Evidently drifted | expected |")
    print("|---|---:|---|---:|---|---|")
    agree = True
    for col in NUMERIC + CATEGORICAL:
        a, b = ours_v.get(col), base_v.get(col)
        agree &= a == b == (col in DRIFTED)
        print(
            f"| {col} | {ours['scores'][col]:.4f} | {a} | "  # type: ignore[index]
            f"{base['scores'].get(col, float('nan')):.4f} | {b} | {col in DRIFTED} |"
        )  # type: ignore[attr-defined]
    print(
        f"\nsame per-column verdicts: {'yes' if agree else 'NO'}; target >= 5x: "
        f"{'met' if ratio >= 5 else 'missed'} ({ratio:.1f}x)"
    )


if __name__ == "__main__":
    main()
