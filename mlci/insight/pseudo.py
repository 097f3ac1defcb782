"""Pseudo-metrics: what the PR check measures itself (latency, model size, training cost)
under names that ``gates:`` can use like any metric.

No metrics file has them, so the compare stage judges the other gates
(:func:`without_pseudo`) and these are judged once measured (:func:`judged`), by the same
rules (:func:`mlci.verdict.metrics.judge`). A value that could not be measured on the PR fails
a required gate with the reason, and skips an optional one (``required: false``); one not
measured because the PR's model is the base's byte for byte skips the gate, saying so. Pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from mlci.settings.gates import Gate
from mlci.verdict import metrics

LATENCY_P95 = "mlci.latency_p95_ms"  # 95th percentile of predict on one row, ms
BATCH = "mlci.batch_ms"  # median predict time of a batch of 1,000 rows, ms
MODEL_MB = "mlci.model_mb"  # the model's size on disk, MB (10^6 bytes)
COST = "mlci.cost"  # this check's training (reproduce stage) in money, where rates are set
NAMES = (LATENCY_P95, BATCH, MODEL_MB, COST)
NO_GATES = "no gates are configured"  # how the compare stage's notice starts (verdict.metrics)


assert all(n.startswith(metrics.PSEUDO_PREFIX) for n in NAMES)  # what compare() skips elsewhere


def is_pseudo(name: str) -> bool:
    return name in NAMES


def without_pseudo(gates: Sequence[Gate]) -> tuple[Gate, ...]:
    """The gates a metrics file answers: all but those on pseudo-metrics."""
    return tuple(g for g in gates if not is_pseudo(g.metric))


@dataclasses.dataclass(frozen=True)
class Value:
    """One pseudo-metric, base and PR; ``why`` says why the PR's value is missing."""

    base: float | None
    head: float | None
    why: str = ""
    unchanged: bool = False  # the PR's model is the base's: nothing to gate, said so


def judged(
    comparison: metrics.Comparison, values: Mapping[str, Value], gates: Sequence[Gate]
) -> metrics.Comparison:
    """``comparison`` with every gate on a pseudo-metric judged and added as a metric row."""
    found = [g for g in gates if is_pseudo(g.metric)]
    if not found:
        return comparison
    rows = [_row(g, values.get(g.metric) or Value(None, None, "not measured")) for g in found]
    notices = tuple(n for n in comparison.notices if not n.startswith(NO_GATES))
    return dataclasses.replace(comparison, metrics=(*comparison.metrics, *rows), notices=notices)


def _row(gate: Gate, value: Value) -> metrics.MetricDiff:
    name = gate.metric
    if value.head is None:
        why = value.why or "not measured"
        if value.unchanged:
            status, message = metrics.SKIPPED, f"{name} is unchanged: {why}"
        elif gate.required:
            status, message = metrics.FAIL, f"{name} could not be measured on the PR: {why}"
        else:
            status, message = metrics.SKIPPED, f"{name} is not available (optional gate): {why}"
    else:
        status, message = metrics.judge(gate, value.base, value.head)
    return metrics.MetricDiff(name, value.base, value.head, gate, status, message)
