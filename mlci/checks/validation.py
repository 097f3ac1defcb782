"""Validate data files against pandera schemas kept in the repo.

Validation is lazy, so every failing check is reported at once: column, check, how many rows
failed and a few failing values (never from a column declared sensitive).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlci.checks import frames
from mlci.errors import ConfigError, MlciError

MAX_SAMPLES = 5
# The "column" of a failure about the whole file: it could not be read as a table.
UNREADABLE = "<file>"


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
    cached: bool = False

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def readable(self) -> bool:
        """False when the file could not be read as a table at all (see ``frames.read_table``)."""
        return not any(x.column == UNREADABLE for x in self.failures)


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
        # ``cached`` stays out: the file is a DVC stage output and must not flip with the cache.
        files = [
            {k: v for k, v in asdict(f).items() if k != "cached"} | {"ok": f.ok} for f in self.files
        ]
        return {"ok": self.ok, "files": files}

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
            files.append(
                FileResult(
                    str(f["path"]),
                    str(f["schema"]),
                    int(f["rows"]),
                    failures,
                    bool(f.get("cached", False)),
                )
            )
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
        return getattr(_import_here(root, module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load schema {spec}: {exc}",
            fix=f"put the module in the project ({root}) or the repository's top level, or "
            "install it; the attribute must be a pandera DataFrameSchema",
        ) from None


def _import_here(root: Path, module_name: str) -> Any:
    """Import ``module_name`` as ``python`` would in the project directory and at the
    repository's top level (a module kept in the repository needs no ``PYTHONPATH=.``),
    else from the installed packages."""
    import sys

    from mlci import git

    places = [str(root.resolve())]
    try:
        top = str(git.toplevel(root).resolve())
    except MlciError:
        top = places[0]
    places += [top] if top != places[0] else []
    saved = list(sys.path)
    sys.path[:0] = [p for p in places if p not in sys.path]
    importlib.invalidate_caches()
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path[:] = saved


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
    schema, unique = split_unique(load_schema(root, schema_spec))
    frame, problem = frames.read(path)
    if problem is not None:
        reason, fix = problem
        return FileResult(data, schema_spec, 0, (Failure(UNREADABLE, f"{reason}; fix: {fix}", 1),))
    failures: list[Failure] = []
    try:
        # inplace: pandera would otherwise copy the frame before it checks it.
        schema.validate(frame, lazy=True, inplace=True)
    except pandera.errors.SchemaErrors as exc:
        failures.extend(_failures(exc.failure_cases, sensitive))
    failures.extend(_duplicates(frame, unique, sensitive))
    return FileResult(data, schema_spec, len(frame), tuple(failures))


def split_unique(schema: Any) -> tuple[Any, list[str]]:
    """The schema without per-column ``unique`` checks, and the columns that had them.

    pandera checks uniqueness by marking every duplicated row, which is most of its cost on
    large frames; a hash-based ``is_unique`` answers the common case (no duplicates) far
    faster, and only a failing column pays for finding its duplicates.
    """
    unique = [name for name, col in schema.columns.items() if getattr(col, "unique", False)]
    if not unique:
        return schema, []
    return schema.update_columns({name: {"unique": False} for name in unique}), unique


def _duplicates(frame: Any, columns: Sequence[str], sensitive: Sequence[str]) -> list[Failure]:
    out = []
    for name in columns:
        if name not in frame.columns or frame[name].is_unique:
            continue
        dup = frame[name][frame[name].duplicated(keep=False)]
        samples = () if name in sensitive else tuple(dup.astype(str).unique()[:MAX_SAMPLES])
        out.append(Failure(name, "field_uniqueness", len(dup), samples))
    return out


CACHE = "validated.json"  # under .mlci/, private to the clone (mlci.checks.cache.private)


def _fingerprint(root: Path, data: str, schema: str, sensitive: Sequence[str]) -> str | None:
    """Content hash of the data file and the schema, or None when the data is missing."""
    digest = hashlib.md5()
    if not (root / data).is_file():
        return None
    for part in (root / data, root / schema):
        if not part.is_file():
            digest.update(schema.encode())  # a module:attr schema is keyed on its name
            continue
        with part.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    digest.update(",".join(sorted(sensitive)).encode())
    return digest.hexdigest()


def validate(
    root: Path,
    mapping: Mapping[str, str],
    sensitive: Sequence[str] = (),
    *,
    use_cache: bool = True,
) -> ValidationReport:
    """Validate every configured file; the report holds every failure, none raised.

    A file whose content and schema are the same as in an earlier run that passed is not
    validated again; its result says ``cached``. Only passing results are remembered.
    """
    from mlci.checks.cache import JsonCache, private

    cache = JsonCache(private(root, CACHE) if use_cache else None)
    results = []
    for data, schema in mapping.items():
        key = _fingerprint(root, data, schema, sensitive) if use_cache else None
        hit = cache.get(key)
        if isinstance(hit, dict) and isinstance(hit.get("rows"), int):
            results.append(FileResult(data, schema, hit["rows"], cached=True))
            continue
        result = validate_file(root, data, schema, sensitive)
        if result.ok:
            cache.put(key, {"path": data, "rows": result.rows})
        results.append(result)
    cache.save()
    return ValidationReport(tuple(results))
