"""The ``mlci.explain`` and ``mlci.cost`` settings: what the PR report's "show your math"
sections measure on (:mod:`mlci.insight`).

``explain`` names the rows a project's own model is timed and explained on (mlci's own trainer
uses its held-out split and needs none of it); ``cost`` sets the rates that turn a check's
training time into money. Nothing is invented when a rate is unset: the report shows time.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError
from mlci.settings.gates import as_float, reject_unknown


def _mapping(raw: Any, where: str, example: str) -> Mapping[str, Any] | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping", fix=f"write e.g. `{example}`")
    return raw


@dataclass(frozen=True)
class ExplainSettings:
    data: str | None = None  # a CSV or Parquet table in the project
    target: str | None = None  # its label column
    max_rows: int = 2000  # at most this many rows are timed and permuted
    seconds: float = 6.0  # the time budget: a third for latency, a third per model's importance

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "mlci.explain") -> ExplainSettings:
        found = _mapping(raw, where, "explain: {data: data/test.csv, target: label}")
        if found is None:
            return cls()
        reject_unknown(found, [f.name for f in dataclasses.fields(cls)], where)
        values: dict[str, Any] = {}
        if found.get("data") is not None:
            data = str(found["data"])
            if Path(data).is_absolute() or ".." in Path(data).parts:
                raise ConfigError(
                    f"{where}.data: {data!r} points outside the project",
                    fix="use a path relative to the project, without '..'",
                )
            values["data"] = data
        if found.get("target") is not None:
            values["target"] = str(found["target"])
        if found.get("max_rows") is not None:
            rows = found["max_rows"]
            if isinstance(rows, bool) or not str(rows).isdigit() or int(rows) < 10:
                raise ConfigError(
                    f"{where}.max_rows: {rows!r} is not a whole number of at least 10",
                    fix="write e.g. `max_rows: 2000`",
                )
            values["max_rows"] = int(rows)
        if found.get("seconds") is not None:
            seconds = as_float(found["seconds"], f"{where}.seconds")
            if seconds <= 0:
                raise ConfigError(f"{where}.seconds is not positive", fix="give seconds above 0")
            values["seconds"] = seconds
        return cls(**values)


@dataclass(frozen=True)
class CostSettings:
    runner_hour: float | None = None  # what an hour of the runner costs
    gpu_hour: float | None = None  # what an hour of one GPU costs, on top of the runner's
    currency: str = ""  # the unit of both rates, as shown in the report

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "mlci.cost") -> CostSettings:
        found = _mapping(raw, where, "cost: {runner_hour: 0.36, gpu_hour: 2.5, currency: USD}")
        if found is None:
            return cls()
        reject_unknown(found, [f.name for f in dataclasses.fields(cls)], where)
        values: dict[str, Any] = {}
        for key in ("runner_hour", "gpu_hour"):
            if found.get(key) is not None:
                rate = as_float(found[key], f"{where}.{key}")
                if rate < 0:
                    raise ConfigError(f"{where}.{key} is negative", fix="use a rate >= 0")
                values[key] = rate
        if found.get("currency") is not None:
            values["currency"] = str(found["currency"])
        return cls(**values)

    @property
    def priced(self) -> bool:
        """Whether a rate is set (else the report shows time alone)."""
        return self.runner_hour is not None or self.gpu_hour is not None
