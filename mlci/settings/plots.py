"""The ``plots:`` part of the ``mlci:`` settings, typed when the settings load."""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlci.errors import ConfigError

IMAGE_MODES = ("auto", "on", "off")
_BRANCH = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")


@dataclass(frozen=True)
class PlotSettings:
    """The ``plots:`` part of the ``mlci:`` settings.

    ``branch`` chooses where the token writes: read it only from trusted settings (the
    workflow or the base branch), never from a pull request's files.
    """

    show: tuple[str, ...] = ()  # glob patterns of plot ids; empty: every plot
    images: str = "auto"  # auto: publish where allowed, else the artifact; on: must publish
    max_points: int = 60  # points per Mermaid series
    branch: str = "mlci-plots"
    keep_runs: int = 20  # check runs kept on the images branch

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None, where: str) -> PlotSettings:
        """Typed settings from ``raw`` (e.g. params.yaml's ``mlci.plots``); ``where`` names it
        in errors. Unknown keys and wrong types are :class:`ConfigError`."""
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected a mapping", fix="see the README, 'Plots'")
        known = [f for f in cls.__dataclass_fields__ if f != "show"] + ["show"]
        values: dict[str, Any] = {}
        for key, value in raw.items():
            at = f"{where}.{key}"
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                fix = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
                raise ConfigError(f"{where}: unknown key '{key}'", fix=fix)
            values[key] = _coerce(key, value, at)
        return cls(**values)

    def shows(self, plot_id: str) -> bool:
        return not self.show or any(fnmatch.fnmatchcase(plot_id, p) for p in self.show)


def _coerce(key: str, value: Any, where: str) -> Any:
    if key == "show":
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise ConfigError(
                f"{where}: expected a list of plot ids or glob patterns",
                fix="write e.g. `show: [ROC, 'dvclive/plots/*']` (leave it out for all)",
            )
        return tuple(i.strip() for i in items if i.strip())
    if key == "images":
        if value is True or value is False:  # YAML reads bare on/off as booleans
            value = "on" if value else "off"
        if value not in IMAGE_MODES:
            raise ConfigError(
                f"{where}: {value!r} is not one of {', '.join(IMAGE_MODES)}",
                fix="write `images: auto` (the default), `on` or `off`",
            )
        return str(value)
    if key in ("max_points", "keep_runs"):
        low = 2 if key == "max_points" else 1
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= 1000:
            raise ConfigError(
                f"{where}: expected a whole number from {low} to 1000, got {value!r}",
                fix=f"write e.g. `{key}: {PlotSettings.__dataclass_fields__[key].default}`",
            )
        return value
    # branch
    if not isinstance(value, str) or not _BRANCH.fullmatch(value) or ".." in value:
        raise ConfigError(
            f"{where}: {value!r} is not a usable branch name",
            fix="use letters, digits and . _ / -, e.g. `branch: mlci-plots`",
        )
    return value
