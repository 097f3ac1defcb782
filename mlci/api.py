"""A small API for your own training scripts: what `mlci train` does, around your code.

    from mlci import api

    with api.training_run(seed=42, params={"lr": 0.01}, data=["data/train.csv"]) as run:
        model = fit(...)                       # your code; seeds are set, GPU is sampled
        run.log_metrics({"accuracy": 0.91})    # to MLflow and to metrics.json for DVC
        run.log_model(model, flavor="sklearn")
    api.write_plot("plots/roc.json", [{"fpr": 0.0, "tpr": 0.0}, ...])

The run is tagged like mlci's own (git SHA, branch, PR, data hashes, environment, GPU), so
`mlci promote` finds it for the commit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlci.project.data import file_md5
from mlci.registry import tags as vocab
from mlci.registry import tracking
from mlci.settings import config
from mlci.training.gpu import GpuSampler
from mlci.training.run import environment, git_facts, seed_everything
from mlci.verdict.metrics import flatten

__all__ = ["TrainingRun", "seed_everything", "training_run", "write_metrics", "write_plot"]


def write_metrics(path: str | Path, metrics: Mapping[str, Any]) -> Path:
    """Metrics as DVC reads them: a JSON mapping (nesting allowed)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(dict(metrics), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return target


def write_plot(path: str | Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Plot data as DVC reads it: a JSON list of records (use with `plots:` in dvc.yaml)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps([dict(r) for r in rows], indent=2) + "\n", encoding="utf-8")
    return target


@dataclass
class TrainingRun:
    run_id: str
    tracking_uri: str
    metrics_path: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    gpu: dict[str, Any] = field(default_factory=dict)

    def log_metrics(self, metrics: Mapping[str, Any]) -> None:
        """Log to MLflow now; written to the metrics file (for DVC) when the run ends."""
        self.metrics.update(metrics)
        tracking.log_metrics(self.run_id, flatten(dict(metrics)), self.tracking_uri)

    def log_model(self, model: Any, flavor: str = "sklearn", name: str = "model") -> None:
        """Log the model the way `mlci promote` expects to find it (``runs:/<id>/model``).

        ``flavor`` names a backend of :data:`mlci.training.BACKENDS` (or an alias: "pytorch",
        "scikit-learn"); another name is a configuration error with a suggestion."""
        from mlci.training.backends import get_trainer

        get_trainer(flavor).log_model(model, name)


@contextmanager
def training_run(
    *,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    data: Sequence[str] = (),
    metrics_path: str = "metrics.json",
    root: str | Path = ".",
    name: str | None = None,
) -> Iterator[TrainingRun]:
    """Seed everything, sample the GPU, and record one MLflow run with mlci's lineage tags."""
    base = Path(root).resolve()
    settings = config.load(base)
    seed_everything(seed)
    uri = settings.tracking_uri
    tracking.configure(uri)
    exp = tracking.ensure_experiment(settings.experiment, uri, base)
    facts = git_facts(base)
    sampler = GpuSampler().start()
    with tracking.run(exp, uri, name or f"script-{(facts.get('git_sha') or 'local')[:8]}") as r:
        tracking.set_tags(
            vocab.trainer_run(
                git_sha=facts.get("git_sha"),
                branch=facts.get("branch"),
                pr=facts.get("pr"),
                data={p: file_md5(base / p) for p in data if (base / p).is_file()},
                environment=environment(),
                seed=seed,
            )
        )
        if params:
            tracking.log_params(flatten(dict(params)))
        run = TrainingRun(r.info.run_id, uri, base / metrics_path)
        try:
            yield run
        finally:
            run.gpu = sampler.stop()
            if run.gpu.get("available"):
                tracking.set_tags(vocab.gpu(run.gpu["gpus"][0]["name"]))
            if run.metrics:
                write_metrics(run.metrics_path, run.metrics)
