"""The facts of one training as a typed value, and where they live.

``mlci train`` writes them; ``mlci evaluate`` finds the MLflow run in them; the PR check reads
them for the report. Their path is ``train.facts_path`` when params.yaml sets it, else the JSON
output the training stage declares in ``dvc.yaml`` (an output that is neither a metric nor a
plot), else ``reports/train.json``. Pure apart from reading the two files; no heavy imports.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from mlci.errors import ConfigError, MlciError
from mlci.settings.config import Settings
from mlci.training.gpu import GpuFacts
from mlci.training.settings import TrainParams

DEFAULT_PATH = TrainParams.facts_path


@dataclass(frozen=True)
class TrainingFacts:
    backend: str | None = None
    task: str | None = None
    estimator: str | None = None
    device: str | None = None
    duration_s: float | None = None
    world_size: int = 1
    epochs: int | None = None
    rows_train: int | None = None
    rows_test: int | None = None
    seed: int | None = None
    data: Mapping[str, str] = field(default_factory=dict)  # path -> md5
    gpu: GpuFacts = field(default_factory=GpuFacts)
    git_sha: str | None = None
    branch: str | None = None
    pr: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    mlflow_experiment_id: str | None = None
    mlflow_tracking_uri: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> TrainingFacts:
        """Lenient: a value of the wrong type is dropped; unknown keys are kept in ``extra``."""
        known = {f.name: f for f in fields(cls) if f.name not in ("gpu", "extra")}
        values: dict[str, Any] = {}
        for name, f in known.items():
            value = raw.get(name)
            if value is None:
                continue
            kind = str(f.type)
            if name in ("data", "environment"):
                if isinstance(value, Mapping):
                    values[name] = {str(k): str(v) for k, v in value.items()}
            elif kind.startswith("int"):
                if isinstance(value, int) and not isinstance(value, bool):
                    values[name] = value
            elif kind.startswith("float"):
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    values[name] = float(value)
            else:
                values[name] = str(value)
        extra = {k: v for k, v in raw.items() if k not in known and k != "gpu"}
        return cls(**values, gpu=GpuFacts.from_dict(raw.get("gpu")), extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape of the facts file (and what ``mlci.report`` reads)."""
        out: dict[str, Any] = dict(self.extra)
        for f in fields(self):
            if f.name in ("gpu", "extra"):
                continue
            value = getattr(self, f.name)
            out[f.name] = dict(value) if isinstance(value, Mapping) else value
        out["gpu"] = self.gpu.to_dict()
        return out

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True, default=str) + "\n"
        path.write_text(text, encoding="utf-8")


def facts_path(root: Path, params: TrainParams | None) -> str:
    """Where the facts of a training are (relative to ``root``); see the module's docstring."""
    if params is not None and params.facts_path_set:
        return params.facts_path
    declared = declared_path(root, params.model_path if params is not None else None)
    if declared is not None:
        return declared
    return params.facts_path if params is not None else DEFAULT_PATH


def declared_path(root: Path, model_path: str | None) -> str | None:
    """The training stage's one JSON output that is neither a metric nor a plot."""
    from mlci.project import pipeline

    try:
        project = pipeline.read(root)
    except MlciError:
        return None  # a broken dvc.yaml is reported by the stage that needs it
    stage = project.producer(model_path) if model_path else None
    if stage is None:
        named = [s for s in project.stages if s.name == "train" or "mlci train" in s.cmd]
        stage = named[0] if len(named) == 1 else None
    if stage is None:
        return None
    outs = [o.path for o in stage.outs if o.path.endswith(".json") and not (o.metric or o.plot)]
    if DEFAULT_PATH in outs or not outs:
        return DEFAULT_PATH if outs else None
    return outs[0] if len(outs) == 1 else None


def load(root: Path, settings: Settings) -> TrainingFacts | None:
    """The facts of the last training in ``root``; None when there are none (or not JSON)."""
    from mlci.training.base import train_params

    try:
        params: TrainParams | None = train_params(root, settings.params_file)
    except ConfigError:
        params = None  # a project without mlci's `train:` (its own script) may still have facts
    path = root / facts_path(root, params)
    try:
        raw = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, ValueError, RecursionError):
        return None
    return TrainingFacts.from_dict(raw) if isinstance(raw, dict) else None


def run_facts(root: Path, settings: Settings) -> dict[str, Any]:
    """Training facts the pipeline wrote (mlci's trainer or helpers), when present."""
    facts = load(root, settings)
    return facts.to_dict() if facts is not None else {}
