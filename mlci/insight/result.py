"""What the "show your math" sections found, as values the report renders
(:mod:`mlci.report.insight`) and the gates judge (:meth:`Insight.values`). Pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from mlci.insight import pseudo
from mlci.insight.timing import Spread

FACTS_KEY = "insight"  # where the check hands an ``Insight`` to the report (its facts)
MB = 1_000_000


@dataclass(frozen=True)
class Unavailable:
    """A section, or one side of it, that could not be computed, and why."""

    why: str
    unchanged: bool = False  # not computed because the PR's model is the base's, byte for byte


@dataclass(frozen=True)
class Timings:
    row: Spread  # ms of predict on one row
    batch: Spread  # ms of predict on a batch of ``RunCost.batch_rows`` rows


@dataclass(frozen=True)
class Side:
    """One model's cost to run: where it came from, its size, its timings (or why not)."""

    label: str
    size_bytes: int | None = None
    timings: Timings | Unavailable = Unavailable("not measured")

    @property
    def size_mb(self) -> float | None:
        return None if self.size_bytes is None else round(self.size_bytes / MB, 6)


@dataclass(frozen=True)
class RunCost:
    base: Side | Unavailable
    head: Side | Unavailable
    rows: int = 0  # evaluation rows the calls draw from
    batch_rows: int = 1000
    seconds: float = 0.0  # what timing both took
    note: str = ""  # how the rounds were bounded, when they were


@dataclass(frozen=True)
class Feature:
    name: str
    head: float | None  # mean drop in score when the feature is permuted
    head_std: float | None
    head_rank: int | None  # 1 = the most important
    base: float | None = None
    base_rank: int | None = None


@dataclass(frozen=True)
class Drivers:
    """Permutation importance of both models on the same rows."""

    features: tuple[Feature, ...]  # the PR's top features, then those that left the top
    top: int
    entered: tuple[str, ...] = ()
    left: tuple[str, ...] = ()
    rows: int = 0
    repeats: int = 0
    scoring: str = ""
    seconds: float = 0.0
    budget_s: float = 0.0
    base_why: str = ""  # why the base has no importances (empty: it has)


@dataclass(frozen=True)
class TrainCost:
    wall_s: float | None  # the reproduce stage of this check
    cpu_s: float | None  # CPU of this process and the commands it ran during that stage
    fit_base_s: float | None = None  # the training's own recorded time, base and PR
    fit_head_s: float | None = None
    gpu_hours: float | None = None  # GPU-hours of a training that ran in this check
    money: float | None = None  # None: no rate is set
    currency: str = ""
    formula: str = ""
    note: str = ""


@dataclass(frozen=True)
class Insight:
    run: RunCost | Unavailable
    drivers: Drivers | Unavailable
    train: TrainCost | Unavailable
    seconds: float = 0.0  # what measuring all three took
    notes: tuple[str, ...] = field(default_factory=tuple)

    def values(self) -> dict[str, pseudo.Value]:
        """The pseudo-metrics, base and PR, for the gates."""
        return {**_run_values(self.run), pseudo.COST: _cost_value(self.train)}


def _run_values(run: RunCost | Unavailable) -> dict[str, pseudo.Value]:
    if isinstance(run, Unavailable):
        return {
            n: pseudo.Value(None, None, run.why, unchanged=run.unchanged)
            for n in pseudo.NAMES
            if n != pseudo.COST
        }
    base, head = run.base, run.head
    base_t = base.timings if isinstance(base, Side) else None
    head_t = head.timings if isinstance(head, Side) else head
    b_row = base_t.row.p95 if isinstance(base_t, Timings) else None
    b_batch = base_t.batch.p50 if isinstance(base_t, Timings) else None
    if isinstance(head_t, Timings):
        row, batch = pseudo.Value(b_row, head_t.row.p95), pseudo.Value(b_batch, head_t.batch.p50)
    else:
        row, batch = pseudo.Value(b_row, None, head_t.why), pseudo.Value(b_batch, None, head_t.why)
    b_mb = base.size_mb if isinstance(base, Side) else None
    if isinstance(head, Side) and head.size_mb is not None:
        size = pseudo.Value(b_mb, head.size_mb)
    else:
        size = pseudo.Value(b_mb, None, head.why if isinstance(head, Unavailable) else "no file")
    return {pseudo.LATENCY_P95: row, pseudo.BATCH: batch, pseudo.MODEL_MB: size}


def _cost_value(train: TrainCost | Unavailable) -> pseudo.Value:
    if isinstance(train, Unavailable):
        return pseudo.Value(None, None, train.why)
    if train.money is None:
        return pseudo.Value(None, None, "no rate is set under mlci.cost")
    return pseudo.Value(None, train.money)
