"""Validate data files against pandera schemas kept in the repo.

Validation is lazy, so every failing check is reported at once: column, check, how many rows
failed and a few failing values (never from a column declared sensitive).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError

MAX_SAMPLES = 5


@dataclass(frozen=True)
class Failure:
    column: str
    check: str
    count: int
    samples: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileResult:
    path: str
    schema: str
    rows: int
    failures: tuple[Failure, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class ValidationReport:
    files: tuple[FileResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.files)

    @property
    def failure_count(self) -> int:
        return sum(fl.count for f in self.files for fl in f.failures)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "files": [{**asdict(f), "ok": f.ok} for f in self.files]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ValidationReport:
        files = []
        for f in data.get("files", []):
            failures = tuple(
                Failure(
                    str(x["column"]),
                    str(x["check"]),
                    int(x["count"]),
                    tuple(str(s) for s in x.get("samples", ())),
                )
                for x in f.get("failures", [])
            )
            files.append(FileResult(str(f["path"]), str(f["schema"]), int(f["rows"]), failures))
        return cls(tuple(files))

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8"
        )


def load_schema(root: Path, spec: str) -> Any:
    """A pandera schema from a YAML file in the repo or a Python ``module:attribute``."""
    import pandera.pandas as pa

    path = root / spec
    if spec.endswith((".yaml", ".yml")):
        if not path.exists():
            raise ConfigError(
                f"schema file {spec} not found",
                fix="write it with `schema.to_yaml()` or fix mlci.validate",
            )
        try:
            return pa.DataFrameSchema.from_yaml(path.read_text(encoding="utf-8"))
        except Exception as exc:
            raise ConfigError(
                f"{spec}: not a pandera schema ({exc})",
                fix="produce it with pandera's `schema.to_yaml()`",
            ) from None
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ConfigError(
            f"schema '{spec}' is neither a .yaml file nor module:attribute",
            fix="use e.g. schemas/train.yaml or my_pkg.schemas:train",
        )
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load schema {spec}: {exc}",
            fix="check the module is importable from the repo root",
        ) from None


def read_table(path: Path) -> Any:
    import pandas as pd

    if path.suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    return pd.read_csv(path)


def _failures(failure_cases: Any, sensitive: Sequence[str]) -> tuple[Failure, ...]:
    out = []
    frame = failure_cases.fillna({"column": "<frame>"})
    for (column, check), group in frame.groupby(["column", "check"], sort=True, dropna=False):
        values = group["failure_case"].dropna().astype(str).unique()[:MAX_SAMPLES]
        samples = () if str(column) in sensitive else tuple(values)
        out.append(Failure(str(column), str(check), len(group), samples))
    return tuple(out)


def validate_file(
    root: Path, data: str, schema_spec: str, sensitive: Sequence[str] = ()
) -> FileResult:
    import pandera.errors

    path = root / data
    if not path.exists():
        raise ConfigError(
            f"data file {data} not found",
            fix="run `mlci pull` (or `dvc pull`) first, or fix mlci.validate",
        )
    schema = load_schema(root, schema_spec)
    frame = read_table(path)
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        return FileResult(data, schema_spec, len(frame), _failures(exc.failure_cases, sensitive))
    return FileResult(data, schema_spec, len(frame))


def validate(
    root: Path, mapping: Mapping[str, str], sensitive: Sequence[str] = ()
) -> ValidationReport:
    """Validate every configured file; the report holds every failure, none raised."""
    return ValidationReport(tuple(validate_file(root, d, s, sensitive) for d, s in mapping.items()))
