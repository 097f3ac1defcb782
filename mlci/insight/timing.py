"""Timing ``predict`` calls so that machine noise hits every model alike.

The models are timed in turn, call by call (the order reversed every other round), after one
warm-up round; the PR check (:mod:`mlci.insight.runcost`) and the monitor's shadow evaluation
(:mod:`mlci.monitor.scoring`) both time this way. Pure apart from the clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Call = Callable[[int], object]  # one timed call of round ``i``


def interleaved_ms(calls: Sequence[Call], rounds: int, warmup: bool = True) -> list[list[float]]:
    """Wall time in ms of ``calls[k](i)`` for each round ``i`` (``rounds`` of them), the calls
    taken in turn, reversed on odd rounds. With ``warmup`` round 0 is not kept unless it is
    the only one. One list of times per call, in the order of ``calls``."""
    times: list[list[float]] = [[] for _ in calls]
    order = list(range(len(calls)))
    for i in range(max(rounds, 1)):
        for which in order if i % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            calls[which](i)
            elapsed = (time.perf_counter() - t0) * 1000
            if not warmup or i > 0 or rounds <= 1:
                times[which].append(elapsed)
    return times


@dataclass(frozen=True)
class Spread:
    """Percentiles of a set of times (ms) and how many there were."""

    p25: float
    p50: float
    p75: float
    p95: float
    n: int

    @property
    def iqr_rel(self) -> float | None:
        """The interquartile range as a fraction of the median: the noise to expect."""
        return (self.p75 - self.p25) / self.p50 if self.p50 > 0 else None


def spread(times: Sequence[float], digits: int = 4) -> Spread:
    """p25, p50, p75 and p95 of ``times`` (at least one)."""
    import numpy as np

    p25, p50, p75, p95 = (round(float(v), digits) for v in np.percentile(times, [25, 50, 75, 95]))
    return Spread(p25, p50, p75, p95, len(times))
