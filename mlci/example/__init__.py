"""The bundled example: diabetes progression as a tabular classification problem.

The data ships inside scikit-learn (``load_diabetes``), so nothing is downloaded at run time.
``sex`` is kept as a column so slice and fairness metrics mean something.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

FILES = ("dvc.yaml", "params.yaml", "schemas/diabetes.yaml")


def write_data(path: Path) -> int:
    """Write the example CSV to ``path``; return the number of rows."""
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(scaled=False, as_frame=True).frame
    frame.insert(0, "patient_id", range(1, len(frame) + 1))
    frame["sex"] = frame["sex"].astype(int)
    frame["high_progression"] = (frame.pop("target") > 140).astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return len(frame)


def copy_files(dest: Path) -> list[Path]:
    """Copy the example's pipeline, params and schema into ``dest``."""
    root = resources.files("mlci.example")
    written = []
    for name in FILES:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(root.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
        written.append(target)
    return written
