"""What changed in the data: the row-level diff on real frames (keyed, by whole row, columns,
top cells, masking, bounds), its keys (settings, schema), its section rendered inert, and one
PR check on the example project that changes its data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_report_inert import HOSTILE, MARKER, assert_inert

from mlci.check.datachecks import row_keys
from mlci.checks.datadiff import Cell, FileDiff, diff_frames, new_file, unchanged_file
from mlci.errors import ConfigError
from mlci.report.datadiff import data_diff_section
from mlci.report.render import ReportInput, Verdict, render
from mlci.settings.config import Settings, load

from conftest import Workspace


def _base(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": range(n),
            "x": [float(i) for i in range(n)],
            "city": [f"c{i}" for i in range(n)],
            "email": [f"u{i}@example.org" for i in range(n)],
        }
    )


def _head() -> pd.DataFrame:
    """Rows 0 and 1 removed, 10 and 11 added; x changed by +50, -7 and +0.5 in rows 2, 3, 4;
    the city of 5 and the e-mail of 6 changed; the rest as on base."""
    head = _base(12).iloc[2:].reset_index(drop=True)
    head.loc[head["id"] == 2, "x"] += 50.0
    head.loc[head["id"] == 3, "x"] -= 7.0
    head.loc[head["id"] == 4, "x"] += 0.5
    head.loc[head["id"] == 5, "city"] = "moved"
    head.loc[head["id"] == 6, "email"] = "new6@example.org"
    return head


# ---- the diff --------------------------------------------------------------------------------


def test_keyed_rows_added_removed_changed_and_the_cells_that_changed_most() -> None:
    found = diff_frames("d.csv", _base(), _head(), ["id"], "mlci.data_keys", {"email"})
    assert (found.base_rows, found.rows) == (10, 10)
    assert (found.added, found.removed, found.changed) == (2, 2, 5)
    assert found.changed_cells == 5
    assert found.by_column == (("x", 3), ("city", 1), ("email", 1))
    assert (found.keys, found.key_source) == (("id",), "mlci.data_keys")
    numbers = [(c.key, c.column, c.base, c.head, c.delta) for c in found.cells[:3]]
    assert numbers == [
        ("2", "x", 2.0, 52.0, 50.0),
        ("3", "x", 3.0, -4.0, -7.0),
        ("4", "x", 4.0, 4.5, 0.5),
    ]
    assert found.cells[3] == Cell("5", "city", "c5", "moved")
    assert found.cells[4] == Cell("6", "email", None, None, None, masked=True)
    assert found.note is None and not found.identical


def test_only_the_largest_numeric_changes_are_kept() -> None:
    base = pd.DataFrame({"id": range(100), "x": [0.0] * 100})
    head = base.assign(x=[float(i) for i in range(100)])
    found = diff_frames("d.csv", base, head, ["id"], top=3)
    assert found.changed == 99 and found.changed_cells == 99
    assert [(c.key, c.delta) for c in found.cells] == [("99", 99.0), ("98", 98.0), ("97", 97.0)]


def test_without_a_key_rows_are_matched_whole_and_none_is_changed() -> None:
    base = pd.DataFrame({"a": [1, 1, 1, 2, 3], "b": ["p", "p", "p", "q", "r"]})
    head = pd.DataFrame({"a": [1, 1, 2, 2, 4], "b": ["p", "p", "q", "q", "s"]})
    found = diff_frames("d.csv", base, head)
    # (1, p) three times -> twice, (2, q) once -> twice, (3, r) gone, (4, s) new
    assert (found.added, found.removed, found.changed) == (2, 2, None)
    assert found.cells == () and found.keys == ()
    assert diff_frames("d.csv", base, base.iloc[::-1]).added == 0  # order is no change


def test_a_key_that_repeats_falls_back_to_whole_rows_and_says_so() -> None:
    head = pd.concat([_head(), _head().iloc[:1]], ignore_index=True)
    found = diff_frames("d.csv", _base(), head, ["id"], "schema")
    assert found.keys == () and found.changed is None
    assert found.note == "key id repeats in 1 rows of the PR: rows matched whole"
    missing = diff_frames("d.csv", _base(), _head(), ["nope"])
    assert missing.note == "key nope not in both versions: rows matched whole"


def test_columns_added_removed_and_retyped() -> None:
    base = pd.DataFrame({"id": [1, 2], "n": [1, 2], "code": [7, 8], "gone": [0, 0]})
    head = pd.DataFrame({"id": [1, 2], "n": [1.0, 2.5], "code": ["7", "8"], "new": [0, 0]})
    found = diff_frames("d.csv", base, head, ["id"])
    assert found.columns_added == ("new",) and found.columns_removed == ("gone",)
    assert found.retyped == (("n", "int64", "float64"), ("code", "int64", str(head.code.dtype)))
    # compared across types: 1 == 1.0 and 7 == "7"; only n of row 2 changed
    assert (found.changed, found.by_column) == (1, (("n", 1),))
    assert found.cells == (Cell("2", "n", 2, 2.5, 0.5),)


def test_flagged_and_personal_looking_values_are_never_kept() -> None:
    base = pd.DataFrame({"id": [1, 2], "email": ["a@x.org", "b@x.org"], "note": ["ok", "ok"]})
    head = pd.DataFrame(
        {"id": [1, 2], "email": ["c@x.org", "b@x.org"], "note": ["call +44 20 7946 0958", "ok"]}
    )
    found = diff_frames("d.csv", base, head, ["id"], masked={"email"})
    assert [(c.column, c.base, c.head, c.masked) for c in found.cells] == [
        ("note", None, None, True),  # not flagged, but the value shown would be a phone number
        ("email", None, None, True),
    ]
    text = json.dumps(found.to_json()) + data_diff_section((found,))
    for secret in ("a@x.org", "c@x.org", "7946"):
        assert secret not in text
    assert "| `1` | `email` | (masked) | (masked) | — |" in data_diff_section((found,))
    by_email = diff_frames(
        "d.csv", base, base.assign(note=["ok", "fine"]), ["email"], "", {"email"}
    )
    assert by_email.cells == (Cell(None, "note", "ok", "fine"),)  # the key is masked too
    assert "| (masked) | `note` | `ok` | `fine` | — |" in data_diff_section((by_email,))


def test_rows_over_the_bound_are_not_compared_and_the_report_says_so() -> None:
    found = diff_frames("d.csv", _base(), _head().assign(extra=1), ["id"], max_rows=9)
    assert (found.added, found.removed, found.changed) == (None, None, None)
    assert found.note == "rows not compared: 10 rows is over the bound of 9"
    assert found.columns_added == ("extra",)  # columns are still compared
    md = data_diff_section((found,))
    assert "rows 10 → 10; rows not compared" in md
    assert "over the bound of 9" in md


def test_the_result_is_plain_json() -> None:
    found = diff_frames("d.csv", _base(), _head(), ["id"], "schema", {"email"})
    back = json.loads(json.dumps(found.to_json(), allow_nan=False))
    assert back["added"] == 2 and back["by_column"][0] == ["x", 3]
    assert back["cells"][0] == {
        "key": "2",
        "column": "x",
        "base": 2.0,
        "head": 52.0,
        "delta": 50.0,
        "masked": False,
    }


# ---- where the keys come from --------------------------------------------------------------


def test_keys_from_the_settings_else_the_schema(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(
        "columns:\n  name: {dtype: str}\n  pid: {dtype: int64, unique: true}\n"
    )
    (tmp_path / "bad.yaml").write_text("columns: [\n")
    validate = {"a.csv": "s.yaml", "b.csv": "bad.yaml", "c.csv": "pkg.mod:schema"}
    s = Settings(root=tmp_path, validate=validate, data_keys={"d.csv": ("k1", "k2")})
    assert row_keys(tmp_path, s, "a.csv") == (("pid",), "schema")
    assert row_keys(tmp_path, s, "b.csv") == ((), "")
    assert row_keys(tmp_path, s, "c.csv") == ((), "")
    assert row_keys(tmp_path, s, "d.csv") == (("k1", "k2"), "mlci.data_keys")


def test_data_keys_setting(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text(
        "mlci:\n  data_keys: {data/a.csv: [id, day], data/b.csv: uid}\n"
    )
    assert load(tmp_path, env={}).data_keys == {"data/a.csv": ("id", "day"), "data/b.csv": ("uid",)}
    for bad, message in (
        ("[id]", "mlci.data_keys: expected a mapping of data file -> key columns"),
        ("{data/a.csv: []}", "data_keys.data/a.csv: expected a column name or a non-empty list"),
        ("{data/a.csv: [1]}", "expected a column name or a non-empty list of them"),
    ):
        (tmp_path / "params.yaml").write_text(f"mlci:\n  data_keys: {bad}\n")
        with pytest.raises(ConfigError) as err:
            load(tmp_path, env={})
        assert message in err.value.one_line() and "\n" not in err.value.one_line()


# ---- the section ---------------------------------------------------------------------------------


def test_the_section_for_changed_new_and_identical_files() -> None:
    assert data_diff_section((unchanged_file("a.csv", 5),)) == ""
    assert data_diff_section(()) == ""
    changed = diff_frames("d.csv", _base(), _head(), ["id"], "schema", {"email"})
    md = data_diff_section((changed, new_file("n.csv", 1234), unchanged_file("a.csv", 5)))
    assert md.startswith("### What changed in the data\n")
    assert (
        "**`d.csv`**: rows 10 → 10; +2 added, −2 removed, 5 changed (5 cells); matched by `id` "
        "(unique in the schema)" in md
    )
    assert "**`n.csv`**: new file, 1,234 rows" in md
    assert "Identical to base: `a.csv`." in md
    assert "| `2` | `x` | 2.0000 | 52.0000 | +50 |" in md
    assert "| `5` | `city` | `c5` | `moved` | — |" in md
    whole = data_diff_section((diff_frames("d.csv", _base(), _head()),))
    assert "+7 added, −7 removed (rows matched whole: no key" in whole


def _hostile_diff() -> FileDiff:
    names = list(HOSTILE)
    return FileDiff(
        names[3],
        10,
        12,
        keys=(names[0],),
        key_source="schema",
        added=1,
        removed=2,
        changed=3,
        changed_cells=4,
        by_column=tuple((n, 1) for n in names[:4]),
        cells=(
            Cell(names[1], names[2], names[4], names[5]),
            Cell(names[6], names[7], 1.0, 2.0, 1.0),
            Cell(names[10], names[11], names[8], names[9]),
            Cell(None, names[0], masked=True),
        ),
        columns_added=(names[8],),
        columns_removed=(names[9],),
        retyped=((names[10], "int64", names[11]),),
        note=names[6],
    )


def test_data_cannot_become_markup_in_the_section() -> None:
    diff = _hostile_diff()
    md = render(
        ReportInput(name="mlci", verdict=Verdict("passed", "ok", 0), data_diff=(diff,)),
        marker=MARKER,
    )
    assert "### What changed in the data" in md
    assert_inert(md, HOSTILE)


def test_hostile_values_in_real_frames_stay_inert() -> None:
    values = [h for h in HOSTILE if "@" not in h]  # an e-mail-like value is masked anyway
    base = pd.DataFrame({"id": range(len(values)), "v": ["plain"] * len(values)})
    found = diff_frames("d.csv", base, base.assign(v=values), ["id"], top=len(values))
    assert [c.head for c in found.cells] == values
    md = render(
        ReportInput(name="mlci", verdict=Verdict("passed", "ok", 0), data_diff=(found,)),
        marker=MARKER,
    )
    assert_inert(md, tuple(values))


# ---- in a PR check -------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_pr_that_changes_the_data_shows_what_changed(workspace: Workspace) -> None:
    ci = workspace.clone()
    assert workspace.mlci(ci, "pull").returncode == 0
    path = ci / "data" / "diabetes.csv"
    frame: Any = pd.read_csv(path)
    first, second = frame["patient_id"].iloc[:2]
    frame.loc[frame["patient_id"] == first, "bmi"] += 5.0
    frame.loc[frame["patient_id"] == second, "bp"] -= 3.0
    extra = frame.iloc[[0]].assign(patient_id=frame["patient_id"].max() + 1)
    frame = pd.concat([frame.iloc[5:], extra, frame.iloc[:2]], ignore_index=True)  # 3 removed
    frame.to_csv(path, index=False)
    proc = workspace.mlci(ci, "report", "--base", "main")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (ci / ".mlci" / "report.md").read_text()
    assert "### What changed in the data" in report
    assert (
        "**`data/diabetes.csv`**: rows 442 → 440; +1 added, −3 removed, 2 changed (2 cells); "
        "matched by `patient_id` (unique in the schema)" in report
    )
    assert f"| `{first}` | `bmi` |" in report and "| +5 |" in report
    assert f"| `{second}` | `bp` |" in report and "| -3 |" in report
    (found,) = json.loads((ci / ".mlci" / "report.json").read_text())["data_diff"]
    assert (found["added"], found["removed"], found["changed"]) == (1, 3, 2)
