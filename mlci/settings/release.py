"""The ``mlci.release`` settings: how a merged model reaches users.

``strategy: direct`` (the default) moves ``champion`` at the merge, as mlci always did.
``strategy: challenger`` points ``challenger`` at the new version instead; the monitor scores it
beside the champion (shadow evaluation) and ``mlci release`` moves ``champion`` once it passed
``probation`` windows and someone approved (``approval``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlci.errors import ConfigError
from mlci.settings.gates import reject_unknown

STRATEGIES = ("direct", "challenger")
# environment: a reviewer of the GitHub environment the release job runs in approved the run;
# review: an approving review of the merged PR by someone other than its author; none: no one.
APPROVALS = ("environment", "review", "none")


@dataclass(frozen=True)
class ReleaseSettings:
    strategy: str = "direct"
    probation: int = 3  # consecutive monitor windows a challenger (or a new champion) must pass
    approval: str = "environment"
    environment: str = "model-release"  # the GitHub environment the release workflow uses

    @classmethod
    def from_mapping(cls, raw: Any, where: str = "mlci.release") -> ReleaseSettings:
        if raw is None:
            return cls()
        if not isinstance(raw, Mapping):
            raise ConfigError(
                f"{where}: expected a mapping", fix="write e.g. `release: {strategy: challenger}`"
            )
        known = [f.name for f in dataclasses.fields(cls)]
        reject_unknown(raw, known, where)
        values: dict[str, Any] = {}
        for key, allowed in (("strategy", STRATEGIES), ("approval", APPROVALS)):
            if raw.get(key) is not None:
                value = str(raw[key])
                if value not in allowed:
                    raise ConfigError(
                        f"{where}.{key}: '{value}' is not one of {', '.join(allowed)}",
                        fix=f"write one of: {', '.join(allowed)}",
                    )
                values[key] = value
        if raw.get("probation") is not None:
            probation = raw["probation"]
            if isinstance(probation, bool) or not str(probation).isdigit() or int(probation) < 1:
                raise ConfigError(
                    f"{where}.probation: {probation!r} is not a whole number of windows above 0",
                    fix="write e.g. `probation: 3`",
                )
            values["probation"] = int(probation)
        if raw.get("environment") is not None:
            values["environment"] = str(raw["environment"])
        return cls(**values)
