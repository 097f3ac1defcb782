"""Scoring a registered model on a window: load it, its metrics, its predict latency."""

from __future__ import annotations

import time
from typing import Any

from mlci.errors import MlciError
from mlci.monitor.result import Latency
from mlci.settings.config import Settings


def load_model(settings: Settings, name: str, backend: str, alias: str = "champion") -> Any:
    """The model ``alias`` points at, loaded by the backend that made it (mlci's own
    trainers), else as an MLflow pyfunc model (a project's own)."""
    from mlci.registry.tracking import configure, unreachable

    configure(settings.tracking_uri)
    uri = f"models:/{name}@{alias}"
    from mlci.training.backends import BACKENDS, get_trainer

    try:
        if backend in BACKENDS:  # a model mlci's own trainer made
            return get_trainer(backend).load_model(uri)
        import mlflow.pyfunc  # any other registered model (mlci promote of a project's own)

        return mlflow.pyfunc.load_model(uri)
    except MlciError:
        raise
    except Exception as exc:
        raise unreachable(settings.tracking_uri, exc) from None


def score(trainer: Any, model: Any, x: Any, y: Any, task: str) -> dict[str, float]:
    from mlci.training import evaluation

    if task == "regression":
        return evaluation.regression_metrics(y, trainer.predict(model, x))
    classes = list(getattr(model, "classes_", sorted(set(y))))
    return evaluation.classification_metrics(y, trainer.predict_proba(model, x), classes)


def latency(trainer: Any, model: Any, x: Any, rows: int, batches: int) -> Latency:
    """p50/p95 wall time of ``predict`` per batch of ``rows`` rows (one warm-up first)."""
    import numpy as np

    starts = list(range(0, max(len(x), 1), max(rows, 1)))[: batches + 1]
    times = []
    for i, start in enumerate(starts):
        batch = x.iloc[start : start + rows]
        t0 = time.perf_counter()
        trainer.predict(model, batch)
        if i > 0 or len(starts) == 1:
            times.append((time.perf_counter() - t0) * 1000)
    p50, p95 = np.percentile(times, [50, 95])
    return Latency(round(float(p50), 3), round(float(p95), 3), rows, len(times))


def interleaved(
    trainers: tuple[Any, Any], models: tuple[Any, Any], xs: tuple[Any, Any], rows: int, batches: int
) -> tuple[Latency, Latency]:
    """p50/p95 of ``predict`` per batch for two models, batch by batch in turn (one warm-up
    each first), so both see the same machine."""
    import numpy as np

    starts = list(range(0, max(len(xs[0]), 1), max(rows, 1)))[: batches + 1]
    times: tuple[list[float], list[float]] = ([], [])
    for i, start in enumerate(starts):
        for which in (0, 1) if i % 2 == 0 else (1, 0):
            batch = xs[which].iloc[start : start + rows]
            t0 = time.perf_counter()
            trainers[which].predict(models[which], batch)
            if i > 0 or len(starts) == 1:
                times[which].append((time.perf_counter() - t0) * 1000)

    def summary(found: list[float]) -> Latency:
        p50, p95 = np.percentile(found, [50, 95])
        return Latency(round(float(p50), 3), round(float(p95), 3), rows, len(found))

    return summary(times[0]), summary(times[1])
