"""``python -m mlci.example OUT.csv``: the example pipeline's data stage."""

from __future__ import annotations

import sys
from pathlib import Path

from mlci.example import write_data

if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data/diabetes.csv")
    rows = write_data(out)
    sys.stdout.write(f"wrote {rows} rows to {out}\n")
