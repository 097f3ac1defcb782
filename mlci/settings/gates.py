"""Settings types shared by every section: a gate, booleans and numbers read from YAML or the
environment, and the one "did you mean" helper. Pure: no I/O, no heavy imports."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlci.errors import ConfigError

DIRECTIONS = ("higher", "lower")


@dataclass(frozen=True)
class Gate:
    """One gated metric: which way is better and how much worse is still fine."""

    metric: str
    direction: str = "higher"
    abs_tol: float | None = None
    rel_tol: float | None = None
    min: float | None = None
    max: float | None = None
    required: bool = True


_GATE_KEYS = [f.name for f in dataclasses.fields(Gate) if f.name != "metric"]


def suggest(key: str, known: list[str]) -> str:
    """The fix for an unknown name: the closest known one, else the list of known ones."""
    close = difflib.get_close_matches(str(key), known, n=1)
    return f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(known))}"


def reject_unknown(raw: Mapping[str, Any], known: list[str], where: str) -> None:
    """An unknown key of a settings mapping is exit 2 with a suggestion."""
    for key in raw:
        if key not in known:
            raise ConfigError(f"{where}: unknown key '{key}'", fix=suggest(str(key), known))


def as_bool(value: Any, where: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{where}: expected true or false, got {value!r}", fix="use true or false")


def as_float(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{where}: expected a number, got {value!r}", fix="give a number")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{where}: expected a number, got {value!r}", fix="give a number"
        ) from None


def parse_gate(metric: str, raw: Any, where: str) -> Gate:
    if isinstance(raw, str) and raw in DIRECTIONS:
        raw = {"direction": raw}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{where}.gates.{metric}: expected a mapping",
            fix="write e.g. `accuracy: {direction: higher, abs_tol: 0.01}`",
        )
    unknown = [k for k in raw if k not in _GATE_KEYS]
    if unknown:
        raise ConfigError(
            f"{where}.gates.{metric}: unknown key '{unknown[0]}'",
            fix=suggest(str(unknown[0]), _GATE_KEYS),
        )
    direction = str(raw.get("direction", "higher"))
    if direction not in DIRECTIONS:
        raise ConfigError(
            f"{where}.gates.{metric}.direction: '{direction}' is not a direction",
            fix="use 'higher' (higher is better) or 'lower' (lower is better)",
        )
    nums = {
        k: as_float(raw[k], f"{where}.gates.{metric}.{k}")
        for k in ("abs_tol", "rel_tol", "min", "max")
        if raw.get(k) is not None
    }
    for k in ("abs_tol", "rel_tol"):
        if nums.get(k, 0.0) < 0:
            raise ConfigError(f"{where}.gates.{metric}.{k} is negative", fix="use a value >= 0")
    required = as_bool(raw.get("required", True), f"{where}.gates.{metric}.required")
    return Gate(metric=metric, direction=direction, required=required, **nums)
