"""A model as the measurements see it: where it came from, its size, how to call it, and
the columns it expects. Made by the loader in :mod:`mlci.training.explain`. Pure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Model:
    label: str  # where it came from, for the report: "models/model.pkl at main (abc1234)"
    size_bytes: int | None = None
    predict: Callable[[Any], Any] | None = None  # None: it cannot be called, and ``why``
    estimator: Any = None  # a scikit-learn estimator (permutation importance), else None
    features: tuple[str, ...] | None = None  # the columns it expects, where it says
    kind: str = ""  # "mlci sklearn model", "scikit-learn estimator", ...
    why: str = ""

    def inputs(self, x: Any) -> Any:
        """``x`` with the model's own columns, in its order (missing ones as 0.0, as
        ``mlci evaluate`` feeds a model)."""
        if self.features is None:
            return x
        return x.reindex(columns=list(self.features), fill_value=0.0)


def failure(exc: BaseException, what: str = "predict") -> str:
    """``predict raised ValueError: ...`` in one short line."""
    text = " ".join(str(exc).split())
    text = text if len(text) <= 200 else text[:199] + "…"
    return f"{what} raised {type(exc).__name__}" + (f": {text}" if text else "")
