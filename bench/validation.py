"""Validation throughput: mlci's validation (pandera, with its fast uniqueness path) against a
hand-written vectorised check of the same rules, at 1M and 5M rows x 10 columns, with peak
memory. Target: within 1.25x of the hand-written check at 5M rows.

    python bench/validation.py [ROWS ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import PY, machine_facts

SCHEMA = """
import pandera.pandas as pa
schema = pa.DataFrameSchema({
    "id": pa.Column(int, unique=True),
    **{f"x{i}": pa.Column(float, pa.Check.in_range(-10, 10)) for i in range(6)},
    "n": pa.Column(int, pa.Check.ge(0)),
    "cat": pa.Column(str, pa.Check.isin(["a", "b", "c", "d"])),
    "flag": pa.Column(bool),
}, strict=True)
"""

MAKE = """
import sys, numpy as np, pandas as pd
n = int(sys.argv[1]); rng = np.random.default_rng(0)
df = pd.DataFrame({"id": np.arange(n), **{f"x{i}": rng.uniform(-5, 5, n) for i in range(6)},
                   "n": rng.integers(0, 100, n), "cat": rng.choice(list("abcd"), n),
                   "flag": rng.random(n) > 0.5})
df.to_parquet(sys.argv[2])
"""

# Each measurement runs in its own process so peak RSS belongs to it alone.
RUN = r"""
import json, resource, sys, time
from pathlib import Path
kind, path = sys.argv[1], Path(sys.argv[2])
import numpy as np, pandas as pd, pandera.pandas
t0 = time.perf_counter()
if kind == "mlci":
    from mlci.checks import validation
    r = validation.validate(path.parent, {path.name: "schema_mod:schema"}, use_cache=False)
    ok = r.ok
else:
    df = pd.read_parquet(path)
    ok = (set(df.columns) == {"id", *[f"x{i}" for i in range(6)], "n", "cat", "flag"}
          and df["id"].is_unique
          and all(((df[f"x{i}"] >= -10) & (df[f"x{i}"] <= 10)).all() for i in range(6))
          and (df["n"] >= 0).all() and df["cat"].isin(["a", "b", "c", "d"]).all()
          and df["flag"].dtype == bool and not df.isna().any().any())
took = time.perf_counter() - t0
print(json.dumps({"ok": bool(ok), "s": took,
                  "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(kind: str, path: Path, repeat: int = 3) -> dict[str, float]:
    runs = []
    for _ in range(repeat):
        out = subprocess.run(
            [PY, "-c", RUN, kind, str(path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=path.parent,
            env={"PYTHONPATH": str(path.parent), "PATH": "/usr/bin:/bin"},
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    assert all(r["ok"] for r in runs), runs
    runs.sort(key=lambda r: r["s"])
    return runs[len(runs) // 2]


def main() -> None:
    sizes = [int(a) for a in sys.argv[1:]] or [1_000_000, 5_000_000]
    print(machine_facts())
    print("| rows | hand-written | mlci validate | ratio | peak MB hand / mlci |")
    print("|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        (d / "schema_mod.py").write_text(SCHEMA)
        for n in sizes:
            data = d / "data.parquet"
            subprocess.run([PY, "-c", MAKE, str(n), str(data)], check=True)
            hand, ours = measure("hand", data), measure("mlci", data)
            print(
                f"| {n:,} | {hand['s']:.2f} s | {ours['s']:.2f} s | "
                f"{ours['s'] / hand['s']:.2f}x | {hand['peak_mb']:.0f} / {ours['peak_mb']:.0f} |"
            )
    print("\ntarget: mlci within 1.25x of the hand-written check (5M rows)")


if __name__ == "__main__":
    main()
