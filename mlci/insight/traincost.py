"""What a PR costs to train: the reproduce stage's wall and CPU time in this check, the
training's own recorded time base and PR, and money where ``mlci.cost`` sets rates.

Money is ``runner_hour`` × the stage's wall hours + ``gpu_hour`` × the GPU-hours of a training
that ran in this check (a reused training ran elsewhere: no GPU time here). Nothing is
invented: without a rate there is no money, only time.
"""

from __future__ import annotations

import time

from mlci.insight.result import TrainCost, Unavailable
from mlci.settings.insight import CostSettings


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and the children it has waited for: the
    stage commands ``dvc repro`` ran."""
    try:
        import resource
    except ImportError:  # not on a POSIX system: this process alone
        return time.process_time()
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def train_cost(
    rates: CostSettings,
    *,
    wall_s: float | None,
    cpu_s: float | None,
    fit_base_s: float | None = None,
    fit_head_s: float | None = None,
    gpu_hours: float | None = None,
    reused: bool = False,
) -> TrainCost | Unavailable:
    """The section's values; unavailable when this check did not reproduce."""
    if wall_s is None:
        return Unavailable("this check did not run the reproduce stage (nothing was trained here)")
    gpu = 0.0 if reused else (gpu_hours or 0.0)
    note = "training reused: restored, not trained in this check" if reused else ""
    if not rates.priced:
        return TrainCost(wall_s, cpu_s, fit_base_s, fit_head_s, gpu or None, note=note)
    runner = (rates.runner_hour or 0.0) * wall_s / 3600
    on_gpu = (rates.gpu_hour or 0.0) * gpu
    parts = []
    if rates.runner_hour is not None:
        parts.append(f"runner_hour {rates.runner_hour:g} × {wall_s / 3600:.4f} h")
    if rates.gpu_hour is not None:
        parts.append(f"gpu_hour {rates.gpu_hour:g} × {gpu:.4f} GPU-h")
    return TrainCost(
        wall_s,
        cpu_s,
        fit_base_s,
        fit_head_s,
        gpu or None,
        money=round(runner + on_gpu, 6),
        currency=rates.currency,
        formula=" + ".join(parts),
        note=note,
    )
