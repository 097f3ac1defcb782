"""What a model costs to run: ``predict`` on one row and on a batch of 1,000 rows, base and PR
timed in turn on the same rows (:func:`mlci.insight.timing.interleaved_ms`), and their size.

The rounds are bounded by a time budget measured on a first (warm-up) call of each; the
report says when the budget cut them. A model whose ``predict`` raises, or that cannot be
called, is timed no further and named with the reason; the other one is still timed.
"""

from __future__ import annotations

import time
from typing import Any

from mlci.insight.model import Model, failure
from mlci.insight.result import RunCost, Side, Timings, Unavailable
from mlci.insight.timing import interleaved_ms, spread

BATCH_ROWS = 1000
ROW_ROUNDS = 200  # single-row calls per model, at most
BATCH_ROUNDS = 20  # batches per model, at most
MIN_ROUNDS = 5
BUDGET_S = 10.0  # both kinds of calls, both models together (mlci.explain.seconds / 3)

Inputs = tuple[Any, Any]  # a model's rows (its columns) and a batch of BATCH_ROWS of them


def measure(
    base: Model | Unavailable,
    head: Model | Unavailable,
    x: Any,
    *,
    budget_s: float = BUDGET_S,
    row_rounds: int = ROW_ROUNDS,
    batch_rounds: int = BATCH_ROUNDS,
) -> RunCost:
    """Time both models on the rows of ``x`` (``x`` None: sizes only)."""
    started = time.monotonic()
    sides = [base, head]
    found: list[Side | Unavailable] = [
        m if isinstance(m, Unavailable) else Side(m.label, m.size_bytes) for m in sides
    ]

    def done(note: str = "") -> RunCost:
        n = 0 if x is None else len(x)
        return RunCost(found[0], found[1], n, BATCH_ROWS, time.monotonic() - started, note)

    if x is None or len(x) == 0:
        return done()
    models = {k: m for k, m in enumerate(sides) if isinstance(m, Model)}
    prepared = {k: p for k, p in ((k, _prepare(m, x, found, k)) for k, m in models.items()) if p}
    probes = _probe(models, prepared, found)
    if not probes:
        return done()
    left = max(budget_s - (time.monotonic() - started), 0.0)
    share = sum(r * row_rounds + b * batch_rounds for r, b in probes.values()) / 1000
    scale = min(1.0, left / share) if share > 0 else 1.0
    n_rows = max(MIN_ROUNDS, int(row_rounds * scale))
    n_batches = max(MIN_ROUNDS, int(batch_rounds * scale))
    live = sorted(probes)
    try:
        row_times = interleaved_ms(
            [_one_row(models[k], prepared[k][0], n_rows) for k in live], n_rows, warmup=False
        )
        batch_times = interleaved_ms(
            [_batch(models[k], prepared[k][1]) for k in live], n_batches, warmup=False
        )
    except Exception as exc:  # a model that answered once and then raised
        for k in live:
            found[k] = Side(models[k].label, models[k].size_bytes, Unavailable(failure(exc)))
        return done()
    for i, k in enumerate(live):
        timings = Timings(spread(row_times[i]), spread(batch_times[i]))
        found[k] = Side(models[k].label, models[k].size_bytes, timings)
    if scale >= 1.0:
        return done()
    return done(
        f"The time budget ({budget_s:.3g} s) cut the rounds to {n_rows} single-row calls "
        f"and {n_batches} batches per model"
    )


def _prepare(m: Model, x: Any, found: list[Side | Unavailable], k: int) -> Inputs | None:
    """The model's rows and its batch (rows repeated up to ``BATCH_ROWS``); None with the
    reason in ``found`` when it cannot be called."""
    import numpy as np

    if m.predict is None:
        found[k] = Side(m.label, m.size_bytes, Unavailable(m.why or "it cannot be called"))
        return None
    try:
        inputs = m.inputs(x)
        return inputs, inputs.iloc[np.arange(BATCH_ROWS) % len(inputs)]
    except Exception as exc:
        found[k] = Side(m.label, m.size_bytes, Unavailable(failure(exc, "selecting its columns")))
        return None


def _probe(
    models: dict[int, Model], prepared: dict[int, Inputs], found: list[Side | Unavailable]
) -> dict[int, tuple[float, float]]:
    """One call on one row and one on the batch per model (its warm-up): ms of each, for the
    models that answered; one that raised gets its reason in ``found``."""
    out: dict[int, tuple[float, float]] = {}
    for k, (rows, batch) in prepared.items():
        m = models[k]
        assert m.predict is not None
        try:
            t0 = time.perf_counter()
            m.predict(rows.iloc[[0]])
            t1 = time.perf_counter()
            m.predict(batch)
            t2 = time.perf_counter()
        except Exception as exc:
            found[k] = Side(m.label, m.size_bytes, Unavailable(failure(exc)))
            continue
        out[k] = ((t1 - t0) * 1000, (t2 - t1) * 1000)
    return out


def _one_row(model: Model, rows: Any, rounds: int) -> Any:
    """Round ``i`` predicts row ``i`` (cycling), each row a frame cut before the clock runs."""
    predict = model.predict
    assert predict is not None
    singles = [rows.iloc[[j]] for j in range(min(len(rows), rounds))]
    return lambda i: predict(singles[i % len(singles)])


def _batch(model: Model, batch: Any) -> Any:
    predict = model.predict
    assert predict is not None
    return lambda i: predict(batch)
