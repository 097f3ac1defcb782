"""`mlci init`'s data schemas never block valid new data.

A churn-like table (RowNumber, CustomerId, Surname, Geography, Age, Balance, Exited) in a DVC
project, adopted with `mlci init`. pandera's own inference would write `RowNumber <= 40` and
`CustomerId <= 15638482`, so the next customer fails with exit 3. The written schema keeps
types, nullability and categories only: five valid new customers (larger ids, new surnames,
older and richer) pass `mlci validate`; a wrong type, a null in a non-null column and an unseen
category each still fail it with exit 3.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import git

ACTION = "acme/mlci@0123456789abcdef0123456789abcdef01234567"


def mlci(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def _dvc(cwd: Path, *args: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "dvc", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


SURNAMES = ("Hargrave", "Hill", "Onio", "Boni", "Mitchell", "Chu", "Bartlett", "Obinna", "He")
CHURN_DVC = """\
stages:
  train:
    cmd: python train.py
    deps: [train.py, data/churn.csv]
    metrics:
      - metrics.json:
          cache: false
"""


def _churn_rows(start: int, count: int, *, base_id: int = 15_634_602) -> list[str]:
    rows = []
    for i in range(start, start + count):
        surname = SURNAMES[i % len(SURNAMES)]
        geography = ("France", "Spain", "Germany")[i % 3]
        balance = 0.0 if i % 4 == 0 else round(1000 + i * 1234.56, 2)
        age = 18 + i * 7 % 30
        rows.append(f"{i},{base_id + i * 97},{surname},{geography},{age},{balance},{i % 5 // 4}")
    return rows


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory, isolated_env: Path) -> Path:
    """A DVC project over a churn-like table (40 rows), adopted with `mlci init`."""
    root = tmp_path_factory.mktemp("churn") / "project"
    (root / "data").mkdir(parents=True)
    git(root, "init", "-q", "-b", "main")
    header = "RowNumber,CustomerId,Surname,Geography,Age,Balance,Exited"
    (root / "data" / "churn.csv").write_text("\n".join([header, *_churn_rows(1, 40)]) + "\n")
    (root / "dvc.yaml").write_text(CHURN_DVC)
    (root / "train.py").write_text("print('train')\n")
    (root / "metrics.json").write_text('{"accuracy": 0.86}\n')
    _dvc(root, "init", "-q")
    _dvc(root, "config", "core.analytics", "false")
    proc = mlci(root, "init", "--action", ACTION)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Adopt mlci")
    return root


def test_the_inferred_schema_keeps_types_nulls_and_categories_and_bounds_nothing(
    churn: Path,
) -> None:
    text = (churn / "schemas" / "churn.yaml").read_text()
    columns = yaml.safe_load(text)["columns"]
    assert columns["Geography"]["checks"] == {"isin": ["France", "Germany", "Spain"]}
    for name in ("RowNumber", "CustomerId", "Surname", "Age", "Balance", "Exited"):
        assert set(columns[name]) == {"dtype"}, (name, columns[name])  # no checks at all
    assert columns["Age"]["dtype"] == "int64" and columns["Balance"]["dtype"] == "float64"
    assert "# Text left open (free text, ids or dates: no isin): Surname." in text
    assert (
        "#   Age:\n#     dtype: int64\n#     checks:\n#       greater_than_or_equal_to: 0" in text
    )
    (seen,) = [line for line in text.splitlines() if line.startswith("# Seen today")]
    assert seen.startswith("# Seen today (a reference, not checked): Age 18 .. 47; Balance 0 ..")
    assert "CustomerId" not in seen and "RowNumber" not in seen  # ids: no span offered


@pytest.mark.parametrize(
    ("bad", "failure"),
    [
        (None, None),  # five valid new customers: larger ids, new surnames, older, richer
        ("46,16000046,Nakamura,France,forty,1.5,0", "column Age: 1 rows fail coerce_dtype"),
        ("46,16000046,Nakamura,France,40,,0", "column Balance: 1 rows fail not_nullable"),
        ("46,16000046,Nakamura,Italy,40,1.5,0", "column Geography: 1 rows fail isin("),
    ],
    ids=["valid", "wrong-type", "null", "unseen-category"],
)
def test_valid_new_rows_pass_and_invalid_ones_fail_with_exit_3(
    churn: Path, tmp_path: Path, bad: str | None, failure: str | None
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(churn, repo)
    new = [
        f"{41 + k},{16_000_000 + k},{name},{geo},{age},{balance},{k % 2}"
        for k, (name, geo, age, balance) in enumerate(
            [
                ("Nakamura", "France", 92, 250898.09),
                ("Okafor", "Germany", 19, 0.0),
                ("Zhang", "Spain", 71, 300000.5),
                ("Lindqvist", "France", 88, 12.0),
                ("Moreau", "Spain", 95, 99999.99),
            ]
        )
    ]
    data = repo / "data" / "churn.csv"
    data.write_text(data.read_text() + "\n".join(new + ([bad] if bad else [])) + "\n")
    proc = mlci(repo, "validate")
    if bad is None:
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert failure in proc.stderr
