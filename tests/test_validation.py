"""Real pandera schemas from the example against real and broken data."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from mlci.checks import cache, validation
from mlci.errors import ConfigError
from mlci.example import copy_files, write_data


@pytest.fixture
def example(tmp_path: Path) -> Path:
    copy_files(tmp_path)
    write_data(tmp_path / "data" / "diabetes.csv")
    _git(tmp_path, "init", "-q")  # the cache's secret lives in the git directory
    return tmp_path


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


MAPPING = {"data/diabetes.csv": "schemas/diabetes.yaml"}


def test_example_data_is_valid(example: Path) -> None:
    report = validation.validate(example, MAPPING)
    assert report.ok
    assert report.files[0].rows == 442


def test_every_failure_reported_at_once(example: Path) -> None:
    path = example / "data" / "diabetes.csv"
    frame = pd.read_csv(path)
    frame.loc[[0, 5, 9], "age"] = [150.0, -3.0, 200.0]
    frame.loc[3, "sex"] = 7
    frame.loc[4, "patient_id"] = frame.loc[8, "patient_id"]
    frame.to_csv(path, index=False)
    report = validation.validate(example, MAPPING, sensitive=["patient_id"])
    assert not report.ok
    by = {(f.column, f.check.split("(")[0]): f for f in report.files[0].failures}
    age = by[("age", "in_range")]
    assert age.count == 3
    assert set(age.samples) == {"150.0", "-3.0", "200.0"}
    assert by[("sex", "isin")].count == 1 and by[("sex", "isin")].samples[0] in ("7", "7.0")
    dup = [f for f in report.files[0].failures if f.column == "patient_id"]
    assert dup and dup[0].count == 2 and dup[0].samples == ()


def test_report_round_trips_through_json(example: Path, tmp_path: Path) -> None:
    report = validation.validate(example, MAPPING)
    report.write(tmp_path / "v.json")
    again = validation.ValidationReport.from_dict(
        __import__("json").loads((tmp_path / "v.json").read_text())
    )
    assert again == report


def test_missing_data_and_schema_are_config_errors(example: Path) -> None:
    with pytest.raises(ConfigError, match=r"data file nope\.csv not found"):
        validation.validate(example, {"nope.csv": "schemas/diabetes.yaml"})
    with pytest.raises(ConfigError, match=r"schema file s\.yaml not found"):
        validation.validate(example, {"data/diabetes.csv": "s.yaml"})
    with pytest.raises(ConfigError, match="module:attribute"):
        validation.validate(example, {"data/diabetes.csv": "just_a_name"})


def test_unchanged_data_is_not_validated_again(example: Path) -> None:
    first = validation.validate(example, MAPPING)
    assert first.ok and not first.files[0].cached
    second = validation.validate(example, MAPPING)
    assert second.files[0].cached and second.files[0].rows == 442
    assert second.to_dict() == first.to_dict()
    path = example / "data" / "diabetes.csv"
    path.write_text(path.read_text().replace("\n1,59.0,", "\n1,999.0,", 1))
    third = validation.validate(example, MAPPING)
    assert not third.ok and not third.files[0].cached
    fourth = validation.validate(example, MAPPING)
    assert not fourth.ok, "a failing result must never be cached"


def test_a_cache_a_pull_request_commits_is_never_believed(example: Path, tmp_path: Path) -> None:
    """A fork commits invalid data and, force-added under .mlci/, cache files saying it passed:
    the old name with its public fingerprint, and the name its own clone uses. The job's fresh
    clone has its own secret, reads neither, and validates the data."""
    _git(example, "add", "-A")
    _git(example, "commit", "-qm", "base")
    path = example / "data" / "diabetes.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "age"] = 150.0
    frame.to_csv(path, index=False)
    forged = {validation._fingerprint(example, *next(iter(MAPPING.items())), ()): {"rows": 442}}
    mine = cache.private(example, validation.CACHE)
    assert mine is not None and mine.name.startswith("validated-")
    for planted in (example / ".mlci" / "validated.json", mine):
        planted.parent.mkdir(exist_ok=True)
        planted.write_text(json.dumps(forged), encoding="utf-8")
    assert validation.validate(example, MAPPING).files[0].cached  # believed in its own clone
    _git(example, "add", "-f", "-A")
    _git(example, "commit", "-qm", "invalid data, passed")
    job = tmp_path / "job"
    _git(tmp_path, "clone", "-q", str(example), str(job))
    assert (job / ".mlci" / "validated.json").is_file() and (job / ".mlci" / mine.name).is_file()
    report = validation.validate(job, MAPPING)
    assert not report.ok and not report.files[0].cached
    assert cache.private(job, validation.CACHE) != mine  # this clone's own name
    outside = Path(tempfile.mkdtemp())  # in no repository
    assert cache.private(outside, validation.CACHE) is None  # no secret: nothing cached


def test_after_the_pull_requests_code_ran_no_cache_is_believed(example: Path) -> None:
    """Stages that ran before validation (the remote lacked the data) are the PR's code: they
    could read the clone's secret and write an entry. The check then reads no cache."""
    from mlci.check import datachecks
    from mlci.settings import config

    settings = config.load(example)
    path = example / "data" / "diabetes.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "age"] = 150.0
    frame.to_csv(path, index=False)
    data, schema = next(iter(MAPPING.items()))
    forged = {
        validation._fingerprint(example, data, schema, settings.sensitive_columns): {"rows": 442}
    }
    planted = cache.private(example, validation.CACHE)
    assert planted is not None
    planted.parent.mkdir(exist_ok=True)
    planted.write_text(json.dumps(forged), encoding="utf-8")
    believed, *_ = datachecks.check_data(example, settings, None)
    assert believed.ok and believed.files[0].cached  # the entry is one this clone would read
    checked, *_ = datachecks.check_data(example, settings, None, use_cache=False)
    assert not checked.ok and not checked.files[0].cached
