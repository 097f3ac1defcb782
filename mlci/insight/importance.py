"""What drives the predictions: permutation importance (``sklearn.inspection``) of the base
and the PR model on the same rows, with a fixed seed, and how the top features moved.

Only a scikit-learn estimator can be permuted (its own ``score``: accuracy for a classifier,
R² for a regressor). The number of repeats is fitted to a time budget from the time of one
``score`` call; a model that would not finish even one repeat in it is named, not run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from mlci.insight.model import Model, failure
from mlci.insight.result import Drivers, Feature, Unavailable

SEED = 0
REPEATS = 5
TOP = 10
BUDGET_S = 10.0  # per model (mlci.explain.seconds / 3)


@dataclass(frozen=True)
class Scores:
    """One model's importances by feature: mean and standard deviation of the score's drop."""

    mean: dict[str, float]
    std: dict[str, float]
    repeats: int
    scoring: str
    seconds: float


def permute(
    model: Model, x: Any, y: Any, *, budget_s: float = BUDGET_S, repeats: int = REPEATS
) -> Scores | Unavailable:
    """Permutation importance of ``model`` on ``x``/``y`` within ``budget_s`` seconds."""
    est = model.estimator
    if est is None or not _is_sklearn(est):
        kind = model.kind or type(est).__name__
        return Unavailable(
            f"permutation importance needs a scikit-learn estimator; the model is a {kind}"
        )
    started = time.monotonic()
    try:
        inputs = model.inputs(x)
        est.score(inputs, y)  # one pass: how long a repeat per feature takes
    except Exception as exc:
        return Unavailable(failure(exc, "score"))
    one = time.monotonic() - started
    n_features = max(len(inputs.columns), 1)
    fits = int((budget_s / max(one, 1e-6) - 1) / n_features)
    if fits < 1:
        need = one * (n_features + 1)
        return Unavailable(
            f"one repeat over {n_features} features would take about {need:.0f} s, over the "
            f"budget of {budget_s:.3g} s; lower mlci.explain.max_rows or raise "
            "mlci.explain.seconds"
        )
    from sklearn.inspection import permutation_importance

    used = min(repeats, fits)
    try:
        found = permutation_importance(est, inputs, y, n_repeats=used, random_state=SEED)
    except Exception as exc:
        return Unavailable(failure(exc, "permutation_importance"))
    names = [str(c) for c in inputs.columns]
    mean = {n: float(v) for n, v in zip(names, found.importances_mean, strict=True)}
    std = {n: float(v) for n, v in zip(names, found.importances_std, strict=True)}
    from sklearn.base import is_classifier

    scoring = "accuracy" if is_classifier(est) else "R²"
    return Scores(mean, std, used, scoring, time.monotonic() - started)


def _is_sklearn(est: Any) -> bool:
    try:
        from sklearn.base import BaseEstimator
    except ImportError:
        return False
    return isinstance(est, BaseEstimator) and hasattr(est, "score")


def ranks(mean: dict[str, float]) -> dict[str, int]:
    """1 for the largest importance; ties keep the column order."""
    order = sorted(mean, key=lambda n: -mean[n] if math.isfinite(mean[n]) else math.inf)
    return {n: i + 1 for i, n in enumerate(order)}


def compare(
    base: Scores | Unavailable, head: Scores, *, rows: int, budget_s: float, top: int = TOP
) -> Drivers:
    """The PR's top features with base values and ranks; those that entered or left the top."""
    head_rank = ranks(head.mean)
    top_head = [n for n, r in sorted(head_rank.items(), key=lambda kv: kv[1]) if r <= top]
    b = base if isinstance(base, Scores) else None
    base_rank = ranks(b.mean) if b is not None else {}
    top_base = [n for n, r in sorted(base_rank.items(), key=lambda kv: kv[1]) if r <= top]
    entered = tuple(n for n in top_head if b is not None and n not in top_base)
    left = tuple(n for n in top_base if n not in top_head)
    shown = [*top_head, *left]
    features = tuple(
        Feature(
            name,
            head.mean.get(name),
            head.std.get(name),
            head_rank.get(name),
            b.mean.get(name) if b is not None else None,
            base_rank.get(name),
        )
        for name in shown
    )
    return Drivers(
        features,
        top,
        entered,
        left,
        rows=rows,
        repeats=head.repeats,
        scoring=head.scoring,
        seconds=head.seconds + (b.seconds if b is not None else 0.0),
        budget_s=budget_s,
        base_why=base.why if isinstance(base, Unavailable) else "",
    )
