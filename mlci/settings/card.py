"""The ``mlci.card`` settings: what a model card says that no measurement can (``mlci init``
writes the section with empty values to fill in)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlci.errors import ConfigError
from mlci.settings.gates import reject_unknown


@dataclass(frozen=True)
class CardSettings:
    intended_use: str = ""
    limitations: str = ""
    contact: str = ""

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "mlci.card") -> CardSettings:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping",
                fix="write e.g. `card: {intended_use: ..., limitations: ...}`",
            )
        reject_unknown(raw, [f.name for f in dataclasses.fields(cls)], where)
        return cls(**{str(k): "" if v is None else str(v) for k, v in raw.items()})
