"""The check's "show your math" step, after compare: load the base's and the PR's model and the
evaluation rows, measure (:mod:`mlci.insight`), and judge the gates on pseudo-metrics.

Where things come from: the PR's model is the declared model (:func:`mlci.project.modelfile.find`)
in the work tree after reproduce; the base's is the same path at the base commit (git, else the
DVC cache or remote), also for a registered base (``@champion``), whose commit it was trained
from. The rows are mlci's own held-out split for a model mlci's trainer made, else the table
``mlci.explain`` names, at most ``mlci.explain.max_rows`` of them (a seeded sample). Unpickling
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
from mlci.verdict.metrics import Comparison

Rows = tuple[Any, Any]  # features and labels


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
    head, base = _models(root, settings, sha, label)
    rows = _guarded(lambda: evaluation_rows(root, settings, head, base))
    budget = settings.explain.seconds / 3  # latency, and each model's importance
    run = _guarded(lambda: _run_cost(head, base, rows, budget))
    drivers = _guarded(lambda: _drivers(head, base, rows, budget))
    train = _guarded(lambda: _train_cost(root, settings, sha, state.timings, state.cpu, facts))
    found = Insight(run, drivers, train, time.monotonic() - started)
    facts[FACTS_KEY] = found
    if comparison is None:
        return None
    return pseudo.judged(comparison, found.values(), settings.gates)


def _guarded(step: Any) -> Any:
    """``step()``, or why it failed, as a section that is not available."""
    try:
        return step()
    except MlciError as exc:
        return Unavailable(exc.one_line())
    except Exception as exc:  # a section never breaks the check
        return Unavailable(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}")


def _models(
    root: Path, settings: Settings, sha: str | None, label: str
) -> tuple[Model | Unavailable, Model | Unavailable]:
    from mlci.project import modelfile

    try:
        decl = modelfile.find(root, settings)
    except MlciError as exc:
        why = Unavailable(exc.one_line())
        return why, why
    if decl is None:
        why = Unavailable(
            "the project declares no model (an `artifacts:` entry of `type: model` in "
            "dvc.yaml, `mlci.model`, or a training stage with one cached output)"
        )
        return why, why
    head = _guarded(lambda: _head_model(root, decl.path))
    base = _guarded(lambda: _base_model(root, decl.path, sha, label))
    return head, base


def _head_model(root: Path, path: str) -> Model | Unavailable:
    file = root / path
    if not file.exists():
        return Unavailable(f"{path} does not exist in the work tree")
    return load(root, file, f"{path} (this PR)", _size(file))


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
        return load(root, file, f"{path} at {label} ({sha[:7]})", len(raw))


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def load(root: Path, file: Path, label: str, size: int) -> Model:
    """The model in ``file``: mlci's own model file, a scikit-learn (or any object with
    ``predict``) pickle or joblib file; anything else has a size and the reason it cannot be
    called."""
    from mlci.project import modelfile

    kind = modelfile.flavour(file)
    if kind != "pickle":
        what = {"mlflow": "an MLflow model directory", "torch": "a torch file"}.get(kind, "files")
        why = f"it is {what}; mlci calls models saved as pickle or joblib files"
        return Model(label, size, kind=what, why=why)
    import joblib

    from mlci.training.run import project_importable

    with project_importable(root):
        obj = joblib.load(file)
    return _callable(label, size, obj)


def _callable(label: str, size: int, obj: Any) -> Model:
    from mlci.training.backends import BACKENDS, get_trainer

    if isinstance(obj, dict) and "model" in obj and obj.get("backend") in BACKENDS:
        backend = str(obj["backend"])
        trainer, inner = get_trainer(backend), obj["model"]
        features = tuple(str(c) for c in obj.get("features") or ()) or None
        return Model(
            label,
            size,
            predict=lambda x: trainer.predict(inner, x),
            estimator=inner if backend == "sklearn" else None,
            features=features,
            kind=f"mlci {backend} model",
        )
    name = f"{type(obj).__module__}.{type(obj).__qualname__}"
    if not callable(getattr(obj, "predict", None)):
        return Model(label, size, kind=name, why=f"a {name} has no predict method")
    names = getattr(obj, "feature_names_in_", None)
    features = tuple(str(c) for c in names) if names is not None else None
    return Model(label, size, predict=obj.predict, estimator=obj, features=features, kind=name)


def evaluation_rows(
    root: Path, settings: Settings, head: Model | Unavailable, base: Model | Unavailable
) -> Rows | Unavailable:
    """The evaluation rows, at most ``mlci.explain.max_rows``."""
    ex = settings.explain
    own = any(isinstance(m, Model) and m.kind.startswith("mlci ") for m in (head, base))
    if ex.data is not None:
        from mlci.checks.frames import read_table

        if ex.target is None:
            return Unavailable("mlci.explain.data is set without mlci.explain.target")
        frame = read_table(root / ex.data, ex.data)
        if ex.target not in frame.columns:
            return Unavailable(f"mlci.explain.target '{ex.target}' is not a column of {ex.data}")
        x, y = frame.drop(columns=[ex.target]), frame[ex.target]
    elif own:
        from mlci.training.base import train_params
        from mlci.training.run import load_split

        split = load_split(root, train_params(root, settings.params_file))
        x, y = split.x_test, split.y_test
    else:
        return Unavailable(
            "a project's own model is measured on the rows `mlci.explain: {data, target}` names"
        )
    if len(x) > ex.max_rows:
        x = x.sample(n=ex.max_rows, random_state=importance.SEED)
        y = y.loc[x.index]
    return x, y


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
