"""The ``drift:`` and ``pii:`` parts of the ``mlci:`` settings, typed when the settings load."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    ks: float = 0.1
    ks_pvalue: float = 0.01
    tvd: float = 0.1
    fail: bool = False
    exclude: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "mlci.drift") -> Thresholds:
        """Typed when the settings load: unknown keys, non-numbers and non-booleans are exit 2
        (`fail: "false"` is false, not a truthy string)."""
        import dataclasses

        from mlci.errors import ConfigError
        from mlci.settings.gates import as_bool, as_float, reject_unknown

        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping", fix="write e.g. `drift: {psi: 0.2}`")
        reject_unknown(raw, [f.name for f in dataclasses.fields(cls)], where)
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "fail":
                values[key] = as_bool(value, f"{where}.fail")
            elif key == "exclude":
                if isinstance(value, str) or not isinstance(value, list | tuple | None):
                    raise ConfigError(
                        f"{where}.exclude: expected a list of column names",
                        fix="write e.g. `exclude: [id]`",
                    )
                values[key] = tuple(str(v) for v in (value or []))
            else:
                values[key] = as_float(value, f"{where}.{key}")
                if values[key] < 0:
                    raise ConfigError(f"{where}.{key} is negative", fix="use a value >= 0")
        return cls(**values)


@dataclass(frozen=True)
class PiiSettings:
    """``mlci.pii``: ``block`` (exit 3 when personal data is found) and ``allow`` (columns that
    are not scanned)."""

    block: bool = False
    allow: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "mlci.pii") -> PiiSettings:
        from collections.abc import Mapping

        from mlci.errors import ConfigError
        from mlci.settings.gates import as_bool, reject_unknown

        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping", fix="write e.g. `pii: {block: true}`")
        reject_unknown(raw, ["block", "allow"], where)
        allow = raw.get("allow") or []
        if isinstance(allow, str) or not isinstance(allow, list | tuple):
            raise ConfigError(
                f"{where}.allow: expected a list of column names", fix="write e.g. `allow: [email]`"
            )
        return cls(as_bool(raw.get("block", False), f"{where}.block"), tuple(str(c) for c in allow))


def data_keys(raw: Any, where: str = "mlci.data_keys") -> dict[str, tuple[str, ...]]:
    """``mlci.data_keys``: data file -> the columns that name one row of it (a column name
    alone is a one-column key). Typed when the settings load: anything else is exit 2."""
    from mlci.errors import ConfigError

    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}: expected a mapping of data file -> key columns",
            fix="write e.g. `data_keys: {data/train.csv: [id]}`",
        )
    out: dict[str, tuple[str, ...]] = {}
    for path, columns in raw.items():
        columns = [columns] if isinstance(columns, str) else columns
        if (
            not isinstance(columns, list | tuple)
            or not columns
            or not all(isinstance(c, str) and c for c in columns)
        ):
            raise ConfigError(
                f"{where}.{path}: expected a column name or a non-empty list of them",
                fix=f"write e.g. `{path}: [id]`",
            )
        out[str(path)] = tuple(columns)
    return out
