"""The data schemas ``mlci init`` writes: types, nullability and categories, never ranges.

pandera's ``infer_schema`` bounds every number and date by the values seen today
(``CustomerId <= 15815690``, ``RowNumber <= 10000``), so the next valid rows (a new customer,
a later date, an older person) would fail the data check. What is written instead, per column:

- its dtype and whether it may be empty (``nullable: true`` only where an empty value was
  seen); the frame keeps pandera's ``coerce: true``;
- ``checks: {isin: [...]}`` for a categorical text column only: at most ``MAX_CATEGORIES``
  distinct values, each seen ``MIN_REPEATS`` times on average, and a name and values that do
  not say identifier (``id``, ``key``, ``number``, ...), free text (``name``, ``comment``, ...)
  or time (``date``, ``created_at``, ISO dates);
- no ranges, lengths or uniqueness, for any column: a bound is a fact someone knows (an age is
  never negative), not today's sample. The header says how to add one, with the span seen
  today for each numeric measure (identifiers and counters left out) as a reference.
"""

from __future__ import annotations

import re
from typing import Any

MAX_CATEGORIES = 20
MIN_REPEATS = 5
SHOWN = 12  # columns named in the header's lists


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Words of a column name (``CustomerId`` -> customer, id) that make it an identifier or counter,
# free text, or a time: never a category, never bounded.
IDENTIFIER_WORDS = _wordset(
    "id ids uuid guid key index idx number num no nr count cnt seq serial row rownum"
)
TEXT_WORDS = _wordset(
    "name names surname firstname lastname text description desc comment comments title "
    "email mail address street city phone url note notes message review body summary"
)
TIME_WORDS = _wordset("date time timestamp datetime ts dt at day month year week hour period")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_DATE = re.compile(r"\d{4}-\d{2}(-\d{2})?([ T]\d{2}:\d{2}.*)?|\d{1,2}/\d{1,2}/\d{2,4}")


def words(name: str) -> set[str]:
    """The lower-case words of a column name: ``RowNumber`` -> {row, number}."""
    return {w.lower() for w in _WORD.findall(name)}


def infer(frame: Any, shown: str) -> str:
    """The schema of ``frame`` (read from ``shown``) as YAML, with a header that explains it."""
    import pandera.pandas as pa
    import yaml

    inferred: Any = pa.infer_schema(frame)
    schema = inferred.update_columns({name: {"checks": []} for name in inferred.columns})
    doc = yaml.safe_load(schema.to_yaml())
    categories, open_text = {}, []
    for name in frame.columns:
        if not _is_text(frame[name]):
            continue
        values = _categories(str(name), frame[name])
        if values is None:
            open_text.append(str(name))
        else:
            categories[name] = values
            doc["columns"][name]["checks"] = {"isin": values}
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)
    return _header(frame, shown, list(map(str, categories)), open_text) + body


def _is_text(series: Any) -> bool:
    import pandas as pd

    dtype = series.dtype
    return bool(
        isinstance(dtype, pd.CategoricalDtype)
        or pd.api.types.is_string_dtype(dtype)
        or pd.api.types.is_object_dtype(dtype)
    )


def _categories(name: str, series: Any) -> list[Any] | None:
    """The values of a categorical text column, sorted; None for free text, ids and times."""
    if words(name) & (IDENTIFIER_WORDS | TEXT_WORDS | TIME_WORDS):
        return None
    present = series.dropna()
    values = present.unique().tolist()
    if not values or len(values) > MAX_CATEGORIES or len(present) < MIN_REPEATS * len(values):
        return None
    if not all(isinstance(v, str) for v in values):
        return None  # mixed objects: left to the dtype
    if all(_DATE.fullmatch(v.strip()) for v in values):
        return None  # dates written as text: the next one is new
    return sorted(values)


def is_identifier(name: str, series: Any) -> bool:
    """An identifier, counter or row number: by its name, or integers strictly increasing.

    (Integers that are merely all different are not enough: in a small sample ages or amounts
    often are. No column is bounded either way; this only keeps ids out of the header's spans.)
    """
    import pandas as pd

    if words(name) & IDENTIFIER_WORDS:
        return True
    if not pd.api.types.is_integer_dtype(series.dtype) or len(series) < 2:
        return False
    return bool(series.is_monotonic_increasing and series.is_unique)


def _measures(frame: Any) -> list[tuple[str, Any, Any]]:
    """(name, min, max) of the numeric columns that measure something (not ids, counters,
    booleans or times)."""
    import pandas as pd

    out = []
    for name in frame.columns:
        series = frame[name]
        if not pd.api.types.is_any_real_numeric_dtype(series.dtype):
            continue  # text, booleans, dates, complex numbers
        if is_identifier(str(name), series) or words(str(name)) & TIME_WORDS:
            continue
        present = series.dropna()
        if len(present):
            out.append((_plain(name), present.min(), present.max()))
    return out


def _number(value: Any) -> str:
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(round(number, 4))


def _header(frame: Any, shown: str, categories: list[str], open_text: list[str]) -> str:
    measures = _measures(frame)
    positive = [name for name, lowest, _ in measures if float(lowest) >= 0]
    example = positive[0] if positive else "amount"
    dtype = str(frame[example].dtype) if positive else "float64"
    lines = [
        f"Inferred by `mlci init` from {_plain(shown)} ({len(frame):,} rows). It checks each",
        "column's type, which may be empty (`nullable: true`) and, for categorical text columns,",
        "the values allowed (`isin`). It bounds nothing by the values seen today: new rows may",
        "hold larger ids and counts, later dates, new names and numbers outside today's span.",
        "",
        "Tighten a column where a bound is a fact, not today's sample, under its `checks:`:",
        f"  {_plain(example)}:",
        f"    dtype: {dtype}",
        "    checks:",
        "      greater_than_or_equal_to: 0",
        "(others: less_than_or_equal_to, in_range, isin, str_matches; `unique: true` beside",
        "`dtype`; see pandera's docs). Keep a column's checks under one `checks:` key.",
    ]
    if categories:
        lines.append(f"Categories (isin): {_names(categories)}.")
    if open_text:
        lines.append(f"Text left open (free text, ids or dates: no isin): {_names(open_text)}.")
    if measures:
        spans = [f"{n} {_number(lo)} .. {_number(hi)}" for n, lo, hi in measures[:SHOWN]]
        more = f"; and {len(measures) - SHOWN} more" if len(measures) > SHOWN else ""
        lines.append(f"Seen today (a reference, not checked): {'; '.join(spans)}{more}.")
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def _names(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(map(_plain, names[:SHOWN])) + more


def _plain(name: Any) -> str:
    """A name as one comment line can hold it: control characters (a line break in a CSV
    header) escaped."""
    text = str(name)
    return text if text.isprintable() else ascii(text)
