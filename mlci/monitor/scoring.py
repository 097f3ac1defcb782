"""Scoring a registered model on a window: load it, its metrics, its predict latency."""

from __future__ import annotations

from typing import Any

from mlci.errors import MlciError
from mlci.insight.timing import Call, interleaved_ms, spread
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
    starts = _starts(x, rows, batches)
    times = interleaved_ms(
        [lambda i: trainer.predict(model, x.iloc[starts[i] : starts[i] + rows])], len(starts)
    )
    return _summary(times[0], rows)


def interleaved(
    trainers: tuple[Any, Any], models: tuple[Any, Any], xs: tuple[Any, Any], rows: int, batches: int
) -> tuple[Latency, Latency]:
    """p50/p95 of ``predict`` per batch for two models, batch by batch in turn (one warm-up
    each first), so both see the same machine (:func:`mlci.insight.timing.interleaved_ms`)."""
    starts = _starts(xs[0], rows, batches)

    def call(which: int) -> Call:
        x = xs[which]
        return lambda i: trainers[which].predict(
            models[which], x.iloc[starts[i] : starts[i] + rows]
        )

    times = interleaved_ms([call(0), call(1)], len(starts))
    return _summary(times[0], rows), _summary(times[1], rows)


def _starts(x: Any, rows: int, batches: int) -> list[int]:
    """The first row of each timed batch: a warm-up and at most ``batches`` more."""
    return list(range(0, max(len(x), 1), max(rows, 1)))[: batches + 1]


def _summary(times: list[float], rows: int) -> Latency:
    found = spread(times, digits=3)
    return Latency(found.p50, found.p95, rows, found.n)
