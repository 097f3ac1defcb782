"""The one reader of data tables, and the one encoding of a table as model input.

Every table mlci reads (the data it validates, the base revision's copy it drifts against,
the training data, the monitor's snapshot and reference) goes through ``read`` here, from a
path or from bytes, so both sides of a comparison are parsed alike. A file that is not a table
is diagnosed once, with the fix. ``one_hot`` is the encoding mlci's own training fits on and
the monitor scores with.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, NoReturn

PARQUET = (".parquet", ".pq")


def read_table(path: Path, name: str | None = None) -> Any:
    """A CSV or Parquet file as a DataFrame.

    A file that is not a table (binary, empty, not UTF-8, malformed) is invalid data: raises
    ``DataInvalid`` naming the file (``name``, else ``path``), what is wrong and the fix.
    """
    frame, problem = read(path)
    if problem is not None:
        _invalid(name or _shown(path), problem)
    return frame


def table_from_bytes(raw: bytes, name: str) -> Any:
    """The table in ``raw`` (``name`` tells Parquet from CSV and names it in errors), read as
    ``read_table`` reads a file; raises ``DataInvalid`` the same way."""
    try:
        return _load(io.BytesIO(raw), parquet=name.endswith(PARQUET))
    except (ValueError, OSError) as exc:
        _invalid(name, diagnose(raw, exc, parquet=name.endswith(PARQUET)))


def read(path: Path) -> tuple[Any, tuple[str, str] | None]:
    """The frame, or None and why the file is not a table (reason, fix)."""
    try:
        return _load(path, parquet=str(path).endswith(PARQUET)), None
    except (ValueError, OSError) as exc:
        return None, diagnose(_file_bytes(path), exc, parquet=str(path).endswith(PARQUET))


def one_hot(frame: Any, exclude: list[str] | tuple[str, ...] = ()) -> Any:
    """``frame`` without the ``exclude`` columns (those it lacks are ignored), categories
    one-hot encoded as floats: the model input of mlci's own training and the monitor."""
    import pandas as pd

    return pd.get_dummies(frame.drop(columns=list(exclude), errors="ignore"), dtype=float)


def _invalid(name: str, problem: tuple[str, str]) -> NoReturn:
    from mlci.errors import DataInvalid

    raise DataInvalid(f"{name}: {problem[0]}", fix=problem[1])


def _shown(path: Path) -> str:
    """``path`` relative to the working directory (the repo root) when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def _load(source: Path | io.BytesIO, *, parquet: bool) -> Any:
    import pandas as pd

    if parquet:
        return pd.read_parquet(source)
    try:
        frame = pd.read_csv(source, engine="pyarrow")  # multi-threaded, several times faster
    except ImportError:
        frame = pd.read_csv(_rewound(source))
    except ValueError:  # the C parser names the line of a malformed row; pyarrow does not
        frame = pd.read_csv(_rewound(source))
    _require_text(frame)
    return frame


def _rewound(source: Path | io.BytesIO) -> Path | io.BytesIO:
    if isinstance(source, io.BytesIO):
        source.seek(0)
    return source


def _require_text(frame: Any) -> None:
    """pyarrow keeps bytes that are not UTF-8 as ``bytes`` values: refuse them, as pandas
    does. One value per text column tells: pyarrow types a whole column binary or not."""
    if any(isinstance(column, bytes) for column in frame.columns):
        raise UnicodeError("a column name is not UTF-8")
    for column in frame.select_dtypes(include="object").columns:
        first = frame[column].first_valid_index()
        if first is not None and isinstance(frame[column].at[first], bytes):
            raise UnicodeError(f"column {column} is not UTF-8")


def _file_bytes(path: Path) -> bytes:
    """The file's bytes for a diagnosis (all of them: the bad byte may be anywhere)."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 12, 13))


def diagnose(raw: bytes, exc: Exception, *, parquet: bool = False) -> tuple[str, str]:
    """Why ``raw`` is not a table, and the fix: for an error raised while reading it."""
    restore = "restore it (`dvc checkout` or `dvc pull`) or write it again"
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    first = first.removeprefix("Error tokenizing data. C error: ")
    if isinstance(exc, OSError):
        return f"cannot be read ({first})", "check that it is a regular, readable file"
    if not raw.strip():
        what = "empty (0 bytes)" if not raw else "blank (only whitespace)"
        return f"{what}: no header line, no rows", restore
    if parquet:
        return f"not a readable Parquet file ({first})", restore
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text, not UTF-8", "re-save it as UTF-8 (e.g. `iconv -f utf-16 -t utf-8`)"
    sample = raw[:65536]
    controls = len(sample) - len(sample.translate(None, _CONTROL))
    if b"\x00" in sample or controls * 100 > len(sample):
        at = sample.find(b"\x00")
        where = f"a NUL byte at offset {at}" if at >= 0 else f"{controls} control bytes"
        return f"binary, not CSV text ({where})", restore + " as CSV or Parquet"
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad:
        return _not_utf8(raw, bad.start)
    return f"not a well-formed CSV table: {first}", "fix the line it names, or " + restore


def _not_utf8(raw: bytes, offset: int) -> tuple[str, str]:
    line = raw.count(b"\n", 0, offset) + 1
    try:
        raw.decode("cp1252")
        encoding = "cp1252"
    except UnicodeDecodeError:
        encoding = "latin-1"
    return (
        f"not UTF-8 (byte 0x{raw[offset]:02x} at offset {offset}, line {line}); "
        f"it decodes as {'cp1252/latin-1' if encoding == 'cp1252' else encoding}",
        f"re-save it as UTF-8 (e.g. `iconv -f {encoding} -t utf-8`)",
    )
