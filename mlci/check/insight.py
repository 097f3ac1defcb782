"""The check's "show your math" step, after compare: load the base's and the PR's model and the
evaluation rows, measure (:mod:`mlci.insight`), and judge the gates on pseudo-metrics.

Where things come from: the PR's model is the declared model (:func:`mlci.project.modelfile.find`)
in the work tree after reproduce; the base's is the same path at the base commit (git, else the
DVC cache or remote), also for a registered base (``@champion``), whose commit it was trained
from. The rows are mlci's own held-out split for a model mlci's trainer made, else the table
``mlci.explain`` names, at most ``mlci.explain.max_rows`` of them (a seeded sample); loading and
rows come from :mod:`mlci.training.explain`, which the model card shares. Unpickling
a model runs its code: the PR's own code already ran in this check (the fork guard decided
that), and the base's comes from the base branch.

Nothing here fails the check: any failure becomes "not available: why" in its section.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from mlci.errors import MlciError
from mlci.insight import importance, pseudo, runcost, traincost
from mlci.insight.model import Model
from mlci.insight.result import FACTS_KEY, Drivers, Insight, RunCost, TrainCost, Unavailable
from mlci.settings.config import Settings
from mlci.training import explain
from mlci.training.explain import Rows
from mlci.verdict.metrics import Comparison


def apart(settings: Settings) -> Settings:
    """``settings`` for the compare stage: the gates a metrics file answers."""
    return dataclasses.replace(settings, gates=pseudo.without_pseudo(settings.gates))


class Stages(Protocol):
    """What the check found so far (``pipeline.CheckState``)."""

    comparison: Comparison | None
    timings: dict[str, float]  # wall seconds by stage
    cpu: dict[str, float]  # CPU seconds by stage


def measure(
    root: Path, settings: Settings, state: Stages, facts: dict[str, Any]
) -> Comparison | None:
    """The three sections, into ``facts`` under :data:`FACTS_KEY` (``facts`` has the training's
    facts, ``training``); returns the comparison with the pseudo-metric gates judged."""
    started = time.monotonic()
    comparison = state.comparison
    sha = comparison.base_sha if comparison is not None else None
    label = comparison.base_rev if comparison is not None else "base"
    try:
        same = _unchanged(root, settings, sha, label)
    except Exception:  # cannot tell: measure, as for any changed model
        same = None
    if same is not None:  # the very model the base has: nothing to measure
        run: Any = same
        drivers: Any = same
    else:
        head, base = _models(root, settings, sha, label)
        rows = explain.guarded(lambda: explain.evaluation_rows(root, settings, head, base))
        budget = explain.budget(settings)  # latency, and each model's importance
        run = explain.guarded(lambda: _run_cost(head, base, rows, budget))
        drivers = explain.guarded(lambda: _drivers(head, base, rows, budget))
    train = explain.guarded(
        lambda: _train_cost(root, settings, sha, state.timings, state.cpu, facts)
    )
    found = Insight(run, drivers, train, time.monotonic() - started)
    facts[FACTS_KEY] = found
    if comparison is None:
        return None
    return pseudo.judged(comparison, found.values(), settings.gates)


def _unchanged(root: Path, settings: Settings, sha: str | None, label: str) -> Unavailable | None:
    """Why nothing is measured when the PR's model file is the base's byte for byte (its hash
    against the one git or DVC recorded at the base: no model is loaded); else None."""
    from mlci.project import data, modelfile

    decl = modelfile.find(root, settings) if sha is not None else None
    file = root / decl.path if decl is not None else None
    if sha is None or decl is None or file is None or not file.is_file():
        return None
    known = data.base_md5(root, sha, decl.path)
    if known is None or known != data.file_md5(file):
        return None
    return Unavailable(
        f"the PR's model is the base's ({decl.path} at {label}, byte for byte): the same "
        "latency, size and drivers; nothing measured",
        unchanged=True,
    )


def _models(
    root: Path, settings: Settings, sha: str | None, label: str
) -> tuple[Model | Unavailable, Model | Unavailable]:
    decl = explain.declared(root, settings)
    if isinstance(decl, Unavailable):
        return decl, decl
    path = decl.path
    head = explain.guarded(lambda: explain.work_tree_model(root, path, f"{path} (this PR)"))
    base = explain.guarded(lambda: _base_model(root, path, sha, label))
    return head, base


def _base_model(root: Path, path: str, sha: str | None, label: str) -> Model | Unavailable:
    if sha is None:
        return Unavailable(f"the base ({label}) has no commit to read {path} at")
    from mlci.project import data, pipeline

    raw = data.read_at(root, sha, path, uncached=pipeline.read(root).uncached)
    if raw is None:
        return Unavailable(
            f"{path} is neither in git nor in the DVC cache or remote at {label} ({sha[:7]})"
        )
    with tempfile.TemporaryDirectory(prefix="mlci-base-model-") as tmp:
        file = Path(tmp) / Path(path).name
        file.write_bytes(raw)
        return explain.load(root, file, f"{path} at {label} ({sha[:7]})", len(raw))


def _run_cost(
    head: Model | Unavailable, base: Model | Unavailable, rows: Rows | Unavailable, budget: float
) -> RunCost:
    if isinstance(rows, Unavailable):
        found = runcost.measure(base, head, None)
        return dataclasses.replace(found, note=f"Latency not measured: {rows.why}")
    return runcost.measure(base, head, rows[0], budget_s=budget)


def _drivers(
    head: Model | Unavailable, base: Model | Unavailable, rows: Rows | Unavailable, budget: float
) -> Drivers | Unavailable:
    if isinstance(head, Unavailable):
        return head
    if isinstance(rows, Unavailable):
        return rows
    x, y = rows
    found = importance.permute(head, x, y, budget_s=budget)
    if isinstance(found, Unavailable):
        return found
    at_base = (
        base if isinstance(base, Unavailable) else importance.permute(base, x, y, budget_s=budget)
    )
    return importance.compare(at_base, found, rows=len(x), budget_s=budget)


def _train_cost(
    root: Path,
    settings: Settings,
    sha: str | None,
    timings: Mapping[str, float],
    cpu: Mapping[str, float],
    recorded: Mapping[str, Any],
) -> TrainCost | Unavailable:
    from mlci.training import facts

    head = facts.load(root, settings)
    training = recorded.get("training")
    ran = bool(training.get("ran")) if isinstance(training, Mapping) else True
    return traincost.train_cost(
        settings.cost,
        wall_s=timings.get("reproduce"),
        cpu_s=cpu.get("reproduce"),
        fit_base_s=_base_fit(root, settings, sha),
        fit_head_s=head.duration_s if head is not None else None,
        gpu_hours=head.gpu.gpu_hours if head is not None else None,
        reused=not ran,
    )


def _base_fit(root: Path, settings: Settings, sha: str | None) -> float | None:
    """The training time the base's facts file records (committed with its metrics)."""
    import json

    from mlci import git
    from mlci.training import facts
    from mlci.training.base import train_params

    if sha is None:
        return None
    try:
        params = train_params(root, settings.params_file)
        raw = git.show_in(root, sha, facts.facts_path(root, params))
        found = json.loads(raw) if raw is not None else None
    except (MlciError, ValueError, RecursionError):
        return None
    return facts.TrainingFacts.from_dict(found).duration_s if isinstance(found, dict) else None
